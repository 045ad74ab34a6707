import ActorGraphPlatform
import Foundation
import Synchronization
import XCTest

/// The platform layer against the real kernel: memfd regions, NUMA queries, pinned threads,
/// futexes and io_uring (skipped with a message where the host refuses io_uring).
final class PlatformTests: XCTestCase {
    func testSharedMemoryRegionIsZeroedWritableAndPageSized() throws {
        let region = try SharedMemoryRegion(name: "test", byteCount: 10_000, numaNode: NUMA.isAvailable ? 0 : nil)
        defer { region.close() }
        XCTAssertEqual(region.size % 4096, 0)
        XCTAssertGreaterThanOrEqual(region.size, 10_000)
        XCTAssertEqual(region.base.load(fromByteOffset: 9_000, as: UInt64.self), 0)
        region.base.storeBytes(of: 0xDEAD_BEEF, toByteOffset: 8, as: UInt64.self)
        XCTAssertEqual(region.base.load(fromByteOffset: 8, as: UInt64.self), 0xDEAD_BEEF)
        // It is a real memfd mapping.
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(region.fileDescriptor)")
        XCTAssertTrue(link.contains("memfd:test"), link)
        if NUMA.isAvailable { XCTAssertEqual(NUMA.node(ofAddress: region.base), 0) }
    }

    func testNUMAQueries() {
        XCTAssertGreaterThanOrEqual(NUMA.nodeCount, 1)
        let cpus = NUMA.cpus(ofNode: 0)
        XCTAssertFalse(cpus.isEmpty)
        XCTAssertEqual(NUMA.node(ofCPU: cpus[0]), 0)
        XCTAssertTrue(NUMA.cpus(ofNode: 4096).isEmpty)
    }

    func testPinnedThreadRunsOnItsCPU() throws {
        let cpu = CPU.allowedCPUs().last!
        let observed = Atomic<Int>(-1)
        let thread = try PinnedThread(name: "pin-test", cpu: cpu) {
            observed.store(CPU.current ?? -2, ordering: .releasing)
        }
        thread.join()
        thread.join()  // idempotent
        XCTAssertEqual(observed.load(ordering: .acquiring), cpu)
    }

    func testFutexWaitTimesOutAndSeesChangedValue() {
        let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        defer { word.deallocate() }
        word.pointee = 7
        XCTAssertEqual(Futex.wait(on: word, expected: 8, timeoutNanoseconds: 1_000_000), .valueChanged)
        XCTAssertEqual(Futex.wait(on: word, expected: 7, timeoutNanoseconds: 1_000_000), .timedOut)
        XCTAssertEqual(Futex.wake(word), 0)
    }

    func testIORingFutexWaitCompletesWhenWoken() throws {
        guard case .success = IORing.probe() else { throw XCTSkip("io_uring refused on this host") }
        guard IORing.supportsFutexWait() else { throw XCTSkip("kernel lacks IORING_OP_FUTEX_WAIT") }
        let ring = try IORing(entries: 4)
        defer { ring.close() }
        // `nonisolated(unsafe)`: the kernel reads the word; this thread alone writes it.
        nonisolated(unsafe) let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        defer { word.deallocate() }
        word.pointee = 1
        XCTAssertTrue(ring.prepareFutexWait(on: word, expected: 1, userData: 42))
        XCTAssertEqual(try ring.submit(), 1)
        // Nothing completes while nobody wakes it.
        XCTAssertFalse(try ring.submitAndWait(timeoutNanoseconds: 5_000_000))
        let waker = Thread {
            Thread.sleep(forTimeInterval: 0.01)
            while Futex.wake(word) == 0 { Thread.sleep(forTimeInterval: 0.001) }
        }
        waker.start()
        XCTAssertTrue(try ring.submitAndWait(timeoutNanoseconds: 5_000_000_000))
        var completions: [IORing.Completion] = []
        ring.reapCompletions { completions.append($0) }
        XCTAssertEqual(completions.map(\.userData), [42])
        XCTAssertEqual(completions.first?.result, 0)
    }

    func testIORingFutexWaitReturnsAtOnceWhenValueDiffers() throws {
        guard case .success = IORing.probe(), IORing.supportsFutexWait() else {
            throw XCTSkip("io_uring futex-wait unavailable")
        }
        let ring = try IORing(entries: 4)
        let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        defer { word.deallocate() }
        word.pointee = 0
        ring.prepareFutexWait(on: word, expected: 1, userData: 7)
        XCTAssertTrue(try ring.submitAndWait(timeoutNanoseconds: 1_000_000_000))
        var results: [Int32] = []
        ring.reapCompletions { results.append($0.result) }
        XCTAssertEqual(results, [-EAGAIN])
    }

    func testIORingReadsAFile() throws {
        guard case .success = IORing.probe() else { throw XCTSkip("io_uring refused on this host") }
        let path = NSTemporaryDirectory() + "actorgraph-ioring-\(getpid())"
        try Data("hello io_uring".utf8).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let ring = try IORing(entries: 4)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        ring.prepareRead(fd: fd, into: buffer, offset: 6, userData: 1)
        XCTAssertTrue(try ring.submitAndWait(timeoutNanoseconds: 1_000_000_000))
        var n: Int32 = -1
        ring.reapCompletions { n = $0.result }
        XCTAssertEqual(n, 8)
        XCTAssertEqual(String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<8]), as: UTF8.self), "io_uring")
    }

    func testErrnoDescription() {
        XCTAssertTrue(Errno.notPermitted.description.contains("errno 1"))
    }
}

final class SystemLoadTests: XCTestCase {
    /// `/proc/loadavg` counts the reading thread itself as runnable: at least one.
    func testRunnableThreadsCountsAtLeastTheReader() throws {
        let runnable = try XCTUnwrap(SystemLoad.runnableThreads())
        XCTAssertGreaterThanOrEqual(runnable, 1)
        XCTAssertLessThan(runnable, 1 << 20)
    }
}
