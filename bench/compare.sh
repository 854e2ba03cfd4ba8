#!/usr/bin/env bash
# pipeline-4 side by side: conveyor against the same pipeline written for LangGraph.js with its
# PostgreSQL checkpointer (bench/peers/langgraph/), in one run on this machine.
#
# Installs the peer's npm packages (npm ci), starts a private PostgreSQL in a temporary folder,
# migrates and seeds the demo bank, starts conveyor's stack (the orchestrator and one of each
# worker) and the peer's server against that same database, checks that both give the same
# answer, then drives each with `conveyor bench` at each client count and prints a markdown
# table, the peak memory of every process, and the rows each side wrote. Everything it started
# is stopped when it exits, on Ctrl-C and SIGTERM too.
set -euo pipefail
# Loopback traffic never goes through a proxy a CI machine may have configured.
export no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy} NO_PROXY=127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peer_dir=$root/bench/peers/langgraph
command_line="bench/compare.sh${*:+ $*}"

usage() {
    cat <<'EOF'
usage: bench/compare.sh [-d SECONDS] [-c "1 32"] [-w SECONDS] [--customers N] [--requests FILE] [--keep]

  -d SECONDS      length of each measured run (default 10)
  -c "C1 C2 ..."  client counts, one run per side for each (default "1 32")
  -w SECONDS      unmeasured warm-up per side before its runs (default 2)
  --customers N   demo bank size (default 1000, seed 42)
  --requests FILE the requests `conveyor bench` sends (default bench/pipeline-4.jsonl)
  --keep          keep the temporary folder (logs, the bench JSON) instead of removing it

Environment: CONVEYOR_BIN (conveyor's binaries, default build/bin), CONVEYOR_INTENT_MODEL
(default CONVEYOR_BIN/../models/banking77.model), PEER_DURABILITY (the peer's LangGraph
durability: sync, the default, as conveyor's; async; exit), PEER_TOOLS_POOL and
PEER_CHECKPOINT_POOL (the peer's connection pools, default 10 each); any other CONVEYOR_*
setting (CONVEYOR_CAPACITY, ...) reaches conveyor's processes unchanged.
EOF
}

duration=10
clients="1 32"
warmup=2
customers=1000
keep=0
requests_file=$root/bench/pipeline-4.jsonl
while [[ $# -gt 0 ]]; do
    case $1 in
        -d) duration=${2:?-d needs SECONDS}; shift 2 ;;
        -c) clients=${2:?-c needs client counts}; shift 2 ;;
        -w) warmup=${2:?-w needs SECONDS}; shift 2 ;;
        --customers) customers=${2:?--customers needs N}; shift 2 ;;
        --requests) requests_file=${2:?--requests needs FILE}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

say() { printf 'compare: %s\n' "$*" >&2; }
die() { printf 'compare: %s\n' "$*" >&2; exit 1; }

is_count() { [[ $1 =~ ^[0-9]+$ && $1 -ge 1 ]]; }
is_count "$duration" || die "-d must be a whole number of seconds >= 1, not '$duration'"
[[ $warmup =~ ^[0-9]+$ ]] || die "-w must be a whole number of seconds, not '$warmup'"
is_count "$customers" || die "--customers must be a whole number >= 1, not '$customers'"
for c in $clients; do is_count "$c" || die "-c takes client counts >= 1, not '$c'"; done
[[ -n ${clients// /} ]] || die "-c needs at least one client count"

bin=${CONVEYOR_BIN:-$root/build/bin}
bin=$(cd "$bin" 2>/dev/null && pwd) || die "CONVEYOR_BIN=${CONVEYOR_BIN:-$root/build/bin} does not exist; build conveyor first"
model=${CONVEYOR_INTENT_MODEL:-$bin/../models/banking77.model}
for tool in node npm jq curl psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for b in conveyor conveyor-orchestrator conveyor-intent conveyor-gatherer conveyor-decision conveyor-executor conveyor-responder; do
    [[ -x $bin/$b ]] || die "$bin/$b is missing; build conveyor first (or set CONVEYOR_BIN)"
done
[[ -f $model ]] || die "the intent model $model is missing (set CONVEYOR_INTENT_MODEL)"
[[ -f $requests_file ]] || die "$requests_file is missing"
"$bin/conveyor" bench --help >/dev/null 2>&1 || die "$bin/conveyor has no 'bench' subcommand; rebuild conveyor"

# ---------------------------------------------------------------------------------------------
# Everything started is recorded here and stopped on exit.

tmp=$(mktemp -d /tmp/conveyor-compare.XXXXXX)
# The postgres OS user (when we are root) must be able to enter it.
chmod 755 "$tmp"
declare -A pids=()   # name -> pid of a server
order=()             # names in start order
bench_pid=""
npm_pid=""
pg_started=0

# The script's own stdout and stderr, for when a signal arrives inside a redirected command.
exec 3>&1 4>&2
stop_all() {
    local status=$? name pid
    trap - EXIT INT TERM
    set +e
    exec 1>&3 2>&4
    case $status in
        130) say "interrupted; stopping everything" ;;
        143) say "terminated; stopping everything" ;;
    esac
    [[ -n $bench_pid ]] && kill -TERM "$bench_pid" 2>/dev/null
    [[ -n $npm_pid ]] && kill -TERM "$npm_pid" 2>/dev/null
    for name in "${order[@]}"; do kill -TERM "${pids[$name]}" 2>/dev/null || true; done
    for name in "${order[@]}"; do
        pid=${pids[$name]}
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) did not stop on SIGTERM within 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    [[ -n $bench_pid ]] && wait "$bench_pid" 2>/dev/null
    [[ -n $npm_pid ]] && wait "$npm_pid" 2>/dev/null
    if [[ $pg_started -eq 1 ]]; then
        "$root/deploy/local/pg" stop "$tmp/pg" >/dev/null 2>&1 || say "PostgreSQL in $tmp/pg did not stop; see $tmp/pg/log"
    fi
    local failed=0
    [[ $status -eq 0 || $status -eq 130 || $status -eq 143 ]] || failed=1
    if [[ $failed -eq 1 ]]; then
        for log in "$tmp"/*.log; do
            [[ -f $log ]] || continue
            say "--- last lines of $(basename "$log")"
            tail -n 12 "$log" >&2
        done
    fi
    if [[ $keep -eq 1 || $failed -eq 1 ]]; then
        say "logs and results kept in $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits for it, so that a signal is acted on at once.
run_waited() {
    local var=$1 rc=0
    shift
    "$@" 3>&- 4>&- &
    printf -v "$var" '%s' $!
    wait "${!var}" || rc=$?
    printf -v "$var" '%s' ""
    return "$rc"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A taken=()
pg_port="" conveyor_http="" broker_port="" orchestrator_control="" control="" peer_http=""
# free_port VAR: a port nobody listens on and this script has not handed out yet.
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 12768)) # below the kernel's ephemeral range (32768-60999)
        if [[ -z ${taken[$port]:-} ]] && ! port_busy "$port"; then
            taken[$port]=1
            printf -v "$1" '%s' "$port"
            return 0
        fi
    done
    die "no free port"
}

start() {
    local name=$1
    shift
    "$@" >>"$tmp/$name.log" 2>&1 3>&- 4>&- &
    pids[$name]=$!
    order+=("$name")
}

# Fails with the name of the first started process that is no longer running.
check_alive() {
    local name
    for name in "${order[@]}"; do
        kill -0 "${pids[$name]}" 2>/dev/null || die "$name exited unexpectedly ($1); see its log below"
    done
}

http_status() { curl -s -m 5 -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true; }

# wait_http NAME URL: until URL answers 200, for at most 60 s.
wait_http() {
    local deadline=$((SECONDS + 60))
    until [[ $(http_status "$2") == 200 ]]; do
        check_alive "waiting for $1 to answer"
        [[ $SECONDS -lt $deadline ]] || die "$1 does not answer on $2 after 60 s"
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------
# The peer's packages.

say "installing the peer's packages from npm (npm ci in bench/peers/langgraph)"
npm_started=$(date +%s.%N)
run_waited npm_pid npm ci --prefix "$peer_dir" --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1 ||
    { cat "$tmp/npm.log" >&2; die "npm ci failed in $peer_dir"; }
npm_seconds=$(awk -v a="$npm_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
say "npm ci took $npm_seconds s"
lock_version() { jq -r --arg p "node_modules/$1" '.packages[$p].version // "?"' "$peer_dir/package-lock.json"; }

# ---------------------------------------------------------------------------------------------
# PostgreSQL and the demo bank.

free_port pg_port
say "starting PostgreSQL in $tmp/pg on 127.0.0.1:$pg_port"
pg_started=1
"$root/deploy/local/pg" start "$tmp/pg" "$pg_port" >>"$tmp/pg-start.log" 2>&1 || die "PostgreSQL did not start"
export CONVEYOR_DATABASE_URL
CONVEYOR_DATABASE_URL=$("$root/deploy/local/pg" url "$pg_port")
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$CONVEYOR_DATABASE_URL" -c "$1"; }
"$bin/conveyor" migrate >>"$tmp/setup.log" 2>&1 || die "conveyor migrate failed"
"$bin/conveyor" seed --customers "$customers" --seed 42 >>"$tmp/setup.log" 2>&1 || die "conveyor seed failed"
pg_settings=$(sql "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings
                    WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', 'max_connections')")
pg_version=$(sql "SHOW server_version")

# ---------------------------------------------------------------------------------------------
# conveyor's stack and the peer, both against that database.

free_port conveyor_http
free_port broker_port
free_port orchestrator_control
export CONVEYOR_BROKER_ENDPOINT=tcp://127.0.0.1:$broker_port
export CONVEYOR_AGENT_FILE=$root/deploy/config/bank-agent.yaml
export CONVEYOR_INTENT_MODEL=$model
say "starting conveyor: orchestrator on http://127.0.0.1:$conveyor_http and one of each worker"
start orchestrator "$bin/conveyor-orchestrator" --http-port "$conveyor_http" \
    --control-endpoint "tcp://127.0.0.1:$orchestrator_control"
for service in intent gatherer decision executor responder; do
    free_port control
    start "$service" "$bin/conveyor-$service" --instance "$service-1" --control-endpoint "tcp://127.0.0.1:$control"
done

free_port peer_http
say "starting the LangGraph.js peer on http://127.0.0.1:$peer_http"
start peer env PEER_DATABASE_URL="$CONVEYOR_DATABASE_URL" PEER_HTTP_PORT="$peer_http" node "$peer_dir/server.mjs"

conveyor_api=http://127.0.0.1:$conveyor_http
peer_api=http://127.0.0.1:$peer_http
wait_http conveyor "$conveyor_api/readyz"
wait_http "the peer" "$peer_api/healthz"

# Both must give the same answer to the workload's question before anything is measured.
question=$(jq -cn '{user_id: "cust-1", text: "Where is my new card? It still hasn'"'"'t arrived"}')
ask() {
    local name=$1 url=$2 status
    status=$(curl -sS -m 30 -o "$tmp/answer-$name.json" -w '%{http_code}' -X POST "$url/v1/requests" \
        -H 'Content-Type: application/json' --data-binary "$question" 2>>"$tmp/curl.log") || status=000
    [[ $status == 200 ]] || die "$name does not answer POST /v1/requests: HTTP $status $(head -c 300 "$tmp/answer-$name.json" 2>/dev/null)"
    jq -c '{intent: .intent.name, rule: .decision.rule, reply: .reply.text}' "$tmp/answer-$name.json" ||
        die "$name answered something that is not JSON"
}
conveyor_answer=$(ask conveyor "$conveyor_api")
peer_answer=$(ask peer "$peer_api")
[[ $conveyor_answer == "$peer_answer" ]] ||
    die "the two sides answer differently; conveyor: $conveyor_answer; peer: $peer_answer"
jq -e '.reply | contains("CP482913374IE")' <<<"$conveyor_answer" >/dev/null ||
    die "the reply for cust-1 lacks its tracking number CP482913374IE: $conveyor_answer"
say "both answer: $(jq -r .reply <<<"$conveyor_answer")"

# ---------------------------------------------------------------------------------------------
# The runs.

# bench NAME URL CLIENTS SECONDS OUT [warmup]: one `conveyor bench` run, its JSON in OUT.
bench() {
    local name=$1 url=$2 c=$3 d=$4 out=$5 warming=${6:-}
    local rc=0
    check_alive "before the $name run"
    run_waited bench_pid timeout -s TERM $((d + 120)) "$bin/conveyor" bench --url "$url" \
        --requests "$requests_file" -c "$c" -d "$d" --json >"$out" 2>>"$tmp/bench.log" || rc=$?
    check_alive "during the $name run"
    # 1: no request was answered, which a warm-up of a cold side may see; anything else is a failure.
    if [[ $rc -ne 0 && ! ($rc -eq 1 && -n $warming) ]]; then
        [[ $rc -eq 1 ]] && die "$name answered no request at $c clients: $(jq -c .errors "$out" 2>/dev/null || head -c 300 "$out")"
        die "conveyor bench against $name ($url, $c clients) failed (exit $rc) or timed out; see bench.log"
    fi
    [[ -n $warming ]] && return 0
    jq -e '.throughput_rps != null and .latency_ms.p50 != null' "$out" >/dev/null 2>&1 ||
        die "conveyor bench against $name printed no usable JSON: $(head -c 300 "$out")"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# idle_percent: how idle the machine's CPUs were over the last 2 s (before the runs: others' load).
idle_percent() {
    local a b
    a=$(head -1 /proc/stat)
    sleep 2
    b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x); split(b, y); for (i = 2; i <= n; i++) t += y[i] - x[i]
                                     printf "%.0f", (t > 0 ? 100 * (y[5] - x[5]) / t : 0) }'
}
# cpu_ticks SIDE: user + system CPU time of the side's processes so far, in clock ticks.
cpu_ticks() {
    local name total=0 stat rest
    for name in "${order[@]}"; do
        if [[ $1 == peer && $name != peer ]] || [[ $1 == conveyor && $name == peer ]]; then
            continue
        fi
        stat=$(cat "/proc/${pids[$name]}/stat" 2>/dev/null) || continue
        rest=${stat##*) }   # the fields after the command name; utime and stime are its 12th and 13th
        total=$((total + $(awk '{ print $12 + $13 }' <<<"$rest")))
    done
    echo "$total"
}
# pg_ticks SIDE: CPU time so far of the PostgreSQL backends serving the side's connections (the
# peer's are named langgraph-peer-*), in clock ticks.
pg_ticks() {
    local op="NOT LIKE" pid total=0 stat rest
    [[ $1 == peer ]] && op="LIKE"
    for pid in $(sql "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'
                        AND pid <> pg_backend_pid() AND application_name $op 'langgraph-peer%'"); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        total=$((total + $(awk '{ print $12 + $13 }' <<<"$rest")))
    done
    echo "$total"
}
clk_tck=$(getconf CLK_TCK)
declare -A pg_ms=()
declare -A cpu_ms=()
load_before=$(loadavg)
idle_before=$(idle_percent)
for side in conveyor peer; do
    url=$conveyor_api
    [[ $side == peer ]] && url=$peer_api
    if [[ $warmup -gt 0 ]]; then
        say "warming up $side for $warmup s"
        bench "$side" "$url" 32 "$warmup" "$tmp/warmup-$side.json" warmup
    fi
done
for c in $clients; do
    for side in conveyor peer; do
        url=$conveyor_api
        [[ $side == peer ]] && url=$peer_api
        # Write out what the previous run left in shared buffers, so it is not paid for by this one.
        sql "CHECKPOINT" >/dev/null
        say "measuring $side at $c clients for $duration s"
        ticks=$(cpu_ticks "$side")
        pticks=$(pg_ticks "$side")
        bench "$side" "$url" "$c" "$duration" "$tmp/$side-$c.json"
        cpu_ms[$side-$c]=$(( ($(cpu_ticks "$side") - ticks) * 1000 / clk_tck ))
        pg_ms[$side-$c]=$(( ($(pg_ticks "$side") - pticks) * 1000 / clk_tck ))
    done
done
load_after=$(loadavg)

# Peak resident memory of every process, before anything is stopped.
rss_rows=""
conveyor_rss_kb=0
for name in "${order[@]}"; do
    pid=${pids[$name]}
    # `env` exec'd node, so the pid is node's own.
    kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    proc=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | awk '{ n = split($1, p, "/"); print p[n] }')
    rss_rows+="| $name | $proc | $(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }') |"$'\n'
    [[ $name != peer ]] && conveyor_rss_kb=$((conveyor_rss_kb + kb))
done

# What each side wrote for durability.
conveyor_requests=$(sql "SELECT count(*) FROM requests")
conveyor_checkpoints=$(sql "SELECT count(*) FROM checkpoints")
peer_threads=$(sql "SELECT count(DISTINCT thread_id) FROM langgraph.checkpoints")
peer_checkpoints=$(sql "SELECT count(*) FROM langgraph.checkpoints")
peer_blobs=$(sql "SELECT count(*) FROM langgraph.checkpoint_blobs")
peer_writes=$(sql "SELECT count(*) FROM langgraph.checkpoint_writes")
per() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# ---------------------------------------------------------------------------------------------
# The report.

# `errors` is {"total", "by_kind"} in conveyor bench's JSON.
errors='(.errors | if type == "object" then .total else . end)'
field() { jq -r "$2" "$tmp/$1.json"; }
fmt() { awk -v v="$1" -v p="$2" 'BEGIN { printf "%.*f", p, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else print "-" }'; }

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
cat <<EOF
## pipeline-4: conveyor and LangGraph.js side by side

Command: \`$command_line\` — machine: $(nproc) cores ($cpu_model), $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null),
kernel $(uname -r); date: $(date -u '+%Y-%m-%d %H:%M UTC'); CPUs ${idle_before}% idle just before the runs; load average $load_before before, $load_after after.

Both sides use one PostgreSQL $pg_version ($pg_settings), the demo bank with $customers customers,
requests from ${requests_file#"$root"/}, ${duration} s per run after a ${warmup} s warm-up per side, driven by \`conveyor bench\`.
conveyor: the orchestrator and one of each worker${CONVEYOR_CAPACITY:+ (CONVEYOR_CAPACITY=$CONVEYOR_CAPACITY)}, binaries from ${bin#"$root"/}$(
    [[ $bin == "$root"/* ]] && echo " of the checkout at" || echo "; the checkout is at"
) $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?').
Peer: Node.js $(node --version), @langchain/langgraph $(lock_version @langchain/langgraph),
@langchain/langgraph-checkpoint-postgres $(lock_version @langchain/langgraph-checkpoint-postgres), pg $(lock_version pg),
durability ${PEER_DURABILITY:-sync}, pools of ${PEER_TOOLS_POOL:-10} (tools) and ${PEER_CHECKPOINT_POOL:-10} (checkpointer) connections; \`npm ci\` took ${npm_seconds} s.

| side | clients | requests | errors | throughput (req/s) | p50 (ms) | p99 (ms) | CPU a request (ms) | PostgreSQL CPU a request (ms) | throughput ratio (conveyor / peer) | p50 ratio (peer / conveyor) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
for c in $clients; do
    c_rps=$(field "conveyor-$c" .throughput_rps)
    p_rps=$(field "peer-$c" .throughput_rps)
    c_p50=$(field "conveyor-$c" .latency_ms.p50)
    p_p50=$(field "peer-$c" .latency_ms.p50)
    for side in conveyor peer; do
        f=$side-$c
        if [[ $side == conveyor ]]; then
            r1=$(ratio "$c_rps" "$p_rps")
            r2=$(ratio "$p_p50" "$c_p50")
        else
            r1=""
            r2=""
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$side" "$c" "$(field "$f" .requests)" \
            "$(field "$f" "$errors")" "$(fmt "$(field "$f" .throughput_rps)" 1)" "$(fmt "$(field "$f" .latency_ms.p50)" 2)" \
            "$(fmt "$(field "$f" .latency_ms.p99)" 2)" "$(per "${cpu_ms[$f]}" "$(field "$f" .requests)")" \
            "$(per "${pg_ms[$f]}" "$(field "$f" .requests)")" "$r1" "$r2"
    done
done
for c in $clients; do
    for side in conveyor peer; do
        if [[ $(field "$side-$c" "$errors") != 0 ]]; then
            echo
            echo "Errors of $side at $c clients: $(field "$side-$c" '.errors | if type == "object" then .by_kind else . end' | jq -c .)"
        fi
    done
done
cat <<EOF

CPU a request: user and system time of the side's own processes during the run (conveyor's five, the
peer's node), divided by the requests; PostgreSQL CPU a request: the same for the PostgreSQL backends
serving the side's connections (WAL writer, checkpointer and the other shared processes not counted).
Peak resident memory (VmHWM) at the end of the runs; PostgreSQL's own processes are not counted on either side.

| process | program | peak RSS (MiB) |
|---|---|---:|
${rss_rows}| conveyor, all five processes | | $(awk -v k="$conveyor_rss_kb" 'BEGIN { printf "%.1f", k / 1024 }') |

Rows written for durability, warm-ups and the check included: conveyor $conveyor_checkpoints checkpoints for
$conveyor_requests requests ($(per "$conveyor_checkpoints" "$conveyor_requests") a request, plus its \`requests\` row);
the peer $peer_checkpoints checkpoints, $peer_blobs blobs and $peer_writes pending writes for $peer_threads threads
($(per "$peer_checkpoints" "$peer_threads") + $(per "$peer_blobs" "$peer_threads") + $(per "$peer_writes" "$peer_threads") a request).
EOF
