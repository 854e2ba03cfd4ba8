#!/usr/bin/env bash
# fake-llm as shell and end-to-end tests run it: the base URL on stdout's first line, scripted by
# flags and over HTTP, a clean exit 0 on SIGTERM, exit 1 on a bad step.
# usage: fake_llm_binary_test.sh PATH/TO/fake-llm
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

# A bad step is refused at start.
if "$bin" --step '{"mode": "teleport"}' >/dev/null 2>"$work/err"; then fail "a bad step was accepted"; fi
grep -q "mode must be" "$work/err" || fail "the refusal does not say why: $(cat "$work/err")"

# Start it; the first line is the handshake.
mkfifo "$work/out"
"$bin" --port 0 --step '{"mode": "status", "status": 503, "retry_after": "1"}' \
       --default '{"mode": "intent"}' --intent card=card_arrival >"$work/out" &
pid=$!
exec 3<"$work/out"
read -r -t 20 url <&3 || fail "no base URL on stdout"
[[ $url =~ ^http://127\.0\.0\.1:[0-9]+/v1$ ]] || fail "not a base URL: $url"
root=${url%/v1}
chat='{"model": "m", "messages": [{"role": "user", "content": "Where is my card?"}]}'

code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$chat" "$url/chat/completions")
[ "$code" = 503 ] || fail "the scripted step gave $code, not 503"
answer=$(curl -s -H 'Authorization: Bearer k' -H 'Content-Type: application/json' -d "$chat" "$url/chat/completions")
[ "$(jq -r '.choices[0].message.content' <<<"$answer")" = '{"intent":"card_arrival"}' ] || fail "intent: $answer"

# Scripted at run time: a hanging answer holds the client until it gives up.
curl -s -f -X POST -d '{"mode": "hang"}' "$root/_fake/steps" >/dev/null || fail "POST /_fake/steps"
rc=0; curl -s -m 0.5 -d "$chat" "$url/chat/completions" >/dev/null || rc=$?
[ "$rc" = 28 ] || fail "a hanging answer ended with curl exit $rc, not 28 (timeout)"

requests=$(curl -s -f "$root/_fake/requests")
[ "$(jq length <<<"$requests")" = 3 ] || fail "recorded: $requests"
[ "$(jq -r '.[1].authorization' <<<"$requests")" = "Bearer k" ] || fail "authorization not recorded"

# SIGTERM: a clean stop, exit 0.
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "exit $rc after SIGTERM"
echo "ok"
