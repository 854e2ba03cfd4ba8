#!/usr/bin/env bash
# End to end: a request's trace, with the whole stack and a real PostgreSQL:
#   - a request that arrives with a W3C traceparent keeps its trace id and hangs under its span;
#     GET /v1/requests/{id}/trace answers its spans: the request, each stage under it, the
#     gatherer's tool calls and the responder's LLM call under their stages;
#   - `conveyor trace ID` prints the waterfall: every stage with the request document's timings,
#     and a last line whose parts add up to the total;
#   - the orchestrator (--otlp-url) exports each ended request's trace as OTLP/HTTP JSON to a
#     collector (the stand-in LLM server takes POST /v1/traces), with the same parent/child
#     structure; a collector that is away is counted and logged, and requests are still answered;
#   - a malformed traceparent starts a trace of its own; an unknown id fails with exit status 1.
source "$(dirname "$0")/lib.sh"
e2e_setup trace
e2e_start_bankapi
e2e_start_fake_llm --default '{"mode": "ok", "content": "You can link it under Cards in the app."}'
e2e_start_orchestrator --otlp-url "$E2E_LLM_URL/traces"
for service in intent gatherer decision executor; do
    e2e_start_worker "$service" "$service-1"
done
CONVEYOR_LLM_BASE_URL=$E2E_LLM_URL CONVEYOR_LLM_MODEL=stand-in e2e_start_worker responder responder-1
e2e_wait_ready

caller_trace=4bf92f3577b34da6a3ce929d0e0e4736 caller_span=00f067aa0ba902b7
answer=$(curl -sS -X POST "$E2E_API/v1/requests" -H "traceparent: 00-$caller_trace-$caller_span-01" \
    -d '{"user_id": "cust-1", "text": "How do I link my new card to the app?"}')
e2e_expect "a request with a traceparent" "$answer" '.status == "done" and .reply.template == "llm"'
id=$(jq -r .request_id <<<"$answer")

trace=$("$CONVEYOR_BIN/conveyor" trace "$id" --url "$E2E_API" --json) || e2e_fail "conveyor trace --json failed"
e2e_expect "the trace" "$trace" "
  .trace_id == \"$caller_trace\" and .spans[0].kind == \"request\" and .spans[0].parent_span_id == \"$caller_span\"
  and .spans[0].status == \"done\" and .untimed_stages == []"
e2e_expect "its stages, under the request" "$trace" '
  .spans[0].span_id as $root | .spans[0].start_unix_us as $t0 | [.spans[] | select(.kind == "stage")] as $stages
  | ($stages | map(.name)) == ["intent", "gather", "decide", "respond"]
  and all($stages[]; .parent_span_id == $root and .start_unix_us >= $t0 and .duration_us > 0)'
e2e_expect "the tool calls under the gather stage, the LLM call under respond" "$trace" '
  (.spans[] | select(.name == "gather") | .span_id) as $gather
  | (.spans[] | select(.name == "respond") | .span_id) as $respond
  | ([.spans[] | select(.kind == "tool")] | length > 0 and all(.[]; .parent_span_id == $gather and .status == "ok"))
  and ([.spans[] | select(.kind == "llm")] | length == 1 and .[0].parent_span_id == $respond
       and .[0].name == "llm stand-in" and .[0].status == "answered")'
# each stage's span lasts what the request document says it took
document=$(curl -sS "$E2E_API/v1/requests/$id")
for stage in intent gather decide respond; do
    span_ms=$(jq --arg s "$stage" '.spans[] | select(.name == $s) | .duration_us / 1000' <<<"$trace")
    doc_ms=$(jq --arg s "$stage" '.timings_ms[$s]' <<<"$document")
    awk -v a="$span_ms" -v b="$doc_ms" 'BEGIN { exit !(a - b < 0.002 && b - a < 0.002) }' ||
        e2e_fail "the $stage span lasts $span_ms ms, the document says $doc_ms"
done
e2e_ok "a traceparent's trace: the request under the caller's span, its stages, tools and LLM call"

waterfall=$("$CONVEYOR_BIN/conveyor" trace "$id" --url "$E2E_API") || e2e_fail "conveyor trace failed"
printf '%s\n' "$waterfall" >&2
for name in request intent gather decide respond 'tool kb_answers' 'llm stand-in'; do
    grep -qE "^ *$name +[0-9.]+ +[0-9.]+ +[a-z_]+!? +\|[#.]+\|$" <<<"$waterfall" ||
        e2e_fail "the waterfall has no line for $name"
done
# the last line: total = stages + orchestrator, and the stages' lines add up to the stages
read -r total stages own < <(sed -nE 's/^total ([0-9.]+) ms = stages ([0-9.]+) ms \+ orchestrator (-?[0-9.]+) ms$/\1 \2 \3/p' <<<"$waterfall")
[[ -n $total ]] || e2e_fail "the waterfall has no total line"
lines=$(awk '$1 ~ /^(intent|gather|decide|execute|respond)$/ { sum += $3 } END { printf "%.3f", sum }' <<<"$waterfall")
awk -v t="$total" -v s="$stages" -v o="$own" -v l="$lines" \
    'BEGIN { exit !((t - s - o) < 0.002 && (s + o - t) < 0.002 && (l - s) < 0.005 && (s - l) < 0.005 && s <= t) }' ||
    e2e_fail "the waterfall does not add up: total $total, stages $stages (lines $lines), orchestrator $own"
[[ $(jq '.timings_ms.total' <<<"$document") == "$total" ]] ||
    awk -v t="$total" -v d="$(jq '.timings_ms.total' <<<"$document")" 'BEGIN { exit !(t - d < 0.002 && d - t < 0.002) }' ||
    e2e_fail "the waterfall's total $total is not the document's"
e2e_ok "conveyor trace draws every stage, tool and LLM call, and its times add up to the total"

# The export: the collector got the request's spans, in OTLP's shape, with the same tree.
exported() {
    curl -sS "${E2E_LLM_URL%/v1}/_fake/requests" |
        jq -e --arg t "$caller_trace" --argjson n "$(jq '.spans | length' <<<"$trace")" \
            '[.[] | select(.path == "/v1/traces") | .body.resourceSpans[].scopeSpans[].spans[] | select(.traceId == $t)]
             | length == $n'
}
e2e_wait 10 "the trace to reach the collector" exported
otlp=$(curl -sS "${E2E_LLM_URL%/v1}/_fake/requests" |
    jq -c --arg t "$caller_trace" '[.[] | select(.path == "/v1/traces") | .body.resourceSpans[]
        | select(any(.resource.attributes[]; .key == "service.name" and .value.stringValue == "conveyor"))
        | .scopeSpans[].spans[] | select(.traceId == $t)]')
e2e_expect "the exported spans" "$otlp" "
  (map(select(.name == \"request\")) | length == 1 and .[0].parentSpanId == \"$caller_span\" and .[0].kind == 2) and
  (map(select(.name == \"request\"))[0].spanId) as \$root |
  (map(select(.name == \"gather\"))[0].spanId) as \$gather |
  (map(select(.name == \"respond\"))[0].spanId) as \$respond |
  ([.[] | select(.name == (\"intent\", \"gather\", \"decide\", \"respond\"))] | length == 4 and all(.parentSpanId == \$root)) and
  ([.[] | select(.name | startswith(\"tool \"))] | length > 0 and all(.parentSpanId == \$gather)) and
  ([.[] | select(.name == \"llm stand-in\")] | length == 1 and .[0].parentSpanId == \$respond) and
  all(.[]; (.endTimeUnixNano | tonumber) >= (.startTimeUnixNano | tonumber))"
[[ $(jq -r "[.spans[].span_id] | sort | join(\" \")" <<<"$trace") == $(jq -r '[.[].spanId] | sort | join(" ")' <<<"$otlp") ]] ||
    e2e_fail "the exported spans are not the stored trace's"
sent=$(curl -sS "$E2E_API/metrics" | awk '$1 == "conveyor_trace_exports_total{outcome=\"sent\"}" { print $2 }')
[[ ${sent:-0} -ge 1 ]] || e2e_fail "no export counted as sent: ${sent:-none}"
e2e_ok "the trace is exported as OTLP/HTTP JSON with the same parent/child structure"

# A collector that is away: the request is answered all the same, the failure counted and logged.
e2e_kill fake-llm
e2e_expect "a request while the collector is away" "$(e2e_ask cust-1 'I lost my card')" '.status == "done"'
failed_export() {
    [[ $(curl -sS "$E2E_API/metrics" | awk '$1 == "conveyor_trace_exports_total{outcome=\"failed\"}" { print $2 }') -ge 1 ]]
}
e2e_wait 10 "the failed export to be counted" failed_export
grep -q "traces not exported to $E2E_LLM_URL/traces" "$E2E_DIR/orchestrator.log" ||
    e2e_fail "no log line says the export failed"
e2e_ok "a collector that is away costs no request: the failed export is counted and logged"

answer=$(curl -sS -X POST "$E2E_API/v1/requests" -H "traceparent: 00-not-a-trace-01" \
    -d '{"user_id": "cust-1", "text": "I lost my card"}')
id=$(jq -r .request_id <<<"$answer")
e2e_expect "a malformed traceparent's trace" "$(curl -sS "$E2E_API/v1/requests/$id/trace")" \
    ".trace_id != \"$caller_trace\" and (.trace_id | length) == 32 and .spans[0].parent_span_id == null"
if "$CONVEYOR_BIN/conveyor" trace r-nosuchrequest --url "$E2E_API" 2>"$E2E_DIR/unknown.err"; then
    e2e_fail "conveyor trace of an unknown request succeeded"
else
    [[ $? == 1 ]] && grep -q "not_found" "$E2E_DIR/unknown.err" || e2e_fail "an unknown request: $(cat "$E2E_DIR/unknown.err")"
fi
[[ $(curl -s -o /dev/null -w '%{http_code}' "$E2E_API/v1/requests/$id/other") == 404 ]] ||
    e2e_fail "GET /v1/requests/ID/other is not 404"
e2e_ok "a malformed traceparent starts a trace of its own; an unknown request fails with its reason"
