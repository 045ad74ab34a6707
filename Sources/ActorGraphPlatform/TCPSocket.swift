import Glibc

/// A connected or listening IPv4 TCP socket: the descriptor a worker's io_uring sends and
/// receives on, plus the blocking calls of the handshake (each bounded by a timeout).
///
/// Owned by one thread at a time (the connector during the handshake, then a worker): not `Sendable`.
package final class TCPSocket {
    package private(set) var fileDescriptor: Int32
    /// `MSG_NOSIGNAL` (0x4000 on Linux): a closed peer is an error, not SIGPIPE. Spelled out: the
    /// Glibc module does not export the macro in every build configuration.
    package static let noSignal: Int32 = 0x4000

    private init(fileDescriptor: Int32) { self.fileDescriptor = fileDescriptor }

    /// Takes ownership of a connected socket's descriptor (one ``detach()`` handed over).
    package convenience init(adopting fileDescriptor: Int32) { self.init(fileDescriptor: fileDescriptor) }

    /// Gives up ownership of the descriptor (to hand it to another thread as a plain number).
    package func detach() -> Int32 {
        defer { fileDescriptor = -1 }
        return fileDescriptor
    }

    deinit { close() }

    /// Connects to `host:port` within `timeoutMilliseconds` (non-blocking connect + poll), with
    /// `TCP_NODELAY` set: every frame leaves as soon as it is written.
    package static func connect(host: String, port: UInt16, timeoutMilliseconds: Int32) throws(Errno) -> TCPSocket {
        var address = try UDPSocket.address(host: host, port: port)
        let fd = socket(
            AF_INET,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
            0
        )
        guard fd >= 0 else { throw Errno.current }
        let socket = TCPSocket(fileDescriptor: fd)
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if r != 0 {
            guard errno == EINPROGRESS else { throw Errno.current }
            guard try socket.poll(events: Int16(POLLOUT), timeoutMilliseconds: timeoutMilliseconds) else {
                throw Errno(rawValue: ETIMEDOUT)
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { throw Errno(rawValue: error) }
        }
        try socket.setBlocking()
        socket.configureForFrames()
        return socket
    }

    /// A listening socket bound to `host:port` (`port` 0: the kernel picks one; see ``localPort``).
    package static func listen(host: String, port: UInt16, backlog: Int32 = 8) throws(Errno) -> TCPSocket {
        var address = try UDPSocket.address(host: host, port: port)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current }
        let socket = TCPSocket(fileDescriptor: fd)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else { throw Errno.current }
        return socket
    }

    /// The bound port.
    package var localPort: UInt16 {
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fileDescriptor, $0, &length) }
        }
        return UInt16(bigEndian: actual.sin_port)
    }

    /// Accepts one connection, waiting at most `timeoutMilliseconds`; `nil` on timeout.
    package func accept(timeoutMilliseconds: Int32) throws(Errno) -> TCPSocket? {
        guard try poll(events: Int16(POLLIN), timeoutMilliseconds: timeoutMilliseconds) else { return nil }
        let fd = Glibc.accept(fileDescriptor, nil, nil)
        guard fd >= 0 else { throw Errno.current }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let socket = TCPSocket(fileDescriptor: fd)
        socket.configureForFrames()
        return socket
    }

    /// Waits for `events` (`POLLIN`, `POLLOUT`); false on timeout.
    package func poll(events: Int16, timeoutMilliseconds: Int32) throws(Errno) -> Bool {
        var entry = pollfd(fd: fileDescriptor, events: events, revents: 0)
        while true {
            let r = Glibc.poll(&entry, 1, timeoutMilliseconds)
            if r >= 0 { return r > 0 }
            if errno != EINTR { throw Errno.current }
        }
    }

    /// Sends all of `bytes` (blocking; used before the socket is handed to io_uring).
    package func sendAll(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var sent = 0
        while sent < bytes.count {
            let n = Glibc.send(fileDescriptor, bytes.baseAddress! + sent, bytes.count - sent, TCPSocket.noSignal)
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current
            }
            sent += n
        }
    }

    /// Receives exactly `buffer.count` bytes, waiting at most `timeoutMilliseconds` for each part.
    /// Throws `ETIMEDOUT` on timeout and `ECONNRESET` when the peer closed first.
    package func receiveExactly(_ buffer: UnsafeMutableRawBufferPointer, timeoutMilliseconds: Int32) throws(Errno) {
        var received = 0
        while received < buffer.count {
            guard try poll(events: Int16(POLLIN), timeoutMilliseconds: timeoutMilliseconds) else {
                throw Errno(rawValue: ETIMEDOUT)
            }
            let n = recv(fileDescriptor, buffer.baseAddress! + received, buffer.count - received, 0)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw Errno.current
            }
            if n == 0 { throw Errno(rawValue: ECONNRESET) }
            received += n
        }
    }

    /// Ends both directions (pending receives complete with 0); the descriptor stays open.
    package func shutdownBoth() {
        guard fileDescriptor >= 0 else { return }
        _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_RDWR))
    }

    /// Closes the descriptor. Idempotent.
    package func close() {
        guard fileDescriptor >= 0 else { return }
        Glibc.close(fileDescriptor)
        fileDescriptor = -1
    }

    private func setBlocking() throws(Errno) {
        let flags = fcntl(fileDescriptor, F_GETFL)
        guard flags >= 0, fcntl(fileDescriptor, F_SETFL, flags & ~O_NONBLOCK) == 0 else { throw Errno.current }
    }

    private func configureForFrames() {
        var one: Int32 = 1
        _ = setsockopt(fileDescriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var size: Int32 = 4 << 20
        _ = setsockopt(fileDescriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fileDescriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
}
