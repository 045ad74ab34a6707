import ActorGraphReliability
import Foundation
import XCTest

/// Pieces placed and restarted by Ray (issue 17): `actorgraph cluster` up / status / run / down on
/// the local two-namespace cluster, and `faults --remote --ray --quick`. Runs only where Ray 2.60 is
/// importable (scripts/ray/install.sh) and network namespaces can be created (root); skips with the
/// reason otherwise. Nothing here asserts a time.
final class RayClusterTests: XCTestCase {
    static func skipUnlessRayCanRun() throws {
        try NetnsRigTests.skipUnlessRigCanRun()
        let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"
        let probe = try NetnsRigTests.run("/usr/bin/env", [python, "-c", "import ray; print(ray.__version__)"], seconds: 60)
        guard probe.status == 0 else {
            throw XCTSkip("Ray is not importable by \(python) (install it: scripts/ray/install.sh): \(probe.output.split(separator: "\n").last ?? "")")
        }
        if FileManager.default.fileExists(atPath: "/run/actorgraph-cluster/state.json") {
            throw XCTSkip("an actorgraph cluster is already up on this machine (/run/actorgraph-cluster): not touching it")
        }
    }

    static func namespacesLeft() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []).filter { $0.hasPrefix("agray-") }
    }

    func testClusterUpRunStatusDownLeavesNothingBehind() throws {
        try Self.skipUnlessRayCanRun()
        let binary = try CLIBadValueTests.actorgraphBinary().path
        addTeardownBlock { _ = try? NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120) }

        let up = try NetnsRigTests.run(binary, ["cluster", "up"], seconds: 180)
        XCTAssertEqual(up.status, 0, up.output)
        XCTAssertTrue(up.output.contains("piece b: 10.232.0.2:7100"), up.output)

        let status = try NetnsRigTests.run(binary, ["cluster", "status"], seconds: 60)
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("raylet up"), status.output)
        XCTAssertNotNil(status.output.range(of: #"piece b: 10\.232\.0\.2:7100 pid \d+ alive"#, options: .regularExpression), status.output)

        // The owner runs in agray-a (the CLI re-runs itself there); times2 runs in the piece Ray placed on agray-b.
        let run = try NetnsRigTests.run(binary, ["cluster", "run", "chain", "--count", "2000"], seconds: 120)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("chain(5) = (5 + 1) * 2 - 3 = 9"), run.output)
        XCTAssertTrue(run.output.contains("placed by Ray on node agray-b"), run.output)

        // Pids of every piece and Ray process, to check that down leaves none.
        let pids = try NetnsRigTests.run("/bin/sh", ["-c", "for ns in agray-a agray-b; do ip netns pids $ns; done"], seconds: 20)
            .output.split(whereSeparator: \.isNewline).compactMap { Int32($0) }
        XCTAssertFalse(pids.isEmpty)

        let down = try NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120)
        XCTAssertEqual(down.status, 0, down.output)
        XCTAssertTrue(down.output.contains("no piece, Ray process or namespace left"), down.output)
        XCTAssertEqual(Self.namespacesLeft(), [])
        for pid in pids {
            let alive = kill(pid, 0) == 0 && !((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
            XCTAssertFalse(alive, "process \(pid) of the cluster is still running")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/run/actorgraph-cluster"))
    }

    func testFaultsThroughRayAnswerEveryExecutionOnce() throws {
        try Self.skipUnlessRayCanRun()
        let binary = try CLIBadValueTests.actorgraphBinary().path
        addTeardownBlock { _ = try? NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120) }
        let faults = try NetnsRigTests.run(binary, ["faults", "--remote", "--ray", "--quick"], seconds: 400)
        XCTAssertEqual(faults.status, 0, faults.output)
        let line = faults.output.split(separator: "\n").first { $0.hasPrefix("faults-remote: injected=") }.map(String.init) ?? ""
        XCTAssertNotNil(line.range(of: #"^faults-remote: injected=4 submitted=(\d+) answered=\1 lost=0 duplicated=0 stale_applied=0 max_detect_ms=[0-9.]+ ray_restarts=([4-9]|\d\d+) max_replacement_ms=[0-9.]+$"#,
                                   options: .regularExpression), faults.output)
        XCTAssertTrue(faults.output.contains("no piece, Ray process or namespace left"), faults.output)
        XCTAssertEqual(Self.namespacesLeft(), [])
    }
}
