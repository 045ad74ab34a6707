/// What one execution can fail with, from `execute`, `submit`, `wait`, the batches and the
/// ``ExclusiveSubmitter``: a stage threw or its worker died, the graph is shut down or failed, a
/// wait timed out, or a submission was refused. Errors of `compile()` are ``CompileError``s.
public enum ExecutionError: Error, CustomStringConvertible, Sendable {
    /// The stage `node` threw `error` for this execution; other executions are unaffected.
    case stageFailed(node: String, error: any Error)
    /// `capacity` executions were in flight for the whole submit timeout.
    case capacityExceeded(capacity: Int)
    /// The compiled graph was shut down before this execution completed.
    case shutDown
    /// A batch holds more inputs than can be in flight at once.
    case batchTooLarge(count: Int, capacity: Int)
    /// An ``ExclusiveSubmitter`` owns this graph's submissions until it is dropped: other submits,
    /// batches and a second exclusive submitter are refused.
    case exclusiveSubmitterOpen
    /// ``ExclusiveSubmitter/receive()`` was called with nothing in flight.
    case nothingInFlight
    /// The result of this pending execution was already waited for (a result is delivered once).
    case alreadyWaited(sequence: Int)
    /// The execution did not complete within the caller's timeout; its slot comes back when it does.
    case timedOut
    /// The worker process running this execution died (`reason`: the signal or exit status).
    case workerCrashed(worker: Int, reason: String)
    /// The stage `node` ran past ``CompileOptions/stageTimeLimit``; its worker was killed and restarted.
    case stageTimedOut(node: String)
    /// Worker `worker` crashed more often than ``ProcessOptions/restartPolicy`` allows: the graph is
    /// failed and every further call gets this error.
    case restartsExhausted(worker: Int, restarts: Int)
    /// The piece on `host` was lost (its connection closed or reset, it went silent, or it was
    /// fenced) while this execution needed it.
    case hostLost(host: String, reason: String)
    /// The value of `node` encodes to `bytes` bytes, over the `limit` of its edge (it crosses a
    /// process boundary encoded; ``Node/maxEncodedBytes(_:)``): this execution fails, others go on.
    case valueTooLarge(node: String, bytes: Int, limit: Int)

    /// One line, naming the node or the limit involved.
    public var description: String {
        switch self {
        case .stageFailed(let node, let error): return "stage '\(node)' failed: \(error)"
        case .capacityExceeded(let c):
            return "capacity exceeded: \(c) executions in flight for the whole submit timeout"
        case .shutDown: return "the compiled graph is shut down"
        case .batchTooLarge(let n, let c):
            return "a batch of \(n) inputs exceeds the capacity of \(c) executions in flight"
        case .exclusiveSubmitterOpen: return "an exclusive submitter owns this graph's submissions until it is dropped"
        case .nothingInFlight: return "receive() was called with no execution in flight"
        case .alreadyWaited(let k): return "execution \(k) was already waited for: a result is delivered once"
        case .timedOut: return "the execution did not complete within the timeout"
        case .workerCrashed(let worker, let reason): return "worker process \(worker) crashed (\(reason))"
        case .stageTimedOut(let node): return "stage '\(node)' ran past the stage time limit; its worker was restarted"
        case .restartsExhausted(let worker, let restarts):
            return
                "worker \(worker) crashed after \(restarts) restart(s) within the restart window: the graph is failed"
        case .hostLost(let host, let reason): return "host '\(host)' was lost: \(reason)"
        case .valueTooLarge(let node, let bytes, let limit):
            return "the value of node '\(node)' encodes to \(bytes) bytes, over its edge's limit of \(limit) "
                + "(raise it with .maxEncodedBytes(_:))"
        }
    }
}
