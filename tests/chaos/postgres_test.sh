#!/usr/bin/env bash
# Chaos: PostgreSQL restarted (fast shutdown, then start) under load, on the test's own cluster.
# While it is away, requests are answered 503 with Retry-After: refused before anything was
# recorded, or parked with their request id and resumed when the store is back. Afterwards none is
# left running, no checkpoint is written twice, and new requests succeed, their SQL tools
# included, within seconds of PostgreSQL being back, with no process restarted.
source "$(dirname "$0")/lib.sh"
chaos_setup postgres
# The cluster lives in the test's folder and goes with it: run as root, deploy/local/pg moves it
# to /var/tmp (where nothing removes it) unless the postgres OS user can enter the folder.
chmod o+x "$E2E_DIR"
e2e_private_pg
chaos_start_stack

load_s=10
chaos_bench_start -c 6 -d "$load_s" --timeout-ms 20000
chaos_witness_start "$load_s" 1
chaos_witness_start "$load_s" 1 keyed
some_done() { [[ $(chaos_count "SELECT count(*) FROM requests WHERE status = 'done'") -ge 20 ]]; }
e2e_wait 20 "requests to be answered before the restart" some_done
chaos_for 0.5

outage_started_ms=$(date +%s%3N)
stopped_at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
"$CONVEYOR_SOURCE_DIR/deploy/local/pg" stop "$E2E_PRIVATE_PG" 2>>"$E2E_DIR/pg.log" || e2e_fail "PostgreSQL did not stop"
e2e_log "PostgreSQL stopped (fast shutdown)"
chaos_for 1
"$CONVEYOR_SOURCE_DIR/deploy/local/pg" start "$E2E_PRIVATE_PG" "$E2E_PG_PORT" 2>>"$E2E_DIR/pg.log" ||
    e2e_fail "PostgreSQL did not start again"
outage_s=$(awk -v ms="$(($(date +%s%3N) - outage_started_ms))" 'BEGIN { printf "%.1f", ms / 1000 }')
e2e_log "PostgreSQL started again after ${outage_s}s"

# Served again, the gatherer's SQL tools included, within seconds.
tools_ok() {
    local answer
    answer=$(e2e_post '{"user_id": "cust-1", "text": "Where is my new card?"}')
    [[ $answer == 200* ]] && jq -e '.status == "done" and ([.evidence.tools[].status] | all(. == "ok"))' <<<"${answer#* }"
}
chaos_wait_served 15 "a request to be answered once PostgreSQL is back"
e2e_wait 15 "a request with every SQL tool ok once PostgreSQL is back" tools_ok

chaos_bench_wait 60
chaos_witness_wait 30
# The idempotency keys still hold: a request sent again with its key gets the first run's answer.
chaos_check_keys "$stopped_at"
unavailable=$(awk '$1 == 503' "$E2E_DIR/witness.txt" | wc -l)
[[ $unavailable -ge 1 ]] || e2e_fail "no witness request was answered 503 during the ${outage_s}s outage: $(sort "$E2E_DIR/witness.txt" | cut -d' ' -f1 | uniq -c | tr '\n' ' ')"
parked=$(chaos_log_count orchestrator "the request resumes when PostgreSQL is back")
resumed=$(chaos_log_count orchestrator "after the store came back")
chaos_finish "" "outage ${outage_s}s, witnesses answered 503 $unavailable times, parked $parked, resumed after the store came back $resumed, keyed requests sent again $CHAOS_KEYS"
e2e_log "PASS"
