import Synchronization

/// The exclusive flavour of the ``Sequencer`` (one producer, the ``ExclusiveSubmitter``): the
/// Disruptor's single-producer sequencer. The owner sets ``Sequencer/exclusiveBit`` with one CAS;
/// from then on it alone writes the cursor, with release stores, and publishes with release stores
/// (``Sequencer/PublishFence/beforeWaiting``): the full fence that closes the race with a head
/// worker about to park runs once, in ``ensurePublishedSeen()``, before the owner waits for anything.
extension Sequencer {
    /// Takes submission for one owner: sets the exclusive bit with one CAS. Returns the next sequence.
    func acquireExclusive() throws(ExecutionError) -> Int {
        while true {
            if board.isStopping { throw board.stoppedError() }
            let k = cursor.pointee.load(ordering: .relaxed)
            if k & Sequencer.exclusiveBit != 0 { throw .exclusiveSubmitterOpen }
            if cursor.pointee.compareExchange(
                expected: k,
                desired: k | Sequencer.exclusiveBit,
                ordering: .acquiringAndReleasing
            ).exchanged {
                return k
            }
        }
    }

    /// Gives submission back at `next` (the owner's next sequence): clears the exclusive bit.
    func releaseExclusive(next: Int) {
        cursor.pointee.store(next, ordering: .sequentiallyConsistent)
    }

    /// Advances the cursor past `k` for the exclusive owner (no other thread writes it meanwhile).
    @usableFromInline @inline(__always)
    func advanceExclusive(past k: Int) {
        cursor.pointee.store((k &+ 1) | Sequencer.exclusiveBit, ordering: .releasing)
    }

    /// Claims `k` for the exclusive owner: waits (like ``claim()``) until its slot is free, then
    /// advances the cursor. Before waiting, makes sure the workers run what was published (the
    /// wake-up check the owner's publishes left out).
    @usableFromInline
    func claimExclusive(_ k: Int) throws(ExecutionError) {
        if _slowPath(!board.hasSpace(for: k) || board.isStopping) {
            ensurePublishedSeen()
            try waitUntil { () -> WaitStep<Void> in board.hasSpace(for: k) ? .done(()) : .full(sleepingOn: k) }
        }
        advanceExclusive(past: k)
    }

    /// Publishes the exclusive owner's input `k` with a release store and wakes a head worker only
    /// if it is visibly parked (``PublishFence/beforeWaiting``).
    @usableFromInline @inline(__always)
    func publishExclusive(_ k: Int) {
        if let inputEncoder { inputEncoder.encode(first: k, count: 1, into: input) }
        if let statistics { statistics.stampInputs(input, first: k, count: 1) }
        input.stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        for target in wakeTargets where target.pointee.load(ordering: .relaxed) != 0 {
            Worker.wake(target, shared: sharedFutex)
        }
    }

    /// The other half of the Dekker pair for inputs published by ``publishExclusive(_:)``: a full
    /// fence, then the wake-up check. A head worker either saw the inputs before parking or is seen
    /// parked here and woken.
    @usableFromInline
    func ensurePublishedSeen() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        wakeHeadWorkers()
    }
}
