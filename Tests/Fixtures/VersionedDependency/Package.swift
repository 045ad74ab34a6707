// swift-tools-version:6.1
// ActorGraph as a *versioned* dependency (no unsafe build flags in its library products), used the
// way a newcomer uses it. `scripts/check-fixtures.sh` clones the repository, tags the clone 0.1.0,
// points ACTORGRAPH_URL at it and writes every ```swift block of the README, BENCHMARKS.md,
// RELIABILITY.md and the DocC articles, verbatim, as the main.swift of its own directory under
// Sources/; then it builds them all at once and runs each.
//
// Every directory under Sources/ is an executable target (build with `--manifest-cache none`: a cached
// manifest does not see new directories). Its dependencies follow its imports:
// ActorGraph always; ActorGraphMetrics and swift-collections' BasicContainers when imported.
import Foundation
import PackageDescription

let url = Context.environment["ACTORGRAPH_URL"] ?? "https://github.com/actorgraph/ActorGraph"
let sources = Context.packageDirectory + "/Sources"
let names = ((try? FileManager.default.contentsOfDirectory(atPath: sources)) ?? []).sorted()

func dependencies(of name: String) -> [Target.Dependency] {
    let text = (try? String(contentsOfFile: "\(sources)/\(name)/main.swift", encoding: .utf8)) ?? ""
    var dependencies: [Target.Dependency] = [.product(name: "ActorGraph", package: "ActorGraph")]
    if text.contains("import ActorGraphMetrics") {
        dependencies.append(.product(name: "ActorGraphMetrics", package: "ActorGraph"))
    }
    if text.contains("import BasicContainers") {
        dependencies.append(.product(name: "BasicContainers", package: "swift-collections"))
    }
    return dependencies
}

let package = Package(
    name: "VersionedDependency",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: url, from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: names.map { .executableTarget(name: $0, dependencies: dependencies(of: $0)) }
)
