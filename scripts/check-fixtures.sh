#!/usr/bin/env bash
# Swift-6 API checks that live outside the main build (issue 8):
#  1. Data races through the API must not compile: each racy target of
#     Tests/Fixtures/RacesMustNotCompile must fail with Swift's diagnostic; the `Safe` control must build and run.
#  2. ActorGraph must work as a *versioned* dependency (no unsafe build flags in its library products):
#     a clone of this repository's HEAD is tagged 0.1.0 and Tests/Fixtures/VersionedDependency depends on it
#     with `from: "0.1.0"`; its main.swift is the README's first example, verbatim, at top level.
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

echo "== fixtures: ActorGraph as a versioned dependency, README example at top level"
git clone -q "$root" "$work/ActorGraph"
git -C "$work/ActorGraph" tag 0.1.0
cp -r Tests/Fixtures/VersionedDependency "$work/consumer"
rm -rf "$work/consumer/.build"
readme_block() { awk -v n="$1" '/^```swift$/ { count++; if (count == n) { inside = 1; next } } inside && /^```$/ { exit } inside' README.md; }
readme_block 1 > "$work/consumer/Sources/ReadmeExample/main.swift"
echo 'print("README example: y=\(y) z=\(z) w=\(w)")' >> "$work/consumer/Sources/ReadmeExample/main.swift"
readme_block 2 > "$work/consumer/Sources/ReadmePipelining/main.swift"
echo 'print("README pipelining: sum=\(sum) first=\(first)")' >> "$work/consumer/Sources/ReadmePipelining/main.swift"
(cd "$work/consumer" && ACTORGRAPH_URL="file://$work/ActorGraph" swift build >"$work/consumer.log" 2>&1) \
    || { cat "$work/consumer.log"; echo "FAIL: the versioned-dependency fixture did not build"; exit 1; }
out=$(cd "$work/consumer" && ACTORGRAPH_URL="file://$work/ActorGraph" swift run --skip-build ReadmeExample)
echo "$out"
grep -q "y=43 z=43 w=73" <<<"$out" || { echo "FAIL: the README example printed the wrong results"; exit 1; }
out=$(cd "$work/consumer" && ACTORGRAPH_URL="file://$work/ActorGraph" swift run --skip-build ReadmePipelining)
echo "$out"
grep -q "sum=999999000000 first=42" <<<"$out" || { echo "FAIL: the README pipelining example printed the wrong results"; exit 1; }
echo "fixtures: 4 racy programs rejected, Safe control built, versioned dependency built and ran both README examples"
