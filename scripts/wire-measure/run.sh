#!/usr/bin/env bash
# Measures encode and decode of the embedding-query example's values three ways, to choose how
# values that are not trivially copyable cross worker processes (issue 16, point 7):
#   wire            the engine's WireCodec over WireEncodable (Sources/ActorGraph/Channels), into a slot
#   binary Codable  a minimal keyless binary Codable coder (BinaryCodable.swift, this folder), into a slot
#   JSON            Foundation's JSONEncoder + JSONDecoder
# Builds one optimized binary from the engine's two codec files and this folder (no package build).
# Usage: bash scripts/wire-measure/run.sh   (prints one line per value; best of 3 rounds, ns per value)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
channels="$here/../../Sources/ActorGraph/Channels"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
swiftc -O -module-name WireMeasure "$channels/WireEncodable.swift" "$channels/WireCodec.swift" \
    "$here/BinaryCodable.swift" "$here/main.swift" -o "$out/wire-measure"
"$out/wire-measure"
