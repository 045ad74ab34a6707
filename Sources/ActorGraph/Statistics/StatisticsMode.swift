/// Whether a compiled graph records per-stage statistics, and how often (``CompileOptions/statistics``).
///
/// Counts (executions, failures, parks, wake-ups) are exact. Times (inside each stage, waiting in
/// each channel) and ring occupancy are recorded for one execution in `every`: execution `k` is
/// sampled when `k` is a multiple of `every`, so every stage and channel samples the same executions.
public enum StatisticsMode: Sendable, Equatable, CustomStringConvertible {
    /// Record nothing (the default): the hot path pays one predicted branch per execution.
    case off
    /// Count everything and time one execution in `every` (rounded up to a power of two,
    /// between 1 and 65 536; values below 1 mean every execution).
    case sampled(every: Int)

    /// The recommended setting: times 1 execution in 16.
    public static let on = StatisticsMode.sampled(every: 16)

    /// The effective sampling interval (a power of two), or `nil` when off.
    public var sampleInterval: Int? {
        switch self {
        case .off: return nil
        case .sampled(let every):
            var interval = 1
            while interval < every && interval < 65_536 { interval <<= 1 }
            return interval
        }
    }

    /// `off` or `1/N`.
    public var description: String {
        sampleInterval.map { "1/\($0)" } ?? "off"
    }
}
