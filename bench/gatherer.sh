#!/usr/bin/env bash
# One gatherer process (issue 8), on the plans of bench/agents/gatherer.yaml:
#   sql     sustained throughput of requests running three SQL tools each (card_arrival:
#           customer_profile, cards_in_delivery, active_cards), at 1, 16 and 128 requests in
#           flight, with p50/p90/p99, the gatherer's CPU per request and its peak RSS
#   http    three HTTP tools of 20, 30 and 10 ms at once (three_http), at 1 and 16 in flight: the
#           gather time should be about the slowest one's
#   cached  one cached tool (cached_rate): the cache-hit path, at 1 in flight
#
# Starts a private PostgreSQL in a temporary folder (deploy/local/pg), migrates and seeds the demo
# bank, starts the demo bank's HTTP service (conveyor-bankapi, test control on for its delay_ms),
# and runs bench-gatherer-load, which starts a fresh conveyor-gatherer for each in-flight count
# and plays its broker. Prints one markdown table per plan. Everything it started is stopped when
# it exits, on Ctrl-C and SIGTERM too.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() {
    cat <<'EOF'
usage: bench/gatherer.sh [--customers N] [-d SECONDS] [-k "1 16 128"] [--plans "sql http cached"]
                         [--connections N] [--keep]

  --customers N    demo bank size (default 100000, seed 42; generating it takes a few minutes)
  -d SECONDS       length of each measured run (default 10; a 2 s warm-up precedes each)
  -k LIST          requests in flight of the sql plan, one run and one gatherer each (default
                   "1 16 128"); the http plan runs at 1 and 16, the cached one at 1
  --plans LIST     which plans to run (default "sql http cached")
  --connections N  the gatherer's PostgreSQL connections (default 8, the gatherer's own)
  --keep           keep the temporary folder (the gatherer's log, PostgreSQL's)

Environment: CONVEYOR_BIN (default build/bin); any CONVEYOR_* setting reaches the gatherer.
Columns (bench-gatherer-load --help): in flight, requests measured, requests/s whose Evidence had
every tool OK, their latency percentiles in ms, errors, tools per request, the gatherer's CPU ms
per request and CPU % of one core over the run (/proc/PID/stat), its peak RSS in MB (VmHWM).
EOF
}
customers=100000 duration=10 in_flight="1 16 128" plans="sql http cached" connections=8 keep=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --customers) customers=${2:?}; shift 2 ;;
        -d) duration=${2:?}; shift 2 ;;
        -k) in_flight=${2:?}; shift 2 ;;
        --plans) plans=${2:?}; shift 2 ;;
        --connections) connections=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
bin=${CONVEYOR_BIN:-$root/build/bin}
bench_name=gatherer
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$root/bench/lib.sh"
for b in conveyor conveyor-gatherer conveyor-bankapi bench-gatherer-load; do
    [[ -x $bin/$b ]] || die "$bin/$b is missing; build first"
done
[[ $customers =~ ^[0-9]+$ && $customers -ge 1 ]] || die "--customers must be a whole number >= 1, not '$customers'"
for plan in $plans; do
    [[ $plan == sql || $plan == http || $plan == cached ]] || die "no plan '$plan' (sql, http, cached)"
done

tmp=$(mktemp -d /tmp/conveyor-gatherer.XXXXXX)
chmod 755 "$tmp" # the postgres OS user (when we are root) must be able to enter it
load_pid="" bankapi_pid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -n $load_pid ]] && { kill -TERM "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null; }
    [[ -n $bankapi_pid ]] && { kill -TERM "$bankapi_pid" 2>/dev/null; wait "$bankapi_pid" 2>/dev/null; }
    bench_pg_stop "$tmp/pg"
    if [[ $keep -eq 1 || $status -ne 0 ]]; then say "logs kept in $tmp"; else rm -rf "$tmp"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "seeding a demo bank of $customers customers"
bench_pg_start "$tmp/pg" "$customers"
export CONVEYOR_AGENT_FILE=${CONVEYOR_AGENT_FILE:-$root/bench/agents/gatherer.yaml}
bankapi_port=$(free_port)
export CONVEYOR_BANKAPI_URL=http://127.0.0.1:$bankapi_port
"$bin/conveyor-bankapi" --bankapi-port "$bankapi_port" --test-control >"$tmp/bankapi.log" 2>&1 &
bankapi_pid=$!
for _ in $(seq 1 100); do
    curl -sf "$CONVEYOR_BANKAPI_URL/healthz" >/dev/null && break
    kill -0 "$bankapi_pid" 2>/dev/null || die "conveyor-bankapi did not start; see $tmp/bankapi.log"
    sleep 0.1
done

# run PLAN INTENT IN_FLIGHT...: one table. In the background and waited for, so that a signal is
# acted on at once. The table goes to stdout as each run ends; errors, with the first one's
# text, to stderr.
run() {
    local plan=$1 intent=$2
    shift 2
    say "plan $plan: intent $intent at $* in flight"
    "$bin/bench-gatherer-load" --intent "$intent" --in-flight "$(tr ' ' , <<<"$*")" --duration-s "$duration" \
        --warmup-s 2 --users "$customers" --database-url "$BENCH_GATHERER_URL" --connections "$connections" \
        --gatherer "$bin/conveyor-gatherer" \
        --gatherer-log "$tmp/gatherer-$plan.log" &
    load_pid=$!
    local rc=0
    wait "$load_pid" || rc=$?
    load_pid=""
    return "$rc"
}
rc=0
for plan in $plans; do
    case $plan in
        sql) run sql card_arrival $in_flight || rc=$? ;;
        http) run http three_http 1 16 || rc=$? ;;
        cached) run cached cached_rate 1 || rc=$? ;;
    esac
done
say "machine: $(bench_machine); $customers customers, $connections connections"
exit "$rc"
