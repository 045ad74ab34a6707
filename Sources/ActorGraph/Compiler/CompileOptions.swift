import ActorGraphPlatform

/// How `compile()` lays a graph out on the machine.
public struct CompileOptions: Sendable {
    /// The largest channel capacity accepted.
    public static let maxCapacity = 1 << 20
    /// The largest shared-memory region accepted (8 GiB).
    public static let maxRegionBytes = 8 << 30

    /// Per-stage statistics (``CompiledGraph/statistics``): `.off` by default; `.on` counts every
    /// execution and times 1 in 16, recorded by the workers into preallocated per-worker storage.
    public var statistics: StatisticsMode = .off

    /// Worker threads. `nil` fits the machine: one fewer than the effective CPUs (affinity mask and
    /// cgroup CPU quota, rounded up; the caller spins too), at least one.
    public var workers: Int?
    /// Executions in flight at most; also every channel's capacity. Rounded up to a power of two.
    public var capacity: Int
    /// Pin each worker to its own CPU.
    public var pinWorkers: Bool
    /// Place channels and workers on this NUMA node (`nil`: the node of the calling thread's memory policy).
    public var numaNode: Int?
    /// How workers and waiting callers behave when there is nothing to do.
    public var idle: IdlePolicy
    /// How long `submit` waits for a free slot before throwing ``ExecutionError/capacityExceeded(capacity:)``.
    public var submitTimeout: Duration
    /// How nodes are spread over workers.
    public var placement: Placement
    /// Executions a worker runs for one segment before it polls the next (consumer-side batching).
    public var batchSize: Int
    /// Park idle workers through their io_uring (`IORING_OP_FUTEX_WAIT`); plain futex when false or unavailable.
    public var useIORing: Bool
    /// Where workers run: threads of this process (the default) or child processes over the same
    /// shared memory, restarted when they crash (with their settings: ``ProcessOptions``). See ``Isolation``.
    public var isolation: Isolation
    /// The longest one stage may run for one execution; `nil`: no limit. Past it, a process worker is
    /// killed and restarted (the execution fails with ``ExecutionError/stageTimedOut(node:)``); a thread
    /// worker is reported (log and ``IsolationStatistics/stuckStageReports``), and `shutdown()` stops
    /// waiting for it after ``shutdownGracePeriod``.
    public var stageTimeLimit: Duration?
    /// How long `shutdown()` waits for a stage already running to return before it kills the worker
    /// process (process mode) or leaves the thread detached (thread mode; its actors come back when
    /// the stage returns). Executions not started are never waited for.
    public var shutdownGracePeriod: Duration
    /// Thread mode: a blocking `execute` (no deadline) that finds every worker parked runs the
    /// stages on the calling thread instead of waking a worker on another CPU — the first execution
    /// after idle then costs about what its stages cost, like a plain Swift actor called inline.
    /// Off for graphs with a ``stageTimeLimit``, with I/O edges, in process mode, for executions with
    /// a deadline, and once three timed inline runs (one in eight is timed) in a row took over 1 ms.
    /// `false`: always hand executions to the workers.
    public var callerTakeover: Bool = true
    /// Hosts the graph spans (nodes placed with `Node.on(_:)`): where their pieces listen, and how
    /// a lost host is detected and answered. Empty by default: one machine.
    public var remote: RemoteOptions = RemoteOptions()

    /// Options that fit the machine.
    public init(
        workers: Int? = nil,
        capacity: Int = 1024,
        pinWorkers: Bool = true,
        numaNode: Int? = nil,
        idle: IdlePolicy = IdlePolicy(),
        submitTimeout: Duration = .seconds(5),
        placement: Placement = .automatic,
        batchSize: Int = 32,
        useIORing: Bool = true,
        isolation: Isolation = .threads,
        stageTimeLimit: Duration? = nil,
        shutdownGracePeriod: Duration = .seconds(1)
    ) {
        self.workers = workers
        self.capacity = capacity
        self.pinWorkers = pinWorkers
        self.numaNode = numaNode
        self.idle = idle
        self.submitTimeout = submitTimeout
        self.placement = placement
        self.batchSize = batchSize
        self.useIORing = useIORing
        self.isolation = isolation
        self.stageTimeLimit = stageTimeLimit
        self.shutdownGracePeriod = shutdownGracePeriod
    }
}

/// Where a compiled graph's workers run.
///
/// Not `Equatable`: ask `if case .processes = isolation` (a comparison with ``processes`` would also
/// compare the process settings).
public enum Isolation: Sendable {
    /// Pinned threads of this process (the fastest; a trapping stage takes the program down).
    case threads
    /// One child process per worker (`posix_spawn` of this executable), mapping the same memfd
    /// region: a crash, `abort()` or kill of a worker answers its executions with a typed error and
    /// the worker is restarted under ``ProcessOptions/restartPolicy``. Values crossing are copied
    /// when trivially copyable and encoded when ``WireEncodable``, and `main` must start with
    /// ``IsolatedWorker/runIfChild(graphs:)``.
    case processes(ProcessOptions)

    /// Worker processes with the default ``ProcessOptions``.
    public static var processes: Isolation { .processes(ProcessOptions()) }

    /// The process settings, or `nil` for ``threads``.
    package var processOptions: ProcessOptions? {
        if case .processes(let options) = self { return options }
        return nil
    }
}

/// The settings that only worker processes have (``Isolation/processes(_:)``).
public struct ProcessOptions: Sendable, Equatable {
    /// How often a crashed worker process is restarted.
    public var restartPolicy: RestartPolicy
    /// The executable a worker process runs; `nil`: `/proc/self/exe` (this program, which must call
    /// ``IsolatedWorker/runIfChild(graphs:)`` first thing in `main`).
    public var workerExecutable: String?
    /// How long `compile()` waits for each worker process to report ready or refuse.
    public var handshakeTimeout: Duration
    /// Keep one standby process per worker, started and with its graph rebuilt, parked on a futex; a
    /// crashed worker is replaced by activating it (no spawn on the recovery path), and a new standby
    /// is started behind it. Costs one idle process per worker.
    public var standbyWorkers: Bool

    /// The defaults: 10 restarts per worker per minute, this program as the worker, 5 s to start, no standby.
    public init(
        restartPolicy: RestartPolicy = RestartPolicy(),
        workerExecutable: String? = nil,
        handshakeTimeout: Duration = .seconds(5),
        standbyWorkers: Bool = false
    ) {
        self.restartPolicy = restartPolicy
        self.workerExecutable = workerExecutable
        self.handshakeTimeout = handshakeTimeout
        self.standbyWorkers = standbyWorkers
    }
}

extension CompileOptions {
    /// Whether the workers run as child processes.
    var isolatesProcesses: Bool { isolation.processOptions != nil }
    /// The process settings (the defaults in thread mode, where only the supervisor reads them).
    var process: ProcessOptions { isolation.processOptions ?? ProcessOptions() }
}

/// How often a crashed worker process is restarted, like Ray's `max_restarts`: at most
/// `maxRestarts` restarts of one worker within any `window`; one more crash fails the graph with
/// ``ExecutionError/restartsExhausted(worker:restarts:)``.
public struct RestartPolicy: Sendable, Equatable {
    /// Restarts allowed per worker within `window` (0: never restart).
    public var maxRestarts: Int
    /// The sliding window the restarts are counted in.
    public var window: Duration

    /// The default: 10 restarts per worker per minute.
    public init(maxRestarts: Int = 10, window: Duration = .seconds(60)) {
        self.maxRestarts = maxRestarts
        self.window = window
    }
}

/// Spin first, park only when idle: a wake-up costs 12–17 µs here, a cache-line hand-off ~140 ns.
///
/// A worker (or a waiting caller) parks only after it has found nothing to do for both
/// `workerSpins` (`callerSpins`) polls in a row *and* `spinTime`: the count alone would make the
/// budget depend on how fast one poll is on this CPU.
public struct IdlePolicy: Sendable {
    /// Empty polls a worker makes before it may park.
    public var workerSpins: Int
    /// Polls a waiting caller makes before it may park on a futex.
    public var callerSpins: Int
    /// How long a worker or caller keeps spinning with nothing to do before it parks.
    public var spinTime: Duration
    /// The longest a parked thread sleeps before it re-checks for shutdown (a safety net, not a poll).
    public var parkTimeout: Duration
    /// How an idle thread waits: spin, yield, park, or adapt to contention (the default). With
    /// `.busySpin` and `.yielding` nothing parks; with `.blocking` the spin limits are not used.
    public var strategy: WaitStrategy

    /// The default: spin for 1 ms of idleness (and at least 20 000 polls) before parking, yielding or
    /// parking sooner when the CPUs are oversubscribed or a CPU quota would be exceeded.
    public init(
        workerSpins: Int = 20_000,
        callerSpins: Int = 20_000,
        spinTime: Duration = .milliseconds(1),
        parkTimeout: Duration = .milliseconds(100),
        strategy: WaitStrategy = .adaptive
    ) {
        self.workerSpins = workerSpins
        self.callerSpins = callerSpins
        self.spinTime = spinTime
        self.parkTimeout = parkTimeout
        self.strategy = strategy
    }

    /// Park almost at once: for oversubscribed machines and tests.
    public static let eager = IdlePolicy(workerSpins: 64, callerSpins: 64, spinTime: .zero)
}

/// How the compiler assigns nodes to workers. Nodes sharing an ``ActorRef`` always share a worker.
public enum Placement: Sendable, Equatable, CaseIterable {
    /// Fuse chains into direct calls and spread the fused segments over the workers.
    case automatic
    /// One node per segment (no fusion), nodes dealt round-robin over the workers: every edge is a channel.
    case spread
    /// Every node on worker 0 (chains fused).
    case singleWorker
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
