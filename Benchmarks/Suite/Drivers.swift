import ActorGraph
import ActorGraphPlatform

/// The batch, exclusive and pinned ping-pong loops of `actorgraph bench` (the pipelined one is
/// `PipelinedDriver`, which the `Benchmarks/` harness compiles too).
public enum BenchDrivers {
    /// Runs `executions` executions of `graph` through an ``ExclusiveSubmitter`` (one `submit` per
    /// execution, results received in order), up to `window` in flight. Returns a checksum of the
    /// outputs. Allocates nothing.
    public static func exclusive(
        _ graph: CompiledGraph<UInt64, UInt64>,
        executions: Int,
        window: Int
    ) throws(ExecutionError) -> UInt64 {
        let window = max(1, min(window, graph.capacity))
        var submitter = try graph.exclusiveSubmitter()
        var sum: UInt64 = 0
        for i in 0..<executions {
            if submitter.inFlight == window { sum &+= try submitter.receive() }
            try submitter.submit(UInt64(i))
        }
        while submitter.inFlight > 0 { sum &+= try submitter.receive() }
        return sum
    }

    /// Runs `executions` executions of `graph` through the batch API (`executeAll`): submissions
    /// claimed and published in chunks, results read in place, `window` in flight. Returns a
    /// checksum of the outputs. Allocates nothing.
    public static func batched(
        _ graph: CompiledGraph<UInt64, UInt64>,
        executions: Int,
        window: Int
    ) throws(ExecutionError) -> UInt64 {
        var sum: UInt64 = 0
        var failures = 0
        try graph.executeAll(UInt64(0)..<UInt64(executions), window: window) { _, result in
            switch result {
            case .success(let v): sum &+= v
            case .failure: failures &+= 1
            }
        }
        return failures == 0 ? sum : 0
    }

    /// `roundTrips` cache-line round trips between two threads pinned to the first and last allowed
    /// CPUs (plain spin). Returns the median round trip in nanoseconds.
    public static func pingPong(roundTrips: Int) throws -> UInt64 {
        let allowed = CPU.allowedCPUs()
        let cpus: (Int?, Int?) = allowed.count >= 2 ? (allowed[0], allowed[allowed.count - 1]) : (nil, nil)
        return try Measure.pingPong(cpus: cpus, warmup: 1_000, iterations: roundTrips, pause: false).stats.p50
    }
}
