// swift-tools-version:6.1
import PackageDescription

/// `ACTORGRAPH_SANITIZE=thread|address` (set by `scripts/sanitizers.sh` only) instruments this
/// package's own targets. SwiftPM's `--sanitize` instruments every package, and swift-collections'
/// BasicContainers does not compile under `-sanitize=thread` with Swift 6.3.1 (LLVM "Invalid
/// bitcast" in `_HTable+Bitmap.swift`). Unset (every normal build), these settings are empty.
let sanitizer = Context.environment["ACTORGRAPH_SANITIZE"].flatMap { ["thread", "address"].contains($0) ? $0 : nil }
let sanitized: [SwiftSetting] = sanitizer.map { [.unsafeFlags(["-sanitize=\($0)"])] } ?? []
let sanitizedLink: [LinkerSetting] = sanitizer.map { [.unsafeFlags(["-sanitize=\($0)"])] } ?? []

let package = Package(
    name: "ActorGraph",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ActorGraph", targets: ["ActorGraph"]),
        .library(name: "ActorGraphMetrics", targets: ["ActorGraphMetrics"]),
        // Following a Ray placer (scripts/ray/actorgraph_placer.py): where each host's piece runs now.
        .library(name: "ActorGraphCluster", targets: ["ActorGraphCluster"]),
        // The bench suite, the example graphs and the reliability tools are targets of the CLI and
        // the tests, not products a dependant inherits; the separate `Benchmarks/` package compiles
        // the suite's graphs (BenchGraphs.swift, Payloads.swift: public API only) as its own target.
        .executable(name: "actorgraph", targets: ["actorgraph"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        // Noncopyable containers (`UniqueArray`) for pending executions in the examples and tests.
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // Statistics export: swift-metrics API, Prometheus registry and text format.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // The scrape endpoint's HTTP/1.1 server (NIOHTTP1's decoder limits need 2.101).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // `swift package generate-documentation --target ActorGraph` (DocC catalog in Sources/ActorGraph).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // Platform: C libraries reached through module maps.
        .systemLibrary(name: "CLibURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
        .systemLibrary(name: "CLibNUMA", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        .systemLibrary(name: "CPlatformShims"),
        // SIGINT/SIGTERM handlers that only record the signal (async-signal-safe C).
        .target(name: "CServiceSignals"),
        .target(
            name: "ActorGraphPlatform",
            dependencies: [
                "CLibURing", "CLibNUMA", "CPlatformShims", "CServiceSignals",
            ],
            swiftSettings: sanitized
        ),
        // The engine: DSL, compiler, channels, runtime, dynamic path.
        .target(
            name: "ActorGraph",
            dependencies: [
                "ActorGraphPlatform",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: sanitized
        ),
        // Statistics export: swift-metrics reporter, Prometheus text, the scrape endpoint (swift-nio).
        .target(
            name: "ActorGraphMetrics",
            dependencies: [
                "ActorGraph", "ActorGraphPlatform",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: sanitized
        ),
        // The owner's side of the Ray placer: starts or attaches to it, follows its incarnation
        // events and tells compiled graphs where their pieces run (Foundation: a process, JSON).
        .target(
            name: "ActorGraphCluster",
            dependencies: ["ActorGraph", "ActorGraphPlatform"],
            swiftSettings: sanitized
        ),
        // Example graphs users run (`actorgraph list`).
        .target(
            name: "ActorGraphExamples",
            dependencies: [
                "ActorGraph", "ActorGraphPlatform",
                // ExampleDriver keeps pending executions in a UniqueArray (was imported undeclared).
                .product(name: "BasicContainers", package: "swift-collections"),
            ],
            path: "Graphs",
            swiftSettings: sanitized
        ),
        // The in-process benchmark suite behind `actorgraph bench`; Benchmarks/ (its own package) reuses it.
        .target(
            name: "ActorGraphBenchSuite",
            dependencies: [
                "ActorGraph", "ActorGraphPlatform", "ActorGraphExamples",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "BasicContainers", package: "swift-collections"),
            ],
            path: "Benchmarks/Suite",
            swiftSettings: sanitized
        ),
        // Reliability tools behind `actorgraph soak` and `actorgraph fuzz-udp` (testable as a library).
        .target(
            name: "ActorGraphReliability",
            dependencies: ["ActorGraph", "ActorGraphPlatform", "ActorGraphExamples"],
            swiftSettings: sanitized
        ),
        // Counts calls into the C allocator for `actorgraph bench` (allocations per execution).
        .target(
            name: "CMallocCounter",
            cSettings: sanitizer == nil ? [] : [.define("ACTORGRAPH_NO_MALLOC_INTERPOSER")]
        ),
        .executableTarget(
            name: "actorgraph",
            dependencies: [
                "ActorGraph", "ActorGraphExamples", "ActorGraphBenchSuite", "ActorGraphMetrics",
                "ActorGraphReliability", "ActorGraphCluster", "CMallocCounter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: sanitized,
            // Export the counting malloc family so shared libraries bind to it ahead of glibc's.
            linkerSettings: [
                .unsafeFlags(
                    ["malloc", "calloc", "realloc", "memalign", "aligned_alloc", "posix_memalign"]
                        .flatMap { ["-Xlinker", "--export-dynamic-symbol=\($0)"] }
                )
            ] + sanitizedLink
        ),
        // Assertions shared by the test targets (`assertCompileError`, `assertExecutionError`).
        .target(
            name: "GraphTestSupport",
            dependencies: ["ActorGraph"],
            path: "Tests/GraphTestSupport",
            swiftSettings: sanitized
        ),
        .testTarget(
            name: "ActorGraphTests",
            dependencies: [
                "ActorGraph", "ActorGraphPlatform", "GraphTestSupport",
                .product(name: "BasicContainers", package: "swift-collections"),
            ],
            swiftSettings: sanitized,
            linkerSettings: sanitizedLink
        ),
        // Isolated workers: graphs shared by the tests and the worker executable the tests spawn
        // (inside XCTest, /proc/self/exe is the test runner, which knows no graphs).
        .target(
            name: "IsolationFixtures",
            dependencies: ["ActorGraph"],
            path: "Tests/IsolationFixtures",
            swiftSettings: sanitized
        ),
        .executableTarget(
            name: "actorgraph-isolation-fixture",
            dependencies: ["ActorGraph", "IsolationFixtures"],
            path: "Tests/IsolationFixtureMain",
            swiftSettings: sanitized,
            linkerSettings: sanitizedLink
        ),
        .testTarget(
            name: "IsolationTests",
            dependencies: [
                "ActorGraph", "ActorGraphPlatform", "IsolationFixtures", "GraphTestSupport",
                .product(name: "BasicContainers", package: "swift-collections"),
            ],
            swiftSettings: sanitized,
            linkerSettings: sanitizedLink
        ),
        .testTarget(
            name: "ExampleGraphsTests",
            dependencies: ["ActorGraphExamples", "ActorGraph"],
            swiftSettings: sanitized,
            linkerSettings: sanitizedLink
        ),
        // The metrics export and the `actorgraph serve` process (scraped over HTTP, stopped by signals).
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "ActorGraphMetrics", "ActorGraph", "ActorGraphPlatform", "ActorGraphExamples",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: sanitized,
            linkerSettings: sanitizedLink
        ),
        .testTarget(
            name: "ReliabilityTests",
            dependencies: [
                "ActorGraphReliability", "ActorGraph", "ActorGraphExamples", "ActorGraphBenchSuite",
                "ActorGraphCluster",
            ],
            swiftSettings: sanitized,
            linkerSettings: sanitizedLink
        ),
    ]
)
