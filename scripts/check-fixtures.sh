#!/usr/bin/env bash
# Swift-6 API checks that live outside the main build (issue 8), and the docs as a newcomer pastes them (issue 18):
#  1. Data races through the API must not compile: each racy target of
#     Tests/Fixtures/RacesMustNotCompile must fail with Swift's diagnostic; the `Safe` control must build and run.
#  2. ActorGraph must work as a *versioned* dependency (no unsafe build flags in its library products), and
#     every ```swift block of README.md, BENCHMARKS.md, RELIABILITY.md and the DocC articles
#     (Sources/ActorGraph/*.docc/**/*.md) must compile and run as the main.swift of a package depending on it:
#     a clone of this repository's HEAD is tagged 0.1.0, each block becomes an executable target of one copy of
#     Tests/Fixtures/VersionedDependency (one build for all), and each is run. Markers on the line(s) just
#     before a block's fence:
#       <!-- fragment -->          not a program (skipped; keep these very few)
#       <!-- expect: TEXT -->      its output must contain TEXT
#     A block starting with `// swift-tools-version` is a manifest: `swift package dump-package` must accept it.
#     The docs are read from the working tree; the library comes from HEAD (commit first).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== fixtures: races must not compile"
races=Tests/Fixtures/RacesMustNotCompile
(cd "$races" && swift build --product Safe >"$work/safe.log" 2>&1) || { cat "$work/safe.log"; echo "FAIL: the Safe control did not build"; exit 1; }
(cd "$races" && swift run --skip-build Safe)
check_rejected() {
    local target=$1 expected=$2
    if (cd "$races" && swift build --target "$target" >"$work/$target.log" 2>&1); then
        echo "FAIL: $target compiled, but it races on data"; exit 1
    fi
    if ! grep -qF -- "$expected" "$work/$target.log"; then
        cat "$work/$target.log"; echo "FAIL: $target was rejected, but not with: $expected"; exit 1
    fi
    echo "ok: $target rejected: $(grep -F -- "$expected" "$work/$target.log" | head -1 | sed 's/.*error: //')"
}
check_rejected RacyCapture "capture of 'box' with non-Sendable type 'Box' in a '@Sendable' closure"
check_rejected NonSendableStage "stored property 'cache' of 'Sendable'-conforming struct 'Counting' has non-Sendable type 'Cache'"
check_rejected LeakedActorState "as a 'sending' result risks causing data races"
check_rejected NonSendableValue "type 'Message' does not conform to the 'Sendable' protocol"

echo "== fixtures: ActorGraph as a versioned dependency; every Swift block of the docs, as pasted"
git clone -q "$root" "$work/ActorGraph"
git -C "$work/ActorGraph" tag 0.1.0
consumer="$work/consumer"
cp -r Tests/Fixtures/VersionedDependency "$consumer"
rm -rf "$consumer/.build"
docs=(README.md BENCHMARKS.md RELIABILITY.md)
while IFS= read -r article; do docs+=("$article"); done < <(find Sources/ActorGraph -path '*.docc/*' -name '*.md' | sort)
# One line per block in $work/blocks.tsv: target, kind (program|manifest|fragment), file:line, expected text.
for doc in "${docs[@]}"; do
    prefix=$(basename "$doc" .md | tr -c 'A-Za-z0-9\n' '_')
    awk -v doc="$doc" -v prefix="$prefix" -v out="$consumer/Sources" -v manifests="$work/manifests" -v index_file="$work/blocks.tsv" '
        function flush_markers() { fragment = 0; expect = "" }
        inside && /^```[ \t]*$/ {
            inside = 0; close(file)
            printf "%s\t%s\t%s:%d\t%s\n", target, kind, doc, start, expect >> index_file
            flush_markers(); next
        }
        inside {
            if (lines == 0 && $0 ~ /^\/\/ swift-tools-version/) {
                kind = "manifest"; dir = manifests "/" target
                system("mkdir -p \"" dir "/Sources/App\""); file = dir "/Package.swift"
                print "print(0)" > (dir "/Sources/App/main.swift"); close(dir "/Sources/App/main.swift")
            }
            if (kind != "fragment") print > file
            lines++; next
        }
        /^```swift[ \t]*$/ {
            count++; start = NR; inside = 1; lines = 0
            target = sprintf("%s_%02d", prefix, count)
            kind = fragment ? "fragment" : "program"
            file = out "/" target "/main.swift"
            if (kind == "program") system("mkdir -p \"" out "/" target "\"")
            next
        }
        /^<!-- fragment -->[ \t]*$/ { fragment = 1; next }
        /^<!-- expect: .* -->[ \t]*$/ { line = $0; sub(/^<!-- expect: /, "", line); sub(/ -->[ \t]*$/, "", line); expect = line; next }
        { flush_markers() }
    ' "$doc"
done
# A manifest block that was written as a program directory first is moved out of the build.
while IFS=$'\t' read -r target kind where expect; do
    [[ $kind == manifest ]] && rm -rf "$consumer/Sources/$target"
done < "$work/blocks.tsv"
programs=$(awk -F'\t' '$2 == "program"' "$work/blocks.tsv" | wc -l)
manifests=$(awk -F'\t' '$2 == "manifest"' "$work/blocks.tsv" | wc -l)
fragments=$(awk -F'\t' '$2 == "fragment"' "$work/blocks.tsv" | wc -l)
echo "blocks: $programs program(s), $manifests manifest(s), $fragments fragment(s) (target = file:line):"
awk -F'\t' '{ printf "  %-24s %-9s %s\n", $1, $2, $3 }' "$work/blocks.tsv"

while IFS=$'\t' read -r target kind where expect; do
    [[ $kind == manifest ]] || continue
    (cd "$work/manifests/$target" && swift package dump-package >"$work/$target.log" 2>&1) \
        || { cat "$work/$target.log"; echo "FAIL: the manifest block at $where is not a valid Package.swift"; exit 1; }
done < "$work/blocks.tsv"

(cd "$consumer" && ACTORGRAPH_URL="file://$work/ActorGraph" swift build --manifest-cache none >"$work/consumer.log" 2>&1) \
    || { grep -E "error:|warning:" "$work/consumer.log" | sort -u || cat "$work/consumer.log"
         echo "FAIL: a documentation block did not compile (Sources/TARGET/main.swift: see the table above for its file:line)"; exit 1; }
if grep -E "^/.*/Sources/[A-Za-z0-9_]+/main\.swift:[0-9]+:[0-9]+: warning:" "$work/consumer.log" | sort -u | grep .; then
    echo "FAIL: a documentation block compiles with warnings (deprecated API?)"; exit 1
fi
bin=$(cd "$consumer" && ACTORGRAPH_URL="file://$work/ActorGraph" swift build --manifest-cache none --show-bin-path)
run_block() {
    local target=$1 where=$2 expect=$3 out
    if ! out=$(cd "$work" && timeout 300 "$bin/$target" 2>&1); then
        echo "$out"; echo "FAIL: the block at $where ($target) did not run to completion"; exit 1
    fi
    if [[ -n $expect ]] && ! grep -qF -- "$expect" <<<"$out"; then
        echo "$out"; echo "FAIL: the block at $where ($target) did not print: $expect"; exit 1
    fi
    echo "ok: $where ran${expect:+, printed \"$expect\"}"
}
while IFS=$'\t' read -r target kind where expect; do
    [[ $kind == program ]] && run_block "$target" "$where" "$expect"
done < "$work/blocks.tsv"
run_block PublicSurface Tests/Fixtures/VersionedDependency "public surface: 42"
echo "fixtures: 4 racy programs rejected, Safe control built; versioned dependency built and ran $programs documentation block(s), $manifests manifest(s) accepted, $fragments fragment(s) skipped"
