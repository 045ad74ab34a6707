#!/usr/bin/env bash
# Runs the whole test suite (unit, engine, platform, example graphs). No test asserts on timing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build --disable-swift-testing
