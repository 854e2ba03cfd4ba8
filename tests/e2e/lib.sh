# The end-to-end harness: starts the built binaries as a user would, on free ports, against a
# fresh database in the fixture's PostgreSQL, and stops them when the test exits.
#
# A test sources this file with CONVEYOR_BIN (the build's bin/), CONVEYOR_TEST_PG (the fixture's
# folder) and CONVEYOR_SOURCE_DIR set by ctest, then calls e2e_setup NAME. Waits poll with a bound;
# nothing sleeps for a fixed time to let things settle. Every service connects as
# CONVEYOR_DATABASE_URL says, but the gatherer, which connects as E2E_GATHERER_URL: the same
# database as its read-only login role conveyor_gatherer (deploy/sql/roles.sql), and the
# executor, which connects as that database's conveyor_executor (it may only call the bank's
# actions; nothing sends it work yet).
set -euo pipefail
# Loopback traffic never goes through a proxy a CI machine may have configured.
export no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy} NO_PROXY=127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}

: "${CONVEYOR_BIN:?}" "${CONVEYOR_TEST_PG:?}" "${CONVEYOR_SOURCE_DIR:?}"
E2E_HEARTBEAT_MS=${E2E_HEARTBEAT_MS:-200}

declare -A E2E_PIDS=()      # name -> pid
E2E_DIR=""
E2E_DB=""
E2E_GATHERER_URL=""

e2e_log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
e2e_fail() {
    e2e_log "FAIL: $*"
    if [[ -n $E2E_DIR ]]; then
        for log in "$E2E_DIR"/*.log; do
            [[ -f $log ]] || continue
            e2e_log "--- last lines of $(basename "$log")"
            tail -n 15 "$log" >&2
        done
    fi
    exit 1
}
e2e_ok() { e2e_log "ok: $*"; }

# shellcheck source=ports.sh
source "$CONVEYOR_SOURCE_DIR/tests/e2e/ports.sh"
e2e_port_busy() { ports_busy "$1"; }
# The database at URL $1 (one of deploy/local/pg's, as conveyor), as the gatherer's login role.
e2e_as_gatherer() { sed 's|^postgresql://conveyor@|postgresql://conveyor_gatherer@|' <<<"$1"; }
# A port nobody listens on, held for this test under the lock every test shares (tests/e2e/ports.sh).
e2e_free_port() { ports_take || e2e_fail "no free port"; }

e2e_cleanup() {
    local status=$? name code unclean=""
    for name in "${!E2E_PIDS[@]}"; do kill -TERM "${E2E_PIDS[$name]}" 2>/dev/null || true; done
    # A service must stop cleanly on SIGTERM, within 60 s: exit 0, and no sanitizer report in an
    # ASan build. One that does not stop is named and killed, rather than left to ctest's timeout.
    local deadline=$((SECONDS + 60))
    for name in "${!E2E_PIDS[@]}"; do
        while kill -0 "${E2E_PIDS[$name]}" 2>/dev/null && [[ $SECONDS -lt $deadline ]]; do sleep 0.1; done
        if kill -0 "${E2E_PIDS[$name]}" 2>/dev/null; then
            e2e_log "$name did not stop within 60 s of SIGTERM; its threads:"
            grep -h '^State' /proc/"${E2E_PIDS[$name]}"/task/*/status 2>/dev/null | sort | uniq -c >&2 || true
            kill -KILL "${E2E_PIDS[$name]}" 2>/dev/null || true
        fi
        code=0
        wait "${E2E_PIDS[$name]}" 2>/dev/null || code=$?
        [[ $code -eq 0 ]] || unclean="$unclean $name($code)"
    done
    if [[ -n $unclean ]]; then
        E2E_KEEP=1
        e2e_log "FAIL: not a clean stop on SIGTERM:$unclean; logs kept in $E2E_DIR"
        status=1
    fi
    if [[ -n ${E2E_PRIVATE_PG:-} ]]; then
        "$CONVEYOR_SOURCE_DIR/deploy/local/pg" stop "$E2E_PRIVATE_PG" >/dev/null 2>&1 || true
    fi
    if [[ -n $E2E_DB ]]; then
        timeout 60 psql -X -q -d "$(cat "$CONVEYOR_TEST_PG/url")" -c "DROP DATABASE IF EXISTS $E2E_DB WITH (FORCE)" \
            >/dev/null 2>&1 || e2e_log "could not drop the test's database $E2E_DB within 60 s"
    fi
    ports_release
    [[ -n $E2E_DIR && -z ${E2E_KEEP:-} ]] && rm -rf "$E2E_DIR"
    exit "$status"
}

# e2e_setup NAME: a fresh migrated and generated database, free ports, a folder for logs.
e2e_setup() {
    local name=$1
    E2E_DIR=$(mktemp -d "/tmp/conveyor-e2e-$name.XXXXXX")
    # Traversable by the postgres OS user, so that a private cluster lives here (and goes with the
    # folder) rather than being moved to /var/tmp by deploy/local/pg.
    chmod 755 "$E2E_DIR"
    trap e2e_cleanup EXIT
    E2E_DB="e2e_${name}_$$"
    export CONVEYOR_DATABASE_URL
    CONVEYOR_DATABASE_URL=$("$CONVEYOR_SOURCE_DIR/tests/fixtures/pg_fixture.sh" createdb "$CONVEYOR_TEST_PG" "$E2E_DB")
    E2E_GATHERER_URL=$(e2e_as_gatherer "$CONVEYOR_DATABASE_URL")
    E2E_HTTP_PORT=$(e2e_free_port)
    E2E_BROKER=tcp://127.0.0.1:$(e2e_free_port)
    E2E_CONTROL=tcp://127.0.0.1:$(e2e_free_port)
    E2E_API=http://127.0.0.1:$E2E_HTTP_PORT
    # The gatherer's http tools call the test's own bank API (e2e_start_bankapi), never one on
    # the agent file's default port.
    export CONVEYOR_BANKAPI_URL=http://127.0.0.1:$(e2e_free_port)
    export CONVEYOR_BROKER_ENDPOINT=$E2E_BROKER
    export CONVEYOR_HEARTBEAT_MS=$E2E_HEARTBEAT_MS
    export CONVEYOR_AGENT_FILE=${CONVEYOR_AGENT_FILE:-$CONVEYOR_SOURCE_DIR/deploy/config/bank-agent.yaml}
    export CONVEYOR_INTENT_MODEL=$CONVEYOR_BIN/../models/banking77.model
}

# e2e_private_pg: a PostgreSQL of the test's own (for tests that stop and start it), migrated and
# seeded; CONVEYOR_DATABASE_URL points at it from then on.
e2e_private_pg() {
    # The postgres user (when the tests run as root) must be able to enter the test's folder, or
    # deploy/local/pg puts the cluster in /var/tmp, where nothing removes it.
    chmod o+x "$E2E_DIR"
    E2E_PRIVATE_PG=$E2E_DIR/pg
    E2E_PG_PORT=$(e2e_free_port)
    "$CONVEYOR_SOURCE_DIR/deploy/local/pg" start "$E2E_PRIVATE_PG" "$E2E_PG_PORT" 2>>"$E2E_DIR/pg.log" ||
        e2e_fail "the test's own PostgreSQL did not start"
    CONVEYOR_DATABASE_URL=$("$CONVEYOR_SOURCE_DIR/deploy/local/pg" url "$E2E_PG_PORT")
    "$CONVEYOR_BIN/conveyor" migrate >/dev/null && "$CONVEYOR_BIN/conveyor" seed --customers 20 >/dev/null &&
        "$CONVEYOR_SOURCE_DIR/deploy/local/pg" roles "$CONVEYOR_DATABASE_URL" ||
        e2e_fail "cannot install the schema in the test's own PostgreSQL"
    E2E_GATHERER_URL=$(e2e_as_gatherer "$CONVEYOR_DATABASE_URL")
}

e2e_psql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$CONVEYOR_DATABASE_URL" "$@"; }

# e2e_start_orchestrator [extra flags]: conveyor-orchestrator, or the binary E2E_ORCHESTRATOR names
# (its crash-test build, say).
e2e_start_orchestrator() {
    "$CONVEYOR_BIN/${E2E_ORCHESTRATOR:-conveyor-orchestrator}" --http-port "$E2E_HTTP_PORT" --control-endpoint "$E2E_CONTROL" \
        --recovery-interval-ms 500 "$@" >>"$E2E_DIR/orchestrator.log" 2>&1 &
    E2E_PIDS[orchestrator]=$!
}

# e2e_start_worker SERVICE NAME [extra flags]: NAME is its instance id and log name. Its control
# endpoint is on a port the system picks (nothing here probes a worker directly). A gatherer
# connects as E2E_GATHERER_URL, unless the extra flags say otherwise (the last flag wins); an
# executor as its own role. SERVICE may name a crash-test build: executor-crashes.
e2e_start_worker() {
    local service=$1 name=$2 own=()
    shift 2
    [[ $service == gatherer && -n $E2E_GATHERER_URL ]] && own=(--database-url "$E2E_GATHERER_URL")
    [[ ${service%-crashes} == executor ]] &&
        own=(--database-url "$(sed 's|^postgresql://conveyor@|postgresql://conveyor_executor@|' <<<"$CONVEYOR_DATABASE_URL")")
    "$CONVEYOR_BIN/conveyor-$service" --instance "$name" --control-endpoint 'tcp://127.0.0.1:*' \
        "${own[@]}" "$@" >>"$E2E_DIR/$name.log" 2>&1 &
    E2E_PIDS[$name]=$!
}

# e2e_start_bankapi [extra flags]: the bank's other systems at CONVEYOR_BANKAPI_URL, their test
# controls on (POST $CONVEYOR_BANKAPI_URL/_test/faults makes a route slow or failing).
e2e_start_bankapi() {
    "$CONVEYOR_BIN/conveyor-bankapi" --bankapi-port "${CONVEYOR_BANKAPI_URL##*:}" --test-control "$@" \
        >>"$E2E_DIR/bankapi.log" 2>&1 &
    E2E_PIDS[bankapi]=$!
    e2e_wait 30 "the bank API" curl -sf "$CONVEYOR_BANKAPI_URL/healthz"
}

# e2e_start_fake_llm [flags]: the stand-in LLM server (tests/fakes/fake_llm.h) on a free port;
# E2E_LLM_URL is its base URL (".../v1"), E2E_LLM_URL%/v1 its /_fake/ controls' root.
e2e_start_fake_llm() {
    "$CONVEYOR_BIN/fake-llm" --port 0 "$@" >"$E2E_DIR/fake-llm.out" 2>>"$E2E_DIR/fake-llm.log" &
    E2E_PIDS[fake-llm]=$!
    e2e_wait 10 "the stand-in LLM" test -s "$E2E_DIR/fake-llm.out"
    E2E_LLM_URL=$(head -1 "$E2E_DIR/fake-llm.out")
}

e2e_start_stack() {
    e2e_start_bankapi
    e2e_start_orchestrator
    e2e_start_worker intent intent-1
    e2e_start_worker gatherer gatherer-1
    e2e_start_worker decision decision-1
    e2e_start_worker responder responder-1
    e2e_start_worker executor executor-1
    e2e_wait_ready
}

# e2e_kill NAME [SIGNAL]
e2e_kill() {
    local name=$1 signal=${2:-TERM}
    kill -"$signal" "${E2E_PIDS[$name]}"
    wait "${E2E_PIDS[$name]}" 2>/dev/null || true
    unset "E2E_PIDS[$name]"
}

# e2e_wait TIMEOUT_S DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it succeeds; fails at
# once when a process the test started has exited.
e2e_wait() {
    local timeout=$1 what=$2 name
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        for name in "${!E2E_PIDS[@]}"; do
            kill -0 "${E2E_PIDS[$name]}" 2>/dev/null || e2e_fail "$name exited while waiting for $what"
        done
        [[ $SECONDS -lt $deadline ]] || e2e_fail "timed out after ${timeout}s waiting for $what"
        sleep 0.1
    done
}

e2e_ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$E2E_API/readyz") == 200 ]]; }
e2e_wait_ready() { e2e_wait 30 "the stack to be ready" e2e_ready; }

# e2e_post JSON: prints "STATUS BODY" of POST /v1/requests.
e2e_post() {
    curl -sS -m 30 -o "$E2E_DIR/body" -w '%{http_code}' -X POST "$E2E_API/v1/requests" \
        -H 'Content-Type: application/json' --data-binary "$1" >"$E2E_DIR/status" || true
    printf '%s %s' "$(cat "$E2E_DIR/status")" "$(cat "$E2E_DIR/body")"
}

# e2e_ask USER TEXT: POSTs and prints the answer's body; fails unless 200.
e2e_ask() {
    local answer status
    answer=$(e2e_post "$(jq -cn --arg u "$1" --arg t "$2" '{user_id: $u, text: $t}')")
    status=${answer%% *}
    [[ $status == 200 ]] || e2e_fail "POST '$2' answered $status: ${answer#* }"
    printf '%s' "${answer#* }"
}

# e2e_expect DESCRIPTION JSON JQ_FILTER: the filter must print true.
e2e_expect() {
    local result
    result=$(jq -r "$3" <<<"$2") || e2e_fail "$1: bad JSON: $2"
    [[ $result == true ]] || e2e_fail "$1: '$3' is $result in $2"
}
