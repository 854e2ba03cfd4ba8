#!/bin/sh
# conveyor bench as a user meets it without a stack: --help lists every option, bad options and
# arguments exit 2 with one line, a malformed --requests file is named by file:line, and a run
# against a closed port counts connection errors, stays bounded by -n and -d, and exits 1.
#   bench_usage_test.sh PATH_TO_CONVEYOR
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
# The defaults must not come from the caller's environment.
unset CONVEYOR_URL CONVEYOR_CLIENTS CONVEYOR_DURATION CONVEYOR_COUNT CONVEYOR_RATE CONVEYOR_REQUESTS \
    CONVEYOR_NEW_CONNECTION CONVEYOR_TIMEOUT_MS CONVEYOR_JSON CONVEYOR_PLOT CONVEYOR_PROGRESS
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
closed=http://127.0.0.1:1   # port 1: nothing listens there

# json FILTER: stdout is one JSON object for which the jq FILTER is true.
json() {
    one_line out
    [ "$(jq -r "$1" "$work/out")" = true ] || fail "'$1' is not true"
}

expect 0 --help
has out "bench"
has out "bench: no request answered"
expect 0 bench --help
has out "usage: conveyor bench [options]"
for option in --url --clients --duration --count --rate --requests --new-connection --timeout-ms --json --plot \
    --progress --help; do
    has out "$option "
done
has out "-c CLIENTS, -d SECONDS, -n COUNT"
has out "default http://127.0.0.1:8080"
has out '"errors": {"total", "by_kind": {KIND: COUNT}}'
has out "Exit status: 0 when at least one request was answered"
expect 0 help bench
has out "usage: conveyor bench [options]"

expect 2 bench --bogus
has err "conveyor bench: unknown option --bogus"
one_line err
expect 2 bench extra
has err "conveyor bench: takes no arguments, got 'extra'"
expect 2 bench -c 0
has err "outside 1..10000"
expect 2 bench -c
has err "--clients needs a value"
expect 2 bench -c4x
has err "4x is not a whole number"
expect 2 bench -d soon
has err "soon is not a whole number"
expect 2 bench -n -1
has err "outside 0..1000000000"
expect 2 bench --rate -5
expect 2 bench --timeout-ms 0
expect 2 bench --url ftp://127.0.0.1:21
has err "--url must be an http:// or https:// URL"
one_line err
CONVEYOR_CLIENTS=many "$bin" bench >"$work/out" 2>"$work/err"
[ $? -eq 2 ] || fail "a bad CONVEYOR_CLIENTS is not a usage error"
has err "CONVEYOR_CLIENTS"

# --requests: a malformed line is named by file:line, and nothing is sent.
printf '{"user_id": "cust-1", "text": "I lost my card"}\n\n{"user_id": "cust-2", "text": "hi"}\nnot json\n' \
    >"$work/bad.jsonl"
expect 2 bench --url "$closed" --requests "$work/bad.jsonl"
has err "conveyor bench: $work/bad.jsonl:4: not JSON"
one_line err
[ ! -s "$work/out" ] || fail "a refused --requests file printed a report"
printf '{"user_id": "cust-1", "text": "I lost my card"}\n{"user_id": "cust-1"}\n' >"$work/bad.jsonl"
expect 2 bench --url "$closed" --requests "$work/bad.jsonl"
has err "$work/bad.jsonl:2: not an object with string fields user_id and text"
printf '["cust-1", "I lost my card"]\n' >"$work/bad.jsonl"
expect 2 bench --url "$closed" --requests "$work/bad.jsonl"
has err "$work/bad.jsonl:1: not an object"
printf '{"user_id": "cust-1", "text": 7}\n' >"$work/bad.jsonl"
expect 2 bench --url "$closed" --requests "$work/bad.jsonl"
has err "$work/bad.jsonl:1:"
printf '\n   \n' >"$work/empty.jsonl"
expect 2 bench --url "$closed" --requests "$work/empty.jsonl"
has err "$work/empty.jsonl holds no requests"
expect 2 bench --url "$closed" --requests "$work/missing.jsonl"
has err "cannot read $work/missing.jsonl"

# Nothing listens: every request a connection error, exit 1 with one line on stderr, the report
# still on stdout. -n bounds the count, -d the time.
printf '\n{"user_id": "cust-1", "text": "I lost my card"}\n\n' >"$work/good.jsonl"
expect 1 bench --url "$closed" -n 5 -c 2 --json --requests "$work/good.jsonl"
json '.requests == 5 and .answered == 0 and .errors.total == 5 and .errors.by_kind.connection == 5'
json '.mode == "closed" and .clients == 2 and .latency_ms.p50 == null and .throughput_rps == 0'
has err "conveyor bench: no request was answered: 5 failed (connection: 5)"
one_line err
expect 1 bench --url "$closed" --rate 100 -d 1 -n 10 --json
json '.requests == 10 and .mode == "open" and .rate_rps == 100 and .errors.by_kind.connection == 10'
started=$(date +%s)
expect 1 bench --url "$closed" -d 1 -c 3
[ $(($(date +%s) - started)) -lt 30 ] || fail "a 1 s run against a closed port took 30 s or more"
has out "connection: "
has out "latency     none answered"

# --plot: written even when nothing was answered; an unwritable path fails before the run.
expect 1 bench --url "$closed" -n 3 --plot "$work/latency.svg"
head -c 4 "$work/latency.svg" | grep -q '^<svg' || fail "the plot does not begin with <svg"
grep -q 'no answered requests' "$work/latency.svg" || fail "the empty plot does not say so"
expect 1 bench --url "$closed" -n 3 --plot "$work/no/such/folder/latency.svg"
has err "cannot write $work/no/such/folder/latency.svg"
[ ! -s "$work/out" ] || fail "a run with an unwritable --plot went ahead"
echo "ok - bench against a closed port"
