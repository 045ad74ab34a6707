/// The dynamic task path: the same graph run without compiling, the Swift equivalent of Ray's
/// classic `.remote()` + `ray.get`. Each execution allocates a buffer per node and starts one
/// Swift Concurrency task per node; a task awaits its inputs' tasks, then calls its stage on the
/// node's actor (nodes sharing an ``ActorRef`` share one actor, so state is never raced).
///
/// This is the honest baseline the compiled path is measured against: idiomatic structured
/// concurrency, no artificial sleeps or copies.
///
/// `Sendable`: its state is immutable after `init` (nodes, executors) or atomic (the shutdown flag).
public final class DynamicGraph<Input: Sendable, Output: Sendable>: Sendable {
    let nodes: [NodeSpec]
    let inputNode: Int
    let outputNode: Int
    /// The executor of each stage node (nil for the input).
    let executors: [StageExecutor?]
    private let stopped = ShutdownFlag()

    init(nodes: [NodeSpec], inputNode: Int, outputNode: Int) {
        self.nodes = nodes
        self.inputNode = inputNode
        self.outputNode = outputNode
        var byActor: [ObjectIdentifier: StageExecutor] = [:]
        executors = nodes.map { node in
            guard let makeKernel = node.makeKernel else { return nil }
            if let actor = node.actor {
                let executor = byActor[actor.id] ?? StageExecutor()
                byActor[actor.id] = executor
                executor.install(node: node.index, kernel: makeKernel())
                return executor
            }
            let executor = StageExecutor()
            executor.install(node: node.index, kernel: makeKernel())
            return executor
        }
    }

    /// Runs one execution: one task per node, values handed over through task completion.
    public func execute(_ input: Input) async throws(ExecutionError) -> Output {
        if stopped.isSet { throw .shutDown }
        let buffers = NodeBuffers(nodes: nodes)
        defer { buffers.release() }
        buffers.pointer(inputNode).initializeMemory(as: Input.self, to: input)
        buffers.markInitialized(inputNode)
        var tasks = [Task<Void, any Error>?](repeating: nil, count: nodes.count)
        for node in nodes where node.index != inputNode {
            let dependencies = node.inputs.compactMap { tasks[$0] }
            let executor = executors[node.index]!
            let index = node.index
            let name = node.name
            tasks[node.index] = Task {
                for dependency in dependencies { try await dependency.value }
                try await executor.run(node: index, name: name, buffers: buffers)
            }
        }
        // Every task must finish before the buffers are released, even after a failure.
        for case let task? in tasks { _ = try? await task.value }
        do {
            try await tasks[outputNode]!.value
        } catch let error as ExecutionError {
            throw error
        } catch {
            throw .stageFailed(node: nodes[outputNode].name, error: error)
        }
        return buffers.pointer(outputNode).assumingMemoryBound(to: Output.self).pointee
    }

    /// Makes later executions throw ``ExecutionError/shutDown`` (running ones finish).
    public func shutdown() { stopped.set() }
}

/// Serializes the stage calls of one node (or of all nodes sharing an actor), like a Ray actor.
actor StageExecutor {
    /// `nonisolated(unsafe)`: filled by `install` while the graph is constructed, before any task can
    /// reach the executor; only read (inside the actor) afterwards.
    nonisolated(unsafe) private var kernels: [Int: KernelFunction] = [:]

    /// Installs a kernel before the executor is used (construction time only).
    nonisolated func install(node: Int, kernel: @escaping KernelFunction) { kernels[node] = kernel }

    func run(node: Int, name: String, buffers: NodeBuffers) throws(ExecutionError) {
        let kernel = kernels[node]!
        let arguments = buffers.arguments(of: node)
        defer { arguments.deallocate() }
        do {
            try kernel(arguments, buffers.pointer(node))
        } catch {
            throw .stageFailed(node: name, error: error)
        }
        buffers.markInitialized(node)
    }
}

/// Per-execution value storage of the dynamic path: one heap buffer per node.
///
/// `@unchecked Sendable`: each node's buffer and flag is written by that node's task only, and read by
/// its consumers after awaiting that task (the task's completion orders the accesses).
final class NodeBuffers: @unchecked Sendable {
    let nodes: [NodeSpec]
    let storage: [UnsafeMutableRawPointer]
    /// One flag per node, each written only by that node's task (distinct memory: no data race).
    private let initialized: UnsafeMutablePointer<Bool>

    init(nodes: [NodeSpec]) {
        self.nodes = nodes
        storage = nodes.map { .allocate(byteCount: max(1, $0.layout.size), alignment: $0.layout.alignment) }
        initialized = .allocate(capacity: nodes.count)
        initialized.initialize(repeating: false, count: nodes.count)
    }

    func pointer(_ node: Int) -> UnsafeMutableRawPointer { storage[node] }

    /// Each node writes only its own flag, after its own task's value is complete.
    func markInitialized(_ node: Int) { initialized[node] = true }

    func arguments(of node: Int) -> UnsafeMutablePointer<UnsafeRawPointer> {
        let inputs = nodes[node].inputs
        let arguments = UnsafeMutablePointer<UnsafeRawPointer>.allocate(capacity: max(1, inputs.count))
        for (i, input) in inputs.enumerated() { (arguments + i).initialize(to: UnsafeRawPointer(storage[input])) }
        return arguments
    }

    func release() {
        for node in nodes {
            if initialized[node.index] && !node.layout.isTrivial { node.layout.destroy(storage[node.index]) }
            storage[node.index].deallocate()
        }
        initialized.deallocate()
    }
}
