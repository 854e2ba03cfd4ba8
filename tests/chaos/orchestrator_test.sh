#!/usr/bin/env bash
# Chaos: the orchestrator killed with SIGKILL under load and started again, in one durability mode
# (the argument: sync, async or exit; see services/orchestrator/orchestrator_flights.h). Whatever
# the mode, every request answered 200 is done in the database with a checkpoint of each of its
# stages (in any mode the answer waits for its writes); the requests left running by the kill are finished by
# recovery within a bound, with the checkpoints committed before the kill left as they were; no
# checkpoint is written twice, no action performed twice. In exit mode nothing half-written is
# left: the only rows the kill leaves running are those of requests with an idempotency key,
# written first, which recovery then runs from the start, and those that had reached their execute
# stage, whose row and first three checkpoints (the actions recorded) are committed before it
# leaves; the idempotency keys hold in every mode.
source "$(dirname "$0")/lib.sh"
mode=${1:?usage: orchestrator_test.sh sync|async|exit}
chaos_setup "orchestrator_$mode"
chaos_start_stack --durability "$mode"

load_s=10
chaos_bench_start -c 6 -d "$load_s" --timeout-ms 20000
chaos_witness_start "$load_s" 1
chaos_witness_start "$load_s" 2 keyed
some_done() { [[ $(chaos_count "SELECT count(*) FROM requests WHERE status = 'done'") -ge 50 ]]; }
e2e_wait 20 "requests to be answered before the kill" some_done
chaos_for 0.5

killed_at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
e2e_kill orchestrator KILL
e2e_log "orchestrator killed with SIGKILL"
# What the kill left, kept in two tables of the test's database: the rows still running and the
# checkpoints they have. Its last transaction may still commit: the state is final once its
# sessions are gone (waited for in the server, so that the stack is down for one psql only).
e2e_psql >/dev/null <<'SQL'
DO $$
DECLARE deadline timestamptz := clock_timestamp() + interval '20 seconds';
BEGIN
    WHILE EXISTS (SELECT FROM pg_stat_activity
                  WHERE datname = current_database() AND application_name LIKE 'orchestrator%') LOOP
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'the killed orchestrator''s sessions did not end in 20 s';
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END $$;
CREATE TABLE chaos_running AS
    SELECT r.id, count(c.seq) AS checkpoints FROM requests r LEFT JOIN checkpoints c ON c.request_id = r.id
    WHERE r.status = 'running' GROUP BY r.id;
CREATE TABLE chaos_kept AS
    SELECT c.request_id, c.seq, c.created_at, md5(c.body) AS body FROM checkpoints c JOIN chaos_running k ON k.id = c.request_id;
SQL
e2e_start_orchestrator --durability "$mode"
e2e_log "orchestrator started again"
left_running=$(chaos_count "SELECT count(*) FROM chaos_running")
by_checkpoints=$(chaos_count "SELECT coalesce(string_agg(checkpoints || ':' || n, ' ' ORDER BY checkpoints), '-')
                              FROM (SELECT checkpoints, count(*) n FROM chaos_running GROUP BY checkpoints) x")
e2e_log "the kill left $left_running requests running (checkpoints held:requests $by_checkpoints)"
if [[ $mode == exit ]]; then
    # Exit mode writes a request whole when it ends: its row and its checkpoints together. Only a
    # request with an idempotency key has its row written first, with no checkpoint, and one that
    # reached its execute stage has its row and the checkpoints before it; no other row may be
    # left running by the kill.
    half=$(chaos_count "SELECT k.id || ' with ' || k.checkpoints || ' checkpoints, key ' || coalesce(r.idempotency_key, 'none')
                        FROM chaos_running k JOIN requests r ON r.id = k.id
                        WHERE NOT (k.checkpoints = 0 AND r.idempotency_key IS NOT NULL)
                          AND NOT (k.checkpoints = 3 AND EXISTS (SELECT FROM actions a WHERE a.request_id = k.id))")
    [[ -z $half ]] || e2e_fail "exit mode left half-written requests: $half"
fi
# In every mode a row without an idempotency key commits with its first checkpoint, not before.
bare=$(chaos_count "SELECT k.id FROM chaos_running k JOIN requests r ON r.id = k.id
                    WHERE k.checkpoints = 0 AND r.idempotency_key IS NULL")
[[ -z $bare ]] || e2e_fail "rows without a key left running with no checkpoint: $bare"

chaos_wait_served 15 "the restarted orchestrator to serve"
kept_finished() {
    [[ $(chaos_count "SELECT count(*) FROM requests r JOIN chaos_running k ON k.id = r.id WHERE r.status = 'running'") == 0 ]]
}
e2e_wait 30 "the requests the kill left running to finish" kept_finished
recovered=0
for id in $(chaos_count "SELECT id FROM chaos_running"); do
    grep -F "\"request_id\":\"$id\"" "$E2E_DIR/orchestrator.log" | grep -qF '"msg":"resuming at stage' ||
        e2e_fail "request $id was left running by the kill but not resumed by recovery"
    recovered=$((recovered + 1))
done
# The checkpoints committed before the kill are still there, as they were.
changed=$(chaos_count "SELECT k.request_id || ' ' || k.seq FROM chaos_kept k
                       LEFT JOIN checkpoints c ON c.request_id = k.request_id AND c.seq = k.seq
                       WHERE c.seq IS NULL OR c.created_at <> k.created_at OR md5(c.body) <> k.body")
[[ -z $changed ]] || e2e_fail "checkpoints committed before the kill changed or vanished: $changed"
states=$(chaos_count "SELECT coalesce(string_agg(status || ' ' || n, ', ' ORDER BY status), 'none') FROM (
                        SELECT r.status, count(*) n FROM requests r JOIN chaos_running k ON k.id = r.id GROUP BY r.status) x")
# The idempotency keys still hold: a request sent again with its key gets the first run's answer.
chaos_bench_wait 60
chaos_witness_wait 30
chaos_check_keys "$killed_at"
chaos_finish '^(5[0-9][0-9]|connection)$' \
    "durability $mode: running at the kill $left_running (checkpoints:requests $by_checkpoints), recovered $recovered, now $states; keyed requests sent again $CHAOS_KEYS, of which run anew $CHAOS_KEYS_NEW"
e2e_log "PASS"
