import ActorGraphPlatform

extension Graph {
    /// Validates the graph and turns it, once, into preallocated shared-memory rings and pinned
    /// worker threads. Throws a ``CompileError`` naming the offending node for malformed graphs.
    public func compile(
        _ options: CompileOptions = CompileOptions()
    ) throws(CompileError) -> CompiledGraph<Input, Output> {
        IsolatedWorker.refuseIfForgotten()
        let plan = try Compiler.plan(
            nodes: try validatedNodes(),
            inputNode: inputIndex,
            outputNode: outputIndex,
            options: options
        )
        if plan.isRemote { return CompiledGraph(core: try EngineCore.owner(plan: plan, options: options)) }
        return CompiledGraph(core: try EngineCore(plan: plan, options: options))
    }
}

/// A compiled graph: executions move through preallocated rings between pinned workers, with no
/// allocation, lock or scheduler on the hot path. Safe to use from several threads at once.
///
/// Results come back per execution; ``submit(_:)`` pipelines up to `capacity` executions.
/// ``shutdown()`` (also run on `deinit`) answers every waiter.
public final class CompiledGraph<Input: Sendable, Output: Sendable>: Sendable {
    @usableFromInline let core: EngineCore
    /// The core's submission side, held here too: a stored `let` of `self` is called without the
    /// retain/release pair that reaching it through `core` costs on every call (perf: +30 % of
    /// retain/release samples in `chain3.pipelined`, 5–10 % of its throughput).
    @usableFromInline let sequencer: Sequencer
    /// The core's result board, held here for the same reason: `core.board` retained the board on
    /// every call, a write to its header's cache line, which the worker that publishes results
    /// reads — in some heap layouts a cache-line transfer per execution (interleaved echo 2x).
    @usableFromInline let board: ResultBoard

    init(core: EngineCore) {
        self.core = core
        self.sequencer = core.sequencer
        self.board = core.board
    }

    deinit { core.shutdown() }

    /// Runs one execution and blocks until its result (spinning first, then parking).
    ///
    /// In thread mode, when every worker is parked (the graph was idle), the calling thread runs
    /// the stages itself instead of waking a worker on another CPU, and gives the workers back
    /// afterwards (see ``CompileOptions/callerTakeover``).
    @inlinable
    public func execute(_ input: Input) throws(ExecutionError) -> Output {
        let k = try sequencer.claim()
        sequencer.slot(k).initializeMemory(as: Input.self, to: input)
        let rangParkedWorker = sequencer.publishRunningIfParked(k)
        if !board.ring.isPublished(k) { try board.waitPublished(k, yielding: rangParkedWorker) }
        return try takeResult(k)
    }

    /// Runs one execution; suspends the task (not the thread) while it waits.
    @inlinable
    public func execute(_ input: Input) async throws(ExecutionError) -> Output {
        let k = try await sequencer.claimAsync()
        write(input, into: k)
        try await board.awaitPublished(k)
        return try takeResult(k)
    }

    /// Runs one execution and blocks until its result, at most `timeout` after submission
    /// (admission waits up to the submit timeout first). Throws ``ExecutionError/timedOut`` past it:
    /// the execution is abandoned and its slot comes back when its late result arrives.
    @inlinable
    public func execute(_ input: Input, timeout: Duration) throws(ExecutionError) -> Output {
        let k = try enqueue(input)
        do {
            try board.waitPublished(k, deadline: EngineCore.deadline(after: timeout))
        } catch {
            if case .timedOut = error { board.abandon(k) }
            throw error
        }
        return try takeResult(k)
    }

    /// Runs one execution, suspending the task while it waits, at most `timeout`; throws
    /// ``ExecutionError/timedOut`` past it (the execution is abandoned, its slot comes back later).
    @inlinable
    public func execute(_ input: Input, timeout: Duration) async throws(ExecutionError) -> Output {
        let k = try await sequencer.claimAsync()
        write(input, into: k)
        do {
            try await board.awaitPublished(k, deadline: EngineCore.deadline(after: timeout))
        } catch {
            if case .timedOut = error { board.abandon(k) }
            throw error
        }
        return try takeResult(k)
    }

    /// Starts one execution and returns at once; blocks only while `capacity` executions are in
    /// flight, up to the submit timeout, then throws ``ExecutionError/capacityExceeded(capacity:)``.
    ///
    /// Slots are reused in sequence order (execution `k` takes the slot of `k - capacity`), so
    /// "in flight" counts from the oldest execution whose result was neither waited for nor dropped.
    @inlinable
    public func submit(_ input: Input) throws(ExecutionError) -> PendingExecution<Output> {
        PendingExecution(core: core, sequence: try enqueue(input))
    }

    @inlinable
    func enqueue(_ input: Input) throws(ExecutionError) -> Int {
        let k = try sequencer.claim()
        write(input, into: k)
        return k
    }

    @inlinable
    func write(_ input: Input, into k: Int) {
        sequencer.slot(k).initializeMemory(as: Input.self, to: input)
        sequencer.publish(k)
    }

    @inlinable
    func takeResult(_ k: Int) throws(ExecutionError) -> Output {
        try board.takeValue(k, as: Output.self)
    }

    /// Stops every worker at the next execution boundary and answers every waiter: executions not
    /// started yet get ``ExecutionError/shutDown`` and never run; a stage already running is waited for
    /// up to ``CompileOptions/shutdownGracePeriod`` (then its worker process is killed, or its thread
    /// left detached: that thread gives its actors back when the stage returns). No stage starts
    /// after this returns. Idempotent; also run on `deinit`. The rings are unmapped once no handle
    /// (and no detached thread) is left.
    public func shutdown() { core.shutdown() }

    /// Whether ``shutdown()`` ran.
    public var isShutDown: Bool { core.isShutDown }

    /// Executions in flight at most (the channel capacity, a power of two).
    public var capacity: Int { core.plan.capacity }

    /// Worker threads running the graph.
    public var workerCount: Int { core.plan.workerCount }

    /// The CPUs the process could really use when the graph was compiled: its affinity mask and its
    /// cgroup CPU quota (`effectiveCPUs.cpus` keeps a quota's fraction, `count` rounds it up).
    public var effectiveCPUs: EffectiveCPUs { core.plan.effectiveCPUs }

    /// How idle workers and waiting callers wait (``IdlePolicy/strategy``).
    public var waitStrategy: WaitStrategy { core.idlePolicy.strategy }

    /// The worker each named node runs on.
    public var placement: [String: Int] {
        var result: [String: Int] = [:]
        for node in core.plan.nodes { if let w = core.plan.nodeWorker[node.index] { result[node.name] = w } }
        return result
    }

    /// The fused segments, each a list of node names run as direct calls on one worker, in order.
    public var segments: [(worker: Int, nodes: [String])] {
        core.plan.segments.map { ($0.worker, $0.nodes.map { core.plan.nodes[$0].name }) }
    }

    /// Channels (rings) allocated: one for the input and one per segment output.
    public var channelCount: Int { core.plan.channels.count }

    /// Bytes of the shared-memory region holding every ring.
    public var sharedMemoryBytes: Int { core.region.size }

    /// Where the workers run (``CompileOptions/isolation``).
    public var isolation: Isolation { core.options.isolation }

    /// Crashes, restarts, recovery times, worker process ids and stuck-stage reports so far.
    public var isolationStatistics: IsolationStatistics {
        var s = core.supervisor?.statistics.withLock { $0 } ?? IsolationStatistics()
        if !core.options.isolatesProcesses { s.workerProcessIDs = [] }
        return s
    }

    /// What the engine did so far that is not a result: how workers park, how often callers ran
    /// stages themselves, what shutdown left behind. A snapshot, from any thread.
    public var diagnostics: GraphDiagnostics {
        GraphDiagnostics(
            parkMechanisms: core.wiring.controls.map {
                $0.parkMechanism.pointee.load(ordering: .relaxed) == 1
                    ? Worker.ParkMechanism.ioUring.rawValue : Worker.ParkMechanism.futex.rawValue
            },
            parkCounts: core.wiring.controls.map { Int($0.parkCount.pointee.load(ordering: .relaxed)) },
            callerTakeovers: sequencer.takeover?.inlineRuns.load(ordering: .relaxed) ?? 0,
            detachedWorkerThreads: core.detachedThreads.load(ordering: .relaxed),
            hosts: core.edges?.links.map { HostStatus(link: $0) } ?? []
        )
    }

    /// A graph spanning hosts: where `host`'s piece listens from now on (a placer restarted it
    /// elsewhere, say). Later connects of that host — after the current piece is lost — try these
    /// addresses, in order. Throws ``CompileError/unknownHost(node:host:)`` for a host the graph does not use.
    public func setPieceAddresses(_ addresses: [PieceAddress], forHost host: String) throws(CompileError) {
        guard core.connector?.setAddresses(addresses, forHost: host) == true else {
            throw .unknownHost(node: "(none)", host: host)
        }
    }

    /// A Graphviz description: nodes clustered by worker, edges labelled with channel capacity or "fused".
    public func dot() -> String { DOTWriter.write(core.plan, cpus: core.plan.workerCPUs) }

    /// A snapshot of the per-stage statistics recorded so far (from any thread, at any time), or
    /// `nil` when the graph was compiled with ``CompileOptions/statistics`` `.off`.
    public var statistics: GraphStatistics? { core.statistics?.snapshot() }

    /// ``dot()`` with each node and ring labelled with its measured figures (count, failures,
    /// stage p50/p99, channel wait p50/p99); the same as ``dot()`` when statistics are off.
    public func dot(statistics: GraphStatistics?) -> String {
        DOTWriter.write(core.plan, cpus: core.plan.workerCPUs, statistics: statistics)
    }
}

/// One submitted execution. Wait for it with ``wait()`` (or `await value()`): a result is delivered
/// once, a second wait throws ``ExecutionError/alreadyWaited(sequence:)``. Dropping it without waiting
/// discards the result and frees its slot, so capacity never leaks.
///
/// It is `~Copyable` (one owner, one result) but waits *borrow* it, so it can live in a global, in a
/// noncopyable container such as swift-collections' `UniqueArray`, or in a ``PendingBatch``.
@frozen
public struct PendingExecution<Output: Sendable>: ~Copyable, Sendable {
    @usableFromInline let core: Unmanaged<EngineCore>
    /// The execution's sequence number (submit order).
    public let sequence: Int

    @inlinable
    init(core: EngineCore, sequence: Int) {
        self.core = Unmanaged.passRetained(core)
        self.sequence = sequence
    }

    /// Blocks until the execution completes or `timeout` passes: then throws ``ExecutionError/timedOut``
    /// and the execution is abandoned (its slot comes back when the late result arrives; a later
    /// wait throws ``ExecutionError/alreadyWaited(sequence:)``).
    @inlinable
    public func wait(timeout: Duration) throws(ExecutionError) -> Output {
        let k = sequence
        // A guaranteed reference, as in ``wait()``: no retain/release pair per call.
        let result = core._withUnsafeGuaranteedRef { engine -> Result<Output, ExecutionError> in
            do throws(ExecutionError) {
                try engine.board.checkNotTaken(k)
                do throws(ExecutionError) {
                    try engine.board.waitPublished(k, deadline: EngineCore.deadline(after: timeout))
                } catch {
                    if case .timedOut = error { engine.board.abandonAfterTimeout(k) }
                    throw error
                }
                return .success(try engine.board.takeValue(k, as: Output.self))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Suspends until the execution completes or `timeout` passes (then ``ExecutionError/timedOut``;
    /// the execution is abandoned).
    @inlinable
    public func value(timeout: Duration) async throws(ExecutionError) -> Output {
        let k = sequence
        let engine = core.takeUnretainedValue()
        try engine.board.checkNotTaken(k)
        do {
            try await engine.board.awaitPublished(k, deadline: EngineCore.deadline(after: timeout))
        } catch {
            if case .timedOut = error { engine.board.abandonAfterTimeout(k) }
            throw error
        }
        return try engine.board.takeValue(k, as: Output.self)
    }

    /// Blocks until the execution completes and returns its output, or throws its failure.
    @inlinable
    public func wait() throws(ExecutionError) -> Output {
        let k = sequence
        // Through a guaranteed reference: a local strong copy of the engine (or its board) costs a
        // retain/release pair per call, each a locked instruction (a full fence on x86).
        let result = core._withUnsafeGuaranteedRef { engine -> Result<Output, ExecutionError> in
            do throws(ExecutionError) {
                try engine.board.checkNotTaken(k)
                if !engine.board.ring.isPublished(k) { try engine.board.waitPublished(k) }
                return .success(try engine.board.takeValue(k, as: Output.self))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Blocks until the execution completes and lends its output to `body` in place, without copying
    /// it out of the result ring (for large payloads); the slot is freed when `body` returns.
    @inlinable
    public func withResult<R>(_ body: (borrowing Output) -> R) throws(ExecutionError) -> R {
        let k = sequence
        let engine = core.takeUnretainedValue()
        try engine.board.checkNotTaken(k)
        try engine.board.waitPublished(k)
        let slot = try engine.board.take(k).assumingMemoryBound(to: Output.self)
        defer { engine.board.collect(k) }
        return body(slot.pointee)
    }

    /// Suspends until the execution completes and returns its output, or throws its failure.
    @inlinable
    public func value() async throws(ExecutionError) -> Output {
        let k = sequence
        let engine = core.takeUnretainedValue()
        try engine.board.checkNotTaken(k)
        try await engine.board.awaitPublished(k)
        return try engine.board.takeValue(k, as: Output.self)
    }

    deinit {
        let k = sequence
        core._withUnsafeGuaranteedRef { engine in
            if !engine.board.wasTaken(k) { engine.board.abandon(k) }
        }
        core.release()
    }
}
