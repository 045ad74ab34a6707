import ActorGraphPlatform
import Glibc
import Synchronization

/// A minimal HTTP/1.1 responder for Prometheus scrapes: `GET /metrics` answers the text from
/// `render`, anything else 404; one connection at a time, closed after each answer.
///
/// One thread blocked in `accept` (no polling: it costs nothing while nobody scrapes); ``stop()``
/// shuts the listening socket down, which ends the `accept`, and joins the thread.
public final class MetricsHTTPServer: Sendable {
    /// The TCP port it listens on (the one asked for, or the one the kernel picked for 0).
    public let port: UInt16
    private let listener: Int32
    private let thread: Mutex<PinnedThread?>
    private let stopped = Atomic<Bool>(false)
    /// Scrapes answered so far.
    public var scrapes: Int { served.load(ordering: .relaxed) }
    private let served = Atomic<Int>(0)

    /// Listens on `host:port` (0 picks a free port) and answers scrapes with `render()`, called on
    /// the server's thread for each `GET /metrics`.
    public init(host: String = "127.0.0.1", port: UInt16, render: @escaping @Sendable () -> String) throws(Errno) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = try UDPSocket.address(host: host, port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let error = Errno(rawValue: errno)
            Glibc.close(fd)
            throw error
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = UInt16(bigEndian: actual.sin_port)
        self.listener = fd
        self.thread = Mutex(nil)
        let t = try PinnedThread(name: "actorgraph-metrics", cpu: nil) { [self] in
            self.acceptLoop(render)
        }
        thread.withLock { $0 = t }
    }

    deinit { stop() }

    /// Stops listening and joins the server's thread. Idempotent.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        let t = thread.withLock { t -> PinnedThread? in defer { t = nil }; return t }
        t?.join()
        Glibc.close(listener)
    }

    private func acceptLoop(_ render: @Sendable () -> String) {
        while !stopped.load(ordering: .acquiring) {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // shut down (EINVAL) or a fatal error
            }
            answer(connection, render)
            Glibc.close(connection)
        }
    }

    private func answer(_ connection: Int32, _ render: @Sendable () -> String) {
        // A scrape's request fits one read in practice; read until the end of the headers or 8 KiB.
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while request.count < 8192 {
            let n = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            request.append(contentsOf: buffer[0..<n])
            if request.count >= 4, request.suffix(4).elementsEqual([13, 10, 13, 10]) { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let response: String
        if parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?") {
            let body = render()
            served.add(1, ordering: .relaxed)
            response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        } else {
            let body = "not found: try GET /metrics\n"
            response = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        }
        var bytes = Array(response.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { send(connection, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            offset += n
        }
    }
}
