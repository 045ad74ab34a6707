import ActorGraphPlatform
import Glibc
import Synchronization

/// The compiled engine behind a ``CompiledGraph``: one shared-memory region holding every ring,
/// the workers (threads of this process, or child processes — see `Isolation/`), admission of new
/// executions and shutdown. The region layout is ``RegionLayout``.
///
/// `@unchecked Sendable`: its stored properties are set in `init` and never reassigned (but `threads`,
/// written only under `lifecycle`, and `supervisor`, set once in `init`); what threads share at run
/// time lives in the region and is accessed through atomics under the ring protocol (``SlotRing``).
@usableFromInline
final class EngineCore: @unchecked Sendable {
    let plan: ExecutionPlan
    let options: CompileOptions
    let region: SharedMemoryRegion
    let wiring: EngineWiring
    let input: SlotRing
    @usableFromInline let board: ResultBoard
    /// Claiming, writing and publishing inputs (the submission side).
    @usableFromInline let sequencer: Sequencer
    let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    let nextSequence: UnsafeMutablePointer<Atomic<Int>>
    let idlePolicy: IdlePolicy
    /// Workers are child processes (``Isolation/processes``): futexes are shared.
    let isolated: Bool
    let rings: [SlotRing]
    let errorTables: [UnsafeMutablePointer<(any Error)?>]
    /// Thread mode: the workers (process mode: none here; they live in the children).
    let workers: [Worker]
    /// Per-stage statistics (``CompileOptions/statistics``); `nil` when off.
    let statistics: StatisticsStore?
    /// Started threads, with their worker's index.
    private var threads: [(worker: Int, thread: PinnedThread)] = []
    /// Thread workers still running a stage when `shutdown()` gave up waiting (left detached).
    let detachedThreads = Atomic<Int>(0)
    /// Process mode: the worker processes; crash, hang and async-notification handling.
    var supervisor: Supervisor?
    private let boundActors: [ActorBinding]
    /// Thread mode: the actors each worker's segments use (every node of an actor is on one worker),
    /// given back when that worker has stopped (``giveBackIfStopped(_:_:)``).
    private let actorsByWorker: [[ActorBinding]]
    /// Per worker, ``WorkerExit`` bits: who has seen what of its end. Whoever sets the second bit
    /// gives the worker's actors back, so that happens exactly once and only after its last stage.
    /// (Atomics, not a `Mutex`: ThreadSanitizer cannot see the stdlib's lock and reported the
    /// array accesses under it as races.)
    private let workerExits: [WorkerExit]
    private let lifecycle = Mutex<Bool>(false)  // true once shut down
    /// The host this engine runs (0: the owner; a piece runs only its host's workers).
    let host: Int
    /// A graph spanning hosts: its cross-host edges (on this host's edge worker) and, on the owner,
    /// the connector that brings replacement pieces in.
    private(set) var edges: TCPEdges?
    var connector: PieceConnector?

    /// - Parameter attachWorker0: builds the I/O attachment of worker 0 (a network source/sink),
    ///   called once everything else is in place and before any thread starts.
    /// - Parameter host: which host's workers to run (a graph spanning hosts; 0 otherwise).
    /// - Parameter start: the first sequence the workers run (a replacement piece starts mid-stream).
    /// - Parameter makeEdges: builds the cross-host edges of `host`, installed on its edge worker.
    init(
        plan: ExecutionPlan,
        options: CompileOptions,
        attachWorker0: ((EngineCore) -> RingAttachment)? = nil,
        host: Int = 0,
        start: Int = 0,
        makeEdges: ((EngineCore) -> TCPEdges)? = nil
    ) throws(CompileError) {
        self.plan = plan
        self.host = host
        Contention.shared.update(plan.effectiveCPUs, cpuStatPath: plan.cpuStatPath)
        self.options = options
        let isolated = options.isolatesProcesses
        self.isolated = isolated
        let capacity = plan.capacity

        // Bind stateful actors to this instance.
        var actors: [ObjectIdentifier: ActorBinding] = [:]
        for node in plan.nodes where (plan.hosts?.nodeHost[node.index] ?? 0) == host {
            if let a = node.actor { actors[a.id] = a }
        }
        var bound: [ActorBinding] = []
        for actor in actors.values.sorted(by: { $0.name < $1.name }) {
            guard actor.tryBind() else {
                bound.forEach { $0.unbind() }
                throw .actorAlreadyBound(actor: actor.name)
            }
            bound.append(actor)
        }
        self.boundActors = bound
        var byWorker = [[ActorBinding]](repeating: [], count: plan.workerCount)
        var placed = Set<ObjectIdentifier>()
        for (i, node) in plan.nodes.enumerated() where (plan.hosts?.nodeHost[i] ?? 0) == host {
            guard let actor = node.actor, let w = plan.nodeWorker[i], placed.insert(actor.id).inserted else { continue }
            byWorker[w].append(actor)
        }
        actorsByWorker = byWorker
        workerExits = (0..<plan.workerCount).map { _ in WorkerExit() }

        // Lay out and map the region (sealed against resizing when children share it).
        let layout = RegionLayout(plan: plan, processMode: isolated)
        guard layout.totalBytes <= CompileOptions.maxRegionBytes else {
            bound.forEach { $0.unbind() }
            throw .regionTooLarge(bytes: layout.totalBytes)
        }
        // Statistics (when on) take the end of the region: worker processes record there too.
        let statisticsOffset = StatisticsStore.offset(afterLayoutBytes: layout.totalBytes)
        let statisticsEnd =
            options.statistics == .off ? layout.totalBytes : statisticsOffset + StatisticsStore.byteCount(for: plan)
        let region: SharedMemoryRegion
        do {
            region = try SharedMemoryRegion(
                name: "actorgraph",
                byteCount: statisticsEnd,
                numaNode: plan.numaNode,
                sealed: isolated
            )
        } catch {
            bound.forEach { $0.unbind() }
            throw .platform(operation: "memfd_create/mmap of \(layout.totalBytes) bytes", errno: error)
        }
        self.region = region
        statistics = options.statistics.sampleInterval.map {
            StatisticsStore(plan: plan, sampleInterval: $0, base: region.base + statisticsOffset, initialize: true)
        }
        // The region is zero-filled: every control word, park word and stamp starts at 0.
        let wiring = EngineWiring(plan: plan, layout: layout, base: region.base)
        self.wiring = wiring
        stopping = wiring.stopping
        nextSequence = wiring.nextSequence
        let rings = wiring.rings
        let errorTables = wiring.makeErrorTables()
        self.rings = rings
        self.errorTables = errorTables
        input = rings[plan.inputChannel]
        let resultRing = rings[plan.outputChannel]
        resultRing.initializeAsResultRing()
        board = ResultBoard(
            ring: resultRing,
            errors: errorTables[plan.outputChannel],
            stopping: stopping,
            nodeNames: plan.nodes.map(\.name),
            policy: options.idle,
            sharedFutex: isolated,
            messages: wiring.messages[plan.outputChannel],
            workerCPUs: plan.workerCPUs,
            hostNames: plan.hosts?.names ?? [],
            resultDecoder: ResultDecoder(plan: plan)
        )
        idlePolicy = options.idle
        let inputChannel = plan.channels[plan.inputChannel]
        sequencer = Sequencer(
            cursor: nextSequence,
            input: input,
            board: board,
            wakeTargets: wiring.wakeTargets(of: plan.inputChannel, excludingWorker: nil),
            sharedFutex: isolated,
            statistics: statistics,
            inputDestroy: inputChannel.layout.isTrivial ? nil : inputChannel.layout.destroy,
            policy: options.idle,
            submitTimeout: options.submitTimeout,
            capacity: capacity,
            inputEncoder: InputEncoder(plan: plan, wiring: wiring)
        )

        if isolated {
            workers = []
            RegionHeader(plan: plan, options: options).write(to: region.base)
            do {
                supervisor = try Supervisor(core: self)
            } catch {
                shutdown()
                throw error
            }
            return
        }

        // Thread mode: one runner per segment, grouped by worker, one pinned thread per worker.
        let board = self.board
        let stopping = self.stopping
        // A piece starts where the owner told it (every ring is indexed by the execution sequence).
        let ownWorkers = (0..<plan.workerCount).filter { (plan.hosts?.host(ofWorker: $0) ?? 0) == host }
        workers = ownWorkers.map { w in
            var workerOptions = options
            if let hosts = plan.hosts, w == hosts.edgeWorker(of: host) {
                // The edge worker must look at its connections every half heartbeat, even idle.
                // (Its spin is capped like every worker with I/O attached: Worker.ioSpinTime.)
                workerOptions.idle.parkTimeout = min(options.idle.parkTimeout, options.remote.heartbeat / 2)
            }
            return Worker(
                index: w,
                runners: wiring.makeRunners(
                    worker: w,
                    errorTables: errorTables,
                    board: board,
                    sharedFutex: false,
                    start: start
                ),
                parkWord: wiring.parkWords[w],
                stopping: stopping,
                options: workerOptions,
                numaNode: plan.numaNode,
                control: wiring.controls[w],
                sharedFutex: false,
                pinnedCPU: plan.workerCPUs[w],
                workerCPUs: plan.pinnedWorkerCPUs
            )
        }
        if plan.hosts == nil { statistics?.install(workers: workers, inputCount: nextSequence) }
        if let attachWorker0 { workers[0].attachment = attachWorker0(self) }
        if let makeEdges, let hosts = plan.hosts,
            let edgeWorker = workers.first(where: { $0.index == hosts.edgeWorker(of: host) })
        {
            let edges = makeEdges(self)
            edges.parkWord = edgeWorker.parkWord
            edgeWorker.attachment = edges
            edgeWorker.watchesMachine = true
            self.edges = edges
        }
        // Callers may run the stages of parked workers themselves (CallerTakeover.swift), except
        // where a stage must stay watchable or a worker's ring is bound to its thread.
        if attachWorker0 == nil && makeEdges == nil && options.stageTimeLimit == nil && options.callerTakeover {
            sequencer.install(
                takeover: CallerTakeover(
                    workers: workers,
                    inputRing: input,
                    resultRing: resultRing,
                    stopping: stopping
                )
            )
            for worker in workers { worker.canBeTakenOver = true }
        }
        do {
            for worker in workers {
                // The thread keeps the core (and so the mapped region) alive until it returns: a thread
                // left detached by `shutdown()` in a stuck stage never touches unmapped memory.
                threads.append(
                    (
                        worker.index,
                        try PinnedThread(name: "actorgraph-w\(worker.index)", cpu: plan.workerCPUs[worker.index]) {
                            [self] in
                            worker.run()
                            // Past its last stage: if shutdown already gave up waiting (a stage outlived the
                            // grace period), this thread gives the worker's actors back.
                            giveBackIfStopped(worker.index, WorkerExit.threadStopped)
                        }
                    )
                )
            }
            if options.stageTimeLimit != nil { supervisor = try Supervisor(core: self) }
        } catch let error as CompileError {
            shutdown()
            throw error
        } catch {
            shutdown()
            throw .platform(operation: "pthread_create", errno: error as? Errno ?? .invalidArgument)
        }
    }

    deinit {
        shutdown()
        // Destroy the values still stored in the rings (types holding references).
        for channel in plan.channels where !channel.layout.isTrivial {
            let ring = rings[channel.id]
            for k in 0..<ring.capacity
            where ring.stampWord(k).pointee.load(ordering: .acquiring) != 0 && ring.failure(k).pointee == 0 {
                channel.layout.destroy(ring.value(k))
            }
        }
        for table in errorTables {
            table.deinitialize(count: plan.capacity)
            table.deallocate()
        }
        region.close()
    }

    // MARK: Shutdown

    /// Stops the workers, answers every waiter and unbinds actors. Idempotent. Returns within about
    /// ``CompileOptions/shutdownGracePeriod`` even while a stage is stuck: a worker process is
    /// killed, a worker thread is left detached (it keeps the region mapped until it returns).
    func shutdown() {
        let first = lifecycle.withLock { done -> Bool in
            if done { return false }
            done = true
            return true
        }
        guard first else { return }
        connector?.stop()
        wiring.stopAndWakeWorkers(sharedFutex: isolated)
        let grace = max(0, options.shutdownGracePeriod.nanoseconds)
        let deadline = MonotonicClock.now() &+ UInt64(grace)
        // Waiters of executions not yet run are answered now, not after the grace period.
        board.wakeAllForShutdown()
        for (w, thread) in threads {
            let now = MonotonicClock.now()
            if !thread.join(timeoutNanoseconds: now >= deadline ? 0 : Int64(deadline &- now)) {
                detachedThreads.add(1, ordering: .relaxed)
                workerExits[w].bits.bitwiseOr(WorkerExit.leftDetached, ordering: .relaxed)
                logger.warning(
                    "shutdown: a worker thread is still inside a stage after the grace period; left detached (its actors come back when the stage returns)"
                )
            }
        }
        supervisor?.stop(deadline: deadline)
        board.wakeAllForShutdown()
        if isolated || threads.isEmpty {
            // Process mode: every child has exited or was killed and reaped. No threads: none ran.
            boundActors.forEach { $0.unbind() }
        } else {
            for worker in workers where !threads.contains(where: { $0.worker == worker.index }) {
                giveBackIfStopped(worker.index, WorkerExit.threadStopped)  // its thread was never started
            }
            for worker in workers { giveBackIfStopped(worker.index, WorkerExit.shutdownDone) }
        }
    }

    /// Records `bit` (``WorkerExit``) for worker `w`; the call that completes both bits gives the
    /// worker's actors back. The thread sets `threadStopped` after its loop (never inside a stage),
    /// `shutdown()` sets `shutdownDone` after its wait, whether or not the thread stopped in time.
    private func giveBackIfStopped(_ w: Int, _ bit: UInt8) {
        let before = workerExits[w].bits.bitwiseOr(bit, ordering: .acquiringAndReleasing).oldValue
        let both = WorkerExit.threadStopped | WorkerExit.shutdownDone
        guard before & bit == 0, (before | bit) & both == both else { return }
        actorsByWorker[w].forEach { $0.unbind() }
        if before & WorkerExit.leftDetached != 0 {
            logger.notice(
                "a worker thread left detached by shutdown has returned from its stage: its actors are free again"
            )
        }
    }

    var isShutDown: Bool { lifecycle.withLock { $0 } }

    /// The monotonic-clock deadline `timeout` from now (never 0, which means "none").
    @usableFromInline
    static func deadline(after timeout: Duration) -> UInt64 {
        max(1, MonotonicClock.now() &+ UInt64(max(0, timeout.nanoseconds)))
    }
}

/// The two events that end a worker thread's hold on its actors (``EngineCore`` `workerExits`).
final class WorkerExit: Sendable {
    let bits = Atomic<UInt8>(0)
    /// The worker's thread left its loop: no stage of it runs again.
    static let threadStopped: UInt8 = 1
    /// `shutdown()` finished waiting for the thread (joined, or gave up after the grace period).
    static let shutdownDone: UInt8 = 2
    /// `shutdown()` gave up waiting for the thread (for the log line when it comes back).
    static let leftDetached: UInt8 = 4
}

extension RegionHeader {
    init(plan: ExecutionPlan, options: CompileOptions) {
        self.init(
            fingerprint: PlanFingerprint.of(plan),
            workerCount: plan.workerCount,
            capacity: plan.capacity,
            placement: options.placement,
            batchSize: options.batchSize,
            workerSpins: options.idle.workerSpins,
            callerSpins: options.idle.callerSpins,
            spinTimeNanoseconds: Int(options.idle.spinTime.nanoseconds),
            parkTimeoutNanoseconds: Int(options.idle.parkTimeout.nanoseconds),
            useIORing: options.useIORing,
            numaNode: plan.numaNode ?? -1,
            cpus: plan.workerCPUs,
            waitStrategy: options.idle.strategy
        )
        statisticsInterval = options.statistics.sampleInterval ?? 0
    }
}
