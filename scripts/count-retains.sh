#!/usr/bin/env bash
# Counts Swift strong retains (swift_retain, a locked write to the object's header) per execution
# of the default blocking path (`actorgraph run echo`, callers' and worker's sides together), with a
# perf uprobe on libswiftCore's swift_retain. The difference of two run lengths cancels start-up.
# A retain per call once cost 2x on the echo: the caller's write to the result board's header line,
# which the publishing worker reads (ARCHITECTURE.md, "The hot path").
# Usage: bash scripts/count-retains.sh [--max N] [binary]   (default binary: .build/release/actorgraph)
set -euo pipefail
cd "$(dirname "$0")/.."
max=""
if [ "${1:-}" = "--max" ]; then max="$2"; shift 2; fi
bin="${1:-.build/release/actorgraph}"
if ! command -v perf >/dev/null 2>&1; then
    echo "count-retains: skipped: perf is not installed"
    exit 0
fi
lib=$(ldd "$bin" | awk '/libswiftCore\.so/ {print $3}')
event=probe_libswiftCore:swift_retain
perf probe -q -d "probe_libswiftCore:*" >/dev/null 2>&1 || true
if ! perf probe -q -x "$lib" -a swift_retain >/dev/null 2>&1; then
    echo "count-retains: skipped: cannot place a uprobe on $lib (needs root and uprobes)"
    exit 0
fi
trap 'perf probe -q -d "probe_libswiftCore:*" >/dev/null 2>&1 || true' EXIT
count() {
    perf stat -x, -e "$event" "$bin" run echo --count "$1" 2>&1 >/dev/null | awk -F, '/swift_retain/ {print $1}'
}
short=$(count 50000)
long=$(count 550000)
per=$(awk -v a="$short" -v b="$long" 'BEGIN { printf "%.3f", (b - a) / 500000 }')
echo "count-retains: run echo: $short retains for 50000 executions, $long for 550000: retains_per_execution=$per"
if [ -n "$max" ] && awk -v p="$per" -v m="$max" 'BEGIN { exit !(p > m) }'; then
    echo "count-retains: FAILED: $per retains per execution, more than $max" >&2
    exit 1
fi
