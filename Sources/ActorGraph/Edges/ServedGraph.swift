import ActorGraphPlatform
import Glibc

extension Graph {
    /// Compiles the graph and serves it over UDP: worker 0's io_uring receives each datagram as one
    /// record, the graph processes it, and the reply datagram goes back to its sender.
    ///
    /// - Parameters:
    ///   - host: the address to bind (loopback by default).
    ///   - port: the port to bind; 0 picks a free one (see ``ServedGraph/port``).
    ///   - codec: how records become inputs and outputs become replies.
    ///   - options: how the graph is compiled (worker 0 also runs the UDP source and sink).
    /// - Throws: ``CompileError`` for a malformed graph, or ``CompileError/platform(operation:errno:)``
    ///   when the socket cannot be bound or io_uring is refused on this host.
    public func serve(
        host: String = "127.0.0.1",
        port: UInt16 = 0,
        codec: RecordCodec<Input, Output>,
        options: CompileOptions = CompileOptions()
    ) throws(CompileError) -> ServedGraph<Input, Output> {
        guard !options.isolatesProcesses else {
            throw .invalidOption(
                "serve runs its UDP edge on worker 0's io_uring: isolation .processes is not supported"
            )
        }
        if case .failure(let errno) = IORing.probe() {
            throw .platform(operation: "io_uring_queue_init (network edges need io_uring)", errno: errno)
        }
        if case .failure(let errno) = IORing.supportsBufferRings() {
            throw .platform(
                operation: "io_uring_register_buf_ring (serve receives into provided buffers: Linux 6.0+)",
                errno: errno
            )
        }
        let plan = try Compiler.plan(
            nodes: try validatedNodes(),
            inputNode: inputIndex,
            outputNode: outputIndex,
            options: options
        )
        guard !plan.isRemote else {
            throw .invalidOption(
                "serve runs on one host: its UDP edge and the TCP edges to other hosts would share worker 0's io_uring (not supported yet)"
            )
        }
        let socket: UDPSocket
        do {
            socket = try UDPSocket(bindingTo: host, port: port)
        } catch {
            throw .platform(operation: "bind udp \(host):\(port)", errno: error)
        }
        var service: UDPService<Input, Output>? = nil
        let core = try EngineCore(plan: plan, options: options) { core in
            let s = UDPService(socket: socket, codec: codec, capacity: plan.capacity)
            s.engine = Unmanaged.passUnretained(core)
            service = s
            return s
        }
        return ServedGraph(compiled: CompiledGraph(core: core), service: service!, socket: socket)
    }
}

/// A compiled graph with a UDP edge: records in, replies out, through worker 0's io_uring.
/// In-process `execute` calls keep working beside the network traffic.
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

    /// Stops admitting datagrams (a graceful stop's first step): records already received are
    /// still executed and answered; later datagrams are counted in
    /// ``ServiceStatistics/ignoredWhileStopping``. Returns at once; see ``drain(timeout:)``.
    public func stopReceiving() {
        service.stopReceivingRequested.store(true, ordering: .sequentiallyConsistent)
        // Thread mode only (serve refuses process isolation): worker 0 runs the UDP edge.
        Worker.wake(compiled.core.workers[0].parkWord, shared: false)
    }

    /// Waits until the source stopped receiving and every record it received was answered, up
    /// to `timeout`. Returns whether it drained (false: time ran out, ``statistics`` says what is
    /// left). Call ``stopReceiving()`` first.
    public func drain(timeout: Duration = .seconds(5)) -> Bool {
        let deadline = MonotonicClock.now() &+ UInt64(max(0, timeout.nanoseconds))
        while true {
            let s = statistics
            if !s.receiving && s.inFlight == 0 { return true }
            if MonotonicClock.now() >= deadline { return false }
            var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// Stops the workers and closes the socket. Idempotent.
    public func shutdown() {
        compiled.shutdown()
        socket.close()
    }

    deinit { shutdown() }
}
