import ActorGraphReliability
import Foundation
import XCTest

/// Short in-process soaks: every execution is answered once, with its own value or a typed error;
/// one with threads only (also run under the sanitizers), one with process workers killed and stopped.
final class SoakTests: XCTestCase {
    func testShortSoakAnswersEveryExecutionExactlyOnce() async {
        let configuration = Soak.Configuration(
            duration: .seconds(3),
            blockingSubmitters: 1,
            asyncSubmitters: 1,
            pipelinedSubmitters: 1,
            graphLifetime: .milliseconds(20) ... .milliseconds(200),
            hangTimeout: .seconds(30)
        )
        let report = await Soak(configuration).run()
        print(report.details)
        print(report.description)
        XCTAssertGreaterThan(report.executions, 0)
        XCTAssertGreaterThanOrEqual(report.graphs, 2, "several compile/shutdown cycles")
        assertEveryExecutionAnsweredOnce(report)
        XCTAssertEqual(report.compileFailures, 0)
        XCTAssertGreaterThan(report.stageFailures, 0, "stages fail at random")
        XCTAssertEqual(report.processFaults, ProcessFaults(), "threads only unless asked")
        XCTAssertEqual(report.crashAnswers + report.timeLimitAnswers + report.restartsExhaustedAnswers, 0)
        XCTAssertEqual(report.childrenLeft, 0)
        // Resource growth is checked by `actorgraph soak` (its process holds nothing else); XCTest's
        // own threads and allocations make it noisy here, so only descriptors are asserted.
        if ProcessInfo.processInfo.environment["ACTORGRAPH_SANITIZE"] == nil {
            XCTAssertEqual(report.fdGrowth, 0, "\(report.start) -> \(report.end)")
        } else if report.fdGrowth != 0 {
            // Seen once under TSan (+2 descriptors after 30 s of settling, never in plain or release
            // runs): reported, not asserted, until it is understood (see the README's open items).
            print("soak(sanitized): fd_growth=\(report.fdGrowth) \(report.start) -> \(report.end)")
        }
    }

    /// Process graphs under injected faults: every graph runs its workers as child processes (the
    /// `actorgraph` executable built next to this bundle, whose `main` calls
    /// `IsolatedWorker.runIfChild` with `Soak.isolatableGraphs`: inside XCTest `/proc/self/exe` is the
    /// test runner) while they are killed and stopped at random. Kills must happen, their executions
    /// must be answered with typed errors exactly once, and no child process may be left.
    func testShortSoakWithKilledAndStoppedProcessWorkersAnswersEveryExecutionOnce() async throws {
        // Under a sanitizer every worker child starts the sanitizer's runtime too: like the isolation
        // suites, this runs in the plain pass only (scripts/sanitizers.sh).
        if ProcessInfo.processInfo.environment["ACTORGRAPH_SANITIZE"] != nil {
            throw XCTSkip("process workers are exercised in the plain test pass")
        }
        let worker = try CLIBadValueTests.actorgraphBinary()
        let configuration = Soak.Configuration(
            duration: .seconds(4),
            blockingSubmitters: 1,
            asyncSubmitters: 1,
            pipelinedSubmitters: 1,
            graphLifetime: .milliseconds(150) ... .milliseconds(500),
            hangTimeout: .seconds(30),
            processGraphs: true,
            processGraphEvery: 1,
            workerExecutable: worker.path,
            faultInterval: .milliseconds(20) ... .milliseconds(120)
        )
        let report = await Soak(configuration).run()
        print(report.details)
        print(report.description)
        XCTAssertEqual(report.compileFailures, 0, "\(report.compileErrors)")
        XCTAssertGreaterThanOrEqual(report.processFaults.graphs, 2, "several process graphs compiled and shut down")
        XCTAssertGreaterThan(report.processFaults.kills, 0, "workers were killed")
        XCTAssertGreaterThan(report.processFaults.kills + report.processFaults.stops, 2)
        XCTAssertGreaterThan(report.processFaults.crashes, 0, "the supervisors saw the deaths")
        XCTAssertGreaterThan(
            report.crashAnswers + report.timeLimitAnswers + report.restartsExhaustedAnswers,
            0,
            "executions held by killed workers were answered with typed errors"
        )
        assertEveryExecutionAnsweredOnce(report)
        XCTAssertEqual(report.childrenLeft, 0, "\(report.start) -> \(report.end)")
        XCTAssertEqual(report.end.childProcesses, 0, "every worker process reaped")
        XCTAssertEqual(report.fdGrowth, 0, "\(report.start) -> \(report.end)")
        XCTAssertEqual(report.engineMapGrowth, 0, "\(report.start) -> \(report.end)")
    }
}

/// What every soak must show: each execution answered once, by a value or an expected typed
/// error, and no submitter hung.
private func assertEveryExecutionAnsweredOnce(_ report: Soak.Report, file: StaticString = #filePath, line: UInt = #line)
{
    XCTAssertEqual(report.answered, report.executions, file: file, line: line)
    XCTAssertEqual(report.lost, 0, file: file, line: line)
    XCTAssertEqual(report.duplicated, 0, file: file, line: line)
    XCTAssertFalse(report.hung, file: file, line: line)
    XCTAssertEqual(report.otherErrors, 0, file: file, line: line)
    XCTAssertGreaterThan(report.values, 0, file: file, line: line)
}
