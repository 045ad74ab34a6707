import ActorGraph
import Dispatch
import Foundation
import GraphTestSupport
import Synchronization
import XCTest

/// A blocking `execute` that finds every worker parked runs the stages on its own thread
/// (`CompileOptions.callerTakeover`): actor state keeps one owner at a time, workers come back,
/// and deadlines, stage time limits and shutdown keep their promises.
final class CallerTakeoverTests: XCTestCase {
    /// A value several threads share.
    final class Locked<Value: Sendable>: Sendable {
        private let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        func withLock<R>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
    }

    /// The calling thread's identity.
    static func threadID() -> Int { Int(bitPattern: UInt(pthread_self())) }

    /// Waits (bounded) until every worker has parked at least `count` times in total.
    private func waitUntilParked<I, O>(_ compiled: CompiledGraph<I, O>, beyond count: Int = 0) {
        let deadline = ContinuousClock.now + .seconds(10)
        while compiled.diagnostics.parkCounts.reduce(0, +) <= count && ContinuousClock.now < deadline { usleep(1_000) }
        usleep(5_000)  // past the re-check: asleep
    }

    private func recordingGraph(_ seen: Locked<[Int]>) -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(name: "a") { $0 + 1 }.then(name: "b") { v -> Int in
                seen.withLock { $0.append(CallerTakeoverTests.threadID()) }
                return v * 2
            }
        }
    }

    func testAnIdleGraphRunsOnTheCallersThread() throws {
        let seen = Locked<[Int]>([])
        let compiled = try recordingGraph(seen).compile(testOptions())
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.submit(1).wait(), 4)  // on the worker (submit always hands over)
        for i in 0..<5 {
            waitUntilParked(compiled)
            XCTAssertEqual(try compiled.execute(i), (i + 1) * 2)
        }
        let me = Self.threadID()
        let threads = seen.withLock { $0 }
        XCTAssertNotEqual(threads[0], me, "submit hands the execution to the worker")
        XCTAssertEqual(
            Array(threads.dropFirst()),
            Array(repeating: me, count: 5),
            "execute ran the parked worker's stages"
        )
        XCTAssertEqual(compiled.diagnostics.callerTakeovers, 5)
        // The worker is still there for everything else.
        for i in 0..<1_000 { XCTAssertEqual(try compiled.submit(i).wait(), (i + 1) * 2) }
    }

    func testDeadlinesStageTimeLimitsAndTheOptionKeepStagesOnTheWorkers() throws {
        let me = Self.threadID()
        for variant in 0..<3 {
            let seen = Locked<[Int]>([])
            var options = testOptions()
            if variant == 1 { options.stageTimeLimit = .seconds(5) }
            if variant == 2 { options.callerTakeover = false }
            let compiled = try recordingGraph(seen).compile(options)
            for i in 0..<3 {
                waitUntilParked(compiled, beyond: i)
                if variant == 0 {
                    XCTAssertEqual(try compiled.execute(i, timeout: .seconds(5)), (i + 1) * 2)
                } else {
                    XCTAssertEqual(try compiled.execute(i), (i + 1) * 2)
                }
            }
            compiled.shutdown()
            XCTAssertFalse(seen.withLock { $0 }.contains(me), "variant \(variant) ran a stage on the caller")
            XCTAssertEqual(compiled.diagnostics.callerTakeovers, 0)
        }
    }

    func testConcurrentCallersSharingAnActorAcrossWorkersStayExact() throws {
        // Callers that sleep between calls (so workers park and are taken over) next to a caller
        // that pipelines through `submit` (so workers are also awake): every result exact, the
        // actor sees every execution exactly once.
        let counter = ActorRef(0, name: "counter")
        let graph = Graph(input: Int.self) { x in
            let a = x.then(name: "double") { $0 * 2 }
            let b = a.then(counter, name: "count") { n, v in
                n += 1
                return v + 1
            }
            let c = a.then(name: "square") { $0 * $0 }
            return zip(b, c).then(name: "sum") { $0 + $1 }
        }
        let compiled = try graph.compile(testOptions(workers: 2, capacity: 16, placement: .spread))
        let errors = Locked<[String]>([])
        let perThread = 1_500
        let done = DispatchGroup()
        for t in 0..<3 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                var rng = SystemRandomNumberGenerator()
                for i in 0..<perThread {
                    let v = t * 100_000 + i
                    do {
                        let r = t == 2 ? try compiled.submit(v).wait() : try compiled.execute(v)
                        if r != v * 2 + 1 + v * v * 4 { errors.withLock { $0.append("\(v) -> \(r)") } }
                    } catch {
                        errors.withLock { $0.append("\(v): \(error)") }
                    }
                    if t < 2 && i % 3 == 0 { usleep(UInt32.random(in: 0...400, using: &rng)) }
                }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success, "callers hung")
        compiled.shutdown()
        XCTAssertEqual(errors.withLock { $0 }, [])
        XCTAssertEqual(try counter.withState { $0 }, 3 * perThread)
        XCTAssertGreaterThan(compiled.diagnostics.callerTakeovers, 0, "callers that slept found the workers parked")
        print("caller take-overs: \(compiled.diagnostics.callerTakeovers) of \(2 * perThread) blocking executes")
    }

    func testShutdownWhileACallerIsInsideAStageItTookOver() throws {
        let actor = ActorRef(0, name: "gated")
        let gate = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let graph = Graph(input: Int.self) { x in
            x.then(actor) { n, v -> Int in
                if v == 7 {
                    entered.signal()
                    gate.wait()
                }
                n += v
                return v
            }
        }
        var options = testOptions()
        options.shutdownGracePeriod = .milliseconds(50)
        let compiled = try graph.compile(options)
        waitUntilParked(compiled)
        let answer = Locked<String>("none")
        let caller = Thread { answer.withLock { $0 = (try? compiled.execute(7)).map { "value \($0)" } ?? "error" } }
        caller.start()
        XCTAssertEqual(entered.wait(timeout: .now() + 10), .success)
        compiled.shutdown()
        XCTAssertTrue(actor.isBound, "the stage is still running on the caller")
        assertCompileError(try actor.withState { $0 }) {
            if case .actorAlreadyBound = $0 { return true }
            return false
        }
        gate.signal()
        let deadline = ContinuousClock.now + .seconds(10)
        while (actor.isBound || answer.withLock({ $0 }) == "none") && ContinuousClock.now < deadline { usleep(1_000) }
        XCTAssertFalse(actor.isBound, "the actor came back once the caller's stage returned")
        XCTAssertEqual(try actor.withState { $0 }, 7)
        XCTAssertEqual(
            answer.withLock { $0 },
            "value 7",
            "the stage already running finished and its caller got the value"
        )
        XCTAssertEqual(compiled.diagnostics.callerTakeovers, 1)
    }
}
