#!/usr/bin/env bash
# Every binary stops cleanly, promptly and with exit status 0 on SIGTERM and on SIGINT, whichever
# of its threads the signal lands on, and fails with status 1 and a reason on a bad setting.
# Repeated, because which thread takes a signal varies from run to run. No PostgreSQL needed: the
# services connect to it lazily.
set -euo pipefail
: "${CONVEYOR_BIN:?}" "${CONVEYOR_SOURCE_DIR:?}"
export CONVEYOR_AGENT_FILE=$CONVEYOR_SOURCE_DIR/deploy/config/bank-agent.yaml
export CONVEYOR_INTENT_MODEL=$CONVEYOR_BIN/../models/banking77.model
export CONVEYOR_DATABASE_URL=postgresql://nobody@127.0.0.1:1/none
dir=$(mktemp -d /tmp/conveyor-stop.XXXXXX)
# shellcheck source=ports.sh
source "$CONVEYOR_SOURCE_DIR/tests/e2e/ports.sh"
trap 'ports_release; rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*" >&2; cat "${log:-/dev/null}" >&2 || true; exit 1; }
port() { ports_take || fail "no free port"; }
# answers PORT: the control endpoint on PORT answers a probe (ok or not: there is no PostgreSQL).
answers() {
    local line
    line=$("$CONVEYOR_BIN/conveyor" probe "tcp://127.0.0.1:$1" --timeout-ms 200 2>/dev/null) || true
    jq -e '.instance != null' <<<"$line" >/dev/null 2>&1
}

# start NAME: the binary with free ports and a log of its own, waiting until its control endpoint
# answers a probe. Ports and log name are settled here, in this shell, before the fork: a
# background child opens its redirection only when it runs.
start() {
    local name=$1 http broker control
    http=$(port)
    broker=$(port)
    control=$(port)
    log=$dir/$name.$round.$signal.log
    if [[ $name == orchestrator ]]; then
        "$CONVEYOR_BIN/conveyor-orchestrator" --http-port "$http" --broker-endpoint "tcp://127.0.0.1:$broker" \
            --control-endpoint "tcp://127.0.0.1:$control" >"$log" 2>&1 &
    else
        "$CONVEYOR_BIN/conveyor-$name" --broker-endpoint "tcp://127.0.0.1:$broker" \
            --control-endpoint "tcp://127.0.0.1:$control" >"$log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1 100); do
        answers "$control" && return 0
        kill -0 "$pid" 2>/dev/null || fail "$name exited at start"
        sleep 0.05
    done
    fail "$name did not start"
}

for name in orchestrator intent gatherer decision responder; do
    for round in 1 2 3 4 5; do
        for signal in TERM INT; do
            start "$name"
            kill -"$signal" "$pid"
            timeout 10 tail -s 0.05 --pid="$pid" -f /dev/null || fail "$name did not stop within 10 s of SIG$signal (round $round)"
            code=0
            wait "$pid" || code=$?
            [[ $code -eq 0 ]] || fail "$name exited with $code after SIG$signal"
            grep -q '"stopped"' "$log" || fail "$name did not log that it stopped"
        done
    done
    log=$dir/$name.bad-setting.log
    if "$CONVEYOR_BIN/conveyor-$name" --heartbeat-ms 0 >"$log" 2>&1; then
        fail "$name accepted --heartbeat-ms 0"
    fi
    grep -q 'heartbeat-ms' "$log" || fail "$name did not name the bad setting"
    echo "ok: $name stops cleanly on SIGTERM and SIGINT, refuses a bad setting"
done
