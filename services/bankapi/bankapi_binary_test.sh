#!/usr/bin/env bash
# conveyor-bankapi as a user runs it: on a free port (read from its start-up log line), answering
# /healthz and a rate, made to fail over /_test/faults, refusing /_test/ without --test-control,
# and a clean exit 0 on SIGTERM.
# usage: bankapi_binary_test.sh PATH/TO/conveyor-bankapi
set -euo pipefail
bin=$1
work=$(mktemp -d)
pid=
cleanup () {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }

# Starts the binary with "$@", logging to $work/log; sets pid and root once it serves.
start () {
    : >"$work/log"
    "$bin" --bankapi-port 0 --as-of 2026-11-21 "$@" 2>"$work/log" &
    pid=$!
    for _ in $(seq 200); do
        port=$(grep -o 'serving HTTP on 127\.0\.0\.1:[0-9]*' "$work/log" | grep -o '[0-9]*$' || true)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || fail "it exited: $(cat "$work/log")"
        sleep 0.1
    done
    [ -n "$port" ] || fail "no start-up line: $(cat "$work/log")"
    root="http://127.0.0.1:$port"
}
stop () {
    kill -TERM "$pid"
    rc=0; wait "$pid" || rc=$?
    pid=
    [ "$rc" = 0 ] || fail "exit $rc after SIGTERM"
}

start --test-control
curl -s -f "$root/healthz" | jq -e '.ok == true' >/dev/null || fail "/healthz"
rate=$(curl -s -f "$root/v1/fx/EUR/GBP")
[ "$(jq -r .rate <<<"$rate")" = 0.86 ] || fail "EUR/GBP: $rate"
parcel=$(curl -s -f "$root/v1/deliveries/CP482913374IE")
[ "$(jq -r .carrier <<<"$parcel")" = "An Post" ] || fail "parcel: $parcel"
grep -q '"settings"\|bankapi-port' "$work/log" || fail "the effective settings are not logged"

curl -s -f -X POST -d '{"route": "fx", "status": 429, "mode": "status", "retry_after": "5"}' \
     "$root/_test/faults" >/dev/null || fail "POST /_test/faults"
headers=$(curl -s -o /dev/null -D - "$root/v1/fx/EUR/GBP")
grep -q '^HTTP/1.1 429' <<<"$headers" || fail "the fault did not apply: $headers"
grep -qi '^Retry-After: 5' <<<"$headers" || fail "no Retry-After: $headers"
curl -s -f -X DELETE "$root/_test/faults" >/dev/null || fail "DELETE /_test/faults"
curl -s -f "$root/v1/fx/EUR/GBP" >/dev/null || fail "still failing after the reset"
stop

# Faults from the flags; no control route without --test-control.
start --fault-route deliveries --fail-rate 100 --fail-mode close
code=$(curl -s -o /dev/null -w '%{http_code}' "$root/_test/faults")
[ "$code" = 404 ] || fail "/_test/faults without --test-control gave $code"
rc=0; curl -s "$root/v1/deliveries/CP482913374IE" >/dev/null || rc=$?
[ "$rc" = 52 ] || fail "a closing route gave curl exit $rc, not 52 (empty reply)"
curl -s -f "$root/v1/fx/EUR/USD" >/dev/null || fail "the other route failed too"
stop
echo "ok"
