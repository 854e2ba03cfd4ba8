#!/usr/bin/env bash
# End to end: the whole stack (orchestrator and one of each worker, the built binaries) with a
# real PostgreSQL and the demo bank's HTTP service. The nine demo intents answered through HTTP (one through a two-step plan),
# another from the knowledge base, a checkpoint per stage of each finished request, the actions
# performed through the bank's write path, idempotency, bad input refused with a 4xx, probes.
source "$(dirname "$0")/lib.sh"
e2e_setup pipeline
e2e_start_stack

# text | intent | outcome | a phrase the reply must hold (cust-1's guaranteed data). The actions
# are performed: the lost card comes last, as the card it freezes is the one the others read.
cases=(
    "My new card still hasn't arrived, when will it come?|card_arrival|answer|CP482913374IE"
    "I want a refund for my last purchase|request_refund|refund_eligible|Lidl"
    "Why is my transfer still pending?|pending_transfer|answer|Sean Murphy"
    "My top-up failed, what happened?|top_up_failed|answer|Declined by the issuing bank"
    "What is the exchange rate for USD?|exchange_rate|answer|USD"
    "There is a payment I don't recognise on my card|card_payment_not_recognised|escalate|disputes team"
    "I was charged twice for the same thing|transaction_charged_twice|refund_eligible|Deliveroo"
    "I think my card has been compromised|compromised_card|answer|14.20 EUR at Uber"
    "I lost my card yesterday|lost_or_stolen_card|freeze_card|4417"
)
ids=()
for case in "${cases[@]}"; do
    IFS='|' read -r text intent outcome phrase <<<"$case"
    answer=$(e2e_ask cust-1 "$text")
    e2e_expect "$text" "$answer" ".status == \"done\" and .intent.name == \"$intent\" and .decision.outcome == \"$outcome\""
    e2e_expect "$text: reply" "$answer" ".reply.text | contains(\"$phrase\")"
    e2e_expect "$text: timings" "$answer" \
        '[.timings_ms.intent, .timings_ms.gather, .timings_ms.decide, .timings_ms.respond, .timings_ms.total] | all(type == "number" and . >= 0)'
    e2e_expect "$text: no customer rows in the document" "$answer" '[.evidence.tools[] | has("data")] | any | not'
    e2e_expect "$text: each tool explains itself" "$answer" \
        '[.evidence.tools[] | (.name | type == "string") and .status == "ok" and (.duration_ms | type == "number") and .attempts == 1 and .cached == false and .breaker_open == false] | all'
    ids+=("$(jq -r .request_id <<<"$answer")")
    e2e_ok "$intent -> $outcome"
done
# The bank's other systems, over HTTP: the card tracker, asked with the tracking number the first
# SQL tool found, and the FX service, asked with the currency the customer named.
document=$(curl -sS "$E2E_API/v1/requests/${ids[0]}")
e2e_expect "the card tracker" "$document" \
    '.decision.rule == "card_tracked_card_in_use" and (.reply.text | contains("An Post")) and ([.evidence.tools[] | select(.name == "delivery_status") | [.status, .rows]] == [["ok", 1]])'
document=$(curl -sS "$E2E_API/v1/requests/${ids[4]}")
e2e_expect "the FX service" "$document" \
    '.decision.rule == "fx_rate" and (.reply.text | test("1 EUR = [0-9.]+ USD \\(reference mid rate"))'
e2e_ok "http tools: the card tracker and the FX service"
# The decision log in the request's document: the refund's policy read the payment's amount and
# date (within its 30 days), and each policy tried before it says why it did not apply.
document=$(curl -sS "$E2E_API/v1/requests/${ids[1]}")
e2e_expect "the decision log" "$document" \
    '.decision.log.rule == "refund_recent_payment" and (.decision.log.checked | length == 4 and (last == {"policy": "refund_recent_payment", "matched": true}) and (.[:3] | all(.matched == false and (.failed | startswith("intent "))))) and .decision.log.values["evidence.refundable_payments.0.amount"] == "23.47" and (.decision.log.values["evidence.refundable_payments.0.created_at"] | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))'
e2e_ok "the decision log"
# A two-step plan: card_payments reads the card that active_cards found; both ran, and the
# reply is made of the second's rows.
document=$(curl -sS "$E2E_API/v1/requests/${ids[7]}")
e2e_expect "two steps: both tools" "$document" \
    '[.evidence.tools[] | select(.name == "active_cards" or .name == "card_payments") | [.name, .status, .rows]] == [["active_cards", "ok", 1], ["card_payments", "ok", 3]]'
e2e_expect "two steps: the reply" "$document" '.reply.template == "compromised_card_payments" and (.reply.text | contains("card ending 4417 is 14.20 EUR at Uber"))'
e2e_ok "a tool that reads another's result"
e2e_expect "rule method" "$(e2e_ask cust-1 'I lost my card')" '.intent.method == "rule" and .intent.confidence == 1'
# What neither a rule nor the model is sure of (no LLM here) is a guess, marked so, and a person takes it.
guess=$(e2e_ask cust-1 'What is the meaning of life?')
e2e_expect "a guess" "$guess" '.intent.method == "fallback" and .intent.low_confidence and (.intent.candidates | length) == 5'
e2e_expect "a guess is handed off" "$guess" '.decision.outcome == "handoff" and (.reply.text | contains("colleague"))'
ids+=("$(jq -r .request_id <<<"$guess")")
# What the model is sure of is answered by it.
e2e_expect "the model" "$(e2e_ask cust-1 'I want to start using my card.')" \
    '.intent.name == "activate_my_card" and .intent.method == "model" and (.intent.low_confidence | not)'

# What the demo does not act on is answered from the knowledge base: the intent's own article.
kb=$(e2e_ask cust-1 'How old do I need to be to open an account?')
e2e_expect "a knowledge-base answer" "$kb" \
    '.status == "done" and .intent.name == "age_limit" and .decision.outcome == "answer" and .decision.rule == "kb_answer"'
e2e_expect "a knowledge-base answer: reply" "$kb" '.reply.text | contains("How old do I need to be to open an account?") and contains("age of 18")'
kb_id=$(jq -r .request_id <<<"$kb")
e2e_expect "a knowledge-base answer: the kb tool in the request document" "$(curl -sS "$E2E_API/v1/requests/$kb_id")" \
    '[.evidence.tools[] | select(.name == "kb_answers" and .status == "ok")] | length == 1'
ids+=("$kb_id")

# A checkpoint per stage of each finished request, in the API and in the database: five when the
# decision had actions, four when it had none (nothing to execute).
for id in "${ids[@]}"; do
    document=$(curl -sS "$E2E_API/v1/requests/$id")
    e2e_expect "GET $id" "$document" \
        '.status == "done" and (.reply.text | length > 0) and (if (.decision.actions | length) > 0
           then [.checkpoints[] | [.seq, .stage]] == [[1,"intent"],[2,"gather"],[3,"decide"],[4,"execute"],[5,"respond"]]
           else [.checkpoints[] | [.seq, .stage]] == [[1,"intent"],[2,"gather"],[3,"decide"],[5,"respond"]] end)'
    expected=$(jq '.checkpoints | length' <<<"$document")
    [[ $(e2e_psql -c "SELECT count(*) FROM checkpoints WHERE request_id = '$id'") == "$expected" ]] ||
        e2e_fail "request $id does not have its $expected checkpoints in the database"
done
e2e_ok "a checkpoint per stage of each finished request"

# The lost card's freeze was performed through the bank's write path: the action's row says done,
# with the bank's answer, the card is frozen, and the document says so.
lost=${ids[8]}
[[ $(e2e_psql -c "SELECT kind || ':' || status || ':' || (result->>'last4') FROM actions WHERE request_id = '$lost'") == "freeze_card:done:4417" ]] ||
    e2e_fail "the freeze_card action of $lost is not done: $(e2e_psql -c "SELECT * FROM actions WHERE request_id = '$lost'")"
[[ $(e2e_psql -c "SELECT status FROM bank.cards WHERE customer_id = 'cust-1' AND last4 = '4417'") == frozen ]] ||
    e2e_fail "cust-1's card 4417 is not frozen"
e2e_expect "the action in the document" "$(curl -sS "$E2E_API/v1/requests/$lost")" \
    '.decision.actions_status == "done" and (.decision.actions[0] | .kind == "freeze_card" and .status == "done" and .result.last4 == "4417" and (.replayed | not))'
e2e_ok "actions performed"

# The same idempotency key twice: the first answer, not a second run.
body='{"user_id": "cust-1", "text": "I lost my card", "idempotency_key": "idem-e2e-1"}'
first=$(e2e_post "$body")
second=$(e2e_post "$body")
[[ ${first%% *} == 200 && ${second%% *} == 200 ]] || e2e_fail "idempotent POSTs answered ${first%% *} and ${second%% *}"
[[ "$(jq -r .request_id <<<"${first#* }")" == "$(jq -r .request_id <<<"${second#* }")" ]] ||
    e2e_fail "the same idempotency key gave two requests"
[[ $(e2e_psql -c "SELECT count(*) FROM requests WHERE idempotency_key = 'idem-e2e-1'") == 1 ]] ||
    e2e_fail "the same idempotency key ran twice"
e2e_ok "idempotency key honoured"

# Fifty requests on one kept-alive connection, as an SDK or a proxy sends them: each answers as
# fast as on a new connection. A stall of 250 ms a request (a reused connection waiting for a
# timer) would take 12.5 s; 10 s is far beyond what the stack needs and catches it.
args=()
for i in $(seq 1 50); do
    [[ $i -eq 1 ]] || args+=(--next)
    args+=(-sS -m 30 -o /dev/null -w '%{http_code} %{num_connects}\n' -X POST "$E2E_API/v1/requests"
           -H 'Content-Type: application/json' --data-binary '{"user_id": "cust-1", "text": "Where is my card?"}')
done
started=$(date +%s%N)
answers=$(curl "${args[@]}") || e2e_fail "50 requests on one connection: curl failed"
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
[[ $(grep -c '^200 ' <<<"$answers") == 50 ]] || e2e_fail "50 requests on one connection: not all 200: $(sort <<<"$answers" | uniq -c)"
[[ $(awk '{ opened += $2 } END { print opened }' <<<"$answers") == 1 ]] ||
    e2e_fail "50 requests did not share one connection: $(sort <<<"$answers" | uniq -c)"
[[ $elapsed_ms -lt 10000 ]] || e2e_fail "50 requests on one kept-alive connection took $elapsed_ms ms"
e2e_ok "50 requests on one kept-alive connection in $elapsed_ms ms"

# Bad input: a 4xx with {"error": {"code", "message"}}, never a run.
before=$(e2e_psql -c "SELECT count(*) FROM requests")
expect_refused() {
    local what=$1 status=$2 code=$3 body=$4 answer
    answer=$(e2e_post "$body")
    [[ ${answer%% *} == "$status" ]] || e2e_fail "$what: answered ${answer%% *}, not $status: ${answer#* }"
    e2e_expect "$what" "${answer#* }" ".error.code == \"$code\" and (.error.message | length > 0)"
    e2e_ok "$what -> $status $code"
}
expect_refused "not JSON" 400 invalid_json 'this is not json'
expect_refused "missing text" 400 invalid_field '{"user_id": "cust-1"}'
expect_refused "missing user" 400 invalid_field '{"text": "hello"}'
expect_refused "text of the wrong type" 400 invalid_field '{"user_id": "cust-1", "text": 42}'
expect_refused "unknown field" 400 invalid_field '{"user_id": "cust-1", "text": "hi", "admin": true}'
expect_refused "text over the limit" 400 invalid_field "$(jq -cn --arg t "$(head -c 2001 /dev/zero | tr '\0' a)" '{user_id: "cust-1", text: $t}')"
expect_refused "invalid UTF-8" 400 invalid_json "$(printf '{"user_id": "cust-1", "text": "caf\xc3\x28"}')"
expect_refused "body too large" 413 too_large "$(jq -cn --arg t "$(head -c 70000 /dev/zero | tr '\0' a)" '{user_id: "cust-1", text: $t}')"
[[ $(e2e_psql -c "SELECT count(*) FROM requests") == "$before" ]] || e2e_fail "a refused request was recorded"
status=$(curl -s -o /dev/null -w '%{http_code}' "$E2E_API/v1/requests/r-doesnotexist")
[[ $status == 404 ]] || e2e_fail "GET of an unknown request answered $status"
status=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$E2E_API/v1/requests")
[[ $status == 405 ]] || e2e_fail "DELETE answered $status"
e2e_ok "bad input refused"

# Health, readiness and probes, direct and through the orchestrator.
[[ $(curl -s "$E2E_API/healthz" | jq -r .status) == ok ]] || e2e_fail "healthz"
[[ $(curl -s "$E2E_API/readyz" | jq -r .status) == ready ]] || e2e_fail "readyz"
for service in orchestrator intent gatherer decision responder; do
    line=$("$CONVEYOR_BIN/conveyor" probe "$service" --orchestrator "$E2E_CONTROL") || e2e_fail "probe $service: $line"
    e2e_expect "probe $service" "$line" ".ok == true and .service == \"$service\""
done
line=$("$CONVEYOR_BIN/conveyor" probe "$E2E_CONTROL") || e2e_fail "direct probe of the orchestrator: $line"
e2e_ok "probes"

# The gatherer reads the bank as its read-only role, never as the tables' owner.
sessions=$(e2e_psql -c "SELECT string_agg (DISTINCT usename, ',') FROM pg_stat_activity
                         WHERE application_name = 'gatherer-1' AND datname = current_database ()")
[[ $sessions == conveyor_gatherer ]] || e2e_fail "the gatherer's sessions are of '$sessions', not conveyor_gatherer"
e2e_ok "the gatherer connects as conveyor_gatherer"

# A second copy of a worker needs no configuration: it connects and takes its share.
"$CONVEYOR_BIN/conveyor-intent" --instance intent-2 --verbose >>"$E2E_DIR/intent-2.log" 2>&1 &
E2E_PIDS[intent-2]=$!
two_intents() { [[ $(curl -s "$E2E_API/readyz" | jq .checks.intent) == 2 ]]; }
e2e_wait 20 "a second intent worker" two_intents
for text in "I lost my card" "Where is my card?" "My top-up failed"; do
    e2e_expect "with two intent workers" "$(e2e_ask cust-1 "$text")" '.status == "done"'
done
# Least recently used first: the newcomer, which has served nothing, takes the next request.
grep -q 'intent_request answered' "$E2E_DIR/intent-2.log" || e2e_fail "the second intent worker served nothing"
e2e_ok "a second worker joined without configuration"
e2e_log "PASS"
