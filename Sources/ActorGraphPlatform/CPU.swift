import CPlatformShims
import Glibc

/// Facts about the processors this process may run on, and the spin-loop hint.
package enum CPU {
    /// The number of CPUs online (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
    package static var onlineCount: Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// The CPUs in this thread's affinity mask, in ascending order.
    package static func allowedCPUs() -> [Int] {
        var buffer = [Int32](repeating: 0, count: 1024)
        let n = cplatform_allowed_cpus(&buffer, 1024)
        guard n > 0 else { return Array(0..<onlineCount) }
        return buffer[0..<Int(n)].map(Int.init)
    }

    /// Tells the processor the caller is in a spin loop (`pause` on x86).
    @inlinable @inline(__always)
    package static func relax() { cplatform_cpu_relax() }

    /// Offers this CPU to another runnable thread (`sched_yield`); returns at once when none waits.
    @inlinable @inline(__always)
    package static func yield() { sched_yield() }

    /// Pins the calling thread to `cpu` (`sched_setaffinity`); false when the kernel refused.
    @discardableResult
    package static func pinCurrentThread(to cpu: Int) -> Bool {
        cplatform_pin_current_thread(Int32(cpu)) == 0
    }

    /// Lets the calling thread run on any of `cpus` (`sched_setaffinity`); false when the kernel
    /// refused. Allocates nothing (a caller keeps the list).
    @discardableResult
    package static func setCurrentThreadAffinity(_ cpus: [Int32]) -> Bool {
        cpus.withUnsafeBufferPointer { cplatform_set_current_thread_affinity($0.baseAddress, Int32($0.count)) } == 0
    }

    /// Pins thread `threadID` (any process's, if this one may schedule it) to `cpu`
    /// (`sched_setaffinity`); false when the kernel refused. A sleeping thread is not moved: its
    /// next wake-up lands on `cpu`.
    @discardableResult
    package static func pinThread(_ threadID: Int32, to cpu: Int) -> Bool {
        cplatform_pin_thread(threadID, Int32(cpu)) == 0
    }

    /// The calling thread's id (`gettid`).
    package static var currentThreadID: Int32 { cplatform_current_thread_id() }

    /// The CPU the calling thread is running on right now, or `nil`.
    package static var current: Int? {
        let cpu = cplatform_current_cpu()
        return cpu < 0 ? nil : Int(cpu)
    }
}

extension CPU {
    /// Makes the calling thread's sleeps precise (timer slack of 1 ns instead of the default 50 µs).
    package static func usePreciseSleeps() { cplatform_set_timer_slack(1) }

    /// Sleeps until the monotonic clock reads `deadline` (nanoseconds, ``MonotonicClock``): sleeps
    /// while more than `spinWindow` remains, then spins the rest.
    package static func sleep(until deadline: UInt64, spinWindow: UInt64 = 20_000) {
        while true {
            let now = MonotonicClock.now()
            if now >= deadline { return }
            let remaining = deadline - now
            if remaining > spinWindow {
                var ts = timespec(
                    tv_sec: Int((remaining - spinWindow) / 1_000_000_000),
                    tv_nsec: Int((remaining - spinWindow) % 1_000_000_000)
                )
                nanosleep(&ts, nil)
            } else {
                relax()
            }
        }
    }
}

/// A monotonic clock in nanoseconds, read through the vDSO (no system call).
package enum MonotonicClock {
    /// Nanoseconds since an arbitrary fixed point.
    @inline(__always)
    package static func now() -> UInt64 { cplatform_monotonic_ns() }
}
