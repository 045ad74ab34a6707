import ActorGraph
import Prometheus

/// A Prometheus registry fed by a ``StatisticsReporter``: ``render(_:service:)`` reports the
/// latest snapshot and returns the text exposition format (version 0.0.4) for a scrape.
public final class PrometheusExposition: Sendable {
    /// The swift-prometheus registry holding the metrics.
    public let registry: PrometheusCollectorRegistry
    /// The reporter writing into it through swift-metrics.
    public let reporter: StatisticsReporter

    /// A fresh registry; timers get buckets from 100 ns to 1 s (stage times are sub-microsecond to
    /// milliseconds, far below swift-prometheus's default 5 ms first bucket).
    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let buckets: [Duration] = [
            .nanoseconds(100), .nanoseconds(250), .nanoseconds(500), .microseconds(1),
            .microseconds(2), .microseconds(5), .microseconds(10), .microseconds(25),
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
            .milliseconds(1), .milliseconds(10), .milliseconds(100), .seconds(1),
        ]
        for label in StatisticsReporter.timerLabels { factory.durationHistogramBuckets[label] = buckets }
        reporter = StatisticsReporter(factory: factory)
    }

    /// Reports `statistics` (and `service`) and returns the registry's text exposition.
    public func render(_ statistics: GraphStatistics?, service: ServiceStatistics? = nil) -> String {
        reporter.report(statistics, service: service)
        return registry.emitToString()
    }
}
