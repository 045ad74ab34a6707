import ActorGraph
import CoreMetrics
import Synchronization

/// Reports `GraphStatistics` snapshots into any swift-metrics `MetricsFactory` (Prometheus,
/// StatsD, OpenTelemetry, a test factory): counters and timers labelled with `node` and `worker`.
///
/// Each ``report(_:service:)`` sends what changed since the previous one: counters are incremented
/// by their delta, and every newly sampled stage time or channel wait is recorded into its timer
/// (at its histogram bucket's middle). Call it from any thread, e.g. on each scrape; it never touches
/// the graph's hot path, which only ever writes its per-worker counters.
///
/// Metrics (names as Prometheus shows them):
/// - `actorgraph_executions_total{node,worker}`, `actorgraph_failures_total{node,worker}`,
///   `actorgraph_skipped_total{node,worker}`
/// - `actorgraph_stage_seconds{node,worker}` (timer), `actorgraph_channel_wait_seconds{producer,node,worker}` (timer)
/// - `actorgraph_ring_occupancy{producer,node,worker,quantile}` (gauge: 0.5 and 0.99)
/// - `actorgraph_worker_parks_total{worker}`, `actorgraph_worker_wakeups_total{worker}`,
///   `actorgraph_worker_parked_seconds_total{worker}`
/// - with a UDP edge: `actorgraph_udp_<counter>_total` and `actorgraph_udp_in_flight`
public final class StatisticsReporter: Sendable {
    private let factory: any MetricsFactory
    private let previous = Mutex<(graph: GraphStatistics?, service: ServiceStatistics?)>((nil, nil))

    /// Timer labels this reporter records into, for factories that take per-label bucket choices.
    public static let timerLabels = ["actorgraph_stage_seconds", "actorgraph_channel_wait_seconds"]

    /// A reporter sending into `factory`.
    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// Sends what changed since the previous report.
    public func report(_ statistics: GraphStatistics?, service: ServiceStatistics? = nil) {
        previous.withLock { previous in
            if let statistics { reportGraph(statistics, since: previous.graph) }
            if let service { reportService(service, since: previous.service) }
            if statistics != nil { previous.graph = statistics }
            if service != nil { previous.service = service }
        }
    }

    private func reportGraph(_ now: GraphStatistics, since before: GraphStatistics?) {
        for node in now.nodes {
            let old = before?.nodes.first { $0.index == node.index }
            let labels = [("node", node.name), ("worker", "\(node.worker)")]
            count("actorgraph_executions_total", labels, node.executions, old?.executions)
            count("actorgraph_failures_total", labels, node.failures, old?.failures)
            count("actorgraph_skipped_total", labels, node.skipped, old?.skipped)
            record("actorgraph_stage_seconds", labels, node.stageTime, old?.stageTime)
        }
        for (i, channel) in now.channels.enumerated() {
            let old = before.flatMap { i < $0.channels.count ? $0.channels[i] : nil }
            let labels = [("producer", channel.producer), ("node", channel.consumer), ("worker", "\(channel.worker)")]
            record("actorgraph_channel_wait_seconds", labels, channel.wait, old?.wait)
            if !channel.occupancy.isEmpty {
                for (quantile, p) in [("0.5", 50.0), ("0.99", 99.0)] {
                    Gauge(
                        label: "actorgraph_ring_occupancy",
                        dimensions: labels + [("quantile", quantile)],
                        factory: factory
                    )
                    .record(Double(channel.occupancy.percentile(p)))
                }
            }
        }
        for worker in now.workers {
            let old = before?.workers.first { $0.index == worker.index }
            let labels = [("worker", "\(worker.index)")]
            count("actorgraph_worker_parks_total", labels, worker.parks, old?.parks)
            count("actorgraph_worker_wakeups_total", labels, worker.wakeUps, old?.wakeUps)
            let parked = worker.parkedNanoseconds &- (old?.parkedNanoseconds ?? 0)
            if parked > 0 {
                FloatingPointCounter(
                    label: "actorgraph_worker_parked_seconds_total",
                    dimensions: labels,
                    factory: factory
                )
                .increment(by: Double(parked) / 1e9)
            }
        }
    }

    private func reportService(_ now: ServiceStatistics, since before: ServiceStatistics?) {
        let counters: [(String, KeyPath<ServiceStatistics, Int>)] = [
            ("received", \.received), ("admitted", \.admitted), ("rejected_malformed", \.rejectedMalformed),
            ("rejected_oversized", \.rejectedOversized), ("replied", \.replied),
            ("failed_executions", \.failedExecutions),
            ("send_errors", \.sendErrors), ("receive_errors", \.receiveErrors),
            ("backpressure_stalls", \.backPressureStalls),
            ("ignored_while_stopping", \.ignoredWhileStopping),
        ]
        for (name, path) in counters {
            count(
                "actorgraph_udp_\(name)_total",
                [],
                UInt64(max(0, now[keyPath: path])),
                before.map { UInt64(max(0, $0[keyPath: path])) }
            )
        }
        Gauge(label: "actorgraph_udp_in_flight", dimensions: [], factory: factory).record(Double(now.inFlight))
    }

    /// Increments (creating on first use) the counter by the change since the last report.
    private func count(_ label: String, _ labels: [(String, String)], _ now: UInt64, _ before: UInt64?) {
        let counter = Counter(label: label, dimensions: labels, factory: factory)
        let delta = now &- min(now, before ?? 0)
        if delta > 0 { counter.increment(by: Int64(clamping: delta)) }
    }

    /// Records each sample added to `now` since `before` into the timer, at its bucket's middle.
    private func record(
        _ label: String,
        _ labels: [(String, String)],
        _ now: LatencyHistogram,
        _ before: LatencyHistogram?
    ) {
        let timer = Timer(label: label, dimensions: labels, factory: factory)
        for (i, n) in now.buckets.enumerated() where n > 0 {
            let old = before.map { i < $0.buckets.count ? $0.buckets[i] : 0 } ?? 0
            guard n > old else { continue }
            let width = LatencyHistogram.bucketLowerBound(i + 1) &- LatencyHistogram.bucketLowerBound(i)
            let value = Int64(clamping: LatencyHistogram.bucketLowerBound(i) &+ width / 2)
            for _ in 0..<(n - old) { timer.recordNanoseconds(value) }
        }
    }
}
