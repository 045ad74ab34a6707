import ActorGraphPlatform
import Glibc
import Synchronization

/// What the supervisor of a compiled graph observed (process mode: crashes and restarts; both
/// modes: stages reported past ``CompileOptions/stageTimeLimit``).
public struct IsolationStatistics: Sendable, Equatable {
    /// Worker processes that died while the graph was running (not counting `shutdown()`).
    public var crashes = 0
    /// Worker processes started again after a crash.
    public var restarts = 0
    /// Workers killed (process mode) or reported (thread mode) for a stage past the time limit.
    public var stuckStageReports = 0
    /// From the supervisor seeing a worker's death to its replacement reporting ready, last and worst.
    public var lastRecoveryNanoseconds: UInt64 = 0
    /// The worst recovery so far.
    public var maxRecoveryNanoseconds: UInt64 = 0
    /// The process id of each worker now (process mode; 0 while it is being restarted or after shutdown).
    public var workerProcessIDs: [Int32] = []
    /// The process id of each worker's standby process (``CompileOptions/standbyWorkers``; 0: none now).
    public var standbyProcessIDs: [Int32] = []
    /// Restarts that activated a standby process instead of spawning one.
    public var standbyActivations = 0
    /// Why the last worker died (`signal 9 (SIGKILL)`, `exit status 3`, …).
    public var lastCrashReason: String?
    /// When the supervisor saw each worker death (monotonic clock, nanoseconds), oldest first.
    public var deathTimes: [UInt64] = []
    /// True once a worker used up its restarts and the graph failed.
    public var restartsExhausted = false
}

/// One thread, off the hot path, that watches the workers of a compiled graph.
///
/// Process mode: it spawns the worker children (`posix_spawn` of the worker executable with the
/// memfd and the notification eventfd inherited), waits for each one's handshake, and then sleeps
/// in `poll` on a pidfd per child, the notification eventfd and a stop eventfd. When a child dies it
/// reaps it (`waitid(P_PIDFD)`, no zombie) and, the child being dead, acts as the producer of that
/// worker's rings: every sequence the worker had not published up to the claimed frontier gets a
/// failure (``GraphError/workerCrashed(worker:reason:)``), downstream segments forward it and
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
    private var children: [ChildProcess?] = []
    /// Standby processes (``CompileOptions/standbyWorkers``), one per worker, and how often each died.
    private var spares: [ChildProcess?] = []
    private var spareFailures: [Int] = []
    private var thread: PinnedThread?
    private var stopped = false
    /// Start-up outcome, set by the supervisor thread: 0 pending, 1 ready, 2 failed (`startupError`).
    private let startup: UnsafeMutablePointer<Atomic<UInt32>> = {
        let p = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        p.initialize(to: Atomic(0))
        return p
    }()
    private let startupError = Mutex<GraphError?>(nil)
    /// When `stopWatching` asked the thread to stop: the deadline for the children's graceful exit.
    private let stopDeadline = Atomic<UInt64>(0)
    let statistics = Mutex(IsolationStatistics())
    private var restartTimes: [[UInt64]]
    private var watches: [Watch]
    private var stuck: [(node: Int, segment: Int)?]
    /// The signal that stopped a worker process which the supervisor then killed (reported as the
    /// death's reason instead of SIGKILL).
    private var stoppedBy: [Int32?]
    private let executable: String
    private let arguments: [String]
    private let environment: [String]

    private struct Watch { var progress: UInt64 = 0; var since: UInt64 = 0; var flagged = false }

    init(core: EngineCore) throws(GraphError) {
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
        executable = options.workerExecutable ?? "/proc/self/exe"
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
        statistics.withLock { $0.standbyProcessIDs = Array(repeating: 0, count: isolated && options.standbyWorkers ? plan.workerCount : 0) }
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

    private var startupWord: UnsafeMutablePointer<UInt32> { futexWord(startup) }

    deinit {
        startup.deinitialize(count: 1)
        startup.deallocate()
    }

    private func reportStartup(_ error: GraphError?) {
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
    private func stopChildren(deadline: UInt64) {
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

    // MARK: Spawning

    private func spawn(_ w: Int, standby: Bool = false) throws(GraphError) -> ChildProcess {
        let control = wiring.controls[w]
        if standby {
            control.standbyState.pointee.store(0, ordering: .sequentiallyConsistent)
            control.standbyGo.pointee.store(0, ordering: .sequentiallyConsistent)
        } else {
            control.state.pointee.store(WorkerControl.starting, ordering: .sequentiallyConsistent)
            control.refusalCode.pointee = 0
        }
        let spec = IsolatedWorker.Spec(fd: region.fileDescriptor, worker: w, fingerprint: PlanFingerprint.of(plan),
                                       parent: getpid(), notifyFD: notifyEvent!.fileDescriptor, standby: standby)
        do {
            let child = try ChildProcess(path: executable, arguments: arguments,
                                         environment: environment + ["\(IsolatedWorker.environmentKey)=\(spec.encoded)"],
                                         inheriting: [region.fileDescriptor, notifyEvent!.fileDescriptor])
            return child
        } catch {
            throw .platform(operation: "posix_spawn \(executable)", errno: error)
        }
    }

    /// Waits (bounded by the handshake timeout) for child `w` to report ready or refuse.
    private func awaitHandshake(_ w: Int) throws(GraphError) {
        let control = wiring.controls[w]
        let deadline = MonotonicClock.now() &+ UInt64(max(0, options.handshakeTimeout.nanoseconds))
        var exited: ChildProcess.ExitReason? = nil
        while true {
            let state = control.state.pointee.load(ordering: .sequentiallyConsistent)
            if state == WorkerControl.ready {
                if let pid = children[w]?.pid { statistics.withLock { $0.workerProcessIDs[w] = pid } }
                return
            }
            if state == WorkerControl.refused {
                let text = FailureMessage.read(control.refusalText, capacity: WorkerControl.refusalTextBytes).text
                if control.refusalCode.pointee == RefusalCode.planMismatch { throw .planMismatch(worker: w, detail: text) }
                throw .isolatedWorkerRefused(worker: w, reason: text)
            }
            if let reason = exited {
                throw .isolatedWorkerRefused(worker: w, reason: "exited before it reported ready (\(reason)); does main start with IsolatedWorker.runIfChild?")
            }
            guard let child = children[w] else { throw .isolatedWorkerRefused(worker: w, reason: "not started") }
            if let reason = child.reap(block: false) {
                // A refusing child writes its state, then exits: look at the state once more (the
                // child's stores are visible once it is reaped) before calling it an early exit.
                exited = reason
                continue
            }
            let now = MonotonicClock.now()
            if now >= deadline {
                throw .isolatedWorkerRefused(worker: w, reason: "did not report ready within \(options.handshakeTimeout)")
            }
            _ = Futex.wait(on: futexWord(control.state), expected: state,
                           timeoutNanoseconds: min(5_000_000, Int64(deadline &- now)), shared: true)
        }
    }

    /// Starts worker `w`'s standby process (not waited for: it announces itself in the control block).
    private func startStandby(_ w: Int) {
        guard options.standbyWorkers, spares[w] == nil, spareFailures[w] <= 3, !isStopping else { return }
        do {
            let spare = try spawn(w, standby: true)
            spares[w] = spare
            statistics.withLock { $0.standbyProcessIDs[w] = spare.pid }
        } catch {
            spareFailures[w] += 1
            logger.warning("standby process for worker \(w) could not be started: \(error)")
        }
    }

    /// Activates worker `w`'s standby if it is standing by; returns false when there is none ready.
    private func activateStandby(_ w: Int) -> Bool {
        let control = wiring.controls[w]
        guard let spare = spares[w], control.standbyState.pointee.load(ordering: .sequentiallyConsistent) == 1 else { return false }
        spares[w] = nil
        statistics.withLock { $0.standbyProcessIDs[w] = 0 }
        control.state.pointee.store(WorkerControl.starting, ordering: .sequentiallyConsistent)
        control.refusalCode.pointee = 0
        control.standbyState.pointee.store(0, ordering: .sequentiallyConsistent)
        children[w] = spare
        control.standbyGo.pointee.store(1, ordering: .sequentiallyConsistent)
        Futex.wake(futexWord(control.standbyGo), count: Int32.max, shared: true)
        return true
    }

    private func handleStandbyDeath(of w: Int) {
        guard let spare = spares[w] else { return }
        _ = spare.reap(block: true)
        spare.close()
        spares[w] = nil
        statistics.withLock { $0.standbyProcessIDs[w] = 0 }
        if isStopping { return }
        spareFailures[w] += 1
        startStandby(w)
    }

    // MARK: The watch loop

    private func run() {
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
        if isolated && options.standbyWorkers {
            for w in 0..<plan.workerCount { startStandby(w) }
        }
        watch()
        stopChildren(deadline: stopDeadline.load(ordering: .acquiring))
    }

    private func watch() {
        // Wake-ups: a quarter of the stage time limit (at most 50 ms); in process mode at least
        // every `stopCheckMilliseconds`, to notice a worker stopped by a job-control signal.
        var period: Int32 = options.stageTimeLimit.map { limit in
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
                if let child { fds.append(pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)); owners.append((w, child, false)) }
            }
            for (w, spare) in spares.enumerated() {
                if let spare { fds.append(pollfd(fd: spare.pidfd, events: Int16(POLLIN), revents: 0)); owners.append((w, spare, true)) }
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
    /// answered with ``GraphError/workerCrashed(worker:reason:)`` naming the signal, and it is
    /// restarted). A stopped standby is killed too and replaced.
    private func killStoppedProcesses() {
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

    private var isStopping: Bool { wiring.stopping.pointee.load(ordering: .sequentiallyConsistent) != 0 }

    private func handleDeath(of w: Int) {
        guard let child = children[w] else { return }
        let detected = MonotonicClock.now()
        let reason = child.reap(block: true)
        child.close()
        children[w] = nil
        statistics.withLock { $0.workerProcessIDs[w] = 0 }
        if isStopping { return }
        let stuckIn = stuck[w]
        stuck[w] = nil
        let stopSignal = stoppedBy[w]
        stoppedBy[w] = nil
        let text = stuckIn.map { "killed: stage '\(plan.nodes[$0.node].name)' ran past the stage time limit" }
            ?? stopSignal.map { "stopped by \(ChildProcess.signalName($0)); killed" }
            ?? (reason?.description ?? "unknown")
        statistics.withLock { $0.crashes += 1; $0.lastCrashReason = text; $0.deathTimes.append(detected) }
        logger.warning("worker process \(w) died (\(text)); answering its executions and restarting it")
        fail(worker: w, text: text, stuckIn: stuckIn)

        // Restart policy: at most maxRestarts within the window. A replacement that dies or refuses
        // before it is ready counts as one more crash.
        let window = UInt64(max(0, options.restartPolicy.window.nanoseconds))
        var why = text
        while true {
            let now = MonotonicClock.now()
            restartTimes[w].removeAll { now &- $0 > window }
            guard restartTimes[w].count < options.restartPolicy.maxRestarts else {
                exhaust(worker: w, restarts: restartTimes[w].count, why: why)
                return
            }
            restartTimes[w].append(now)
            let control = wiring.controls[w]
            control.node.pointee.store(0, ordering: .relaxed)
            wiring.parkWords[w].pointee.store(0, ordering: .sequentiallyConsistent)
            do {
                if activateStandby(w) {
                    statistics.withLock { $0.standbyActivations += 1 }
                } else {
                    children[w] = try spawn(w)
                }
                try awaitHandshake(w)
                break
            } catch {
                logger.error("worker process \(w) could not be restarted: \(error)")
                children[w]?.close()
                children[w] = nil
                if isStopping { return }
                why = "\(error)"
                statistics.withLock { $0.crashes += 1; $0.lastCrashReason = why }
            }
        }
        watches[w] = Watch()
        let recovery = MonotonicClock.now() &- detected
        statistics.withLock {
            $0.restarts += 1
            $0.lastRecoveryNanoseconds = recovery
            $0.maxRecoveryNanoseconds = max($0.maxRecoveryNanoseconds, recovery)
        }
        startStandby(w)
    }

    /// The worker is dead, so this thread is now the single producer of its rings: publish a
    /// failure for every sequence it had not published, up to the claimed frontier, and make the
    /// replacement start there.
    private func fail(worker w: Int, text: String, stuckIn: (node: Int, segment: Int)?) {
        let frontier = Sequencer.sequence(ofCursor: wiring.nextSequence.pointee.load(ordering: .sequentiallyConsistent))
        for segment in plan.segments where segment.worker == w {
            let first = wiring.firstUnpublished(segment: segment.id, frontier: frontier)
            let ring = wiring.rings[segment.outputChannel]
            let messages = wiring.messages[segment.outputChannel]!
            if segment.outputChannel == plan.outputChannel {
                // A worker publishes a batch of results first and looks for their waiters after it
                // (one fence per batch): one that died in between left published results whose
                // waiters were never told (an async caller would wait until shutdown, an abandoned
                // slot would never be freed). Every uncollected result is in the last `capacity`
                // sequences; `didPublish` does nothing where no waiter is registered. (Should the
                // slot pass to `k + capacity` meanwhile, its waiter takes the wake-up as spurious.)
                for k in max(0, frontier &- plan.capacity)..<first where !board.wasCollected(k) { board.didPublish(k) }
            }
            for k in first..<max(first, frontier) {
                let timedOut = stuckIn?.segment == segment.id && k == first
                ring.failure(k).pointee = timedOut ? FailureCode.stageTimedOut : FailureCode.workerCrashed
                FailureMessage.write(text, detail: Int32(timedOut ? stuckIn!.node : w),
                                     to: messages + (k & ring.mask) * FailureMessage.slotBytes)
                ring.publish(k)
                if segment.outputChannel == plan.outputChannel { board.didPublish(k) }
            }
            for target in wiring.wakeTargets(of: segment.outputChannel, excludingWorker: w) {
                Worker.wake(target, shared: true)
            }
        }
        wiring.controls[w].resume.pointee = frontier
    }

    /// Fails the graph: every waiter and later call gets ``GraphError/restartsExhausted(worker:restarts:)``.
    private func exhaust(worker w: Int, restarts: Int, why: String) {
        logger.error("worker process \(w) crashed again (\(why)) after \(restarts) restart(s): failing the graph")
        board.terminalError.withLock { $0 = .restartsExhausted(worker: w, restarts: restarts) }
        statistics.withLock { $0.restartsExhausted = true }
        wiring.stopAndWakeWorkers(sharedFutex: true)
        board.wakeAllForShutdown()
    }

    // MARK: Stage time limit

    /// Compares each worker's progress counter with the last sample: a worker inside a node (or, in
    /// process mode, with ready input: a stopped process) that made no progress for the limit is stuck.
    private func sample() {
        guard let limit = options.stageTimeLimit, !isStopping else { return }
        let now = MonotonicClock.now()
        let limitNanoseconds = UInt64(max(0, limit.nanoseconds))
        for w in 0..<plan.workerCount {
            let control = wiring.controls[w]
            let progress = control.progress.pointee.load(ordering: .relaxed)
            if progress != watches[w].progress || watches[w].since == 0 {
                watches[w] = Watch(progress: progress, since: now)
                continue
            }
            var blamed: (node: Int, segment: Int)? = nil
            let node = Int(control.node.pointee.load(ordering: .relaxed))
            if node > 0, let segment = plan.segments.first(where: { $0.nodes.contains(node - 1) }) {
                blamed = (node - 1, segment.id)
            } else if isolated {
                blamed = pendingSegment(of: w)
            }
            guard let blamed else { watches[w].since = now; continue }
            guard now &- watches[w].since >= limitNanoseconds, !watches[w].flagged else { continue }
            watches[w].flagged = true
            let name = plan.nodes[blamed.node].name
            statistics.withLock { $0.stuckStageReports += 1 }
            if isolated, let child = children[w] {
                logger.warning("stage '\(name)' on worker process \(w) made no progress for the stage time limit: killing it")
                stuck[w] = blamed
                child.signal(SIGKILL)
            } else {
                logger.warning("stage '\(name)' on worker thread \(w) has run past the stage time limit (threads cannot be killed; shutdown() will not wait for it)")
            }
        }
    }

    /// A segment of worker `w` whose next execution has every input published (work is waiting).
    private func pendingSegment(of w: Int) -> (node: Int, segment: Int)? {
        let frontier = Sequencer.sequence(ofCursor: wiring.nextSequence.pointee.load(ordering: .relaxed))
        for segment in plan.segments where segment.worker == w {
            let k = wiring.firstUnpublished(segment: segment.id, frontier: frontier)
            guard k < frontier else { continue }
            if segment.inputChannels.allSatisfy({ wiring.rings[$0].isPublished(k) }) {
                return (segment.nodes[0], segment.id)
            }
        }
        return nil
    }
}
