import Synchronization

/// A fixed-capacity ring of slots in shared memory, written by one producer and read by any number
/// of consumers, each at its own pace (Disruptor-style, with per-slot sequence stamps).
///
/// Slot layout (each slot starts on a cache line; `stride` is a multiple of 64 bytes):
///
///     offset  0  stamp          UInt32 atomic: low 32 bits of (sequence + 1) once the slot is published
///     offset  4  resultWaiters  UInt32 atomic: result ring only (``ResultWaiterBits``)
///     offset  8  failure        Int32: 0 = value present, n = node n-1 failed (error in the side table)
///     offset 12  collected      UInt32 atomic: result ring only: low 32 bits of (sequence + 1) once read
///     offset 16  spaceWaiters   UInt32 atomic: result ring only: a submitter sleeps on `collected`
///     offset 16  publishedAt    UInt64: rings read by stages only (never the result ring), with
///                               statistics on: the producer's clock when it published a sampled
///                               sequence (written before the stamp, read after it)
///     offset 24  taken          Int atomic: result ring only: sequence + 1 of the last execution
///                               collected from the slot (monotonic, 64-bit: no wrap-around)
///     offset 32+ value          the node's value, at its natural alignment
///
/// Invariants:
/// - Sequence `k` lives in slot `k & mask`. A slot is published by storing `stamp(k)` after the
///   value (or failure) is written; a consumer reads it only after loading that stamp (acquire).
/// - The producer never overtakes a consumer: the engine admits execution `k` only after the result
///   of `k - capacity` has been collected, which every node's processing of `k - capacity`
///   happens-before. So rings never need a "full" check on the hot path.
/// - Stamps compare by equality on 32 bits; a slot only ever holds `k - capacity` or `k` when
///   sequence `k` is polled, so wrap-around of the 32-bit stamp is harmless for capacity < 2^31.
///
/// `@unchecked Sendable`: a pointer and three constants; the memory it points to is shared by
/// design and accessed only as the invariants above allow.
@usableFromInline
struct SlotRing: @unchecked Sendable {
    /// Bytes of header before the value.
    @usableFromInline static let headerSize = 32
    @usableFromInline static let cacheLine = 64

    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let stride: Int
    @usableFromInline let mask: Int
    @usableFromInline let valueOffset: Int

    @usableFromInline
    init(base: UnsafeMutableRawPointer, stride: Int, capacity: Int, valueOffset: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "capacity must be a power of two")
        self.base = base
        self.stride = stride
        self.mask = capacity - 1
        self.valueOffset = valueOffset
    }

    /// The capacity in slots.
    @inlinable var capacity: Int { mask + 1 }

    /// (stride, value offset) of slots holding values of `layout`.
    static func geometry(for layout: ValueLayout) -> (stride: Int, valueOffset: Int) {
        let valueOffset = roundUp(headerSize, to: max(1, layout.alignment))
        let stride = roundUp(valueOffset + max(layout.size, 0), to: cacheLine)
        return (max(stride, cacheLine), valueOffset)
    }

    /// Bytes needed for `capacity` slots of `layout`.
    static func byteCount(for layout: ValueLayout, capacity: Int) -> Int {
        geometry(for: layout).stride * capacity
    }

    /// The stamp that marks sequence `k` as published (or collected).
    @inlinable @inline(__always)
    static func stamp(_ k: Int) -> UInt32 { UInt32(truncatingIfNeeded: k &+ 1) }

    @inlinable @inline(__always)
    func slot(_ k: Int) -> UnsafeMutableRawPointer { base + (k & mask) &* stride }

    @inlinable @inline(__always)
    func stampWord(_ k: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        slot(k).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    @inlinable @inline(__always)
    func resultWaiters(_ k: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (slot(k) + 4).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    @inlinable @inline(__always)
    func failure(_ k: Int) -> UnsafeMutablePointer<Int32> {
        (slot(k) + 8).assumingMemoryBound(to: Int32.self)
    }

    @inlinable @inline(__always)
    func collectedWord(_ k: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (slot(k) + 12).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    @inlinable @inline(__always)
    func spaceWaiters(_ k: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (slot(k) + 16).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// Statistics: publish time of a sampled sequence (rings read by stages only; see the layout).
    @inline(__always)
    func publishedAt(_ k: Int) -> UnsafeMutablePointer<UInt64> {
        (slot(k) + 16).assumingMemoryBound(to: UInt64.self)
    }

    @inlinable @inline(__always)
    func takenWord(_ k: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (slot(k) + 24).assumingMemoryBound(to: Atomic<Int>.self)
    }

    @inlinable @inline(__always)
    func value(_ k: Int) -> UnsafeMutableRawPointer { slot(k) + valueOffset }

    /// Whether sequence `k` is published (acquire: its value and failure are visible).
    @inlinable @inline(__always)
    func isPublished(_ k: Int) -> Bool {
        stampWord(k).pointee.load(ordering: .acquiring) == SlotRing.stamp(k)
    }

    /// Publishes sequence `k`. Sequentially consistent, so that a consumer that announced it is
    /// parked and then re-checked the ring cannot miss it (the other half of the Dekker pair).
    @inlinable @inline(__always)
    func publish(_ k: Int) {
        stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .sequentiallyConsistent)
    }

    /// Result ring: the first steps of freeing `k`'s slot — clear its waiter bits, record `k` as
    /// taken. Relaxed: the collected stamp the caller stores next (release or stronger) publishes
    /// both, and `didPublish` relies on the bits being cleared before that stamp.
    @inlinable @inline(__always)
    func markTaken(_ k: Int) {
        let waiters = resultWaiters(k)
        if waiters.pointee.load(ordering: .relaxed) != 0 { waiters.pointee.store(0, ordering: .relaxed) }
        takenWord(k).pointee.store(k &+ 1, ordering: .relaxed)
    }

    /// Result ring: whether sequence `k` may be admitted (the result of `k - capacity` was collected).
    @inlinable @inline(__always)
    func isFree(for k: Int) -> Bool {
        collectedWord(k).pointee.load(ordering: .acquiring) == SlotRing.stamp(k &- capacity)
    }

    /// Readies a zero-filled ring for use as the result ring: every slot starts collected, so the
    /// first `capacity` sequences are admitted.
    func initializeAsResultRing() {
        for i in 0..<capacity {
            collectedWord(i).pointee.store(SlotRing.stamp(i - capacity), ordering: .relaxed)
        }
    }
}

/// Bits of a result slot's `resultWaiters` word.
@usableFromInline
enum ResultWaiterBits {
    /// A thread sleeps on the slot's stamp (futex): wake it after publishing.
    @usableFromInline static let parkedThread: UInt32 = 1
    /// An async caller's continuation is registered: resume it after publishing.
    @usableFromInline static let continuation: UInt32 = 2
    /// The caller dropped its pending execution: the publisher collects the result.
    @usableFromInline static let abandoned: UInt32 = 4
    /// Process mode: a worker child published the result of a slot with a registered continuation;
    /// the parent's supervisor resumes it (a child cannot resume the parent's continuations).
    @usableFromInline static let continuationReady: UInt32 = 8
}

@inline(__always)
func roundUp(_ x: Int, to alignment: Int) -> Int { (x + alignment - 1) / alignment * alignment }
