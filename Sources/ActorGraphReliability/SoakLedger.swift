import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Shutdown-contract violations summed over a soak.
final class ShutdownChecks: Sendable {
    /// Stage starts after `shutdown()` had returned.
    let startsAfterShutdown = Atomic<Int>(0)
    /// Graphs whose actor was still bound (its state unreadable) after `shutdown()` returned.
    let actorsNotFree = Atomic<Int>(0)

    func reset() {
        startsAfterShutdown.store(0, ordering: .relaxed)
        actorsNotFree.store(0, ordering: .relaxed)
    }
}

/// Set once a submitter returned.
final class SubmitterFlag: Sendable {
    private let done = Atomic<Bool>(false)
    func finish() { done.store(true, ordering: .releasing) }
    var isFinished: Bool { done.load(ordering: .acquiring) }
}

/// Counts executions and answers. An answer names the execution it belongs to (the id carried in
/// the output value or in the stage's error); it must be the execution that was asked for, once.
final class SoakLedger: Sendable {
    // Plain atomic counters, not a Mutex: Synchronization's Mutex hands a contended lock over inside
    // the kernel (a PI futex), where ThreadSanitizer cannot see the hand-off, so every contended
    // counter update would be reported as a race under `scripts/sanitizers.sh`.
    private let executions = Atomic<Int>(0), answered = Atomic<Int>(0), duplicated = Atomic<Int>(0)
    private let values = Atomic<Int>(0), stageFailures = Atomic<Int>(0), shutdownErrors = Atomic<Int>(0)
    private let capacityErrors = Atomic<Int>(0), otherErrors = Atomic<Int>(0)
    private let crashErrors = Atomic<Int>(0), timeLimitErrors = Atomic<Int>(0), restartsExhaustedErrors = Atomic<Int>(0)
    private let exclusiveRefusals = Atomic<Int>(0), exclusiveDropped = Atomic<Int>(0)
    /// Submitters inside a call (graceful shutdowns wait for zero).
    let busy = Atomic<Int>(0)

    struct Counters {
        var executions = 0, answered = 0, duplicated = 0
        var values = 0, stageFailures = 0, shutdownErrors = 0, capacityErrors = 0, otherErrors = 0
        var crashErrors = 0, timeLimitErrors = 0, restartsExhaustedErrors = 0
        var exclusiveRefusals = 0, exclusiveDropped = 0
    }

    /// Zeroes every counter; only while no submitter is inside a call.
    func reset() {
        executions.store(0, ordering: .relaxed)
        answered.store(0, ordering: .relaxed)
        duplicated.store(0, ordering: .relaxed)
        values.store(0, ordering: .relaxed)
        stageFailures.store(0, ordering: .relaxed)
        shutdownErrors.store(0, ordering: .relaxed)
        capacityErrors.store(0, ordering: .relaxed)
        otherErrors.store(0, ordering: .relaxed)
        crashErrors.store(0, ordering: .relaxed)
        timeLimitErrors.store(0, ordering: .relaxed)
        restartsExhaustedErrors.store(0, ordering: .relaxed)
        exclusiveRefusals.store(0, ordering: .relaxed)
        exclusiveDropped.store(0, ordering: .relaxed)
    }

    func snapshot() -> Counters {
        Counters(
            executions: executions.load(ordering: .acquiring),
            answered: answered.load(ordering: .acquiring),
            duplicated: duplicated.load(ordering: .acquiring),
            values: values.load(ordering: .acquiring),
            stageFailures: stageFailures.load(ordering: .acquiring),
            shutdownErrors: shutdownErrors.load(ordering: .acquiring),
            capacityErrors: capacityErrors.load(ordering: .acquiring),
            otherErrors: otherErrors.load(ordering: .acquiring),
            crashErrors: crashErrors.load(ordering: .acquiring),
            timeLimitErrors: timeLimitErrors.load(ordering: .acquiring),
            restartsExhaustedErrors: restartsExhaustedErrors.load(ordering: .acquiring),
            exclusiveRefusals: exclusiveRefusals.load(ordering: .acquiring),
            exclusiveDropped: exclusiveDropped.load(ordering: .acquiring)
        )
    }

    func started() { executions.add(1, ordering: .relaxed) }

    /// `count` executions an exclusive submitter dropped in flight: nothing is delivered for them.
    func dropped(_ count: Int) {
        answered.add(count, ordering: .relaxed)
        exclusiveDropped.add(count, ordering: .relaxed)
    }

    /// A value arrived for execution `id`.
    func answer(_ id: Int, carried output: SoakOutput) {
        if output.id == id && output.check == SoakOutput.expectedCheck(id, shape: output.shape) {
            answered.add(1, ordering: .relaxed)
            values.add(1, ordering: .relaxed)
        } else {
            duplicated.add(1, ordering: .relaxed)
        }
    }

    /// An error arrived for execution `id`.
    func answer(_ id: Int, error: any Error) {
        switch error {
        case ExecutionError.stageFailed(_, let inner as SoakFailure) where inner.id == id:
            answered.add(1, ordering: .relaxed)
            stageFailures.add(1, ordering: .relaxed)
        case ExecutionError.stageFailed(_, let inner as IsolatedStageError)
        where inner.description == SoakFailure(id: id).description:
            // A process worker's stage failure arrives as the thrown error's text.
            answered.add(1, ordering: .relaxed)
            stageFailures.add(1, ordering: .relaxed)
        case ExecutionError.stageFailed:
            duplicated.add(1, ordering: .relaxed)  // another execution's failure
        // Process graphs: the worker holding the execution died (killed, or stopped and then killed
        // by its supervisor), or the graph failed for good. These carry no execution id,
        // so they count as this execution's one answer.
        case ExecutionError.workerCrashed:
            answered.add(1, ordering: .relaxed)
            crashErrors.add(1, ordering: .relaxed)
        case ExecutionError.stageTimedOut:
            answered.add(1, ordering: .relaxed)
            timeLimitErrors.add(1, ordering: .relaxed)
        case ExecutionError.restartsExhausted:
            answered.add(1, ordering: .relaxed)
            restartsExhaustedErrors.add(1, ordering: .relaxed)
        case ExecutionError.shutDown:
            answered.add(1, ordering: .relaxed)
            shutdownErrors.add(1, ordering: .relaxed)
        case ExecutionError.capacityExceeded:
            answered.add(1, ordering: .relaxed)
            capacityErrors.add(1, ordering: .relaxed)
        case ExecutionError.exclusiveSubmitterOpen:
            answered.add(1, ordering: .relaxed)
            exclusiveRefusals.add(1, ordering: .relaxed)
        default:
            answered.add(1, ordering: .relaxed)
            otherErrors.add(1, ordering: .relaxed)
        }
    }
}
