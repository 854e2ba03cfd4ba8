#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in their own build tree and runs each for SECONDS.
#   run_fuzz.sh SOURCE_DIR BUILD_DIR SECONDS
set -euo pipefail
source_dir=$1 build_dir=$2 seconds=$3
command -v clang >/dev/null || { echo "run_fuzz: clang is required (deploy/local/bootstrap installs it)" >&2; exit 1; }
cmake -S "$source_dir" -B "$build_dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCONVEYOR_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target fuzz-envelope >/dev/null
mkdir -p "$build_dir/corpus/envelope"
# A few seeds: real envelopes written by the self-test helper, so mutations start from valid messages.
"$build_dir/bin/fuzz-envelope" -max_total_time="$seconds" -max_len=4096 -timeout=5 -print_final_stats=1 \
    "$build_dir/corpus/envelope" "$source_dir/tests/fuzz/corpus/envelope" 2>&1 | tail -n 20
