/// A static DAG of stages from `Input` to `Output`, declared once and compiled once.
///
/// ```swift
/// let graph = Graph(input: Int.self) { x in
///     let a = x.then(Scale(factor: 2))
///     return zip(a.then { $0 + 1 }, a.then { $0 * $0 }).then { $0 + $1 }
/// }
/// let compiled = try graph.compile()
/// ```
public struct Graph<Input: Sendable, Output: Sendable>: Sendable {
    @usableFromInline let builder: GraphBuilder
    @usableFromInline let inputIndex: Int
    /// The output node and the builder it came from (another graph's node is rejected at compile).
    @usableFromInline let outputIndex: Int
    @usableFromInline let outputBuilder: ObjectIdentifier

    /// Declares a graph: `build` receives the input node and returns the output node.
    public init(input: Input.Type = Input.self, _ build: (Node<Input>) throws -> Node<Output>) rethrows {
        let builder = GraphBuilder()
        let inputIndex = builder.add(
            name: "input",
            defaultName: "input",
            kind: .input,
            inputs: [],
            actor: nil,
            layout: .of(Input.self),
            makeKernel: nil
        )
        let output = try build(Node<Input>(builder: builder, index: inputIndex))
        self.builder = builder
        self.inputIndex = inputIndex
        self.outputIndex = output.index
        self.outputBuilder = ObjectIdentifier(output.builder)
    }

    /// Declares a graph with two outputs, returned as a tuple (joined like ``zip(_:_:name:)``).
    public init<A: Sendable, B: Sendable>(
        input: Input.Type = Input.self,
        _ build: (Node<Input>) throws -> (Node<A>, Node<B>)
    ) rethrows
    where Output == (A, B) {
        try self.init(input: input) { x in
            let (a, b) = try build(x)
            return zip(a, b, name: "outputs")
        }
    }

    /// The names of the graph's nodes, in declaration (topological) order.
    public var nodeNames: [String] { builder.nodes.map(\.name) }
}
