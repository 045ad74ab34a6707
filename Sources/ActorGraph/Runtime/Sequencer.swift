import ActorGraphPlatform
import Synchronization

/// The submission side of a compiled graph, in one place: claiming sequence numbers, writing and
/// publishing inputs, and waiting for a free slot (the LMAX Disruptor's `Sequencer`).
///
/// Data flow: a submitter claims `k` on the **cursor** (the claim counter in the region), writes
/// its input into slot `k & mask` of the input ring, and publishes it (stores the slot's stamp);
/// the head workers read it there, and the result comes back through the ``ResultBoard``, whose
/// collection frees slot `k` for `k + capacity`. Admission is therefore "the result of
/// `k - capacity` was collected" (``ResultBoard/hasSpace(for:)``).
///
/// Two flavours share the cursor:
/// - **shared** (this file; many producers): a claim is a compare-and-swap, a publish a
///   sequentially consistent store followed by the wake-up check for parked head workers;
/// - **exclusive** (`Sequencer+Exclusive.swift`; one producer, ``ExclusiveSubmitter``): the owner
///   sets ``exclusiveBit`` with one CAS, then claims and publishes with release stores and defers
///   the fence and the wake-up check until it is about to wait (``PublishFence/beforeWaiting``).
///
/// Invariants: the cursor without ``exclusiveBit`` only grows; a sequence is published at most
/// once and only after it was claimed; while ``exclusiveBit`` is set nobody but its owner writes
/// the cursor.
///
/// `@unchecked Sendable`: set up once in `init` (``takeover`` once, before any thread starts) and
/// read-only afterwards; everything threads share lives in the region behind atomics.
@usableFromInline
final class Sequencer: @unchecked Sendable {
    /// The claim counter: the next sequence to claim, with ``exclusiveBit`` while an owner holds it.
    @usableFromInline let cursor: UnsafeMutablePointer<Atomic<Int>>
    @usableFromInline let input: SlotRing
    @usableFromInline let board: ResultBoard
    /// The park words of the workers reading the input ring.
    let wakeTargets: [UnsafeMutablePointer<Atomic<UInt32>>]
    /// Whether a blocking `execute` that rings lands the worker on its own CPU (``WakeSteering``):
    /// with one head worker only, so that the heads of a fan-out still wake on CPUs of their own.
    /// Other publishers do not steer: a `submit` may be one of a stream, and a worker with I/O
    /// (a UDP service, a host's edges) publishing into the graph goes on with its own loop.
    let steersWake: Bool
    /// Wake-ups use shared futexes (process mode).
    let sharedFutex: Bool
    let statistics: StatisticsStore?
    /// Destroys the input slot's previous value (non-trivial input types); `nil` for trivial ones.
    let inputDestroy: (@Sendable (UnsafeMutableRawPointer) -> Void)?
    let policy: IdlePolicy
    @usableFromInline let submitTimeoutNanoseconds: Int64
    let capacity: Int
    /// Thread mode: runs an execution on the caller's thread when the workers are parked.
    var takeover: CallerTakeover? { takeoverReference?.takeUnretainedValue() }
    /// ``takeover``, held so that the hot path calls it through a guaranteed reference: reading an
    /// optional class `var` retains and releases it on every publish, two writes to a cache line
    /// of the heap that another thread's hot data may share.
    private var takeoverReference: Unmanaged<CallerTakeover>?
    /// Process mode, an input that crosses encoded: callers write it into a staging slot and the
    /// publish encodes it into the ring (``InputEncoder``); `nil` otherwise.
    let inputEncoder: InputEncoder?

    /// Set in the cursor while an ``ExclusiveSubmitter`` owns submission: other claims see it and
    /// refuse (``ExecutionError/exclusiveSubmitterOpen``). Sequences stay far below it.
    @usableFromInline static let exclusiveBit = 1 << 62

    /// When a publish makes itself visible to parked consumers.
    enum PublishFence {
        /// A full fence and a wake-up check with every publish (shared submitters).
        case eachPublish
        /// Release stores only; the fence and the check run once before the owner waits
        /// (``Sequencer/ensurePublishedSeen()``; the exclusive submitter).
        case beforeWaiting
    }

    init(
        cursor: UnsafeMutablePointer<Atomic<Int>>,
        input: SlotRing,
        board: ResultBoard,
        wakeTargets: [UnsafeMutablePointer<Atomic<UInt32>>],
        sharedFutex: Bool,
        statistics: StatisticsStore?,
        inputDestroy: (@Sendable (UnsafeMutableRawPointer) -> Void)?,
        policy: IdlePolicy,
        submitTimeout: Duration,
        capacity: Int,
        inputEncoder: InputEncoder? = nil
    ) {
        self.cursor = cursor
        self.input = input
        self.board = board
        self.wakeTargets = wakeTargets
        steersWake = wakeTargets.count == 1
        self.sharedFutex = sharedFutex
        self.statistics = statistics
        self.inputDestroy = inputDestroy
        self.policy = policy
        self.submitTimeoutNanoseconds = submitTimeout.nanoseconds
        self.capacity = capacity
        self.inputEncoder = inputEncoder
    }

    deinit { takeoverReference?.release() }

    /// Installs the caller take-over (thread mode), once, before any worker starts.
    func install(takeover: CallerTakeover) {
        precondition(takeoverReference == nil, "the take-over is installed once")
        takeoverReference = Unmanaged.passRetained(takeover)
    }

    /// The sequence counted by a cursor value (the value without ``exclusiveBit``).
    @inline(__always)
    static func sequence(ofCursor value: Int) -> Int { value & ~exclusiveBit }

    /// Whether an ``ExclusiveSubmitter`` holds submission now.
    var isHeldExclusively: Bool { cursor.pointee.load(ordering: .relaxed) & Sequencer.exclusiveBit != 0 }

    // MARK: Claim

    /// Claims the next sequence number if its slot is free; `nil` when `capacity` executions are
    /// in flight or an exclusive owner holds the cursor.
    @usableFromInline @inline(__always)
    func tryClaim() -> Int? {
        while true {
            let k = cursor.pointee.load(ordering: .relaxed)
            guard k & Sequencer.exclusiveBit == 0, board.hasSpace(for: k) else { return nil }
            if cursor.pointee.compareExchange(expected: k, desired: k &+ 1, ordering: .acquiringAndReleasing).exchanged
            {
                return k
            }
        }
    }

    /// Claims up to `limit` consecutive sequence numbers with one CAS: as many, from the next one,
    /// as have a free slot. Returns the first and how many; `nil` when not even one is free.
    @usableFromInline @inline(__always)
    func tryClaim(upTo limit: Int) -> (first: Int, count: Int)? {
        while true {
            let k = cursor.pointee.load(ordering: .relaxed)
            guard k & Sequencer.exclusiveBit == 0 else { return nil }
            // Results are collected in any order (waits, drops), so every slot is checked.
            let n = freeSlots(from: k, upTo: limit)
            guard n > 0 else { return nil }
            if cursor.pointee.compareExchange(expected: k, desired: k &+ n, ordering: .acquiringAndReleasing).exchanged
            {
                return (k, n)
            }
        }
    }

    /// Claims the next sequence number once its slot is free; blocks up to the submit timeout.
    @usableFromInline
    func claim() throws(ExecutionError) -> Int {
        if !board.isStopping, let k = tryClaim() { return k }
        return try waitUntil { () throws(ExecutionError) -> WaitStep<Int> in
            if let k = tryClaim() { return .done(k) }
            if isHeldExclusively { throw .exclusiveSubmitterOpen }
            return .full(sleepingOn: cursor.pointee.load(ordering: .relaxed))
        }
    }

    /// Claims `count` consecutive sequences at once (all or nothing), blocking up to the submit
    /// timeout until that many slots are free together. All at once, because a caller holding part
    /// of a batch uncollected while others claim past it could end up waiting for its own slots.
    @usableFromInline
    func claim(count: Int) throws(ExecutionError) -> Int {
        precondition(count >= 1 && count <= capacity)
        return try waitUntil { () throws(ExecutionError) -> WaitStep<Int> in
            let k = cursor.pointee.load(ordering: .relaxed)
            if k & Sequencer.exclusiveBit != 0 { throw .exclusiveSubmitterOpen }
            let n = freeSlots(from: k, upTo: count)
            if n == count {
                let claimed = cursor.pointee.compareExchange(
                    expected: k,
                    desired: k &+ count,
                    ordering: .acquiringAndReleasing
                ).exchanged
                return claimed ? .done(k) : .retry
            }
            return .full(sleepingOn: k &+ n)
        }
    }

    /// Claims the next sequence number without blocking a thread: while the graph is full the task
    /// yields, then sleeps in short steps, up to the submit timeout.
    @usableFromInline
    func claimAsync() async throws(ExecutionError) -> Int {
        var attempts = 0
        let deadline = MonotonicClock.now() &+ UInt64(max(0, submitTimeoutNanoseconds))
        while true {
            if board.isStopping { throw board.stoppedError() }
            if let k = tryClaim() { return k }
            if isHeldExclusively { throw .exclusiveSubmitterOpen }
            if MonotonicClock.now() >= deadline { throw .capacityExceeded(capacity: capacity) }
            attempts &+= 1
            if attempts < 16 { await Task.yield() } else { try? await Task.sleep(for: .microseconds(20)) }
        }
    }

    /// How many consecutive slots from `k` are free, at most `limit`.
    @inline(__always)
    private func freeSlots(from k: Int, upTo limit: Int) -> Int {
        var n = 0
        while n < limit && board.hasSpace(for: k &+ n) { n &+= 1 }
        return n
    }

    /// One step of a wait for space: done, try again at once, or sleep until the slot of a sequence frees.
    enum WaitStep<Value> {
        case done(Value)
        case retry
        case full(sleepingOn: Int)
    }

    /// The one wait for a free slot behind every blocking claim: tries `step`; while the graph is
    /// full, backs off (WaitStrategy.swift), then sleeps until the slot frees, up to the submit
    /// timeout (``ExecutionError/capacityExceeded(capacity:)``); throws when the graph stops.
    @inline(__always)
    func waitUntil<Value>(_ step: () throws(ExecutionError) -> WaitStep<Value>) throws(ExecutionError) -> Value {
        var backoff = Backoff(policy: policy, role: .caller)
        defer { backoff.finish() }
        var deadline: UInt64 = 0
        while true {
            if board.isStopping { throw board.stoppedError() }
            let sleepingOn: Int
            switch try step() {
            case .done(let value): return value
            case .retry: continue
            case .full(let k): sleepingOn = k
            }
            if backoff.idle() == .retry { continue }
            let now = MonotonicClock.now()
            if deadline == 0 { deadline = now &+ UInt64(max(0, submitTimeoutNanoseconds)) }
            if now >= deadline { throw .capacityExceeded(capacity: capacity) }
            board.sleepUntilSpace(for: sleepingOn, timeoutNanoseconds: Int64(deadline &- now))
        }
    }

    // MARK: Write and publish

    /// The input slot of claimed sequence `k`, emptied of execution `k - capacity`'s value.
    @usableFromInline
    func slot(_ k: Int) -> UnsafeMutableRawPointer {
        if let inputEncoder { return inputEncoder.staging(k) }
        let slot = input.value(k)
        if k > input.mask, let destroy = inputDestroy { destroy(slot) }
        return slot
    }

    /// Publishes the input of `k` (``PublishFence/eachPublish``) and wakes the head workers if they parked.
    @usableFromInline
    func publish(_ k: Int) {
        if let inputEncoder { inputEncoder.encode(first: k, count: 1, into: input) }
        if let statistics { statistics.stampInputs(input, first: k, count: 1) }
        input.publish(k)
        wakeHeadWorkers()
    }

    /// Publishes the inputs of `count` sequences from `first` with release stores, then one fence
    /// and one wake-up check for the head workers (instead of a sequentially consistent store and a
    /// check per execution).
    @usableFromInline @inline(__always)
    func publish(first: Int, count: Int) {
        if let inputEncoder { inputEncoder.encode(first: first, count: count, into: input) }
        if let statistics { statistics.stampInputs(input, first: first, count: count) }
        for k in first..<(first &+ count) {
            input.stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        wakeHeadWorkers()
    }

    /// Publishes the input of `k` for a caller that blocks until its result (`execute` without a
    /// deadline): when every worker is parked, runs the execution on this thread instead of waking
    /// one (``CallerTakeover``); otherwise wakes the head workers as ``publish(_:)`` does.
    @usableFromInline
    @discardableResult
    func publishRunningIfParked(_ k: Int) -> Bool {
        if let inputEncoder { inputEncoder.encode(first: k, count: 1, into: input) }
        if let statistics { statistics.stampInputs(input, first: k, count: 1) }
        input.publish(k)
        if let takeoverReference, takeoverReference._withUnsafeGuaranteedRef({ $0.runIfParked(k) }) { return false }
        return wakeHeadWorkers(steering: steersWake)
    }

    /// `steering`: the caller blocks for the result right away (``WakeSteering``).
    @inline(__always) @discardableResult
    func wakeHeadWorkers(steering: Bool = false) -> Bool {
        var rang = false
        for target in wakeTargets where Worker.wake(target, shared: sharedFutex, steering: steering) { rang = true }
        return rang
    }
}
