/// A snapshot of a compiled graph's statistics (``CompiledGraph/statistics``), taken from any
/// thread while the graph runs. Counts are exact; times and occupancy come from sampled executions.
public struct GraphStatistics: Sendable {
    /// One execution in `sampleInterval` was timed.
    public var sampleInterval: Int
    /// Every stage, in declaration order (the input node is not a stage).
    public var nodes: [NodeStatistics]
    /// Every ring a stage reads, one entry per (ring, reading segment).
    public var channels: [ChannelStatistics]
    /// Every worker, by index.
    public var workers: [WorkerStatistics]

    /// Creates a snapshot from its parts.
    public init(
        sampleInterval: Int,
        nodes: [NodeStatistics],
        channels: [ChannelStatistics],
        workers: [WorkerStatistics]
    ) {
        self.sampleInterval = sampleInterval
        self.nodes = nodes
        self.channels = channels
        self.workers = workers
    }

    /// The stage with the most sampled time inside it, or `nil` before anything was sampled.
    public var dominantNode: NodeStatistics? {
        nodes.filter { $0.stageTime.sum > 0 }.max { $0.stageTime.sum < $1.stageTime.sum }
    }

    /// The ring whose sampled executions waited longest in total before their reader picked them
    /// up (a reader busy elsewhere, parked, or behind a slower input of a join).
    public var longestWaitChannel: ChannelStatistics? {
        channels.filter { $0.wait.sum > 0 }.max { $0.wait.sum < $1.wait.sum }
    }

    /// The statistics of the stage called `name`.
    public subscript(node name: String) -> NodeStatistics? { nodes.first { $0.name == name } }

    /// A per-node table (count, failures, stage and channel-wait p50/p99, worker), the workers'
    /// parks and wake-ups, and a line naming the dominant node.
    public var table: String {
        var rows: [[String]] = [
            [
                "node", "worker", "count", "failures", "skipped", "stage p50", "stage p99",
                "wait p50", "wait p99", "share",
            ]
        ]
        let total = nodes.reduce(UInt64(0)) { $0 &+ $1.stageTime.sum }
        for node in nodes {
            let share = total == 0 ? "-" : "\(Int((Double(node.stageTime.sum) * 100 / Double(total)).rounded())) %"
            let wait = node.channelWait
            rows.append([
                node.name, "w\(node.worker)", "\(node.executions)", "\(node.failures)", "\(node.skipped)",
                Self.time(node.stageTime, 50), Self.time(node.stageTime, 99),
                wait.map { Self.time($0, 50) } ?? "fused", wait.map { Self.time($0, 99) } ?? "fused", share,
            ])
        }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var lines = rows.map { row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return i == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        for worker in workers {
            lines.append(
                "worker w\(worker.index): parks \(worker.parks), wake-ups \(worker.wakeUps), park timeouts \(worker.parkTimeouts), parked \(Self.format(worker.parkedNanoseconds))"
            )
        }
        for channel in channels where !channel.occupancy.isEmpty {
            lines.append(
                "ring \(channel.producer) → \(channel.consumer): occupancy at pick-up p50 \(channel.occupancy.p50), p99 \(channel.occupancy.p99)"
            )
        }
        if let top = dominantNode, total > 0 {
            let share = Int((Double(top.stageTime.sum) * 100 / Double(total)).rounded())
            lines.append(
                "dominant node: \(top.name) (\(share) % of the sampled time inside stages, stage p50 \(Self.time(top.stageTime, 50)))"
            )
            if let ring = longestWaitChannel {
                lines.append(
                    "longest channel wait: \(ring.producer) → \(ring.consumer) (p50 \(Self.time(ring.wait, 50)), p99 \(Self.time(ring.wait, 99)))"
                )
            }
        } else {
            lines.append("dominant node: none sampled yet (sampling 1 execution in \(sampleInterval))")
        }
        lines.append(
            "sampled 1 execution in \(sampleInterval) (times include one clock read, ~20 ns); counts are exact"
        )
        return lines.joined(separator: "\n")
    }

    static func time(_ histogram: LatencyHistogram, _ p: Double) -> String {
        histogram.isEmpty ? "-" : format(histogram.percentile(p))
    }

    /// A duration in ns, µs, ms or s with three significant digits.
    static func format(_ nanoseconds: UInt64) -> String {
        let ns = Double(nanoseconds)
        func digits(_ x: Double) -> String {
            let decimals = x >= 100 ? 0 : (x >= 10 ? 1 : 2)
            var scale = 1.0
            for _ in 0..<decimals { scale *= 10 }
            let rounded = (x * scale).rounded() / scale
            if decimals == 0 { return String(Int(rounded)) }
            let whole = Int(rounded)
            var fraction = String(Int(((rounded - Double(whole)) * scale).rounded()))
            while fraction.count < decimals { fraction = "0" + fraction }
            return "\(whole).\(fraction)"
        }
        if ns < 1_000 { return "\(nanoseconds) ns" }
        if ns < 1_000_000 { return digits(ns / 1_000) + " µs" }
        if ns < 1_000_000_000 { return digits(ns / 1_000_000) + " ms" }
        return digits(ns / 1_000_000_000) + " s"
    }
}

/// One stage's statistics.
public struct NodeStatistics: Sendable {
    /// The node's name (``Node/named(_:)`` or its default).
    public var name: String
    /// The node's index in declaration order.
    public var index: Int
    /// The worker running it.
    public var worker: Int
    /// Executions its segment processed (run, failed or skipped).
    public var executions: UInt64
    /// Executions in which this stage threw.
    public var failures: UInt64
    /// Executions in which it did not run because an earlier stage failed.
    public var skipped: UInt64
    /// Time inside the stage, per sampled execution.
    public var stageTime: LatencyHistogram
    /// Time each sampled execution waited in the stage's input rings between its producer's
    /// publish and this stage's pick-up; `nil` for a stage fused behind another (no ring).
    public var channelWait: LatencyHistogram?
    /// Whether this is the graph's output node.
    public var isOutput: Bool

    /// Creates a node's statistics from its parts.
    public init(
        name: String,
        index: Int,
        worker: Int,
        executions: UInt64,
        failures: UInt64,
        skipped: UInt64,
        stageTime: LatencyHistogram,
        channelWait: LatencyHistogram?,
        isOutput: Bool
    ) {
        self.name = name
        self.index = index
        self.worker = worker
        self.executions = executions
        self.failures = failures
        self.skipped = skipped
        self.stageTime = stageTime
        self.channelWait = channelWait
        self.isOutput = isOutput
    }

    /// Sampled time attributable to this stage: inside it plus waiting in its input rings.
    public var sampledNanoseconds: UInt64 { stageTime.sum &+ (channelWait?.sum ?? 0) }
}

/// One ring as seen by one reading segment.
public struct ChannelStatistics: Sendable {
    /// The node that writes the ring (`"input"` for the graph input).
    public var producer: String
    /// The head node of the segment that reads it.
    public var consumer: String
    /// The reader's worker.
    public var worker: Int
    /// Time from the producer's publish to the reader's pick-up, per sampled execution.
    public var wait: LatencyHistogram
    /// Sequences published (or, for the input ring, claimed) and not yet picked up by this
    /// reader, counting the one picked up, at each sampled pick-up.
    public var occupancy: LatencyHistogram

    /// Creates a channel's statistics from its parts.
    public init(producer: String, consumer: String, worker: Int, wait: LatencyHistogram, occupancy: LatencyHistogram) {
        self.producer = producer
        self.consumer = consumer
        self.worker = worker
        self.wait = wait
        self.occupancy = occupancy
    }
}

/// One worker's idle behaviour.
public struct WorkerStatistics: Sendable {
    /// The worker's index.
    public var index: Int
    /// Times it parked (slept after spinning idle).
    public var parks: UInt64
    /// Parks ended by a producer's doorbell or, on a worker with network I/O, a completion (a wake-up).
    public var wakeUps: UInt64
    /// Parks ended by the park timeout (a safety net) with nothing to do.
    public var parkTimeouts: UInt64
    /// Total time spent parked.
    public var parkedNanoseconds: UInt64

    /// Creates a worker's statistics from its parts.
    public init(index: Int, parks: UInt64, wakeUps: UInt64, parkTimeouts: UInt64, parkedNanoseconds: UInt64) {
        self.index = index
        self.parks = parks
        self.wakeUps = wakeUps
        self.parkTimeouts = parkTimeouts
        self.parkedNanoseconds = parkedNanoseconds
    }
}
