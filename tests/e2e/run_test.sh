#!/usr/bin/env bash
# End to end: `make run` as a user runs it, stopped by SIGTERM sent to its whole process group (as a
# terminal's hang-up, a process supervisor or `kill -- -PGID` does) and by SIGINT (Ctrl-C). Each
# time every service and PostgreSQL must stop, and the script must say so.
source "$(dirname "$0")/lib.sh"
E2E_DIR=$(mktemp -d /tmp/conveyor-e2e-run.XXXXXX)
chmod 755 "$E2E_DIR"  # so that make run's cluster lives here, not in /var/tmp (see deploy/local/pg)
trap 'for pid in $(pgrep -f "$E2E_DIR" || true); do kill -KILL "$pid" 2>/dev/null || true; done; rm -rf "$E2E_DIR"' EXIT

# The run script under make, as the README's `make run` has it (without its build step).
printf 'run:\n\t@%s/deploy/local/run\n' "$CONVEYOR_SOURCE_DIR" >"$E2E_DIR/Makefile"

run_and_stop() {
    local signal=$1 log=$E2E_DIR/run-$1.log
    export CONVEYOR_RUN_DIR=$E2E_DIR/var CONVEYOR_DEMO_CUSTOMERS=20
    export CONVEYOR_HTTP_PORT=$(e2e_free_port) CONVEYOR_PG_PORT=$(e2e_free_port)
    export CONVEYOR_BROKER_PORT=$(e2e_free_port) CONVEYOR_CONTROL_PORT_BASE=$(e2e_free_port)
    export CONVEYOR_BANKAPI_PORT=$(e2e_free_port) CONVEYOR_METRICS_PORT_BASE=$(e2e_free_port)
    setsid make -s -f "$E2E_DIR/Makefile" run >"$log" 2>&1 &
    local make_pid=$!
    # Serving: the stack is ready and the script's three sample requests are done.
    serving() {
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CONVEYOR_HTTP_PORT/readyz") == 200 ]] &&
            [[ $(psql -X -q -At -d "$("$CONVEYOR_SOURCE_DIR/deploy/local/pg" url "$CONVEYOR_PG_PORT")" \
                -c "SELECT count(*) FROM requests WHERE status = 'done'") -ge 3 ]]
    }
    e2e_wait 120 "make run to serve" serving
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CONVEYOR_HTTP_PORT/healthz") == 200 ]] ||
        e2e_fail "make run serves, but not on its port"
    # the responder, fourth of the workers, shows its metrics on the fourth port (once it has
    # replied: a second run finds the first one's requests done before its own are)
    responder_metrics() {
        curl -sS "http://127.0.0.1:$((CONVEYOR_METRICS_PORT_BASE + 3))/metrics" | grep -q '^conveyor_reply_steps_total{'
    }
    e2e_wait 30 "make run's responder to show its reply steps on port $((CONVEYOR_METRICS_PORT_BASE + 3))" responder_metrics
    # the gatherer reads the bank as its read-only role: while it answers a request, its sessions
    # (named after its instance) are there, and every one of them is conveyor_gatherer's
    gatherer_as_its_role() {
        curl -s -o /dev/null -X POST "http://127.0.0.1:$CONVEYOR_HTTP_PORT/v1/requests" \
            -d '{"user_id": "cust-1", "text": "I lost my card"}'
        [[ $(psql -X -q -At -d "$("$CONVEYOR_SOURCE_DIR/deploy/local/pg" url "$CONVEYOR_PG_PORT")" -c \
            "SELECT count(*) FILTER (WHERE usename = 'conveyor_gatherer') || ' ' || count(*) FILTER (WHERE usename <> 'conveyor_gatherer')
               FROM pg_stat_activity WHERE application_name LIKE 'gatherer-%'") =~ ^[1-9][0-9]*\ 0$ ]]
    }
    e2e_wait 30 "make run's gatherer to read the bank as conveyor_gatherer, and only as it" gatherer_as_its_role
    kill -"$signal" -- -"$make_pid"
    local deadline=$((SECONDS + 60))
    while kill -0 "$make_pid" 2>/dev/null; do
        [[ $SECONDS -lt $deadline ]] || e2e_fail "make run did not end within 60 s of SIG$signal"
        sleep 0.1
    done
    # The script may still be stopping what it started: done once the lock it holds while it runs
    # (and what it started inherits) is free.
    finished() { flock -n "$CONVEYOR_RUN_DIR/run.lock" true; }
    e2e_wait 30 "the script to finish its clean-up" finished
    grep -q 'conveyor: stopped' "$log" || e2e_fail "SIG$signal to make run's process group: the script did not say it stopped"
    local pg_status=0
    "$CONVEYOR_SOURCE_DIR/deploy/local/pg" status "$E2E_DIR/var/pg" >/dev/null || pg_status=$?
    [[ $pg_status -eq 3 ]] || e2e_fail "SIG$signal to make run's process group left PostgreSQL running"
    left=$(pgrep -fa "conveyor-.*$CONVEYOR_CONTROL_PORT_BASE" || true)
    [[ -z $left ]] || e2e_fail "SIG$signal to make run's process group left services running: $left"
    e2e_ok "SIG$signal to make run's process group stops everything"
}
run_and_stop TERM
run_and_stop INT
e2e_log "PASS"
