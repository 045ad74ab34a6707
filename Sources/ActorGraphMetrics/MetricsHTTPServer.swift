import ActorGraphPlatform
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The Prometheus scrape endpoint, on swift-nio's HTTP/1.1 stack: `GET /metrics` (or `HEAD`) answers
/// the text from `render`, another method on `/metrics` 405, any other path 404.
///
/// One event-loop thread multiplexes every connection with non-blocking I/O, so an idle, slow or
/// half-sent request holds only its own connection: scrapes on other connections are answered at
/// once, and several scrapes can be in flight together. `render` runs on that thread, one call at a
/// time (as with the earlier one-connection server), so a closure that keeps state between reports
/// (``PrometheusExposition`` sends deltas) sees them in order. Connections are kept alive when the
/// client asks (Prometheus reuses its connection), and closed after ``idleTimeout`` without a byte.
///
/// A request head (request line and headers) is limited to ``maxRequestHeadBytes``; a larger one is
/// answered 400 and its connection closed. A request body (a scrape has none) over
/// ``maxRequestBodyBytes`` is answered 413 and closed. ``stop()`` closes the listener and every
/// open connection, idle ones included, and joins the thread.
public final class MetricsHTTPServer: Sendable {
    /// The TCP port it listens on (the one asked for, or the one the kernel picked for 0).
    public let port: UInt16
    /// Scrapes answered so far.
    public var scrapes: Int { counters.served.load(ordering: .relaxed) }
    /// Connections open now (accepted, not yet closed): for tests.
    package var openConnections: Int { counters.open.load(ordering: .relaxed) }

    /// The largest request line plus headers accepted, in bytes.
    public static let maxRequestHeadBytes = 8192
    /// The largest request body accepted, in bytes (a scrape sends none).
    public static let maxRequestBodyBytes = 8192
    /// How long a connection may stay without a byte from its client before it is closed.
    public static let idleTimeout: Duration = .seconds(120)

    private let group: MultiThreadedEventLoopGroup
    private let listener: any Channel
    private let counters: Counters
    private let stopped = Atomic<Bool>(false)

    /// Listens on `host:port` (an IPv4 address; 0 picks a free port) and answers scrapes with
    /// `render()`, called on the server's event-loop thread for each `GET /metrics`.
    public init(host: String = "127.0.0.1", port: UInt16, render: @escaping @Sendable () -> String) throws(Errno) {
        _ = try UDPSocket.address(host: host, port: port)  // an IPv4 literal, as before: EINVAL otherwise
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: host, port: Int(port))
        } catch {
            throw Errno.invalidArgument
        }
        let counters = Counters()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var limits = NIOHTTPDecoderLimitConfiguration()
                    limits.maxHeaderListSize = Self.maxRequestHeadBytes  // counts the request line too
                    limits.maxHeaderFieldSize = Self.maxRequestHeadBytes
                    limits.maxHeaderFieldCount = 100
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(
                        IdleStateHandler(
                            readTimeout: TimeAmount.nanoseconds(
                                Int64(Self.idleTimeout.components.seconds) * 1_000_000_000
                            )
                        )
                    )
                    try pipeline.configureHTTPServerPipeline(
                        withEncoderConfiguration: .init(),
                        withDecoderLimitConfiguration: limits
                    )
                    try pipeline.addHandler(ScrapeHandler(render: render, counters: counters))
                }
            }
        do {
            listener = try bootstrap.bind(to: address).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw (error as? IOError).map { Errno(rawValue: $0.errnoCode) } ?? Errno(rawValue: EIO)
        }
        self.port = UInt16(listener.localAddress?.port ?? Int(port))
        self.group = group
        self.counters = counters
    }

    deinit { stop() }

    /// Stops listening, closes every open connection and joins the server's thread. Idempotent.
    /// Must not be called from the server's own thread (that is, from `render`).
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try? listener.close().wait()
        // Closes every channel still registered (idle connections included), then joins the thread.
        try? group.syncShutdownGracefully()
    }
}

/// Shared between the server and its connections' handlers (on the event-loop thread).
private final class Counters: Sendable {
    let served = Atomic<Int>(0)
    let open = Atomic<Int>(0)
}

/// One per connection, on the event-loop thread only (not `Sendable`, never leaves it).
private final class ScrapeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> String
    private let counters: Counters
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var refused = false

    init(render: @escaping @Sendable () -> String, counters: Counters) {
        self.render = render
        self.counters = counters
    }

    func channelActive(context: ChannelHandlerContext) {
        counters.open.add(1, ordering: .relaxed)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        counters.open.subtract(1, ordering: .relaxed)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            bodyBytes = 0
        case .body(let chunk):
            bodyBytes += chunk.readableBytes
            if bodyBytes > MetricsHTTPServer.maxRequestBodyBytes, !refused, let request = head {
                refused = true
                respond(
                    context,
                    to: request,
                    status: .payloadTooLarge,
                    body: "request body too large\n",
                    keepAlive: false
                )
            }
        case .end:
            guard let request = head, !refused else { return }
            head = nil
            let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if path == "/metrics" {
                if request.method == .GET || request.method == .HEAD {
                    let text = render()
                    counters.served.add(1, ordering: .relaxed)
                    respond(
                        context,
                        to: request,
                        status: .ok,
                        body: text,
                        contentType: "text/plain; version=0.0.4; charset=utf-8",
                        keepAlive: request.isKeepAlive
                    )
                } else {
                    respond(
                        context,
                        to: request,
                        status: .methodNotAllowed,
                        body: "method not allowed: try GET /metrics\n",
                        extraHeaders: [("Allow", "GET, HEAD")],
                        keepAlive: request.isKeepAlive
                    )
                }
            } else {
                respond(
                    context,
                    to: request,
                    status: .notFound,
                    body: "not found: try GET /metrics\n",
                    keepAlive: request.isKeepAlive
                )
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)  // no byte for `idleTimeout`: free the connection
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(
        _ context: ChannelHandlerContext,
        to request: HTTPRequestHead,
        status: HTTPResponseStatus,
        body: String,
        contentType: String = "text/plain; charset=utf-8",
        extraHeaders: [(String, String)] = [],
        keepAlive: Bool
    ) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.utf8.count))])
        headers.add(contentsOf: extraHeaders)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
            promise: nil
        )
        if request.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))),
                promise: nil
            )
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
