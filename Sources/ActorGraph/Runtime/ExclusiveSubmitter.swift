import Synchronization

/// Submission owned by one caller: the fastest way to run executions one `submit` at a time.
///
/// While it exists, it is the graph's only submitter (other `submit`, `execute`, batch calls and a
/// second exclusive submitter throw ``GraphError/exclusiveSubmitterOpen``), and results come back
/// in submission order through ``receive()``. Owning the claim counter lets each execution skip the
/// shared path's three full fences (a compare-and-swap to claim, a sequentially consistent publish,
/// a sequentially consistent collect): the counter, the input and the freed slot are all release
/// stores, and the wake-up check for a worker that may be going to sleep runs only when the owner is
/// about to wait. This is the LMAX Disruptor's single-producer sequencer, with results returned.
///
/// ```swift
/// var submitter = try compiled.exclusiveSubmitter()
/// for i in 0..<1_000_000 {
///     if submitter.inFlight == compiled.capacity { total += try submitter.receive() }
///     try submitter.submit(i)
/// }
/// while submitter.inFlight > 0 { total += try submitter.receive() }
/// ```
///
/// It is `~Copyable` and `Sendable`: one owner at a time, which may hand it to another thread.
/// Dropping it abandons the executions still in flight (their slots come back when they finish)
/// and gives submission back to everyone.
public struct ExclusiveSubmitter<Input: Sendable, Output: Sendable>: ~Copyable, Sendable {
    @usableFromInline let core: Unmanaged<EngineCore>
    /// The next sequence this owner will claim.
    @usableFromInline var next: Int
    /// The oldest sequence not yet received.
    @usableFromInline var oldest: Int

    init(core: EngineCore) throws(GraphError) {
        let k = try core.acquireExclusive()
        self.core = Unmanaged.passRetained(core)
        next = k
        oldest = k
    }

    /// Executions submitted and not yet received.
    @inlinable public var inFlight: Int { next &- oldest }

    /// Submits one execution. Blocks like ``CompiledGraph/submit(_:)`` while its slot is still
    /// taken (``CompiledGraph/capacity`` executions in flight: receive some first), up to the
    /// submit timeout (``GraphError/capacityExceeded(capacity:)``).
    @inlinable
    public mutating func submit(_ input: Input) throws(GraphError) {
        let engine = core.takeUnretainedValue()
        let k = next
        try engine.claimExclusive(k)
        engine.inputSlot(k).initializeMemory(as: Input.self, to: input)
        engine.publishInputExclusive(k)
        next = k &+ 1
    }

    /// The oldest execution's output (submission order), or its failure thrown; blocks until it
    /// completes. Each execution is received once. Throws ``GraphError/nothingInFlight`` when
    /// nothing was submitted since the last receive.
    @inlinable
    public mutating func receive() throws(GraphError) -> Output {
        let engine = core.takeUnretainedValue()
        let k = oldest
        guard k < next else { throw .nothingInFlight }
        oldest = k &+ 1
        if !engine.board.ring.isPublished(k) {
            engine.ensureInputsSeen()
            try engine.board.waitPublished(k)
        }
        let value = try engine.board.take(k).assumingMemoryBound(to: Output.self).pointee
        engine.board.collectExclusive(k)
        return value
    }

    /// Like ``receive()``, but lends the output to `body` in place (no copy out of the result
    /// ring, for large payloads); the slot is freed when `body` returns.
    @inlinable
    public mutating func receive<R>(_ body: (borrowing Output) -> R) throws(GraphError) -> R {
        let engine = core.takeUnretainedValue()
        let k = oldest
        guard k < next else { throw .nothingInFlight }
        oldest = k &+ 1
        if !engine.board.ring.isPublished(k) {
            engine.ensureInputsSeen()
            try engine.board.waitPublished(k)
        }
        let slot = try engine.board.take(k).assumingMemoryBound(to: Output.self)
        defer { engine.board.collectExclusive(k) }
        return body(slot.pointee)
    }

    deinit {
        let engine = core.takeUnretainedValue()
        for k in oldest..<next { engine.board.abandon(k) }
        engine.ensureInputsSeen()   // abandoned executions must still run, to free their slots
        engine.releaseExclusive(next: next)
        core.release()
    }
}

extension CompiledGraph {
    /// Takes this graph's submissions for one owner until the returned submitter is dropped (see
    /// ``ExclusiveSubmitter``). Throws ``GraphError/exclusiveSubmitterOpen`` while another one
    /// exists and ``GraphError/shutDown`` after ``shutdown()``.
    public func exclusiveSubmitter() throws(GraphError) -> ExclusiveSubmitter<Input, Output> {
        try ExclusiveSubmitter(core: core)
    }
}
