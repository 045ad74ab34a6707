import Glibc

/// An error number from a failed system call, in the style of swift-system's `Errno`.
///
/// ActorGraph does not depend on swift-system: its `CSystem` module imports the kernel's
/// `<linux/io_uring.h>`, whose `io_uring_sqe` clashes with liburing's bundled copy in one build.
///
/// Public because ``CompileError/platform(operation:errno:)`` carries it; this module's other types
/// are `package` unless ActorGraph's public API shows them.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw `errno` value.
    public var rawValue: Int32
    /// Wraps a raw `errno` value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The current thread's `errno`.
    package static var current: Errno { Errno(rawValue: errno) }

    /// `EAGAIN`.
    public static let resourceTemporarilyUnavailable = Errno(rawValue: EAGAIN)
    /// `ETIMEDOUT`.
    public static let timedOut = Errno(rawValue: ETIMEDOUT)
    /// `EINTR`.
    public static let interrupted = Errno(rawValue: EINTR)
    /// `EPERM`.
    public static let notPermitted = Errno(rawValue: EPERM)
    /// `ENOSYS`.
    public static let noFunction = Errno(rawValue: ENOSYS)
    /// `EINVAL`.
    public static let invalidArgument = Errno(rawValue: EINVAL)

    /// `strerror(3)` text and the number, e.g. `Operation not permitted (errno 1)`.
    public var description: String {
        "\(String(cString: strerror(rawValue))) (errno \(rawValue))"
    }
}
