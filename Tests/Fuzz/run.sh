#!/usr/bin/env bash
# Builds the libFuzzer harness (Tests/Fuzz/ package, -sanitize=fuzzer,address) and runs it.
# Usage: bash Tests/Fuzz/run.sh [RUNS]   (default 1 000 000 inputs; any libFuzzer flags may follow)
set -euo pipefail
cd "$(dirname "$0")"
runs="${1:-1000000}"; shift || true
swift build -c release --product TelematicsRecordFuzzer \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp >&2
mkdir -p .corpus .artifacts
# .corpus/ collects what libFuzzer finds (ignored by git); seeds/ holds the committed seed inputs.
SWIFT_BACKTRACE=enable=no .build/release/TelematicsRecordFuzzer .corpus seeds -runs="$runs" -max_len=65507 \
    -artifact_prefix=.artifacts/ -print_final_stats=1 "$@"
