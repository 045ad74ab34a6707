import ActorGraphPlatform
import Synchronization

/// The compiled engine behind a ``CompiledGraph``: one shared-memory region holding every ring,
/// the workers and their threads, admission of new executions and shutdown.
///
/// Region layout (all offsets cache-line aligned):
///
///     [control: stopping flag] [next sequence] [park word of worker 0] … [park word of worker W-1]
///     [ring of channel 0 (input)] [ring of channel 1] … [scratch of fused segments]
///
/// `@unchecked Sendable`: its stored properties are set in `init` and never reassigned (but `threads`,
/// written only under `lifecycle`); what threads share at run time lives in the region and is
/// accessed through atomics under the ring protocol (``SlotRing``).
@usableFromInline
final class EngineCore: @unchecked Sendable {
    let plan: ExecutionPlan
    let region: SharedMemoryRegion
    @usableFromInline let input: SlotRing
    @usableFromInline let board: ResultBoard
    let inputDestroy: (@Sendable (UnsafeMutableRawPointer) -> Void)?
    let inputWakeTargets: [UnsafeMutablePointer<Atomic<UInt32>>]
    let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    @usableFromInline let nextSequence: UnsafeMutablePointer<Atomic<Int>>
    @usableFromInline let callerSpins: Int
    @usableFromInline let submitTimeoutNanoseconds: Int64
    let rings: [SlotRing]
    let errorTables: [UnsafeMutablePointer<(any Error)?>]
    let workers: [Worker]
    private var threads: [PinnedThread] = []
    private let boundActors: [ActorBinding]
    private let lifecycle = Mutex<Bool>(false) // true once shut down

    /// - Parameter attachWorker0: builds the I/O attachment of worker 0 (a network source/sink),
    ///   called once everything else is in place and before any thread starts.
    init(plan: ExecutionPlan, options: CompileOptions,
         attachWorker0: ((EngineCore) -> RingAttachment)? = nil) throws(GraphError) {
        self.plan = plan
        let line = SlotRing.cacheLine
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

        // Lay out the region.
        var offset = 2 * line + plan.workerCount * line
        var ringOffsets: [Int] = []
        for channel in plan.channels {
            offset = roundUp(offset, to: max(line, channel.layout.alignment))
            ringOffsets.append(offset)
            offset += SlotRing.byteCount(for: channel.layout, capacity: capacity)
        }
        var scratchOffsets: [[Int]] = []
        for segment in plan.segments {
            var offsets: [Int] = []
            for node in segment.nodes.dropLast() {
                let layout = plan.nodes[node].layout
                offset = roundUp(offset, to: max(line, layout.alignment))
                offsets.append(offset)
                offset += max(layout.size, 1)
            }
            scratchOffsets.append(offsets)
        }
        guard offset <= CompileOptions.maxRegionBytes else {
            bound.forEach { $0.unbind() }
            throw .regionTooLarge(bytes: offset)
        }
        let region: SharedMemoryRegion
        do {
            region = try SharedMemoryRegion(name: "actorgraph", byteCount: offset, numaNode: plan.numaNode)
        } catch {
            bound.forEach { $0.unbind() }
            throw .platform(operation: "memfd_create/mmap of \(offset) bytes", errno: error)
        }
        self.region = region
        let base = region.base
        stopping = base.bindMemory(to: Atomic<UInt32>.self, capacity: 1)
        stopping.initialize(to: Atomic(0))
        nextSequence = (base + line).bindMemory(to: Atomic<Int>.self, capacity: 1)
        nextSequence.initialize(to: Atomic(0))
        let parkWords = (0..<plan.workerCount).map { w -> UnsafeMutablePointer<Atomic<UInt32>> in
            let p = (base + 2 * line + w * line).bindMemory(to: Atomic<UInt32>.self, capacity: 1)
            p.initialize(to: Atomic(0))
            return p
        }

        // Rings and their failure side tables.
        let rings = plan.channels.map { channel in
            let (stride, valueOffset) = SlotRing.geometry(for: channel.layout)
            return SlotRing(base: base + ringOffsets[channel.id], stride: stride, capacity: capacity, valueOffset: valueOffset)
        }
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
                            nodeNames: plan.nodes.map(\.name), policy: options.idle)
        callerSpins = options.idle.callerSpins
        submitTimeoutNanoseconds = options.submitTimeout.nanoseconds

        func wakeTargets(of channel: Int, excludingWorker own: Int?) -> [UnsafeMutablePointer<Atomic<UInt32>>] {
            var workers: [Int] = []
            for s in plan.channels[channel].consumers {
                let w = plan.segments[s].worker
                if w != own && !workers.contains(w) { workers.append(w) }
            }
            return workers.sorted().map { parkWords[$0] }
        }
        inputWakeTargets = wakeTargets(of: plan.inputChannel, excludingWorker: nil)
        let board = self.board

        // One runner per segment, grouped by worker.
        var runnersByWorker = [[SegmentRunner]](repeating: [], count: plan.workerCount)
        for segment in plan.segments {
            let nodes = segment.nodes.map { plan.nodes[$0] }
            let scratchLayouts = nodes.dropLast().map(\.layout)
            let output = plan.channels[segment.outputChannel]
            let runner = SegmentRunner(
                inputs: segment.inputChannels.map { rings[$0] },
                inputErrors: segment.inputChannels.map { errorTables[$0] },
                kernels: nodes.map { $0.makeKernel!() },
                kernelNodes: segment.nodes,
                scratch: scratchOffsets[segment.id].map { base + $0 },
                scratchDestroy: scratchLayouts.map { $0.isTrivial ? nil : $0.destroy },
                output: rings[segment.outputChannel], outputErrors: errorTables[segment.outputChannel],
                outputDestroy: output.layout.isTrivial ? nil : output.layout.destroy,
                wakeTargets: wakeTargets(of: segment.outputChannel, excludingWorker: segment.worker),
                resultBoard: segment.outputChannel == plan.outputChannel ? board : nil)
            runnersByWorker[segment.worker].append(runner)
        }
        let stopping = self.stopping
        workers = (0..<plan.workerCount).map { w in
            Worker(index: w, runners: runnersByWorker[w], parkWord: parkWords[w], stopping: stopping,
                   options: options, numaNode: plan.numaNode)
        }
        if let attachWorker0 { workers[0].attachment = attachWorker0(self) }
        do {
            for worker in workers {
                threads.append(try PinnedThread(name: "actorgraph-w\(worker.index)", cpu: plan.workerCPUs[worker.index]) {
                    worker.run()
                })
            }
        } catch {
            shutdown()
            throw .platform(operation: "pthread_create", errno: error)
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
            guard board.hasSpace(for: k) else { return nil }
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
            // Results are collected in any order (waits, drops), so every slot is checked.
            var n = 0
            while n < limit && board.hasSpace(for: k &+ n) { n &+= 1 }
            guard n > 0 else { return nil }
            if nextSequence.pointee.compareExchange(expected: k, desired: k &+ n, ordering: .acquiringAndReleasing).exchanged {
                return (k, n)
            }
        }
    }

    /// Claims between 1 and `limit` consecutive sequences, blocking like ``claim()`` for the first.
    @usableFromInline
    func claim(upTo limit: Int) throws(GraphError) -> (first: Int, count: Int) {
        if let claimed = tryClaim(upTo: limit) { return claimed }
        let k = try claim()
        guard limit > 1, let more = tryClaimContiguous(after: k, upTo: limit - 1) else { return (k, 1) }
        return (k, 1 + more)
    }

    /// Extends a claim that ends at `k`, if nobody claimed `k + 1` meanwhile.
    @inline(__always)
    private func tryClaimContiguous(after k: Int, upTo limit: Int) -> Int? {
        var n = 0
        while n < limit && board.hasSpace(for: k &+ 1 &+ n) { n &+= 1 }
        guard n > 0, nextSequence.pointee.compareExchange(
            expected: k &+ 1, desired: k &+ 1 &+ n, ordering: .acquiringAndReleasing).exchanged else { return nil }
        return n
    }

    /// Publishes the inputs of `count` sequences from `first` with release stores, then one fence and
    /// one wake-up check for the head workers (instead of a sequentially consistent store and a check
    /// per execution).
    @usableFromInline @inline(__always)
    func publishInputs(first: Int, count: Int) {
        for k in first..<(first &+ count) {
            input.stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        for target in inputWakeTargets { Worker.wake(target) }
    }

    /// Claims the next sequence number once its slot is free; blocks up to the submit timeout.
    @usableFromInline
    func claim() throws(GraphError) -> Int {
        var spins = callerSpins
        var deadline: UInt64 = 0
        while true {
            if board.isStopping { throw .shutDown }
            if let k = tryClaim() { return k }
            if spins > 0 { spins &-= 1; CPU.relax(); continue }
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
            if board.isStopping { throw .shutDown }
            if let k = tryClaim() { return k }
            if MonotonicClock.now() >= deadline { throw .capacityExceeded(capacity: plan.capacity) }
            attempts &+= 1
            if attempts < 16 { await Task.yield() } else { try? await Task.sleep(for: .microseconds(20)) }
        }
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
        input.publish(k)
        for target in inputWakeTargets { Worker.wake(target) }
    }

    // MARK: Shutdown

    /// Stops the workers, joins their threads, answers every waiter and unbinds actors. Idempotent.
    func shutdown() {
        let first = lifecycle.withLock { done -> Bool in
            if done { return false }
            done = true
            return true
        }
        guard first else { return }
        stopping.pointee.store(1, ordering: .sequentiallyConsistent)
        for worker in workers {
            worker.parkWord.pointee.store(0, ordering: .sequentiallyConsistent)
            Futex.wake(futexWord(worker.parkWord), count: Int32.max)
        }
        for thread in threads { thread.join() }
        board.wakeAllForShutdown()
        boundActors.forEach { $0.unbind() }
    }

    var isShutDown: Bool { lifecycle.withLock { $0 } }
}
