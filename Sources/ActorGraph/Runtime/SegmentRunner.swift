import ActorGraphPlatform
import Synchronization

/// Runs one fused segment (a chain of nodes on one worker) one execution at a time, in sequence order.
///
/// The head reads its input rings in place; intermediate values live in preallocated scratch
/// memory; the tail writes straight into its output ring slot. Nothing is allocated per execution.
final class SegmentRunner {
    /// The head's input rings, in argument order, and their failure side tables.
    let inputs: UnsafeMutableBufferPointer<SlotRing>
    let inputErrors: UnsafeMutableBufferPointer<UnsafeMutablePointer<(any Error)?>>
    /// One kernel per node, head first, and each kernel's node index.
    /// Each kernel behind a reference, called borrowed (`Unmanaged`, +0): loading a closure out of a
    /// buffer would retain and release its context on every call (perf: swift_release at ~15 % of the
    /// worker in chain3). `kernelBoxes` keeps them alive.
    let kernels: UnsafeMutableBufferPointer<Unmanaged<KernelBox>>
    private let kernelBoxes: [KernelBox]
    let kernelNodes: UnsafeMutableBufferPointer<Int32>
    /// `arguments[0..<inputs.count]` feed the head; `arguments[inputs.count + j]` points at scratch `j`.
    let arguments: UnsafeMutablePointer<UnsafeRawPointer>
    let scratch: UnsafeMutableBufferPointer<UnsafeMutableRawPointer>
    /// Destroys scratch `j` after the next kernel read it; `nil` for trivial types.
    let scratchDestroy: [(@Sendable (UnsafeMutableRawPointer) -> Void)?]
    let output: SlotRing
    let outputErrors: UnsafeMutablePointer<(any Error)?>
    let outputDestroy: (@Sendable (UnsafeMutableRawPointer) -> Void)?
    /// Park words of the workers reading `output` (other than this runner's own worker).
    let wakeTargets: UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<UInt32>>>
    /// Set when `output` is the result ring (unretained: the engine core owns the board and outlives the workers).
    let resultBoard: Unmanaged<ResultBoard>?
    /// Process mode: the failure-message areas of the inputs and of the output (one text per slot),
    /// where a failure's description crosses processes; `nil` in thread mode.
    let inputMessages: UnsafeMutableBufferPointer<UnsafeMutableRawPointer?>
    let outputMessages: UnsafeMutableRawPointer?
    /// The worker's progress counter and current-node word (its control block; relaxed stores only).
    let progress: UnsafeMutablePointer<Atomic<UInt64>>
    let currentNode: UnsafeMutablePointer<Atomic<UInt32>>
    /// Wake-ups use shared futexes (process mode: the consumer may be another process).
    let sharedFutex: Bool
    /// The engine's stopping word: once set, no execution starts (checked before each one, so a
    /// shutdown stops a worker at the next execution boundary, not after its queue or batch).
    let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    /// The next sequence this segment processes.
    @inline(__always) private(set) var next: Int {
        get { nextWord.pointee }
        set { nextWord.pointee = newValue }
    }
    /// Where ``next`` lives: a cache line of its own, like ``arguments``. The worker writes both
    /// with every execution; inside this object, or in a small block malloc puts beside another,
    /// they would share a line with whatever the allocator placed next to them, and a thread
    /// reading that neighbour would pay a cache-line transfer per execution. (Found while chasing
    /// an echo that ran 2x slower in some heap layouts: there the writer was a caller's retain of
    /// the result board, CompiledGraph.swift; this closes the same door from the worker's side.)
    private let nextWord: UnsafeMutablePointer<Int>
    /// Where this segment records statistics (``CompileOptions/statistics``); `nil` when off.
    /// Set once before the worker starts.
    @exclusivity(unchecked) var statistics: SegmentStatistics?
    /// Process mode: the segment's channels whose values cross encoded (``SegmentEncoding``);
    /// `nil` when every value it reads and writes is read and written in place.
    let encoding: SegmentEncoding?

    init(
        inputs: [SlotRing],
        inputErrors: [UnsafeMutablePointer<(any Error)?>],
        kernels: [KernelFunction],
        kernelNodes: [Int],
        scratch: [UnsafeMutableRawPointer],
        scratchDestroy: [(@Sendable (UnsafeMutableRawPointer) -> Void)?],
        output: SlotRing,
        outputErrors: UnsafeMutablePointer<(any Error)?>,
        outputDestroy: (@Sendable (UnsafeMutableRawPointer) -> Void)?,
        wakeTargets: [UnsafeMutablePointer<Atomic<UInt32>>],
        resultBoard: ResultBoard?,
        inputMessages: [UnsafeMutableRawPointer?],
        outputMessages: UnsafeMutableRawPointer?,
        control: WorkerControl,
        sharedFutex: Bool,
        stopping: UnsafeMutablePointer<Atomic<UInt32>>,
        start: Int,
        encoding: SegmentEncoding? = nil
    ) {
        self.inputs = .allocate(capacity: inputs.count)
        _ = self.inputs.initialize(from: inputs)
        self.inputErrors = .allocate(capacity: inputErrors.count)
        _ = self.inputErrors.initialize(from: inputErrors)
        let boxes = kernels.map(KernelBox.init)
        self.kernelBoxes = boxes
        self.kernels = .allocate(capacity: boxes.count)
        _ = self.kernels.initialize(from: boxes.map { Unmanaged.passUnretained($0) })
        self.kernelNodes = .allocate(capacity: kernelNodes.count)
        _ = self.kernelNodes.initialize(from: kernelNodes.map { Int32($0) })
        self.scratch = .allocate(capacity: scratch.count)
        _ = self.scratch.initialize(from: scratch)
        self.arguments = SegmentRunner.allocateOwnLines(UnsafeRawPointer.self, count: inputs.count + scratch.count)
        for (j, s) in scratch.enumerated() { (arguments + inputs.count + j).initialize(to: UnsafeRawPointer(s)) }
        for i in 0..<inputs.count { (arguments + i).initialize(to: UnsafeRawPointer(bitPattern: 1)!) }
        self.scratchDestroy = scratchDestroy
        self.output = output
        self.outputErrors = outputErrors
        self.outputDestroy = outputDestroy
        self.wakeTargets = .allocate(capacity: wakeTargets.count)
        _ = self.wakeTargets.initialize(from: wakeTargets)
        self.resultBoard = resultBoard.map { Unmanaged.passUnretained($0) }
        self.inputMessages = .allocate(capacity: inputMessages.count)
        _ = self.inputMessages.initialize(from: inputMessages)
        self.outputMessages = outputMessages
        self.progress = control.progress
        self.currentNode = control.node
        self.sharedFutex = sharedFutex
        self.stopping = stopping
        nextWord = SegmentRunner.allocateOwnLines(Int.self, count: 1)
        nextWord.initialize(to: start)
        self.encoding = encoding
    }

    /// Memory for `count` values of `T` on cache lines nobody else uses (aligned, rounded up to lines).
    private static func allocateOwnLines<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let bytes = (max(1, count) * MemoryLayout<T>.stride + 63) & ~63
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64).bindMemory(to: T.self, capacity: count)
    }

    deinit {
        inputs.deallocate()
        inputErrors.deallocate()
        kernels.deinitialize()
        kernels.deallocate()
        kernelNodes.deallocate()
        scratch.deallocate()
        arguments.deallocate()
        nextWord.deallocate()
        wakeTargets.deallocate()
        inputMessages.deallocate()
    }

    /// Whether the next execution's inputs are all published.
    @inline(__always)
    func isReady() -> Bool { isReady(at: next) }

    /// Whether every input of sequence `k` is published (reads the input rings only).
    @inline(__always)
    func isReady(at k: Int) -> Bool {
        for i in 0..<inputs.count where !inputs[i].isPublished(k) { return false }
        return true
    }

    /// Runs up to `limit` ready executions back to back (consumer-side batching); returns how many ran.
    ///
    /// Each output is published with a release store as soon as it is written (a spinning consumer
    /// sees it at once); then one sequentially consistent fence covers the whole batch before the
    /// wake-up checks (parked workers, waiting callers): the producer half of the Dekker pair.
    @inline(__always)
    func runBatch(_ limit: Int) -> Int {
        let first = next
        var n = 0
        while n < limit && runOne() { n &+= 1 }
        if n > 0 {
            if let statistics { statistics.processed.pointee.store(next, ordering: .relaxed) }
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            for target in wakeTargets { Worker.wake(target, shared: sharedFutex) }
            // The waiter words are read through this runner's own copy of the ring: the board object
            // is touched only when someone waits, never per execution (its first line holds the
            // refcount that callers' retain/release write on every execution; reading the board
            // here made echo ~40 ns slower whenever its fields shared that line).
            if let board = resultBoard {
                for k in first..<(first &+ n)
                where output.resultWaiters(k).pointee.load(ordering: .sequentiallyConsistent) != 0 {
                    board._withUnsafeGuaranteedRef { $0.didPublish(k) }
                }
            }
        }
        return n
    }

    /// Runs the next execution if its inputs are ready and the engine is not stopping, and
    /// publishes its output (release; the caller, ``runBatch(_:)``, fences and wakes). Returns
    /// whether it ran.
    ///
    /// The stopping word is read before every execution (an acquire load: a plain load on x86, its
    /// line shared and unwritten while running): an execution not started when `shutdown()` set it
    /// never starts, in whichever thread or process would have run it.
    /// With statistics off this costs one predicted branch more than the bare body; sampled
    /// executions take the out-of-line ``runSampled(_:)``.
    @inline(__always)
    func runOne() -> Bool {
        guard isReady(), stopping.pointee.load(ordering: .acquiring) == 0 else { return false }
        if let encoding {
            runEncoded(encoding)
        } else if let statistics, statistics.isSampled(next) {
            runSampled(statistics)
        } else {
            var clock = NoStageClock()
            run(&clock, PlainSlots())
        }
        return true
    }

    @inline(never)
    private func runSampled(_ statistics: SegmentStatistics) {
        var clock = SampledStageClock(statistics)
        run(&clock, PlainSlots())
    }

    /// Process mode, a segment with encoded channels: the same body through decode and encode
    /// buffers (``EncodedSlots``).
    @inline(never)
    private func runEncoded(_ encoding: SegmentEncoding) {
        let slots = EncodedSlots(encoding: encoding)
        if let statistics, statistics.isSampled(next) {
            var clock = SampledStageClock(statistics)
            run(&clock, slots)
        } else {
            var clock = NoStageClock()
            run(&clock, slots)
        }
    }

    /// The body of one execution, specialized for the unsampled (no-op) and the sampled clock, and
    /// for values in place or encoded.
    @inline(__always)
    private func run<Clock: StageClock, Slots: SlotAccess>(_ clock: inout Clock, _ slots: Slots) {
        let k = next
        clock.pickedUp(k, inputs: inputs)
        let outputSlot = k & output.mask
        // The slot still holds execution k - capacity: destroy its value before reusing it.
        let previousFailure = output.failure(k).pointee
        if k > output.mask {
            if previousFailure != 0 {
                outputErrors[outputSlot] = nil
            } else if let destroy = outputDestroy {
                destroy(output.value(k))
            }
        }
        var failure: Int32 = 0
        var decoded = 0
        for i in 0..<inputs.count {
            let f = inputs[i].failure(k).pointee
            if f != 0 {
                failure = f
                outputErrors[outputSlot] = inputErrors[i][k & inputs[i].mask]
                if let out = outputMessages, let from = inputMessages[i] {
                    FailureMessage.copy(
                        from: from + (k & inputs[i].mask) &* FailureMessage.slotBytes,
                        to: out + outputSlot &* FailureMessage.slotBytes
                    )
                }
                statistics?.countSkipped()
                break
            }
            guard let argument = slots.input(i, slot: inputs[i].value(k)) else {
                failure = slots.inputFailed(
                    i,
                    message: outputMessages.map { $0 + outputSlot &* FailureMessage.slotBytes }
                )
                break
            }
            arguments[i] = argument
            decoded = i &+ 1
        }
        if failure == 0 {
            failure = runKernels(into: slots.outputTarget(output.value(k)), outputSlot: outputSlot, clock: &clock)
            if failure == 0 {
                failure = slots.finishOutput(output.value(k), messages: outputMessages, outputSlot: outputSlot)
            }
        }
        slots.releaseInputs(decoded)
        clock.willPublish(k, output: output)
        output.failure(k).pointee = failure
        output.stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        next = k &+ 1
        // Single writer (this worker): a relaxed load and store, no read-modify-write.
        progress.pointee.store(progress.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Calls the kernels in order; returns 0, or the failing node's index + 1 (error stored).
    @inline(__always)
    private func runKernels<Clock: StageClock>(
        into destination: UnsafeMutableRawPointer,
        outputSlot: Int,
        clock: inout Clock
    ) -> Int32 {
        let last = kernels.count - 1
        var source = UnsafePointer(arguments)
        var j = 0
        do {
            while j <= last {
                currentNode.pointee.store(UInt32(truncatingIfNeeded: kernelNodes[j] &+ 1), ordering: .relaxed)
                let target = j == last ? destination : scratch[j]
                try kernels[j]._withUnsafeGuaranteedRef { try $0.run(source, target) }
                clock.kernelFinished(j)
                if j > 0, let destroy = scratchDestroy[j - 1] { destroy(scratch[j - 1]) }
                source = UnsafePointer(arguments + inputs.count + j)
                j &+= 1
            }
            currentNode.pointee.store(0, ordering: .relaxed)
            return 0
        } catch {
            currentNode.pointee.store(0, ordering: .relaxed)
            if j > 0, let destroy = scratchDestroy[j - 1] { destroy(scratch[j - 1]) }
            if let out = outputMessages {
                FailureMessage.write(
                    String(describing: error),
                    detail: kernelNodes[j],
                    to: out + outputSlot &* FailureMessage.slotBytes
                )
            } else {
                outputErrors[outputSlot] = error
            }
            statistics?.countFailure(kernel: j)
            return kernelNodes[j] &+ 1
        }
    }
}

/// A kernel held by a class, so that the worker can call it through an unretained reference.
final class KernelBox {
    let run: KernelFunction
    init(_ run: @escaping KernelFunction) { self.run = run }
}
