import ActorGraph
import ActorGraphPlatform
import Foundation
import GraphTestSupport
import XCTest

/// Executions through the compiled engine: shapes, state, errors, capacity, shutdown, pipelining.
final class ExecutorTests: XCTestCase {
    func testReadmeDiamondBlockingAsyncAndSubmit() async throws {
        let compiled = try diamondGraph().compile(testOptions())
        defer { compiled.shutdown() }
        let y: Int = try { try compiled.execute(3) }()
        XCTAssertEqual(y, 43)
        let z = try await compiled.execute(3)
        XCTAssertEqual(z, 43)
        let pending = try compiled.submit(4)
        let w = try pending.wait()
        XCTAssertEqual(w, diamondExpected(4))
    }

    func testChainAcrossTwoWorkers() throws {
        let graph = Graph(input: Int.self) { x in
            x.then { $0 + 1 }.then { $0 * 3 }.then { $0 - 2 }
        }
        for placement in [Placement.automatic, .spread, .singleWorker] {
            let compiled = try graph.compile(testOptions(workers: 2, placement: placement))
            for i in -50...50 { XCTAssertEqual(try compiled.execute(i), (i + 1) * 3 - 2) }
            compiled.shutdown()
        }
    }

    func testDiamondOnTwoWorkersManyValues() throws {
        let compiled = try diamondGraph().compile(testOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        for i in 0..<2_000 { XCTAssertEqual(try compiled.execute(i), diamondExpected(i)) }
    }

    func testFanOutFourWithZipOfFour() throws {
        let graph = Graph(input: Int.self) { x in
            let a = x.then { $0 + 1 }
            let b = x.then { $0 + 2 }
            let c = x.then { $0 * 10 }
            let d = x.then { -$0 }
            return zip(a, b, c, d).then { $0 * 1000 + $1 * 100 + $2 + $3 }
        }
        let compiled = try graph.compile(testOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        for i in 0..<500 {
            XCTAssertEqual(try compiled.execute(i), (i + 1) * 1000 + (i + 2) * 100 + i * 10 - i)
        }
    }

    func testZipOfThreeWithMixedTypes() throws {
        let graph = Graph(input: Int.self) { x in
            let s = x.then { "v\($0)" }
            let d = x.then { Double($0) / 2 }
            let b = x.then { $0 % 2 == 0 }
            return zip(s, d, b).then { "\($0):\($1):\($2)" }
        }
        let compiled = try graph.compile(testOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        for i in 0..<300 { XCTAssertEqual(try compiled.execute(i), "v\(i):\(Double(i) / 2):\(i % 2 == 0)") }
    }

    func testTupleOutputs() throws {
        let graph = Graph(input: Int.self) { x in (x.then { $0 + 1 }, x.then { "\($0)" }) }
        let compiled = try graph.compile(testOptions())
        defer { compiled.shutdown() }
        let (n, s) = try compiled.execute(41)
        XCTAssertEqual(n, 42)
        XCTAssertEqual(s, "41")
    }

    func testStatefulStageStateIsOwnedByOneWorkerAndSeesEveryValueInOrder() throws {
        let graph = Graph(input: Int.self) { x in x.then(RunningSum()) }
        let compiled = try graph.compile(testOptions(workers: 2))
        defer { compiled.shutdown() }
        var expected = 0
        for i in 1...1_000 {
            expected += i
            XCTAssertEqual(try compiled.execute(i), expected)
        }
    }

    func testEachCompileGetsFreshStageState() throws {
        let graph = Graph(input: Int.self) { x in x.then(RunningSum()) }
        let first = try graph.compile(testOptions())
        XCTAssertEqual(try first.execute(5), 5)
        XCTAssertEqual(try first.execute(5), 10)
        first.shutdown()
        let second = try graph.compile(testOptions())
        XCTAssertEqual(try second.execute(5), 5)
        second.shutdown()
    }

    func testActorSharedByNodesOnSpreadPlacement() throws {
        struct Ledger {
            var deposits = 0
            var count = 0
        }
        let ledger = ActorRef(Ledger(), name: "ledger")
        let graph = Graph(input: Int.self) { x in
            let deposited = x.then(ledger, name: "deposit") { state, v in
                state.deposits += v
                state.count += 1
                return v
            }
            let doubled = deposited.then(name: "double") { $0 * 2 }
            let audited = doubled.then(ledger, name: "audit") { state, v in state.deposits + v }
            return audited
        }
        let compiled = try graph.compile(testOptions(workers: 2, placement: .spread))
        var total = 0
        for i in 1...500 {
            total += i
            XCTAssertEqual(try compiled.execute(i), total + 2 * i)
        }
        compiled.shutdown()
        try ledger.withState { state in
            XCTAssertEqual(state.count, 500)
            XCTAssertEqual(state.deposits, 500 * 501 / 2)
        }
    }

    func testThrowingStageFailsOnlyThatExecution() throws {
        let graph = Graph(input: Int.self) { x in
            let checked = x.then(FailOnMultiples(every: 3), name: "checker")
            return zip(checked.then { $0 + 1 }, x.then { $0 * 2 }).then(name: "join") { $0 + $1 }
        }
        let compiled = try graph.compile(testOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        for i in 1...300 {
            if i % 3 == 0 {
                assertExecutionError(try compiled.execute(i)) {
                    guard case .stageFailed(let node, let error) = $0 else { return false }
                    return node == "checker" && (error as? Boom) == Boom(value: i)
                }
            } else {
                XCTAssertEqual(try compiled.execute(i), (i + 1) + 2 * i)
            }
        }
    }

    func testFailureInsideFusedChainNamesTheFailingNode() throws {
        let graph = Graph(input: Int.self) { x in
            x.then(name: "first") { $0 + 1 }
                .then(name: "middle") { v -> String in
                    if v == 5 { throw Boom(value: v) }
                    return "ok\(v)"
                }
                .then(name: "last") { $0 + "!" }
        }
        let compiled = try graph.compile(testOptions())
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.segments.count, 1)
        XCTAssertEqual(try compiled.execute(1), "ok2!")
        assertExecutionError(try compiled.execute(4)) {
            if case .stageFailed("middle", let e) = $0 { return (e as? Boom) == Boom(value: 5) } else { return false }
        }
        for i in 10..<400 { XCTAssertEqual(try compiled.execute(i), "ok\(i + 1)!") }
    }

    func testPipelinedHundredThousandExecutionsInOrder() throws {
        let compiled = try diamondGraph().compile(testOptions(workers: 1, capacity: 256))
        defer { compiled.shutdown() }
        let total = 100_000
        let window = 200
        var pending: [Int: PendingBox] = [:]
        var nextToWait = 0
        for i in 0..<total {
            pending[i] = PendingBox(try compiled.submit(i))
            if i - nextToWait + 1 >= window {
                XCTAssertEqual(try pending.removeValue(forKey: nextToWait)!.wait(), diamondExpected(nextToWait))
                nextToWait += 1
            }
        }
        while nextToWait < total {
            let value = try pending.removeValue(forKey: nextToWait)!.wait()
            if value != diamondExpected(nextToWait) {
                XCTFail("execution \(nextToWait): \(value)")
                break
            }
            nextToWait += 1
        }
    }

    func testSubmitBeyondCapacityThrowsCapacityExceededWithoutLosingResults() throws {
        let gate = Gate()
        let graph = Graph(input: Int.self) { x in
            x.then { v in
                gate.waitOpen()
                return v * 2
            }
        }
        let compiled = try graph.compile(testOptions(capacity: 4, submitTimeout: .milliseconds(50)))
        defer { compiled.shutdown() }
        var pending = (0..<4).map { PendingBox(try! compiled.submit($0)) }
        assertExecutionError(try compiled.submit(99)) {
            if case .capacityExceeded(4) = $0 { return true } else { return false }
        }
        gate.open()
        for (i, p) in pending.enumerated() { XCTAssertEqual(try p.wait(), i * 2) }
        pending.removeAll()
        XCTAssertEqual(try compiled.execute(21), 42, "capacity is free again")
    }

    func testDroppedPendingExecutionFreesItsSlot() throws {
        let compiled = try diamondGraph().compile(testOptions(capacity: 2, submitTimeout: .seconds(5)))
        defer { compiled.shutdown() }
        for i in 0..<100 { _ = try compiled.submit(i) }  // dropped at once
        XCTAssertEqual(try compiled.execute(3), 43)
    }

    func testShutdownWithExecutionsInFlightAnswersEveryWaiter() throws {
        let gate = Gate()
        let graph = Graph(input: Int.self) { x in
            x.then { v in
                if v > 0 { gate.waitOpen() }
                return v
            }
        }
        let compiled = try graph.compile(testOptions(capacity: 8))
        XCTAssertEqual(try compiled.execute(0), 0)
        let pending = (1...6).map { PendingBox(try! compiled.submit($0)) }
        let answers = Counter()
        let shutDowns = Counter()
        let waiters = pending.indices.map { i in
            Thread {
                do { _ = try pending[i].wait() } catch ExecutionError.shutDown { shutDowns.increment() } catch {}
                answers.increment()
            }
        }
        waiters.forEach { $0.start() }
        Thread.sleep(forTimeInterval: 0.05)
        // The worker is stuck in a stage: open the gate only after shutdown began.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) { gate.open() }
        compiled.shutdown()
        compiled.shutdown()  // idempotent
        let deadline = Date().addingTimeInterval(10)
        while answers.value < 6 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(answers.value, 6, "every waiter answered")
        XCTAssertGreaterThanOrEqual(
            shutDowns.value,
            1,
            "executions stuck behind the blocked stage are answered with shutDown"
        )
        assertExecutionError(try compiled.execute(1)) { if case .shutDown = $0 { return true } else { return false } }
        assertExecutionError(try compiled.submit(1)) { if case .shutDown = $0 { return true } else { return false } }
    }

    func testAsyncWaiterIsAnsweredOnShutdown() async throws {
        let gate = Gate()
        let graph = Graph(input: Int.self) { x in
            x.then { v in
                gate.waitOpen()
                return v
            }
        }
        let compiled = try graph.compile(testOptions())
        let waiter = Task { () -> String in
            do {
                _ = try await compiled.execute(1)
                return "value"
            } catch ExecutionError.shutDown { return "shutDown" } catch { return "\(error)" }
        }
        try await Task.sleep(for: .milliseconds(50))
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { gate.open() }
        compiled.shutdown()
        let outcome = await waiter.value
        XCTAssertTrue(outcome == "shutDown" || outcome == "value", outcome)
    }

    func testConcurrentSubmittersFromManyThreads() throws {
        let compiled = try diamondGraph().compile(testOptions(capacity: 64))
        defer { compiled.shutdown() }
        let failures = Counter()
        let done = Counter()
        let threads = (0..<4).map { t in
            Thread {
                for i in 0..<2_000 {
                    let x = t * 10_000 + i
                    if (try? compiled.execute(x)) != diamondExpected(x) { failures.increment() }
                }
                done.increment()
            }
        }
        threads.forEach { $0.start() }
        while done.value < 4 { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(failures.value, 0)
    }

    func testAsyncExecutesFromManyTasks() async throws {
        let compiled = try diamondGraph().compile(testOptions(capacity: 32))
        defer { compiled.shutdown() }
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for i in 0..<500 { group.addTask { (i, try await compiled.execute(i)) } }
            var all: [(Int, Int)] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(results.count, 500)
        for (i, r) in results { XCTAssertEqual(r, diamondExpected(i)) }
    }

    func testReferenceTypedValuesAreCopiedAndReleased() throws {
        final class Tracked: Sendable {
            static let live = Counter()
            let v: Int
            init(_ v: Int) {
                self.v = v
                Tracked.live.increment()
            }
            deinit { Tracked.live.decrement() }
        }
        do {
            let graph = Graph(input: [Int].self) { x in
                let objects = x.then { $0.map(Tracked.init) }
                let sums = objects.then { $0.reduce(0) { $0 + $1.v } }
                let counts = objects.then { $0.count }
                return zip(sums, counts).then { "\($0)/\($1)" }
            }
            let compiled = try graph.compile(testOptions(workers: 2, capacity: 8, placement: .spread))
            for i in 0..<200 {
                XCTAssertEqual(try compiled.execute(Array(0..<(i % 10))), "\((0..<(i % 10)).reduce(0, +))/\(i % 10)")
            }
            compiled.shutdown()
        }
        XCTAssertEqual(Tracked.live.value, 0, "every stored value was destroyed")
    }

    func testWorkersParkThroughIORingWhenIdle() throws {
        let compiled = try diamondGraph().compile(testOptions())
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(1), diamondExpected(1))
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertGreaterThan(compiled.diagnostics.parkCounts[0], 0, "an idle worker parks")
        XCTAssertEqual(try compiled.execute(2), diamondExpected(2), "and is woken by the next submit")
        if IORing.supportsFutexWait() {
            XCTAssertEqual(compiled.diagnostics.parkMechanisms, ["io_uring futex-wait"])
        } else {
            XCTAssertEqual(compiled.diagnostics.parkMechanisms, ["futex"])
        }
    }
}

/// Holds a ~Copyable pending execution in collections.
/// `@unchecked Sendable`: each box is waited on by one thread only (the test or one waiter thread).
final class PendingBox: @unchecked Sendable {
    var pending: PendingExecution<Int>?
    init(_ p: consuming PendingExecution<Int>) { pending = consume p }
    func wait() throws -> Int {
        guard let p = pending.take() else { throw ExecutionError.shutDown }
        return try p.wait()
    }
}

/// A latch stages block on, to hold executions in flight.
/// `@unchecked Sendable`: `isOpen` is only touched under `condition`'s lock.
final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false
    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }
    func waitOpen() {
        condition.lock()
        while !isOpen { condition.wait() }
        condition.unlock()
    }
}

/// A counter several threads bump. `@unchecked Sendable`: `count` is only touched under `lock`.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }
    func decrement() {
        lock.lock()
        count -= 1
        lock.unlock()
    }
}
