#!/usr/bin/env bash
# Chaos: exactly once, at each point around an action where a process can die. A customer reports
# a lost card; the executor (conveyor-executor-crashes), or separately the orchestrator
# (conveyor-orchestrator-crashes), kills itself with SIGKILL at one crash point (common/cv_crash.h):
#   executor.before_side_effect       it has the action, its row committed; the bank not yet asked
#   executor.after_side_effect        the bank froze the card; the executor has not answered
#   orchestrator.before_actions_recorded  the decision arrived; its actions' rows not written
#   orchestrator.before_execute       the actions' rows committed; not yet sent to an executor
#   orchestrator.after_action_results the executor answered; the execute checkpoint not written
#   orchestrator.after_execute_checkpoint  the outcome committed; the reply not yet asked for
# A healthy copy takes over (the broker resends the stage, or recovery resumes the request), and
# then, from the bank's own tables: the card is frozen, its idempotency key applied once, the
# action's row done (replayed where the bank had applied the key before the crash), the request
# done with one checkpoint of each stage, and the reply the one for a freeze that was done.
# Then two copies of a worker at work on the same stage at once: a decision worker, then an
# executor, hangs (SIGSTOP at decision.before_reply, at executor.after_side_effect) with the stage,
# the broker gives it to a second copy, and the first is continued: its late answer is dropped,
# and the freeze is still done once.
source "$(dirname "$0")/lib.sh"
chaos_setup crash_points
e2e_start_bankapi
for service in intent gatherer responder; do
    e2e_start_worker "$service" "$service-1"
done
e2e_start_worker decision decision-1

# Customers with an active card, one per crash point.
mapfile -t customers < <(e2e_psql -c "SELECT customer_id FROM bank.cards WHERE status = 'active'
                                       GROUP BY customer_id ORDER BY customer_id LIMIT 8")
[[ ${#customers[@]} -eq 8 ]] || e2e_fail "the demo bank has fewer than 8 customers with an active card"

# wait_died NAME: NAME's process has ended (it was expected to kill itself); forgets it.
wait_died() {
    local deadline=$((SECONDS + 30))
    while kill -0 "${E2E_PIDS[$1]}" 2>/dev/null; do
        [[ $SECONDS -lt $deadline ]] || e2e_fail "$1 did not die at its crash point within 30 s"
        sleep 0.05
    done
    wait "${E2E_PIDS[$1]}" 2>/dev/null || true
    unset "E2E_PIDS[$1]"
}
# workers SERVICE N: readiness counts N workers of SERVICE.
workers() { [[ $(curl -s -m 5 "$E2E_API/readyz" | jq -r ".checks.$1") == "$2" ]]; }
executors() { workers executor "$1"; }
# stopped NAME: NAME's process is stopped (SIGSTOP at its crash point).
stopped() { [[ $(awk '{ print $3 }' "/proc/${E2E_PIDS[$1]}/stat" 2>/dev/null) == T ]]; }

# check_frozen CUSTOMER ID REPLAYED: request ID froze CUSTOMER's card once, and says so.
check_frozen() {
    local customer=$1 id=$2 replayed=$3 document key
    document=$(curl -sS "$E2E_API/v1/requests/$id")
    e2e_expect "$point: the request" "$document" \
        ".status == \"done\" and .decision.rule == \"lost_card_freeze\" and .reply.template == \"lost_card_freeze.done\"
         and (.decision.actions[0] | .status == \"done\" and .replayed == $replayed)
         and ([.checkpoints[].seq] == [1,2,3,4,5])"
    key="$id:$(jq -r '.decision.actions[0].id' <<<"$document")"
    [[ $(e2e_psql -c "SELECT count(*) FROM bank.applied_actions WHERE params->>'customer_id' = '$customer'") == 1 ]] ||
        e2e_fail "$point: $customer's actions were applied $(e2e_psql -c "SELECT count(*) FROM bank.applied_actions WHERE params->>'customer_id' = '$customer'") times"
    [[ $(e2e_psql -c "SELECT outcome FROM bank.applied_actions WHERE idempotency_key = '$key'") == done ]] ||
        e2e_fail "$point: the bank has no done outcome under $key"
    [[ $(e2e_psql -c "SELECT status FROM bank.cards WHERE id = '$(jq -r '.decision.actions[0].result.card_id' <<<"$document")'") == frozen ]] ||
        e2e_fail "$point: the card is not frozen"
    [[ $(e2e_psql -c "SELECT status || ':' || replayed FROM actions WHERE request_id = '$id'") == "done:$replayed" ]] ||
        e2e_fail "$point: the action's row: $(e2e_psql -c "SELECT * FROM actions WHERE request_id = '$id'")"
    [[ $(e2e_psql -c "SELECT count(*) FROM requests WHERE user_id = '$customer'") == 1 ]] ||
        e2e_fail "$point: $customer's request ran more than once"
}

# The executor dies; the broker resends the stage to a healthy one.
e2e_start_orchestrator
n=0
for point in executor.before_side_effect executor.after_side_effect; do
    customer=${customers[n]}
    n=$((n + 1))
    CONVEYOR_CRASH_AT=$point e2e_start_worker executor-crashes "crash-$n"
    e2e_wait 30 "the crashing executor to register" executors 1
    curl -sS -m 60 -o "$E2E_DIR/answer-$n" -w '%{http_code}' -X POST "$E2E_API/v1/requests" -H 'Content-Type: application/json' \
        --data-binary "$(jq -cn --arg u "$customer" '{user_id: $u, text: "I lost my card", idempotency_key: "crash"}')" \
        >"$E2E_DIR/status-$n" &
    client=$!
    wait_died "crash-$n"
    e2e_log "the executor died at $point"
    e2e_start_worker executor "executor-$n"
    wait "$client" || true
    [[ $(cat "$E2E_DIR/status-$n") == 200 ]] || e2e_fail "$point: $(cat "$E2E_DIR/status-$n") $(cat "$E2E_DIR/answer-$n")"
    replayed=false
    [[ $point == executor.after_side_effect ]] && replayed=true
    check_frozen "$customer" "$(jq -r .request_id "$E2E_DIR/answer-$n")" "$replayed"
    e2e_kill "executor-$n"
    e2e_ok "$point: the freeze was done once$([[ $replayed == true ]] && echo ', the retry a replay')"
done
e2e_kill orchestrator

# The orchestrator dies; started again, recovery resumes the request from its last checkpoint.
e2e_start_worker executor executor-0
for point in orchestrator.before_actions_recorded orchestrator.before_execute orchestrator.after_action_results \
             orchestrator.after_execute_checkpoint; do
    customer=${customers[n]}
    n=$((n + 1))
    body=$(jq -cn --arg u "$customer" '{user_id: $u, text: "I lost my card", idempotency_key: "crash"}')
    E2E_ORCHESTRATOR=conveyor-orchestrator-crashes CONVEYOR_CRASH_AT=$point e2e_start_orchestrator
    e2e_wait_ready
    e2e_post "$body" >/dev/null # no answer: the orchestrator dies under it
    wait_died orchestrator
    e2e_log "the orchestrator died at $point"
    e2e_start_orchestrator
    e2e_wait_ready
    # The same key: the request the crash interrupted, resumed by recovery, not a second one.
    answer=$(e2e_post "$body")
    [[ ${answer%% *} =~ ^20[02]$ ]] || e2e_fail "$point: the same key after the restart: $answer"
    id=$(jq -r .request_id <<<"${answer#* }")
    finished() { [[ $(curl -s "$E2E_API/v1/requests/$id" | jq -r .status) == done ]]; }
    e2e_wait 30 "$point: request $id to finish" finished
    replayed=false
    [[ $point == orchestrator.after_action_results ]] && replayed=true
    check_frozen "$customer" "$id" "$replayed"
    e2e_kill orchestrator
    e2e_ok "$point: the freeze was done once$([[ $replayed == true ]] && echo ', the retry a replay')"
done

# Two copies on one stage at once. An attempt times out after a second: the stage goes to the
# second copy while the first still holds it, both sides counting the hung copy alive for 20 s
# of missed heartbeats, so that it keeps its place and sends its answer when continued.
e2e_start_orchestrator --attempt-timeout-ms 1000 --heartbeat-ms 200 --liveness 100
for point in decision.before_reply executor.after_side_effect; do
    customer=${customers[n]}
    n=$((n + 1))
    service=${point%%.*}
    # the healthy copy of the service so far goes: the hanging one is the only one at first
    case $service in decision) e2e_kill decision-1 ;; executor) e2e_kill executor-0 ;; esac
    CONVEYOR_CRASH_AT=$point:stop e2e_start_worker "$service-crashes" "hung-$n" --liveness 100
    e2e_wait 30 "the hanging $service to register" workers "$service" 1
    curl -sS -m 60 -o "$E2E_DIR/answer-$n" -w '%{http_code}' -X POST "$E2E_API/v1/requests" -H 'Content-Type: application/json' \
        --data-binary "$(jq -cn --arg u "$customer" '{user_id: $u, text: "I lost my card"}')" >"$E2E_DIR/status-$n" &
    client=$!
    e2e_wait 30 "the $service to hang at $point" stopped "hung-$n"
    e2e_log "the $service hangs at $point"
    e2e_start_worker "$service" "$service-$n"
    wait "$client" || true
    [[ $(cat "$E2E_DIR/status-$n") == 200 ]] || e2e_fail "$point: $(cat "$E2E_DIR/status-$n") $(cat "$E2E_DIR/answer-$n")"
    id=$(jq -r .request_id "$E2E_DIR/answer-$n")
    # The hung copy goes on: its answer comes late, to a stage that has moved on.
    kill -CONT "${E2E_PIDS[hung-$n]}"
    stage=decide
    [[ $service == executor ]] && stage=execute
    late() { grep -F "dropped a late or unknown reply $id.$stage.1 from hung-$n" "$E2E_DIR/orchestrator.log"; }
    e2e_wait 30 "the continued $service's late answer to be dropped" late
    replayed=false
    [[ $service == executor ]] && replayed=true
    check_frozen "$customer" "$id" "$replayed"
    [[ $(e2e_psql -c "SELECT count(*) FROM actions WHERE request_id = '$id'") == 1 ]] ||
        e2e_fail "$point: the late answer added actions"
    e2e_kill "hung-$n"
    e2e_ok "$point: two copies at once, the freeze done once$([[ $replayed == true ]] && echo ', the second a replay')"
done
e2e_log "PASS"
