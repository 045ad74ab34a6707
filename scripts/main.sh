#!/usr/bin/env bash
# The main job: builds ActorGraph in release mode, compiles the default example graph from Graphs/
# (diamond) and executes it, printing its result and latency percentiles.
# Extra arguments are passed to `actorgraph run` (e.g. --count 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product actorgraph
exec .build/release/actorgraph run diamond "$@"
