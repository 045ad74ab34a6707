/// Every stage called in order on the caller's thread, into preallocated buffers: the honest lower
/// bound for trivial stages with no parallelism. Not thread-safe: use one per thread.
///
/// Failures follow the compiled engine's dataflow rule: a stage runs when none of its inputs failed;
/// a node whose input failed forwards the failure of its first failed input (argument order) without
/// running; stages not downstream of a failure still run. So outcomes and stage/actor state match
/// the compiled and dynamic paths execution for execution.
public final class SequentialGraph<Input, Output> {
    let nodes: [NodeSpec]
    let inputNode: Int
    let outputNode: Int
    let kernels: [KernelFunction?]
    let buffers: [UnsafeMutableRawPointer]
    let arguments: [UnsafeMutablePointer<UnsafeRawPointer>]
    private var initialized: [Bool]
    /// Per node: -1, or the index of the node whose failure this node carries (set during one execution).
    private var failedBy: [Int]
    /// The error of each node that threw during the current execution.
    private var errors: [(any Error)?]

    init(nodes: [NodeSpec], inputNode: Int, outputNode: Int) {
        self.nodes = nodes
        self.inputNode = inputNode
        self.outputNode = outputNode
        kernels = nodes.map { $0.makeKernel?() }
        let buffers = nodes.map {
            UnsafeMutableRawPointer.allocate(byteCount: max(1, $0.layout.size), alignment: $0.layout.alignment)
        }
        self.buffers = buffers
        arguments = nodes.map { node in
            let arguments = UnsafeMutablePointer<UnsafeRawPointer>.allocate(capacity: max(1, node.inputs.count))
            for (i, input) in node.inputs.enumerated() {
                (arguments + i).initialize(to: UnsafeRawPointer(buffers[input]))
            }
            return arguments
        }
        initialized = Array(repeating: false, count: nodes.count)
        failedBy = Array(repeating: -1, count: nodes.count)
        errors = Array(repeating: nil, count: nodes.count)
    }

    deinit {
        clear()
        buffers.forEach { $0.deallocate() }
        arguments.forEach { $0.deallocate() }
    }

    private func clear() {
        for node in nodes {
            if initialized[node.index] {
                if !node.layout.isTrivial { node.layout.destroy(buffers[node.index]) }
                initialized[node.index] = false
            }
            if failedBy[node.index] >= 0 {
                if failedBy[node.index] == node.index { errors[node.index] = nil }
                failedBy[node.index] = -1
            }
        }
    }

    /// Runs one execution on the calling thread.
    public func execute(_ input: Input) throws(ExecutionError) -> Output {
        defer { clear() }
        buffers[inputNode].initializeMemory(as: Input.self, to: input)
        initialized[inputNode] = true
        nextNode: for node in nodes where node.index != inputNode {
            for input in node.inputs where failedBy[input] >= 0 {
                failedBy[node.index] = failedBy[input]
                continue nextNode
            }
            do {
                try kernels[node.index]!(arguments[node.index], buffers[node.index])
            } catch {
                failedBy[node.index] = node.index
                errors[node.index] = error
                continue
            }
            initialized[node.index] = true
        }
        let failed = failedBy[outputNode]
        if failed >= 0 { throw .stageFailed(node: nodes[failed].name, error: errors[failed]!) }
        return buffers[outputNode].assumingMemoryBound(to: Output.self).pointee
    }
}

extension Graph {
    /// The same graph on the dynamic task path (no compilation): one task per node per execution.
    /// Validates like ``compile(_:)`` and throws the same errors for malformed graphs.
    public func dynamic() throws(CompileError) -> DynamicGraph<Input, Output> {
        let nodes = try validatedNodes()
        return DynamicGraph(nodes: nodes, inputNode: inputIndex, outputNode: outputIndex)
    }

    /// The same graph called stage by stage on the caller's thread (the no-parallelism lower bound).
    public func sequential() throws(CompileError) -> SequentialGraph<Input, Output> {
        let nodes = try validatedNodes()
        return SequentialGraph(nodes: nodes, inputNode: inputIndex, outputNode: outputIndex)
    }

    func validatedNodes() throws(CompileError) -> [NodeSpec] {
        let nodes = builder.nodes
        let outputName =
            outputBuilder == ObjectIdentifier(builder)
            ? nodes[outputIndex].name : "node #\(outputIndex) of another graph"
        try Compiler.validate(
            nodes: nodes,
            builder: ObjectIdentifier(builder),
            inputNode: inputIndex,
            outputNode: outputIndex,
            outputBuilder: outputBuilder,
            outputName: outputName
        )
        return nodes
    }
}
