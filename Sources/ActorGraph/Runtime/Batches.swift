extension CompiledGraph {
    /// Submits every input of `inputs` at once: consecutive slots claimed together with one
    /// compare-and-swap (waiting, up to the submit timeout, until that many are free), inputs published
    /// with release stores and one fence, the head workers checked for a wake-up once. Results are
    /// waited for through the returned ``PendingBatch``, in any order.
    ///
    /// - Throws: ``ExecutionError/batchTooLarge(count:capacity:)`` when `inputs` holds more than
    ///   `capacity` inputs (their results could never all be in flight), ``ExecutionError/shutDown``,
    ///   or ``ExecutionError/capacityExceeded(capacity:)`` after the submit timeout (nothing submitted).
    @inlinable
    public func submit<C: Collection>(contentsOf inputs: C) throws(ExecutionError) -> PendingBatch<Output>
    where C.Element == Input {
        let total = inputs.count
        guard total <= capacity else { throw .batchTooLarge(count: total, capacity: capacity) }
        guard total > 0 else { return PendingBatch(core: core, first: 0, count: 0) }
        let first = try sequencer.claim(count: total)
        var index = inputs.startIndex
        for k in first..<(first &+ total) {
            sequencer.slot(k).initializeMemory(as: Input.self, to: inputs[index])
            inputs.formIndex(after: &index)
        }
        sequencer.publish(first: first, count: total)
        return PendingBatch(core: core, first: first, count: total)
    }

    /// Runs every input of `inputs` through the graph with up to `window` executions in flight
    /// (default: the capacity) and hands each result to `body` in input order, on this thread.
    ///
    /// Submissions are claimed and published in chunks (one compare-and-swap, one fence and one
    /// wake-up check per chunk); results are read in place and their slots freed in chunks.
    /// Allocates nothing. A failed execution reaches `body` as `.failure`; the others go on.
    /// - Throws: ``ExecutionError/shutDown`` or ``ExecutionError/capacityExceeded(capacity:)`` (nothing was
    ///   left in flight); results already handed to `body` stay delivered.
    @inlinable
    public func executeAll<C: Collection>(
        _ inputs: C,
        window: Int? = nil,
        _ body: (_ index: Int, _ result: Result<Output, ExecutionError>) -> Void
    ) throws(ExecutionError)
    where C.Element == Input {
        let window = Swift.max(1, Swift.min(window ?? capacity, capacity))
        var index = inputs.startIndex
        var remaining = inputs.count
        // Chunks in flight, oldest first. At most `ChunkQueue.limit`.
        var chunks = ChunkQueue()
        var inFlight = 0
        var delivered = 0
        let board = core.board
        while true {
            // Keep the window full.
            if remaining > 0 && inFlight < window && !chunks.isFull {
                let want = Swift.min(window - inFlight, remaining)
                // Someone else may hold every slot: with nothing of ours in flight, block for one like
                // `submit` (the next round claims the rest of the window in one go).
                let claimed = inFlight == 0 ? (try sequencer.claim(), 1) : sequencer.tryClaim(upTo: want)
                if let (first, n) = claimed {
                    for k in first..<(first &+ n) {
                        sequencer.slot(k).initializeMemory(as: Input.self, to: inputs[index])
                        inputs.formIndex(after: &index)
                    }
                    sequencer.publish(first: first, count: n)
                    chunks.push(first: first, count: n)
                    inFlight &+= n
                    remaining &-= n
                    continue
                }
            }
            guard let oldest = chunks.front else { return }
            // Deliver the oldest chunk's results that are ready, in order.
            var ready = 0
            while ready < oldest.remaining && board.ring.isPublished(oldest.next &+ ready) { ready &+= 1 }
            if ready == 0 {
                try board.waitPublished(oldest.next)
                continue
            }
            for k in oldest.next..<(oldest.next &+ ready) {
                do {
                    let value = try board.peek(k).assumingMemoryBound(to: Output.self)
                    body(delivered, .success(value.pointee))
                } catch {
                    body(delivered, .failure(error))
                }
                delivered &+= 1
            }
            board.collect(first: oldest.next, count: ready)
            chunks.advanceFront(by: ready)
            inFlight &-= ready
        }
    }

    /// Runs one execution whose input is written in place: `initialize` receives the input slot
    /// itself (no copy of the input), and `read` receives the output in the result slot (no copy
    /// out). For large trivially copyable payloads.
    ///
    /// The slot holds an earlier execution's input (or zero bytes): `initialize` must set every
    /// field the stages read.
    @inlinable
    public func execute<R>(
        initializing initialize: (inout Input) -> Void,
        reading read: (borrowing Output) -> R
    ) throws(ExecutionError) -> R where Input: BitwiseCopyable {
        let k = try sequencer.claim()
        initialize(&sequencer.slot(k).assumingMemoryBound(to: Input.self).pointee)
        sequencer.publish(k)
        let board = core.board
        try board.waitPublished(k)
        let slot = try board.take(k).assumingMemoryBound(to: Output.self)
        defer { board.collect(k) }
        return read(slot.pointee)
    }

    /// Starts one execution whose input is written in place (see ``execute(initializing:reading:)``).
    @inlinable
    public func submit(
        initializing initialize: (inout Input) -> Void
    ) throws(ExecutionError) -> PendingExecution<Output>
    where Input: BitwiseCopyable {
        let k = try sequencer.claim()
        initialize(&sequencer.slot(k).assumingMemoryBound(to: Input.self).pointee)
        sequencer.publish(k)
        return PendingExecution(core: core, sequence: k)
    }
}

/// Executions submitted together by ``CompiledGraph/submit(contentsOf:)``: wait for them one by one
/// in any order (``wait(_:)``), all in order (``waitAll(_:)``), or drop the batch: results not
/// waited for are discarded and their slots freed, so capacity never leaks.
public struct PendingBatch<Output: Sendable>: ~Copyable, Sendable {
    @usableFromInline let core: Unmanaged<EngineCore>
    /// The sequence of the batch's first execution; the others follow it, consecutively.
    @usableFromInline let first: Int
    /// The number of executions in the batch.
    public let count: Int

    @inlinable
    init(core: EngineCore, first: Int, count: Int) {
        self.core = Unmanaged.passRetained(core)
        self.first = first
        self.count = count
    }

    /// The sequence number of the `index`-th execution of the batch.
    @inlinable
    public func sequence(at index: Int) -> Int {
        precondition(index >= 0 && index < count, "batch index \(index) out of range 0..<\(count)")
        return first &+ index
    }

    /// Blocks until the `index`-th execution completes and returns its output; once per execution.
    @inlinable
    public func wait(_ index: Int) throws(ExecutionError) -> Output {
        let k = sequence(at: index)
        let board = core.takeUnretainedValue().board
        try board.checkNotTaken(k)
        try board.waitPublished(k)
        return try board.takeValue(k, as: Output.self)
    }

    /// Waits for every execution not yet waited for, in order, handing each result to `body`, then
    /// frees their slots in chunks (one fence per chunk).
    @inlinable
    public func waitAll(_ body: (_ index: Int, _ result: Result<Output, ExecutionError>) -> Void) {
        let board = core.takeUnretainedValue().board
        // Slots are freed in runs of results read here (one fence per run); a result waited for
        // earlier with `wait(_:)` was freed then.
        var runStart = first
        for index in 0..<count {
            let k = first &+ index
            do throws(ExecutionError) {
                try board.checkNotTaken(k)
            } catch {
                board.collect(first: runStart, count: k &- runStart)
                runStart = k &+ 1
                body(index, .failure(error))
                continue
            }
            do throws(ExecutionError) {
                try board.waitPublished(k)
                body(index, .success(try board.peek(k).assumingMemoryBound(to: Output.self).pointee))
            } catch {
                body(index, .failure(error))
            }
        }
        board.collect(first: runStart, count: first &+ count &- runStart)
    }

    deinit {
        let board = core.takeUnretainedValue().board
        for k in first..<(first &+ count) where !board.wasTaken(k) { board.abandon(k) }
        core.release()
    }
}

/// A fixed ring of claimed chunks for ``CompiledGraph/executeAll(_:window:_:)``, on the stack.
@usableFromInline
struct ChunkQueue {
    @usableFromInline static let limit = 64
    @usableFromInline var firsts = InlineArray<64, Int>(repeating: 0)
    @usableFromInline var counts = InlineArray<64, Int>(repeating: 0)
    /// How many of the front chunk's executions were delivered already.
    @usableFromInline var frontDone = 0
    @usableFromInline var head = 0
    @usableFromInline var size = 0

    @inlinable init() {}

    @inlinable var isFull: Bool { size == ChunkQueue.limit }

    @inlinable
    mutating func push(first: Int, count: Int) {
        let i = (head &+ size) % ChunkQueue.limit
        firsts[i] = first
        counts[i] = count
        size &+= 1
    }

    /// The oldest chunk: the next sequence to deliver and how many remain.
    @inlinable
    var front: (next: Int, remaining: Int)? {
        guard size > 0 else { return nil }
        return (firsts[head] &+ frontDone, counts[head] &- frontDone)
    }

    @inlinable
    mutating func advanceFront(by n: Int) {
        frontDone &+= n
        if frontDone == counts[head] {
            frontDone = 0
            head = (head &+ 1) % ChunkQueue.limit
            size &-= 1
        }
    }
}

extension CompiledGraph {
    /// The results of running every input of `inputs`, in input order, as an `AsyncSequence` for async
    /// callers: up to `window` executions (default: the capacity) are kept in flight ahead of the
    /// consumer; each element is the execution's output or its typed error. A task waiting for a
    /// result is suspended, not blocking its thread. Dropping the iterator early frees the slots of
    /// executions still in flight.
    public func results<C: Collection & Sendable>(for inputs: C, window: Int? = nil) -> ExecutionResults<C, Output>
    where C.Element == Input {
        ExecutionResults(core: core, inputs: inputs, window: Swift.max(1, Swift.min(window ?? capacity, capacity)))
    }
}

/// The results of a stream of inputs through a compiled graph, in order (see
/// ``CompiledGraph/results(for:window:)``).
public struct ExecutionResults<Inputs: Collection & Sendable, Output: Sendable>: AsyncSequence, Sendable
where Inputs.Element: Sendable {
    /// One execution's output, or its typed error.
    public typealias Element = Result<Output, ExecutionError>
    let core: EngineCore
    let inputs: Inputs
    let window: Int

    /// Starts submitting on the first `next()`.
    public func makeAsyncIterator() -> Iterator {
        Iterator(state: IteratorState(core: core, inputs: inputs, window: window))
    }

    /// Submits ahead and hands results back in input order.
    public struct Iterator: AsyncIteratorProtocol {
        let state: IteratorState<Inputs, Output>
        /// The next result in input order; `nil` once every input's result was returned, or after
        /// the graph shut down (reported once as `.failure(.shutDown)`).
        public mutating func next() async -> Element? { await state.next() }
    }
}

/// The in-flight bookkeeping of an ``ExecutionResults`` iterator; a class so that dropping the
/// iterator frees what is still in flight.
final class IteratorState<Inputs: Collection, Output: Sendable> {
    let core: EngineCore
    let sequencer: Sequencer
    let inputs: Inputs
    let window: Int
    var index: Inputs.Index
    var remaining: Int
    var chunks = ChunkQueue()
    var inFlight = 0
    var finished = false

    init(core: EngineCore, inputs: Inputs, window: Int) {
        self.core = core
        self.sequencer = core.sequencer
        self.inputs = inputs
        self.window = window
        self.index = inputs.startIndex
        self.remaining = inputs.count
    }

    func next() async -> Result<Output, ExecutionError>? {
        guard !finished else { return nil }
        do throws(ExecutionError) {
            while remaining > 0 && inFlight < window && !chunks.isFull {
                let want = min(window - inFlight, remaining)
                var claimed = sequencer.tryClaim(upTo: want)
                if claimed == nil && inFlight == 0 { claimed = (try await sequencer.claimAsync(), 1) }
                guard let (first, n) = claimed else { break }
                for k in first..<(first &+ n) {
                    sequencer.slot(k).initializeMemory(as: Inputs.Element.self, to: inputs[index])
                    inputs.formIndex(after: &index)
                }
                sequencer.publish(first: first, count: n)
                chunks.push(first: first, count: n)
                inFlight &+= n
                remaining &-= n
            }
            guard let front = chunks.front else {
                finished = true
                return nil
            }
            let k = front.next
            try await core.board.awaitPublished(k)
            chunks.advanceFront(by: 1)
            inFlight &-= 1
            do throws(ExecutionError) {
                return .success(try core.board.takeValue(k, as: Output.self))
            } catch {
                return .failure(error)
            }
        } catch {
            finished = true
            return .failure(error)
        }
    }

    deinit {
        while let front = chunks.front {
            core.board.abandon(front.next)
            chunks.advanceFront(by: 1)
        }
    }
}
