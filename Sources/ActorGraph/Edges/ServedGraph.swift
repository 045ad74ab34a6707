import ActorGraphPlatform

extension Graph {
    /// Compiles the graph and serves it over UDP: worker 0's io_uring receives each datagram as one
    /// record, the graph processes it, and the reply datagram goes back to its sender.
    ///
    /// - Parameters:
    ///   - host: the address to bind (loopback by default).
    ///   - port: the port to bind; 0 picks a free one (see ``ServedGraph/port``).
    ///   - codec: how records become inputs and outputs become replies.
    /// - Throws: ``GraphError`` for a malformed graph, or ``GraphError/platform(operation:errno:)``
    ///   when the socket cannot be bound or io_uring is refused on this host.
    public func serve(host: String = "127.0.0.1", port: UInt16 = 0, codec: RecordCodec<Input, Output>,
                      options: CompileOptions = CompileOptions()) throws(GraphError) -> ServedGraph<Input, Output> {
        if case .failure(let errno) = IORing.probe() {
            throw .platform(operation: "io_uring_queue_init (network edges need io_uring)", errno: errno)
        }
        let plan = try Compiler.plan(nodes: try validatedNodes(), inputNode: inputIndex, outputNode: outputIndex, options: options)
        let socket: UDPSocket
        do {
            socket = try UDPSocket(bindingTo: host, port: port)
        } catch {
            throw .platform(operation: "bind udp \(host):\(port)", errno: error)
        }
        var service: UDPService<Input, Output>? = nil
        let core = try EngineCore(plan: plan, options: options) { core in
            let s = UDPService(socket: socket, codec: codec, capacity: plan.capacity)
            s.core = core
            service = s
            return s
        }
        return ServedGraph(compiled: CompiledGraph(core: core), service: service!, socket: socket)
    }
}

/// A compiled graph with a UDP edge: records in, replies out, through worker 0's io_uring.
/// In-process ``CompiledGraph/execute(_:)`` calls keep working beside the network traffic.
public final class ServedGraph<Input: Sendable, Output: Sendable>: Sendable {
    /// The compiled graph behind the socket.
    public let compiled: CompiledGraph<Input, Output>
    let service: UDPService<Input, Output>
    let socket: UDPSocket

    init(compiled: CompiledGraph<Input, Output>, service: UDPService<Input, Output>, socket: UDPSocket) {
        self.compiled = compiled
        self.service = service
        self.socket = socket
    }

    /// The UDP port the graph listens on.
    public var port: UInt16 { socket.port }

    /// What the edge counted so far (updated by the worker as it makes progress).
    public var statistics: ServiceStatistics { service.statistics.withLock { $0 } }

    /// Stops the workers and closes the socket. Idempotent.
    public func shutdown() {
        compiled.shutdown()
        socket.close()
    }

    deinit { shutdown() }
}
