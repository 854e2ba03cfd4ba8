#!/usr/bin/env bash
# Chaos: one copy of a worker stopped with SIGSTOP for longer than heartbeat x liveness under load,
# then continued with SIGCONT; once for each service. The broker counts the stopped copy as dead
# and sends its stages to the other copy; once continued, the stopped copy reconnects and takes
# work again. Before that, both copies of one service are stopped for longer than the request
# deadline: requests are still answered, honestly, within it (their decide stage failed). Nothing
# is left running and no checkpoint is written twice.
source "$(dirname "$0")/lib.sh"
chaos_setup stop
# A short request deadline, so that requests waiting for a service whose copies are all stopped
# give up on it within seconds; recovery rounds often, so that some run while requests fail.
chaos_start_stack --request-timeout-ms 2000 --recovery-interval-ms 100

load_s=24
chaos_bench_start -c 8 -d "$load_s" --timeout-ms 20000
chaos_witness_start "$load_s" 1
chaos_for 2
# The broker's view of SERVICE, in readiness: the copies it counts alive.
workers_of() { curl -s -m 5 "$E2E_API/readyz" | jq -r ".checks.$1" 2>/dev/null; }
# (The functions e2e_wait polls see the caller's variables: not "name", which it declares.)

# First both copies of the decision worker, for longer than the request deadline: the requests
# waiting for them are answered all the same when their decide stage gives up, before the
# request's deadline (200, their rows stage_failed, none left running), and once both are
# continued they reconnect and serve.
stage_failed() { chaos_count "SELECT count(*) FROM requests WHERE status = 'stage_failed' AND error LIKE 'decision%'"; }
failed_before=$(stage_failed)
kill -STOP "${E2E_PIDS[decision-1]}" "${E2E_PIDS[decision-2]}"
e2e_log "stopped decision-1 and decision-2 with SIGSTOP"
# Meanwhile requests keep arriving at a steady rate (open loop), so that they fail one by one,
# not in the waves of the closed loop, while recovery rounds come and go.
"$CONVEYOR_BIN/conveyor" bench --url "$E2E_API" --json --rate 40 -d 3 -c 100 --timeout-ms 10000 \
    >"$E2E_DIR/bench-stopped.json" 2>"$E2E_DIR/bench-stopped.err" || true
e2e_expect "requests while both decision workers are stopped" "$(cat "$E2E_DIR/bench-stopped.json")" \
    '.requests > 0 and .answered == .requests and .errors.total == 0'
some_failed() { [[ $(stage_failed) -ge $((failed_before + 24)) ]]; }
e2e_wait 30 "requests answered although their decide stage failed" some_failed
kill -CONT "${E2E_PIDS[decision-1]}" "${E2E_PIDS[decision-2]}"
e2e_log "continued decision-1 and decision-2 with SIGCONT"
e2e_wait 15 "both decision workers to reconnect" chaos_workers_ready 2
deadline_failures=$(($(stage_failed) - failed_before))

stopped=""
for service in "${CHAOS_SERVICES[@]}"; do
    victim=$service-$((RANDOM % 2 + 1))
    kill -STOP "${E2E_PIDS[$victim]}"
    stopped_ms=$(date +%s%3N)
    e2e_log "stopped $victim with SIGSTOP"
    # Its copy runs on: one alive in readiness means the stopped one is counted dead.
    counted_dead() { [[ $(workers_of "$service") == 1 ]]; }
    e2e_wait 15 "the broker to count $victim as dead" counted_dead
    chaos_for 0.5
    kill -CONT "${E2E_PIDS[$victim]}"
    held_ms=$(($(date +%s%3N) - stopped_ms))
    e2e_log "continued $victim with SIGCONT after ${held_ms} ms"
    [[ $held_ms -gt $((E2E_HEARTBEAT_MS * 3)) ]] || e2e_fail "$victim was stopped ${held_ms} ms only"
    back() { chaos_worker_serving "$victim" && chaos_workers_ready 2; }
    e2e_wait 15 "$victim to reconnect" back
    e2e_log "$victim reconnected"
    stopped="$stopped $victim(${held_ms}ms)"
    chaos_for 0.5
done
requeued=$(chaos_log_count orchestrator "failed: missed heartbeats")
[[ $requeued -ge 1 ]] || e2e_fail "no stage of a stopped worker was sent to the other copy"
chaos_finish "" "both decision workers stopped: $deadline_failures requests answered after their decide stage failed; stopped$stopped; stages sent again after missed heartbeats $requeued, late replies dropped $(chaos_log_count orchestrator "dropped a late or unknown reply")"
e2e_log "PASS"
