import ActorGraph
import IsolationFixtures
import XCTest

/// Statistics with worker processes: the children record into the store at the end of the shared
/// region; the parent's snapshot sees their counts, stage times, channel waits and parks, and a
/// restarted worker keeps counting where its predecessor stopped.
final class IsolationStatisticsTests: XCTestCase {
    func testWorkerProcessesRecordIntoTheParentsSnapshot() throws {
        var options = processOptions(workers: 2, placement: .spread)
        options.statistics = .sampled(every: 4)
        let compiled = try FixtureGraphs.diamond().compile(options)
        defer { compiled.shutdown() }
        for i in 0..<400 { XCTAssertEqual(try compiled.execute(i), (2 * i + 1) + (2 * i) * (2 * i)) }
        let stats = try XCTUnwrap(compiled.statistics)
        XCTAssertEqual(stats.nodes.map(\.name), ["scale", "plus1", "square", "zip#4", "sum"])
        for node in stats.nodes {
            XCTAssertEqual(node.executions, 400, node.name)
            XCTAssertEqual(node.stageTime.count, 100, node.name)
            XCTAssertGreaterThan(node.channelWait?.count ?? 0, 0, "\(node.name): spread, every node reads a ring")
        }
        XCTAssertEqual(Set(stats.nodes.map(\.worker)), [0, 1])
        XCTAssertGreaterThan(
            stats.workers.map(\.parks).reduce(0, +),
            0,
            "idle worker processes parked and were counted"
        )
    }

    func testARestartedWorkerKeepsCounting() throws {
        var options = processOptions()
        options.statistics = .on
        let compiled = try FixtureGraphs.faulty().compile(options)
        defer { compiled.shutdown() }
        for i in 0..<50 { XCTAssertEqual(try compiled.execute(Job(i)), 2 * i + 1) }
        XCTAssertThrowsError(try compiled.execute(Job(50, .exit)))
        waitForRestarts(compiled, 1)
        for i in 0..<50 { XCTAssertEqual(try compiled.execute(Job(i)), 2 * i + 1) }
        let fault = try XCTUnwrap(compiled.statistics?[node: "fault"])
        XCTAssertEqual(fault.executions, 101, "50 + the crashing one (answered by the supervisor) + 50")
    }
}
