#!/usr/bin/env bash
# Builds and runs the whole XCTest suite under ThreadSanitizer, then under AddressSanitizer
# (+ LeakSanitizer), each in its own scratch path so the plain debug build is untouched.
# ASan suppresses only XCTest's own leaks, by name (scripts/sanitizers/lsan-xctest.supp); TSan one
# stdlib-internal continuation hand-off it cannot see (scripts/sanitizers/tsan-swift-concurrency.supp).
# Usage: bash scripts/sanitizers.sh [thread|address ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizers=("$@")
[ ${#sanitizers[@]} -eq 0 ] && sanitizers=(thread address)
# Property tests: fewer graphs under the sanitizers (each run is 5–20x slower); the full count runs
# in the plain test pass.
export ACTORGRAPH_PROPERTY_GRAPHS="${ACTORGRAPH_SANITIZER_PROPERTY_GRAPHS:-1500}"
# The Swift runtime's crash backtracer fights the sanitizers' own reports: leave reporting to them.
export SWIFT_BACKTRACE="enable=no"
for sanitizer in "${sanitizers[@]}"; do
    case "$sanitizer" in
    thread) scratch=.build-tsan
        export TSAN_OPTIONS="halt_on_error=1 abort_on_error=0 second_deadlock_stack=1 suppressions=$PWD/scripts/sanitizers/tsan-swift-concurrency.supp print_suppressions=1 ${TSAN_OPTIONS:-}" ;;
    address) scratch=.build-asan
        export ASAN_OPTIONS="detect_leaks=1 abort_on_error=0 ${ASAN_OPTIONS:-}"
        export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/lsan-xctest.supp print_suppressions=1 ${LSAN_OPTIONS:-}"
        export ASAN_OPTIONS="$ASAN_OPTIONS malloc_context_size=8" ;;
    *) echo "sanitizers.sh: unknown sanitizer '$sanitizer' (thread or address)" >&2; exit 2 ;;
    esac
    echo "== ${sanitizer} sanitizer: build (${scratch})"
    # ACTORGRAPH_SANITIZE instruments this package's targets (see Package.swift: SwiftPM's
    # --sanitize would instrument swift-collections too, which Swift 6.3.1 cannot compile under TSan).
    ACTORGRAPH_SANITIZE="$sanitizer" swift build --build-tests --scratch-path "$scratch"
    echo "== ${sanitizer} sanitizer: test"
    # Suites that supervise child worker processes (isolation, serve under signals, pieces of graphs
    # spanning hosts, --stats runs of the CLI) are skipped: under a sanitizer each child starts the
    # sanitizer's runtime too, and their
    # start-up/teardown timing checks (no child left behind) do not hold; they run in the plain pass.
    ACTORGRAPH_SANITIZE="$sanitizer" swift test --skip-build --disable-swift-testing --scratch-path "$scratch" \
        --skip 'IsolationTests|IsolatedExamplesTests|ServeProcessTests|StatsCommandTests|RemoteRigTests|RayClusterTests'
    echo "== ${sanitizer} sanitizer: clean"
done
