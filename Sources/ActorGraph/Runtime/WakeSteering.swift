import ActorGraphPlatform
import Synchronization

/// Lands a floating worker's wake-up on the CPU of the caller that rings it.
///
/// A parked worker floats over the callers' CPUs (``WorkerAffinity``), but the kernel picks the CPU
/// at wake-up time, and a futex wake is not a "sync" wake: with the waker's CPU busy (the waker is
/// running on it) it prefers an idle CPU — a halted vCPU here. An unpinned caller often sits on
/// the worker's own CPU, which the parked worker left idle: then every wake-up crossed to the float
/// CPU (`perf sched` of `idle.echo.150ms` in process mode: 17–34 µs of scheduling delay there, then
/// a migration back). So the caller that wins the ring (``Worker/wake(_:shared:steering:)``) first
/// narrows the worker's affinity to its own CPU (one `sched_setaffinity` on a sleeping thread:
/// nothing moves, its next wake-up lands there), then rings, then yields while it waits
/// (``ResultBoard/spin(until:yielding:)``): the worker runs at once on the caller's CPU, a local
/// wake-up like a thread woken by `sem_post`. Caller pinned to the worker's CPU, process mode, p50
/// after 1 / 20 / 150 ms of idle: 30–38 / 36–60 / 52–94 µs without, 5–16 / 17–30 / 36–49 µs with.
/// Only a blocking `execute` steers, and only with one head worker (``Sequencer/steersWake``).
///
/// The steering word sits on the park word's own cache line (offset 8), so the caller that rings
/// reads no other line: high 32 bits the worker's thread id while it floats (0 while pinned); low 32
/// bits one more than the CPU a caller last steered it to (0: none since it floated), with
/// ``steeringBit`` set while a caller's `sched_setaffinity` is in flight. A caller on the CPU the
/// worker was last steered to makes no system call at all.
///
/// Written by the worker (when it floats or pins again) and by ringing callers; read by callers.
/// A caller takes ``steeringBit`` by compare-and-swap before its system call and clears it after;
/// a worker about to pin itself again first waits for the bit to clear, then zeroes the word, then
/// pins — so a caller's narrowing can never land after the worker's pin and leave a worker that
/// believes itself pinned spinning on a caller's CPU.
enum WakeSteering {
    /// Set in the low word while a caller narrows the worker's affinity.
    static let steeringBit: UInt64 = 0x8000_0000
    static let markMask: UInt64 = 0x7FFF_FFFF

    /// The steering word on `parkWord`'s line.
    @inline(__always)
    static func word(_ parkWord: UnsafeMutablePointer<Atomic<UInt32>>) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (UnsafeMutableRawPointer(parkWord) + 8).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Worker side: it now floats over its float set; callers may steer thread `threadID`.
    static func announceFloating(_ parkWord: UnsafeMutablePointer<Atomic<UInt32>>, threadID: Int32) {
        word(parkWord).pointee.store(UInt64(UInt32(bitPattern: threadID)) << 32, ordering: .releasing)
    }

    /// Worker side, before it pins itself again: waits out a caller's narrowing in flight (one
    /// system call), then stops callers from steering.
    static func announcePinned(_ parkWord: UnsafeMutablePointer<Atomic<UInt32>>) {
        let steering = word(parkWord)
        while true {
            let current = steering.pointee.load(ordering: .acquiring)
            if current & steeringBit != 0 {
                CPU.yield()  // the caller may be preempted on this very CPU: let it finish
                continue
            }
            if steering.pointee.compareExchange(expected: current, desired: 0, ordering: .acquiringAndReleasing)
                .exchanged
            {
                return
            }
        }
    }

    /// Caller side, after winning the ring and before the futex wake: narrows a floating worker's
    /// affinity to this thread's CPU, unless it is there already or another caller is narrowing it.
    @inline(__always)
    static func steerToCaller(_ parkWord: UnsafeMutablePointer<Atomic<UInt32>>) {
        let steering = word(parkWord)
        let current = steering.pointee.load(ordering: .acquiring)
        guard current >> 32 != 0 else { return }
        steer(steering, current: current)
    }

    private static func steer(_ steering: UnsafeMutablePointer<Atomic<UInt64>>, current: UInt64) {
        guard current & steeringBit == 0, let cpu = CPU.current else { return }
        let mark = UInt64(UInt32(cpu) &+ 1) & markMask
        guard current & markMask != mark else { return }
        guard
            steering.pointee.compareExchange(
                expected: current,
                desired: current | steeringBit,
                ordering: .acquiringAndReleasing
            ).exchanged
        else { return }
        let threadID = Int32(bitPattern: UInt32(truncatingIfNeeded: current >> 32))
        let steered = CPU.pinThread(threadID, to: cpu)
        // Only this caller changes the word while the bit is set (the worker waits for it).
        steering.pointee.store((current & ~0xFFFF_FFFF) | (steered ? mark : 0), ordering: .releasing)
    }
}
