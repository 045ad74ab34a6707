import Synchronization

/// Fixed-bucket log-linear histogram geometry: values below 8 have a bucket each; above, every
/// power of two is split in 8 equal buckets (relative error at most 1/16 from a bucket's middle),
/// up to 2^40 (18 minutes in nanoseconds; larger values land in the last bucket).
///
/// The recording side (``record(_:into:)``) is a handful of integer instructions and one relaxed
/// load and store of a single-writer counter: no allocation, no read-modify-write, no lock.
enum LogBuckets {
    static let subBits = 3
    static let subCount = 1 << subBits
    static let maxExponent = 40
    /// Buckets per histogram: 8 exact ones, then 8 per power of two from 2^3 to 2^40.
    static let count = subCount + (maxExponent - subBits + 1) * subCount

    /// The bucket of `value`.
    @inline(__always)
    static func index(_ value: UInt64) -> Int {
        if value < UInt64(subCount) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount
        if exponent > maxExponent { return count - 1 }
        let sub = Int(truncatingIfNeeded: value >> UInt64(exponent - subBits)) & (subCount - 1)
        return (exponent - subBits + 1) << subBits | sub
    }

    /// The smallest value of bucket `index`.
    static func lowerBound(_ index: Int) -> UInt64 {
        if index < subCount { return UInt64(index) }
        let exponent = (index >> subBits) + subBits - 1
        let sub = UInt64(index & (subCount - 1))
        return (UInt64(subCount) + sub) << UInt64(exponent - subBits)
    }

    /// The width of bucket `index`.
    static func width(_ index: Int) -> UInt64 {
        if index < subCount { return 1 }
        return 1 << UInt64((index >> subBits) - 1)
    }

    /// Adds one `value` to the histogram whose buckets start at `buckets`, and `value` to `sum`.
    /// Single writer: a relaxed load and store each (readers on other threads see whole words).
    @inline(__always)
    static func record(
        _ value: UInt64,
        into buckets: UnsafeMutablePointer<Atomic<UInt64>>,
        sum: UnsafeMutablePointer<Atomic<UInt64>>
    ) {
        let bucket = buckets + index(value)
        bucket.pointee.store(bucket.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        sum.pointee.store(sum.pointee.load(ordering: .relaxed) &+ value, ordering: .relaxed)
    }
}

/// A snapshot of a log-linear histogram of nanoseconds (or of counts, for ring occupancy):
/// fixed buckets, 8 per power of two, so percentiles are within about 6 % of the recorded values.
/// Snapshots of several workers merge with ``merge(_:)``.
public struct LatencyHistogram: Sendable, Equatable {
    /// Samples per bucket (see ``bucketLowerBound(_:)``); empty when nothing was recorded.
    public private(set) var buckets: [UInt64]
    /// Samples recorded.
    public private(set) var count: UInt64
    /// The sum of the samples (for the mean and for totals).
    public private(set) var sum: UInt64

    /// An empty histogram.
    public init() {
        buckets = []
        count = 0
        sum = 0
    }

    /// A histogram from per-bucket counts (indexed like ``bucketLowerBound(_:)``) and their sum.
    public init(buckets: [UInt64], sum: UInt64) {
        self.buckets = buckets
        self.count = buckets.reduce(0, &+)
        self.sum = sum
    }

    /// Reads a live histogram (relaxed loads: a consistent-enough picture while it is being written).
    init(reading pointer: UnsafeMutablePointer<Atomic<UInt64>>, sum: UnsafeMutablePointer<Atomic<UInt64>>) {
        var buckets = [UInt64](repeating: 0, count: LogBuckets.count)
        for i in 0..<LogBuckets.count { buckets[i] = (pointer + i).pointee.load(ordering: .relaxed) }
        self.init(buckets: buckets, sum: sum.pointee.load(ordering: .relaxed))
    }

    /// Whether nothing was recorded.
    public var isEmpty: Bool { count == 0 }

    /// The mean sample, or 0 when empty.
    public var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }

    /// The value at percentile `p` (0–100): the middle of the bucket holding that rank; 0 when empty.
    public func percentile(_ p: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((p / 100 * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, n) in buckets.enumerated() where n > 0 {
            seen &+= n
            if seen >= rank { return LatencyHistogram.bucketLowerBound(i) + LogBuckets.width(i) / 2 }
        }
        return LatencyHistogram.bucketLowerBound(buckets.count - 1)
    }

    /// The median (``percentile(_:)`` 50).
    public var p50: UInt64 { percentile(50) }
    /// The 99th percentile.
    public var p99: UInt64 { percentile(99) }

    /// Adds `other`'s samples to this histogram.
    public mutating func merge(_ other: LatencyHistogram) {
        guard !other.isEmpty else { return }
        if buckets.isEmpty { buckets = [UInt64](repeating: 0, count: other.buckets.count) }
        for i in 0..<min(buckets.count, other.buckets.count) { buckets[i] &+= other.buckets[i] }
        count &+= other.count
        sum &+= other.sum
    }

    /// The smallest value counted in bucket `index`.
    public static func bucketLowerBound(_ index: Int) -> UInt64 { LogBuckets.lowerBound(index) }

    /// Buckets of every histogram.
    public static var bucketCount: Int { LogBuckets.count }
}
