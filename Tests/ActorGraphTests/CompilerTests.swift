import ActorGraphPlatform
import GraphTestSupport
import XCTest

@testable import ActorGraph

/// Validation, placement and fusion.
final class CompilerTests: XCTestCase {
    func testChainOnOneWorkerIsFusedIntoOneSegment() throws {
        let graph = Graph(input: Int.self) { x in
            x.then(name: "a") { $0 + 1 }.then(name: "b") { $0 * 2 }.then(name: "c") { $0 - 3 }
        }
        let compiled = try graph.compile(testOptions(workers: 1))
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.segments.count, 1)
        XCTAssertEqual(compiled.segments[0].nodes, ["a", "b", "c"])
        XCTAssertEqual(compiled.channelCount, 2, "input ring + result ring only: no channel inside the chain")
        XCTAssertEqual(try compiled.execute(5), 9)
        XCTAssertTrue(compiled.dot().contains("label=\"fused\""))
    }

    func testSpreadPlacementPutsEveryNodeInItsOwnSegmentRoundRobin() throws {
        let graph = Graph(input: Int.self) { x in
            x.then(name: "a") { $0 + 1 }.then(name: "b") { $0 * 2 }.then(name: "c") { $0 - 3 }
        }
        let compiled = try graph.compile(testOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.segments.map(\.nodes), [["a"], ["b"], ["c"]])
        XCTAssertEqual(compiled.placement, ["a": 0, "b": 1, "c": 0])
        XCTAssertEqual(compiled.channelCount, 4)
        XCTAssertEqual(try compiled.execute(5), 9)
    }

    func testAutomaticPlacementBalancesSegmentsAndKeepsChainsTogether() throws {
        let compiled = try diamondGraph().compile(testOptions(workers: 2))
        defer { compiled.shutdown() }
        let placement = compiled.placement
        // scale feeds two readers: not fusable. zip + sum fuse.
        XCTAssertEqual(placement["zip#4"], placement["sum"])
        XCTAssertTrue(compiled.segments.contains { $0.nodes == ["zip#4", "sum"] })
        XCTAssertEqual(Set(placement.values), [0, 1], "both workers get work")
        XCTAssertEqual(try compiled.execute(3), 43)
    }

    func testActorRefNodesArePlacedOnOneWorkerEvenWhenSpread() throws {
        let counter = ActorRef(0, name: "counter")
        let graph = Graph(input: Int.self) { x in
            let a = x.then(counter, name: "add") { state, v in
                state += v
                return state
            }
            let b = a.then(name: "other") { $0 * 2 }
            let c = b.then(counter, name: "read") { state, v in state + v }
            return c
        }
        let compiled = try graph.compile(testOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.placement["add"], compiled.placement["read"])
    }

    func testSingleWorkerPlacement() throws {
        let compiled = try diamondGraph().compile(testOptions(workers: 2, placement: .singleWorker))
        defer { compiled.shutdown() }
        XCTAssertEqual(Set(compiled.placement.values), [0])
        XCTAssertEqual(try compiled.execute(2), diamondExpected(2))
    }

    func testDOTDescribesNodesWorkersAndChannels() throws {
        let compiled = try diamondGraph().compile(testOptions(workers: 2))
        defer { compiled.shutdown() }
        let dot = compiled.dot()
        XCTAssertTrue(dot.hasPrefix("digraph ActorGraph {"))
        for name in ["scale", "plus1", "square", "sum", "worker 0", "worker 1", "ring cap 64"] {
            XCTAssertTrue(dot.contains(name), "missing \(name) in\n\(dot)")
        }
    }

    func testCapacityIsRoundedUpToAPowerOfTwo() throws {
        let compiled = try diamondGraph().compile(testOptions(capacity: 100))
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.capacity, 128)
    }

    // MARK: Rejections

    func testRejectsGraphWithoutStages() {
        assertCompileError(try Graph(input: Int.self) { $0 }.compile(testOptions())) {
            if case .noStages = $0 { return true } else { return false }
        }
    }

    func testRejectsDeadStageNamingIt() {
        let graph = Graph(input: Int.self) { x in
            _ = x.then(name: "forgotten") { $0 + 1 }
            return x.then(name: "used") { $0 * 2 }
        }
        assertCompileError(try graph.compile(testOptions())) {
            if case .deadStage(let node) = $0 { return node == "forgotten" } else { return false }
        }
    }

    func testRejectsNodeFromAnotherGraph() {
        var leaked: Node<Int>? = nil
        _ = Graph(input: Int.self) { x in
            let n = x.then(name: "leaked") { $0 + 1 }
            leaked = n
            return n
        }
        let graph = Graph(input: Int.self) { x in
            zip(x.then(name: "mine") { $0 }, leaked!).then(name: "join") { $0 + $1 }
        }
        assertCompileError(try graph.compile(testOptions())) {
            if case .foreignNode(let node) = $0 { return node == "join" || node.hasPrefix("zip") } else { return false }
        }
    }

    func testRejectsOutputThatDoesNotDependOnTheInput() {
        var leaked: Node<Int>? = nil
        _ = Graph(input: Int.self) { x in
            let n = x.then(name: "elsewhere") { $0 + 1 }
            leaked = n
            return n
        }
        let graph = Graph(input: Int.self) { _ in leaked! }
        assertCompileError(try graph.compile(testOptions())) {
            if case .outputNotFromInput(let node) = $0 { return node.contains("another graph") } else { return false }
        }
    }

    func testRejectsZeroNegativeAndAbsurdCapacity() {
        for capacity in [0, -5, CompileOptions.maxCapacity + 1] {
            assertCompileError(try diamondGraph().compile(testOptions(capacity: capacity))) {
                if case .invalidCapacity(let c) = $0 { return c == capacity } else { return false }
            }
        }
    }

    func testRejectsZeroWorkers() {
        assertCompileError(try diamondGraph().compile(testOptions(workers: 0))) {
            if case .invalidWorkerCount(0) = $0 { return true } else { return false }
        }
    }

    func testRejectsMorePinnedWorkersThanCPUs() {
        var options = testOptions(workers: 4096)
        options.pinWorkers = true
        assertCompileError(try diamondGraph().compile(options)) {
            if case .tooManyWorkers(4096, _) = $0 { return true } else { return false }
        }
    }

    func testRejectsMissingNUMANode() {
        var options = testOptions()
        options.numaNode = 999
        assertCompileError(try diamondGraph().compile(options)) {
            if case .invalidNUMANode(999, _) = $0 { return true } else { return false }
        }
    }

    func testRejectsActorBoundToAnotherRunningGraph() throws {
        let counter = ActorRef(0, name: "shared-counter")
        func graph() -> Graph<Int, Int> {
            Graph(input: Int.self) { x in
                x.then(counter) { s, v in
                    s += v
                    return s
                }
            }
        }
        let first = try graph().compile(testOptions())
        assertCompileError(try graph().compile(testOptions())) {
            if case .actorAlreadyBound("shared-counter") = $0 { return true } else { return false }
        }
        first.shutdown()
        XCTAssertFalse(counter.isBound)
        let second = try graph().compile(testOptions())
        XCTAssertEqual(try second.execute(5), 5)
        second.shutdown()
    }

    func testNUMANodeOptionBindsTheSharedRegion() throws {
        guard NUMA.isAvailable else { throw XCTSkip("libnuma reports NUMA unavailable on this host") }
        var options = testOptions()
        options.numaNode = 0
        let compiled = try diamondGraph().compile(options)
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.core.region.numaNode, 0)
        XCTAssertEqual(NUMA.node(ofAddress: compiled.core.region.base), 0)
        XCTAssertEqual(try compiled.execute(2), diamondExpected(2))
    }

    func testDefaultWorkersNeverExceedCoresMinusCaller() throws {
        let compiled = try diamondGraph().compile(CompileOptions(pinWorkers: false))
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.workerCount, max(1, CPU.allowedCPUs().count - 1))
    }

    func testSpinningBeyondTheCPUsIsSaidAtCompile() {
        // Threads that never park outnumbering the CPUs: warned at compile() (the check behind it).
        XCTAssertTrue(Compiler.spinningWillCrawl(strategy: .busySpin, workers: 2, effectiveCPUs: 2))
        XCTAssertTrue(Compiler.spinningWillCrawl(strategy: .yielding, workers: 3, effectiveCPUs: 2.5))
        XCTAssertFalse(Compiler.spinningWillCrawl(strategy: .busySpin, workers: 1, effectiveCPUs: 2))
        XCTAssertFalse(Compiler.spinningWillCrawl(strategy: .adaptive, workers: 8, effectiveCPUs: 2))
        XCTAssertFalse(Compiler.spinningWillCrawl(strategy: .blocking, workers: 8, effectiveCPUs: 2))
    }
}
