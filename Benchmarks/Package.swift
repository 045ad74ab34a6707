// swift-tools-version:6.1
// The ordo-one package-benchmark harness for ActorGraph, kept as its own package (like swift-nio's
// Benchmarks/) so the library's manifest stays lean. Run from this directory:
//
//     swift package benchmark                      # every benchmark
//     swift package benchmark --filter 'Compiled.*'  # a subset
//
// The `MallocInterposer` trait is listed explicitly: the default traits pull in the runtime
// interposer, which is not available on the Linux machines this project builds on.
import PackageDescription

let package = Package(
    name: "ActorGraphBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "ActorGraph", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // The suite's graphs, payloads and pipelined loop (public API only): the files `actorgraph bench` uses.
        .target(
            name: "BenchGraphs",
            dependencies: [
                .product(name: "ActorGraph", package: "ActorGraph"),
                .product(name: "BasicContainers", package: "swift-collections"),
            ],
            path: "Suite",
            sources: ["BenchGraphs.swift", "Payloads.swift", "PipelinedDriver.swift"]
        ),
        .executableTarget(
            name: "ActorGraphBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ActorGraph", package: "ActorGraph"),
                "BenchGraphs",
            ],
            path: "Benchmarks/ActorGraphBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
    ]
)
