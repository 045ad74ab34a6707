import ActorGraphPlatform
import Synchronization

/// Where one worker records the statistics of one fused segment: pointers into the
/// ``StatisticsStore``, written only by the worker that runs the segment.
///
/// `@unchecked Sendable`: pointers into memory the store owns; each word has one writer (the
/// segment's worker) and is read elsewhere only through relaxed atomic loads.
struct SegmentStatistics: @unchecked Sendable {
    /// Executions the segment finished (stored once per batch; also the producer count its
    /// consumers read for ring occupancy).
    let processed: UnsafeMutablePointer<Atomic<Int>>
    /// Sampled when `k & sampleMask == 0`.
    let sampleMask: Int
    /// Per kernel (head first): `[failures, skipped, stageSum]`, then the stage-time buckets.
    let nodes: UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<UInt64>>>
    /// Per input: `[waitSum, occupancySum]`, then the wait buckets, then the occupancy buckets.
    let reads: UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<UInt64>>>
    /// Per input: the producer's count of published (or claimed) sequences.
    let producerCounts: UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<Int>>>
    /// Whether the output ring's consumers are stages (then the publish time of sampled
    /// executions goes into the slot header); false for the result ring.
    let stampsOutput: Bool

    @inline(__always) func isSampled(_ k: Int) -> Bool { k & sampleMask == 0 }

    /// A node (kernel `j`) threw: counts the failure, and the nodes after it in the segment as skipped.
    func countFailure(kernel j: Int) {
        bump(nodes[j])
        for later in (j + 1)..<nodes.count { bump(nodes[later] + 1) }
    }

    /// An input carried a failure: every node of the segment is skipped.
    func countSkipped() {
        for node in nodes { bump(node + 1) }
    }

    @inline(__always)
    private func bump(_ word: UnsafeMutablePointer<Atomic<UInt64>>) {
        word.pointee.store(word.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }
}

/// Where one worker records its parks and wake-ups (its own cache line in the store).
///
/// `@unchecked Sendable`: a pointer into memory the store owns, written only by the worker.
struct WorkerStatisticsRecorder: @unchecked Sendable {
    /// `[parks, wakeUps, parkTimeouts, parkedNanoseconds]`.
    let words: UnsafeMutablePointer<Atomic<UInt64>>

    /// One park that lasted `nanoseconds`; `doorbell`: a producer (or shutdown) rang the park word.
    @inline(__always)
    func recordPark(nanoseconds: UInt64, doorbell: Bool) {
        bump(0, by: 1)
        bump(doorbell ? 1 : 2, by: 1)
        bump(3, by: nanoseconds)
    }

    @inline(__always)
    private func bump(_ i: Int, by n: UInt64) {
        let word = words + i
        word.pointee.store(word.pointee.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }
}

/// Times one sampled execution of a segment: when it was picked up (the wait in each input
/// ring since its producer published it, and the ring's occupancy), the time inside each
/// stage, and the publish time of the output for the next consumer.
protocol StageClock {
    mutating func pickedUp(_ k: Int, inputs: UnsafeMutableBufferPointer<SlotRing>)
    mutating func kernelFinished(_ j: Int)
    func willPublish(_ k: Int, output: SlotRing)
}

/// The clock of unsampled executions: does nothing, and inlines to nothing.
struct NoStageClock: StageClock {
    @inline(__always) mutating func pickedUp(_ k: Int, inputs: UnsafeMutableBufferPointer<SlotRing>) {}
    @inline(__always) mutating func kernelFinished(_ j: Int) {}
    @inline(__always) func willPublish(_ k: Int, output: SlotRing) {}
}

/// The clock of sampled executions: one monotonic clock read at pick-up and one per stage.
struct SampledStageClock: StageClock {
    let statistics: SegmentStatistics
    var last: UInt64 = 0

    init(_ statistics: SegmentStatistics) { self.statistics = statistics }

    @inline(__always)
    mutating func pickedUp(_ k: Int, inputs: UnsafeMutableBufferPointer<SlotRing>) {
        let now = MonotonicClock.now()
        last = now
        for i in 0..<inputs.count {
            let read = statistics.reads[i]
            let published = inputs[i].publishedAt(k).pointee
            if published != 0 && now >= published {
                LogBuckets.record(now &- published, into: read + 2, sum: read)
            }
            // (The input's producer count is the claim counter: its exclusive-submitter bit is masked.)
            let ahead = Sequencer.sequence(ofCursor: statistics.producerCounts[i].pointee.load(ordering: .relaxed)) &- k
            LogBuckets.record(UInt64(max(ahead, 1)), into: read + 2 + LogBuckets.count, sum: read + 1)
        }
    }

    @inline(__always)
    mutating func kernelFinished(_ j: Int) {
        let now = MonotonicClock.now()
        let node = statistics.nodes[j]
        LogBuckets.record(now &- last, into: node + 3, sum: node + 2)
        last = now
    }

    @inline(__always)
    func willPublish(_ k: Int, output: SlotRing) {
        if statistics.stampsOutput { output.publishedAt(k).pointee = last }
    }
}

/// Preallocated per-compile statistics: one block per worker, per segment, per node and per
/// channel read, each on its own cache lines and written by exactly one worker (or, for the
/// input ring's publish times, by the submitting thread inside the slot header it owns).
/// Snapshots read it from any thread with relaxed loads; nothing is allocated while recording.
///
/// The words live at the end of the engine's shared-memory region (``offset(afterLayoutBytes:)``),
/// laid out from the plan alone: a worker process maps the same region and records into the same
/// words (``Isolation/processes``), and a restarted worker goes on counting where its predecessor
/// stopped.
///
/// `@unchecked Sendable`: the memory is written only as described above, through atomics.
final class StatisticsStore: @unchecked Sendable {
    let sampleInterval: Int
    let sampleMask: Int
    private let plan: ExecutionPlan
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let wordCount: Int
    private let workerBase: [Int]
    private let segmentBase: [Int]
    private let nodeBase: [Int]
    /// Per segment, per input: the read block's word offset.
    private let readBase: [[Int]]
    /// Recorders handed to the runners (their buffers are owned here).
    private var segmentRecorders: [SegmentStatistics] = []

    static let nodeHeaderWords = 3
    static let readHeaderWords = 2

    /// Where the store starts in a region whose layout takes `layoutBytes`.
    static func offset(afterLayoutBytes layoutBytes: Int) -> Int { roundUp(layoutBytes, to: SlotRing.cacheLine) }

    /// Bytes the store of `plan` needs.
    static func byteCount(for plan: ExecutionPlan) -> Int { Layout(plan).wordCount * 8 }

    /// Word offsets of every block, from the plan alone (the same in every process).
    struct Layout {
        var workerBase: [Int] = []
        var segmentBase: [Int] = []
        var nodeBase: [Int]
        var readBase: [[Int]] = []
        var wordCount: Int

        init(_ plan: ExecutionPlan) {
            func lines(_ words: Int) -> Int { (words + 7) / 8 * 8 }
            var offset = 0
            for _ in 0..<plan.workerCount {
                workerBase.append(offset)
                offset += 8
            }
            for _ in plan.segments {
                segmentBase.append(offset)
                offset += 8
            }
            nodeBase = [Int](repeating: -1, count: plan.nodes.count)
            for segment in plan.segments {
                for node in segment.nodes {
                    nodeBase[node] = offset
                    offset += lines(StatisticsStore.nodeHeaderWords + LogBuckets.count)
                }
            }
            for segment in plan.segments {
                var reads: [Int] = []
                for _ in segment.inputChannels {
                    reads.append(offset)
                    offset += lines(StatisticsStore.readHeaderWords + 2 * LogBuckets.count)
                }
                readBase.append(reads)
            }
            wordCount = max(offset, 8)
        }
    }

    /// A store over `byteCount(for: plan)` bytes at `base` (cache-line aligned, inside the engine's
    /// region). `initialize`: zero the words (the compiling process; a worker process maps them as they are).
    init(plan: ExecutionPlan, sampleInterval: Int, base: UnsafeMutableRawPointer, initialize: Bool) {
        self.plan = plan
        self.sampleInterval = sampleInterval
        self.sampleMask = sampleInterval - 1
        let layout = Layout(plan)
        workerBase = layout.workerBase
        segmentBase = layout.segmentBase
        nodeBase = layout.nodeBase
        readBase = layout.readBase
        wordCount = layout.wordCount
        words = base.bindMemory(to: Atomic<UInt64>.self, capacity: wordCount)
        if initialize { for i in 0..<wordCount { (words + i).initialize(to: Atomic(0)) } }
    }

    deinit {
        for recorder in segmentRecorders {
            recorder.nodes.deallocate()
            recorder.reads.deallocate()
            recorder.producerCounts.deallocate()
        }
        // The words belong to the engine's region, unmapped with it.
    }

    /// Hands each runner and worker its recorder. Called once, before any worker thread starts.
    /// - Parameters:
    ///   - workers: the workers of this process (all of them, or a worker process's one); each
    ///     one's runners are its segments in plan order.
    ///   - inputCount: the submitters' claim counter (the input ring's producer count).
    func install(workers: [Worker], inputCount: UnsafeMutablePointer<Atomic<Int>>) {
        var runners = [SegmentRunner?](repeating: nil, count: plan.segments.count)
        for worker in workers {
            let segments = plan.segments.filter { $0.worker == worker.index }
            // A worker whose runners live elsewhere (another process) records nothing here.
            guard segments.count == worker.runners.count else { continue }
            for (segment, runner) in zip(segments, worker.runners) { runners[segment.id] = runner }
        }
        func processed(_ s: Int) -> UnsafeMutablePointer<Atomic<Int>> {
            UnsafeMutableRawPointer(words + segmentBase[s]).assumingMemoryBound(to: Atomic<Int>.self)
        }
        var producerOfChannel: [Int: Int] = [:]
        for segment in plan.segments { producerOfChannel[segment.outputChannel] = segment.id }
        for (s, segment) in plan.segments.enumerated() {
            let nodes = UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<UInt64>>>.allocate(
                capacity: segment.nodes.count
            )
            for (j, node) in segment.nodes.enumerated() { nodes.initializeElement(at: j, to: words + nodeBase[node]) }
            let reads = UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<UInt64>>>.allocate(
                capacity: segment.inputChannels.count
            )
            let producers = UnsafeMutableBufferPointer<UnsafeMutablePointer<Atomic<Int>>>.allocate(
                capacity: segment.inputChannels.count
            )
            for (i, channel) in segment.inputChannels.enumerated() {
                reads.initializeElement(at: i, to: words + readBase[s][i])
                producers.initializeElement(at: i, to: producerOfChannel[channel].map(processed) ?? inputCount)
            }
            let recorder = SegmentStatistics(
                processed: processed(s),
                sampleMask: sampleMask,
                nodes: nodes,
                reads: reads,
                producerCounts: producers,
                stampsOutput: segment.outputChannel != plan.outputChannel
            )
            segmentRecorders.append(recorder)
            runners[s]?.statistics = recorder
        }
        for worker in workers {
            worker.statistics = WorkerStatisticsRecorder(words: words + workerBase[worker.index])
        }
    }

    /// Records the publish time of the sampled sequences among `first..<first + count` of the
    /// input ring (called by the submitter before it publishes them).
    @inline(__always)
    func stampInputs(_ ring: SlotRing, first: Int, count: Int) {
        var k = (first &+ sampleMask) & ~sampleMask
        guard k < first &+ count else { return }
        let now = MonotonicClock.now()
        while k < first &+ count {
            ring.publishedAt(k).pointee = now
            k &+= sampleInterval
        }
    }

    /// A snapshot of everything recorded so far (relaxed loads; callable from any thread).
    func snapshot() -> GraphStatistics {
        func load(_ i: Int) -> UInt64 { (words + i).pointee.load(ordering: .relaxed) }
        let names = plan.nodes.map(\.name)
        var nodes: [NodeStatistics] = []
        var channels: [ChannelStatistics] = []
        var waitOfHead: [Int: LatencyHistogram] = [:]
        for (s, segment) in plan.segments.enumerated() {
            let head = segment.nodes[0]
            var merged = LatencyHistogram()
            for (i, channel) in segment.inputChannels.enumerated() {
                let base = readBase[s][i]
                let wait = LatencyHistogram(reading: words + base + 2, sum: words + base)
                let occupancy = LatencyHistogram(reading: words + base + 2 + LogBuckets.count, sum: words + base + 1)
                merged.merge(wait)
                let producer = plan.channels[channel].node
                channels.append(
                    ChannelStatistics(
                        producer: producer == plan.inputNode ? "input" : names[producer],
                        consumer: names[head],
                        worker: segment.worker,
                        wait: wait,
                        occupancy: occupancy
                    )
                )
            }
            waitOfHead[head] = merged
        }
        for segment in plan.segments {
            let processed = load(segmentBase[segment.id])
            for node in segment.nodes {
                let base = nodeBase[node]
                nodes.append(
                    NodeStatistics(
                        name: names[node],
                        index: node,
                        worker: segment.worker,
                        executions: processed,
                        failures: load(base),
                        skipped: load(base + 1),
                        stageTime: LatencyHistogram(reading: words + base + 3, sum: words + base + 2),
                        channelWait: waitOfHead[node],
                        isOutput: node == plan.outputNode
                    )
                )
            }
        }
        nodes.sort { $0.index < $1.index }
        let workers = (0..<plan.workerCount).map { w in
            let b = workerBase[w]
            return WorkerStatistics(
                index: w,
                parks: load(b),
                wakeUps: load(b + 1),
                parkTimeouts: load(b + 2),
                parkedNanoseconds: load(b + 3)
            )
        }
        return GraphStatistics(sampleInterval: sampleInterval, nodes: nodes, channels: channels, workers: workers)
    }
}
