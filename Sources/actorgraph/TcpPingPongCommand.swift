import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `actorgraph tcp-pingpong` (hidden): the raw TCP round trip a cross-host edge must be compared with
/// (issue 16, point 8). Plain blocking POSIX sockets, `TCP_NODELAY`, 32-byte messages: what a C
/// programmer would write, so any later edge (io_uring, framing, epochs) is measured against the
/// kernel's own cost and nothing else.
///
///     actorgraph tcp-pingpong --serve --host 10.231.0.2 --port 0     # prints: tcp-pingpong: listening on 10.231.0.2:PORT
///     actorgraph tcp-pingpong --connect 10.231.0.2 --port PORT --count 20000
///
/// The server accepts one connection and echoes until the client closes it; the client prints
/// `tcp-pingpong: p50_ns=… p99_ns=… p999_ns=… max_ns=… count=N`. Every wait is bounded by
/// `--timeout`: connecting (retried while refused, so the client may start before the server
/// listens), accepting, and each receive, so neither side outlives a dead peer by more than that.
struct TcpPingPongCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp-pingpong",
        abstract: "Raw TCP 32-byte ping-pong (the baseline for cross-host edges).",
        shouldDisplay: false
    )

    /// Bytes per message, each way.
    static let messageBytes = 32

    @Flag(help: "Accept one connection and echo 32-byte messages until it closes.")
    var serve = false

    @Option(help: "With --connect: the server's IPv4 address.")
    var connect: String?

    @Option(help: "With --serve: the IPv4 address to bind (default 0.0.0.0).")
    var host = "0.0.0.0"

    @Option(help: "TCP port (--serve: 0 picks a free one, printed).")
    var port: Int?

    @Option(help: "Timed round trips (--connect).")
    var count = 10_000

    @Option(help: "Untimed round trips first (--connect).")
    var warmup = 1_000

    @Option(help: "Seconds any one wait may take: connect (retried while refused), accept, each receive.")
    var timeout: Double = 5

    func validate() throws {
        if serve == (connect != nil) { throw ValidationError("give exactly one of --serve and --connect HOST") }
        if let connect, Self.ipv4(connect) == nil {
            throw ValidationError("--connect must be an IPv4 address (got '\(connect)')")
        }
        if serve, Self.ipv4(host) == nil { throw ValidationError("--host must be an IPv4 address (got '\(host)')") }
        if serve {
            if let port, !(0...65_535).contains(port) {
                throw ValidationError("--port must be 0...65535 (got \(port))")
            }
        } else {
            guard let port else { throw ValidationError("--connect needs --port") }
            if !(1...65_535).contains(port) { throw ValidationError("--port must be 1...65535 (got \(port))") }
        }
        // Samples are kept (8 bytes each) to sort for exact percentiles: bound the array.
        if !(1...10_000_000).contains(count) { throw ValidationError("--count must be 1...10000000 (got \(count))") }
        if !(0...10_000_000).contains(warmup) { throw ValidationError("--warmup must be 0...10000000 (got \(warmup))") }
        // Converted to milliseconds and a timeval: NaN, infinite or huge values would trap.
        if !(timeout > 0 && timeout <= 3_600) {
            throw ValidationError("--timeout must be a number of seconds in (0, 3600] (got \(timeout))")
        }
    }

    func run() throws {
        let timeoutMs = Int32(timeout * 1_000)
        do {
            if serve {
                try Self.serve(host: host, port: UInt16(port ?? 0), timeoutMs: max(1, timeoutMs))
            } else {
                let samples = try Self.client(
                    host: connect!,
                    port: UInt16(port!),
                    count: count,
                    warmup: warmup,
                    timeoutMs: max(1, timeoutMs)
                )
                print(Self.summaryLine(samples))
            }
        } catch let failure as PingPongFailure {
            throw CLI.fail("tcp-pingpong: \(failure.description)")
        }
    }

    // MARK: The two ends

    /// Binds, prints the `listening on` line (flushed: a parent waits for it), accepts one
    /// connection and echoes until EOF.
    static func serve(host: String, port: UInt16, timeoutMs: Int32) throws {
        let listener = try socketFD()
        defer { close(listener) }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddrIn(ipv4(host)!, port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw PingPongFailure.errno("bind \(host):\(port)", errno) }
        guard listen(listener, 1) == 0 else { throw PingPongFailure.errno("listen", errno) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        print("tcp-pingpong: listening on \(host):\(UInt16(bigEndian: address.sin_port))")
        fflush(nil)  // stdout is block-buffered in a pipe; the parent waits for this line

        var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        var polled: Int32
        repeat { polled = poll(&ready, 1, timeoutMs) } while polled < 0 && errno == EINTR
        guard polled > 0 else {
            throw polled == 0
                ? PingPongFailure.timedOut("accept (no client connected)") : PingPongFailure.errno("poll", errno)
        }
        // accept4 is not imported without _GNU_SOURCE; nothing is spawned here, close-on-exec is moot.
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { throw PingPongFailure.errno("accept", errno) }
        defer { close(connection) }
        try configure(connection, timeoutMs: timeoutMs)
        var buffer = [UInt8](repeating: 0, count: messageBytes)
        var served = 0
        // Ends at EOF, on an error, or when the client stays silent for the timeout.
        while try receiveExactly(connection, &buffer) {
            try sendAll(connection, buffer)
            served += 1
        }
        print("tcp-pingpong: served \(served) round trips")
    }

    /// Connects (retrying while refused, until the timeout), then `warmup` untimed and `count` timed
    /// round trips; each message carries its sequence number and the echo must return it.
    static func client(host: String, port: UInt16, count: Int, warmup: Int, timeoutMs: Int32) throws -> [UInt64] {
        let fd = try connectWithRetry(host: host, port: port, timeoutMs: timeoutMs)
        defer { close(fd) }
        try configure(fd, timeoutMs: timeoutMs)
        var message = [UInt8](repeating: 0, count: messageBytes)
        var reply = [UInt8](repeating: 0, count: messageBytes)
        // Reserved up front: appending never allocates inside the timed loop.
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        for i in 0..<(warmup + count) {
            message.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(i).littleEndian, as: UInt64.self) }
            let t0 = now()
            try sendAll(fd, message)
            guard try receiveExactly(fd, &reply) else {
                throw PingPongFailure.protocolError("the server closed the connection after \(i) round trips")
            }
            let t1 = now()
            guard reply == message else {
                throw PingPongFailure.protocolError("round trip \(i): the echo differs from the message sent")
            }
            if i >= warmup { samples.append(t1 &- t0) }
        }
        return samples
    }

    /// `tcp-pingpong: p50_ns=… p99_ns=… p999_ns=… max_ns=… count=N` (nearest-rank percentiles).
    static func summaryLine(_ samples: [UInt64]) -> String {
        let sorted = samples.sorted()
        func at(_ p: Double) -> UInt64 {
            let rank = Int((Double(sorted.count) * p).rounded(.up))
            return sorted[min(max(rank, 1), sorted.count) - 1]
        }
        return
            "tcp-pingpong: p50_ns=\(at(0.5)) p99_ns=\(at(0.99)) p999_ns=\(at(0.999)) max_ns=\(sorted.last ?? 0) count=\(sorted.count)"
    }

    // MARK: Sockets

    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    /// The `in_addr` of a dotted IPv4 literal; nil for anything else (no name lookups: the rig's
    /// peers are addresses, and a resolver could block without bound).
    static func ipv4(_ text: String) -> in_addr? {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1 ? address : nil
    }

    static func sockaddrIn(_ address: in_addr, _ port: UInt16) -> sockaddr_in {
        var s = sockaddr_in()
        s.sin_family = sa_family_t(AF_INET)
        s.sin_port = port.bigEndian
        s.sin_addr = address
        return s
    }

    static func socketFD() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw PingPongFailure.errno("socket", errno) }
        return fd
    }

    /// `TCP_NODELAY` (a 32-byte message must leave at once, not wait for Nagle), and receive and send
    /// timeouts so a silent peer ends the run instead of hanging it.
    static func configure(_ fd: Int32, timeoutMs: Int32) throws {
        var one: Int32 = 1
        guard setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw PingPongFailure.errno("setsockopt(TCP_NODELAY)", errno)
        }
        var limit = timeval(tv_sec: Int(timeoutMs / 1_000), tv_usec: Int(timeoutMs % 1_000) * 1_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A non-blocking connect bounded by `poll`, retried every 20 ms while refused (the server may
    /// not listen yet) until `timeoutMs` have passed; the socket is blocking again on return.
    static func connectWithRetry(host: String, port: UInt16, timeoutMs: Int32) throws -> Int32 {
        let deadline = now() &+ UInt64(timeoutMs) &* 1_000_000
        var lastError: Int32 = ETIMEDOUT
        while true {
            let fd = try socketFD()
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var address = sockaddrIn(ipv4(host)!, port)
            var r = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            var error: Int32 = r == 0 ? 0 : errno
            if r != 0 && error == EINPROGRESS {
                let left = Int64(bitPattern: deadline &- now()) / 1_000_000
                var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                repeat { r = poll(&ready, 1, Int32(clamping: max(left, 0))) } while r < 0 && errno == EINTR
                if r > 0 {
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                } else {
                    error = r == 0 ? ETIMEDOUT : errno
                }
            }
            if error == 0 {
                _ = fcntl(fd, F_SETFL, flags)
                return fd
            }
            close(fd)
            lastError = error
            guard error == ECONNREFUSED, now() &+ 20_000_000 < deadline else { break }
            usleep(20_000)
        }
        throw lastError == ETIMEDOUT
            ? PingPongFailure.timedOut("connect to \(host):\(port)")
            : PingPongFailure.errno("connect to \(host):\(port)", lastError)
    }

    /// Fills `buffer`; false on a clean EOF before its first byte. A receive timeout or an EOF in
    /// the middle of a message throws.
    static func receiveExactly(_ fd: Int32, _ buffer: inout [UInt8]) throws -> Bool {
        var offset = 0
        let total = buffer.count
        while offset < total {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, total - offset, 0) }
            if n > 0 {
                offset += n
                continue
            }
            if n == 0 {
                if offset == 0 { return false }
                throw PingPongFailure.protocolError("the peer closed the connection in the middle of a message")
            }
            let e = errno
            if e == EINTR { continue }
            throw e == EAGAIN || e == EWOULDBLOCK
                ? PingPongFailure.timedOut("receive") : PingPongFailure.errno("recv", e)
        }
        return true
    }

    static func sendAll(_ fd: Int32, _ buffer: [UInt8]) throws {
        var offset = 0
        while offset < buffer.count {
            // MSG_NOSIGNAL: a peer that went away is an error here, not a SIGPIPE that kills the process.
            let n = buffer.withUnsafeBytes {
                send(fd, $0.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                offset += n
                continue
            }
            let e = errno
            if n < 0 && e == EINTR { continue }
            throw e == EAGAIN || e == EWOULDBLOCK ? PingPongFailure.timedOut("send") : PingPongFailure.errno("send", e)
        }
    }
}

/// Why a ping-pong end stopped (one line each). Thrown untyped: typed throws here crashed the Swift
/// 6.3.1 optimizer's ownership verifier in a release build.
enum PingPongFailure: Error, CustomStringConvertible {
    case errno(String, Int32)
    case timedOut(String)
    case protocolError(String)

    var description: String {
        switch self {
        case .errno(let what, let code): return "\(what): \(String(cString: strerror(code)))"
        case .timedOut(let what): return "\(what) timed out"
        case .protocolError(let what): return what
        }
    }
}
