# Helpers the benchmark scripts share: messages, free ports, and a private PostgreSQL with the
# demo bank. A script sets `bench_name` (its messages' prefix) and `bin` (the build's bin/), then
# sources this file. Bash; nothing here runs by itself.
# shellcheck shell=bash

# Loopback traffic never goes through a proxy the machine may have configured.
export no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy} NO_PROXY=127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '%s: %s\n' "${bench_name:?}" "$*" >&2; }
die() { say "$*"; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A port nobody listens on, below the kernel's ephemeral range (32768-60999).
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 12768))
        port_busy "$port" || { echo "$port"; return; }
    done
    die "no free port"
}

# bench_pg_start DIR CUSTOMERS: a PostgreSQL cluster in DIR (deploy/local/pg) on a free port,
# migrated, with the demo bank of CUSTOMERS customers (seed 42) and the services' roles
# (deploy/sql/roles.sql); CONVEYOR_DATABASE_URL is exported pointing at it, and
# BENCH_GATHERER_URL and BENCH_EXECUTOR_URL are the URLs of the gatherer's read-only role and of
# the executor's, which may only call the bank's actions. Its start log is DIR-start.log, the
# server's DIR/log.
bench_pg_start() {
    local dir=$1 customers=$2 port
    port=$(free_port)
    "$bench_root/deploy/local/pg" start "$dir" "$port" >"$dir-start.log" 2>&1 || die "PostgreSQL did not start; see $dir-start.log"
    export CONVEYOR_DATABASE_URL
    CONVEYOR_DATABASE_URL=$("$bench_root/deploy/local/pg" url "$port")
    "$bin/conveyor" migrate >/dev/null || die "conveyor migrate failed"
    "$bin/conveyor" seed --customers "$customers" --seed 42 >/dev/null || die "conveyor seed failed"
    "$bench_root/deploy/local/pg" roles "$CONVEYOR_DATABASE_URL" >/dev/null || die "the roles did not apply"
    BENCH_GATHERER_URL=$("$bench_root/deploy/local/pg" url "$port" conveyor_gatherer)
    BENCH_EXECUTOR_URL=$("$bench_root/deploy/local/pg" url "$port" conveyor_executor)
}

# bench_pg_stop DIR: stops the cluster in DIR; fine if it is not running.
bench_pg_stop() { "$bench_root/deploy/local/pg" stop "$1" >/dev/null 2>&1 || true; }

# The peak resident set of process PID in MB (VmHWM), "?" when it has gone.
peak_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1000}' "/proc/$1/status" 2>/dev/null || echo "?"; }

# The machine, for the line beside the figures.
bench_machine() {
    echo "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"
}
