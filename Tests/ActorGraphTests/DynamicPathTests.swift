import ActorGraph
import GraphTestSupport
import XCTest

/// The dynamic task path and the sequential path give the same results and errors as the compiled path.
final class DynamicPathTests: XCTestCase {
    func testSameResultsOnAllThreePaths() async throws {
        let graph = diamondGraph()
        let compiled = try graph.compile(testOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        let dynamic = try graph.dynamic()
        let sequential = try graph.sequential()
        for i in -20...200 {
            let c = try await compiled.execute(i)
            let d = try await dynamic.execute(i)
            let s = try sequential.execute(i)
            XCTAssertEqual(c, diamondExpected(i))
            XCTAssertEqual(d, c)
            XCTAssertEqual(s, c)
        }
    }

    func testSameErrorsOnAllThreePaths() async throws {
        let graph = Graph(input: Int.self) { x in
            let checked = x.then(FailOnMultiples(every: 4), name: "checker")
            return zip(checked, x.then { $0 * 2 }).then(name: "join") { $0 + $1 }
        }
        let compiled = try graph.compile(testOptions())
        defer { compiled.shutdown() }
        let dynamic = try graph.dynamic()
        let sequential = try graph.sequential()
        for i in 1...40 {
            var outcomes: [String] = []
            do { outcomes.append("\(try await compiled.execute(i))") } catch { outcomes.append(describe(error)) }
            do { outcomes.append("\(try await dynamic.execute(i))") } catch { outcomes.append(describe(error)) }
            do { outcomes.append("\(try sequential.execute(i))") } catch { outcomes.append(describe(error)) }
            let expected = i % 4 == 0 ? "stageFailed(checker, Boom(value: \(i)))" : "\(3 * i)"
            XCTAssertEqual(outcomes, [expected, expected, expected], "input \(i)")
        }
    }

    /// Regression (found by `RandomGraphPropertyTests`): the sequential path stopped at the first stage
    /// that threw in declaration order, so it named a different failing node than the compiled and
    /// dynamic paths (which forward the first failed input in argument order) and skipped stages on
    /// independent branches, leaving stage and actor state behind theirs.
    func testSequentialStoppedAtFirstFailureInDeclarationOrder() async throws {
        let graph = { (counter: ActorRef<Int>) in
            Graph(input: Int.self) { x in
                let early = x.then(name: "early") { v -> Int in throw Boom(value: v) }  // declared first
                let late = x.then(name: "late") { v -> Int in throw Boom(value: -v) }  // declared second
                let counted = x.then(counter, name: "count") { state, v in
                    state += 1
                    return v
                }
                return zip(late, early, counted).then(name: "join") { a, b, c in a + b + c }
            }
        }
        let counters = (0..<3).map { ActorRef(0, name: "counter\($0)") }
        let compiled = try graph(counters[0]).compile(testOptions(workers: 2, placement: .spread))
        let dynamic = try graph(counters[1]).dynamic()
        let sequential = try graph(counters[2]).sequential()
        for i in 1...5 {
            var failed: [String] = []
            func record(_ error: ExecutionError) { failed.append(describe(error)) }
            do { _ = try await compiled.execute(i) } catch { record(error) }
            do { _ = try await dynamic.execute(i) } catch { record(error) }
            do { _ = try sequential.execute(i) } catch { record(error) }
            let expected = "stageFailed(late, Boom(value: \(-i)))"
            XCTAssertEqual(
                failed,
                [expected, expected, expected],
                "the first failed input of 'join' in argument order"
            )
        }
        compiled.shutdown()
        XCTAssertEqual(
            try counters.map { try $0.withState { $0 } },
            [5, 5, 5],
            "the independent branch ran on every path"
        )
    }

    func testMalformedGraphsAreRejectedLikeCompile() {
        let dead = Graph(input: Int.self) { x in
            _ = x.then(name: "orphan") { $0 }
            return x.then { $0 + 1 }
        }
        assertCompileError(try dead.dynamic()) {
            if case .deadStage("orphan") = $0 { return true } else { return false }
        }
        assertCompileError(try dead.sequential()) {
            if case .deadStage("orphan") = $0 { return true } else { return false }
        }
    }

    func testDynamicSerializesAnActorSharedByNodes() async throws {
        let counter = ActorRef(0, name: "counter")
        let graph = Graph(input: Int.self) { x in
            let a = x.then(counter) { s, v in
                s += v
                return v
            }
            let b = x.then(counter) { s, v in
                s += 2 * v
                return v
            }
            return zip(a, b).then { $0 + $1 }
        }
        let dynamic = try graph.dynamic()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 1...200 { group.addTask { _ = try await dynamic.execute(i) } }
            try await group.waitForAll()
        }
        XCTAssertEqual(try counter.withState { $0 }, 3 * 200 * 201 / 2)
    }

    func testDynamicShutdown() async throws {
        let dynamic = try diamondGraph().dynamic()
        dynamic.shutdown()
        do {
            _ = try await dynamic.execute(1)
            XCTFail("expected shutDown")
        } catch .shutDown {
        } catch {
            XCTFail("\(error)")
        }
    }

    private func describe(_ error: any Error) -> String {
        if case ExecutionError.stageFailed(let node, let inner) = error { return "stageFailed(\(node), \(inner))" }
        return "\(error)"
    }
}
