import ActorGraph
import ActorGraphPlatform
import BasicContainers
import Dispatch
import GraphTestSupport
import Synchronization
import XCTest

/// The shutdown contract (thread mode): a worker stops at the next execution boundary, executions
/// not yet started are answered `shutDown` and never run, a stage that outlived the grace period
/// gives its actors back when it returns, and nothing starts after `shutdown()` returned.
/// Process mode: `IsolationTests.testNoStageStartsAfterShutdownReturnsInProcessMode`.
final class ShutdownContractTests: XCTestCase {
    /// Stage start times (monotonic ns) and how many stages ran, shared with the worker.
    final class StartLog: Sendable {
        let starts = Mutex<[UInt64]>([])
        func record() { starts.withLock { $0.append(MonotonicClock.now()) } }
        var count: Int { starts.withLock { $0.count } }
        var all: [UInt64] { starts.withLock { $0 } }

        /// Waits (bounded) until at least `n` stages started.
        func waitFor(_ n: Int, file: StaticString = #filePath, line: UInt = #line) {
            let deadline = ContinuousClock.now + .seconds(10)
            while count < n && ContinuousClock.now < deadline { usleep(1_000) }
            XCTAssertGreaterThanOrEqual(count, n, "the stage never started", file: file, line: line)
        }
    }

    private func options(grace: Duration) -> CompileOptions {
        var options = testOptions(capacity: 16)
        options.shutdownGracePeriod = grace
        return options
    }

    /// Waits for every pending execution; returns (values, shutDown answers). Any other answer fails.
    private func answers(
        _ pending: consuming UniqueArray<PendingExecution<Int>>,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> (values: Int, shutDown: Int) {
        var values = 0
        var shutDown = 0
        for i in 0..<pending.count {
            do {
                _ = try pending[i].wait()
                values += 1
            } catch .shutDown {
                shutDown += 1
            } catch {
                XCTFail("unexpected answer: \(error)", file: file, line: line)
            }
        }
        return (values, shutDown)
    }

    func testShutdownStopsAWorkerAtTheNextExecutionBoundary() throws {
        // Eight 200 ms executions queued on one worker, a 1 s grace period: the worker finishes the
        // stage it is in, runs none of the other seven, and shutdown never needs to detach it.
        let log = StartLog()
        let graph = Graph(input: Int.self) { x in
            x.then(name: "slow") { v -> Int in
                log.record()
                usleep(200_000)
                return v
            }
        }
        let compiled = try graph.compile(options(grace: .seconds(1)))
        var pending = UniqueArray<PendingExecution<Int>>(minimumCapacity: 8)
        for i in 0..<8 { pending.append(try compiled.submit(i)) }
        log.waitFor(1)
        compiled.shutdown()
        let returnedAt = MonotonicClock.now()
        let (values, shutDown) = answers(pending)
        XCTAssertEqual(values + shutDown, 8, "every waiter is answered")
        XCTAssertGreaterThanOrEqual(shutDown, 7, "executions not yet started are answered shutDown")
        XCTAssertEqual(
            compiled.diagnostics.detachedWorkerThreads,
            0,
            "the worker stopped after its running stage, within the grace period"
        )
        usleep(300_000)
        XCTAssertEqual(log.count, 1, "only the stage already running when shutdown() began ran")
        XCTAssertTrue(log.all.allSatisfy { $0 < returnedAt }, "no stage started after shutdown() returned")
    }

    /// A stage blocked on `gate` after recording its start; the actor sums the values it saw.
    private func gatedGraph(_ actor: ActorRef<Int>, gate: DispatchSemaphore, log: StartLog) -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(actor, name: "gated") { state, v -> Int in
                log.record()
                gate.wait()
                state += v
                return v
            }
        }
    }

    private func assertBound(_ actor: ActorRef<Int>, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(actor.isBound, file: file, line: line)
        assertCompileError(try actor.withState { $0 }, file: file, line: line) {
            if case .actorAlreadyBound(let name) = $0 { return name == "sum" }
            return false
        }
        let other = Graph(input: Int.self) { x in
            x.then(actor) { state, v in
                state += v
                return v
            }
        }
        assertCompileError(try other.compile(testOptions()), file: file, line: line) {
            if case .actorAlreadyBound(let name) = $0 { return name == "sum" }
            return false
        }
    }

    /// Waits (bounded) for the actor to come back, then checks it is as usable as after a clean shutdown.
    private func assertGivenBack(
        _ actor: ActorRef<Int>,
        expectedState: Int,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while actor.isBound && ContinuousClock.now < deadline { usleep(1_000) }
        XCTAssertFalse(actor.isBound, "the actor came back once its stage returned", file: file, line: line)
        XCTAssertEqual(try actor.withState { $0 }, expectedState, "the worker's final state", file: file, line: line)
        let again = Graph(input: Int.self) { x in
            x.then(actor) { state, v in
                state += v
                return state
            }
        }
        let compiled = try again.compile(testOptions())
        XCTAssertEqual(try compiled.execute(100), expectedState + 100, file: file, line: line)
        compiled.shutdown()
        XCTAssertFalse(actor.isBound, file: file, line: line)
    }

    func testADetachedStageGivesItsActorBackWhenItReturns() throws {
        let actor = ActorRef(0, name: "sum")
        let gate = DispatchSemaphore(value: 0)
        let log = StartLog()
        let compiled = try gatedGraph(actor, gate: gate, log: log).compile(options(grace: .milliseconds(50)))
        var pending = UniqueArray<PendingExecution<Int>>(minimumCapacity: 4)
        for i in 1...4 { pending.append(try compiled.submit(i)) }
        log.waitFor(1)
        compiled.shutdown()
        let returnedAt = MonotonicClock.now()
        XCTAssertEqual(compiled.diagnostics.detachedWorkerThreads, 1)
        let (values, shutDown) = answers(pending)
        XCTAssertEqual(values, 0)
        XCTAssertEqual(shutDown, 4, "every waiter is answered while the stage is still stuck")
        // Until the stuck stage returns: typed errors, never a trap.
        assertBound(actor)
        gate.signal()
        try assertGivenBack(actor, expectedState: 1)
        // The three queued executions never ran.
        usleep(100_000)
        XCTAssertEqual(log.count, 1)
        XCTAssertTrue(log.all.allSatisfy { $0 < returnedAt })
        for _ in 0..<4 { gate.signal() }  // a stage that did start after all would not hang the test
    }

    func testDroppingTheGraphKeepsTheSameContract() throws {
        let actor = ActorRef(0, name: "sum")
        let gate = DispatchSemaphore(value: 0)
        let log = StartLog()
        var returnedAt: UInt64 = 0
        do {
            let compiled = try gatedGraph(actor, gate: gate, log: log).compile(options(grace: .milliseconds(50)))
            for i in 1...4 { _ = try compiled.submit(i) }  // dropped pending executions
            log.waitFor(1)
        }  // the graph is released here: its deinit shuts it down
        returnedAt = MonotonicClock.now()
        assertBound(actor)
        gate.signal()
        try assertGivenBack(actor, expectedState: 1)
        usleep(100_000)
        XCTAssertEqual(log.count, 1, "no queued execution ran after the graph was dropped")
        XCTAssertTrue(log.all.allSatisfy { $0 < returnedAt })
        for _ in 0..<4 { gate.signal() }
    }

    func testACleanShutdownGivesActorsBackAtOnce() throws {
        let actor = ActorRef(0, name: "sum")
        let graph = Graph(input: Int.self) { x in
            x.then(actor) { state, v in
                state += v
                return v
            }
        }
        let compiled = try graph.compile(testOptions())
        for i in 1...10 { _ = try compiled.execute(i) }
        assertBound(actor)
        compiled.shutdown()
        XCTAssertFalse(actor.isBound)
        XCTAssertEqual(try actor.withState { $0 }, 55)
    }
}
