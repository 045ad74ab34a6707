import CPlatformShims
import Glibc
import Synchronization

/// A child process started with `posix_spawn` (never `fork` without `exec`: the parent is
/// multithreaded), held through a pidfd so that it can be watched in `poll`, signalled without a
/// pid-reuse race, and reaped with `waitid(P_PIDFD)`.
///
/// `Sendable` (checked): `pid` and `pidfd` are constants; the cached exit reason and the closed flag
/// are behind a `Mutex`. The blocking wait in `reap` runs outside the lock, so ``signal(_:)`` can stop
/// a child another thread is waiting for. Reaping is meant for one owner at a time (the engine's
/// supervisor): of two threads reaping at once, one may get `nil` while the other gets the reason.
package final class ChildProcess: Sendable {
    /// The child's process id.
    package let pid: Int32
    /// A pidfd for the child (close-on-exec): readable in `poll` once the child has exited.
    package let pidfd: Int32
    private struct State {
        var reaped: ExitReason?
        var closed = false
    }
    private let state = Mutex(State())

    /// How a child ended.
    package enum ExitReason: Sendable, Equatable, CustomStringConvertible {
        /// It called `exit(code)`.
        case exited(Int32)
        /// A signal killed it (`dumped`: it left a core).
        case signaled(Int32, dumped: Bool)

        /// `exit status 3`, `signal 9 (SIGKILL)`, `signal 6 (SIGABRT), core dumped`.
        package var description: String {
            switch self {
            case .exited(let code): return "exit status \(code)"
            case .signaled(let sig, let dumped):
                return "signal \(sig) (\(ChildProcess.signalName(sig)))" + (dumped ? ", core dumped" : "")
            }
        }
    }

    /// Spawns `path` with `arguments` (argv, including argv[0]) and `environment` (`KEY=VALUE`).
    /// - Parameter inheriting: descriptors the child keeps at the same numbers although they are
    ///   close-on-exec here; every other close-on-exec descriptor stays closed in the child.
    package init(path: String, arguments: [String], environment: [String], inheriting: [Int32]) throws(Errno) {
        var pid: pid_t = 0
        let r = ChildProcess.withCStrings(arguments) { argv in
            ChildProcess.withCStrings(environment) { envp in
                inheriting.withUnsafeBufferPointer { keep in
                    cplatform_spawn(&pid, path, argv, envp, keep.baseAddress, Int32(keep.count))
                }
            }
        }
        guard r == 0 else { throw Errno(rawValue: r) }
        let fd = cplatform_pidfd_open(pid)
        guard fd >= 0 else {
            // Without a pidfd the child cannot be watched: stop it now.
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw Errno(rawValue: -fd)
        }
        self.pid = pid
        self.pidfd = fd
    }

    /// Sends `signal` through the pidfd. Returns false when the child is already gone.
    @discardableResult
    package func signal(_ signal: Int32) -> Bool {
        // Under the lock, so `close` cannot close the pidfd (and its number be reused) meanwhile.
        state.withLock { state in
            guard !state.closed else { return false }
            return cplatform_pidfd_send_signal(pidfd, signal) == 0
        }
    }

    /// Reaps the child: waits for it to exit (or, with `block: false`, returns `nil` while it runs).
    /// Idempotent: later calls return the same reason.
    package func reap(block: Bool) -> ExitReason? {
        let (cached, closed) = state.withLock { ($0.reaped, $0.closed) }
        if let cached { return cached }
        guard !closed else { return nil }
        var code: Int32 = 0
        var status: Int32 = 0
        var r: Int32
        repeat { r = cplatform_waitid_pidfd(pidfd, block ? 0 : 1, &code, &status) } while r == -EINTR
        // Not exited yet, or reaped by another thread in the meantime (ECHILD): whatever is cached.
        guard r > 0 else { return state.withLock { $0.reaped } }
        let reason: ExitReason
        switch code {
        case Int32(CLD_EXITED): reason = .exited(status)
        case Int32(CLD_DUMPED): reason = .signaled(status, dumped: true)
        default: reason = .signaled(status, dumped: false)
        }
        return state.withLock { state in
            if let first = state.reaped { return first }
            state.reaped = reason
            return reason
        }
    }

    /// The signal that stopped the child (`SIGSTOP`, `SIGTSTP`, …) while it is stopped now; `nil`
    /// while it runs or is gone. Leaves the stop reportable (`WNOWAIT`).
    package func stopSignal() -> Int32? {
        // Under the lock (the wait does not block), so `close` cannot close the pidfd meanwhile.
        state.withLock { state in
            guard !state.closed, state.reaped == nil else { return nil }
            var signal: Int32 = 0
            var r: Int32
            repeat { r = cplatform_waitid_pidfd_stopped(pidfd, &signal) } while r == -EINTR
            return r > 0 ? signal : nil
        }
    }

    /// Waits up to `timeoutNanoseconds` for the child to exit (poll on the pidfd); true when it did.
    package func waitForExit(timeoutNanoseconds: Int64) -> Bool {
        if state.withLock({ $0.reaped != nil }) { return true }
        var fds = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        let deadline = MonotonicClock.now() &+ UInt64(max(0, timeoutNanoseconds))
        while true {
            let now = MonotonicClock.now()
            let left = now >= deadline ? 0 : Int32(min(Int64(Int32.max), Int64((deadline - now + 999_999) / 1_000_000)))
            let r = poll(&fds, 1, left)
            if r > 0 { return true }
            if r == 0 { return false }
            if errno != EINTR { return false }
        }
    }

    /// Closes the pidfd. A child not reaped yet is killed and reaped first (no zombie is left).
    package func close() {
        let (reaped, closed) = state.withLock { ($0.reaped, $0.closed) }
        guard !closed else { return }
        if reaped == nil {
            signal(SIGKILL)
            _ = reap(block: true)
        }
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            Glibc.close(pidfd)
        }
    }

    deinit { close() }

    /// Sends `signal` to the process `pid` only if it is a child of this process, without a
    /// pid-reuse race: the pid is pinned with a pidfd first, its parent is checked in
    /// `/proc/<pid>/status` and the signal goes through the pidfd (if the child was reaped meanwhile
    /// and the pid reused, the pidfd still names the dead child and the signal fails). For fault
    /// injection from outside the engine (`actorgraph faults`, the soak): a stale pid read from
    /// ``IsolationStatistics``-style snapshots can never hit an unrelated process.
    /// - Returns: true when the signal was delivered.
    package static func signal(child pid: Int32, _ signal: Int32) -> Bool {
        guard pid > 0 else { return false }
        let fd = cplatform_pidfd_open(pid)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        guard parentProcessID(of: pid) == getpid() else { return false }
        return cplatform_pidfd_send_signal(fd, signal) == 0
    }

    /// The `PPid:` of `/proc/<pid>/status`; nil when the process is gone or the file unreadable.
    static func parentProcessID(of pid: Int32) -> Int32? {
        guard let file = fopen("/proc/\(pid)/status", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("PPid:") {
                return Int32(text.dropFirst(5).drop { $0 == " " || $0 == "\t" }.prefix { $0.isNumber })
            }
        }
        return nil
    }

    /// `SIGKILL`, `SIGSEGV`, … for the common signals; `SIG<n>` otherwise.
    package static func signalName(_ sig: Int32) -> String {
        switch sig {
        case SIGKILL: return "SIGKILL"
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGILL: return "SIGILL"
        case SIGTRAP: return "SIGTRAP"
        case SIGBUS: return "SIGBUS"
        case SIGFPE: return "SIGFPE"
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGSTOP: return "SIGSTOP"
        default: return "SIG\(sig)"
        }
    }

    private static func withCStrings<R>(
        _ strings: [String],
        _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R
    ) -> R {
        let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// The calling process's parent-death signal and parent check, for a child that must not outlive
/// its parent.
package enum ParentWatch {
    /// Asks the kernel to send `signal` when the parent (the thread that spawned us) exits, then
    /// re-checks the parent: returns false when it is already gone (it died before the request).
    package static func dieWithParent(expectedParent: Int32, signal: Int32 = SIGKILL) -> Bool {
        _ = cplatform_set_parent_death_signal(signal)
        return getppid() == expectedParent
    }
}
