#!/usr/bin/env bash
# The intent classifier's benchmarks (issue 3): 5-fold cross-validated accuracy and macro-F1 on the
# training split, the fast path at 70/80/90% coverage, training time and model size (from
# `conveyor train`), single-query latency on one core, and the intent worker's resident memory.
#   bench/intent.sh [BUILD_DIR]      (default build; run `make` first)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin=$build/bin
data=$root/data/banking77/train.csv
work=$(mktemp -d /tmp/conveyor-bench.XXXXXX)
trap 'kill "${worker:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(date -u +%Y-%m-%d)"
echo "== conveyor train (5-fold CV on $data)"
/usr/bin/time -f "wall %e s, max RSS %M KB" "$bin/conveyor" train --data "$data" --out "$work/model" --quiet
ls -l "$work/model" | awk '{print "model file", $5, "bytes"}'

echo "== single-query latency, one core (taskset -c 0), 3 passes over the training texts"
taskset -c 0 "$bin/bench-intent-latency" "$work/model" "$data" "$root/deploy/config/bank-agent.yaml" 3

echo "== the intent worker's resident memory, serving, with the model loaded"
CONVEYOR_INTENT_MODEL=$work/model "$bin/conveyor-intent" --agent-file "$root/deploy/config/bank-agent.yaml" \
    --broker-endpoint tcp://127.0.0.1:1 --control-endpoint 'tcp://127.0.0.1:*' 2>"$work/intent.log" &
worker=$!
for _ in $(seq 1 100); do grep -q '"serving' "$work/intent.log" && break; sleep 0.05; done
grep VmRSS "/proc/$worker/status"
