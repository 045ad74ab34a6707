import ActorGraphReliability
import Foundation
import XCTest

/// Graphs spanning hosts across real network namespaces (issue 16, point 6): the namespace rig
/// (`scripts/netns-rig.sh up 3`), `actorgraph piece` in agrig-b and agrig-c, the owner
/// (`actorgraph run` / `faults --remote --rig`) in agrig-a. Needs root and `ip netns`; skips
/// otherwise. Nothing here asserts a time.
final class RemoteRigTests: XCTestCase {
    func testExampleGraphsSpanNamespacesAndEveryRemoteFaultIsAnsweredOnce() throws {
        try NetnsRigTests.skipUnlessRigCanRun()
        let script = NetnsRigTests.script
        setenv("AGRIG_OWNER", "\(getpid())", 1)
        let up = try NetnsRigTests.run("/bin/bash", [script, "up", "3"], seconds: 30)
        if up.status == 3 { throw XCTSkip("the rig is in use by another process: \(up.output)") }
        addTeardownBlock { _ = try? NetnsRigTests.run("/bin/bash", [script, "down"], seconds: 30) }
        XCTAssertEqual(up.status, 0, up.output)
        let binary = try CLIBadValueTests.actorgraphBinary().path

        func piece(_ ns: String, _ address: String) throws -> LineReadingProcess {
            let p = try LineReadingProcess(
                path: "/bin/bash",
                arguments: [script, "exec", ns, binary, "piece", "--listen", address]
            )
            XCTAssertNotNil(
                p.waitForLine(timeout: .seconds(10)) { $0.hasPrefix("piece listening on \(address)") },
                p.output.joined(separator: "\n")
            )
            return p
        }
        let b = try piece("agrig-b", "10.231.0.2:7421")
        defer { _ = b.stop(signal: SIGKILL) }
        let c = try piece("agrig-c", "10.231.0.3:7421")
        defer { _ = c.stop(signal: SIGKILL) }
        let hosts = ["--host", "b=10.231.0.2:7421", "--host", "c=10.231.0.3:7421", "--no-pin"]

        // echo and chain with a stage on b; diamond with one branch on b and the actor's nodes on c
        // (b's values reach c through the owner).
        let runs: [(String, [String], String)] = [
            ("echo", ["--place", "echo=b"], "echo(4) = 5"),
            ("chain", ["--place", "times2=b"], "chain(5) = (5 + 1) * 2 - 3 = 9"),
            (
                "diamond", ["--place", "square=b", "--place", "record=c", "--place", "zip=c", "--place", "join=c"],
                "diamond(4) = 4² + (2·4 + 1) = 25"
            ),
            // Values holding references (strings, arrays of hits) cross encoded.
            ("embedding-query", ["--place", "embed=b", "--place", "search=c"], "1. rust-borrow"),
            ("telematics", ["--place", "detect=b"], "20000"),
        ]
        for (name, placement, expected) in runs {
            let result = try NetnsRigTests.run(
                "/bin/bash",
                [script, "exec", "agrig-a", binary, "run", name, "--count", name == "telematics" ? "20000" : "3000"]
                    + hosts + placement,
                seconds: 60
            )
            XCTAssertEqual(result.status, 0, "\(name): \(result.output)")
            XCTAssertTrue(result.output.contains(expected), "\(name): \(result.output)")
        }

        // Every fault (kill, silent stop then resume, clean shutdown, link down, packet loss when nft
        // is installed), pieces in b and c.
        _ = b.stop(signal: SIGKILL)
        _ = c.stop(signal: SIGKILL)
        let faults = try NetnsRigTests.run(
            "/bin/bash",
            [script, "exec", "agrig-a", binary, "faults", "--remote", "--rig", "--quick"],
            seconds: 120
        )
        XCTAssertEqual(faults.status, 0, faults.output)
        let line =
            faults.output.split(separator: "\n").first { $0.hasPrefix("faults-remote: injected=") }.map(String.init)
            ?? ""
        XCTAssertNotNil(
            line.range(
                of:
                    #"^faults-remote: injected=[45] submitted=(\d+) answered=\1 lost=0 duplicated=0 stale_applied=0 max_detect_ms=[0-9.]+$"#,
                options: .regularExpression
            ),
            faults.output
        )
    }

    /// Over loopback (no root needed): the same faults campaign, pieces as child processes.
    func testRemoteFaultsOverLoopbackAnswerEveryExecutionOnce() throws {
        let binary = try CLIBadValueTests.actorgraphBinary().path
        let faults = try NetnsRigTests.run(binary, ["faults", "--remote", "--quick"], seconds: 120)
        XCTAssertEqual(faults.status, 0, faults.output)
        let line =
            faults.output.split(separator: "\n").first { $0.hasPrefix("faults-remote: injected=") }.map(String.init)
            ?? ""
        XCTAssertNotNil(
            line.range(
                of:
                    #"^faults-remote: injected=3 submitted=(\d+) answered=\1 lost=0 duplicated=0 stale_applied=0 max_detect_ms=[0-9.]+$"#,
                options: .regularExpression
            ),
            faults.output
        )
    }
}
