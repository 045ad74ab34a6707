import ActorGraphPlatform
import Dispatch
import Synchronization

/// One thread of its own for the soak controller's blocking calls (`compile`, `shutdown`): they
/// can wait for hundreds of milliseconds (a worker process's handshake, a stopped worker's grace
/// period). Made on a thread of the Swift concurrency pool, such a wait makes libdispatch's monitor
/// add a pool thread, which then lingers past the end sample (and with it its stack mappings). The
/// thread lives for the whole soak, so it is part of both resource samples.
final class BlockingCalls: Sendable {
    /// Jobs in order, and one semaphore count per job (a count with no job: stop).
    final class Queue: Sendable {
        let jobs = Mutex<[@Sendable () -> Void]>([])
        let ready = DispatchSemaphore(value: 0)
    }
    private let queue = Queue()
    private let thread = Mutex<PinnedThread?>(nil)

    /// Starts the thread (if it cannot start, calls run inline on the caller's thread).
    init() {
        let queue = self.queue
        let started = try? PinnedThread(name: "soak-control", cpu: nil, stackSize: 1 << 20) {
            while true {
                queue.ready.wait()
                guard let job = queue.jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return }
                job()
            }
        }
        thread.withLock { $0 = started }
    }

    /// Runs `body` on the thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        guard thread.withLock({ $0 != nil }) else { return body() }
        return await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            queue.jobs.withLock { $0.append { continuation.resume(returning: body()) } }
            queue.ready.signal()
        }
    }

    /// Ends the thread (after the jobs already queued) and joins it.
    func stop() {
        guard
            let t = thread.withLock({ current -> PinnedThread? in
                defer { current = nil }
                return current
            })
        else { return }
        queue.ready.signal()  // with no job queued: the thread returns
        t.join()
    }
}
