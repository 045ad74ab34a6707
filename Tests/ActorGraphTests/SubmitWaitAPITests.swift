import ActorGraph
import BasicContainers
import GraphTestSupport
import Synchronization
import XCTest

/// The Swift-6 submit/wait API: pending executions in a standard noncopyable collection, once-only
/// waits, batches, the ordered async stream and zero-copy loans/borrows.
final class SubmitWaitAPITests: XCTestCase {
    func testWaitingTwiceIsATypedError() throws {
        let compiled = try diamondGraph().compile(testOptions())
        defer { compiled.shutdown() }
        let pending = try compiled.submit(3)
        XCTAssertEqual(try pending.wait(), diamondExpected(3))
        assertExecutionError(try pending.wait()) {
            if case .alreadyWaited(let k) = $0 { return k == pending.sequence }
            return false
        }
        // The slot was freed once: capacity is intact.
        for i in 0..<200 { XCTAssertEqual(try compiled.execute(i), diamondExpected(i)) }
    }

    func testPendingExecutionsInAUniqueArrayWaitedInAnyOrder() throws {
        let compiled = try diamondGraph().compile(testOptions(capacity: 64))
        defer { compiled.shutdown() }
        var pending = UniqueArray<PendingExecution<Int>>(minimumCapacity: 64)
        for i in 0..<64 { pending.append(try compiled.submit(i)) }
        // Reverse order, then every other one again must fail.
        for i in stride(from: 63, through: 0, by: -1) {
            XCTAssertEqual(try pending[i].wait(), diamondExpected(i))
        }
        for i in stride(from: 0, to: 64, by: 2) {
            assertExecutionError(try pending[i].wait()) {
                if case .alreadyWaited = $0 { return true }
                return false
            }
        }
        pending.removeAll()
        for i in 0..<300 { XCTAssertEqual(try compiled.execute(i), diamondExpected(i)) }
    }

    func testDroppingPendingExecutionsNeverLeaksCapacity() throws {
        // Admission is in sequence order (slot k & mask is reused by k + capacity), so at most
        // `capacity` sequences from the oldest unwaited one can be in flight: here 4.
        let compiled = try diamondGraph().compile(testOptions(capacity: 4, submitTimeout: .seconds(10)))
        defer { compiled.shutdown() }
        var kept = UniqueArray<PendingExecution<Int>>(minimumCapacity: 2)
        for round in 0..<1_000 {
            _ = try compiled.submit(round)  // dropped at once, never waited
            kept.append(try compiled.submit(round))
            if kept.count == 2 {
                XCTAssertEqual(try kept[0].wait(), diamondExpected(round - 1))
                kept.removeAll()  // one waited, one dropped unwaited
            }
        }
        kept.removeAll()
        for i in 0..<100 { XCTAssertEqual(try compiled.execute(i), diamondExpected(i)) }
    }

    func testALateWakeUpCheckCannotStealTheNextOccupantsAbandonBit() throws {
        // A worker publishes k, sees a waiter bit and only then takes the word; meanwhile k was
        // collected, its slot reused by k + capacity and that execution dropped: its abandon bit
        // must not be taken for k (it was, and the slot then never came back).
        let compiled = try diamondGraph().compile(testOptions(capacity: 8, submitTimeout: .seconds(10)))
        defer { compiled.shutdown() }
        var pending = UniqueArray<PendingExecution<Int>>(minimumCapacity: 8)
        for round in 0..<3_000 {
            for i in 0..<(round % 9) { pending.append(try compiled.submit(i)) }
            pending.removeAll()  // all dropped unwaited, newest last
        }
        for i in 0..<100 { XCTAssertEqual(try compiled.execute(i), diamondExpected(i)) }
    }

    func testBatchWaitInAnyOrderThenWaitAllDeliversEachResultOnce() throws {
        let graph = Graph(input: Int.self) { x in
            x.then(FailOnMultiples(every: 7), name: "check").then(name: "double") { $0 * 2 }
        }
        let compiled = try graph.compile(testOptions(capacity: 256))
        defer { compiled.shutdown() }
        let inputs = Array(1...200)
        let batch = try compiled.submit(contentsOf: inputs)
        XCTAssertEqual(batch.count, 200)
        var seen = [Int](repeating: 0, count: 200)
        for i in stride(from: 199, through: 0, by: -3) {
            seen[i] += 1
            if inputs[i] % 7 == 0 {
                assertExecutionError(try batch.wait(i)) {
                    if case .stageFailed(let node, let e) = $0 {
                        return node == "check" && (e as? Boom)?.value == inputs[i]
                    }
                    return false
                }
            } else {
                XCTAssertEqual(try batch.wait(i), inputs[i] * 2)
            }
        }
        batch.waitAll { index, result in
            switch result {
            case .success(let v):
                seen[index] += 1
                XCTAssertEqual(v, inputs[index] * 2)
            case .failure(.alreadyWaited):
                XCTAssertEqual(seen[index], 1, "only the ones waited before report alreadyWaited")
            case .failure(.stageFailed(let node, _)):
                seen[index] += 1
                XCTAssertEqual(node, "check")
                XCTAssertEqual(inputs[index] % 7, 0)
            case .failure(let other):
                XCTFail("unexpected \(other)")
            }
        }
        XCTAssertEqual(seen, [Int](repeating: 1, count: 200), "every execution answered exactly once")
        for i in 0..<600 {
            XCTAssertEqual(try? compiled.execute(i + 1), (i + 1) % 7 == 0 ? nil : (i + 1) * 2, "capacity intact")
        }
    }

    func testBatchLargerThanCapacityIsRejectedAndDroppedBatchesFreeTheirSlots() throws {
        let compiled = try diamondGraph().compile(testOptions(capacity: 16))
        defer { compiled.shutdown() }
        assertExecutionError(try compiled.submit(contentsOf: Array(0..<17))) {
            if case .batchTooLarge(17, 16) = $0 { return true }
            return false
        }
        for round in 0..<100 { _ = try compiled.submit(contentsOf: Array(round..<(round + 16))) }
        let last = try compiled.submit(contentsOf: Array(0..<16))
        var results: [Int] = []
        last.waitAll { _, r in results.append((try? r.get()) ?? -1) }
        XCTAssertEqual(results, (0..<16).map(diamondExpected))
    }

    /// Regression (batch claimed in chunks): a batch that held its first chunk uncollected while other
    /// threads claimed past it waited for its own slots until `capacityExceeded`. A batch now claims
    /// all its slots at once, and waits without holding any.
    func testBatchClaimsAllItsSlotsAtOnceSoItNeverWaitsForItself() throws {
        let compiled = try diamondGraph().compile(testOptions(capacity: 8, submitTimeout: .seconds(3)))
        defer { compiled.shutdown() }
        var held = UniqueArray<PendingExecution<Int>>(minimumCapacity: 4)
        for i in 0..<4 { held.append(try compiled.submit(i)) }  // sequences 0...3, not waited yet
        let batchResults = Mutex<[Int]?>(nil)
        let batchThread = Thread {
            do {
                let batch = try compiled.submit(contentsOf: Array(100..<108))  // needs all 8 slots
                var values: [Int] = []
                batch.waitAll { _, r in values.append((try? r.get()) ?? -1) }
                batchResults.withLock { $0 = values }
            } catch {
                batchResults.withLock { $0 = [] }
            }
        }
        batchThread.start()
        Thread.sleep(forTimeInterval: 0.05)
        // With only 4 slots free the batch claimed nothing, so this single submit gets one at once.
        let single = try compiled.submit(50)
        for i in 0..<4 { XCTAssertEqual(try held[i].wait(), diamondExpected(i)) }
        XCTAssertEqual(try single.wait(), diamondExpected(50))
        while batchResults.withLock({ $0 }) == nil { Thread.sleep(forTimeInterval: 0.005) }
        XCTAssertEqual(batchResults.withLock { $0 }, (100..<108).map(diamondExpected))
    }

    func testExecuteAllStreamsTenThousandResultsInOrderWithFailuresInPlace() throws {
        let graph = Graph(input: Int.self) { x in
            x.then(name: "a") { $0 + 1 }.then(FailOnMultiples(every: 97), name: "b").then(name: "c") { $0 * 3 }
        }
        for (capacity, window) in [(64, 64), (8, 3), (1024, 500)] {
            let compiled = try graph.compile(testOptions(workers: 2, capacity: capacity, placement: .spread))
            var next = 0
            var failures = 0
            try compiled.executeAll(0..<10_000, window: window) { index, result in
                XCTAssertEqual(index, next)
                next += 1
                switch result {
                case .success(let v): XCTAssertEqual(v, (index + 1) * 3)
                case .failure(.stageFailed(let node, let error)):
                    failures += 1
                    XCTAssertEqual(node, "b")
                    XCTAssertEqual((error as? Boom)?.value, index + 1)
                case .failure(let other): XCTFail("unexpected \(other)")
                }
            }
            XCTAssertEqual(next, 10_000)
            XCTAssertEqual(failures, (1...10_000).filter { $0 % 97 == 0 }.count)
            compiled.shutdown()
        }
    }

    func testBatchesAndSingleSubmitsFromSeveralThreadsInterleave() throws {
        let compiled = try diamondGraph().compile(testOptions(workers: 1, capacity: 128))
        defer { compiled.shutdown() }
        let errors = Atomic<Int>(0)
        let threads = (0..<3).map { t in
            Thread {
                do {
                    for round in 0..<200 {
                        let base = t * 1_000_000 + round * 100
                        if t == 0 {
                            for i in 0..<20 where try compiled.execute(base + i) != diamondExpected(base + i) {
                                errors.add(1, ordering: .relaxed)
                            }
                        } else {
                            let inputs = Array(base..<(base + 20))
                            try compiled.executeAll(inputs, window: 16) { i, r in
                                if (try? r.get()) != diamondExpected(inputs[i]) { errors.add(1, ordering: .relaxed) }
                            }
                            let batch = try compiled.submit(contentsOf: inputs)
                            batch.waitAll { i, r in
                                if (try? r.get()) != diamondExpected(inputs[i]) { errors.add(1, ordering: .relaxed) }
                            }
                        }
                    }
                } catch {
                    errors.add(1_000_000, ordering: .relaxed)
                }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(errors.load(ordering: .relaxed), 0)
    }

    func testAsyncResultsStreamInOrderAndEarlyExitFreesSlots() async throws {
        let graph = Graph(input: Int.self) { x in
            x.then(FailOnMultiples(every: 5), name: "check").then(name: "inc") { $0 + 1 }
        }
        let compiled = try graph.compile(testOptions(capacity: 32))
        defer { compiled.shutdown() }
        var index = 1
        for await result in compiled.results(for: 1...1_000, window: 16) {
            switch result {
            case .success(let v): XCTAssertEqual(v, index + 1)
            case .failure(.stageFailed(let node, _)):
                XCTAssertEqual(node, "check")
                XCTAssertEqual(index % 5, 0)
            case .failure(let other): XCTFail("unexpected \(other)")
            }
            index += 1
        }
        XCTAssertEqual(index, 1_001)
        for await _ in compiled.results(for: 1...1_000) { break }  // 32 in flight, then dropped
        for i in 1...100 where i % 5 != 0 {
            let value = try await compiled.execute(i)
            XCTAssertEqual(value, i + 1, "capacity intact")
        }
    }

    struct Block: Sendable, BitwiseCopyable {
        var words: InlineArray<512, UInt64>
    }

    func testZeroCopyLoanAndBorrow() throws {
        let graph = Graph(input: Block.self) { x in
            x.then(name: "sum") { block -> UInt64 in
                var s: UInt64 = 0
                for i in 0..<512 { s &+= block.words[i] }
                return s
            }
        }
        let compiled = try graph.compile(testOptions(capacity: 8))
        defer { compiled.shutdown() }
        for round in 0..<50 {
            let total = try compiled.execute(
                initializing: { block in
                    for i in 0..<512 { block.words[i] = UInt64(i + round) }
                },
                reading: { $0 }
            )
            XCTAssertEqual(total, UInt64((0..<512).reduce(0) { $0 + $1 + round }))
        }
        let echo = try Graph(input: Block.self) { x in
            x.then(name: "bump") { b in
                var c = b
                c.words[0] &+= 1
                return c
            }
        }
        .compile(testOptions(capacity: 4))
        defer { echo.shutdown() }
        for round in 0..<20 {
            let pending = try echo.submit(initializing: { b in for i in 0..<512 { b.words[i] = UInt64(round) } })
            let (first, last) = try pending.withResult { ($0.words[0], $0.words[511]) }
            XCTAssertEqual(first, UInt64(round) + 1)
            XCTAssertEqual(last, UInt64(round))
            assertExecutionError(try pending.wait()) {
                if case .alreadyWaited = $0 { return true }
                return false
            }
        }
    }
}
