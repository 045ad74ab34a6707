// swift-tools-version:6.1
// A compile-fail check: each target but `Safe` races on data and must be rejected by the Swift 6
// compiler through ActorGraph's API (`scripts/check-fixtures.sh` builds each and expects the
// diagnostic). `Safe` is the control: the same shapes done right must build.
import PackageDescription

let package = Package(
    name: "RacesMustNotCompile",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "ActorGraph", path: "../../..")],
    targets: ["Safe", "RacyCapture", "NonSendableStage", "LeakedActorState", "NonSendableValue"].map {
        .executableTarget(name: $0, dependencies: [.product(name: "ActorGraph", package: "ActorGraph")])
    }
)
