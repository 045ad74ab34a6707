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
    @usableFromInline let input: SlotRing
    @usableFromInline let board: ResultBoard
    let inputDestroy: (@Sendable (UnsafeMutableRawPointer) -> Void)?
    let inputWakeTargets: [UnsafeMutablePointer<Atomic<UInt32>>]
    let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    @usableFromInline let nextSequence: UnsafeMutablePointer<Atomic<Int>>
    let idlePolicy: IdlePolicy
    @usableFromInline let submitTimeoutNanoseconds: Int64
    /// Workers are child processes (``Isolation/processes``): futexes are shared.
    let isolated: Bool
    let rings: [SlotRing]
    let errorTables: [UnsafeMutablePointer<(any Error)?>]
    /// Thread mode: the workers (process mode: none here; they live in the children).
    let workers: [Worker]
    /// Per-stage statistics (``CompileOptions/statistics``); `nil` when off.
    let statistics: StatisticsStore?
    private var threads: [PinnedThread] = []
    /// Thread workers still running a stage when `shutdown()` gave up waiting (left detached).
    let detachedThreads = Atomic<Int>(0)
    private let detachedWorkers = Mutex<Set<Int>>([])
    /// Process mode: the worker processes; crash, hang and async-notification handling.
    var supervisor: Supervisor?
    /// Thread mode: lets `execute` run the stages of parked workers on the caller's thread; `nil`
    /// where that is not allowed (see ``CallerTakeover``). Set once in `init`.
    private(set) var takeover: CallerTakeover?
    private let boundActors: [ActorBinding]
    /// Thread mode: the actors each worker's segments use (every node of an actor is on one worker),
    /// given back when that worker has stopped (``giveBackIfStopped(_:_:)``).
    private let actorsByWorker: [[ActorBinding]]
    /// Per worker, ``WorkerExit`` bits: who has seen what of its end. Whoever sets the second bit
    /// gives the worker's actors back, so that happens exactly once and only after its last stage.
    private let workerExits: Mutex<[UInt8]>
    private let lifecycle = Mutex<Bool>(false) // true once shut down

    /// - Parameter attachWorker0: builds the I/O attachment of worker 0 (a network source/sink),
    ///   called once everything else is in place and before any thread starts.
    init(plan: ExecutionPlan, options: CompileOptions,
         attachWorker0: ((EngineCore) -> RingAttachment)? = nil) throws(GraphError) {
        self.plan = plan
        Contention.shared.update(plan.effectiveCPUs, cpuStatPath: plan.cpuStatPath)
        self.options = options
        let isolated = options.isolation == .processes
        self.isolated = isolated
        let capacity = plan.capacity

        // Bind stateful actors to this instance.
        var actors: [ObjectIdentifier: ActorBinding] = [:]
        for node in plan.nodes { if let a = node.actor { actors[a.id] = a } }
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
        for (i, node) in plan.nodes.enumerated() {
            guard let actor = node.actor, let w = plan.nodeWorker[i], placed.insert(actor.id).inserted else { continue }
            byWorker[w].append(actor)
        }
        actorsByWorker = byWorker
        workerExits = Mutex([UInt8](repeating: 0, count: plan.workerCount))

        // Lay out and map the region (sealed against resizing when children share it).
        let layout = RegionLayout(plan: plan, processMode: isolated)
        guard layout.totalBytes <= CompileOptions.maxRegionBytes else {
            bound.forEach { $0.unbind() }
            throw .regionTooLarge(bytes: layout.totalBytes)
        }
        // Statistics (when on) take the end of the region: worker processes record there too.
        let statisticsOffset = StatisticsStore.offset(afterLayoutBytes: layout.totalBytes)
        let statisticsEnd = options.statistics == .off ? layout.totalBytes : statisticsOffset + StatisticsStore.byteCount(for: plan)
        let region: SharedMemoryRegion
        do {
            region = try SharedMemoryRegion(name: "actorgraph", byteCount: statisticsEnd, numaNode: plan.numaNode,
                                            sealed: isolated)
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
        let errorTables = plan.channels.map { _ in
            let table = UnsafeMutablePointer<(any Error)?>.allocate(capacity: capacity)
            table.initialize(repeating: nil, count: capacity)
            return table
        }
        self.rings = rings
        self.errorTables = errorTables
        input = rings[plan.inputChannel]
        inputDestroy = plan.channels[plan.inputChannel].layout.isTrivial ? nil : plan.channels[plan.inputChannel].layout.destroy
        let resultRing = rings[plan.outputChannel]
        resultRing.initializeAsResultRing()
        board = ResultBoard(ring: resultRing, errors: errorTables[plan.outputChannel], stopping: stopping,
                            nodeNames: plan.nodes.map(\.name), policy: options.idle, sharedFutex: isolated,
                            messages: wiring.messages[plan.outputChannel])
        board.workerCPUMask = plan.workerCPUs.reduce(0) { mask, cpu in
            guard let cpu, cpu < 64 else { return mask }
            return mask | (1 << UInt64(cpu))
        }
        idlePolicy = options.idle
        submitTimeoutNanoseconds = options.submitTimeout.nanoseconds
        inputWakeTargets = wiring.wakeTargets(of: plan.inputChannel, excludingWorker: nil)

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
        workers = (0..<plan.workerCount).map { w in
            Worker(index: w, runners: wiring.makeRunners(worker: w, errorTables: errorTables, board: board,
                                                          sharedFutex: false, start: 0),
                   parkWord: wiring.parkWords[w], stopping: stopping, options: options, numaNode: plan.numaNode,
                   control: wiring.controls[w], sharedFutex: false)
        }
        statistics?.install(workers: workers, inputCount: nextSequence)
        if let attachWorker0 { workers[0].attachment = attachWorker0(self) }
        // Callers may run the stages of parked workers themselves (CallerTakeover.swift), except
        // where a stage must stay watchable or a worker's ring is bound to its thread.
        if attachWorker0 == nil && options.stageTimeLimit == nil && options.callerTakeover {
            takeover = CallerTakeover(workers: workers, inputRing: input, resultRing: resultRing, stopping: stopping)
        }
        do {
            for worker in workers {
                // The thread keeps the core (and so the mapped region) alive until it returns: a thread
                // left detached by `shutdown()` in a stuck stage never touches unmapped memory.
                threads.append(try PinnedThread(name: "actorgraph-w\(worker.index)", cpu: plan.workerCPUs[worker.index]) { [self] in
                    worker.run()
                    // Past its last stage: if shutdown already gave up waiting (a stage outlived the
                    // grace period), this thread gives the worker's actors back.
                    giveBackIfStopped(worker.index, WorkerExit.threadStopped)
                })
            }
            if options.stageTimeLimit != nil { supervisor = try Supervisor(core: self) }
        } catch let error as GraphError {
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
            for k in 0..<ring.capacity where ring.stampWord(k).pointee.load(ordering: .acquiring) != 0 && ring.failure(k).pointee == 0 {
                channel.layout.destroy(ring.value(k))
            }
        }
        for table in errorTables {
            table.deinitialize(count: plan.capacity)
            table.deallocate()
        }
        region.close()
    }

    // MARK: Submission

    /// Claims the next sequence number if its slot is free; `nil` when `capacity` executions are in flight.
    @usableFromInline @inline(__always)
    func tryClaim() -> Int? {
        while true {
            let k = nextSequence.pointee.load(ordering: .relaxed)
            guard k & EngineCore.exclusiveBit == 0, board.hasSpace(for: k) else { return nil }
            if nextSequence.pointee.compareExchange(expected: k, desired: k &+ 1, ordering: .acquiringAndReleasing).exchanged {
                return k
            }
        }
    }

    /// Claims up to `limit` consecutive sequence numbers with one CAS: as many, from the next one,
    /// as have a free slot. Returns the first and how many; `nil` when not even one is free.
    @usableFromInline @inline(__always)
    func tryClaim(upTo limit: Int) -> (first: Int, count: Int)? {
        while true {
            let k = nextSequence.pointee.load(ordering: .relaxed)
            guard k & EngineCore.exclusiveBit == 0 else { return nil }
            // Results are collected in any order (waits, drops), so every slot is checked.
            var n = 0
            while n < limit && board.hasSpace(for: k &+ n) { n &+= 1 }
            guard n > 0 else { return nil }
            if nextSequence.pointee.compareExchange(expected: k, desired: k &+ n, ordering: .acquiringAndReleasing).exchanged {
                return (k, n)
            }
        }
    }

    /// Claims `count` consecutive sequences at once (all or nothing), blocking up to the submit timeout
    /// until that many slots are free together. All at once, because a caller holding part of a batch
    /// uncollected while others claim past it could end up waiting for its own slots.
    @usableFromInline
    func claimAll(_ count: Int) throws(GraphError) -> Int {
        precondition(count >= 1 && count <= plan.capacity)
        var backoff = Backoff(policy: idlePolicy, role: .caller)
        defer { backoff.finish() }
        var deadline: UInt64 = 0
        while true {
            if board.isStopping { throw board.stoppedError() }
            let k = nextSequence.pointee.load(ordering: .relaxed)
            if k & EngineCore.exclusiveBit != 0 { throw .exclusiveSubmitterOpen }
            var n = 0
            while n < count && board.hasSpace(for: k &+ n) { n &+= 1 }
            if n == count {
                if nextSequence.pointee.compareExchange(expected: k, desired: k &+ count, ordering: .acquiringAndReleasing).exchanged {
                    return k
                }
                continue
            }
            if backoff.idle() == .retry { continue }
            let now = MonotonicClock.now()
            if deadline == 0 { deadline = now &+ UInt64(max(0, submitTimeoutNanoseconds)) }
            if now >= deadline { throw .capacityExceeded(capacity: plan.capacity) }
            board.sleepUntilSpace(for: k &+ n, timeoutNanoseconds: Int64(deadline &- now))
        }
    }

    /// Publishes the inputs of `count` sequences from `first` with release stores, then one fence and
    /// one wake-up check for the head workers (instead of a sequentially consistent store and a check
    /// per execution).
    @usableFromInline @inline(__always)
    func publishInputs(first: Int, count: Int) {
        if let statistics { statistics.stampInputs(input, first: first, count: count) }
        for k in first..<(first &+ count) {
            input.stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        for target in inputWakeTargets { Worker.wake(target, shared: isolated) }
    }

    /// Claims the next sequence number once its slot is free; blocks up to the submit timeout.
    @usableFromInline
    func claim() throws(GraphError) -> Int {
        if !board.isStopping, let k = tryClaim() { return k }
        return try claimSlowly()
    }

    /// `claim` when the graph is full: back off (WaitStrategy.swift), then sleep until a slot frees.
    private func claimSlowly() throws(GraphError) -> Int {
        var backoff = Backoff(policy: idlePolicy, role: .caller)
        defer { backoff.finish() }
        var deadline: UInt64 = 0
        while true {
            if board.isStopping { throw board.stoppedError() }
            if let k = tryClaim() { return k }
            if isHeldExclusively { throw .exclusiveSubmitterOpen }
            if backoff.idle() == .retry { continue }
            let now = MonotonicClock.now()
            if deadline == 0 { deadline = now &+ UInt64(max(0, submitTimeoutNanoseconds)) }
            if now >= deadline { throw .capacityExceeded(capacity: plan.capacity) }
            board.sleepUntilSpace(for: nextSequence.pointee.load(ordering: .relaxed), timeoutNanoseconds: Int64(deadline &- now))
        }
    }

    /// Claims the next sequence number without blocking a thread: while the graph is full the task
    /// yields, then sleeps in short steps, up to the submit timeout.
    @usableFromInline
    func claimAsync() async throws(GraphError) -> Int {
        var attempts = 0
        let deadline = MonotonicClock.now() &+ UInt64(max(0, submitTimeoutNanoseconds))
        while true {
            if board.isStopping { throw board.stoppedError() }
            if let k = tryClaim() { return k }
            if isHeldExclusively { throw .exclusiveSubmitterOpen }
            if MonotonicClock.now() >= deadline { throw .capacityExceeded(capacity: plan.capacity) }
            attempts &+= 1
            if attempts < 16 { await Task.yield() } else { try? await Task.sleep(for: .microseconds(20)) }
        }
    }

    // MARK: Exclusive submission

    /// Set in `nextSequence` while an ``ExclusiveSubmitter`` owns submission: other claims see it
    /// and refuse (``GraphError/exclusiveSubmitterOpen``), so the owner advances the counter with
    /// plain release stores instead of a compare-and-swap per execution. Sequences stay far below it.
    @usableFromInline static let exclusiveBit = 1 << 62

    /// Whether an ``ExclusiveSubmitter`` holds submission now.
    var isHeldExclusively: Bool { nextSequence.pointee.load(ordering: .relaxed) & EngineCore.exclusiveBit != 0 }

    /// The number of sequences claimed so far (the claim counter without the exclusive bit).
    var claimedCount: Int { nextSequence.pointee.load(ordering: .acquiring) & ~EngineCore.exclusiveBit }

    /// Takes submission for one owner: sets the exclusive bit with one CAS. Returns the next sequence.
    func acquireExclusive() throws(GraphError) -> Int {
        while true {
            if board.isStopping { throw board.stoppedError() }
            let k = nextSequence.pointee.load(ordering: .relaxed)
            if k & EngineCore.exclusiveBit != 0 { throw .exclusiveSubmitterOpen }
            if nextSequence.pointee.compareExchange(expected: k, desired: k | EngineCore.exclusiveBit,
                                                    ordering: .acquiringAndReleasing).exchanged {
                return k
            }
        }
    }

    /// Gives submission back at `next` (the owner's next sequence): clears the exclusive bit.
    func releaseExclusive(next: Int) {
        nextSequence.pointee.store(next, ordering: .sequentiallyConsistent)
    }

    /// Claims `k` for the exclusive owner: waits (like ``claim()``) until its slot is free, then
    /// advances the counter with a release store (no other thread writes it meanwhile).
    @usableFromInline @inline(__always)
    func claimExclusive(_ k: Int) throws(GraphError) {
        if _slowPath(!board.hasSpace(for: k) || board.isStopping) { try waitForSpaceExclusive(k) }
        nextSequence.pointee.store((k &+ 1) | EngineCore.exclusiveBit, ordering: .releasing)
    }

    /// The exclusive owner's slot `k` is still taken (an older execution not yet collected): make
    /// sure the workers run what was published (the wake-up check the fast path left out), then
    /// back off and sleep until it frees, up to the submit timeout.
    @usableFromInline
    func waitForSpaceExclusive(_ k: Int) throws(GraphError) {
        ensureInputsSeen()
        var backoff = Backoff(policy: idlePolicy, role: .caller)
        defer { backoff.finish() }
        var deadline: UInt64 = 0
        while true {
            if board.isStopping { throw board.stoppedError() }
            if board.hasSpace(for: k) { return }
            if backoff.idle() == .retry { continue }
            let now = MonotonicClock.now()
            if deadline == 0 { deadline = now &+ UInt64(max(0, submitTimeoutNanoseconds)) }
            if now >= deadline { throw .capacityExceeded(capacity: plan.capacity) }
            board.sleepUntilSpace(for: k, timeoutNanoseconds: Int64(deadline &- now))
        }
    }

    /// Publishes the exclusive owner's input `k` with a release store and wakes a head worker
    /// only if it is visibly parked. The full fence that closes the race with a worker *about to*
    /// park is left to ``ensureInputsSeen()``, which the owner runs before it waits for anything.
    @usableFromInline @inline(__always)
    func publishInputExclusive(_ k: Int) {
        if let statistics { statistics.stampInputs(input, first: k, count: 1) }
        input.stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        for target in inputWakeTargets where target.pointee.load(ordering: .relaxed) != 0 {
            Worker.wake(target, shared: isolated)
        }
    }

    /// The other half of the Dekker pair for inputs published by ``publishInputExclusive(_:)``: a
    /// full fence, then the wake-up check. A head worker either saw the inputs before parking or is
    /// seen parked here and woken.
    @usableFromInline
    func ensureInputsSeen() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        for target in inputWakeTargets { Worker.wake(target, shared: isolated) }
    }

    /// The input slot of claimed sequence `k`, emptied of execution `k - capacity`'s value.
    @usableFromInline
    func inputSlot(_ k: Int) -> UnsafeMutableRawPointer {
        let slot = input.value(k)
        if k > input.mask, let destroy = inputDestroy { destroy(slot) }
        return slot
    }

    /// Publishes the input of `k` and wakes the head workers if they parked.
    @usableFromInline
    func publishInput(_ k: Int) {
        if let statistics { statistics.stampInputs(input, first: k, count: 1) }
        input.publish(k)
        for target in inputWakeTargets { Worker.wake(target, shared: isolated) }
    }

    /// Publishes the input of `k` for a caller that blocks until its result (`execute` without a
    /// deadline): when every worker is parked, runs the execution on this thread instead of waking
    /// one (``CallerTakeover``); otherwise wakes the head workers as ``publishInput(_:)`` does.
    @usableFromInline
    func publishInputRunningIfParked(_ k: Int) {
        if let statistics { statistics.stampInputs(input, first: k, count: 1) }
        input.publish(k)
        if let takeover, takeover.runIfParked(k) { return }
        for target in inputWakeTargets { Worker.wake(target, shared: isolated) }
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
        stopping.pointee.store(1, ordering: .sequentiallyConsistent)
        for word in wiring.parkWords {
            // A word taken over by a caller (2) is left to it: it gives the worker back after its
            // stage and, seeing `stopping`, rings it then (the other half of this Dekker pair).
            var current = word.pointee.load(ordering: .sequentiallyConsistent)
            while current != CallerTakeover.ParkWord.takenOver {
                let (exchanged, original) = word.pointee.compareExchange(
                    expected: current, desired: CallerTakeover.ParkWord.awake, ordering: .sequentiallyConsistent)
                if exchanged {
                    Futex.wake(futexWord(word), count: Int32.max, shared: isolated)
                    break
                }
                current = original
            }
        }
        let grace = max(0, options.shutdownGracePeriod.nanoseconds)
        let deadline = MonotonicClock.now() &+ UInt64(grace)
        // Waiters of executions not yet run are answered now, not after the grace period.
        board.wakeAllForShutdown()
        for (w, thread) in threads.enumerated() {
            let now = MonotonicClock.now()
            if !thread.join(timeoutNanoseconds: now >= deadline ? 0 : Int64(deadline &- now)) {
                detachedThreads.add(1, ordering: .relaxed)
                detachedWorkers.withLock { $0.insert(w) }
                logger.warning("shutdown: a worker thread is still inside a stage after the grace period; left detached (its actors come back when the stage returns)")
            }
        }
        supervisor?.stop(deadline: deadline)
        board.wakeAllForShutdown()
        if isolated || threads.isEmpty {
            // Process mode: every child has exited or was killed and reaped. No threads: none ran.
            boundActors.forEach { $0.unbind() }
        } else {
            for w in 0..<workers.count where w >= threads.count {
                giveBackIfStopped(w, WorkerExit.threadStopped) // its thread was never started
            }
            for w in 0..<workers.count { giveBackIfStopped(w, WorkerExit.shutdownDone) }
        }
    }

    /// Records `bit` (``WorkerExit``) for worker `w`; the call that completes both bits gives the
    /// worker's actors back. The thread sets `threadStopped` after its loop (never inside a stage),
    /// `shutdown()` sets `shutdownDone` after its wait, whether or not the thread stopped in time.
    private func giveBackIfStopped(_ w: Int, _ bit: UInt8) {
        let both = workerExits.withLock { exits -> Bool in
            let before = exits[w]
            exits[w] |= bit
            return before != exits[w] && exits[w] == WorkerExit.threadStopped | WorkerExit.shutdownDone
        }
        guard both else { return }
        actorsByWorker[w].forEach { $0.unbind() }
        if detachedThreadsGivenBack(w) {
            logger.notice("a worker thread left detached by shutdown has returned from its stage: its actors are free again")
        }
    }

    /// Whether worker `w` was one `shutdown()` left detached (for the log line when it comes back).
    private func detachedThreadsGivenBack(_ w: Int) -> Bool {
        detachedWorkers.withLock { $0.contains(w) }
    }

    var isShutDown: Bool { lifecycle.withLock { $0 } }

    /// The monotonic-clock deadline `timeout` from now (never 0, which means "none").
    @usableFromInline
    static func deadline(after timeout: Duration) -> UInt64 {
        max(1, MonotonicClock.now() &+ UInt64(max(0, timeout.nanoseconds)))
    }
}

/// The two events that end a worker thread's hold on its actors (``EngineCore`` `workerExits`).
enum WorkerExit {
    /// The worker's thread left its loop: no stage of it runs again.
    static let threadStopped: UInt8 = 1
    /// `shutdown()` finished waiting for the thread (joined, or gave up after the grace period).
    static let shutdownDone: UInt8 = 2
}

extension RegionHeader {
    init(plan: ExecutionPlan, options: CompileOptions) {
        self.init(fingerprint: PlanFingerprint.of(plan), workerCount: plan.workerCount, capacity: plan.capacity,
                  placement: options.placement.code, batchSize: options.batchSize,
                  workerSpins: options.idle.workerSpins, callerSpins: options.idle.callerSpins,
                  spinTimeNanoseconds: Int(options.idle.spinTime.nanoseconds),
                  parkTimeoutNanoseconds: Int(options.idle.parkTimeout.nanoseconds),
                  useIORing: options.useIORing, numaNode: plan.numaNode ?? -1, cpus: plan.workerCPUs,
                  waitStrategy: options.idle.strategy.code)
        statisticsInterval = options.statistics.sampleInterval ?? 0
    }
}
