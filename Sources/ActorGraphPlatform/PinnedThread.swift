import CPlatformShims
import Glibc
import Synchronization

/// A POSIX thread, optionally pinned to one CPU, with an explicit stack size. Joined by ``join()``.
///
/// `Sendable` (checked): the handle and CPU are constants, and whether the thread was joined is
/// behind a `Mutex`, so any thread may join it (a second joiner waits for the first).
package final class PinnedThread: Sendable {
    private let handle: pthread_t
    /// True once joined or detached: `pthread_join`/`pthread_detach` is called at most once.
    private let joined = Mutex(false)
    /// The CPU the thread was pinned to, or `nil` when it floats.
    package let cpu: Int?

    /// What the new thread receives through `pthread_create`'s context pointer: `body` was handed
    /// over (`sending`), so from here on only that thread touches it.
    private final class Body {
        let run: () -> Void
        let name: String
        let cpu: Int?
        init(run: @escaping () -> Void, name: String, cpu: Int?) {
            self.run = run
            self.name = name
            self.cpu = cpu
        }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept by Linux).
    /// - Parameters:
    ///   - cpu: pins the thread to this CPU before `body` runs (`pthread_attr_setaffinity_np`).
    ///   - stackSize: the thread's stack in bytes; large enough for stages that keep big values on the stack.
    ///   - body: runs on the new thread; it is handed over (`sending`), so what it captures must not be
    ///     used by the caller afterwards unless it is `Sendable`.
    package init(name: String, cpu: Int?, stackSize: Int = 8 << 20, _ body: sending @escaping () -> Void) throws(Errno)
    {
        self.cpu = cpu
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, stackSize)
        let context = Unmanaged.passRetained(Body(run: body, name: name, cpu: cpu)).toOpaque()
        var thread = pthread_t()
        let r = pthread_create(
            &thread,
            &attr,
            { raw in
                let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                cplatform_set_thread_name(String(body.name.prefix(15)))
                if let cpu = body.cpu { _ = cplatform_pin_current_thread(Int32(cpu)) }
                body.run()
                return nil
            },
            context
        )
        guard r == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw Errno(rawValue: r)
        }
        self.handle = thread
    }

    /// Waits for the thread to finish. Idempotent; must not be called from the thread itself.
    package func join() {
        joined.withLock { joined in
            guard !joined else { return }
            joined = true
            pthread_join(handle, nil)
        }
    }

    /// Waits up to `timeoutNanoseconds` for the thread to finish (`pthread_timedjoin_np`). Returns
    /// true once joined; false when it is still running, after which the thread is detached (its
    /// resources go back when it returns) and never joined again.
    @discardableResult
    package func join(timeoutNanoseconds: Int64) -> Bool {
        joined.withLock { joined in
            guard !joined else { return true }
            joined = true
            if cplatform_timed_join(handle, timeoutNanoseconds) == 0 { return true }
            pthread_detach(handle)
            return false
        }
    }
}
