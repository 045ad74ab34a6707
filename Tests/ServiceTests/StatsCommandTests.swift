import Foundation
import XCTest

/// `actorgraph run NAME --stats` and `actorgraph describe NAME --stats` as a user runs them.
final class StatsCommandTests: XCTestCase {
    private func actorgraph(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runActorGraph(arguments)
    }

    func testRunStatsEndsWithThePerNodeTableAndTheDominantNode() throws {
        let (status, stdout, _) = try actorgraph([
            "run", "embedding-query", "--stats", "--stats-every", "4", "--count", "300",
            "--workers", "1", "--no-pin",
        ])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(
            stdout.contains(
                "node       worker  count  failures  skipped  stage p50  stage p99  wait p50  wait p99  share"
            ),
            stdout
        )
        for node in ["sanitize", "tokenize", "embed", "normalize", "search", "answer"] {
            XCTAssertNotNil(
                stdout.split(separator: "\n").first {
                    $0.hasPrefix(node) && $0.contains(" w0 ") && $0.contains(" 300 ")
                },
                "\(node) row with worker w0 and count 300:\n\(stdout)"
            )
        }
        XCTAssertTrue(stdout.contains("dominant node: "), stdout)
        XCTAssertTrue(stdout.contains("sampled 1 execution in 4"), stdout)
    }

    func testDescribeStatsLabelsTheDOTWithMeasuredFigures() throws {
        let (status, stdout, stderr) = try actorgraph([
            "describe", "diamond", "--stats", "--count", "500",
            "--workers", "1", "--no-pin",
        ])
        XCTAssertEqual(status, 0, stderr)
        XCTAssertTrue(stdout.hasPrefix("digraph ActorGraph {"), stdout)
        XCTAssertTrue(stdout.contains("n=500 failed=0"), stdout)
        XCTAssertTrue(stdout.contains("stage p50 "), stdout)
        XCTAssertTrue(stdout.contains("wait p50 "), stdout)
        XCTAssertTrue(stderr.contains("dominant node: "), stderr)
    }

    func testRunStatsOnTheDynamicPathSaysThereAreNone() throws {
        let (status, stdout, _) = try actorgraph(["run", "echo", "--dynamic", "--stats", "--count", "10"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(stdout.contains("statistics: none (--stats applies to the compiled and pipelined paths)"), stdout)
    }
}
