import ActorGraphBenchSuite
import ActorGraphReliability
import Foundation
import XCTest

/// `scripts/netns-rig.sh` (issue 16, point 6) and the raw TCP baseline `actorgraph tcp-pingpong`.
/// The rig needs root and `ip netns`; without them those tests skip. Nothing here asserts a time.
final class NetnsRigTests: XCTestCase {
    /// The repository root: this file is Tests/ReliabilityTests/NetnsRigTests.swift.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var script: String { root.appendingPathComponent("scripts/netns-rig.sh").path }

    /// `up 2`: both namespaces exist, reach each other (TCP both ways), and `down` (twice: it is
    /// idempotent) leaves no namespace and no link named agrig-*.
    func testRigUpConnectsTwoNamespacesAndDownLeavesNothing() throws {
        try Self.skipUnlessRigCanRun()
        // The rig belongs to this process: a rig it leaves behind when killed is stale for the next `up`.
        setenv("AGRIG_OWNER", "\(getpid())", 1)
        let up = try Self.run("/bin/bash", [Self.script, "up", "2"], seconds: 30)
        if up.status == 3 { throw XCTSkip("the rig is in use by another process: \(up.output)") }
        // Whatever fails below, the rig goes (down is idempotent, so running it twice is fine).
        addTeardownBlock { _ = try? Self.run("/bin/bash", [Self.script, "down"], seconds: 30) }
        XCTAssertEqual(up.status, 0, up.output)
        let lines = up.output.split(separator: "\n").map(String.init).filter { $0.hasPrefix("ns=") }
        XCTAssertEqual(lines, ["ns=agrig-a addr=10.231.0.1", "ns=agrig-b addr=10.231.0.2"], up.output)

        let namespaces = try Self.run("/bin/sh", ["-c", "ip netns list"], seconds: 10).output
        XCTAssertTrue(namespaces.contains("agrig-a") && namespaces.contains("agrig-b"), namespaces)

        // b -> a: a refused connection to a closed port proves the address answers (a RST came back);
        // an unreachable one would time out instead. Bounded by `timeout`.
        let probe = try Self.run(
            "/bin/bash",
            [
                Self.script, "exec", "agrig-b", "timeout", "5", "bash", "-c",
                "exec 3<>/dev/tcp/10.231.0.1/9",
            ],
            seconds: 10
        )
        XCTAssertTrue(
            probe.output.contains("Connection refused"),
            "agrig-b could not reach 10.231.0.1: \(probe.output)"
        )

        // a -> b: ten round trips of the raw TCP baseline (server in agrig-b, client in agrig-a).
        let binary = try CLIBadValueTests.actorgraphBinary().path
        let server = try LineReadingProcess(
            path: "/bin/bash",
            arguments: [
                Self.script, "exec", "agrig-b", binary, "tcp-pingpong", "--serve",
                "--host", "10.231.0.2", "--port", "0", "--timeout", "5",
            ]
        )
        defer { server.stop(signal: SIGKILL) }
        let listening = server.waitForLine(timeout: .seconds(10)) {
            $0.hasPrefix("tcp-pingpong: listening on 10.231.0.2:")
        }
        let port = try XCTUnwrap(
            listening?.split(separator: ":").last.map(String.init),
            "server output: \(server.output)"
        )
        let client = try Self.run(
            "/bin/bash",
            [
                Self.script, "exec", "agrig-a", binary, "tcp-pingpong", "--connect", "10.231.0.2",
                "--port", port, "--count", "10", "--warmup", "0", "--timeout", "5",
            ],
            seconds: 20
        )
        XCTAssertEqual(client.status, 0, client.output)
        XCTAssertTrue(client.output.contains("count=10"), client.output)

        // down, twice, then nothing named agrig-* is left.
        for _ in 0..<2 {
            let down = try Self.run("/bin/bash", [Self.script, "down"], seconds: 30)
            XCTAssertEqual(down.status, 0, down.output)
        }
        let after = try Self.run("/bin/sh", ["-c", "ip netns list; ip -o link show"], seconds: 10).output
        XCTAssertFalse(after.contains("agrig-"), "left behind after down:\n\(after)")
    }

    /// The baseline over loopback needs no root: the server prints its port, the client its line.
    func testTcpPingPongOverLoopbackPrintsItsLine() throws {
        let binary = try CLIBadValueTests.actorgraphBinary().path
        let server = try LineReadingProcess(
            path: binary,
            arguments: ["tcp-pingpong", "--serve", "--host", "127.0.0.1", "--port", "0", "--timeout", "5"]
        )
        defer { server.stop(signal: SIGKILL) }
        let listening = server.waitForLine(timeout: .seconds(10)) {
            $0.hasPrefix("tcp-pingpong: listening on 127.0.0.1:")
        }
        let port = try XCTUnwrap(
            listening?.split(separator: ":").last.map(String.init),
            "server output: \(server.output)"
        )
        let client = try Self.run(
            binary,
            [
                "tcp-pingpong", "--connect", "127.0.0.1", "--port", port,
                "--count", "200", "--warmup", "20", "--timeout", "5",
            ],
            seconds: 20
        )
        XCTAssertEqual(client.status, 0, client.output)
        let line =
            client.output.split(separator: "\n").first { $0.hasPrefix("tcp-pingpong: p50_ns=") }.map(String.init) ?? ""
        XCTAssertNotNil(
            line.range(
                of: #"^tcp-pingpong: p50_ns=\d+ p99_ns=\d+ p999_ns=\d+ max_ns=\d+ count=200$"#,
                options: .regularExpression
            ),
            client.output
        )
        // The server ends on the client's EOF and says how many it echoed (warm-up included).
        XCTAssertNotNil(
            server.waitForLine(timeout: .seconds(10)) { $0 == "tcp-pingpong: served 220 round trips" },
            "\(server.output)"
        )
    }

    /// Bad values: one `actorgraph: error:` line and exit 64 (validation), never a trap. The bench's
    /// `remote` selectors are valid names.
    func testTcpPingPongBadValuesAreRefusedInOneLine() throws {
        let binary = try CLIBadValueTests.actorgraphBinary()
        let bad: [[String]] = [
            ["tcp-pingpong"], ["tcp-pingpong", "--serve", "--connect", "127.0.0.1", "--port", "1"],
            ["tcp-pingpong", "--connect", "127.0.0.1"], ["tcp-pingpong", "--connect", "127.0.0.1", "--port", "0"],
            ["tcp-pingpong", "--connect", "127.0.0.1", "--port", "70000"],
            ["tcp-pingpong", "--connect", "localhost", "--port", "1"],
            ["tcp-pingpong", "--serve", "--port=-1"], ["tcp-pingpong", "--serve", "--host", "10.0.0.300"],
            ["tcp-pingpong", "--connect", "127.0.0.1", "--port", "1", "--count", "0"],
            ["tcp-pingpong", "--connect", "127.0.0.1", "--port", "1", "--count", "99999999999"],
            ["tcp-pingpong", "--connect", "127.0.0.1", "--port", "1", "--warmup=-1"],
            ["tcp-pingpong", "--serve", "--timeout", "nan"], ["tcp-pingpong", "--serve", "--timeout", "inf"],
            ["tcp-pingpong", "--serve", "--timeout", "0"],
        ]
        var failures: [String] = []
        for arguments in bad {
            let (status, stderr) = try CLIBadValueTests.run(binary, arguments)
            let lines = stderr.split(whereSeparator: \.isNewline)
            if !(status == 64 && lines.count == 1 && lines[0].hasPrefix("actorgraph: error: ")) {
                failures.append(
                    "actorgraph \(arguments.joined(separator: " ")): exit \(status), stderr: \(stderr.prefix(300))"
                )
            }
        }
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
        XCTAssertEqual(BenchSuite.unknownCases(["remote", "remote.tcp_pingpong", "tcp_pingpong"]), [])
    }

    // MARK: Helpers

    static func skipUnlessRigCanRun() throws {
        guard geteuid() == 0 else { throw XCTSkip("the namespace rig needs root (ip netns add); not root here") }
        guard FileManager.default.isReadableFile(atPath: script) else { throw XCTSkip("\(script) not found") }
        let netns = try run("/bin/sh", ["-c", "ip netns list"], seconds: 10)
        guard netns.status == 0 else { throw XCTSkip("`ip netns` does not work here: \(netns.output.prefix(200))") }
    }

    /// Runs a command within `seconds` (then SIGKILL); its exit status (128 + signal when killed)
    /// and stdout and stderr together.
    static func run(_ path: String, _ arguments: [String], seconds: Int) throws -> (status: Int32, output: String) {
        // Through sh so stderr joins stdout in the one pipe LineReadingProcess reads; `exec` keeps the status.
        let child = try LineReadingProcess(
            path: "/bin/sh",
            arguments: ["-c", "exec \"$0\" \"$@\" 2>&1", path] + arguments
        )
        let deadline = ContinuousClock.now + .seconds(seconds)
        while child.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        let raw = child.stop(signal: SIGKILL)
        let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return (status, child.output.joined(separator: "\n"))
    }
}
