import ActorGraphPlatform
import Synchronization

/// Where a pinned worker may run: its own CPU while traffic is dense, the callers' CPUs while it
/// sleeps through gaps.
///
/// Why: a worker parked on its own CPU leaves that vCPU halted; the wake-up that ends the park is
/// an IPI to a halted vCPU, which the hypervisor turns into 20–150 µs here (platform notes). So a
/// worker *floats* when it parks: its affinity becomes the process's CPUs that no worker is pinned
/// to — where callers run — and the kernel moves it there before it sleeps. Its wake-up then lands
/// on the waker's own CPU: a local wake-up, like two unpinned threads on a semaphore pair. (Allowed
/// on every CPU, the scheduler still woke it on its old, halted CPU about one time in five: 33–39 µs
/// instead of 2–5 µs, `perf sched` of idle.echo.20ms in process mode.) Where workers own every CPU,
/// it floats over all of them. It *pins* again once traffic is dense enough that it would rather
/// spin: after ``shortParksToPin`` parks in a row that each ended, by a doorbell, within the spin time.
///
/// While floating the worker parks as soon as it finds nothing to do (it may be sharing the
/// waker's CPU with the caller waiting for its result), and parks on a plain futex unless it has
/// I/O on its ring: an io_uring futex-wait completes through task work, a longer path that measured
/// 1.5–3× slower to wake here.
///
/// Owned by the worker's thread: only it reads or writes this state, and the affinity calls act on
/// the calling thread.
struct WorkerAffinity {
    /// The worker's own CPU; `nil` for a worker that floats anyway (more workers than CPUs).
    let pinnedCPU: Int?
    /// The CPUs a floating worker may run on: those the process allowed when the engine was built,
    /// less those the plan pins workers to (all of them when that leaves none).
    let floatCPUs: [Int32]
    /// Whether floating applies at all: pinned, more than one CPU to float over, a strategy that parks.
    let enabled: Bool
    /// Whether the worker waits for dense traffic to pin again (strategies that spin before parking);
    /// a `.blocking` worker pays a wake-up per hand-off anyway and stays floating.
    let pinsAgain: Bool
    /// Idleness a spinning worker tolerates before parking (``IdlePolicy/spinTime``): a park shorter
    /// than this would have been a spin.
    let shortParkNanoseconds: UInt64
    private(set) var isFloating = false
    private var shortParksInARow = 0
    /// This worker's thread id, read on its first float (the struct is built on another thread).
    private var threadID: Int32 = 0

    /// Dense traffic: this many short doorbell parks in a row pin the worker again.
    static let shortParksToPin = 4

    init(pinnedCPU: Int?, allowedCPUs: [Int], workerCPUs: Set<Int>, policy: IdlePolicy) {
        var cpus = allowedCPUs.filter { !workerCPUs.contains($0) }
        if cpus.isEmpty {
            cpus = allowedCPUs
            if let pinnedCPU, !cpus.contains(pinnedCPU) { cpus.append(pinnedCPU) }
        }
        self.init(pinnedCPU: pinnedCPU, floatCPUs: cpus.sorted().map(Int32.init), policy: policy)
    }

    private init(pinnedCPU: Int?, floatCPUs: [Int32], policy: IdlePolicy) {
        self.pinnedCPU = pinnedCPU
        self.floatCPUs = floatCPUs
        if let pinnedCPU {
            enabled = floatCPUs != [Int32(pinnedCPU)] && policy.strategy != .busySpin && policy.strategy != .yielding
        } else {
            enabled = false
        }
        pinsAgain = policy.strategy != .blocking
        shortParkNanoseconds = UInt64(max(0, policy.spinTime.nanoseconds))
    }

    /// The same CPUs under `policy` (a worker's effective policy differs from the compiled one when
    /// it has I/O attached); not floating.
    func with(policy: IdlePolicy) -> WorkerAffinity {
        WorkerAffinity(pinnedCPU: pinnedCPU, floatCPUs: floatCPUs, policy: policy)
    }

    /// Before a park: lets the thread run on any of ``floatCPUs`` (one system call, once per float).
    /// Callers that ring it may then narrow it to their own CPU (``WakeSteering``).
    mutating func floatBeforePark(announcingOn parkWord: UnsafeMutablePointer<Atomic<UInt32>>) {
        guard enabled, !isFloating else { return }
        if CPU.setCurrentThreadAffinity(floatCPUs) {
            isFloating = true
            shortParksInARow = 0
            if threadID == 0 { threadID = CPU.currentThreadID }
            WakeSteering.announceFloating(parkWord, threadID: threadID)
        }
    }

    /// After a park of `nanoseconds` that a doorbell (or an I/O completion) ended or not: pins the
    /// thread again once traffic is dense.
    mutating func noteWake(
        parkedFor nanoseconds: UInt64,
        doorbell: Bool,
        announcingOn parkWord: UnsafeMutablePointer<Atomic<UInt32>>
    ) {
        guard isFloating, pinsAgain else { return }
        guard doorbell, nanoseconds < shortParkNanoseconds else {
            shortParksInARow = 0
            return
        }
        shortParksInARow &+= 1
        if shortParksInARow >= WorkerAffinity.shortParksToPin, let pinnedCPU {
            // Callers stop steering first, so that none narrows the thread after it pinned.
            WakeSteering.announcePinned(parkWord)
            if CPU.pinCurrentThread(to: pinnedCPU) {
                isFloating = false
                shortParksInARow = 0
            } else {
                WakeSteering.announceFloating(parkWord, threadID: threadID)
            }
        }
    }
}
