import Synchronization

/// What a node is, for the compiler.
@usableFromInline
enum NodeKind: Sendable, Equatable {
    /// The graph's input: written by `submit`, no kernel.
    case input
    /// A stage with one input (struct stage, closure or actor method).
    case stage
    /// A join of 2–4 nodes of the same execution into a tuple.
    case zip
}

/// The declaration of one node, type-erased: what the compiler, the runtime and the dynamic path need.
///
/// `@unchecked Sendable`: `name`, `host` and `maxEncodedBytes` are only set while the graph is being
/// declared (under the builder's lock); the compiler and the runtime read specs after declaration only.
@usableFromInline
final class NodeSpec: @unchecked Sendable {
    @usableFromInline let index: Int
    @usableFromInline var name: String
    @usableFromInline let kind: NodeKind
    /// Indices of the nodes this node reads, in argument order (earlier indices only: no cycles).
    @usableFromInline let inputs: [Int]
    /// The builder of each input, to detect nodes taken from another graph.
    @usableFromInline let inputBuilders: [ObjectIdentifier]
    @usableFromInline let actor: ActorBinding?
    @usableFromInline let layout: ValueLayout
    @usableFromInline let makeKernel: KernelFactory?
    /// The host the node is placed on (`Node.on(_:)`), `nil` for the compiling machine.
    @usableFromInline var host: String?
    /// ``Node/maxEncodedBytes(_:)``, when declared (set while the graph is declared, like `name`).
    var maxEncodedBytes: Int?

    @usableFromInline
    init(
        index: Int,
        name: String,
        kind: NodeKind,
        inputs: [Int],
        inputBuilders: [ObjectIdentifier],
        actor: ActorBinding?,
        layout: ValueLayout,
        makeKernel: KernelFactory?
    ) {
        self.index = index
        self.name = name
        self.kind = kind
        self.inputs = inputs
        self.inputBuilders = inputBuilders
        self.actor = actor
        self.layout = layout
        self.makeKernel = makeKernel
    }
}

/// Collects the nodes of one graph while its building closure runs. Nodes can only be made from
/// existing nodes, so indices are a topological order and cycles cannot be expressed.
///
/// `@unchecked Sendable`: its only state is behind a `Mutex`.
@usableFromInline
final class GraphBuilder: @unchecked Sendable {
    private let lock = Mutex<[NodeSpec]>([])

    @usableFromInline init() {}

    @usableFromInline var nodes: [NodeSpec] { lock.withLock { $0 } }

    @usableFromInline
    func add(
        name: String?,
        defaultName: String,
        kind: NodeKind,
        inputs: [(index: Int, builder: ObjectIdentifier)],
        actor: ActorBinding?,
        layout: ValueLayout,
        makeKernel: KernelFactory?
    ) -> Int {
        lock.withLock { nodes in
            let index = nodes.count
            let spec = NodeSpec(
                index: index,
                name: name ?? "\(defaultName)#\(index)",
                kind: kind,
                inputs: inputs.map(\.index),
                inputBuilders: inputs.map(\.builder),
                actor: actor,
                layout: layout,
                makeKernel: makeKernel
            )
            nodes.append(spec)
            return index
        }
    }

    @usableFromInline
    func place(_ index: Int, on host: String) {
        lock.withLock { nodes in nodes[index].host = host }
    }

    @usableFromInline
    func rename(_ index: Int, to name: String) {
        lock.withLock { nodes in nodes[index].name = name }
    }

    func setMaxEncodedBytes(_ index: Int, to limit: Int) {
        lock.withLock { nodes in nodes[index].maxEncodedBytes = limit }
    }
}
