# The chaos harness, on top of the end-to-end one (tests/e2e/lib.sh): a stack with two copies of
# every worker under steady load from `conveyor bench`, clients that keep the request ids they are
# given, and the checks every scenario ends with: no request left running, each request's checkpoints
# a beginning of its stages (1 intent, 2 gather, 3 decide, 4 execute when the decision has actions,
# 5 respond) without gap or repeat, every answered request done with all of them and its actions
# performed, each once in the bank, every request id a client was given finished, and a short clean
# bench run. Everything is bounded: a load runs for
# seconds, a wait polls with a deadline, and a fault is paced by the test's own clock.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

CHAOS_SERVICES=(intent gatherer decision executor responder)
CHAOS_NAME=""
CHAOS_BENCH_PID=""
CHAOS_WITNESS_PIDS=()
declare -A CHAOS_CONTROL=()  # worker name -> its control endpoint, the same for each of its starts

# chaos_setup NAME: e2e_setup, and the load's processes stopped too when the test exits.
chaos_setup() {
    CHAOS_NAME=$1
    e2e_setup "$1"
    trap 'chaos_exit_status=$?; set +e; chaos_stop_load; (exit $chaos_exit_status); e2e_cleanup' EXIT
}

# The load generators may still run when a check fails: they are stopped before the stack, and
# a process left stopped by SIGSTOP is continued, so that it can stop on SIGTERM.
chaos_stop_load() {
    local pid name
    for name in "${!E2E_PIDS[@]}"; do kill -CONT "${E2E_PIDS[$name]}" 2>/dev/null; done
    for pid in $CHAOS_BENCH_PID "${CHAOS_WITNESS_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    CHAOS_BENCH_PID=""
    CHAOS_WITNESS_PIDS=()
    return 0
}

# chaos_start_worker SERVICE NAME [flags]: e2e_start_worker, with its control endpoint on a port
# taken for NAME at its first start and held by the test until it exits (the last flag wins), so
# that each start of NAME binds it again and chaos_worker_serving knows where to ask.
chaos_start_worker() {
    [[ -n ${CHAOS_CONTROL[$2]:-} ]] || CHAOS_CONTROL[$2]=tcp://127.0.0.1:$(e2e_free_port)
    e2e_start_worker "$@" --control-endpoint "${CHAOS_CONTROL[$2]}"
}

# chaos_worker_serving NAME: NAME answers a probe on its control endpoint, ok: it is up and its
# own check passes (a copy stopped or killed does not answer; only NAME binds that port).
chaos_worker_serving() {
    local line
    line=$("$CONVEYOR_BIN/conveyor" probe "${CHAOS_CONTROL[$1]}" --timeout-ms 1000 2>/dev/null) &&
        [[ $(jq -r .instance <<<"$line" 2>/dev/null) == "$1" ]]
}

# chaos_workers_ready N: readiness says N workers of each service.
chaos_workers_ready() {
    local checks service
    checks=$(curl -s -m 5 "$E2E_API/readyz") || return 1
    for service in "${CHAOS_SERVICES[@]}"; do
        [[ $(jq -r ".checks.$service" <<<"$checks" 2>/dev/null) == "$1" ]] || return 1
    done
}

# chaos_start_stack [orchestrator flags]: the demo bank's HTTP service (once), the orchestrator and
# two copies of every worker, NAME-1 and NAME-2 (intent-1, intent-2...); returns when each is
# connected.
chaos_start_stack() {
    local service
    [[ -n ${E2E_PIDS[bankapi]:-} ]] || e2e_start_bankapi
    e2e_start_orchestrator "$@"
    for service in "${CHAOS_SERVICES[@]}"; do
        chaos_start_worker "$service" "$service-1"
        chaos_start_worker "$service" "$service-2"
    done
    e2e_wait 30 "two workers of each service" chaos_workers_ready 2
}

# chaos_bench_start ARGS...: conveyor bench --json in the background; chaos_bench_wait collects it.
chaos_bench_start() {
    "$CONVEYOR_BIN/conveyor" bench --url "$E2E_API" --json "$@" >"$E2E_DIR/bench.json" 2>"$E2E_DIR/bench.err" &
    CHAOS_BENCH_PID=$!
}

# chaos_bench_wait TIMEOUT_S: waits for the background bench (which bounds itself by -d and
# --timeout-ms); its report is then in $CHAOS_BENCH.
chaos_bench_wait() {
    [[ -n $CHAOS_BENCH_PID ]] || return 0 # collected already
    local deadline=$((SECONDS + $1))
    while kill -0 "$CHAOS_BENCH_PID" 2>/dev/null; do
        [[ $SECONDS -lt $deadline ]] || e2e_fail "bench still running after ${1}s"
        sleep 0.1
    done
    local rc=0
    wait "$CHAOS_BENCH_PID" || rc=$?
    CHAOS_BENCH_PID=""
    CHAOS_BENCH=$(cat "$E2E_DIR/bench.json")
    jq -e . >/dev/null 2>&1 <<<"$CHAOS_BENCH" || e2e_fail "bench (exit $rc) printed no report: $(cat "$E2E_DIR/bench.err")"
    [[ $rc -eq 0 ]] || e2e_fail "bench exited $rc (no request answered): $CHAOS_BENCH"
}

# chaos_witness_start SECONDS [N] [keyed]: N (1) clients that POST one request after another for
# SECONDS and write a line per answer in witness-K.txt: STATUS REQUEST_ID RETRY_AFTER KEY, with
# "-" for what the answer had not ("000" as the status when there was no answer). bench counts;
# the witnesses keep ids, so the checks can ask the database about the very requests that were
# answered. With "keyed", each request has an idempotency key (KEY), which chaos_witness_post
# can send again.
CHAOS_WITNESSES=0
chaos_witness_start() {
    local seconds=$1 count=${2:-1} keyed=${3:-} k
    for ((k = 1; k <= count; k++)); do
        CHAOS_WITNESSES=$((CHAOS_WITNESSES + 1))
        s_witness "$seconds" "$E2E_DIR/witness-$CHAOS_WITNESSES" "${keyed:+w$CHAOS_WITNESSES}" &
        CHAOS_WITNESS_PIDS+=($!)
    done
}
CHAOS_TEXTS=("I lost my card" "Where is my new card?" "Why is my transfer still pending?"
    "What is my balance?" "My card payment was declined" "How do I change my PIN?")
# chaos_witness_post KEY|- N OUT: POSTs the witness's request N (with idempotency key KEY unless
# "-"); prints STATUS REQUEST_ID RETRY_AFTER KEY.
chaos_witness_post() {
    local key=$1 i=$2 out=$3 status id retry body
    body="\"user_id\": \"cust-$((i % 20 + 1))\", \"text\": \"${CHAOS_TEXTS[i % ${#CHAOS_TEXTS[@]}]}\""
    [[ $key == - ]] || body="$body, \"idempotency_key\": \"$key\""
    status=$(curl -s -m 20 -D "$out.headers" -o "$out.body" -w '%{http_code}' -X POST "$E2E_API/v1/requests" \
        -H 'Content-Type: application/json' --data-binary "{$body}")
    [[ -n $status ]] || status=000
    id=-
    [[ $(cat "$out.body" 2>/dev/null) =~ \"request_id\":\"([^\"]+)\" ]] && id=${BASH_REMATCH[1]}
    retry=$(tr -d '\r' <"$out.headers" 2>/dev/null | sed -n 's/^[Rr]etry-[Aa]fter: *//p' | head -n 1)
    rm -f "$out.body" "$out.headers"
    echo "$status $id ${retry:--} $key"
}
s_witness() {
    local deadline=$((SECONDS + $1)) out=$2 prefix=$3 i=0 line key=-
    set +e
    while [[ $SECONDS -lt $deadline ]]; do
        i=$((i + 1))
        [[ -z $prefix ]] || key=$prefix-$i
        line=$(chaos_witness_post "$key" "$i" "$out")
        echo "$line" >>"$out.txt"
        # With nothing listening, curl fails at once: do not spin.
        [[ $line == 000* ]] && sleep 0.05
    done
}

# chaos_witness_wait TIMEOUT_S: waits for the witnesses; their lines are then in witness.txt.
chaos_witness_wait() {
    [[ ${#CHAOS_WITNESS_PIDS[@]} -gt 0 ]] || return 0 # collected already
    local deadline=$((SECONDS + $1)) pid
    for pid in "${CHAOS_WITNESS_PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do
            [[ $SECONDS -lt $deadline ]] || e2e_fail "witness clients still running after ${1}s"
            sleep 0.1
        done
        wait "$pid" 2>/dev/null || true
    done
    CHAOS_WITNESS_PIDS=()
    cat "$E2E_DIR"/witness-*.txt >"$E2E_DIR/witness.txt" 2>/dev/null || true
}

# chaos_for SECONDS: lets the load run for SECONDS (fractions allowed) of the test's own clock,
# polling that every process the test started is still up.
chaos_for() {
    local until_ms=$(($(date +%s%3N) + $(awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'))) name
    while [[ $(date +%s%3N) -lt $until_ms ]]; do
        for name in "${!E2E_PIDS[@]}"; do
            kill -0 "${E2E_PIDS[$name]}" 2>/dev/null || e2e_fail "$name exited during the load"
        done
        sleep 0.1
    done
}

chaos_count() { e2e_psql -c "$1"; }
chaos_running() { chaos_count "SELECT count(*) FROM requests WHERE status = 'running'"; }
chaos_none_running() { [[ $(chaos_running) == 0 ]]; }
# chaos_log_count NAME PATTERN: lines of NAME's log with PATTERN (a fixed string).
chaos_log_count() { grep -cF -- "$2" "$E2E_DIR/$1.log" 2>/dev/null || true; }

# chaos_served: one request answered 200.
chaos_served() { [[ $(e2e_post '{"user_id": "cust-1", "text": "Where is my new card?"}') == 200* ]]; }

# chaos_wait_served TIMEOUT_S WHAT: polls until a new request is answered 200; sets CHAOS_BACK_S
# to the seconds it took.
chaos_wait_served() {
    local started_ms
    started_ms=$(date +%s%3N)
    e2e_wait "$1" "$2" chaos_served
    CHAOS_BACK_S=$(awk -v ms="$(($(date +%s%3N) - started_ms))" 'BEGIN { printf "%.1f", ms / 1000 }')
}

# Each request with the seqs of its checkpoints ("1,2,3") and the seqs of all its stages ("1,2,3,4,5"
# when its decision recorded actions, else "1,2,3,5"): id, status, seqs, stages.
CHAOS_SEQS="SELECT r.id, r.status, coalesce(string_agg(c.seq::text, ',' ORDER BY c.seq), '') AS seqs,
                   CASE WHEN EXISTS (SELECT FROM actions a WHERE a.request_id = r.id) THEN '1,2,3,4,5'
                        ELSE '1,2,3,5' END AS stages
            FROM requests r LEFT JOIN checkpoints c ON c.request_id = r.id GROUP BY r.id, r.status"

# chaos_check_store: the checkpoints' and the actions' promises, in the database. Run once nothing
# is running.
chaos_check_store() {
    local bad
    # (A request whose stage failed has the checkpoints of the stages before it, then the reply's.)
    bad=$(e2e_psql -c "SELECT id || ' has checkpoints ' || seqs || ' of ' || stages FROM ($CHAOS_SEQS) s
                       WHERE seqs <> '' AND NOT (stages || ',') LIKE (seqs || ',%')
                         AND NOT (status = 'stage_failed' AND (seqs = '5' OR (seqs LIKE '%,5'
                                  AND (stages || ',') LIKE (left(seqs, -2) || ',%') AND seqs <> stages)))")
    [[ -z $bad ]] || e2e_fail "checkpoints duplicated, missing or out of order: $bad"
    bad=$(e2e_psql -c "SELECT id FROM requests WHERE status = 'stage_failed' AND coalesce(error, '') = ''")
    [[ -z $bad ]] || e2e_fail "requests whose stage failed, with no error to say how: $bad"
    bad=$(e2e_psql -c "SELECT id || ' is done with checkpoints ' || seqs FROM ($CHAOS_SEQS) s
                       WHERE status IN ('done', 'escalated') AND seqs <> stages")
    [[ -z $bad ]] || e2e_fail "a done request without a checkpoint of each of its stages: $bad"
    # Exactly once: a done request's actions were performed, and each action's key was applied by
    # the bank once (its primary key) and for no other action.
    bad=$(e2e_psql -c "SELECT a.request_id || ' ' || a.action_id || ' ' || a.status FROM actions a
                       JOIN requests r ON r.id = a.request_id WHERE r.status IN ('done', 'escalated') AND a.status = 'recorded'")
    [[ -z $bad ]] || e2e_fail "a done request with an action not performed: $bad"
    bad=$(e2e_psql -c "SELECT b.idempotency_key FROM bank.applied_actions b LEFT JOIN actions a
                       ON b.idempotency_key = a.request_id || ':' || a.action_id WHERE a.action_id IS NULL")
    [[ -z $bad ]] || e2e_fail "the bank applied a key no action of the pipeline has: $bad"
    bad=$(e2e_psql -c "SELECT a.request_id || ' ' || a.action_id FROM actions a
                       WHERE a.status IN ('done', 'refused') AND NOT EXISTS (SELECT FROM bank.applied_actions b
                           WHERE b.idempotency_key = a.request_id || ':' || a.action_id AND b.outcome = a.status)")
    [[ -z $bad ]] || e2e_fail "an action said done or refused that the bank has no record of: $bad"
    bad=$(e2e_psql -c "SELECT id FROM requests WHERE status <> 'running' AND finished_at IS NULL")
    [[ -z $bad ]] || e2e_fail "finished requests without finished_at: $bad"
    # A decision's actions are written with its checkpoint, in one statement: none without it,
    # none from a second run of the stage.
    bad=$(e2e_psql -c "SELECT a.request_id || ' ' || a.action_id FROM actions a
                       LEFT JOIN checkpoints c ON c.request_id = a.request_id AND c.seq = 3
                       WHERE c.seq IS NULL OR a.created_at <> c.created_at")
    [[ -z $bad ]] || e2e_fail "actions recorded apart from their decision's checkpoint: $bad"
}

# chaos_check_witnessed: every request a witness was answered 200 for is done (or escalated to a
# person) with a checkpoint of each of its stages, or answered although a stage failed (stage_failed, with the reply's
# checkpoint); every request id a witness was given (a 503 of a parked request carries one) has
# finished; every 503 carries Retry-After. Sets CHAOS_WITNESSED (answers seen) and CHAOS_IDS.
chaos_check_witnessed() {
    local file=$E2E_DIR/witness.txt ids bad
    CHAOS_WITNESSED=$(wc -l <"$file")
    [[ $CHAOS_WITNESSED -gt 0 ]] || e2e_fail "the witness clients got no answer at all"
    bad=$(awk '$1 == 503 && $3 == "-"' "$file" | head -n 3)
    [[ -z $bad ]] || e2e_fail "a 503 without Retry-After: $bad"
    bad=$(awk '$1 == 200 && $2 == "-"' "$file" | head -n 3)
    [[ -z $bad ]] || e2e_fail "a 200 without a request id: $bad"
    ids=$(awk '$2 != "-" { printf "%s'\''%s'\''", sep, $2; sep = "," }' "$file")
    CHAOS_IDS=$(awk '$2 != "-"' "$file" | wc -l)
    [[ -n $ids ]] || e2e_fail "the witness clients were given no request id"
    bad=$(e2e_psql -c "SELECT i FROM unnest(ARRAY[$ids]) i WHERE NOT EXISTS (SELECT FROM requests WHERE id = i)" | head -n 3)
    [[ -z $bad ]] || e2e_fail "request ids given to a client but not in the database: $bad"
    bad=$(e2e_psql -c "SELECT id || ' ' || status FROM requests WHERE id IN ($ids) AND status NOT IN ('done', 'escalated', 'failed', 'stage_failed')")
    [[ -z $bad ]] || e2e_fail "requests given an id but not finished: $bad"
    ids=$(awk '$1 == 200 { printf "%s'\''%s'\''", sep, $2; sep = "," }' "$file")
    if [[ -n $ids ]]; then
        bad=$(e2e_psql -c "SELECT id || ' ' || status || ' with checkpoints ' || seqs FROM ($CHAOS_SEQS) s
                           WHERE id IN ($ids) AND NOT (status IN ('done', 'escalated') AND seqs = stages
                                                       OR status = 'stage_failed' AND seqs LIKE '%5')")
        [[ -z $bad ]] || e2e_fail "answered 200 but neither done with a checkpoint of each of its stages nor answered after a stage failed: $bad"
    fi
}

# chaos_check_keys FAULT_AT: each request a keyed witness sent is sent again with its key. One
# that was given a request id is answered with that id (the first run, not a second one), 200
# again when it was 200; one that had no answer (the orchestrator died) is answered too, with an
# id. Sets CHAOS_KEYS (sent again) and CHAOS_KEYS_NEW (had no answer and had left no row: recorded
# only when sent again, after FAULT_AT, a timestamp).
chaos_check_keys() {
    local fault_at=$1 status id retry key again i a_status a_id bad
    CHAOS_KEYS=0 CHAOS_KEYS_NEW=0
    while read -r status id retry key; do
        [[ $key != - ]] || continue
        i=${key##*-}
        again=$(chaos_witness_post "$key" "$i" "$E2E_DIR/again")
        CHAOS_KEYS=$((CHAOS_KEYS + 1))
        read -r a_status a_id _ <<<"$again"
        [[ $a_status == 200 || $a_status == 202 || $a_status == 50[24] ]] && [[ $a_id != - ]] ||
            e2e_fail "key $key (first answered $status $id) sent again: $again"
        [[ $id == - || $a_id == "$id" ]] ||
            e2e_fail "key $key was answered $status for $id, and $a_status for $a_id when sent again"
        [[ $status != 200 || $a_status == 200 ]] ||
            e2e_fail "key $key was answered 200 for $id, and $a_status when sent again"
        if [[ $id == - ]] && [[ $(e2e_psql -c "SELECT created_at > '$fault_at' FROM requests WHERE id = '$a_id'") == t ]]; then
            CHAOS_KEYS_NEW=$((CHAOS_KEYS_NEW + 1))
        fi
    done <"$E2E_DIR/witness.txt"
    [[ $CHAOS_KEYS -gt 0 ]] || e2e_fail "no keyed request to send again"
    bad=$(e2e_psql -c "SELECT user_id || ' ' || idempotency_key FROM requests WHERE idempotency_key IS NOT NULL
                       GROUP BY user_id, idempotency_key HAVING count(*) > 1")
    [[ -z $bad ]] || e2e_fail "two requests for one idempotency key: $bad"
}

# chaos_check_bench [ALLOWED_KINDS_REGEX]: the load's failures are all of allowed kinds (default:
# a 5xx status: a clear answer, never a hang or a dropped connection).
chaos_check_bench() {
    local allowed=${1:-'^5[0-9][0-9]$'}
    e2e_expect "the load" "$CHAOS_BENCH" ".answered > 0 and .requests == .answered + .errors.total"
    e2e_expect "the load's failures are of kinds matching $allowed" "$CHAOS_BENCH" \
        "[.errors.by_kind | keys[] | test(\"$allowed\")] | all"
}

# chaos_finish [ALLOWED_KINDS_REGEX] [EXTRA]: the checks every scenario ends with, after its last
# fault: no request left running within 30 s, the store's promises, the witnesses' requests, a
# short bench run with no error; then the scenario's summary line, with EXTRA at its end.
chaos_finish() {
    local allowed=${1:-} extra=${2:-} final left
    [[ -n ${CHAOS_BACK_S:-} ]] || chaos_wait_served 15 "the stack to serve again"
    chaos_bench_wait 60
    chaos_witness_wait 30
    chaos_check_bench "${allowed:-^5[0-9][0-9]$}"
    e2e_wait 30 "no request left running" chaos_none_running
    left=$(chaos_running)
    chaos_check_store
    chaos_check_witnessed
    e2e_wait 20 "two workers of each service" chaos_workers_ready 2
    final=$("$CONVEYOR_BIN/conveyor" bench --url "$E2E_API" --json -c 4 -n 40 2>"$E2E_DIR/bench-final.err") ||
        e2e_fail "the final bench run failed: $final $(cat "$E2E_DIR/bench-final.err")"
    e2e_expect "the final bench run" "$final" '.requests == 40 and .answered == 40 and .errors.total == 0'
    e2e_wait 30 "the final run's requests to end" chaos_none_running
    chaos_check_store
    local failed_db recovered closed actions
    failed_db=$(chaos_count "SELECT count(*) FROM requests WHERE status = 'failed'")
    actions=$(chaos_count "SELECT count(*) FROM actions")
    # Resumed by recovery, and (apart) requests it found done already, whose record it closed again.
    recovered=$(grep -F '"msg":"resuming at stage' "$E2E_DIR/orchestrator.log" | grep -cvF '(all done; closing the record)' || true)
    closed=$(chaos_log_count orchestrator '(all done; closing the record)')
    printf 'chaos.%s: sent %s, answered %s (200), failed %s, running left %s, recovered %s (and %s closed again); ' \
        "$CHAOS_NAME" "$(jq .requests <<<"$CHAOS_BENCH")" "$(jq .answered <<<"$CHAOS_BENCH")" \
        "$(jq -c .errors.by_kind <<<"$CHAOS_BENCH")" "$left" "$recovered" "$closed"
    printf 'witnesses %s answers, %s ids; failed in the database %s; actions %s; served again in %s s; final run %s/40%s\n' \
        "$CHAOS_WITNESSED" "$CHAOS_IDS" "$failed_db" "$actions" "$CHAOS_BACK_S" "$(jq .answered <<<"$final")" \
        "${extra:+; $extra}"
}
