import CPlatformShims

/// A futex on a 32-bit word: the plain-syscall way to park and wake a thread.
///
/// Private by default (the kernel keys it on the address in this process). Pass `shared: true` for a
/// word in memory that several processes map (isolated workers): a private wake never reaches a
/// waiter in another process.
///
/// Workers park through their io_uring (``IORing/prepareFutexWait(on:expected:userData:)``);
/// callers that are not workers, and hosts where io_uring is refused, use this.
package enum Futex {
    /// The outcome of ``wait(on:expected:timeoutNanoseconds:)``.
    package enum WaitResult: Equatable, Sendable {
        /// Woken by ``wake(_:count:)`` (or spuriously: re-check the condition).
        case woken
        /// The word did not hold `expected` when the kernel looked.
        case valueChanged
        /// The timeout expired.
        case timedOut
        /// A signal interrupted the wait.
        case interrupted
    }

    /// Sleeps while `*word == expected`, for at most `timeoutNanoseconds` (negative: no limit).
    package static func wait(
        on word: UnsafeMutablePointer<UInt32>,
        expected: UInt32,
        timeoutNanoseconds: Int64,
        shared: Bool = false
    ) -> WaitResult {
        let r = cplatform_futex_wait(word, expected, timeoutNanoseconds, shared ? 1 : 0)
        switch r {
        case 0: return .woken
        case -Errno.resourceTemporarilyUnavailable.rawValue: return .valueChanged
        case -Errno.timedOut.rawValue: return .timedOut
        default: return .interrupted
        }
    }

    /// Wakes up to `count` threads sleeping on `word`; returns how many woke.
    @discardableResult
    package static func wake(_ word: UnsafeMutablePointer<UInt32>, count: Int32 = 1, shared: Bool = false) -> Int {
        Int(max(0, cplatform_futex_wake(word, count, shared ? 1 : 0)))
    }
}
