import ActorGraph
import ActorGraphCluster
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
        let probe = try NetnsRigTests.run(
            "/usr/bin/env",
            [python, "-c", "import ray; print(ray.__version__)"],
            seconds: 60
        )
        guard probe.status == 0 else {
            throw XCTSkip(
                "Ray is not importable by \(python) (install it: scripts/ray/install.sh): \(probe.output.split(separator: "\n").last ?? "")"
            )
        }
        if FileManager.default.fileExists(atPath: "/run/actorgraph-cluster/state.json") {
            throw XCTSkip(
                "an actorgraph cluster is already up on this machine (/run/actorgraph-cluster): not touching it"
            )
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
        // Port 0: the piece bound a free port and the placer reported it.
        XCTAssertNotNil(
            up.output.range(of: #"piece b: 10\.232\.0\.2:\d+ pid \d+ alive"#, options: .regularExpression),
            up.output
        )

        let status = try NetnsRigTests.run(binary, ["cluster", "status"], seconds: 60)
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("raylet up"), status.output)
        XCTAssertNotNil(
            status.output.range(
                of: #"piece b: 10\.232\.0\.2:\d+ pid \d+ alive, node agray-b \(keeper pid \d+\); incarnation 1, "#,
                options: .regularExpression
            ),
            status.output
        )

        // The owner runs in agray-a (the CLI re-runs itself there); times2 runs in the piece Ray placed on agray-b.
        // Its piece is SIGKILLed after 500 executions: Ray's keeper starts another, the owner follows
        // (PlacerFeed) and connects it with a higher epoch; later executions succeed.
        let run = try NetnsRigTests.run(
            binary,
            ["cluster", "run", "chain", "--count", "2000", "--kill-piece", "b@500"],
            seconds: 120
        )
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("chain(5) = (5 + 1) * 2 - 3 = 9"), run.output)
        XCTAssertTrue(run.output.contains("placed by Ray on node agray-b"), run.output)
        XCTAssertNotNil(
            run.output.range(
                of:
                    #"first success [0-9.]+ ms after the SIGKILL: host b's piece restarted by Ray \(pid \d+, incarnation 2, "#,
                options: .regularExpression
            ),
            run.output
        )
        XCTAssertNotNil(
            run.output.range(
                of:
                    #"cluster run: \d+ succeeded, \d+ answered hostLost, 0 wrong; pieces: b: incarnation 2 .* piece restarts 1, keeper restarts 0"#,
                options: .regularExpression
            ),
            run.output
        )

        // Status: the new incarnation, and the epoch its owner gave it (> 1).
        let after = try NetnsRigTests.run(binary, ["cluster", "status"], seconds: 60)
        XCTAssertNotNil(
            after.output.range(
                of:
                    #"incarnation 2, epoch ([2-9]|\d\d+) \(owner pid \d+ gone, last written, connected, losses 1\), piece restarts 1, keeper restarts 0"#,
                options: .regularExpression
            ),
            after.output
        )

        // Pids of every piece and Ray process, to check that down leaves none.
        let pids = try NetnsRigTests.run(
            "/bin/sh",
            ["-c", "for ns in agray-a agray-b; do ip netns pids $ns; done"],
            seconds: 20
        )
        .output.split(whereSeparator: \.isNewline).compactMap { Int32($0) }
        XCTAssertFalse(pids.isEmpty)

        let down = try NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120)
        XCTAssertEqual(down.status, 0, down.output)
        XCTAssertTrue(down.output.contains("no piece, Ray process or namespace left"), down.output)
        XCTAssertEqual(Self.namespacesLeft(), [])
        for pid in pids {
            let alive =
                kill(pid, 0) == 0
                && !((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
            XCTAssertFalse(alive, "process \(pid) of the cluster is still running")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/run/actorgraph-cluster"))
    }

    /// A raylet `SIGKILL`ed takes its keeper and the keeper's piece down with it: the keeper asked the
    /// kernel for it (PR_SET_PDEATHSIG, its parent being the raylet's main thread; or a pidfd watcher),
    /// so the owner sees the piece's connection close instead of a piece serving on until Ray's own
    /// worker check (1 s period) notices. Asserted as an order, not a time: both are dead before Ray
    /// (health check ~1.1 s, then the actor's restart) reports the new piece on the spare node.
    /// Without the guard the old piece outlived its replacement in some runs (1.4-2.6 s).
    func testAKilledRayletTakesItsKeeperAndPieceDownBeforeRayReplacesThem() throws {
        try Self.skipUnlessRayCanRun()
        let binary = try CLIBadValueTests.actorgraphBinary().path
        addTeardownBlock { _ = try? NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120) }
        let up = try NetnsRigTests.run(binary, ["cluster", "up", "--spare"], seconds: 180)
        XCTAssertEqual(up.status, 0, up.output)
        guard up.status == 0 else { return }

        func incarnations() -> [[String: Any]] {
            let text = (try? String(contentsOfFile: "/run/actorgraph-cluster/events.jsonl", encoding: .utf8)) ?? ""
            return text.split(whereSeparator: \.isNewline).compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }.filter { $0["event"] as? String == "incarnation" }
        }
        func dead(_ pid: Int32) -> Bool {
            kill(pid, 0) != 0
                || ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
        }
        let first = try XCTUnwrap(incarnations().last, "no incarnation in the placer's events")
        let guardKind = first["raylet_guard"] as? String
        XCTAssertTrue(guardKind == "pdeathsig" || guardKind == "pidfd", "keeper's raylet guard: \(first)")
        let raylet = try XCTUnwrap((first["raylet_pid"] as? Int).map(Int32.init), "\(first)")
        let keeper = try XCTUnwrap((first["keeper_pid"] as? Int).map(Int32.init), "\(first)")
        let piece = try XCTUnwrap((first["pid"] as? Int).map(Int32.init), "\(first)")
        let ip = try XCTUnwrap(first["ip"] as? String)
        let status = try String(contentsOfFile: "/proc/\(keeper)/status", encoding: .utf8)
        XCTAssertTrue(status.contains("PPid:\t\(raylet)\n"), "the keeper's parent is not the raylet \(raylet)")
        XCTAssertFalse(dead(keeper) || dead(piece))

        let killed = Date()
        XCTAssertEqual(kill(raylet, SIGKILL), 0)
        var keeperDead: TimeInterval? = nil
        var pieceDead: TimeInterval? = nil
        var replaced: [String: Any]? = nil
        while Date().timeIntervalSince(killed) < 30 {
            // Deaths first, then the events: a death seen in this round precedes a report read after it.
            if keeperDead == nil && dead(keeper) { keeperDead = Date().timeIntervalSince(killed) }
            if pieceDead == nil && dead(piece) { pieceDead = Date().timeIntervalSince(killed) }
            if let last = incarnations().last, last["pid"] as? Int != Int(piece) {
                replaced = last
                break
            }
            usleep(1_000)
        }
        let second = try XCTUnwrap(replaced, "Ray placed no new piece within 30 s of the raylet's SIGKILL")
        let reported = Date().timeIntervalSince(killed)
        XCTAssertNotEqual(second["ip"] as? String, ip, "the new piece is on the other node")
        XCTAssertNotNil(keeperDead, "the keeper outlived its raylet until Ray replaced it")
        XCTAssertNotNil(pieceDead, "the old piece still ran when Ray reported the new one")
        print(
            "raylet SIGKILL: keeper dead after \(keeperDead.map { "\(Int($0 * 1000)) ms" } ?? "-"), piece after "
                + "\(pieceDead.map { "\(Int($0 * 1000)) ms" } ?? "-"), new piece reported after \(Int(reported * 1000)) ms"
        )

        let down = try NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120)
        XCTAssertEqual(down.status, 0, down.output)
        XCTAssertEqual(Self.namespacesLeft(), [])
    }

    /// The library's own start: a second placer (its own Ray namespace, placing by node label) on
    /// the cluster `cluster up` made; its piece is SIGKILLed and restarted; `stop(placer:)` leaves no piece.
    func testPlacerFeedStartsARealPlacerAndFollowsItsRestarts() throws {
        try Self.skipUnlessRayCanRun()
        let binary = try CLIBadValueTests.actorgraphBinary().path
        addTeardownBlock { _ = try? NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120) }
        let up = try NetnsRigTests.run(binary, ["cluster", "up"], seconds: 180)
        XCTAssertEqual(up.status, 0, up.output)
        guard up.status == 0 else { return }

        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("placer-feed-ray-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        var environment = ProcessInfo.processInfo.environment
        environment["RAY_AUTH_MODE"] = "token"
        environment["RAY_AUTH_TOKEN_PATH"] = "/run/actorgraph-cluster/auth_token"
        environment["RAY_USAGE_STATS_ENABLED"] = "0"
        let feed = try PlacerFeed.start(
            PlacerFeed.Placer(
                script: repository.appendingPathComponent("scripts/ray/actorgraph_placer.py").path,
                python: environment["PYTHON"] ?? "python3",
                rayAddress: "10.232.0.1:6390",
                nodeIP: "10.232.0.1",
                binary: binary,
                pieces: [PlacerFeed.Placement(host: "b", selector: .label(key: "actorgraph-host", value: "b"))],
                eventsPath: directory.appendingPathComponent("events.jsonl").path,
                environment: environment,
                launcher: ["ip", "netns", "exec", "agray-a"],
                rayNamespace: "actorgraph-feed-test"
            )
        )
        var stopped = false
        defer { if !stopped { feed.stop(placer: true) } }
        let first = try XCTUnwrap(try feed.waitForPieces(["b"], timeout: .seconds(60))["b"])
        XCTAssertEqual(first.address.ip, "10.232.0.2", "the label actorgraph-host=b is on agray-b's node only")
        XCTAssertNotEqual(first.address.port, 0)
        XCTAssertEqual(first.number, 1)

        kill(first.pid, SIGKILL)
        var second: PlacerFeed.Incarnation? = nil
        for _ in 0..<300 {
            if let c = feed.current("b"), c.number == 2 {
                second = c
                break
            }
            usleep(20_000)
        }
        let restarted = try XCTUnwrap(second, "no new incarnation within 6 s of the SIGKILL")
        XCTAssertNotEqual(restarted.pid, first.pid)
        XCTAssertEqual(restarted.keeperPID, first.keeperPID, "the keeper restarts the piece itself")
        XCTAssertEqual(feed.pieces.first?.pieceRestarts, 1)
        XCTAssertNil(feed.pieces.first?.epoch, "no graph follows this feed")

        XCTAssertTrue(feed.stop(placer: true))
        stopped = true
        usleep(200_000)
        let alive =
            kill(restarted.pid, 0) == 0
            && !((try? String(contentsOfFile: "/proc/\(restarted.pid)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
        XCTAssertFalse(alive, "the placer's piece outlived stop(placer:)")

        let down = try NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120)
        XCTAssertEqual(down.status, 0, down.output)
        XCTAssertEqual(Self.namespacesLeft(), [])
    }

    func testFaultsThroughRayAnswerEveryExecutionOnce() throws {
        try Self.skipUnlessRayCanRun()
        let binary = try CLIBadValueTests.actorgraphBinary().path
        addTeardownBlock { _ = try? NetnsRigTests.run(binary, ["cluster", "down"], seconds: 120) }
        let faults = try NetnsRigTests.run(binary, ["faults", "--remote", "--ray", "--quick"], seconds: 400)
        XCTAssertEqual(faults.status, 0, faults.output)
        let line =
            faults.output.split(separator: "\n").first { $0.hasPrefix("faults-remote: injected=") }.map(String.init)
            ?? ""
        XCTAssertNotNil(
            line.range(
                of:
                    #"^faults-remote: injected=4 submitted=(\d+) answered=\1 lost=0 duplicated=0 stale_applied=0 max_detect_ms=[0-9.]+ ray_restarts=([4-9]|\d\d+) max_replacement_ms=[0-9.]+$"#,
                options: .regularExpression
            ),
            faults.output
        )
        XCTAssertTrue(faults.output.contains("no piece, Ray process or namespace left"), faults.output)
        XCTAssertEqual(Self.namespacesLeft(), [])
    }
}
