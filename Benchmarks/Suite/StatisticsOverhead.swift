import ActorGraph

/// What per-stage statistics cost: compiled `echo` with ``CompileOptions/statistics`` off and on
/// (`.on`: every execution counted, 1 in 16 timed), in alternating rounds of the same run.
public struct StatisticsOverhead: Codable, Sendable {
    /// Alternating rounds (off, then on, per round; a fresh compile each).
    public var rounds: Int
    /// Samples per side per round.
    public var samplesPerRound: Int
    /// Statistics off, merged over the rounds.
    public var off: LatencyStats
    /// Statistics `.on`, merged over the rounds.
    public var on: LatencyStats
    /// `on.p50 / off.p50` (the bound: 1.10).
    public var p50Ratio: Double
    /// `on.p99 / off.p99`: the sampled executions (1 in 16) carry the clock reads.
    public var p99Ratio: Double
    /// Allocation calls per execution with statistics on; `nil` when not counted.
    public var allocationsPerExecutionOn: Double?
    /// The sampled stage p50 the statistics themselves measured for the echo stage, in nanoseconds.
    public var echoStageP50Nanoseconds: UInt64
}

extension BenchSuite {
    /// `rounds` alternating rounds of compiled echo with statistics off and `.on`, `samples` each.
    static func measureStatisticsOverhead(
        rounds: Int,
        samples: Int,
        callerCPU: Int?,
        counter: AllocationCounter?
    ) throws -> StatisticsOverhead {
        var off = makeLatencyHistogram()
        var on = makeLatencyHistogram()
        var offExecutions: UInt64 = 0
        var offElapsed: UInt64 = 0
        var onExecutions: UInt64 = 0
        var onElapsed: UInt64 = 0
        var allocations: UInt64 = 0
        var counted = counter != nil
        var stageP50: UInt64 = 0
        for _ in 0..<rounds {
            for mode in [StatisticsMode.off, .on] {
                var options = CompileOptions()
                options.statistics = mode
                let graph = try BenchGraphs.echo(UInt64.self).compile(options)
                let m = try onPinnedThread(name: "ag-bench", cpu: callerCPU) {
                    try Measure.compiled(graph, input: 7, warmup: samples / 10, iterations: samples, counter: counter)
                }
                if mode == .off {
                    off.add(m.histogram)
                    offExecutions += m.executions
                    offElapsed += m.elapsedNanoseconds
                } else {
                    on.add(m.histogram)
                    onExecutions += m.executions
                    onElapsed += m.elapsedNanoseconds
                    if let a = m.allocations { allocations += a } else { counted = false }
                    stageP50 = graph.statistics?.nodes.first?.stageTime.p50 ?? 0
                }
                graph.shutdown()
            }
        }
        let offStats = LatencyStats(histogram: off, executions: offExecutions, elapsedNanoseconds: offElapsed)
        let onStats = LatencyStats(histogram: on, executions: onExecutions, elapsedNanoseconds: onElapsed)
        return StatisticsOverhead(
            rounds: rounds,
            samplesPerRound: samples,
            off: offStats,
            on: onStats,
            p50Ratio: Double(onStats.p50) / Double(max(1, offStats.p50)),
            p99Ratio: Double(onStats.p99) / Double(max(1, offStats.p99)),
            allocationsPerExecutionOn: counted ? Double(allocations) / Double(max(1, onExecutions)) : nil,
            echoStageP50Nanoseconds: stageP50
        )
    }
}
