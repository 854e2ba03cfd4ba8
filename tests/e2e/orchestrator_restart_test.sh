#!/usr/bin/env bash
# End to end: the orchestrator killed with SIGKILL after the intent checkpoint, then restarted.
# The request resumes from its last checkpoint, completes, and has no duplicate checkpoints.
# No gatherer runs at first, so the request waits after its intent stage without any sleep.
source "$(dirname "$0")/lib.sh"
e2e_setup orchestrator_restart

e2e_start_orchestrator
e2e_start_worker intent intent-1
e2e_start_worker decision decision-1
e2e_start_worker responder responder-1
e2e_start_worker executor executor-1
probe_ok() { "$CONVEYOR_BIN/conveyor" probe "$1" --orchestrator "$E2E_CONTROL" --timeout-ms 1000; }
e2e_wait 30 "the intent worker" probe_ok intent

curl -sS -m 60 -o /dev/null -X POST "$E2E_API/v1/requests" \
    -d '{"user_id": "cust-1", "text": "Why is my transfer still pending?"}' 2>/dev/null &
client=$!

intent_checkpointed() { [[ $(e2e_psql -c "SELECT count(*) FROM checkpoints WHERE seq = 1") == 1 ]]; }
e2e_wait 20 "the intent checkpoint" intent_checkpointed
id=$(e2e_psql -c "SELECT request_id FROM checkpoints WHERE seq = 1")
[[ $(e2e_psql -c "SELECT count(*) FROM checkpoints WHERE request_id = '$id'") == 1 ]] ||
    e2e_fail "request $id went past its intent stage without a gatherer"
e2e_ok "request $id checkpointed its intent"

e2e_kill orchestrator KILL
wait "$client" 2>/dev/null || true
e2e_ok "orchestrator killed"

e2e_start_worker gatherer gatherer-1
e2e_start_orchestrator
e2e_wait_ready

done_request() { [[ $(curl -s "$E2E_API/v1/requests/$id" | jq -r .status) == done ]]; }
e2e_wait 30 "request $id to complete after the restart" done_request
document=$(curl -sS "$E2E_API/v1/requests/$id")
e2e_expect "resumed request" "$document" \
    '.intent.name == "pending_transfer" and (.reply.text | contains("Sean Murphy")) and ([.checkpoints[].seq] == [1,2,3,5])'
[[ $(e2e_psql -c "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM checkpoints WHERE request_id = '$id'") == "1,2,3,5" ]] ||
    e2e_fail "request $id has duplicate or missing checkpoints"
[[ $(e2e_psql -c "SELECT status FROM requests WHERE id = '$id'") == done ]] || e2e_fail "request $id is not done in the database"
grep -q "resuming at stage gather" "$E2E_DIR/orchestrator.log" || e2e_fail "the orchestrator did not log the resume"
e2e_ok "request $id completed after the restart, each checkpoint once (no actions: no execute)"
e2e_log "PASS"
