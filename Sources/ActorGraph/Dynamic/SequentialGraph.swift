/// Every stage called in order on the caller's thread, into preallocated buffers: the honest lower
/// bound for trivial stages with no parallelism. Not thread-safe: use one per thread.
public final class SequentialGraph<Input, Output> {
    let nodes: [NodeSpec]
    let inputNode: Int
    let outputNode: Int
    let kernels: [KernelFunction?]
    let buffers: [UnsafeMutableRawPointer]
    let arguments: [UnsafeMutablePointer<UnsafeRawPointer>]
    private var initialized: [Bool]

    init(nodes: [NodeSpec], inputNode: Int, outputNode: Int) {
        self.nodes = nodes
        self.inputNode = inputNode
        self.outputNode = outputNode
        kernels = nodes.map { $0.makeKernel?() }
        let buffers = nodes.map { UnsafeMutableRawPointer.allocate(byteCount: max(1, $0.layout.size), alignment: $0.layout.alignment) }
        self.buffers = buffers
        arguments = nodes.map { node in
            let arguments = UnsafeMutablePointer<UnsafeRawPointer>.allocate(capacity: max(1, node.inputs.count))
            for (i, input) in node.inputs.enumerated() { (arguments + i).initialize(to: UnsafeRawPointer(buffers[input])) }
            return arguments
        }
        initialized = Array(repeating: false, count: nodes.count)
    }

    deinit {
        clear()
        buffers.forEach { $0.deallocate() }
        arguments.forEach { $0.deallocate() }
    }

    private func clear() {
        for node in nodes where initialized[node.index] {
            if !node.layout.isTrivial { node.layout.destroy(buffers[node.index]) }
            initialized[node.index] = false
        }
    }

    /// Runs one execution on the calling thread.
    public func execute(_ input: Input) throws(GraphError) -> Output {
        defer { clear() }
        buffers[inputNode].initializeMemory(as: Input.self, to: input)
        initialized[inputNode] = true
        for node in nodes where node.index != inputNode {
            do {
                try kernels[node.index]!(arguments[node.index], buffers[node.index])
            } catch {
                throw .stageFailed(node: node.name, error: error)
            }
            initialized[node.index] = true
        }
        return buffers[outputNode].assumingMemoryBound(to: Output.self).pointee
    }
}

extension Graph {
    /// The same graph on the dynamic task path (no compilation): one task per node per execution.
    /// Validates like ``compile(_:)`` and throws the same errors for malformed graphs.
    public func dynamic() throws(GraphError) -> DynamicGraph<Input, Output> {
        let nodes = try validatedNodes()
        return DynamicGraph(nodes: nodes, inputNode: inputIndex, outputNode: outputIndex)
    }

    /// The same graph called stage by stage on the caller's thread (the no-parallelism lower bound).
    public func sequential() throws(GraphError) -> SequentialGraph<Input, Output> {
        let nodes = try validatedNodes()
        return SequentialGraph(nodes: nodes, inputNode: inputIndex, outputNode: outputIndex)
    }

    func validatedNodes() throws(GraphError) -> [NodeSpec] {
        let nodes = builder.nodes
        let outputName = outputBuilder == ObjectIdentifier(builder) ? nodes[outputIndex].name : "node #\(outputIndex) of another graph"
        try Compiler.validate(nodes: nodes, builder: ObjectIdentifier(builder), inputNode: inputIndex,
                              outputNode: outputIndex, outputBuilder: outputBuilder, outputName: outputName)
        return nodes
    }
}
