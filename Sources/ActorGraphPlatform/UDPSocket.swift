import Glibc
import Synchronization

/// A UDP socket bound to an IPv4 address: the descriptor io_uring reads and writes.
///
/// `Sendable` (checked): the descriptor and port are constants and the closed flag is atomic; the
/// calls it makes (`send`, `recv`, `setsockopt`) are thread-safe system calls.
package final class UDPSocket: Sendable {
    /// The socket descriptor.
    package let fileDescriptor: Int32
    /// The bound port (the kernel's choice when 0 was asked for).
    package let port: UInt16
    private let isClosed = Atomic(false)

    /// Opens a socket bound to `host:port` (`port` 0 picks a free one), with `receiveBuffer` bytes of kernel buffer.
    package init(bindingTo host: String = "127.0.0.1", port: UInt16, receiveBuffer: Int32 = 4 << 20) throws(Errno) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current }
        var size = receiveBuffer
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = try UDPSocket.address(host: host, port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let e = Errno.current
            Glibc.close(fd)
            throw e
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fileDescriptor = fd
        self.port = UInt16(bigEndian: actual.sin_port)
    }

    /// An IPv4 socket address for `host:port`.
    package static func address(host: String, port: UInt16) throws(Errno) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw Errno.invalidArgument }
        return address
    }

    /// Connects the socket to `host:port`, so plain `send`/`recv` reach that peer only.
    package func connect(host: String, port: UInt16) throws(Errno) {
        var address = try UDPSocket.address(host: host, port: port)
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fileDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard r == 0 else { throw Errno.current }
    }

    /// Sets a receive timeout, so a blocking `recv` cannot wait forever.
    package func setReceiveTimeout(nanoseconds: Int64) {
        var tv = timeval(tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000) / 1000)
        _ = setsockopt(fileDescriptor, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends one datagram on a connected socket. Returns bytes sent or throws.
    @discardableResult
    package func send(_ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        while true {
            let n = Glibc.send(fileDescriptor, bytes.baseAddress, bytes.count, 0)
            if n >= 0 { return n }
            if errno != EINTR { throw Errno.current }
        }
    }

    /// Receives one datagram on a connected socket; throws `EAGAIN` on timeout. Retries after signals.
    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        while true {
            let n = recv(fileDescriptor, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno != EINTR { throw Errno.current }
        }
    }

    /// Closes the socket. Idempotent.
    package func close() {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Glibc.close(fileDescriptor)
    }

    deinit { close() }
}
