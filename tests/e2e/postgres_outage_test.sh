#!/usr/bin/env bash
# End to end: PostgreSQL stopped under a running stack, then started again. While it is away, new
# requests are refused with 503 and Retry-After (nothing is accepted that could not be
# checkpointed), readiness and probes say why; when it is back, the stack serves again without a
# restart of any process.
source "$(dirname "$0")/lib.sh"
e2e_setup postgres_outage
e2e_private_pg
export CONVEYOR_OPERATOR_TOKEN=outage-operator
e2e_start_stack

e2e_expect "before the outage" "$(e2e_ask cust-1 'I lost my card')" '.status == "done"'

"$CONVEYOR_SOURCE_DIR/deploy/local/pg" stop "$E2E_PRIVATE_PG" 2>>"$E2E_DIR/pg.log"
e2e_ok "PostgreSQL stopped"

headers=$(curl -sS -D - -o "$E2E_DIR/body" -X POST "$E2E_API/v1/requests" -d '{"user_id": "cust-1", "text": "Where is my card?"}')
grep -q '^HTTP/1.1 503' <<<"$headers" || e2e_fail "POST during the outage: $headers"
grep -qi '^Retry-After: 1' <<<"$headers" || e2e_fail "no Retry-After during the outage: $headers"
e2e_expect "POST during the outage" "$(cat "$E2E_DIR/body")" '.error.code == "store_unavailable"'
e2e_ok "a new request is refused with 503 and Retry-After"

# The approvals queue and a decision on it are refused the same way: nothing is decided unrecorded.
for call in "GET /v1/approvals" "POST /v1/requests/r-any/approve"; do
    headers=$(curl -sS -D - -o "$E2E_DIR/body" -X "${call% *}" "$E2E_API${call#* }" -H "Authorization: Bearer $CONVEYOR_OPERATOR_TOKEN" \
        -H 'Content-Type: application/json' -d '{"approver": "alice"}')
    grep -q '^HTTP/1.1 503' <<<"$headers" || e2e_fail "$call during the outage: $headers"
    grep -qi '^Retry-After: 1' <<<"$headers" || e2e_fail "no Retry-After for $call during the outage: $headers"
    e2e_expect "$call during the outage" "$(cat "$E2E_DIR/body")" '.error.code == "store_unavailable"'
done
e2e_ok "the approvals are refused with 503 and Retry-After"

readyz=$(curl -s -w ' %{http_code}' "$E2E_API/readyz")
[[ ${readyz##* } == 503 ]] || e2e_fail "readyz during the outage answered ${readyz##* }"
e2e_expect "readyz names PostgreSQL" "${readyz% *}" '.status == "not_ready" and (.checks.postgresql | contains("failed"))'
for service in orchestrator gatherer; do
    if line=$("$CONVEYOR_BIN/conveyor" probe "$service" --orchestrator "$E2E_CONTROL"); then
        e2e_fail "probe $service passed with PostgreSQL down: $line"
    fi
    e2e_expect "probe $service during the outage" "$line" '.ok == false and (.detail | length > 0)'
done
e2e_ok "readiness and probes report the outage"

"$CONVEYOR_SOURCE_DIR/deploy/local/pg" start "$E2E_PRIVATE_PG" "$E2E_PG_PORT" 2>>"$E2E_DIR/pg.log" ||
    e2e_fail "PostgreSQL did not start again"
e2e_wait_ready
e2e_expect "after the outage" "$(e2e_ask cust-1 'Where is my card?')" \
    '.status == "done" and .intent.name == "card_arrival" and ([.evidence.tools[].status] | all(. == "ok"))'
e2e_ok "served again once PostgreSQL was back, with no restart"
e2e_log "PASS"
