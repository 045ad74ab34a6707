import ActorGraph
import ActorGraphExamples
import XCTest

/// `actorgraph run NAME --stats` and `describe NAME --stats` through the example driver.
final class ExampleStatisticsTests: XCTestCase {
    func testEmbeddingQueryRunReportsPerNodeStatisticsAndADominantNode() async throws {
        var compile = ExampleGraphsTests.small
        compile.statistics = .sampled(every: 2)
        let example = try XCTUnwrap(ExampleCatalog.named("embedding-query"))
        for mode in [ExampleExecutionMode.compiled, .pipelined] {
            let report = try await example.run(
                ExampleRunOptions(count: 200, compileOptions: compile, mode: mode, resultLimit: 0)
            )
            let statistics = try XCTUnwrap(report.statistics, "\(mode)")
            XCTAssertEqual(statistics.sampleInterval, 2)
            XCTAssertEqual(Set(statistics.nodes.map(\.executions)), [200], "\(mode): every stage saw every execution")
            XCTAssertTrue(statistics.nodes.allSatisfy { $0.failures == 0 && $0.stageTime.count == 100 })
            let dominant = try XCTUnwrap(statistics.dominantNode)
            XCTAssertTrue(statistics.table.contains("dominant node: \(dominant.name)"))
            XCTAssertTrue(try XCTUnwrap(report.statisticsDOT).contains("stage p50"))
        }
        let sequential = try await example.run(ExampleRunOptions(count: 3, compileOptions: compile, mode: .sequential))
        XCTAssertNil(sequential.statistics, "the sequential path records no statistics")
    }
}
