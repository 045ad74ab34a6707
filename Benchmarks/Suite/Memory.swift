import Glibc

/// Counts heap allocations in this process. The suite reads it before and after a measured loop.
///
/// `actorgraph bench` passes a counter backed by an interposed `malloc` family (every call counted,
/// including transient allocate/free pairs). Without one the suite reports allocations as not
/// measured: glibc's `mallinfo2` (not even exported by Swift's Glibc module) only sees *net* bytes
/// still in use and misses allocations freed within the loop.
public struct AllocationCounter: Sendable {
    /// How the count is obtained, printed with the results.
    public let method: String
    /// Allocation calls so far (monotonic).
    public let read: @Sendable () -> UInt64

    /// A counter described by `method` whose running count `read` returns.
    public init(method: String, read: @escaping @Sendable () -> UInt64) {
        self.method = method
        self.read = read
    }

    /// Whether the counter sees a 64-byte allocation: it must grow by at least one.
    public func selfCheck() -> Bool {
        let before = read()
        probeAllocation()
        return read() > before
    }
}

/// Allocates and frees 64 bytes through the Swift runtime (`swift_slowAlloc` → `malloc`).
@inline(never)
func probeAllocation() {
    let p = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
    p.storeBytes(of: 1, as: UInt64.self)
    withExtendedLifetime(p) {}
    p.deallocate()
}

/// Memory use of this process.
public enum MemoryStats {
    /// Peak resident set size of this process in bytes (`getrusage(RUSAGE_SELF).ru_maxrss`, KiB on Linux).
    public static func peakRSSBytes() -> Int {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return Int(usage.ru_maxrss) * 1024
    }
}
