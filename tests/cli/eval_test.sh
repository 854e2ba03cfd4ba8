#!/usr/bin/env bash
# conveyor eval: a labelled file through the intent logic in process and through a live
# conveyor-intent's control endpoint, the JSON report's keys and figures, and its refusals.
#   eval_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1 source=$2
model=$bin/../models/banking77.model
agent=$source/deploy/config/bank-agent.yaml
dir=$(mktemp -d /tmp/conveyor-eval.XXXXXX)
# shellcheck source=../e2e/ports.sh
source "$source/tests/e2e/ports.sh"
trap 'kill "${worker:-0}" 2>/dev/null || true; ports_release; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Texts of the training split (the model knows them), a rule's text, quoting and a multi-line field.
cat >"$dir/data.csv" <<'CSV'
text,category
I want to start using my card.,activate_my_card
"I still haven't received my card after two weeks, is it lost?",card_arrival
I was charged twice for the same thing,transaction_charged_twice
"Why is my transfer
still pending?",pending_transfer
What is the exchange rate for USD?,exchange_rate
CSV

local_report=$("$bin/conveyor" eval --data "$dir/data.csv" --model "$model" --agent-file "$agent" --json) ||
    fail "in-process eval failed"
jq -e '.n == 5 and (.accuracy | type) == "number" and (.macro_f1 | type) == "number"
       and (.fast_path.coverage | type) == "number" and (.fast_path.accuracy | type) == "number"
       and (.latency_us.p50 | type) == "number" and (.latency_us.p99 >= .latency_us.p50)
       and .methods.rule.n == 1 and .methods.rule.accuracy == 1 and .accuracy >= 0.8' <<<"$local_report" >/dev/null ||
    fail "in-process report: $local_report"
echo "ok: in process: $local_report"

# The same file through a live worker: same answers, latency as the round trip.
port=$(ports_take) || fail "no free port"
"$bin/conveyor-intent" --agent-file "$agent" --intent-model "$model" --broker-endpoint tcp://127.0.0.1:1 \
    --control-endpoint "tcp://127.0.0.1:$port" 2>"$dir/intent.log" &
worker=$!
for _ in $(seq 1 100); do
    "$bin/conveyor" probe "tcp://127.0.0.1:$port" --timeout-ms 200 >/dev/null 2>&1 && break
    kill -0 "$worker" 2>/dev/null || fail "the worker exited at start: $(cat "$dir/intent.log")"
    sleep 0.05
done
remote_report=$("$bin/conveyor" eval --data "$dir/data.csv" --endpoint "tcp://127.0.0.1:$port" --json) ||
    fail "eval against the worker failed"
[[ "$(jq -c '[.n, .accuracy, .methods]' <<<"$remote_report")" == "$(jq -c '[.n, .accuracy, .methods]' <<<"$local_report")" ]] ||
    fail "the worker's answers differ: $remote_report vs $local_report"
echo "ok: through the worker's control endpoint: $remote_report"

# The text report names what it measures.
"$bin/conveyor" eval --data "$dir/data.csv" --model "$model" --agent-file "$agent" | grep -q '^fast path' ||
    fail "the text report has no fast path line"

# Refusals: usage (2) and failures (1), each with a reason on stderr.
code=0; "$bin/conveyor" eval --model "$model" 2>"$dir/err" || code=$?
[[ $code == 2 ]] && grep -q -- '--data' "$dir/err" || fail "no --data: exit $code, $(cat "$dir/err")"
code=0; "$bin/conveyor" eval --data "$dir/none.csv" --model "$model" --agent-file "$agent" 2>"$dir/err" || code=$?
[[ $code == 1 ]] && grep -q 'none.csv' "$dir/err" || fail "missing file: exit $code, $(cat "$dir/err")"
printf 'text,category\n"unclosed,card_arrival\n' >"$dir/bad.csv"
code=0; "$bin/conveyor" eval --data "$dir/bad.csv" --model "$model" --agent-file "$agent" 2>"$dir/err" || code=$?
[[ $code == 1 ]] && grep -q 'bad.csv' "$dir/err" || fail "malformed CSV: exit $code, $(cat "$dir/err")"
code=0; "$bin/conveyor" eval --data "$dir/data.csv" --model "$dir/data.csv" --agent-file "$agent" 2>"$dir/err" || code=$?
[[ $code == 1 ]] && grep -qi 'model' "$dir/err" || fail "not a model: exit $code, $(cat "$dir/err")"
code=0; "$bin/conveyor" eval --data "$dir/data.csv" --endpoint "tcp://127.0.0.1:1" --timeout-ms 200 2>"$dir/err" || code=$?
[[ $code == 1 ]] && grep -q 'did not answer' "$dir/err" || fail "silent endpoint: exit $code, $(cat "$dir/err")"
echo "ok: refusals"
