import ActorGraphPlatform
import Glibc
import Synchronization

/// Starting worker processes: spawn, the handshake, and the standby process kept behind each worker.
extension Supervisor {
    // MARK: Spawning

    func spawn(_ w: Int, standby: Bool = false) throws(CompileError) -> ChildProcess {
        let control = wiring.controls[w]
        if standby {
            control.standbyState.pointee.store(0, ordering: .sequentiallyConsistent)
            control.standbyGo.pointee.store(0, ordering: .sequentiallyConsistent)
        } else {
            control.state.pointee.store(WorkerControl.starting, ordering: .sequentiallyConsistent)
            control.refusalCode.pointee = 0
        }
        let spec = IsolatedWorker.Spec(
            fd: region.fileDescriptor,
            worker: w,
            fingerprint: PlanFingerprint.of(plan),
            parent: getpid(),
            notifyFD: notifyEvent!.fileDescriptor,
            standby: standby
        )
        do {
            let child = try ChildProcess(
                path: executable,
                arguments: arguments,
                environment: environment + ["\(IsolatedWorker.environmentKey)=\(spec.encoded)"],
                inheriting: [region.fileDescriptor, notifyEvent!.fileDescriptor]
            )
            return child
        } catch {
            throw .platform(operation: "posix_spawn \(executable)", errno: error)
        }
    }

    /// Waits (bounded by the handshake timeout) for child `w` to report ready or refuse.
    func awaitHandshake(_ w: Int) throws(CompileError) {
        let control = wiring.controls[w]
        let deadline = MonotonicClock.now() &+ UInt64(max(0, options.process.handshakeTimeout.nanoseconds))
        var exited: ChildProcess.ExitReason? = nil
        while true {
            let state = control.state.pointee.load(ordering: .sequentiallyConsistent)
            if state == WorkerControl.ready {
                if let pid = children[w]?.pid { statistics.withLock { $0.workerProcessIDs[w] = pid } }
                return
            }
            if state == WorkerControl.refused {
                let text = FailureMessage.read(control.refusalText, capacity: WorkerControl.refusalTextBytes).text
                if control.refusalCode.pointee == RefusalCode.planMismatch {
                    throw .planMismatch(worker: w, detail: text)
                }
                throw .isolatedWorkerRefused(worker: w, reason: text)
            }
            if let reason = exited {
                throw .isolatedWorkerRefused(
                    worker: w,
                    reason:
                        "exited before it reported ready (\(reason)); does main start with IsolatedWorker.runIfChild?"
                )
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
                throw .isolatedWorkerRefused(
                    worker: w,
                    reason: "did not report ready within \(options.process.handshakeTimeout)"
                )
            }
            _ = Futex.wait(
                on: futexWord(control.state),
                expected: state,
                timeoutNanoseconds: min(5_000_000, Int64(deadline &- now)),
                shared: true
            )
        }
    }

    /// Starts worker `w`'s standby process (not waited for: it announces itself in the control block).
    func startStandby(_ w: Int) {
        guard options.process.standbyWorkers, spares[w] == nil, spareFailures[w] <= 3, !isStopping else { return }
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
    func activateStandby(_ w: Int) -> Bool {
        let control = wiring.controls[w]
        guard let spare = spares[w], control.standbyState.pointee.load(ordering: .sequentiallyConsistent) == 1 else {
            return false
        }
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

    func handleStandbyDeath(of w: Int) {
        guard let spare = spares[w] else { return }
        _ = spare.reap(block: true)
        spare.close()
        spares[w] = nil
        statistics.withLock { $0.standbyProcessIDs[w] = 0 }
        if isStopping { return }
        spareFailures[w] += 1
        startStandby(w)
    }
}
