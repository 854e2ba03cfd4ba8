#!/usr/bin/env bash
# Chaos: two copies of every worker under steady load; every 2-3 s a random worker is killed with
# SIGKILL and started again. The broker notices the missed heartbeats and sends the lost stages to
# the other copy: every request ends with an answer or a clear status, none is left running, no
# checkpoint is written twice, and the stack serves normally once the kills stop.
source "$(dirname "$0")/lib.sh"
chaos_setup workers
chaos_start_stack

load_s=20
chaos_bench_start -c 8 -d "$load_s" --timeout-ms 20000
chaos_witness_start "$load_s" 1
started=$SECONDS
names=()
for service in "${CHAOS_SERVICES[@]}"; do names+=("$service-1" "$service-2"); done
kills=0
while [[ $((SECONDS - started)) -lt $((load_s - 3)) ]]; do
    chaos_for "2.$((RANDOM % 10))"
    name=${names[RANDOM % ${#names[@]}]}
    # Its sibling must serve, so that one copy of the service is always there to take the work.
    sibling=${name%-*}-$((3 - ${name##*-}))
    e2e_wait 20 "$sibling to serve" chaos_worker_serving "$sibling"
    e2e_kill "$name" KILL
    kills=$((kills + 1))
    chaos_start_worker "${name%-*}" "$name"
    e2e_log "killed $name with SIGKILL and started it again (kill $kills)"
done
[[ $kills -ge 5 ]] || e2e_fail "only $kills kills in ${load_s}s"
removed=$(chaos_log_count orchestrator "removed: missed heartbeats")
[[ $removed -ge 1 ]] || e2e_fail "the broker never noticed a killed worker"
chaos_finish "" "kills $kills, workers removed on missed heartbeats $removed, stages sent again $(chaos_log_count orchestrator "attempt 1 failed")"
e2e_log "PASS"
