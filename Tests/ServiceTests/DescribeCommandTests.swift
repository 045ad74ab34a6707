import Foundation
import XCTest

/// `actorgraph describe NAME` prints the DOT and writes files only where `--output` says.
final class DescribeCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("describe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testDescribeWritesNothingWithoutOutput() throws {
        let (status, stdout, stderr) = try runActorGraph(
            ["describe", "diamond", "--workers", "1", "--no-pin"],
            in: directory
        )
        XCTAssertEqual(status, 0, stderr)
        XCTAssertTrue(stdout.hasPrefix("digraph ActorGraph {"), stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [])
    }

    func testDescribeWritesTheDOTIntoTheOutputDirectory() throws {
        let target = directory.appendingPathComponent("graphs")
        let (status, stdout, stderr) = try runActorGraph(
            [
                "describe", "diamond", "--workers", "1", "--no-pin",
                "--output", target.path,
            ],
            in: directory
        )
        XCTAssertEqual(status, 0, stderr)
        let written = try String(contentsOf: target.appendingPathComponent("diamond.dot"), encoding: .utf8)
        XCTAssertEqual(written.trimmingCharacters(in: .newlines), stdout.trimmingCharacters(in: .newlines))
        XCTAssertTrue(stderr.contains("wrote \(target.path)/diamond.dot"), stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["graphs"])
    }
}
