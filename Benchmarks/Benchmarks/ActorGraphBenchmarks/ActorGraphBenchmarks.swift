// ActorGraph under the ordo-one package-benchmark harness: the same graphs as `actorgraph bench`
// (BenchGraphs: Benchmarks/Suite's graphs, compiled here as this package's own target) on the compiled, dynamic and sequential paths, plus the
// pinned cache-line ping-pong baseline.
//
// The harness counts mallocs itself (MallocInterposer trait). The only assertion is on allocations:
// the compiled path must not allocate in steady state (Thresholds/*.json hold mallocCountTotal = 0
// for every Compiled.* benchmark; `swift package benchmark
// thresholds check` enforces it). Time is reported, never asserted: this 2-core VM is too noisy.
//
// Graphs are compiled in `setup` and shut down in `teardown`, so only one compiled graph (one
// spinning worker) exists at a time: never more spinning threads than cores.

import ActorGraph
import BenchGraphs
import Benchmark

/// Holds what `setup` made for the benchmark closure.
/// `@unchecked Sendable`: the harness runs `setup`, the measured closure and `teardown` one after
/// another, never at once, so `value` is never written while it is read.
final class Holder<T>: @unchecked Sendable {
    var value: T?
}

let timed: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

/// Only mallocCountTotal is asserted, at exactly 0 (Thresholds/*.json). `.peakMemoryResident` is
/// left out of the metrics on purpose: its background sampler allocates while the clock runs (16
/// mallocs per iteration seen), which would hide the engine's count; `actorgraph bench` reports
/// peak RSS instead.
/// `nonisolated(unsafe)`: an immutable constant; `BenchmarkThresholds` is not declared `Sendable`.
nonisolated(unsafe) let noAllocations: [BenchmarkMetric: BenchmarkThresholds] = [
    .mallocCountTotal: BenchmarkThresholds(absolute: [.p0: 0, .p25: 0, .p50: 0, .p75: 0, .p90: 0, .p99: 0, .p100: 0])
]

func compiled<P: BenchPayload>(
    _ name: String,
    options: CompileOptions = CompileOptions(),
    scaling: BenchmarkScalingFactor = .kilo,
    _ graph: @escaping @Sendable () -> Graph<P, P>
) {
    let holder = Holder<CompiledGraph<P, P>>()
    Benchmark(
        "Compiled.\(name)",
        configuration: .init(
            metrics: timed,
            warmupIterations: 5,
            scalingFactor: scaling,
            maxDuration: .seconds(2),
            maxIterations: 200,
            thresholds: noAllocations
        ),
        closure: { (benchmark: Benchmark) throws -> Void in
            let g = holder.value!
            let input = P(seed: 7)
            for _ in benchmark.scaledIterations { blackHole(try g.execute(input).checksum) }
        },
        setup: {
            let g = try graph().compile(options)
            for _ in 0..<10_000 { _ = try g.execute(P(seed: 1)) }
            holder.value = g
        },
        teardown: {
            holder.value?.shutdown()
            holder.value = nil
        }
    )
}

func dynamic<P: BenchPayload>(
    _ name: String,
    scaling: BenchmarkScalingFactor = .kilo,
    _ graph: @escaping @Sendable () -> Graph<P, P>
) {
    let holder = Holder<DynamicGraph<P, P>>()
    Benchmark(
        "Dynamic.\(name)",
        configuration: .init(
            metrics: timed,
            warmupIterations: 2,
            scalingFactor: scaling,
            maxDuration: .seconds(2),
            maxIterations: 100
        ),
        closure: { (benchmark: Benchmark) async throws -> Void in
            let g = holder.value!
            let input = P(seed: 7)
            for _ in benchmark.scaledIterations { blackHole(try await g.execute(input).checksum) }
        },
        setup: { holder.value = try graph().dynamic() },
        teardown: {
            holder.value?.shutdown()
            holder.value = nil
        }
    )
}

func sequential<P: BenchPayload>(
    _ name: String,
    scaling: BenchmarkScalingFactor = .kilo,
    _ graph: @escaping @Sendable () -> Graph<P, P>
) {
    let holder = Holder<SequentialGraph<P, P>>()
    Benchmark(
        "Sequential.\(name)",
        configuration: .init(
            metrics: timed,
            warmupIterations: 5,
            scalingFactor: scaling,
            maxDuration: .seconds(1),
            maxIterations: 200
        ),
        closure: { (benchmark: Benchmark) throws -> Void in
            let g = holder.value!
            let input = P(seed: 7)
            for _ in benchmark.scaledIterations { blackHole(try g.execute(input).checksum) }
        },
        setup: { holder.value = try graph().sequential() },
        teardown: { holder.value = nil }
    )
}

/// Every case on all three paths.
func allPaths<P: BenchPayload>(
    _ name: String,
    options: CompileOptions = CompileOptions(),
    scaling: BenchmarkScalingFactor = .kilo,
    _ graph: @escaping @Sendable () -> Graph<P, P>
) {
    compiled(name, options: options, scaling: scaling, graph)
    dynamic(name, scaling: scaling, graph)
    sequential(name, scaling: scaling, graph)
}

let benchmarks: @Sendable () -> Void = {
    allPaths("echo") { BenchGraphs.echo(UInt64.self) }
    allPaths("echo.1KiB") { BenchGraphs.echo(Payload1KiB.self) }
    allPaths("echo.64KiB", options: CompileOptions(capacity: 16), scaling: .one) { BenchGraphs.echo(Payload64KiB.self) }
    allPaths("chain3") { BenchGraphs.chain(3, UInt64.self) }
    allPaths("chain3.64KiB", options: CompileOptions(capacity: 16), scaling: .one) {
        BenchGraphs.chain(3, Payload64KiB.self)
    }
    allPaths("chain8.fused", options: CompileOptions(placement: .singleWorker)) { BenchGraphs.chain(8, UInt64.self) }
    allPaths("chain8.spread", options: CompileOptions(placement: .spread)) { BenchGraphs.chain(8, UInt64.self) }
    allPaths("diamond") { BenchGraphs.diamond(UInt64.self) }
    allPaths("fanout4") { BenchGraphs.fanout4(UInt64.self) }

    // Pipelined throughput: up to 512 executions in flight.
    let pipelined = Holder<CompiledGraph<UInt64, UInt64>>()
    let window = PipelinedDriver.Window(512)
    Benchmark(
        "Compiled.chain3.pipelined",
        configuration: .init(
            metrics: timed,
            warmupIterations: 2,
            scalingFactor: .mega,
            maxDuration: .seconds(3),
            maxIterations: 20,
            thresholds: noAllocations
        ),
        closure: { (benchmark: Benchmark) throws -> Void in
            blackHole(
                try PipelinedDriver.run(
                    pipelined.value!,
                    executions: benchmark.scaledIterations.count,
                    window: window
                )
            )
        },
        setup: {
            let g = try BenchGraphs.chain(3, UInt64.self).compile(CompileOptions(capacity: 1024))
            _ = try PipelinedDriver.run(g, executions: 100_000, window: window)
            pipelined.value = g
        },
        teardown: {
            pipelined.value?.shutdown()
            pipelined.value = nil
        }
    )

    // The physical limit: two spinning threads bouncing one cache line (a thread created per iteration,
    // amortized over a million round trips).
    Benchmark(
        "Baseline.pingpong",
        configuration: .init(
            metrics: [.wallClock, .throughput],
            warmupIterations: 1,
            scalingFactor: .mega,
            maxDuration: .seconds(3),
            maxIterations: 10
        ),
        closure: { (benchmark: Benchmark) throws -> Void in
            blackHole(HarnessDrivers.pingPong(roundTrips: benchmark.scaledIterations.count))
        }
    )
}
