#!/usr/bin/env bash
# End to end: a request's cost budget and its limit on stage attempts. With the whole stack and a
# real PostgreSQL, and the demo agent, whose FX look-up (fx_rate, an http tool of the bank API) costs
# 0.001 a call:
#   - An exchange-rate question with a budget below one call: the FX service is never called, the
#     request stops over_budget, and the reply says it could not be finished here, as does the
#     request read back from its checkpoints.
#   - The same question with room for the call: answered, the call's cost in the document; then
#     again with no room, answered from the gatherer's cache, which costs nothing.
#   - A hung gatherer under an orchestrator that allows 5 stage attempts a request (and 5 a
#     stage): the gather stage's attempts use up the rest, the request stops out_of_attempts, and
#     its reply still comes, within the request's deadline; read back, it counts the same attempts.
#   - A hung gatherer whose attempt outlasts the request's deadline: the gather stage fails at the
#     deadline less the reply's reserve, and the reply says honestly that the look-up could not be
#     done, within the request's deadline; read back from its checkpoints and its row, the same.
source "$(dirname "$0")/lib.sh"
e2e_setup limits
e2e_start_bankapi --verbose
e2e_start_orchestrator
for service in intent gatherer decision executor responder; do
    e2e_start_worker "$service" "$service-1"
done
e2e_wait_ready

fx_calls() { grep -c 'GET /v1/fx/' "$E2E_DIR/bankapi.log" || true; }
ask() { e2e_post "$(jq -cn --arg t "$1" --argjson b "$2" '{user_id: "cust-1", text: $t, budget: $b}')"; }
question="What is the exchange rate for USD?"

# 1. A budget below one FX call: not called, stopped, told.
answer=$(ask "$question" 0.0005)
[[ ${answer%% *} == 200 ]] || e2e_fail "over budget: ${answer%% *} ${answer#* }"
answer=${answer#* }
id=$(jq -r .request_id <<<"$answer")
e2e_expect "over budget" "$answer" \
    '.status == "over_budget" and .stopped == "over_budget" and (.decision | not)
     and (.evidence.tools[] | select(.name == "fx_rate") | .status == "over_budget" and .attempts == 0 and .cost == 0)
     and .cost.total == 0 and .cost.budget == 0.0005'
e2e_expect "over budget: reply" "$answer" \
    '.reply.template == "stopped.over_budget" and (.reply.text | contains("Help in the app"))'
[[ $(fx_calls) == 0 ]] || e2e_fail "the FX service was called $(fx_calls) times over budget"
e2e_expect "over budget, read back" "$(curl -sS "$E2E_API/v1/requests/$id")" \
    '.status == "over_budget" and .stopped == "over_budget" and .reply.template == "stopped.over_budget"
     and ([.checkpoints[].stage] == ["intent", "gather", "respond"])'
[[ $(e2e_psql -c "SELECT status || ':' || budget_micros FROM requests WHERE id = '$id'") == over_budget:500 ]] ||
    e2e_fail "the request's row: $(e2e_psql -c "SELECT status, budget_micros FROM requests WHERE id = '$id'")"
e2e_ok "a request that would overspend stops before the call, and says so"

# 2. Room for the call: answered and charged; then the cached answer, free.
answer=$(ask "$question" 0.01)
[[ ${answer%% *} == 200 ]] || e2e_fail "within budget: ${answer%% *} ${answer#* }"
e2e_expect "within budget" "${answer#* }" \
    '.status == "done" and .decision.rule == "fx_rate" and .cost.tools == 0.001 and .cost.total == 0.001
     and (.evidence.tools[] | select(.name == "fx_rate") | .status == "ok" and .cost == 0.001)'
[[ $(fx_calls) == 1 ]] || e2e_fail "the FX service was called $(fx_calls) times, not once"
answer=$(ask "$question" 0)
[[ ${answer%% *} == 200 ]] || e2e_fail "cached: ${answer%% *} ${answer#* }"
e2e_expect "cached" "${answer#* }" \
    '.status == "done" and .decision.rule == "fx_rate" and .cost.total == 0
     and (.evidence.tools[] | select(.name == "fx_rate") | .cached)'
[[ $(fx_calls) == 1 ]] || e2e_fail "the cached answer called the FX service"
e2e_ok "a paid call within the budget is charged; a cached one is free"

# 3. Five stage attempts a request, a gatherer that never answers: the intent takes one, the
# gather stage the other four, and the reply goes past the limit. Its heartbeats stopped with it:
# a long liveness keeps it counted as alive, so every attempt goes to it and times out.
e2e_kill orchestrator
e2e_start_orchestrator --request-attempts 5 --max-attempts 5 --attempt-timeout-ms 500 --liveness 100
e2e_wait_ready
kill -STOP "${E2E_PIDS[gatherer-1]}"
started=$SECONDS
answer=$(e2e_post '{"user_id": "cust-1", "text": "I lost my card"}')
kill -CONT "${E2E_PIDS[gatherer-1]}"
[[ ${answer%% *} == 200 ]] || e2e_fail "out of attempts: ${answer%% *} ${answer#* }"
answer=${answer#* }
id=$(jq -r .request_id <<<"$answer")
e2e_expect "out of attempts" "$answer" \
    '.status == "out_of_attempts" and .stopped == "out_of_attempts" and .attempts.limit == 5
     and .attempts.used >= 6 and (.evidence | not) and (.decision | not)
     and .reply.template == "stopped.out_of_attempts"'
((SECONDS - started < 15)) || e2e_fail "the reply took $((SECONDS - started)) s, past the request's deadline"
used=$(jq .attempts.used <<<"$answer")
e2e_expect "out of attempts, read back" "$(curl -sS "$E2E_API/v1/requests/$id")" \
    ".status == \"out_of_attempts\" and .reply.template == \"stopped.out_of_attempts\" and .attempts.used == $used
     and ([.checkpoints[].stage] == [\"intent\", \"respond\"])"
[[ $(e2e_psql -c "SELECT status FROM requests WHERE id = '$id'") == out_of_attempts ]] ||
    e2e_fail "the request's row does not say out_of_attempts"
[[ $(e2e_psql -c "SELECT count(*) FROM bank.applied_actions") == 0 ]] || e2e_fail "a stopped request acted"
grep -q "stopped after [0-9]* stage attempts" "$E2E_DIR/orchestrator.log" || e2e_fail "no log line says why it stopped"
e2e_ok "a request that used up its attempts stops, and its reply still comes"

# 4. A gatherer that never answers, an attempt longer than the request: the gather stage gives up
# at the request's deadline less the reply's reserve (1 s of 3), and the reply says why.
e2e_kill orchestrator
e2e_start_orchestrator --request-timeout-ms 3000 --attempt-timeout-ms 60000 --liveness 100
e2e_wait_ready
kill -STOP "${E2E_PIDS[gatherer-1]}"
started_ms=$(date +%s%3N)
answer=$(e2e_post '{"user_id": "cust-1", "text": "I lost my card"}')
took_ms=$(($(date +%s%3N) - started_ms))
kill -CONT "${E2E_PIDS[gatherer-1]}"
[[ ${answer%% *} == 200 ]] || e2e_fail "gather timed out: ${answer%% *} ${answer#* }"
answer=${answer#* }
id=$(jq -r .request_id <<<"$answer")
honest='.status == "stage_failed" and .stopped == "stage_failed" and .failed_stage == "gather"
        and (.error.message | contains("deadline passed")) and .intent.name == "lost_or_stolen_card"
        and (.evidence | not) and (.decision | not) and .reply.template == "stopped.stage_failed.gather"
        and (.reply.text | startswith("I couldn'"'"'t look up your details just now"))
        and .reply.steps == [{"rung": "template", "name": "stopped.stage_failed.gather"}] and (.reply.escalated | not)'
e2e_expect "gather timed out" "$answer" "$honest"
e2e_expect "gather timed out, read back" "$(curl -sS "$E2E_API/v1/requests/$id")" \
    "$honest and ([.checkpoints[].stage] == [\"intent\", \"respond\"])"
[[ $(e2e_psql -c "SELECT status FROM requests WHERE id = '$id' AND error LIKE 'gatherer: deadline passed%'") == stage_failed ]] ||
    e2e_fail "the request's row: $(e2e_psql -c "SELECT status, error FROM requests WHERE id = '$id'")"
grep -q "stage gather failed: gatherer: deadline passed" "$E2E_DIR/orchestrator.log" || e2e_fail "no log line says the stage failed"
# (A 200 is the proof of the deadline: past it the request would have failed with 504.)
e2e_ok "a gatherer that times out still gets the customer an honest reply, within the deadline (answered in ${took_ms} ms)"
