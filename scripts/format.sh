#!/usr/bin/env bash
# swift-format with this repository's .swift-format (swift-nio's settings: line length 120).
#   bash scripts/format.sh --check        fail if formatting would change one of the checked files (CI)
#   bash scripts/format.sh --check --all  the same for every Swift file of the tree
#   bash scripts/format.sh --apply        format every Swift file of the tree in place
# The check formats copies of the files and compares them with the originals, so what `--apply` writes
# always passes it. Rules that only lint (that formatting cannot fix) are not part of the check:
# `swift format lint --configuration .swift-format FILE` shows them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every Swift file of the tree: the packages' sources, tests, example graphs, benchmarks and manifests,
# the fixture packages included; never a build directory.
all_files() {
    find Package.swift Sources Tests Graphs Benchmarks -name '*.swift' \
        -not -path '*/.build/*' -not -path '*/.build-*/*' -not -path '*/.swiftpm/*' | LC_ALL=C sort
}

# The tree is formatted: the default check covers every file (false: only the files listed below).
whole_tree_formatted=true
checked_files() {
    if $whole_tree_formatted; then all_files; return; fi
    printf '%s\n' \
        Sources/ActorGraph/Compiler/CompileError.swift \
        Sources/ActorGraph/Runtime/ExecutionError.swift \
        Tests/ActorGraphTests/ErrorTypesTests.swift
}

swift_format() {
    if swift format --version >/dev/null 2>&1; then swift format "$@"; else swift-format "$@"; fi
}

mode=${1:---check}
scope=${2:-}
case "$mode" in
--apply)
    mapfile -t files < <(all_files)
    swift_format format --configuration .swift-format --parallel --in-place "${files[@]}"
    echo "format: formatted ${#files[@]} files"
    ;;
--check)
    if [ "$scope" = --all ]; then mapfile -t files < <(all_files); else mapfile -t files < <(checked_files); fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    for f in "${files[@]}"; do mkdir -p "$work/$(dirname "$f")"; cp "$f" "$work/$f"; done
    (cd "$work" && swift_format format --configuration "$OLDPWD/.swift-format" --parallel --in-place "${files[@]}")
    changed=0
    for f in "${files[@]}"; do
        if ! cmp -s "$f" "$work/$f"; then
            changed=$((changed + 1))
            diff -u "$f" "$work/$f" | head -20 || true
        fi
    done
    if [ "$changed" -gt 0 ]; then
        echo "format: $changed of ${#files[@]} files are not formatted: run bash scripts/format.sh --apply"
        exit 1
    fi
    echo "format: ${#files[@]} files formatted"
    ;;
*)
    echo "usage: bash scripts/format.sh [--check [--all] | --apply]" >&2
    exit 2
    ;;
esac
