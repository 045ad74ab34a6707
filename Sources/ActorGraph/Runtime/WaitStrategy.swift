import ActorGraphPlatform
import Synchronization

/// How a thread with nothing to do waits: a worker with no ready execution, a caller waiting for
/// its result or for a free slot (the LMAX Disruptor's wait strategies, plus a phased adaptive one).
public enum WaitStrategy: Sendable, Equatable, CaseIterable {
    /// Spin with the `pause` hint and never park: the lowest latency, a whole CPU per waiting thread
    /// even when idle. Only for threads that own their CPU.
    case busySpin
    /// Spin briefly, then `sched_yield` on every empty poll, never park: other runnable threads on
    /// the CPU get it at once, an idle CPU still burns.
    case yielding
    /// Park (futex / io_uring futex-wait) on the first empty poll: no CPU while idle, a wake-up
    /// (~12 µs here) per hand-off.
    case blocking
    /// Spin while the CPUs are not oversubscribed; yield when more threads want to spin than there
    /// are effective CPUs or the thread was descheduled; park when spinning would burn a CPU quota
    /// (or the cgroup was throttled), and always after `spinTime` of idleness. Moves back as soon as
    /// the contention is gone. The default.
    case adaptive
}

/// The process-wide picture adaptive waits consult: threads that want a CPU, the CPUs the process
/// may use, and whether its cgroup was throttled recently.
///
/// Written rarely (a worker's idle park and wake, a caller's long wait, one `cpu.stat` read per
/// 10 ms at most while someone is idle), read by idle threads only: the busy hot path never touches it.
final class Contention: Sendable {
    /// The one instance: spinning threads of every engine in the process compete for the same CPUs.
    static let shared = Contention()

    /// Workers not parked for idleness (a worker parked only because of contention still counts).
    let activeWorkers = Atomic<Int>(0)
    /// Callers inside a wait that outlasted a short spin.
    let waitingCallers = Atomic<Int>(0)
    /// Effective CPUs × 1000 (the quota's fraction kept).
    let effectiveMilliCPUs = Atomic<Int>(0)
    /// Whether a cgroup quota, not the affinity mask, limits the process.
    let quotaLimited = Atomic<Bool>(false)
    /// Monotonic time until which the process counts as throttled (0: not).
    let throttledUntil = Atomic<UInt64>(0)
    /// Next monotonic time `cpu.stat` may be read; `UInt64.max` when there is no quota to watch.
    let nextThrottleRead = Atomic<UInt64>(UInt64.max)
    /// Whether the last verdict was not `.quiet`: lets a new wait skip its first spin phase.
    /// Stored only when it changes (read by idle threads, written rarely).
    let contendedHint = Atomic<Bool>(false)
    /// Throttle events seen so far (diagnostics).
    let throttleEvents = Atomic<Int>(0)
    /// Whether more threads were runnable on the whole machine than it has CPUs, at the last look
    /// (``machineCrowded(now:)``), and when the next look may happen.
    private let machineCrowdedFlag = Atomic<Bool>(false)
    private let nextMachineRead = Atomic<UInt64>(0)
    static let machineReadInterval: UInt64 = 100_000
    /// The watched `cpu.stat` and the last `nr_throttled` read from it.
    private let throttleSource = Mutex<(path: String?, throttled: UInt64)>((nil, 0))

    /// How often `cpu.stat` is read at most while some thread is idle.
    static let throttleReadInterval: UInt64 = 10_000_000
    /// How long one observed throttle keeps threads parking instead of spinning.
    static let throttlePressure: UInt64 = 250_000_000

    private init() {
        update(EffectiveCPUs(affinity: CPU.allowedCPUs().count, quota: nil), cpuStatPath: nil)
    }

    /// Installs what the compiler measured (called for every compile: the process may have moved cgroups).
    func update(_ cpus: EffectiveCPUs, cpuStatPath: String?) {
        effectiveMilliCPUs.store(max(1, Int((cpus.cpus * 1000).rounded())), ordering: .relaxed)
        quotaLimited.store(cpus.isQuotaLimited, ordering: .relaxed)
        let watch = cpus.quota != nil ? cpuStatPath : nil
        let baseline = watch.flatMap { CgroupCPU.readThrottling($0) }?.throttledPeriods ?? 0
        throttleSource.withLock { $0 = (watch, baseline) }
        throttledUntil.store(0, ordering: .relaxed)
        nextThrottleRead.store(watch == nil ? UInt64.max : 0, ordering: .relaxed)
    }

    /// What an idle thread should do now.
    enum Verdict { case quiet, crowded, overBudget }

    /// Compares the threads wanting a CPU (active workers + waiting callers, at least one caller
    /// assumed) with the effective CPUs, and looks at the throttle state.
    func verdict(now: UInt64) -> Verdict {
        let verdict = evaluate(now: now)
        let contended = verdict != .quiet
        if contendedHint.load(ordering: .relaxed) != contended { contendedHint.store(contended, ordering: .relaxed) }
        return verdict
    }

    private func evaluate(now: UInt64) -> Verdict {
        if now >= nextThrottleRead.load(ordering: .relaxed) { pollThrottling(now: now) }
        if throttledUntil.load(ordering: .relaxed) > now { return .overBudget }
        let threads = activeWorkers.load(ordering: .relaxed) + max(1, waitingCallers.load(ordering: .relaxed))
        guard threads &* 1000 > effectiveMilliCPUs.load(ordering: .relaxed) else { return .quiet }
        // Yielding hands the CPU to a peer only if one is runnable there; under a quota it still
        // burns the shared budget, so parking is the only way to stay under it.
        return quotaLimited.load(ordering: .relaxed) ? .overBudget : .crowded
    }

    /// Whether more threads are runnable on the whole machine (every process) than it has CPUs:
    /// a spinning thread then holds a CPU another process's thread is waiting for — e.g. a piece
    /// of the same graph on this machine — and that thread waits a scheduler slice. Read at most
    /// every ``machineReadInterval`` by whichever thread asks (one `pread` of `/proc/loadavg`).
    func machineCrowded(now: UInt64) -> Bool {
        let due = nextMachineRead.load(ordering: .relaxed)
        if now >= due,
            nextMachineRead.compareExchange(
                expected: due,
                desired: now &+ Contention.machineReadInterval,
                ordering: .relaxed
            ).exchanged
        {
            let cpus = max(1, effectiveMilliCPUs.load(ordering: .relaxed) / 1000)
            machineCrowdedFlag.store((SystemLoad.runnableThreads() ?? 0) > cpus, ordering: .relaxed)
        }
        return machineCrowdedFlag.load(ordering: .relaxed)
    }

    /// Reads `cpu.stat` (one thread wins the slot, the others carry on): throttled periods that grew
    /// since the last read put the process under pressure for a while.
    private func pollThrottling(now: UInt64) {
        let due = nextThrottleRead.load(ordering: .relaxed)
        guard now >= due,
            nextThrottleRead.compareExchange(
                expected: due,
                desired: now &+ Contention.throttleReadInterval,
                ordering: .relaxed
            ).exchanged
        else { return }
        let grew: Bool? = throttleSource.withLockIfAvailable { source in
            guard let path = source.path, let stat = CgroupCPU.readThrottling(path) else { return false }
            defer { source.throttled = stat.throttledPeriods }
            return stat.throttledPeriods > source.throttled
        }
        if grew == true {
            throttleEvents.add(1, ordering: .relaxed)
            throttledUntil.store(now &+ Contention.throttlePressure, ordering: .relaxed)
        }
    }
}

/// One waiting thread's phased back-off (a value on its stack): spin → yield → park, chosen by its
/// ``WaitStrategy`` and, for `.adaptive`, by ``Contention``.
///
/// Protocol for the owner: call ``idle()`` after every empty poll and do what it answers
/// (`.retry`: poll again; `.park`: run the park protocol, which re-checks before sleeping, so the
/// back-off can never lose a wake-up); call ``progressed()`` after useful work and ``finish()``
/// when the wait ends. The busy path (progress every poll) costs two stores.
struct Backoff {
    enum Action { case retry, park }
    enum Role { case worker, caller }
    /// `spin`: pause and poll; `yield`: `sched_yield` each poll; `share`: under a budget, yield
    /// while a peer on this CPU takes it, else park.
    private enum Mode { case spin, yield, share }

    let strategy: WaitStrategy
    let role: Role
    /// Empty polls before an idle park may happen.
    let spins: Int
    /// Idleness before an idle park may happen.
    let spinNanoseconds: UInt64
    /// Empty polls since the last progress.
    private(set) var polls = 0
    private var idleSince: UInt64 = 0
    private var lastCheck: UInt64 = 0
    private var mode = Mode.spin
    /// Until when a descheduling keeps this thread yielding.
    private var descheduledUntil: UInt64 = 0
    /// Consecutive share-mode yields that came straight back.
    private var quickYields = 0
    /// Whether this thread is in ``Contention``'s counts.
    private var counted = false

    /// Adaptive threads re-evaluate every this many empty polls while spinning (power of two).
    static let checkInterval = 128
    /// The empty poll at which a spinning thread first looks at ``Contention/contendedHint``.
    static let hintPoll = 16
    /// A gap this long between two checks means the thread lost its CPU.
    static let descheduledGap: UInt64 = 200_000
    /// How long a descheduling keeps the thread yielding.
    static let descheduledHold: UInt64 = 2_000_000
    /// How long an idle thread yields before it parks (while contended).
    static let yieldNanoseconds: UInt64 = 50_000
    /// A `sched_yield` that comes back sooner than this found nobody to run: the CPU stayed ours.
    static let productiveYield: UInt64 = 1_000
    /// Polls the `.yielding` strategy spins before it yields (the Disruptor's 100).
    static let yieldingSpins = 100

    /// A worker whose segments callers may run while it is parked (``CallerTakeover``): such a
    /// worker parks as soon as it finds it lost its CPU while idle.
    let parksWhenDescheduled: Bool
    /// A thread waiting on another machine (an edge worker, a caller of a graph spanning hosts):
    /// it parks instead of spinning while the whole machine has more runnable threads than CPUs
    /// (``Contention/machineCrowded(now:)``): what it waits for may be a thread of another process
    /// here that needs the CPU it would spin on.
    let watchesMachine: Bool

    init(policy: IdlePolicy, role: Role, parksWhenDescheduled: Bool = false, watchesMachine: Bool = false) {
        strategy = policy.strategy
        self.role = role
        self.parksWhenDescheduled = parksWhenDescheduled
        self.watchesMachine = watchesMachine
        spins = role == .worker ? policy.workerSpins : policy.callerSpins
        spinNanoseconds = UInt64(max(0, policy.spinTime.nanoseconds))
        if role == .worker { register() }
    }

    /// Useful work happened: the next empty poll starts a new idle period (the mode is kept).
    @inline(__always)
    mutating func progressed() {
        polls = 0
        idleSince = 0
        lastCheck = 0
        if !counted { register() }
    }

    /// The wait is over (a caller got its result, a worker stops): leaves the counts.
    mutating func finish() {
        if counted { unregister() }
    }

    /// One empty poll happened: what to do next.
    @inline(__always)
    mutating func idle() -> Action {
        polls &+= 1
        if strategy == .adaptive && mode == .spin && polls & (Backoff.checkInterval - 1) != 0 {
            // A short wait never gets here twice; a longer one looks at the shared hint once, early.
            if polls == Backoff.hintPoll && Contention.shared.contendedHint.load(ordering: .relaxed) {
                return adaptive()
            }
            CPU.relax()
            return .retry
        }
        return slowIdle()
    }

    private mutating func slowIdle() -> Action {
        switch strategy {
        case .busySpin:
            CPU.relax()
            return .retry
        case .yielding:
            if polls < Backoff.yieldingSpins { CPU.relax() } else { CPU.yield() }
            return .retry
        case .blocking:
            return .park
        case .adaptive:
            return adaptive()
        }
    }

    private mutating func adaptive() -> Action {
        // In yield mode re-evaluate every 16 yields; in share mode on every call.
        if mode == .yield && polls & 15 != 0 {
            CPU.yield()
            return .retry
        }
        let now = MonotonicClock.now()
        if idleSince == 0 { idleSince = now }
        if role == .caller && !counted { register() }
        if mode == .spin && lastCheck != 0 && now &- lastCheck > Backoff.descheduledGap {
            descheduledUntil = now &+ Backoff.descheduledHold
        }
        lastCheck = now
        // An idle worker that lost its CPU to another thread parks at once when callers can take
        // it over (CallerTakeover.swift): spinning or yielding there keeps it runnable, so the next
        // execution would wait for the other tenant's slice (milliseconds beside a busy
        // neighbour), while a parked one is run by the caller itself. A worker nobody can take
        // over keeps yielding: a wake-up from a park costs it 20–150 µs per execution here.
        if parksWhenDescheduled && now < descheduledUntil { return .park }
        if watchesMachine && Contention.shared.machineCrowded(now: now) { return .park }
        // While spinning: `spins` polls *and* `spinTime`; once yielding or parking, the time alone.
        let idleLongEnough = (mode != .spin || polls >= spins) && now &- idleSince >= spinNanoseconds
        let verdict = Contention.shared.verdict(now: now)
        if idleLongEnough {
            // Idle for real: sleep, and stop counting as a thread that wants a CPU.
            if counted { unregister() }
            mode = verdict == .quiet ? .spin : (verdict == .crowded ? .yield : .share)
            return .park
        }
        // Phased back-off: a thread that has yielded for `yieldNanoseconds` without work parks (and
        // stays counted: work is coming, it just should not hold a run queue slot meanwhile). Under
        // heavy competition a parked thread is woken and preempts promptly, a yielding one waits
        // behind every other runnable task's slice.
        if mode == .yield && now &- idleSince >= min(spinNanoseconds, Backoff.yieldNanoseconds) && verdict != .quiet {
            return .park
        }
        switch verdict {
        case .overBudget:
            // Spinning, or yielding alone on a CPU, burns the shared budget: yield only while a
            // yield hands the CPU to a peer there (it takes a while to come back); park as soon as
            // one returns at once.
            mode = .share
            CPU.yield()
            if MonotonicClock.now() &- now >= Backoff.productiveYield {
                quickYields = 0
                return .retry
            }
            // Two in a row: a peer in transit (just woken) gets one more chance before we sleep.
            quickYields &+= 1
            if quickYields < 2 { return .retry }
            quickYields = 0
            return .park
        case .crowded:
            mode = .yield
        case .quiet:
            mode = now < descheduledUntil ? .yield : .spin
        }
        if mode == .yield { CPU.yield() } else { CPU.relax() }
        return .retry
    }

    private mutating func register() {
        counted = true
        if role == .worker {
            Contention.shared.activeWorkers.add(1, ordering: .relaxed)
        } else {
            Contention.shared.waitingCallers.add(1, ordering: .relaxed)
        }
    }

    private mutating func unregister() {
        counted = false
        if role == .worker {
            Contention.shared.activeWorkers.subtract(1, ordering: .relaxed)
        } else {
            Contention.shared.waitingCallers.subtract(1, ordering: .relaxed)
        }
    }
}
