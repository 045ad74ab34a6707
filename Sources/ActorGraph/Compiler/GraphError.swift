import ActorGraphPlatform

/// Every error ActorGraph reports: malformed graphs at `compile()`, failed executions, back-pressure
/// and shutdown. Graph errors name the offending node.
public enum GraphError: Error, CustomStringConvertible, Sendable {
    /// The graph has no stage: its output is its input.
    case noStages
    /// The output node was not built from this graph's input (e.g. a node of another graph).
    case outputNotFromInput(node: String)
    /// A node reads a node that belongs to another graph.
    case foreignNode(node: String)
    /// A stage whose value never reaches the output.
    case deadStage(node: String)
    /// The channel capacity is zero, negative or absurdly large.
    case invalidCapacity(Int)
    /// The worker count is zero or negative.
    case invalidWorkerCount(Int)
    /// More pinned workers than CPUs available to them.
    case tooManyWorkers(requested: Int, cpus: Int)
    /// The requested NUMA node does not exist.
    case invalidNUMANode(Int, available: Int)
    /// An option outside its valid range.
    case invalidOption(String)
    /// The channels would need more shared memory than allowed.
    case regionTooLarge(bytes: Int)
    /// An ``ActorRef`` is already bound to another running compiled graph.
    case actorAlreadyBound(actor: String)
    /// A system call failed while compiling or running the graph.
    case platform(operation: String, errno: Errno)
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
    /// A node's value crosses into or out of a worker process (``Isolation/processes``) but can be
    /// neither copied as bytes (it holds references) nor encoded (it is not ``WireEncodable``).
    case notIsolatable(node: String, type: String)
    /// The worker process `worker` built a different plan than this one (its program declares
    /// different graphs, or none given to ``IsolatedWorker/runIfChild(graphs:)`` matches).
    case planMismatch(worker: Int, detail: String)
    /// The worker process `worker` refused to start or did not report ready.
    case isolatedWorkerRefused(worker: Int, reason: String)
    /// The worker process running this execution died (`reason`: the signal or exit status).
    case workerCrashed(worker: Int, reason: String)
    /// The stage `node` ran past ``CompileOptions/stageTimeLimit``; its worker was killed and restarted.
    case stageTimedOut(node: String)
    /// Worker `worker` crashed more often than ``CompileOptions/restartPolicy`` allows: the graph is
    /// failed and every further call gets this error.
    case restartsExhausted(worker: Int, restarts: Int)
    /// `node` is placed on a host that ``RemoteOptions/hosts`` does not list.
    case unknownHost(node: String, host: String)
    /// `node`'s value crosses hosts but holds references (cross-host values must be trivially copyable).
    case notRemotable(node: String, type: String)
    /// The nodes of one stateful actor are placed on different hosts (an actor's state lives in one place).
    case actorSplitAcrossHosts(actor: String)
    /// No piece for `host` could be reached and handshaken at any of its addresses.
    case hostUnreachable(host: String, reason: String)
    /// The piece for `host` refused the graph (e.g. its program builds a different plan).
    case pieceRefused(host: String, reason: String)
    /// The piece on `host` was lost (its connection closed or reset, it went silent, or it was
    /// fenced) while this execution needed it.
    case hostLost(host: String, reason: String)
    /// The value of `node` encodes to `bytes` bytes, over the `limit` of its edge (it crosses a
    /// process boundary encoded; ``Node/maxEncodedBytes(_:)``): this execution fails, others go on.
    case valueTooLarge(node: String, bytes: Int, limit: Int)

    /// One line, naming the node or the limit involved.
    public var description: String {
        switch self {
        case .noStages: return "graph has no stages: its output is its input"
        case .outputNotFromInput(let node): return "output node '\(node)' does not depend on this graph's input"
        case .foreignNode(let node): return "node '\(node)' uses a node from another graph"
        case .deadStage(let node): return "stage '\(node)' does not reach the output (dead stage)"
        case .invalidCapacity(let c): return "invalid channel capacity \(c) (must be 1...\(CompileOptions.maxCapacity))"
        case .invalidWorkerCount(let n): return "invalid worker count \(n) (must be at least 1)"
        case .tooManyWorkers(let r, let cpus): return "\(r) pinned workers requested but only \(cpus) CPUs are available"
        case .invalidNUMANode(let n, let available): return "NUMA node \(n) does not exist (\(available) node(s))"
        case .invalidOption(let what): return "invalid option: \(what)"
        case .regionTooLarge(let bytes): return "channels would need \(bytes) bytes of shared memory (limit \(CompileOptions.maxRegionBytes))"
        case .actorAlreadyBound(let actor): return "actor '\(actor)' is already bound to a running compiled graph"
        case .platform(let op, let errno): return "\(op) failed: \(errno)"
        case .stageFailed(let node, let error): return "stage '\(node)' failed: \(error)"
        case .capacityExceeded(let c): return "capacity exceeded: \(c) executions in flight for the whole submit timeout"
        case .shutDown: return "the compiled graph is shut down"
        case .batchTooLarge(let n, let c): return "a batch of \(n) inputs exceeds the capacity of \(c) executions in flight"
        case .exclusiveSubmitterOpen: return "an exclusive submitter owns this graph's submissions until it is dropped"
        case .nothingInFlight: return "receive() was called with no execution in flight"
        case .alreadyWaited(let k): return "execution \(k) was already waited for: a result is delivered once"
        case .timedOut: return "the execution did not complete within the timeout"
        case .notIsolatable(let node, let type):
            return "node '\(node)' produces \(type), which holds references and is not WireEncodable, so it cannot cross a process boundary (isolation .processes copies trivially copyable values and encodes WireEncodable ones)"
        case .planMismatch(let worker, let detail): return "worker process \(worker) built a different plan: \(detail)"
        case .isolatedWorkerRefused(let worker, let reason): return "worker process \(worker) refused to start: \(reason)"
        case .workerCrashed(let worker, let reason): return "worker process \(worker) crashed (\(reason))"
        case .stageTimedOut(let node): return "stage '\(node)' ran past the stage time limit; its worker was restarted"
        case .restartsExhausted(let worker, let restarts):
            return "worker \(worker) crashed after \(restarts) restart(s) within the restart window: the graph is failed"
        case .unknownHost(let node, let host): return "node '\(node)' is placed on host '\(host)', which RemoteOptions.hosts does not list"
        case .notRemotable(let node, let type):
            return "node '\(node)' produces \(type), which holds references and cannot cross hosts (cross-host values must be trivially copyable)"
        case .actorSplitAcrossHosts(let actor): return "the nodes of actor '\(actor)' are placed on different hosts"
        case .hostUnreachable(let host, let reason): return "no piece for host '\(host)' could be reached: \(reason)"
        case .pieceRefused(let host, let reason): return "the piece for host '\(host)' refused the graph: \(reason)"
        case .hostLost(let host, let reason): return "host '\(host)' was lost: \(reason)"
        case .valueTooLarge(let node, let bytes, let limit):
            return "the value of node '\(node)' encodes to \(bytes) bytes, over its edge's limit of \(limit) (raise it with .maxEncodedBytes(_:))"
        }
    }
}

/// An error thrown by a stage in a worker process, as it reaches the caller: its
/// `String(describing:)` text, carried through shared memory (truncated at 248 UTF-8 bytes).
public struct IsolatedStageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `String(describing: error)` of the error the stage threw.
    public let description: String

    /// An error with this description.
    public init(description: String) { self.description = description }
}
