import ActorGraph
import BasicContainers

/// Submit ahead, wait behind: the pipelined loop of `actorgraph bench` and of the separate
/// `Benchmarks/` harness (which compiles this file too, so it uses the public API only).
public enum PipelinedDriver {
    /// The pending executions of a pipelined run, allocated once (not per run): a noncopyable
    /// `UniqueArray` used as a ring, no unsafe pointers.
    public final class Window {
        @exclusivity(unchecked) var pending: UniqueArray<PendingExecution<UInt64>>
        /// Executions that can be in flight (at least 1).
        public let count: Int
        /// Allocates room for `count` pending executions (at least one).
        public init(_ count: Int) {
            self.count = max(1, count)
            pending = UniqueArray(minimumCapacity: self.count)
        }
    }

    /// Runs `executions` executions of `graph` with up to `window.count` in flight (submit ahead,
    /// wait behind, in order), one `submit` per execution. Returns a checksum of the outputs. Allocates nothing.
    public static func run(
        _ graph: CompiledGraph<UInt64, UInt64>,
        executions: Int,
        window: Window
    ) throws(ExecutionError) -> UInt64 {
        let size = min(window.count, graph.capacity)
        var sum: UInt64 = 0
        window.pending.removeAll(keepingCapacity: true)
        for i in 0..<executions {
            if i < size {
                window.pending.append(try graph.submit(UInt64(i)))
            } else {
                let slot = i % size
                sum &+= try window.pending[slot].wait()
                window.pending[slot] = try graph.submit(UInt64(i))
            }
        }
        for i in max(0, executions - size)..<executions { sum &+= try window.pending[i % size].wait() }
        window.pending.removeAll(keepingCapacity: true)
        return sum
    }

}
