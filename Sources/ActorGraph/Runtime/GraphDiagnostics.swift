/// A snapshot of what a compiled graph's engine did that is not a result (``CompiledGraph/diagnostics``).
/// Crashes, restarts and stuck stages are in ``CompiledGraph/isolationStatistics``; per-stage
/// figures in ``CompiledGraph/statistics``.
public struct GraphDiagnostics: Sendable, Equatable {
    /// How each worker parks when idle ("io_uring futex-wait" or "futex"), once the workers started.
    public var parkMechanisms: [String]
    /// How many times each worker parked so far.
    public var parkCounts: [Int]
    /// Executions a blocking `execute` ran on its own thread because every worker was parked
    /// (``CompileOptions/callerTakeover``).
    public var callerTakeovers: Int
    /// Worker threads `shutdown()` left detached because a stage was still running (thread mode);
    /// each gives its actors back when its stage returns.
    public var detachedWorkerThreads: Int
    /// A graph spanning hosts: each remote host's piece as the owner sees it; empty otherwise.
    public var hosts: [HostStatus] = []
}
