import Histogram

/// Latency histograms: explicit bounds (1 ns … 60 s, 3 significant digits), so recording never
/// resizes or allocates. One histogram per measuring thread; merged, if ever, off the hot path.
@inlinable
public func makeLatencyHistogram() -> Histogram<UInt64> {
    Histogram<UInt64>(
        lowestDiscernibleValue: 1,
        highestTrackableValue: 60_000_000_000,
        numberOfSignificantValueDigits: .three
    )
}

/// The summary of one measured series.
public struct LatencyStats: Codable, Sendable {
    /// Samples recorded.
    public var count: UInt64
    /// Fastest sample, in nanoseconds.
    public var min: UInt64
    /// Median, in nanoseconds.
    public var p50: UInt64
    /// 90th percentile, in nanoseconds.
    public var p90: UInt64
    /// 99th percentile, in nanoseconds.
    public var p99: UInt64
    /// 99.9th percentile, in nanoseconds.
    public var p999: UInt64
    /// Slowest sample, in nanoseconds.
    public var max: UInt64
    /// Mean sample, in nanoseconds.
    public var mean: Double
    /// Executions per second over the measured loop (back-to-back: 1 / mean wall time per execution).
    public var throughputPerSecond: Double
    /// (percentile, nanoseconds) points of the distribution, for plots.
    public var distribution: [[Double]]

    /// Summarizes `h`; throughput is `executions` over `elapsedNanoseconds`.
    public init(histogram h: Histogram<UInt64>, executions: UInt64, elapsedNanoseconds: UInt64) {
        count = h.totalCount
        min = h.min
        p50 = h.valueAtPercentile(50)
        p90 = h.valueAtPercentile(90)
        p99 = h.valueAtPercentile(99)
        p999 = h.valueAtPercentile(99.9)
        max = h.max
        mean = h.mean
        throughputPerSecond = elapsedNanoseconds > 0 ? Double(executions) * 1e9 / Double(elapsedNanoseconds) : 0
        var points: [[Double]] = []
        for v in h.percentiles(ticksPerHalfDistance: 5) {
            points.append([v.percentileLevelIteratedTo, Double(v.value)])
            if v.percentileLevelIteratedTo >= 99.999 { break }
        }
        distribution = points
    }
}
