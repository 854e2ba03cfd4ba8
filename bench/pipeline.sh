#!/usr/bin/env bash
# pipeline-4 on conveyor alone: latency at 1 client, throughput at 32, CPU per request of every
# process (PostgreSQL's backends included), checkpoint commits per second, peak memory; for each
# durability mode and for one and two copies of each worker.
#
# Starts a private PostgreSQL in a temporary folder (deploy/local/pg), migrates and seeds the demo
# bank, and for each configuration starts the orchestrator and the workers on free ports, warms
# up, and drives them with `conveyor bench --requests bench/pipeline-4.jsonl`. Prints one markdown
# table. Everything it started is stopped when it exits, on Ctrl-C and SIGTERM too.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() {
    cat <<'EOF'
usage: bench/pipeline.sh [-d SECONDS] [--modes "sync async exit"] [--copies "1 2"] [-c "1 32"]

  -d SECONDS       length of each measured run (default 10; a 3 s warm-up precedes each)
  --modes LIST     durability modes to measure (default "sync async exit")
  --copies LIST    copies of each worker (default "1 2"; the copies run with every mode only
                   for sync, the default)
  -c LIST          client counts (default "1 32")

Environment: CONVEYOR_BIN (default build/bin); any CONVEYOR_* setting reaches the processes.
Columns: rps, p50/p99 (ms), CPU per request in ms (all conveyor processes and PostgreSQL,
from /proc/PID/stat over the measured run), the store's commits/s (pg_stat_database's commits
less the gatherer's, one per tool: three a request) against the checkpoints/s written (the
checkpoints table), peak RSS in MB (VmHWM) of the orchestrator and the workers.
EOF
}
duration=10 modes="sync async exit" copies="1 2" clients="1 32"
while [[ $# -gt 0 ]]; do
    case $1 in
        -d) duration=${2:?}; shift 2 ;;
        --modes) modes=${2:?}; shift 2 ;;
        --copies) copies=${2:?}; shift 2 ;;
        -c) clients=${2:?}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
bin=${CONVEYOR_BIN:-$root/build/bin}
bench_name=pipeline
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$root/bench/lib.sh"
for tool in jq psql curl; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
[[ -x $bin/conveyor ]] || die "$bin/conveyor is missing; build first"

tmp=$(mktemp -d /tmp/conveyor-pipeline.XXXXXX)
chmod 755 "$tmp"
pids=()
stop_stack() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_stack
    bench_pg_stop "$tmp/pg"
    [[ $status -eq 0 ]] && rm -rf "$tmp" || say "logs kept in $tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_pg_start "$tmp/pg" 1000
export CONVEYOR_AGENT_FILE=${CONVEYOR_AGENT_FILE:-$root/deploy/config/bank-agent.yaml}
export CONVEYOR_INTENT_MODEL=${CONVEYOR_INTENT_MODEL:-$bin/../models/banking77.model}
# The demo bank's HTTP service, which card_arrival's card tracker calls: one per stack.
export CONVEYOR_BANKAPI_URL=http://127.0.0.1:$(free_port)
psql_at() { psql -X -q -At -d "$CONVEYOR_DATABASE_URL" -c "$1"; }

# start_stack MODE COPIES: the orchestrator and COPIES of each worker, ready.
start_stack() {
    local mode=$1 n=$2 service i
    http=$(free_port)
    export CONVEYOR_BROKER_ENDPOINT=tcp://127.0.0.1:$(free_port)
    "$bin/conveyor-orchestrator" --http-port "$http" --control-endpoint "tcp://127.0.0.1:$(free_port)" \
        --durability "$mode" >>"$tmp/orchestrator.log" 2>&1 &
    pids+=($!)
    # the executor last: the workload has no actions, so it only has to be there (readiness asks
    # for every stage's service), and the others keep their places in pids
    for service in intent gatherer decision responder executor; do
        # the gatherer and the executor as their own roles, as make run starts them
        local own=()
        [[ $service == gatherer ]] && own=(--database-url "$BENCH_GATHERER_URL")
        [[ $service == executor ]] && own=(--database-url "$BENCH_EXECUTOR_URL")
        for i in $(seq 1 "$n"); do
            "$bin/conveyor-$service" --instance "$service-$i" --control-endpoint "tcp://127.0.0.1:$(free_port)" \
                "${own[@]}" >>"$tmp/$service-$i.log" 2>&1 &
            pids+=($!)
        done
    done
    # last, so that the pipeline's processes keep their places in pids
    "$bin/conveyor-bankapi" --bankapi-port "${CONVEYOR_BANKAPI_URL##*:}" >>"$tmp/bankapi.log" 2>&1 &
    pids+=($!)
    local deadline=$((SECONDS + 60))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/readyz") == 200 ]]; do
        [[ $SECONDS -lt $deadline ]] || die "the stack is not ready after 60 s; see $tmp"
        sleep 0.2
    done
}

# CPU ticks of every conveyor process and of PostgreSQL (all its processes), one "name ticks"
# line each: orchestrator, intent, gatherer, decision, responder, executor, postgres. The demo bank's HTTP
# service stands for another system: its CPU is not the pipeline's.
cpu_ticks() {
    local pid postmaster name
    postmaster=$(head -1 "$tmp/pg/postmaster.pid")
    for pid in "${pids[@]}" "$postmaster" $(pgrep -P "$postmaster" || true); do
        [[ -r /proc/$pid/stat ]] || continue
        name=$(cat "/proc/$pid/comm")
        name=${name#conveyor-}
        [[ $name == bankap* ]] && continue
        case $name in orches*) name=orchestrator ;; gather*) name=gatherer ;; decisi*) name=decision ;;
                      respon*) name=responder ;; intent*) name=intent ;; execut*) name=executor ;;
                      *) name=postgres ;; esac
        echo "$name $(awk '{print $14 + $15}' "/proc/$pid/stat")"
    done
}

printf '| durability | copies | clients | rps | p50 ms | p99 ms | CPU ms/request (orch, intent, gatherer, decision, responder, executor, PostgreSQL) | store commits/s | checkpoints/s | peak RSS MB (orch, intent, gatherer, decision, responder) |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
run() {
    local mode=$1 n=$2 c
    start_stack "$mode" "$n"
    "$bin/conveyor" bench --url "http://127.0.0.1:$http" -c 32 -d 3 --requests "$root/bench/pipeline-4.jsonl" \
        --json >/dev/null 2>&1 || true
    for c in $clients; do
        local hz ticks0 commits0 checkpoints0 result ticks1 commits1 checkpoints1
        hz=$(getconf CLK_TCK)
        cpu_ticks >"$tmp/ticks0"
        commits0=$(psql_at "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        checkpoints0=$(psql_at "SELECT count(*) FROM checkpoints")
        result=$("$bin/conveyor" bench --url "http://127.0.0.1:$http" -c "$c" -d "$duration" \
            --requests "$root/bench/pipeline-4.jsonl" --json 2>/dev/null) || die "bench failed: $result"
        cpu_ticks >"$tmp/ticks1"
        commits1=$(psql_at "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        checkpoints1=$(psql_at "SELECT count(*) FROM checkpoints")
        local seconds requests errors
        seconds=$(jq .duration_s <<<"$result")
        requests=$(jq .answered <<<"$result")
        errors=$(jq .errors.total <<<"$result")
        [[ $errors -eq 0 ]] || say "$mode x$n c=$c: $errors errors: $(jq -c .errors.by_kind <<<"$result")"
        # ms per request by process: the ticks each group gained over the run
        local split
        split=$(awk -v hz="$hz" -v req="$requests" 'NR == FNR { before[$1] += $2; next } { after[$1] += $2 }
            END { n = split("orchestrator intent gatherer decision responder executor postgres", names, " ")
                  for (i = 1; i <= n; i++) printf "%s%.2f", (i > 1 ? ", " : ""), req ? (after[names[i]] - before[names[i]]) * 1000 / hz / req : 0 }' \
            "$tmp/ticks0" "$tmp/ticks1")
        local ticks=$(( $(awk '{ t += $2 } END { print t }' "$tmp/ticks1") - $(awk '{ t += $2 } END { print t }' "$tmp/ticks0") ))
        local rss="" pid
        for pid in "${pids[@]:0:1}" "${pids[@]:1:1}" "${pids[@]:$((1 + n)):1}" "${pids[@]:$((1 + 2 * n)):1}" \
                   "${pids[@]:$((1 + 3 * n)):1}"; do
            rss="$rss${rss:+, }$(peak_mb "$pid")"
        done
        awk -v m="$mode" -v n="$n" -v c="$c" -v rps="$(jq .throughput_rps <<<"$result")" \
            -v p50="$(jq .latency_ms.p50 <<<"$result")" -v p99="$(jq .latency_ms.p99 <<<"$result")" \
            -v ticks="$ticks" -v by="$split" -v hz="$hz" -v req="$requests" -v s="$seconds" \
            -v commits=$((commits1 - commits0 - 3 * requests)) -v cps=$((checkpoints1 - checkpoints0)) -v rss="$rss" \
            'BEGIN { printf "| %s | %d | %d | %.0f | %.2f | %.2f | %.2f (%s) | %.0f | %.0f | %s |\n",
                     m, n, c, rps, p50, p99, req ? ticks * 1000 / hz / req : 0, by, commits / s, cps / s, rss }'
    done
    stop_stack
}
for n in $copies; do
    if [[ $n -eq 1 ]]; then
        for mode in $modes; do run "$mode" "$n"; done
    else
        run sync "$n"
    fi
done
say "machine: $(bench_machine)"
