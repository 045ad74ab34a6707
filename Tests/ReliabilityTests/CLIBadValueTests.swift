import ActorGraphBenchSuite
import ActorGraphReliability
import Foundation
import XCTest

/// Every `actorgraph` subcommand and option with bad values: one line on stderr, a non-zero exit,
/// never a trap (a signal exit such as 132/SIGILL from a Swift runtime failure).
final class CLIBadValueTests: XCTestCase {
    /// Command lines that must be refused quickly (none of them may start real work).
    static let badCommandLines: [[String]] = [
        ["nosuch"], ["frobnicate", "--frob"], ["run", "--frob"], ["list", "--bogus"],
        ["run", "--count", "abc"], ["run", "--count=-1"], ["run", "--count", "0"],
        ["run", "--count", "99999999999999999999"],
        ["run", "--results=-1"], ["run", "--workers=-3"], ["run", "--workers", "0"], ["run", "--workers", "100000"],
        ["run", "--capacity", "0"], ["run", "--capacity=-1"], ["run", "--capacity", "99999999999"],
        ["run", "echo", "--input", "abc"], ["run", "--dynamic", "--sequential"],
        ["run", "telematics", "--input", "zzz"],
        ["describe", "nosuch"], ["describe", "echo", "--capacity", "0"],
        ["describe", "echo", "--no-files", "--workers", "0"],
        ["serve", "nosuch"], ["serve", "telematics", "--port", "70000"], ["serve", "telematics", "--port=-1"],
        ["serve", "telematics", "--seconds=-1"], ["serve", "telematics", "--seconds", "nan"],
        ["serve", "telematics", "--seconds", "1e300"], ["serve", "telematics", "--seconds", "inf"],
        ["serve", "telematics", "--workers", "0"], ["serve", "telematics", "--capacity", "0"],
        ["load", "nosuch"], ["load", "telematics", "--rate", "0"], ["load", "telematics", "--rate", "nan"],
        ["load", "telematics", "--rate", "inf"], ["load", "telematics", "--count", "0"],
        ["load", "telematics", "--malformed-every=-1"], ["load", "telematics", "--port", "70000"],
        ["load", "telematics", "--workers", "0"],
        ["soak", "--duration=-5s"], ["soak", "--duration", "0"], ["soak", "--duration", "abc"],
        ["soak", "--duration", "10y"],
        ["soak", "--quick", "--duration", "5s"], ["soak", "--blocking=-1"], ["soak", "--async", "100"],
        ["soak", "--blocking", "0", "--async", "0", "--pipelined", "0", "--batch", "0"], ["soak", "--batch=-2"],
        ["soak", "--seed=-1"],
        ["fuzz-udp", "--count", "0"], ["fuzz-udp", "--window", "0"], ["fuzz-udp", "--window", "65"],
        ["fuzz-udp", "--rss-limit-kib=-1"], ["fuzz-udp", "--seed", "abc"],
        ["bench", "--quick", "--nosuch-flag"], ["bench", "--case", "nosuch"],
        ["bench", "--quick", "--case", "echo", "--case", "nosuch"],
        ["serve", "telematics", "--drain-timeout", "nan"], ["serve", "telematics", "--drain-timeout=-1"],
        ["serve", "telematics", "--metrics-port", "70000"],
        ["faults", "--submitters", "0"], ["faults", "--submitters=-1"], ["faults", "--submitters", "abc"],
        ["run", "--stats", "--stats-every", "0"], ["run", "--stats", "--stats-every=-4"],
        ["describe", "echo", "--stats", "--count", "0"], ["run", "echo", "--isolated", "--workers", "0"],
        ["cluster", "run", "--kill-piece", "b"], ["cluster", "run", "--kill-piece", "b@-1"],
        ["cluster", "run", "--kill-piece", "@5"],
        ["cluster", "run", "--wait-ms=-1"], ["cluster", "run", "--count", "0"],
        ["cluster", "up", "--piece-port", "70000"],
    ]

    func testEveryBadValueGivesOneLineAndANonZeroExitWithoutATrap() throws {
        let binary = try Self.actorgraphBinary()
        var failures: [String] = []
        for arguments in Self.badCommandLines {
            let (status, stderr) = try Self.run(binary, arguments)
            let lines = stderr.split(whereSeparator: \.isNewline)
            let ok = status != 0 && status < 128 && lines.count == 1 && lines[0].hasPrefix("actorgraph: error: ")
            if !ok {
                failures.append(
                    "actorgraph \(arguments.joined(separator: " ")): exit \(status), stderr: \(stderr.prefix(300))"
                )
            }
        }
        print(
            "cli-bad-values: command_lines=\(Self.badCommandLines.count) refused_cleanly=\(Self.badCommandLines.count - failures.count)"
        )
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }

    /// Regression: `serve --seconds` with a negative, NaN, infinite or huge value trapped
    /// ("Double value cannot be converted to UInt64") instead of refusing the value.
    func testServeSecondsNegativeNaNOrInfiniteTrapped() throws {
        let binary = try Self.actorgraphBinary()
        for value in ["-1", "nan", "inf", "1e300"] {
            let (status, stderr) = try Self.run(binary, ["serve", "telematics", "--seconds=\(value)"])
            XCTAssertEqual(status, 64, "--seconds \(value): \(stderr)")
            XCTAssertTrue(stderr.contains("--seconds must be a positive number"), stderr)
        }
    }

    /// Regression: `faults --submitters 0` (or negative) trapped with "Index out of range";
    /// `--stats-every 0` was accepted silently; `serve --drain-timeout nan` would trap converting to ms.
    func testFaultsZeroSubmittersTrappedAndStatsEveryZeroAccepted() throws {
        let binary = try Self.actorgraphBinary()
        for arguments in [
            ["faults", "--submitters", "0"], ["run", "--stats", "--stats-every", "0"],
            ["serve", "telematics", "--drain-timeout", "inf"],
        ] {
            let (status, stderr) = try Self.run(binary, arguments)
            XCTAssertEqual(status, 64, "\(arguments): \(stderr)")
        }
    }

    /// Regression: `bench --case nosuch` ran the suite's fixed parts (ping-pong, interleaved echo)
    /// and exited 0; an unknown case is refused with the valid names, before anything is measured.
    func testBenchUnknownCaseWasAcceptedAndExitedZero() throws {
        let binary = try Self.actorgraphBinary()
        let (status, stderr) = try Self.run(binary, ["bench", "--quick", "--case", "nosuch"])
        XCTAssertEqual(status, 64, stderr)
        XCTAssertTrue(stderr.hasPrefix("actorgraph: error: unknown bench case 'nosuch'; valid cases"), stderr)
        for name in ["echo", "chain3.pipelined", "paced.echo.10us", "oversubscribed.diamond", "contended"] {
            XCTAssertTrue(stderr.contains(name), "\(name) missing from: \(stderr)")
        }
        // Selectors that select something (names, groups, dot-separated prefixes and suffixes) pass.
        let valid = [
            "echo", "echo.process", "chain8", "1KiB", "process", "pipelined", "chain3.batch", "chain3.exclusive",
            "exclusive", "paced",
            "paced.chain3.100us", "recovery", "stats", "contended", "quota.echo", "oversubscribed",
        ]
        XCTAssertEqual(BenchSuite.unknownCases(valid, quick: true), [])
        XCTAssertEqual(
            BenchSuite.unknownCases(["nosuch", "echo.", "chain", "paced.echo.1000us"], quick: true),
            ["nosuch", "echo.", "chain", "paced.echo.1000us"]
        )
        XCTAssertEqual(
            BenchSuite.unknownCases(["paced.echo.1000us"], quick: false),
            [],
            "the full run paces at 1 ms too"
        )
        XCTAssertNil(BenchSuite.caseSelectionError([]))
    }

    /// Regression: `load --rate inf` trapped converting the send interval; `--malformed-every=-1`
    /// was accepted and ran a whole load.
    func testLoadInfiniteRateTrappedAndNegativeMalformedEveryAccepted() throws {
        let binary = try Self.actorgraphBinary()
        let (rateStatus, rateError) = try Self.run(binary, ["load", "telematics", "--rate", "inf"])
        XCTAssertEqual(rateStatus, 64, rateError)
        let (everyStatus, everyError) = try Self.run(binary, ["load", "telematics", "--malformed-every=-1"])
        XCTAssertEqual(everyStatus, 64, everyError)
    }

    /// The `actorgraph` built next to this test bundle (same build directory).
    static func actorgraphBinary() throws -> URL {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = exe.deletingLastPathComponent()
        if directory.lastPathComponent.hasSuffix(".xctest") { directory = directory.deletingLastPathComponent() }
        let binary = directory.appendingPathComponent("actorgraph")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip(
                "actorgraph is not built next to the tests (\(binary.path)): run `swift build --build-tests` first"
            )
        }
        return binary
    }

    /// Runs the binary; returns its exit status (128 + signal when killed) and its stderr.
    /// Spawned with posix_spawn through `LineReadingProcess` (stderr read through a pipe, stdout dropped by
    /// the shell's redirections; `exec` keeps the binary's own exit status).
    static func run(_ binary: URL, _ arguments: [String]) throws -> (Int32, String) {
        setenv("SWIFT_BACKTRACE", "enable=no", 1)
        let child = try LineReadingProcess(
            path: "/bin/sh",
            arguments: ["-c", "exec \"$0\" \"$@\" 2>&1 >/dev/null", binary.path] + arguments
        )
        let deadline = ContinuousClock.now + .seconds(120)
        while child.isRunning && ContinuousClock.now < deadline { usleep(2_000) }
        let status = child.stop(signal: SIGKILL)
        let code: Int32 = (status & 0x7f) != 0 ? 128 + (status & 0x7f) : (status >> 8) & 0xff
        return (code, child.output.joined(separator: "\n"))
    }
}
