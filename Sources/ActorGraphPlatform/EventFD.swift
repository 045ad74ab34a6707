import CPlatformShims
import Glibc
import Synchronization

/// A non-blocking, close-on-exec eventfd: a counter another thread (or a child process that
/// inherited it) bumps to make the descriptor readable in `poll`.
///
/// `Sendable` (checked): the descriptor is a constant and the closed flag is atomic; `signal` and
/// `drain` are a `write(2)` and a `read(2)` any thread may make. The owner closes it only after every
/// other user is done (a descriptor number can be reused once closed).
package final class EventFD: Sendable {
    /// The descriptor.
    package let fileDescriptor: Int32
    private let closed = Atomic(false)

    /// Creates an eventfd with counter 0.
    package init() throws(Errno) {
        let fd = cplatform_eventfd()
        guard fd >= 0 else { throw Errno(rawValue: -fd) }
        fileDescriptor = fd
    }

    /// Adds one to the counter (makes the descriptor readable).
    package func signal() { EventFD.signal(fileDescriptor) }

    /// Adds one to the counter of eventfd `fd` (e.g. one inherited from a parent process).
    package static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(fd, $0.baseAddress, 8) }
    }

    /// Reads and resets the counter; 0 when it was already 0.
    @discardableResult
    package func drain() -> UInt64 {
        var value: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &value) { read(fileDescriptor, $0.baseAddress, 8) }
        return n == 8 ? value : 0
    }

    /// Closes the descriptor. Idempotent.
    package func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Glibc.close(fileDescriptor)
    }

    deinit { close() }
}
