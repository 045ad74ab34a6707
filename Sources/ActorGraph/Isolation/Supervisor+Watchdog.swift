import ActorGraphPlatform
import Glibc
import Synchronization

/// The stage time limit: a worker that made no progress inside a stage for the limit is reported
/// (thread mode) or killed and restarted (process mode).
extension Supervisor {
    // MARK: Stage time limit

    /// Compares each worker's progress counter with the last sample: a worker inside a node (or, in
    /// process mode, with ready input: a stopped process) that made no progress for the limit is stuck.
    func sample() {
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
            guard let blamed else {
                watches[w].since = now
                continue
            }
            guard now &- watches[w].since >= limitNanoseconds, !watches[w].flagged else { continue }
            watches[w].flagged = true
            let name = plan.nodes[blamed.node].name
            statistics.withLock { $0.stuckStageReports += 1 }
            if isolated, let child = children[w] {
                logger.warning(
                    "stage '\(name)' on worker process \(w) made no progress for the stage time limit: killing it"
                )
                stuck[w] = blamed
                child.signal(SIGKILL)
            } else {
                logger.warning(
                    "stage '\(name)' on worker thread \(w) has run past the stage time limit (threads cannot be killed; shutdown() will not wait for it)"
                )
            }
        }
    }

    /// A segment of worker `w` whose next execution has every input published (work is waiting).
    func pendingSegment(of w: Int) -> (node: Int, segment: Int)? {
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
