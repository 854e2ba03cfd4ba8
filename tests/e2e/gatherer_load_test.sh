#!/usr/bin/env bash
# End to end: bench-gatherer-load against a conveyor-gatherer it starts, on a copy of the fixture's
# demo bank and the benchmark's agent file (bench/agents/gatherer.yaml): 4 requests in flight for
# 1 s, every one answered with three OK tools; a list of in-flight counts, one run and one gatherer
# each; a count above the gatherer's capacity refused; the benchmark's HTTP plans against the
# demo bank's service. No figure is checked beyond "some requests".
source "$(dirname "$0")/lib.sh"
export CONVEYOR_AGENT_FILE=$CONVEYOR_SOURCE_DIR/bench/agents/gatherer.yaml
e2e_setup gatherer_load

# load ARGS...: runs bench-gatherer-load against the test's database (50 customers); stdout in
# $E2E_DIR/load.out, stderr in load.err, the exit code in $load_rc.
load() {
    load_rc=0
    "$CONVEYOR_BIN/bench-gatherer-load" --database-url "$CONVEYOR_DATABASE_URL" --users 50 --warmup-s 0 \
        --gatherer-log "$E2E_DIR/gatherer.log" "$@" >"$E2E_DIR/load.out" 2>"$E2E_DIR/load.err" || load_rc=$?
}

load --in-flight 4 --duration-s 1 --json
[[ $load_rc -eq 0 ]] || e2e_fail "4 in flight: exited $load_rc: $(cat "$E2E_DIR/load.err")"
[[ $(wc -l <"$E2E_DIR/load.out") -eq 1 ]] || e2e_fail "4 in flight: not one JSON line: $(cat "$E2E_DIR/load.out")"
e2e_expect "4 in flight" "$(cat "$E2E_DIR/load.out")" '.intent == "card_arrival" and .in_flight == 4
    and .requests > 0 and .ok == .requests and .errors.total == 0 and .errors.by_kind == {}
    and .tools_per_request == 3 and .throughput_rps > 0 and .latency_ms.p50 > 0
    and .latency_ms.p50 <= .latency_ms.p99 and .gatherer.peak_rss_kb > 0 and .gatherer.cpu_s >= 0'
e2e_ok "4 in flight: $(jq -c '{requests, throughput_rps, p50: .latency_ms.p50, rss_kb: .gatherer.peak_rss_kb}' "$E2E_DIR/load.out")"

# A list and a repeated option: one run each, in order, as table rows.
load --in-flight 1,2 --in-flight 3 --duration-s 1 --capacity 8
[[ $load_rc -eq 0 ]] || e2e_fail "1,2 and 3 in flight: exited $load_rc: $(cat "$E2E_DIR/load.err")"
rows=$(grep -c '^| [0-9]' "$E2E_DIR/load.out") || true
[[ $rows -eq 3 ]] || e2e_fail "1,2 and 3 in flight: $rows rows, not 3: $(cat "$E2E_DIR/load.out")"
[[ $(awk -F' *\\| *' '/^\| [0-9]/ { printf "%s:%s ", $2, $8 }' "$E2E_DIR/load.out") == "1:0 2:0 3:0 " ]] ||
    e2e_fail "1,2 and 3 in flight: not three runs without errors: $(cat "$E2E_DIR/load.out")"
e2e_ok "a list of in-flight counts"

# More in flight than the gatherer takes: refused, exit 1, the reason named.
load --in-flight 5 --capacity 4 --duration-s 1
[[ $load_rc -eq 1 ]] || e2e_fail "above capacity: exited $load_rc, not 1"
grep -q 'said capacity 4, below 5 in flight' "$E2E_DIR/load.err" || e2e_fail "above capacity: $(cat "$E2E_DIR/load.err")"
# The HTTP plans: three tools at once, and a cached one.
e2e_start_bankapi
for intent in three_http cached_rate; do
    load --intent "$intent" --in-flight 2 --duration-s 1 --json
    [[ $load_rc -eq 0 ]] || e2e_fail "$intent: exited $load_rc: $(cat "$E2E_DIR/load.err")"
    e2e_expect "$intent" "$(cat "$E2E_DIR/load.out")" '.requests > 0 and .ok == .requests and .errors.total == 0'
done
e2e_ok "gatherer load"
