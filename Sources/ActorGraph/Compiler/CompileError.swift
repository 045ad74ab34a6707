import ActorGraphPlatform

/// Every error ActorGraph reports: malformed graphs at `compile()`, failed executions, back-pressure
/// and shutdown. Graph errors name the offending node.
/// What `compile()` (and ``Graph/sequential()``, ``Graph/dynamic()``, ``Graph/serve(udpPort:host:options:)``)
/// rejects before anything runs: a malformed graph, options out of range, a system call that failed while
/// the graph was laid out, a worker process or remote piece that would not start. The message names the
/// offending node. Errors of a running graph are ``ExecutionError``s.
public enum CompileError: Error, CustomStringConvertible, Sendable {
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
    /// A node's value crosses into or out of a worker process (``Isolation/processes``) but can be
    /// neither copied as bytes (it holds references) nor encoded (it is not ``WireEncodable``).
    case notIsolatable(node: String, type: String)
    /// The worker process `worker` built a different plan than this one (its program declares
    /// different graphs, or none given to ``IsolatedWorker/runIfChild(graphs:)`` matches).
    case planMismatch(worker: Int, detail: String)
    /// The worker process `worker` refused to start or did not report ready.
    case isolatedWorkerRefused(worker: Int, reason: String)
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

    /// One line, naming the node or the limit involved.
    public var description: String {
        switch self {
        case .noStages: return "graph has no stages: its output is its input"
        case .outputNotFromInput(let node): return "output node '\(node)' does not depend on this graph's input"
        case .foreignNode(let node): return "node '\(node)' uses a node from another graph"
        case .deadStage(let node): return "stage '\(node)' does not reach the output (dead stage)"
        case .invalidCapacity(let c): return "invalid channel capacity \(c) (must be 1...\(CompileOptions.maxCapacity))"
        case .invalidWorkerCount(let n): return "invalid worker count \(n) (must be at least 1)"
        case .tooManyWorkers(let r, let cpus):
            return "\(r) pinned workers requested but only \(cpus) CPUs are available"
        case .invalidNUMANode(let n, let available): return "NUMA node \(n) does not exist (\(available) node(s))"
        case .invalidOption(let what): return "invalid option: \(what)"
        case .regionTooLarge(let bytes):
            return "channels would need \(bytes) bytes of shared memory (limit \(CompileOptions.maxRegionBytes))"
        case .actorAlreadyBound(let actor): return "actor '\(actor)' is already bound to a running compiled graph"
        case .platform(let op, let errno): return "\(op) failed: \(errno)"
        case .notIsolatable(let node, let type):
            return "node '\(node)' produces \(type), which holds references and is not WireEncodable, so it cannot "
                + "cross a process boundary (isolation .processes copies trivially copyable values and encodes "
                + "WireEncodable ones)"
        case .planMismatch(let worker, let detail): return "worker process \(worker) built a different plan: \(detail)"
        case .isolatedWorkerRefused(let worker, let reason):
            return "worker process \(worker) refused to start: \(reason)"
        case .unknownHost(let node, let host):
            return "node '\(node)' is placed on host '\(host)', which RemoteOptions.hosts does not list"
        case .notRemotable(let node, let type):
            return "node '\(node)' produces \(type), which holds references and cannot cross hosts "
                + "(cross-host values must be trivially copyable)"
        case .actorSplitAcrossHosts(let actor): return "the nodes of actor '\(actor)' are placed on different hosts"
        case .hostUnreachable(let host, let reason): return "no piece for host '\(host)' could be reached: \(reason)"
        case .pieceRefused(let host, let reason): return "the piece for host '\(host)' refused the graph: \(reason)"
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
