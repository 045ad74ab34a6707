// swift-tools-version:6.1
// Proves ActorGraph can be adopted as a versioned dependency (no unsafe build flags in its library
// products). `scripts/check-fixtures.sh` clones the repository, tags the clone 0.1.0, points
// ACTORGRAPH_URL at it, writes the README's first two Swift examples into the two `main.swift`
// files (top-level code, verbatim) and builds and runs them.
import PackageDescription

let url = Context.environment["ACTORGRAPH_URL"] ?? "https://github.com/actorgraph/ActorGraph"

let package = Package(
    name: "VersionedDependency",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: url, from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(name: "ReadmeExample", dependencies: [.product(name: "ActorGraph", package: "ActorGraph")]),
        .executableTarget(name: "ReadmePipelining", dependencies: [
            .product(name: "ActorGraph", package: "ActorGraph"),
            .product(name: "BasicContainers", package: "swift-collections"),
        ]),
    ]
)
