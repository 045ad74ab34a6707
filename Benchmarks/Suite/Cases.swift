import ActorGraph
import ActorGraphPlatform

/// What one path of one case measured.
public struct PathResult: Codable, Sendable {
    /// The case, e.g. `echo`, `chain8.spread`, `echo.64KiB`, `paced.echo.10us`.
    public var name: String
    /// `compiled`, `dynamic`, `sequential` or `pingpong`.
    public var path: String
    /// Size of the payload in bytes.
    public var payloadBytes: Int
    /// The latency distribution, in nanoseconds.
    public var stats: LatencyStats
    /// Allocation calls per execution over the measured loop, when counted.
    public var allocationsPerExecution: Double?
    /// Compiled only: placement, workers, fused segments, channels and shared-memory bytes.
    public var placement: String?
    /// Worker threads running the compiled graph.
    public var workers: Int?
    /// Fused segments of the compiled graph.
    public var segments: Int?
    /// Channels (rings) the compiled graph allocated.
    public var channels: Int?
    /// Bytes of the compiled graph's shared-memory region.
    public var sharedMemoryBytes: Int?
}

/// Sample counts of one run.
struct Budget {
    var compiled: Int
    var compiledWarmup: Int
    var sequential: Int
    var dynamic: Int
    var dynamicWarmup: Int
    var pingPong: Int
    var pipelinedExecutions: Int
    var pipelinedRounds: Int
    var dynamicPipelined: Int
    var pacedPeriodsMicroseconds: [Int]
    var pacedCompiled: Int
    var pacedDynamic: Int

    /// Worker kills for the recovery measurement.
    var recoveryKills: Int = 20

    static let quick = Budget(
        compiled: 200_000,
        compiledWarmup: 20_000,
        sequential: 200_000,
        dynamic: 20_000,
        dynamicWarmup: 1_000,
        pingPong: 1_000_000,
        pipelinedExecutions: 2_000_000,
        pipelinedRounds: 3,
        dynamicPipelined: 50_000,
        pacedPeriodsMicroseconds: [10, 100],
        pacedCompiled: 20_000,
        pacedDynamic: 10_000
    )
    static let full = Budget(
        compiled: 2_000_000,
        compiledWarmup: 200_000,
        sequential: 2_000_000,
        dynamic: 200_000,
        dynamicWarmup: 5_000,
        pingPong: 5_000_000,
        pipelinedExecutions: 10_000_000,
        pipelinedRounds: 5,
        dynamicPipelined: 200_000,
        pacedPeriodsMicroseconds: [10, 100, 1_000],
        pacedCompiled: 100_000,
        pacedDynamic: 50_000
    )
}

/// Everything a case needs to run one path.
struct RunContext: Sendable {
    var budget: Budget
    var counter: AllocationCounter?
    /// The CPU the measuring thread of the compiled and sequential paths is pinned to (one the workers do not use).
    var callerCPU: Int?
}

/// One latency case: the same graph on the three paths.
struct LatencyCase: Sendable {
    let name: String
    let payloadBytes: Int
    let runCompiled: @Sendable (RunContext) throws -> PathResult
    /// `nil` for `.process` cases: the same graph's sequential and dynamic paths are measured by the thread case.
    let runSequential: (@Sendable (RunContext) throws -> PathResult)?
    let runDynamic: (@Sendable (RunContext) async throws -> PathResult)?

    /// `zeroCopy`: the compiled path loans the input slot and borrows the output (large payloads).
    /// `isolation`: `.processes` runs the worker in a child process (`/proc/self/exe`, whose `main`
    /// calls `IsolatedWorker.runIfChild` with ``BenchSuite/isolatableGraphs``).
    init<P: BenchPayload>(
        _ name: String,
        _: P.Type,
        placement: Placement = .automatic,
        capacity: Int = 1024,
        scale: Double = 1,
        zeroCopy: Bool = false,
        isolation: Isolation = .threads,
        graph: @escaping @Sendable () -> Graph<P, P>
    ) {
        self.name = name
        payloadBytes = P.byteCount
        let input = P(seed: 7)
        @Sendable func scaled(_ n: Int) -> Int { max(100, Int(Double(n) * scale)) }
        runCompiled = { context in
            // The hot loop measures the hand-off between the caller and the workers (what the
            // ping-pong bounds): callers do not run parked workers' stages here. The service
            // cases (ServiceCases.swift) measure the default, take-over included.
            var compileOptions = CompileOptions(capacity: capacity, placement: placement, isolation: isolation)
            compileOptions.callerTakeover = false
            let compiled = try graph().compile(compileOptions)
            defer { compiled.shutdown() }
            let m = try onPinnedThread(name: "ag-bench", cpu: context.callerCPU) {
                zeroCopy
                    ? try Measure.compiledZeroCopy(
                        compiled,
                        input: input,
                        warmup: scaled(context.budget.compiledWarmup),
                        iterations: scaled(context.budget.compiled),
                        counter: context.counter
                    )
                    : try Measure.compiled(
                        compiled,
                        input: input,
                        warmup: scaled(context.budget.compiledWarmup),
                        iterations: scaled(context.budget.compiled),
                        counter: context.counter
                    )
            }
            return PathResult(
                name: name,
                path: "compiled",
                payloadBytes: P.byteCount,
                stats: m.stats,
                allocationsPerExecution: m.allocations.map { Double($0) / Double(m.executions) },
                placement: isolation.processOptions != nil ? "\(placement), worker process" : "\(placement)",
                workers: compiled.workerCount,
                segments: compiled.segments.count,
                channels: compiled.channelCount,
                sharedMemoryBytes: compiled.sharedMemoryBytes
            )
        }
        guard isolation.processOptions == nil else {
            runSequential = nil
            runDynamic = nil
            return
        }
        runSequential = { context in
            let sequential = try graph().sequential()
            let m = try onPinnedThread(name: "ag-bench", cpu: context.callerCPU) {
                try Measure.sequential(
                    sequential,
                    input: input,
                    warmup: scaled(context.budget.compiledWarmup),
                    iterations: scaled(context.budget.sequential),
                    counter: context.counter
                )
            }
            return PathResult(
                name: name,
                path: "sequential",
                payloadBytes: P.byteCount,
                stats: m.stats,
                allocationsPerExecution: m.allocations.map { Double($0) / Double(m.executions) }
            )
        }
        runDynamic = { context in
            let dynamic = try graph().dynamic()
            defer { dynamic.shutdown() }
            let m = try await Measure.dynamic(
                dynamic,
                input: input,
                warmup: scaled(context.budget.dynamicWarmup),
                iterations: scaled(context.budget.dynamic),
                counter: context.counter
            )
            return PathResult(
                name: name,
                path: "dynamic",
                payloadBytes: P.byteCount,
                stats: m.stats,
                allocationsPerExecution: m.allocations.map { Double($0) / Double(m.executions) }
            )
        }
    }

    /// Every latency case of the suite, in table order.
    static let all: [LatencyCase] = [
        LatencyCase("echo", UInt64.self) { BenchGraphs.echo(UInt64.self) },
        LatencyCase("echo.process", UInt64.self, isolation: .processes) { BenchGraphs.echo(UInt64.self) },
        LatencyCase("echo.1KiB", Payload1KiB.self, scale: 0.5, zeroCopy: true) { BenchGraphs.echo(Payload1KiB.self) },
        LatencyCase("echo.64KiB", Payload64KiB.self, capacity: 16, scale: 0.05, zeroCopy: true) {
            BenchGraphs.echo(Payload64KiB.self)
        },
        LatencyCase("chain3", UInt64.self) { BenchGraphs.chain(3, UInt64.self) },
        LatencyCase("chain3.process", UInt64.self, isolation: .processes) { BenchGraphs.chain(3, UInt64.self) },
        LatencyCase("chain3.spread", UInt64.self, placement: .spread) { BenchGraphs.chain(3, UInt64.self) },
        LatencyCase("chain3.1KiB", Payload1KiB.self, scale: 0.5, zeroCopy: true) {
            BenchGraphs.chain(3, Payload1KiB.self)
        },
        LatencyCase("chain3.64KiB", Payload64KiB.self, capacity: 16, scale: 0.05, zeroCopy: true) {
            BenchGraphs.chain(3, Payload64KiB.self)
        },
        LatencyCase("chain8.fused", UInt64.self, placement: .singleWorker) { BenchGraphs.chain(8, UInt64.self) },
        LatencyCase("chain8.spread", UInt64.self, placement: .spread, scale: 0.5) { BenchGraphs.chain(8, UInt64.self) },
        LatencyCase("diamond", UInt64.self) { BenchGraphs.diamond(UInt64.self) },
        LatencyCase("diamond.1KiB", Payload1KiB.self, scale: 0.5, zeroCopy: true) {
            BenchGraphs.diamond(Payload1KiB.self)
        },
        LatencyCase("fanout4", UInt64.self) { BenchGraphs.fanout4(UInt64.self) },
    ]
}
