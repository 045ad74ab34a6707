import Synchronization

/// Submission owned by one caller: the fastest way to run executions one `submit` at a time.
///
/// While it exists, it is the graph's only submitter (other `submit`, `execute`, batch calls and a
/// second exclusive submitter throw ``ExecutionError/exclusiveSubmitterOpen``), and results come back
/// in submission order through ``receive()``. Owning the claim counter lets each execution skip the
/// shared path's three full fences (a compare-and-swap to claim, a sequentially consistent publish,
/// a sequentially consistent collect): the counter, the input and the freed slot are all release
/// stores, and the wake-up check for a worker that may be going to sleep runs only when the owner is
/// about to wait. This is the LMAX Disruptor's single-producer sequencer, with results returned.
///
/// Take one for a scope with ``CompiledGraph/withExclusiveSubmitter(_:)``, the recommended form:
/// submission comes back to everyone when the closure returns or throws.
///
/// ```swift
/// let total = try compiled.withExclusiveSubmitter { submitter in
///     var total = 0
///     for i in 0..<1_000_000 {
///         if submitter.inFlight == compiled.capacity { total += try submitter.receive() }
///         try submitter.submit(i)
///     }
///     while submitter.inFlight > 0 { total += try submitter.receive() }
///     return total
/// }
/// ```
///
/// It is `~Copyable` and `Sendable`: one owner at a time, which may hand it to another thread.
/// Dropping it abandons the executions still in flight (their slots come back when they finish)
/// and gives submission back to everyone. One held by a global (a top-level `var` in `main.swift`)
/// is never dropped, so the graph refuses every other submitter for good: hold it in a scope.
public struct ExclusiveSubmitter<Input: Sendable, Output: Sendable>: ~Copyable, Sendable {
    @usableFromInline let core: Unmanaged<EngineCore>
    /// The next sequence this owner will claim.
    @usableFromInline var next: Int
    /// The oldest sequence not yet received.
    @usableFromInline var oldest: Int
    // The hot path's view of the region, copied once so that a submit or a receive touches no
    // object (a retain or release is a locked instruction: a full fence on x86).
    @usableFromInline let input: SlotRing
    @usableFromInline let results: SlotRing
    @usableFromInline let words: SubmitterWords
    @usableFromInline let sharedFutex: Bool
    /// Neither input destruction (a non-trivial input type) nor statistics stamps are needed:
    /// submit runs entirely on the copied pointers.
    @usableFromInline let plainInputs: Bool
    /// Results are read in place (not decoded: the output is trivially copyable, or threads).
    @usableFromInline let plainResults: Bool

    init(core: EngineCore) throws(ExecutionError) {
        let sequencer = core.sequencer
        let k = try sequencer.acquireExclusive()
        self.core = Unmanaged.passRetained(core)
        next = k
        oldest = k
        input = sequencer.input
        results = core.board.ring
        let wakeTargets = UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<UInt32>>>.allocate(
            capacity: sequencer.wakeTargets.count
        )
        _ = wakeTargets.initialize(from: sequencer.wakeTargets)
        words = SubmitterWords(counter: sequencer.cursor, stopping: core.stopping, wakeTargets: wakeTargets)
        sharedFutex = sequencer.sharedFutex
        plainInputs = sequencer.inputDestroy == nil && sequencer.statistics == nil && sequencer.inputEncoder == nil
        plainResults = core.board.resultDecoder == nil
    }

    /// Executions submitted and not yet received.
    @inlinable public var inFlight: Int { next &- oldest }

    /// Submits one execution. Blocks like ``CompiledGraph/submit(_:)`` while its slot is still
    /// taken (``CompiledGraph/capacity`` executions in flight: receive some first), up to the
    /// submit timeout (``ExecutionError/capacityExceeded(capacity:)``).
    @inlinable
    public mutating func submit(_ value: Input) throws(ExecutionError) {
        let k = next
        if _slowPath(!plainInputs || !results.isFree(for: k) || words.stopping.pointee.load(ordering: .relaxed) != 0) {
            try submitSlowly(value)
            return
        }
        // The sequencer's exclusive flavour, inlined over copied pointers (no object touched):
        // advanceExclusive, then publishExclusive.
        words.counter.pointee.store((k &+ 1) | Sequencer.exclusiveBit, ordering: .releasing)
        input.value(k).initializeMemory(as: Input.self, to: value)
        input.stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        for target in words.wakeTargets where _slowPath(target.pointee.load(ordering: .relaxed) != 0) { wake(target) }
        next = k &+ 1
    }

    /// The oldest execution's output (submission order), or its failure thrown; blocks until it
    /// completes. Each execution is received once. Throws ``ExecutionError/nothingInFlight`` when
    /// nothing was submitted since the last receive.
    @inlinable
    public mutating func receive() throws(ExecutionError) -> Output {
        let k = try nextResult()
        if _slowPath(!plainResults) {
            defer { collect(k) }
            return try result(k).assumingMemoryBound(to: Output.self).pointee
        }
        let value = results.value(k).assumingMemoryBound(to: Output.self).pointee
        collect(k)
        return value
    }

    /// Like ``receive()``, but lends the output to `body` in place (no copy out of the result
    /// ring, for large payloads); the slot is freed when `body` returns.
    @inlinable
    public mutating func receive<R>(_ body: (borrowing Output) -> R) throws(ExecutionError) -> R {
        let k = try nextResult()
        defer { collect(k) }
        return body(try result(k).assumingMemoryBound(to: Output.self).pointee)
    }

    /// The next sequence to receive, once published and not failed (a failure is thrown and its
    /// slot freed).
    @inlinable @inline(__always)
    mutating func nextResult() throws(ExecutionError) -> Int {
        let k = oldest
        guard k < next else { throw .nothingInFlight }
        oldest = k &+ 1
        if _slowPath(results.stampWord(k).pointee.load(ordering: .acquiring) != SlotRing.stamp(k)) { try waitSlowly(k) }
        if _slowPath(results.failure(k).pointee != 0) { try throwFailure(k) }
        return k
    }

    /// Where received `k`'s output is: its result slot, or (an output that crosses processes
    /// encoded) the copy decoded from it; a value that does not decode is thrown.
    @inlinable @inline(__always)
    func result(_ k: Int) throws(ExecutionError) -> UnsafeMutableRawPointer {
        if _fastPath(plainResults) { return results.value(k) }
        return try core.takeUnretainedValue().board.peek(k)
    }

    /// Frees the slot of received `k`: ``ResultBoard/collect(_:)`` with a release store and no full
    /// fence. Nobody else claims while this owner holds submission, so no submitter can be sleeping
    /// for this slot but one that began before the owner took over: that one wakes at its park
    /// timeout and is refused. The relaxed look only saves the futex call in the common case.
    @inlinable @inline(__always)
    func collect(_ k: Int) {
        results.markTaken(k)
        results.collectedWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        if _slowPath(results.spaceWaiters(k).pointee.load(ordering: .relaxed) != 0) { wakeSpaceWaiters(k) }
    }

    @usableFromInline
    mutating func submitSlowly(_ value: Input) throws(ExecutionError) {
        let sequencer = core.takeUnretainedValue().sequencer
        let k = next
        try sequencer.claimExclusive(k)
        sequencer.slot(k).initializeMemory(as: Input.self, to: value)
        sequencer.publishExclusive(k)
        next = k &+ 1
    }

    @usableFromInline
    func waitSlowly(_ k: Int) throws(ExecutionError) {
        let engine = core.takeUnretainedValue()
        engine.sequencer.ensurePublishedSeen()
        try engine.board.waitPublished(k)
    }

    @usableFromInline
    func wake(_ parkWord: UnsafeMutablePointer<Atomic<UInt32>>) { Worker.wake(parkWord, shared: sharedFutex) }

    @usableFromInline
    func throwFailure(_ k: Int) throws(ExecutionError) {
        _ = try core.takeUnretainedValue().board.take(k)  // throws the failure and frees the slot
    }

    @usableFromInline
    func wakeSpaceWaiters(_ k: Int) {
        core.takeUnretainedValue().board.wakeSpaceWaiters(k)
    }

    deinit {
        let engine = core.takeUnretainedValue()
        for k in oldest..<next { engine.board.abandon(k) }
        engine.sequencer.ensurePublishedSeen()  // abandoned executions must still run, to free their slots
        engine.sequencer.releaseExclusive(next: next)
        words.wakeTargets.deallocate()
        core.release()
    }
}

/// The region words an ``ExclusiveSubmitter`` touches on its hot path.
///
/// `@unchecked Sendable`: raw pointers into the graph's shared region, which the submitter keeps
/// mapped (it holds the engine); every access goes through atomics under the ring protocol
/// (SlotRing.swift), and `wakeTargets` is a private copy written once in `init` and read-only after.
@usableFromInline
struct SubmitterWords: @unchecked Sendable {
    @usableFromInline let counter: UnsafeMutablePointer<Atomic<Int>>
    @usableFromInline let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    /// The head workers' park words (a copy of the engine's list, freed by the submitter's `deinit`).
    @usableFromInline let wakeTargets: UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<UInt32>>>
}

extension CompiledGraph {
    /// Runs `body` as this graph's only submitter and gives submission back when it returns or
    /// throws (see ``ExclusiveSubmitter``); returns what `body` returns.
    ///
    /// The submitter is lent to `body` and cannot outlive it, so the graph cannot stay locked: the
    /// recommended way to take exclusive submission, at top level too. Executions `body` leaves in
    /// flight are abandoned; their slots come back when they finish.
    ///
    /// Throws what `body` throws, ``ExecutionError/exclusiveSubmitterOpen`` (without running `body`)
    /// while another exclusive submitter exists, and ``ExecutionError/shutDown`` after ``shutdown()``.
    @inlinable
    public func withExclusiveSubmitter<Result: ~Copyable>(
        _ body: (inout ExclusiveSubmitter<Input, Output>) throws -> Result
    ) throws -> Result {
        var submitter = try exclusiveSubmitter()
        return try body(&submitter)
    }

    /// Takes this graph's submissions for one owner until the returned submitter is dropped (see
    /// ``ExclusiveSubmitter``). Throws ``ExecutionError/exclusiveSubmitterOpen`` while another one
    /// exists and ``ExecutionError/shutDown`` after ``shutdown()``.
    ///
    /// Prefer ``withExclusiveSubmitter(_:)``: a submitter kept in a global (a top-level `var` in
    /// `main.swift`) is never dropped and leaves every other `submit` refused for good.
    public func exclusiveSubmitter() throws(ExecutionError) -> ExclusiveSubmitter<Input, Output> {
        try ExclusiveSubmitter(core: core)
    }
}
