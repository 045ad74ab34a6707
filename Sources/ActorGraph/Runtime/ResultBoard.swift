import ActorGraphPlatform
import Synchronization

/// The result ring and everything around it: waiting callers (spinning, parked on a futex, or
/// suspended as async continuations), collection of results, and admission of new executions.
///
/// Protocol (each side does store → seq_cst → load, so one of them always sees the other):
/// - The publisher (the worker running the output node) stores the stamp, then reads `resultWaiters`;
///   if it is non-zero it takes the bits with one `exchange(0)` and wakes, resumes or collects.
/// - A waiter sets its bit, then re-reads the stamp and the shutdown flag before it sleeps.
///
/// `@unchecked Sendable`: the slots, error table and continuation table are shared memory whose
/// every access follows this protocol (one publisher per slot, one taker per result).
@usableFromInline
final class ResultBoard: @unchecked Sendable {
    @usableFromInline let ring: SlotRing
    @usableFromInline let errors: UnsafeMutablePointer<(any Error)?>
    let continuations: UnsafeMutablePointer<UnsafeContinuation<Void, Never>?>
    @usableFromInline let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    @usableFromInline let nodeNames: [String]
    let policy: IdlePolicy
    /// A fresh caller back-off, copied by each wait (nothing to compute per execution).
    let callerBackoff: Backoff
    @usableFromInline let parkTimeoutNanoseconds: Int64
    /// Futex calls are shared (process mode: publishers and waiters are in different processes).
    @usableFromInline let sharedFutex: Bool
    /// Process mode: the result ring's failure messages (a failure's description, crash reasons).
    let messages: UnsafeMutableRawPointer?
    /// In a worker child: the parent's notification eventfd. A child cannot resume the parent's
    /// continuations; it marks the slot ``ResultWaiterBits/continuationReady`` and signals this,
    /// and the parent's supervisor resumes them (``resumeReadyContinuations()``).
    let remoteNotifyFD: Int32?
    /// Why the graph stopped when it was not `shutdown()`: every waiter and later call gets it.
    let terminalError = Mutex<ExecutionError?>(nil)
    /// Bit `c` set: a worker is pinned to CPU `c` (CPUs 0–63; 0: none pinned). A waiting caller
    /// that finds itself on such a CPU yields instead of spinning: the worker that would publish
    /// its result may be waiting for this very CPU (an unpinned caller lands there until the load
    /// balancer moves it; spinning there costs a scheduler slice, ~2 ms, per execution).
    let workerCPUMask: UInt64
    /// Host names of a graph spanning hosts (index 0: the owner), for ``ExecutionError/hostLost(host:reason:)``.
    let hostNames: [String]
    /// Process mode, an output that crosses encoded: results are decoded into staging slots
    /// (``ResultDecoder``) before a caller reads them; `nil` otherwise.
    let resultDecoder: ResultDecoder?

    init(
        ring: SlotRing,
        errors: UnsafeMutablePointer<(any Error)?>,
        stopping: UnsafeMutablePointer<Atomic<UInt32>>,
        nodeNames: [String],
        policy: IdlePolicy,
        sharedFutex: Bool = false,
        messages: UnsafeMutableRawPointer? = nil,
        remoteNotifyFD: Int32? = nil,
        workerCPUs: [Int?] = [],
        hostNames: [String] = [],
        resultDecoder: ResultDecoder? = nil
    ) {
        self.ring = ring
        self.hostNames = hostNames
        self.errors = errors
        self.stopping = stopping
        self.nodeNames = nodeNames
        self.policy = policy
        // A caller of a graph spanning hosts waits on another machine (Backoff.watchesMachine).
        self.callerBackoff = Backoff(policy: policy, role: .caller, watchesMachine: !hostNames.isEmpty)
        self.parkTimeoutNanoseconds = policy.parkTimeout.nanoseconds
        self.sharedFutex = sharedFutex
        self.messages = messages
        self.remoteNotifyFD = remoteNotifyFD
        workerCPUMask = workerCPUs.reduce(0) { mask, cpu in
            guard let cpu, cpu < 64 else { return mask }
            return mask | (1 << UInt64(cpu))
        }
        continuations = .allocate(capacity: ring.capacity)
        continuations.initialize(repeating: nil, count: ring.capacity)
        self.resultDecoder = resultDecoder
    }

    deinit {
        continuations.deinitialize(count: ring.capacity)
        continuations.deallocate()
    }

    @inlinable var isStopping: Bool { stopping.pointee.load(ordering: .sequentiallyConsistent) != 0 }

    /// The error for a call that finds the graph stopped: ``ExecutionError/shutDown``, or why it failed.
    @usableFromInline
    func stoppedError() -> ExecutionError { terminalError.withLock { $0 } ?? .shutDown }

    // MARK: Publisher side (a worker)

    /// Called by the output segment right after it published sequence `k`.
    @inline(__always)
    func didPublish(_ k: Int) {
        let waiters = ring.resultWaiters(k)
        guard waiters.pointee.load(ordering: .sequentiallyConsistent) != 0 else { return }
        if let fd = remoteNotifyFD {
            deliverToParent(k, notify: fd)
            return
        }
        let bits = waiters.pointee.exchange(0, ordering: .sequentiallyConsistent)
        guard bits != 0 else { return }
        // A publisher can look late: by now `k` may have been collected and its slot reused by
        // `k + capacity`, whose waiters set these bits (collect clears the word before it stores
        // the collected stamp, so with that stamp visible every bit here is the new occupant's).
        // Taking them for `k` would lose them: an abandoned execution never collected (capacity
        // leaked for good), a parked waiter woken only by its park timeout.
        if ring.collectedWord(k).pointee.load(ordering: .sequentiallyConsistent) == SlotRing.stamp(k) {
            handOver(bits, to: k &+ ring.capacity)
        } else {
            deliver(k, bits: bits)
        }
    }

    /// Gives bits taken by a late ``didPublish(_:)`` back to the slot's new occupant `k`; if `k` is
    /// already published its publisher may have looked while the bits were away, so deliver them.
    private func handOver(_ bits: UInt32, to k: Int) {
        ring.resultWaiters(k).pointee.bitwiseOr(bits, ordering: .sequentiallyConsistent)
        if ring.stampWord(k).pointee.load(ordering: .sequentiallyConsistent) == SlotRing.stamp(k) { didPublish(k) }
    }

    /// In a worker child, which can be killed at any instruction: the bits are taken like
    /// ``didPublish(_:)`` does, except that a registered continuation is not taken but replaced by
    /// ``ResultWaiterBits/continuationReady`` in the same atomic step (the parent resumes it, told
    /// through the notification eventfd). Taking the word first and marking it after lost the caller
    /// for good when the child died in between: nobody, not even shutdown, resumed it. A late look
    /// (the slot already serves `k + capacity`) may mark that occupant's continuation ready too: its
    /// caller then sees a wake-up without its result and waits again (``awaitPublished(_:)``). A child
    /// killed before it delivers is covered by the supervisor, which calls ``didPublish(_:)`` in the
    /// parent for the dead worker's uncollected results.
    private func deliverToParent(_ k: Int, notify fd: Int32) {
        let waiters = ring.resultWaiters(k)
        var current = waiters.pointee.load(ordering: .sequentiallyConsistent)
        while true {
            let ready = current & (ResultWaiterBits.continuation | ResultWaiterBits.continuationReady) != 0
            let desired = ready ? ResultWaiterBits.continuationReady : 0
            if current == desired { break }
            let (exchanged, original) = waiters.pointee.compareExchange(
                expected: current,
                desired: desired,
                ordering: .sequentiallyConsistent
            )
            if exchanged { break }
            current = original
        }
        if current & ResultWaiterBits.continuation != 0 { EventFD.signal(fd) }
        let taken = current & ~(ResultWaiterBits.continuation | ResultWaiterBits.continuationReady)
        guard taken != 0 else { return }
        if ring.collectedWord(k).pointee.load(ordering: .sequentiallyConsistent) == SlotRing.stamp(k) {
            handOver(taken, to: k &+ ring.capacity)
        } else {
            deliver(k, bits: taken)
        }
    }

    private func deliver(_ k: Int, bits: UInt32) {
        if bits & ResultWaiterBits.parkedThread != 0 {
            Futex.wake(futexWord(ring.stampWord(k)), count: Int32.max, shared: sharedFutex)
        }
        if bits & (ResultWaiterBits.continuation | ResultWaiterBits.continuationReady) != 0 {
            let slot = k & ring.mask
            let continuation = continuations[slot]
            continuations[slot] = nil
            continuation?.resume()
        }
        if bits & ResultWaiterBits.abandoned != 0 {
            collect(k)
        }
    }

    // MARK: Waiter side (callers)

    /// Blocks until sequence `k` is published: spins (yields with `yielding`: ``spin(until:yielding:)``),
    /// then parks on the slot's stamp (futex).
    /// Throws ``ExecutionError/shutDown`` when the graph stops first, and ``ExecutionError/timedOut`` once the
    /// monotonic clock passes `deadline` (nanoseconds; 0: no deadline) — the caller then abandons `k`.
    @usableFromInline
    func waitPublished(_ k: Int, deadline: UInt64 = 0, yielding: Bool = false) throws(ExecutionError) {
        if spin(until: k, yielding: yielding) { return }
        let stampWord = ring.stampWord(k)
        let waiters = ring.resultWaiters(k)
        while true {
            waiters.pointee.bitwiseOr(ResultWaiterBits.parkedThread, ordering: .sequentiallyConsistent)
            let seen = stampWord.pointee.load(ordering: .sequentiallyConsistent)
            if seen == SlotRing.stamp(k) { return }
            if isStopping { throw stoppedError() }
            var timeout = parkTimeoutNanoseconds
            if deadline != 0 {
                let now = MonotonicClock.now()
                if now >= deadline { throw .timedOut }
                timeout = min(timeout, Int64(deadline &- now))
            }
            _ = Futex.wait(on: futexWord(stampWord), expected: seen, timeoutNanoseconds: timeout, shared: sharedFutex)
        }
    }

    /// Suspends until `k` is published or `deadline` passes (``ExecutionError/timedOut``): polls with
    /// sleeps that grow from 20 µs to 1 ms, so no continuation outlives the call.
    @usableFromInline
    func awaitPublished(_ k: Int, deadline: UInt64) async throws(ExecutionError) {
        var step: UInt64 = 20_000
        var spins = policy.strategy == .blocking ? 0 : min(policy.callerSpins, 2_000)
        while true {
            if ring.isPublished(k) { return }
            if spins > 0 {
                spins &-= 1
                CPU.relax()
                continue
            }
            if isStopping { throw stoppedError() }
            let now = MonotonicClock.now()
            if now >= deadline { throw .timedOut }
            try? await Task.sleep(nanoseconds: min(step, deadline &- now))
            step = min(step &* 2, 1_000_000)
        }
    }

    /// Spins (or yields) until `k` is published (true) or the back-off says park (false): after
    /// `callerSpins` polls and `spinTime`, or sooner under contention (WaitStrategy.swift).
    ///
    /// `yielding`: this caller just rang a parked worker, which floats while parked
    /// (WorkerAffinity.swift) and so is likely woken onto this very CPU: poll with `sched_yield`,
    /// which runs it at once if it is queued here and returns at once if it went elsewhere, for at
    /// most `spinTime`. Spinning would keep it off the CPU; parking would cost the caller a wake-up
    /// of its own for the result.
    @inline(__always)
    func spin(until k: Int, yielding: Bool = false) -> Bool {
        if ring.isPublished(k) { return true }
        var backoff = callerBackoff
        defer { backoff.finish() }
        var onWorkerCPU = isOnWorkerCPU()
        let yieldUntil = yielding ? MonotonicClock.now() &+ UInt64(max(0, policy.spinTime.nanoseconds)) : 0
        while true {
            if ring.isPublished(k) { return true }
            if yielding {
                CPU.yield()
                if backoff.polls & 63 == 63 && MonotonicClock.now() >= yieldUntil { return false }
            } else if onWorkerCPU {
                CPU.yield()
            }
            if backoff.idle() == .park { return false }
            // Busy-spinning and yielding never park: they notice shutdown here.
            if backoff.polls & 1023 == 0 && isStopping { return false }
            if backoff.polls & 63 == 0 { onWorkerCPU = isOnWorkerCPU() }
        }
    }

    /// Whether the calling thread runs on a CPU a worker is pinned to (``workerCPUMask``).
    @inline(__always)
    func isOnWorkerCPU() -> Bool {
        guard workerCPUMask != 0, let cpu = CPU.current, cpu < 64 else { return false }
        return workerCPUMask & (1 << UInt64(cpu)) != 0
    }

    /// Suspends until sequence `k` is published, without blocking a thread once spinning is over.
    @usableFromInline
    func awaitPublished(_ k: Int) async throws(ExecutionError) {
        var spins = policy.strategy == .blocking ? 0 : min(policy.callerSpins, 2_000)
        while spins > 0 {
            if ring.isPublished(k) { return }
            CPU.relax()
            spins &-= 1
        }
        let waiters = ring.resultWaiters(k)
        while true {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                continuations[k & ring.mask] = continuation
                waiters.pointee.bitwiseOr(ResultWaiterBits.continuation, ordering: .sequentiallyConsistent)
                guard
                    ring.stampWord(k).pointee.load(ordering: .sequentiallyConsistent) == SlotRing.stamp(k) || isStopping
                else {
                    return  // the publisher or shutdown resumes us
                }
                // Already done: take the registration back unless the publisher or shutdown already took it.
                var current = waiters.pointee.load(ordering: .sequentiallyConsistent)
                while current & ResultWaiterBits.continuation != 0 {
                    let (exchanged, original) = waiters.pointee.compareExchange(
                        expected: current,
                        desired: current & ~ResultWaiterBits.continuation,
                        ordering: .sequentiallyConsistent
                    )
                    if exchanged {
                        continuations[k & ring.mask] = nil
                        continuation.resume()
                        return
                    }
                    current = original
                }
            }
            if ring.isPublished(k) { return }
            if isStopping { throw stoppedError() }
            // Neither published nor stopped: a wake-up meant for the slot's previous sequence (the
            // supervisor's sweep after a worker process died, see `Supervisor.fail`). Wait again.
        }
    }

    /// Whether the result slot of `k` was collected (the slot may already serve `k + capacity`).
    func wasCollected(_ k: Int) -> Bool {
        ring.collectedWord(k).pointee.load(ordering: .sequentiallyConsistent) == SlotRing.stamp(k)
    }

    /// After `k` is published: the value's address, or the stage failure (the slot is then collected).
    @usableFromInline
    func take(_ k: Int) throws(ExecutionError) -> UnsafeMutableRawPointer {
        let failure = ring.failure(k).pointee
        guard failure == 0 else {
            let error = failureError(k, failure)
            collect(k)
            throw error
        }
        if let resultDecoder {
            do throws(ExecutionError) {
                return try decoded(k, resultDecoder)
            } catch {
                collect(k)
                throw error
            }
        }
        return ring.value(k)
    }

    /// After `k` is published: a copy of its output (or its failure thrown); the slot is freed either way.
    @inlinable
    func takeValue<Output>(_ k: Int, as _: Output.Type) throws(ExecutionError) -> Output {
        let value = try take(k).assumingMemoryBound(to: Output.self).pointee
        collect(k)
        return value
    }

    /// After `k` is published: the value's address, or the stage failure thrown without freeing the
    /// slot (the caller frees it, e.g. with ``collect(first:count:)``).
    @usableFromInline
    func peek(_ k: Int) throws(ExecutionError) -> UnsafeMutableRawPointer {
        let failure = ring.failure(k).pointee
        guard failure == 0 else { throw failureError(k, failure) }
        if let resultDecoder { return try decoded(k, resultDecoder) }
        return ring.value(k)
    }

    /// Result `k` decoded into its staging slot (an output that crosses processes encoded).
    func decoded(_ k: Int, _ decoder: ResultDecoder) throws(ExecutionError) -> UnsafeMutableRawPointer {
        do {
            return try decoder.decode(k, from: ring)
        } catch {
            let node = decoder.slot.node
            throw .stageFailed(
                node: node < nodeNames.count ? nodeNames[node] : "node \(node)",
                error: IsolatedStageError(description: "the encoded value did not decode: \(error)")
            )
        }
    }

    /// The typed error of a failed result slot: a stage's error, or (process mode, decoded from the
    /// slot's message) a thrown error's text, a worker crash or a stage past its time limit.
    func failureError(_ k: Int, _ failure: Int32) -> ExecutionError {
        func name(_ node: Int) -> String { node >= 0 && node < nodeNames.count ? nodeNames[node] : "node \(node)" }
        func hostName(_ host: Int) -> String { host >= 0 && host < hostNames.count ? hostNames[host] : "host \(host)" }
        if let messages {
            let (detail, text) = FailureMessage.read(messages + (k & ring.mask) * FailureMessage.slotBytes)
            if let error = EncodedSlot.error(failure: failure, detail: detail, text: text, nodeName: name) {
                return error
            }
            switch failure {
            case FailureCode.workerCrashed: return .workerCrashed(worker: Int(detail), reason: text)
            case FailureCode.stageTimedOut: return .stageTimedOut(node: name(Int(detail)))
            case FailureCode.hostLost: return .hostLost(host: hostName(Int(detail)), reason: text)
            default: return .stageFailed(node: name(Int(failure) - 1), error: IsolatedStageError(description: text))
            }
        }
        return .stageFailed(node: name(Int(failure) - 1), error: errors[k & ring.mask] ?? ExecutionError.shutDown)
    }

    /// Parent side, process mode: resumes the continuations whose results a worker child published
    /// (slots marked ``ResultWaiterBits/continuationReady``). Called by the supervisor thread.
    func resumeReadyContinuations() {
        for i in 0..<ring.capacity {
            let waiters = ring.resultWaiters(i)
            var current = waiters.pointee.load(ordering: .sequentiallyConsistent)
            while current & ResultWaiterBits.continuationReady != 0 {
                let (exchanged, original) = waiters.pointee.compareExchange(
                    expected: current,
                    desired: current & ~(ResultWaiterBits.continuationReady | ResultWaiterBits.continuation),
                    ordering: .sequentiallyConsistent
                )
                if exchanged {
                    let continuation = continuations[i]
                    continuations[i] = nil
                    continuation?.resume()
                    break
                }
                current = original
            }
        }
    }

    /// Frees the slot of `k` for execution `k + capacity` and wakes a submitter waiting for it.
    @usableFromInline
    func collect(_ k: Int) {
        ring.markTaken(k)
        ring.collectedWord(k).pointee.store(SlotRing.stamp(k), ordering: .sequentiallyConsistent)
        if ring.spaceWaiters(k).pointee.load(ordering: .sequentiallyConsistent) != 0 { wakeSpaceWaiters(k) }
    }

    /// Wakes the submitters sleeping for the slot of `k` (``sleepUntilSpace(for:timeoutNanoseconds:)``),
    /// once its collected stamp is stored.
    @usableFromInline
    func wakeSpaceWaiters(_ k: Int) {
        ring.spaceWaiters(k).pointee.store(0, ordering: .relaxed)
        Futex.wake(futexWord(ring.collectedWord(k)), count: Int32.max, shared: sharedFutex)
    }

    /// Throws ``ExecutionError/alreadyWaited(sequence:)`` when the result of `k` was already taken (its
    /// slot collected). A read only: the slot's cache line stays shared until the result is there.
    /// Two threads waiting on one pending execution at the same instant may both read the result
    /// (a copy each: memory-safe); one after the other, the second gets the error.
    @usableFromInline @inline(__always)
    func checkNotTaken(_ k: Int) throws(ExecutionError) {
        guard !wasTaken(k) else { throw .alreadyWaited(sequence: k) }
    }

    /// A pending execution's timed wait gave up on `k`: mark it taken now (so the pending execution
    /// neither abandons it a second time when dropped nor can be waited again), then abandon it.
    @usableFromInline
    func abandonAfterTimeout(_ k: Int) {
        ring.takenWord(k).pointee.store(k &+ 1, ordering: .relaxed)
        abandon(k)
    }

    /// Whether the result of `k` was collected (waited for, failed, or dropped and collected).
    @usableFromInline @inline(__always)
    func wasTaken(_ k: Int) -> Bool { ring.takenWord(k).pointee.load(ordering: .relaxed) > k }

    /// Frees the slots of `count` sequences from `first` whose results the caller read, with release
    /// stores, one fence, then one look per slot for a submitter waiting for space.
    @usableFromInline
    func collect(first: Int, count: Int) {
        guard count > 0 else { return }
        for k in first..<(first &+ count) {
            ring.markTaken(k)
            ring.collectedWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        for k in first..<(first &+ count) where ring.spaceWaiters(k).pointee.load(ordering: .relaxed) != 0 {
            wakeSpaceWaiters(k)
        }
    }

    /// The caller dropped its pending execution `k`: collect it now, or let the publisher do it.
    @usableFromInline
    func abandon(_ k: Int) {
        if ring.isPublished(k) {
            collect(k)
            return
        }
        let waiters = ring.resultWaiters(k)
        waiters.pointee.bitwiseOr(ResultWaiterBits.abandoned, ordering: .sequentiallyConsistent)
        guard ring.stampWord(k).pointee.load(ordering: .sequentiallyConsistent) == SlotRing.stamp(k) else { return }
        var current = waiters.pointee.load(ordering: .sequentiallyConsistent)
        while current & ResultWaiterBits.abandoned != 0 {
            let (exchanged, original) = waiters.pointee.compareExchange(
                expected: current,
                desired: current & ~ResultWaiterBits.abandoned,
                ordering: .sequentiallyConsistent
            )
            if exchanged {
                collect(k)
                return
            }
            current = original
        }
    }

    // MARK: Admission

    /// Whether sequence `k` may be admitted: the result of `k - capacity` has been collected.
    @inlinable @inline(__always)
    func hasSpace(for k: Int) -> Bool { ring.isFree(for: k) }

    /// Sleeps until the slot of `k` is collected, `timeoutNanoseconds` pass, or shutdown.
    @usableFromInline
    func sleepUntilSpace(for k: Int, timeoutNanoseconds: Int64) {
        let word = ring.collectedWord(k)
        ring.spaceWaiters(k).pointee.store(1, ordering: .sequentiallyConsistent)
        let seen = word.pointee.load(ordering: .sequentiallyConsistent)
        if seen == SlotRing.stamp(k &- ring.capacity) || isStopping { return }
        _ = Futex.wait(
            on: futexWord(word),
            expected: seen,
            timeoutNanoseconds: min(timeoutNanoseconds, parkTimeoutNanoseconds),
            shared: sharedFutex
        )
    }

    // MARK: Shutdown

    /// Answers every waiter after the workers stopped: parked threads and continuations wake and,
    /// finding their result unpublished, throw ``ExecutionError/shutDown``.
    func wakeAllForShutdown() {
        for k in 0..<ring.capacity {
            let bits = ring.resultWaiters(k).pointee.exchange(0, ordering: .sequentiallyConsistent)
            deliver(k, bits: bits & ~ResultWaiterBits.abandoned)
            ring.spaceWaiters(k).pointee.store(0, ordering: .relaxed)
            Futex.wake(futexWord(ring.collectedWord(k)), count: Int32.max, shared: sharedFutex)
        }
    }
}

/// The address of an atomic word, as the plain `UInt32` a futex system call takes.
@inline(__always)
func futexWord(_ word: UnsafeMutablePointer<Atomic<UInt32>>) -> UnsafeMutablePointer<UInt32> {
    UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
}
