import ActorGraph
import ActorGraphPlatform

/// Loops the package-benchmark harness (`Benchmarks/`) shares with `actorgraph bench`.
public enum BenchDrivers {
    /// The pending executions of a pipelined run, allocated once (not per run).
    public final class Window {
        let pending: UnsafeMutablePointer<PendingExecution<UInt64>>
        /// Executions that can be in flight (at least 1).
        public let count: Int
        /// Allocates room for `count` pending executions (at least one).
        public init(_ count: Int) {
            self.count = max(1, count)
            pending = .allocate(capacity: self.count)
        }
        deinit { pending.deallocate() }
    }

    /// Runs `executions` executions of `graph` with up to `window.count` in flight (submit ahead,
    /// wait behind, in order). Returns a checksum of the outputs. Allocates nothing.
    public static func pipelined(_ graph: CompiledGraph<UInt64, UInt64>, executions: Int, window: Window) throws(GraphError) -> UInt64 {
        let size = min(window.count, graph.capacity)
        let pending = window.pending
        var sum: UInt64 = 0
        for i in 0..<executions {
            let slot = pending + (i % size)
            if i >= size { sum &+= try slot.move().wait() }
            slot.initialize(to: try graph.submit(UInt64(i)))
        }
        for i in max(0, executions - size)..<executions { sum &+= try (pending + (i % size)).move().wait() }
        return sum
    }

    /// `roundTrips` cache-line round trips between two threads pinned to the first and last allowed
    /// CPUs (plain spin). Returns the median round trip in nanoseconds.
    public static func pingPong(roundTrips: Int) throws -> UInt64 {
        let allowed = CPU.allowedCPUs()
        let cpus: (Int?, Int?) = allowed.count >= 2 ? (allowed[0], allowed[allowed.count - 1]) : (nil, nil)
        return try Measure.pingPong(cpus: cpus, warmup: 1_000, iterations: roundTrips, pause: false).stats.p50
    }
}
