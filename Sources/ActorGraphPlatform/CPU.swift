import CPlatformShims
import Glibc

/// Facts about the processors this process may run on, and the spin-loop hint.
public enum CPU {
    /// The number of CPUs online (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
    public static var onlineCount: Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// The CPUs in this thread's affinity mask, in ascending order.
    public static func allowedCPUs() -> [Int] {
        var buffer = [Int32](repeating: 0, count: 1024)
        let n = cplatform_allowed_cpus(&buffer, 1024)
        guard n > 0 else { return Array(0..<onlineCount) }
        return buffer[0..<Int(n)].map(Int.init)
    }

    /// Tells the processor the caller is in a spin loop (`pause` on x86).
    @inline(__always)
    public static func relax() { cplatform_cpu_relax() }

    /// The CPU the calling thread is running on right now, or `nil`.
    public static var current: Int? {
        let cpu = cplatform_current_cpu()
        return cpu < 0 ? nil : Int(cpu)
    }
}

/// A monotonic clock in nanoseconds, read through the vDSO (no system call).
public enum MonotonicClock {
    /// Nanoseconds since an arbitrary fixed point.
    @inline(__always)
    public static func now() -> UInt64 { cplatform_monotonic_ns() }
}
