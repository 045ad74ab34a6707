import CPlatformShims
import Glibc

/// A POSIX thread, optionally pinned to one CPU, with an explicit stack size. Joined by ``join()``.
public final class PinnedThread: @unchecked Sendable {
    private var handle: pthread_t
    private var joined = false
    /// The CPU the thread was pinned to, or `nil` when it floats.
    public let cpu: Int?

    private final class Body {
        let run: () -> Void
        let name: String
        let cpu: Int?
        init(run: @escaping () -> Void, name: String, cpu: Int?) { self.run = run; self.name = name; self.cpu = cpu }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept by Linux).
    /// - Parameters:
    ///   - cpu: pins the thread to this CPU before `body` runs (`pthread_attr_setaffinity_np`).
    ///   - stackSize: the thread's stack in bytes; large enough for stages that keep big values on the stack.
    public init(name: String, cpu: Int?, stackSize: Int = 8 << 20, _ body: @escaping () -> Void) throws(Errno) {
        self.cpu = cpu
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, stackSize)
        let context = Unmanaged.passRetained(Body(run: body, name: name, cpu: cpu)).toOpaque()
        var thread = pthread_t()
        let r = pthread_create(&thread, &attr, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            cplatform_set_thread_name(String(body.name.prefix(15)))
            if let cpu = body.cpu { _ = cplatform_pin_current_thread(Int32(cpu)) }
            body.run()
            return nil
        }, context)
        guard r == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw Errno(rawValue: r)
        }
        self.handle = thread
    }

    /// Waits for the thread to finish. Idempotent; must not be called from the thread itself.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }

    /// Waits up to `timeoutNanoseconds` for the thread to finish (`pthread_timedjoin_np`). Returns
    /// true once joined; false when it is still running, after which the thread is detached (its
    /// resources go back when it returns) and never joined again.
    @discardableResult
    public func join(timeoutNanoseconds: Int64) -> Bool {
        guard !joined else { return true }
        joined = true
        if cplatform_timed_join(handle, timeoutNanoseconds) == 0 { return true }
        pthread_detach(handle)
        return false
    }
}
