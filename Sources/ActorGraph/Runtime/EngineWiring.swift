import ActorGraphPlatform
import Synchronization

/// Views of a laid-out region: the control words, park words, worker control blocks, rings and
/// message areas, and the segment runners of one worker. Computing it only reads offsets, so the
/// parent (which initialized the region) and a worker child (which maps it) share this code.
///
/// `@unchecked Sendable`: immutable pointers into the region; every access through them follows the
/// ring protocol (atomics, one producer per ring).
struct EngineWiring: @unchecked Sendable {
    let plan: ExecutionPlan
    let layout: RegionLayout
    let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    let nextSequence: UnsafeMutablePointer<Atomic<Int>>
    let parkWords: [UnsafeMutablePointer<Atomic<UInt32>>]
    let controls: [WorkerControl]
    let rings: [SlotRing]
    let messages: [UnsafeMutableRawPointer?]
    let scratch: [[UnsafeMutableRawPointer]]

    init(plan: ExecutionPlan, layout: RegionLayout, base: UnsafeMutableRawPointer) {
        self.plan = plan
        self.layout = layout
        stopping = (base + layout.control).assumingMemoryBound(to: Atomic<UInt32>.self)
        nextSequence = (base + layout.nextSequence).assumingMemoryBound(to: Atomic<Int>.self)
        parkWords = layout.parkWords.map { (base + $0).assumingMemoryBound(to: Atomic<UInt32>.self) }
        controls = layout.controlBlocks.map { WorkerControl(base: base + $0) }
        rings = plan.channels.map { channel in
            let (stride, valueOffset) = SlotRing.geometry(for: channel.layout)
            return SlotRing(
                base: base + layout.rings[channel.id],
                stride: stride,
                capacity: plan.capacity,
                valueOffset: valueOffset
            )
        }
        messages = layout.messages.map { $0.map { base + $0 } }
        scratch = layout.scratch.map { $0.map { base + $0 } }
    }

    /// Park words of the workers reading `channel`, other than `own`.
    func wakeTargets(of channel: Int, excludingWorker own: Int?) -> [UnsafeMutablePointer<Atomic<UInt32>>] {
        var workers: [Int] = []
        for s in plan.channels[channel].consumers {
            let w = plan.segments[s].worker
            if w != own && !workers.contains(w) { workers.append(w) }
        }
        // A value that must leave this host: its edge worker frames it.
        if let edge = plan.edgeWakeTarget(of: channel), edge != own, !workers.contains(edge) { workers.append(edge) }
        return workers.sorted().map { parkWords[$0] }
    }

    /// The runners of worker `w`'s segments, each starting at sequence `start`.
    /// Sets `stopping` and rings every worker's park word: a worker stops at its next execution
    /// boundary (SegmentRunner.runOne) or as soon as it wakes. A word a caller has taken over (2,
    /// CallerTakeover.swift) is left to that caller: it gives the worker back after its stage and,
    /// seeing `stopping`, rings it then (the other half of this Dekker pair). Used by `shutdown()`
    /// and by a supervisor that fails the graph.
    func stopAndWakeWorkers(sharedFutex: Bool) {
        stopping.pointee.store(1, ordering: .sequentiallyConsistent)
        for word in parkWords {
            var current = word.pointee.load(ordering: .sequentiallyConsistent)
            while current != CallerTakeover.ParkWord.takenOver {
                let (exchanged, original) = word.pointee.compareExchange(
                    expected: current,
                    desired: CallerTakeover.ParkWord.awake,
                    ordering: .sequentiallyConsistent
                )
                if exchanged {
                    Futex.wake(futexWord(word), count: Int32.max, shared: sharedFutex)
                    break
                }
                current = original
            }
        }
    }

    /// One failure side table per channel, `capacity` entries, all `nil`: a thrown error is a Swift
    /// value and cannot live in the shared region, so slot `k`'s error sits at index `k & mask` here
    /// (in process mode each process has its own; errors cross as text in the message areas).
    /// The engine frees them in its `deinit`; a worker child keeps them until it exits.
    func makeErrorTables() -> [UnsafeMutablePointer<(any Error)?>] {
        plan.channels.map { _ in
            let table = UnsafeMutablePointer<(any Error)?>.allocate(capacity: plan.capacity)
            table.initialize(repeating: nil, count: plan.capacity)
            return table
        }
    }

    func makeRunners(
        worker w: Int,
        errorTables: [UnsafeMutablePointer<(any Error)?>],
        board: ResultBoard?,
        sharedFutex: Bool,
        start: Int
    ) -> [SegmentRunner] {
        var runners: [SegmentRunner] = []
        for segment in plan.segments where segment.worker == w {
            let nodes = segment.nodes.map { plan.nodes[$0] }
            let scratchLayouts = nodes.dropLast().map(\.layout)
            let output = plan.channels[segment.outputChannel]
            runners.append(
                SegmentRunner(
                    inputs: segment.inputChannels.map { rings[$0] },
                    inputErrors: segment.inputChannels.map { errorTables[$0] },
                    kernels: nodes.map { $0.makeKernel!() },
                    kernelNodes: segment.nodes,
                    scratch: scratch[segment.id],
                    scratchDestroy: scratchLayouts.map { $0.isTrivial ? nil : $0.destroy },
                    output: rings[segment.outputChannel],
                    outputErrors: errorTables[segment.outputChannel],
                    outputDestroy: output.layout.isTrivial ? nil : output.layout.destroy,
                    wakeTargets: wakeTargets(of: segment.outputChannel, excludingWorker: segment.worker),
                    resultBoard: segment.outputChannel == plan.outputChannel ? board : nil,
                    inputMessages: segment.inputChannels.map { messages[$0] },
                    outputMessages: messages[segment.outputChannel],
                    control: controls[w],
                    sharedFutex: sharedFutex,
                    stopping: stopping,
                    start: start,
                    encoding: SegmentEncoding(plan: plan, segment: segment)
                )
            )
        }
        return runners
    }

    /// The first sequence below `frontier` that segment `segment` has not published (published
    /// stamps form a prefix; everything before `frontier - capacity` is published, since admission
    /// of `frontier - 1` needed the result of `frontier - 1 - capacity`).
    func firstUnpublished(segment: Int, frontier: Int) -> Int {
        let ring = rings[plan.segments[segment].outputChannel]
        var k = max(0, frontier - plan.capacity)
        while k < frontier && ring.isPublished(k) { k += 1 }
        return k
    }
}
