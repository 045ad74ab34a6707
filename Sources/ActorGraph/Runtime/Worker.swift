import ActorGraphPlatform
import Logging
import Synchronization

/// One pinned worker thread: runs its segments' static schedule in a loop, spins when idle, then
/// parks through its own io_uring (a futex-wait SQE on its park word) until a producer rings it.
/// While parked it floats over the process's CPUs, so that the wake-up lands on the waker's CPU,
/// and it pins itself again when traffic is dense (``WorkerAffinity``).
///
/// `@unchecked Sendable`: configured before its thread starts; afterwards its mutable state is touched
/// only by that thread, except its control block and park word (atomics, in the region).
final class Worker: @unchecked Sendable {
    let index: Int
    let runners: [SegmentRunner]
    /// 1 while the worker announces it is parked; producers CAS it to 0 and wake it (latched flag).
    /// 2 while a caller runs this worker's segments in its place (``CallerTakeover``).
    let parkWord: UnsafeMutablePointer<Atomic<UInt32>>
    let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    let idlePolicy: IdlePolicy
    let batchSize: Int
    let parkTimeoutNanoseconds: Int64
    let useIORing: Bool
    let numaNode: Int?
    /// I/O work on this worker's ring (sources and sinks at the graph's edges), installed before start.
    var attachment: RingAttachment?
    /// Whether callers may run this worker's segments while it is parked (``CallerTakeover``); set before start.
    var canBeTakenOver = false
    /// Whether this worker waits on other machines (an edge worker): see ``Backoff/watchesMachine``; set before start.
    var watchesMachine = false
    /// Each runner's next sequence when the worker last announced a park (written and read by the
    /// worker's thread only; preallocated, so parking allocates nothing).
    private let positionsAtPark: UnsafeMutableBufferPointer<Int>
    /// `runners`, unretained, in memory of its own, for the loop and the park: reading `runners`
    /// (an array in this object) retains its storage and each element (the array keeps them alive).
    private let runnerReferences: UnsafeMutableBufferPointer<Unmanaged<SegmentRunner>>
    /// The worker's control block in the region: how it parks and how often (diagnostics).
    let control: WorkerControl
    /// Park and wake with shared futexes (process mode: the word is in memory several processes map).
    let sharedFutex: Bool
    private static let parkTag: UInt64 = 0xA6_0000_0000_0001

    enum ParkMechanism: String {
        case ioUring = "io_uring futex-wait"
        case futex = "futex"
    }

    init(
        index: Int,
        runners: [SegmentRunner],
        parkWord: UnsafeMutablePointer<Atomic<UInt32>>,
        stopping: UnsafeMutablePointer<Atomic<UInt32>>,
        options: CompileOptions,
        numaNode: Int?,
        control: WorkerControl,
        sharedFutex: Bool,
        pinnedCPU: Int?,
        workerCPUs: Set<Int>
    ) {
        self.index = index
        self.runners = runners
        self.parkWord = parkWord
        self.stopping = stopping
        self.idlePolicy = options.idle
        self.batchSize = options.batchSize
        self.parkTimeoutNanoseconds = options.idle.parkTimeout.nanoseconds
        self.useIORing = options.useIORing
        self.numaNode = numaNode
        self.control = control
        self.sharedFutex = sharedFutex
        // Read on the building thread, before the worker's own thread pins itself.
        affinity = WorkerAffinity(
            pinnedCPU: pinnedCPU,
            allowedCPUs: CPU.allowedCPUs(),
            workerCPUs: workerCPUs,
            policy: options.idle
        )
        positionsAtPark = .allocate(capacity: max(1, runners.count))
        positionsAtPark.initialize(repeating: 0)
        runnerReferences = .allocate(capacity: runners.count)
        _ = runnerReferences.initialize(from: runners.lazy.map { Unmanaged.passUnretained($0) })
    }

    deinit {
        positionsAtPark.deallocate()
        runnerReferences.deallocate()
    }

    /// Wakes the worker owning `parkWord` if, and only if, it announced that it parked (and no
    /// caller has taken it over: then the caller rings it, if needed, when it gives it back).
    /// Wakes every waiter on the word: a worker can be waiting on it twice at once (its io_uring
    /// futex-wait still armed while it waits for a caller to give it back), and one wake-up given
    /// to the armed request alone would leave the thread asleep until its park timeout.
    /// `steering`: a caller that waits for the result lands the wake-up on its own CPU
    /// (``WakeSteering``).
    @inline(__always) @discardableResult
    static func wake(_ parkWord: UnsafeMutablePointer<Atomic<UInt32>>, shared: Bool, steering: Bool = false) -> Bool {
        guard parkWord.pointee.load(ordering: .sequentiallyConsistent) != 0 else { return false }
        if parkWord.pointee.compareExchange(expected: 1, desired: 0, ordering: .sequentiallyConsistent).exchanged {
            if steering { WakeSteering.steerToCaller(parkWord) }
            Futex.wake(futexWord(parkWord), count: Int32.max, shared: shared)
            return true
        }
        return false
    }

    /// The longest spin of a worker with I/O attached (see `run()`).
    static let ioSpinTime: Duration = .microseconds(50)
    /// The fewest empty polls of a worker with I/O attached before it may park (with ``ioSpinTime``).
    static let ioSpinPolls = 256

    /// The thread body.
    func run() {
        if let node = numaNode { NUMA.runOnNode(node) }
        let attachment = self.attachment
        var ring: IORing? = nil
        if attachment != nil {
            // A polling owner: cooperative task work, signalled through the ring's flags, not an IPI.
            ring = (try? IORing(entries: 256, flags: IORing.cooperativeFlags)) ?? (try? IORing(entries: 256))
        } else if useIORing && Worker.futexWaitSupported {
            ring = try? IORing(entries: 8)
        }
        // A worker with I/O on its ring parks on that ring whenever the kernel has futex-wait (its
        // completions and its doorbell both end the wait), even with `useIORing` off.
        let parksOnRing = ring != nil && (useIORing || attachment != nil) && Worker.futexWaitSupported
        control.parkMechanism.pointee.store(parksOnRing ? 1 : 0, ordering: .relaxed)
        if let ring, let attachment {
            attachment.start(ring: ring)
            attachmentRing = ring
        }
        var armed = false
        // A worker with I/O attached (a UDP service, a host's edges) waits on things outside the
        // engine: it spins at most `ioSpinTime`, then parks and floats (WorkerAffinity.swift), so a
        // peer on this machine that sleeps between requests is not crowded off a CPU by its spin
        // (serve.udp.1000 p99: 2.4 ms with a 1 ms spin, 0.1–0.2 ms with this). An edge worker's next
        // work is a network round trip away: with a 1 ms spin a remote echo on 2 CPUs took 1 ms.
        var policy = idlePolicy
        if attachment != nil {
            policy.spinTime = min(policy.spinTime, Worker.ioSpinTime)
            // The poll count must not outlast the time: one poll of a worker with I/O is ~50-100 ns,
            // so the default 20 000 polls kept it spinning 1-2 ms whatever `spinTime` said (serve at
            // 10 000 records/s: the worker never parked, and every reply woke the client's halted vCPU).
            policy.workerSpins = min(policy.workerSpins, Worker.ioSpinPolls)
            affinity = affinity.with(policy: policy)
        }
        var backoff = Backoff(
            policy: policy,
            role: .worker,
            parksWhenDescheduled: canBeTakenOver,
            watchesMachine: watchesMachine
        )
        // After a park that ended with nothing to do (its safety-net timeout), park again at once
        // instead of spinning for another `spinTime`: an idle worker costs a wake-up per timeout only.
        var reparkAtOnce = false
        let parkRing = parksOnRing ? ring : nil
        // The loop, with the ring's service passed in as a non-escaping closure: unwrapping the
        // optional ring and attachment on every iteration retained and released both per poll
        // (a uprobe on `swift_retain` during `load telematics`: most of the worker's retains).
        func loop(servicing service: (inout Bool) -> Bool) {
            while stopping.pointee.load(ordering: .relaxed) == 0 {
                var progressed = false
                for runner in runnerReferences {
                    let n = runner._withUnsafeGuaranteedRef { $0.runBatch(batchSize) }
                    if n > 0 { progressed = true }
                }
                if service(&armed) { progressed = true }
                if progressed {
                    backoff.progressed()
                    reparkAtOnce = false
                    continue
                }
                if reparkAtOnce {
                    reparkAtOnce = park(ring: parkRing, armed: &armed) == .timedOut
                    continue
                }
                if affinity.isFloating {
                    // Floating: what woke it is done, and the thread may share the waker's CPU
                    // with a caller waiting for that result: give the CPU back now
                    // (WorkerAffinity.swift). Parked for idleness: no longer a thread that
                    // wants a CPU (Contention).
                    backoff.finish()
                    reparkAtOnce = park(ring: parkRing, armed: &armed) == .timedOut
                    continue
                }
                // Spin, yield or park: the back-off decides (WaitStrategy.swift); parking re-checks.
                if backoff.idle() == .retry { continue }
                reparkAtOnce = park(ring: parkRing, armed: &armed) == .timedOut
            }
        }
        if let ring, let attachment {
            loop { armed in serviceRing(ring, attachment, armed: &armed) }
        } else {
            loop { _ in false }
        }
        backoff.finish()
        if let ring { attachment?.stop(ring: ring) }
        ring?.close()
    }

    /// Reaps I/O completions (a read of the completion queue in shared memory: no system call),
    /// lets the attachment do its work, and submits what it queued.
    private func serviceRing(_ ring: IORing, _ attachment: RingAttachment, armed: inout Bool) -> Bool {
        var progressed = false
        if ring.taskWorkPending { ring.runTaskWork() }
        ring.reapCompletions { completion in
            if completion.userData == Worker.parkTag {
                armed = false
            } else {
                attachment.handle(completion)
                progressed = true
            }
        }
        if attachment.poll() { progressed = true }
        if attachment.hasQueuedRequests {
            _ = try? ring.submit()
            attachment.didSubmit()
        }
        return progressed
    }

    private var attachmentRing: IORing?
    /// Pinned while traffic is dense, floating while parked through gaps (WorkerAffinity.swift);
    /// rebuilt by `run()` for a worker with I/O attached (its shorter spin).
    private var affinity: WorkerAffinity

    /// Where the worker records parks and wake-ups (``CompileOptions/statistics``); set before start.
    @exclusivity(unchecked) var statistics: WorkerStatisticsRecorder?

    /// How a park ended.
    enum ParkOutcome { case notParked, doorbell, timedOut }

    /// Announces the park, re-checks, and sleeps until a producer rings the park word, an I/O
    /// completion arrives (a worker with an attachment), shutdown, or the park timeout.
    @discardableResult
    private func park(ring: IORing?, armed: inout Bool) -> ParkOutcome {
        let parkedAt = MonotonicClock.now()
        var completions = false
        var reclaimed: Bool? = nil
        // Where each runner stands, read while this thread still owns them: once the park is
        // announced a caller may take the worker over and move them (CallerTakeover.swift), so the
        // re-check below reads input stamps only.
        for i in runnerReferences.indices {
            positionsAtPark[i] = runnerReferences[i]._withUnsafeGuaranteedRef { $0.next }
        }
        parkWord.pointee.store(1, ordering: .sequentiallyConsistent)
        // Re-check after announcing: a producer that published before seeing the flag is caught here.
        if stopping.pointee.load(ordering: .sequentiallyConsistent) != 0 || anyRunnerReadyAtParkPositions()
            || attachment?.hasWork == true
        {
            // Take the announcement back, unless a caller took this worker over meanwhile.
            _ = reclaimParkWord()
            return .notParked
        }
        control.parkCount.pointee.store(control.parkCount.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        affinity.floatBeforePark(announcingOn: parkWord)
        // Floating without I/O to watch: a plain futex wakes sooner than the ring's futex-wait.
        if let ring, attachment != nil || !affinity.isFloating {
            if !armed {
                armed = ring.prepareFutexWait(
                    on: futexWord(parkWord),
                    expected: 1,
                    userData: Worker.parkTag,
                    shared: sharedFutex
                )
            }
            // With the doorbell armed on the ring, the only other things that end the wait are this
            // ring's own completions; the timeout is a safety net (shutdown also rings the doorbell).
            _ = try? ring.submitAndWait(
                timeoutNanoseconds: armed ? parkTimeoutNanoseconds : min(parkTimeoutNanoseconds, 1_000_000)
            )
            // Awake before handling what arrived: a completion handled here (a datagram) publishes
            // into this worker's own input ring, and with the park still announced that publish
            // rang this very worker — a futex wake per request, which also completed the armed
            // futex-wait for the next park to submit again (`perf trace` of serve.udp.1000: 1 063
            // futex calls for 1 200 datagrams).
            reclaimed = reclaimParkWord()
            ring.reapCompletions { completion in
                if completion.userData == Worker.parkTag {
                    armed = false
                } else {
                    attachment?.handle(completion)
                    completions = true
                }
            }
        } else if let ioRing = attachmentRing {
            // No futex-wait on this kernel: the doorbell cannot end a wait on the ring, so poll it.
            _ = try? ioRing.submitAndWait(timeoutNanoseconds: min(parkTimeoutNanoseconds, 1_000_000))
        } else {
            _ = Futex.wait(
                on: futexWord(parkWord),
                expected: 1,
                timeoutNanoseconds: parkTimeoutNanoseconds,
                shared: sharedFutex
            )
        }
        // A producer (or shutdown) that rang the doorbell swapped the word back to 0.
        let doorbell = reclaimed ?? reclaimParkWord()
        let parked = MonotonicClock.now() &- parkedAt
        if let statistics { statistics.recordPark(nanoseconds: parked, doorbell: doorbell || completions) }
        affinity.noteWake(parkedFor: parked, doorbell: doorbell || completions, announcingOn: parkWord)
        return doorbell || completions ? .doorbell : .timedOut
    }

    /// Whether any runner's next execution (as of ``positionsAtPark``) has all its inputs published.
    private func anyRunnerReadyAtParkPositions() -> Bool {
        for i in runnerReferences.indices
        where runnerReferences[i]._withUnsafeGuaranteedRef({ $0.isReady(at: positionsAtPark[i]) }) {
            return true
        }
        return false
    }

    /// Ends a park: brings the park word back to 0 and says whether someone rang (it was 0
    /// already). Found taken over (2): a caller is running this worker's segments, so wait on the
    /// word until it gives them back (it stores 1, and rings if there is work or shutdown).
    private func reclaimParkWord() -> Bool {
        while true {
            let word = parkWord.pointee.load(ordering: .sequentiallyConsistent)
            switch word {
            case CallerTakeover.ParkWord.awake:
                return true
            case CallerTakeover.ParkWord.parked:
                if parkWord.pointee.compareExchange(
                    expected: word,
                    desired: CallerTakeover.ParkWord.awake,
                    ordering: .sequentiallyConsistent
                ).exchanged {
                    return false
                }
            default:
                _ = Futex.wait(
                    on: futexWord(parkWord),
                    expected: word,
                    timeoutNanoseconds: parkTimeoutNanoseconds,
                    shared: sharedFutex
                )
            }
        }
    }

    /// Whether this host lets workers park through io_uring; logged once when it does not.
    static let futexWaitSupported: Bool = {
        switch IORing.probe() {
        case .success:
            if IORing.supportsFutexWait() { return true }
            logger.notice("io_uring lacks IORING_OP_FUTEX_WAIT on this kernel: workers park on a plain futex")
            return false
        case .failure(let errno):
            logger.notice("io_uring unavailable (\(errno)): workers park on a plain futex")
            return false
        }
    }()
}

/// Work a worker does on its own io_uring besides parking: a source reading records into the graph,
/// a sink writing results out. All calls happen on the worker's thread.
protocol RingAttachment: AnyObject {
    /// Arms the first requests. Called once, on the worker thread, before the loop.
    func start(ring: IORing)
    /// Handles one completion of a request the attachment queued.
    func handle(_ completion: IORing.Completion)
    /// Does ready work (e.g. replies for newly published results). Returns whether it made progress.
    func poll() -> Bool
    /// Whether `poll` has work now (checked before parking).
    var hasWork: Bool { get }
    /// Whether requests were queued since the last submit.
    var hasQueuedRequests: Bool { get }
    /// Called after the worker submitted the queued requests.
    func didSubmit()
    /// Called once when the worker stops, before its ring closes.
    func stop(ring: IORing)
}

/// The engine's logger (swift-log): fallbacks and lifecycle notices, never the hot path.
let logger = Logger(label: "ActorGraph")
