import ActorGraphPlatform
import Glibc
import Synchronization

/// One thread, off the hot path, that watches the workers of a compiled graph.
///
/// Process mode: it spawns the worker children (`posix_spawn` of the worker executable with the
/// memfd and the notification eventfd inherited), waits for each one's handshake, and then sleeps
/// in `poll` on a pidfd per child, the notification eventfd and a stop eventfd. When a child dies it
/// reaps it (`waitid(P_PIDFD)`, no zombie) and, the child being dead, acts as the producer of that
/// worker's rings: every sequence the worker had not published up to the claimed frontier gets a
/// failure (``ExecutionError/workerCrashed(worker:reason:)``), downstream segments forward it and
/// waiters are answered; then it restarts the worker at that frontier under the restart policy.
/// Both modes, with a stage time limit: it samples each worker's progress counter and current node.
final class Supervisor: @unchecked Sendable {
    // @unchecked Sendable: `children`, `watches`, `restartTimes` and `stuck` are touched only by the
    // supervisor thread (spawning, watching, stopping); other threads read `statistics` (a Mutex) and
    // call `stop`, which joins the thread.
    let plan: ExecutionPlan
    let options: CompileOptions
    let wiring: EngineWiring
    let board: ResultBoard
    let region: SharedMemoryRegion
    let isolated: Bool
    let stopEvent: EventFD
    let notifyEvent: EventFD?
    var children: [ChildProcess?] = []
    /// Standby processes (``ProcessOptions/standbyWorkers``), one per worker, and how often each died.
    var spares: [ChildProcess?] = []
    var spareFailures: [Int] = []
    var thread: PinnedThread?
    var stopped = false
    /// Start-up outcome, set by the supervisor thread: 0 pending, 1 ready, 2 failed (`startupError`).
    let startup: UnsafeMutablePointer<Atomic<UInt32>> = {
        let p = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        p.initialize(to: Atomic(0))
        return p
    }()
    let startupError = Mutex<CompileError?>(nil)
    /// When `stopWatching` asked the thread to stop: the deadline for the children's graceful exit.
    let stopDeadline = Atomic<UInt64>(0)
    let statistics = Mutex(IsolationStatistics())
    var restartTimes: [[UInt64]]
    var watches: [Watch]
    var stuck: [(node: Int, segment: Int)?]
    /// The signal that stopped a worker process which the supervisor then killed (reported as the
    /// death's reason instead of SIGKILL).
    var stoppedBy: [Int32?]
    let executable: String
    let arguments: [String]
    let environment: [String]

    struct Watch {
        var progress: UInt64 = 0
        var since: UInt64 = 0
        var flagged = false
    }

    init(core: EngineCore) throws(CompileError) {
        plan = core.plan
        options = core.options
        wiring = core.wiring
        board = core.board
        region = core.region
        isolated = core.isolated
        restartTimes = Array(repeating: [], count: plan.workerCount)
        watches = Array(repeating: Watch(), count: plan.workerCount)
        stuck = Array(repeating: nil, count: plan.workerCount)
        stoppedBy = Array(repeating: nil, count: plan.workerCount)
        executable = options.process.workerExecutable ?? "/proc/self/exe"
        arguments = CommandLine.arguments
        environment = IsolatedWorker.inheritedEnvironment()
        do {
            stopEvent = try EventFD()
            notifyEvent = isolated ? try EventFD() : nil
        } catch {
            throw .platform(operation: "eventfd", errno: error)
        }
        statistics.withLock { $0.workerProcessIDs = Array(repeating: 0, count: isolated ? plan.workerCount : 0) }
        children = Array(repeating: nil, count: isolated ? plan.workerCount : 0)
        spares = Array(repeating: nil, count: isolated ? plan.workerCount : 0)
        spareFailures = Array(repeating: 0, count: isolated ? plan.workerCount : 0)
        statistics.withLock {
            $0.standbyProcessIDs = Array(
                repeating: 0,
                count: isolated && options.process.standbyWorkers ? plan.workerCount : 0
            )
        }
        // The workers are spawned by the supervisor thread, which lives as long as the graph: a
        // child's parent-death signal fires when the *thread* that spawned it exits.
        do {
            thread = try PinnedThread(name: "ag-supervisor", cpu: nil, stackSize: 1 << 20) { [self] in run() }
        } catch {
            stopEvent.close()
            notifyEvent?.close()
            throw .platform(operation: "pthread_create", errno: error)
        }
        while true {
            let state = startup.pointee.load(ordering: .acquiring)
            if state == 1 { return }
            if state == 2 {
                thread?.join()
                stopped = true
                throw startupError.withLock { $0 } ?? .isolatedWorkerRefused(worker: 0, reason: "unknown")
            }
            _ = Futex.wait(on: startupWord, expected: state, timeoutNanoseconds: 10_000_000)
        }
    }

    var startupWord: UnsafeMutablePointer<UInt32> { futexWord(startup) }

    deinit {
        startup.deinitialize(count: 1)
        startup.deallocate()
    }

    func reportStartup(_ error: CompileError?) {
        if let error { startupError.withLock { $0 = error } }
        startup.pointee.store(error == nil ? 1 : 2, ordering: .releasing)
        Futex.wake(startupWord, count: 1)
    }

    // MARK: Lifecycle

    /// Stops the supervisor thread: it gives the children (told to stop through the stopping flag)
    /// until `deadline` to exit, kills the rest, reaps them all and returns. Idempotent.
    func stop(deadline: UInt64) {
        guard !stopped else { return }
        stopped = true
        stopDeadline.store(max(1, deadline), ordering: .releasing)
        stopEvent.signal()
        thread?.join()
    }

    /// Waits until `deadline` for every child to exit (the stopping flag is set and they were woken),
    /// kills the rest, reaps them all and closes the descriptors. On the supervisor thread.
    func stopChildren(deadline: UInt64) {
        for control in wiring.controls { Futex.wake(futexWord(control.standbyGo), count: Int32.max, shared: true) }
        for child in (children + spares).compactMap({ $0 }) {
            let now = MonotonicClock.now()
            if now >= deadline || !child.waitForExit(timeoutNanoseconds: Int64(deadline &- now)) {
                child.signal(SIGKILL)
            }
            _ = child.reap(block: true)
            child.close()
        }
        children = children.map { _ in nil }
        spares = spares.map { _ in nil }
        statistics.withLock {
            $0.workerProcessIDs = $0.workerProcessIDs.map { _ in 0 }
            $0.standbyProcessIDs = $0.standbyProcessIDs.map { _ in 0 }
        }
        stopEvent.close()
        notifyEvent?.close()
    }

    // MARK: The watch loop

    func run() {
        if isolated {
            do {
                for w in 0..<plan.workerCount { children[w] = try spawn(w) }
                for w in 0..<plan.workerCount { try awaitHandshake(w) }
            } catch {
                wiring.stopping.pointee.store(1, ordering: .sequentiallyConsistent)
                stopChildren(deadline: 0)
                reportStartup(error)
                return
            }
        }
        reportStartup(nil)
        if isolated && options.process.standbyWorkers {
            for w in 0..<plan.workerCount { startStandby(w) }
        }
        watch()
        stopChildren(deadline: stopDeadline.load(ordering: .acquiring))
    }

    func watch() {
        // Wake-ups: a quarter of the stage time limit (at most 50 ms); in process mode at least
        // every `stopCheckMilliseconds`, to notice a worker stopped by a job-control signal.
        var period: Int32 =
            options.stageTimeLimit.map { limit in
                Int32(max(1, min(50, limit.nanoseconds / 4_000_000)))
            } ?? -1
        if isolated { period = period < 0 ? Self.stopCheckMilliseconds : min(period, Self.stopCheckMilliseconds) }
        var fds: [pollfd] = []
        // The process behind each polled pidfd (compared by identity after the poll: handling one
        // death can replace another slot's process, and descriptor numbers are reused).
        var owners: [(worker: Int, process: ChildProcess, standby: Bool)] = []
        while true {
            fds.removeAll(keepingCapacity: true)
            owners.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: stopEvent.fileDescriptor, events: Int16(POLLIN), revents: 0))
            if let notifyEvent { fds.append(pollfd(fd: notifyEvent.fileDescriptor, events: Int16(POLLIN), revents: 0)) }
            for (w, child) in children.enumerated() {
                if let child {
                    fds.append(pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0))
                    owners.append((w, child, false))
                }
            }
            for (w, spare) in spares.enumerated() {
                if let spare {
                    fds.append(pollfd(fd: spare.pidfd, events: Int16(POLLIN), revents: 0))
                    owners.append((w, spare, true))
                }
            }
            let r = poll(&fds, nfds_t(fds.count), period)
            if r < 0 && errno != EINTR { return }
            if fds[0].revents != 0 { return }
            if let notifyEvent, fds[1].revents != 0 {
                notifyEvent.drain()
                board.resumeReadyContinuations()
            }
            let first = notifyEvent == nil ? 1 : 2
            for (i, owner) in owners.enumerated() where fds[first + i].revents != 0 {
                if owner.standby {
                    if spares[owner.worker] === owner.process { handleStandbyDeath(of: owner.worker) }
                } else if children[owner.worker] === owner.process {
                    handleDeath(of: owner.worker)
                }
            }
            if isolated { killStoppedProcesses() }
            if period > 0 { sample() }
        }
    }

    /// How often (ms) process mode looks for stopped workers: the bound on noticing a `SIGSTOP`.
    static let stopCheckMilliseconds: Int32 = 5

    /// A worker process stopped by a job-control signal (`SIGSTOP`, `SIGTSTP`, …) holds its
    /// executions forever: kill it, so that the death is handled like a crash (its executions are
    /// answered with ``ExecutionError/workerCrashed(worker:reason:)`` naming the signal, and it is
    /// restarted). A stopped standby is killed too and replaced.
    func killStoppedProcesses() {
        guard !isStopping else { return }
        for (w, child) in children.enumerated() {
            guard let child, stoppedBy[w] == nil, stuck[w] == nil, let signal = child.stopSignal() else { continue }
            stoppedBy[w] = signal
            logger.warning("worker process \(w) was stopped by \(ChildProcess.signalName(signal)): killing it")
            child.signal(SIGKILL)
        }
        for spare in spares {
            if let spare, spare.stopSignal() != nil { spare.signal(SIGKILL) }
        }
    }

    var isStopping: Bool { wiring.stopping.pointee.load(ordering: .sequentiallyConsistent) != 0 }

}
