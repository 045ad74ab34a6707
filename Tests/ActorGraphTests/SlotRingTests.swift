import Foundation
import Synchronization
import XCTest

@testable import ActorGraph

/// The ring on its own: geometry, publication, wrap-around, fan-out readers, admission.
final class SlotRingTests: XCTestCase {
    var memory: UnsafeMutableRawPointer!
    let capacity = 8

    override func setUp() {
        memory = UnsafeMutableRawPointer.allocate(byteCount: 64 * 1024, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: 64 * 1024)
    }

    override func tearDown() { memory.deallocate() }

    func makeRing(_ layout: ValueLayout = .of(Int.self)) -> SlotRing {
        let (stride, offset) = SlotRing.geometry(for: layout)
        return SlotRing(base: memory, stride: stride, capacity: capacity, valueOffset: offset)
    }

    func testGeometryKeepsSlotsOnTheirOwnCacheLines() {
        let small = SlotRing.geometry(for: .of(Int.self))
        XCTAssertEqual(small.stride, 64)
        XCTAssertEqual(small.valueOffset, 32)
        let kib = SlotRing.geometry(for: .of((Int64, Int64, Int64, Int64, Int64).self))
        XCTAssertEqual(kib.stride % 64, 0)
        XCTAssertGreaterThanOrEqual(kib.stride, 32 + 40)
        XCTAssertEqual(SlotRing.byteCount(for: .of(Int.self), capacity: 8), 512)
    }

    func testEmptyRingHasNothingPublished() {
        let ring = makeRing()
        for k in 0..<capacity { XCTAssertFalse(ring.isPublished(k)) }
    }

    func testPublishMakesExactlyThatSequenceVisible() {
        let ring = makeRing()
        ring.value(0).storeBytes(of: 42, as: Int.self)
        ring.publish(0)
        XCTAssertTrue(ring.isPublished(0))
        XCTAssertFalse(ring.isPublished(1))
        // The same slot seen one lap later is not yet published.
        XCTAssertFalse(ring.isPublished(capacity))
        XCTAssertEqual(ring.value(0).load(as: Int.self), 42)
    }

    func testWrapAroundReusesSlotsAndStampsTellLapsApart() {
        let ring = makeRing()
        for k in 0..<(capacity * 5 + 3) {
            ring.value(k).storeBytes(of: k * 10, as: Int.self)
            ring.publish(k)
            XCTAssertTrue(ring.isPublished(k))
            XCTAssertEqual(ring.value(k).load(as: Int.self), k * 10)
            if k >= capacity { XCTAssertFalse(ring.isPublished(k - capacity), "old lap must read as unpublished") }
            XCTAssertFalse(ring.isPublished(k + capacity))
        }
        XCTAssertEqual(ring.slot(3), ring.slot(3 + capacity))
    }

    func testStampWrapsAt32Bits() {
        XCTAssertEqual(SlotRing.stamp(-1), 0)
        XCTAssertEqual(SlotRing.stamp(Int(UInt32.max)), 0)
        XCTAssertNotEqual(SlotRing.stamp(Int(UInt32.max) - 1), SlotRing.stamp(Int(UInt32.max) - 1 - 8))
    }

    func testFanOutReadersAtDifferentSpeedsEachSeeEveryValueOnce() throws {
        let ring = makeRing()
        let total = 3_000
        let readers = 2
        // `nonisolated(unsafe)` (both pointers): reader r writes only its own row of `seen`, read here
        // after its final progress store (release/acquire); `progress` holds atomics.
        nonisolated(unsafe) let seen = UnsafeMutablePointer<Int>.allocate(capacity: readers * total)
        seen.initialize(repeating: -1, count: readers * total)
        defer { seen.deallocate() }
        // Collected-by-both counter: the producer may reuse a slot only when both readers passed it.
        nonisolated(unsafe) let progress = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: readers)
        for r in 0..<readers { (progress + r).initialize(to: Atomic(0)) }
        defer { progress.deallocate() }
        let threads = (0..<readers).map { r in
            Thread {
                var k = 0
                while k < total {
                    if ring.isPublished(k) {
                        seen[r * total + k] = ring.value(k).load(as: Int.self)
                        k += 1
                        // Reader 1 is slow.
                        if r == 1 && k % 7 == 0 { for _ in 0..<200 { _ = ring.isPublished(k) } }
                        (progress + r).pointee.store(k, ordering: .releasing)
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        for k in 0..<total {
            // Wait until every reader is within one lap.
            while (0..<readers).contains(where: { k - readProgress(progress, $0) >= capacity }) { sched_yield() }
            ring.value(k).storeBytes(of: k * 3, as: Int.self)
            ring.publish(k)
        }
        while (0..<readers).contains(where: { readProgress(progress, $0) < total }) { sched_yield() }
        for r in 0..<readers {
            for k in 0..<total { XCTAssertEqual(seen[r * total + k], k * 3, "reader \(r) seq \(k)") }
        }
    }

    func testResultRingAdmitsExactlyCapacityUntilCollected() {
        let ring = makeRing()
        ring.initializeAsResultRing()
        for k in 0..<capacity {
            XCTAssertEqual(ring.collectedWord(k).pointee.load(ordering: .relaxed), SlotRing.stamp(k - capacity))
        }
    }
}

private func readProgress(_ p: UnsafeMutablePointer<Atomic<Int>>, _ r: Int) -> Int {
    (p + r).pointee.load(ordering: .acquiring)
}
