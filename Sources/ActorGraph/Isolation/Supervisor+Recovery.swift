import ActorGraphPlatform
import Glibc
import Synchronization

/// A worker process died: answer every execution it had, restart it (or its standby), or fail the graph.
extension Supervisor {
    func handleDeath(of w: Int) {
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
        let text =
            stuckIn.map { "killed: stage '\(plan.nodes[$0.node].name)' ran past the stage time limit" }
            ?? stopSignal.map { "stopped by \(ChildProcess.signalName($0)); killed" }
            ?? (reason?.description ?? "unknown")
        statistics.withLock {
            $0.crashes += 1
            $0.lastCrashReason = text
            $0.deathTimes.append(detected)
        }
        logger.warning("worker process \(w) died (\(text)); answering its executions and restarting it")
        fail(worker: w, text: text, stuckIn: stuckIn)

        // Restart policy: at most maxRestarts within the window. A replacement that dies or refuses
        // before it is ready counts as one more crash.
        let window = UInt64(max(0, options.process.restartPolicy.window.nanoseconds))
        var why = text
        while true {
            let now = MonotonicClock.now()
            restartTimes[w].removeAll { now &- $0 > window }
            guard restartTimes[w].count < options.process.restartPolicy.maxRestarts else {
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
                statistics.withLock {
                    $0.crashes += 1
                    $0.lastCrashReason = why
                }
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
    func fail(worker w: Int, text: String, stuckIn: (node: Int, segment: Int)?) {
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
                FailureMessage.write(
                    text,
                    detail: Int32(timedOut ? stuckIn!.node : w),
                    to: messages + (k & ring.mask) * FailureMessage.slotBytes
                )
                ring.publish(k)
                if segment.outputChannel == plan.outputChannel { board.didPublish(k) }
            }
            for target in wiring.wakeTargets(of: segment.outputChannel, excludingWorker: w) {
                Worker.wake(target, shared: true)
            }
        }
        wiring.controls[w].resume.pointee = frontier
    }

    /// Fails the graph: every waiter and later call gets ``ExecutionError/restartsExhausted(worker:restarts:)``.
    func exhaust(worker w: Int, restarts: Int, why: String) {
        logger.error("worker process \(w) crashed again (\(why)) after \(restarts) restart(s): failing the graph")
        board.terminalError.withLock { $0 = .restartsExhausted(worker: w, restarts: restarts) }
        statistics.withLock { $0.restartsExhausted = true }
        wiring.stopAndWakeWorkers(sharedFutex: true)
        board.wakeAllForShutdown()
    }
}
