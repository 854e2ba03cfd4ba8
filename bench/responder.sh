#!/usr/bin/env bash
# The responder and the LLM client, then the front door: template reply latency, the LLM client's
# overhead over the stand-in LLM server with and without the answer cache (bench-responder), and,
# against a running stack, the time to the first streamed event of POST /v1/chat/completions with
# stream: true (curl's time to the first byte of the body, loopback connect included).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() {
    cat <<'EOF_USAGE'
usage: bench/responder.sh [--url URL] [-n REQUESTS] [--rounds N]

  --url URL      a running stack's API (e.g. `make run`'s http://127.0.0.1:8080) for the streamed
                 chat completions; without it only bench-responder runs
  -n REQUESTS    streamed chat completions to time (default 200, after 20 to warm up)
  --rounds N     bench-responder's rounds (default 20000)

Environment: CONVEYOR_BIN (default build/bin).
EOF_USAGE
}
url="" requests=200 rounds=20000
while [[ $# -gt 0 ]]; do
    case $1 in
        --url) url=${2:?}; shift 2 ;;
        -n) requests=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
bin=${CONVEYOR_BIN:-$root/build/bin}
bench_name=responder
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$root/bench/lib.sh"
[[ -x $bin/bench-responder ]] || die "$bin/bench-responder is missing; build first (with the tests)"

say "machine: $(bench_machine)"
"$bin/bench-responder" "$root/deploy/config/bank-agent.yaml" "$rounds"
[[ -n $url ]] || exit 0

command -v curl >/dev/null || die "curl is not installed"
model=$(curl -sS -m 5 "$url/v1/models" | jq -r '.data[0].id') || die "no model at $url/v1/models"
body=$(jq -cn --arg m "$model" '{model: $m, user: "cust-1", stream: true,
    messages: [{role: "user", content: "Where is my new card? It still hasnt arrived"}]}')
samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
for i in $(seq 1 $((requests + 20))); do
    line=$(curl -sS -N -m 30 -o /dev/null -w '%{http_code} %{time_starttransfer} %{time_total}' \
        -H 'Content-Type: application/json' --data-binary "$body" "$url/v1/chat/completions")
    [[ ${line%% *} == 200 ]] || die "a streamed chat completion answered ${line%% *}"
    [[ $i -gt 20 ]] && echo "${line#* }" >>"$samples"
done
report() { # COLUMN WHAT
    sort -n -k"$1" "$samples" | awk -v col="$1" -v what="$2" '{ v[NR] = $col * 1000 }
        END { printf "%-44s n=%d  p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n", what, NR,
              v[int(NR * 0.50 + 0.5)], v[int(NR * 0.90 + 0.5)], v[int(NR * 0.99 + 0.5)], v[NR] }'
}
report 1 "first streamed event, /v1/chat/completions"
report 2 "whole streamed answer, [DONE] included"
