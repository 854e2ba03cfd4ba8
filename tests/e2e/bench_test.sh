#!/usr/bin/env bash
# End to end: conveyor bench against the whole stack. Closed and open loop, new connections, the
# pipeline-4 workload, -n, the SVG plot; a stall of the orchestrator seen by the open loop;
# errors by kind: a closed port, and a stopped worker (5xx from the orchestrator, then timeouts).
# Timings are only checked against bounds far beyond what the stack needs, to catch a stall.
source "$(dirname "$0")/lib.sh"
e2e_setup bench
# A short request deadline, so that a stage with no worker left ends in a 5xx within seconds.
e2e_start_bankapi
e2e_start_orchestrator --request-timeout-ms 2000
e2e_start_worker intent intent-1
e2e_start_worker gatherer gatherer-1
e2e_start_worker decision decision-1
e2e_start_worker responder responder-1
e2e_start_worker executor executor-1
e2e_wait_ready

# bench ARGS...: runs conveyor bench against the stack; stdout in $E2E_DIR/bench.out, stderr in
# bench.err, the exit code in $bench_rc.
bench() {
    bench_rc=0
    "$CONVEYOR_BIN/conveyor" bench --url "$E2E_API" "$@" >"$E2E_DIR/bench.out" 2>"$E2E_DIR/bench.err" || bench_rc=$?
}
# bench_expect DESCRIPTION RC JQ_FILTER: the last run exited RC and printed one JSON line for
# which the filter is true.
bench_expect() {
    [[ $bench_rc -eq $2 ]] || e2e_fail "$1: exited $bench_rc, not $2: $(cat "$E2E_DIR/bench.err")"
    [[ $(wc -l <"$E2E_DIR/bench.out") -eq 1 ]] || e2e_fail "$1: stdout is not one line: $(cat "$E2E_DIR/bench.out")"
    e2e_expect "$1" "$(cat "$E2E_DIR/bench.out")" "$3"
    e2e_ok "$1: $(jq -c '{requests, answered, connections, throughput_rps, errors, p50: .latency_ms.p50, max: .latency_ms.max}' "$E2E_DIR/bench.out")"
}
ordered='.latency_ms as $l | $l.p50 > 0 and $l.p50 <= $l.p90 and $l.p90 <= $l.p99 and $l.p99 <= $l.p999 and $l.p999 <= $l.max'

# pipeline-4: each of its users is answered by the model as card_arrival, after three SQL tools
# (and the card tracker, for those whose card on its way has a tracking number).
workload=$CONVEYOR_SOURCE_DIR/bench/pipeline-4.jsonl
while read -r line; do
    [[ -n $line ]] || continue
    answer=$(e2e_ask "$(jq -r .user_id <<<"$line")" "$(jq -r .text <<<"$line")")
    e2e_expect "pipeline-4 $(jq -r .user_id <<<"$line")" "$answer" \
        '.intent.name == "card_arrival" and .intent.method == "model" and .decision.outcome == "answer"
         and ([.evidence.tools[] | select(.status == "ok") | .name] - ["delivery_status"] | sort) == ["active_cards", "cards_in_delivery", "customer_profile"]'
done <"$workload"
e2e_ok "pipeline-4's users are answered"

# Closed loop: 4 clients on kept-alive connections, every request of the demo mix answered.
bench -c 4 -d 2 --json
bench_expect "closed loop" 0 ".mode == \"closed\" and .clients == 4 and .answered > 0 and .requests == .answered
    and .errors.total == 0 and .errors.by_kind == {} and .connections >= 1 and .connections <= 4
    and .throughput_rps > 0 and .duration_s < 30 and ($ordered)"
# The text report, and no progress lines when stderr is not a terminal.
bench -c 2 -d 1
[[ $bench_rc -eq 0 ]] || e2e_fail "the text report: exited $bench_rc"
grep -q '^  throughput  ' "$E2E_DIR/bench.out" && grep -q '^  latency     p50 ' "$E2E_DIR/bench.out" &&
    grep -q '^  errors      none' "$E2E_DIR/bench.out" || e2e_fail "the text report: $(cat "$E2E_DIR/bench.out")"
[[ ! -s $E2E_DIR/bench.err ]] || e2e_fail "progress on stderr that is not a terminal: $(cat "$E2E_DIR/bench.err")"
bench -c 2 -d 2 --progress --json
grep -q '^conveyor bench: 1 s, [0-9]* requests, ' "$E2E_DIR/bench.err" || e2e_fail "no progress line with --progress"
bench_expect "--progress keeps stdout to the report" 0 '.answered > 0'

# Open loop: 50 requests a second for 2 s is 100 requests due; with 8 connections the stack
# takes them all, and their latency counts from the time each was due.
bench --rate 50 -d 2 -c 8 --json
bench_expect "open loop" 0 ".mode == \"open\" and .rate_rps == 50 and .requests + .unsent == 100
    and .requests >= 50 and .errors.total == 0 and .duration_s < 30 and ($ordered)"

# -n bounds the count.
bench -n 7 -c 3 --json
bench_expect "-n 7" 0 '.requests == 7 and .answered == 7'

# A connection for every request.
bench -c 2 -d 1 --new-connection --json
bench_expect "new connections" 0 '.new_connection and .answered > 0 and .errors.total == 0 and .connections == .requests'

# The pipeline-4 workload.
bench --requests "$workload" -c 2 -d 2 --json
bench_expect "pipeline-4" 0 ".answered > 0 and .errors.total == 0 and ($ordered)"

# The plot of the latency distribution.
bench -c 2 -d 1 --plot "$E2E_DIR/latency.svg"
[[ $bench_rc -eq 0 ]] || e2e_fail "--plot: exited $bench_rc: $(cat "$E2E_DIR/bench.err")"
[[ $(head -c 4 "$E2E_DIR/latency.svg") == "<svg" ]] || e2e_fail "the plot does not begin with <svg"
grep -q '<polyline' "$E2E_DIR/latency.svg" && grep -q '99.9%' "$E2E_DIR/latency.svg" &&
    grep -q 'latency (ms)' "$E2E_DIR/latency.svg" || e2e_fail "the plot lacks its curve or its axes"
e2e_ok "--plot writes an SVG"

# A stall of the orchestrator (SIGSTOP for 0.4 s, less than the workers' liveness of 0.6 s)
# during an open-loop run: the requests due while it stood still count their wait, so the worst
# latency is most of the stall, not the few milliseconds of a request sent after it.
bench_bg() { "$CONVEYOR_BIN/conveyor" bench --url "$E2E_API" "$@" >"$E2E_DIR/bench.out" 2>"$E2E_DIR/bench.err"; }
requests_before=$(e2e_psql -c "SELECT count(*) FROM requests")
bench_bg --rate 20 -d 3 -c 8 --json &
bench_pid=$!
# The stall comes once the open loop is under way: its first requests are recorded.
under_way() { [[ $(e2e_psql -c "SELECT count(*) FROM requests") -ge $((requests_before + 5)) ]]; }
e2e_wait 10 "the open loop's first requests" under_way
kill -STOP "${E2E_PIDS[orchestrator]}"
sleep 0.4
kill -CONT "${E2E_PIDS[orchestrator]}"
bench_rc=0
wait "$bench_pid" || bench_rc=$?
bench_expect "open loop through a stall" 0 '.answered > 0 and .latency_ms.max >= 250'

# Errors by kind. Nothing listens: connection errors, exit 1, the report still printed.
"$CONVEYOR_BIN/conveyor" bench --url "http://127.0.0.1:$(e2e_free_port)" -d 1 --json \
    >"$E2E_DIR/bench.out" 2>"$E2E_DIR/bench.err" && bench_rc=0 || bench_rc=$?
bench_expect "a closed port" 1 '.answered == 0 and .errors.by_kind.connection > 0 and .errors.total == .requests'
grep -q 'conveyor bench: no request was answered' "$E2E_DIR/bench.err" || e2e_fail "a closed port: no failure line"

# No responder: nothing can answer, so every request ends at its 2 s deadline with a 5xx from the
# orchestrator, counted under its status; with a client timeout shorter than that, under timeout.
e2e_kill responder-1
bench -c 2 -d 1 --timeout-ms 20000 --json
bench_expect "no responder" 1 \
    '.answered == 0 and .requests > 0 and .errors.total == .requests and ([.errors.by_kind | keys[] | startswith("5")] | all)'
bench -c 2 -d 1 --timeout-ms 300 --json
bench_expect "no responder, a 300 ms timeout" 1 \
    '.answered == 0 and .errors.by_kind.timeout > 0 and .errors.total == .requests'
# The requests their clients gave up on still end, at their deadline; the stack stops idle.
none_running() { [[ $(e2e_psql -c "SELECT count(*) FROM requests WHERE status = 'running'") == 0 ]]; }
e2e_wait 30 "the abandoned requests to end" none_running
e2e_ok "bench"
