/// A value flowing through a graph under construction: the output of the input or of a stage.
///
/// Nodes are only made from existing nodes (`then`, ``zip(_:_:name:)``), so a graph is always a DAG.
/// Using one node in several places is a fan-out: each reader sees each value once.
/// Values are `Sendable`: each one is made on one thread and read on another.
public struct Node<Value: Sendable> {
    @usableFromInline let builder: GraphBuilder
    @usableFromInline let index: Int

    @usableFromInline
    init(builder: GraphBuilder, index: Int) {
        self.builder = builder
        self.index = index
    }

    @usableFromInline
    var reference: (index: Int, builder: ObjectIdentifier) { (index, ObjectIdentifier(builder)) }

    /// Gives the node a name, used by errors (`ExecutionError.stageFailed(node:)`) and `dot()`.
    @discardableResult
    public func named(_ name: String) -> Node<Value> {
        builder.rename(index, to: name)
        return self
    }

    /// Places this node on the host named `host`: it runs in that host's piece (see
    /// ``RemoteOptions/hosts``); its values cross to other hosts over TCP. Unplaced nodes run on
    /// the machine that compiled the graph.
    @discardableResult
    public func on(_ host: String) -> Node<Value> {
        builder.place(index, on: host)
        return self
    }

    /// Adds a stage that processes this node's values; the stage's state belongs to the new node.
    @inlinable
    public func then<S: Stage>(_ stage: S, name: String? = nil) -> Node<S.Output> where S.Input == Value {
        let index = builder.add(
            name: name,
            defaultName: String(describing: S.self),
            kind: .stage,
            inputs: [reference],
            actor: nil,
            layout: .of(S.Output.self),
            makeKernel: {
                let box = StageBox(stage)
                return { inputs, output in
                    // The input is borrowed in place and the result written straight to `output`.
                    output.assumingMemoryBound(to: S.Output.self)
                        .initialize(to: try box.stage.process(inputs[0].assumingMemoryBound(to: Value.self).pointee))
                }
            }
        )
        return Node<S.Output>(builder: builder, index: index)
    }

    /// Adds a closure stage. The closure runs on a worker thread, so it is `@Sendable`: it may
    /// capture values and `Sendable` references, never mutable state the caller also touches.
    @inlinable
    public func then<Output: Sendable>(
        name: String? = nil,
        _ body: @escaping @Sendable (Value) throws -> Output
    ) -> Node<Output> {
        let index = builder.add(
            name: name,
            defaultName: "closure",
            kind: .stage,
            inputs: [reference],
            actor: nil,
            layout: .of(Output.self),
            makeKernel: {
                { inputs, output in
                    output.assumingMemoryBound(to: Output.self)
                        .initialize(to: try body(inputs[0].assumingMemoryBound(to: Value.self).pointee))
                }
            }
        )
        return Node<Output>(builder: builder, index: index)
    }

    /// Adds a stage that calls a method of a shared stateful actor. All nodes using `actor` run on one worker,
    /// which owns the state while the graph runs.
    @inlinable
    public func then<State, Output: Sendable>(
        _ actor: ActorRef<State>,
        name: String? = nil,
        _ body: @escaping @Sendable (inout State, Value) throws -> Output
    ) -> Node<Output> {
        let index = builder.add(
            name: name,
            defaultName: actor.name,
            kind: .stage,
            inputs: [reference],
            actor: ActorBinding(actor),
            layout: .of(Output.self),
            makeKernel: {
                { inputs, output in
                    output.assumingMemoryBound(to: Output.self)
                        .initialize(
                            to: try body(&actor.cell.state, inputs[0].assumingMemoryBound(to: Value.self).pointee)
                        )
                }
            }
        )
        return Node<Output>(builder: builder, index: index)
    }
}

/// Joins the values of the same execution from two nodes (fan-in).
@inlinable
public func zip<A: Sendable, B: Sendable>(_ a: Node<A>, _ b: Node<B>, name: String? = nil) -> Node<(A, B)> {
    let index = a.builder.add(
        name: name,
        defaultName: "zip",
        kind: .zip,
        inputs: [a.reference, b.reference],
        actor: nil,
        layout: .of(zipOf: A.self, B.self),
        makeKernel: {
            { inputs, output in
                output.initializeMemory(
                    as: (A, B).self,
                    to: (
                        inputs[0].assumingMemoryBound(to: A.self).pointee,
                        inputs[1].assumingMemoryBound(to: B.self).pointee
                    )
                )
            }
        }
    )
    return Node<(A, B)>(builder: a.builder, index: index)
}

/// Joins the values of the same execution from three nodes (fan-in).
@inlinable
public func zip<A: Sendable, B: Sendable, C: Sendable>(
    _ a: Node<A>,
    _ b: Node<B>,
    _ c: Node<C>,
    name: String? = nil
) -> Node<(A, B, C)> {
    let index = a.builder.add(
        name: name,
        defaultName: "zip",
        kind: .zip,
        inputs: [a.reference, b.reference, c.reference],
        actor: nil,
        layout: .of(zipOf: A.self, B.self, C.self),
        makeKernel: {
            { inputs, output in
                output.initializeMemory(
                    as: (A, B, C).self,
                    to: (
                        inputs[0].assumingMemoryBound(to: A.self).pointee,
                        inputs[1].assumingMemoryBound(to: B.self).pointee,
                        inputs[2].assumingMemoryBound(to: C.self).pointee
                    )
                )
            }
        }
    )
    return Node<(A, B, C)>(builder: a.builder, index: index)
}

/// Joins the values of the same execution from four nodes (fan-in).
@inlinable
public func zip<A: Sendable, B: Sendable, C: Sendable, D: Sendable>(
    _ a: Node<A>,
    _ b: Node<B>,
    _ c: Node<C>,
    _ d: Node<D>,
    name: String? = nil
) -> Node<(A, B, C, D)> {
    let index = a.builder.add(
        name: name,
        defaultName: "zip",
        kind: .zip,
        inputs: [a.reference, b.reference, c.reference, d.reference],
        actor: nil,
        layout: .of(zipOf: A.self, B.self, C.self, D.self),
        makeKernel: {
            { inputs, output in
                output.initializeMemory(
                    as: (A, B, C, D).self,
                    to: (
                        inputs[0].assumingMemoryBound(to: A.self).pointee,
                        inputs[1].assumingMemoryBound(to: B.self).pointee,
                        inputs[2].assumingMemoryBound(to: C.self).pointee,
                        inputs[3].assumingMemoryBound(to: D.self).pointee
                    )
                )
            }
        }
    )
    return Node<(A, B, C, D)>(builder: a.builder, index: index)
}
