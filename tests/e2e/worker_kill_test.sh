#!/usr/bin/env bash
# End to end: a gatherer killed with SIGKILL in the middle of a request while a second copy runs.
# The broker notices the missed heartbeats and sends the stage to the other copy; the request
# completes. To hold the request inside the first gatherer without sleeping, the test locks the
# table its tool reads and waits until PostgreSQL shows that gatherer waiting for the lock.
source "$(dirname "$0")/lib.sh"
e2e_setup worker_kill
# Tool timeouts long enough that the blocked query waits for the kill rather than timing out.
sed 's/timeout_ms: 1000/timeout_ms: 30000/' "$CONVEYOR_SOURCE_DIR/deploy/config/bank-agent.yaml" >"$E2E_DIR/agent.yaml"
export CONVEYOR_AGENT_FILE=$E2E_DIR/agent.yaml

e2e_start_orchestrator --attempt-timeout-ms 60000
e2e_start_worker intent intent-1
e2e_start_worker decision decision-1
e2e_start_worker responder responder-1
e2e_start_worker executor executor-1
e2e_start_worker gatherer gatherer-a
e2e_wait_ready

# Hold an exclusive lock on bank.cards in a session of our own.
coproc LOCKER { psql -X -q -At -d "$CONVEYOR_DATABASE_URL" 2>&1; }
echo "BEGIN; LOCK TABLE bank.cards IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&"${LOCKER[1]}"
read -r -t 10 line <&"${LOCKER[0]}" || e2e_fail "could not lock bank.cards"
[[ $line == locked ]] || e2e_fail "lock: $line"

curl -sS -m 60 -o "$E2E_DIR/answer" -w '%{http_code}' -X POST "$E2E_API/v1/requests" \
    -d '{"user_id": "cust-1", "text": "I lost my card"}' >"$E2E_DIR/status" &
client=$!

blocked() {
    [[ $(e2e_psql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gatherer-a' AND wait_event_type = 'Lock'") -ge 1 ]]
}
e2e_wait 20 "gatherer-a to wait on the lock" blocked
e2e_ok "the request is inside gatherer-a"

e2e_start_worker gatherer gatherer-b
two_gatherers() { [[ $(curl -s "$E2E_API/readyz" | jq .checks.gatherer) == 2 ]]; }
e2e_wait 20 "gatherer-b to connect" two_gatherers

e2e_kill gatherer-a KILL
e2e_ok "gatherer-a killed"
echo "COMMIT; \\q" >&"${LOCKER[1]}"

wait "$client" || true
status=$(cat "$E2E_DIR/status")
answer=$(cat "$E2E_DIR/answer")
[[ $status == 200 ]] || e2e_fail "the request answered $status: $answer"
e2e_expect "completed after the kill" "$answer" \
    '.status == "done" and .intent.name == "lost_or_stolen_card" and .decision.outcome == "freeze_card" and ([.evidence.tools[].status] | all(. == "ok"))'
id=$(jq -r .request_id <<<"$answer")
[[ $(e2e_psql -c "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM checkpoints WHERE request_id = '$id'") == "1,2,3,4,5" ]] ||
    e2e_fail "request $id does not have checkpoints 1..5"
grep -q 'gather attempt 1 failed\|gatherer attempt 1 failed' "$E2E_DIR/orchestrator.log" ||
    e2e_fail "the orchestrator did not log the failed first attempt"
e2e_ok "the request completed on gatherer-b"
e2e_log "PASS"
