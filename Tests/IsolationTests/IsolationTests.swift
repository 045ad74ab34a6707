import ActorGraph
import ActorGraphPlatform
import BasicContainers
import Glibc
import GraphTestSupport
import IsolationFixtures
import XCTest

/// Isolated workers (`CompileOptions.isolation = .processes`): real child processes spawned from the
/// fixture executable over a real memfd, real signals. Every test checks that each submitted
/// execution got exactly one answer, later executions are correct, the restart count, and that no
/// child process is left behind. No timing is asserted.
final class IsolationTests: XCTestCase {
    override func tearDown() {
        // Children are reaped by shutdown(): none may be left, not even a zombie.
        XCTAssertEqual(childProcesses(), [], "child processes left behind")
        super.tearDown()
    }

    func testEchoRunsInAWorkerProcess() throws {
        let compiled = try FixtureGraphs.echo().compile(processOptions())
        guard case .processes(let settings) = compiled.isolation else { return XCTFail("\(compiled.isolation)") }
        XCTAssertEqual(settings.workerExecutable, fixtureExecutable())
        let pids = compiled.isolationStatistics.workerProcessIDs
        XCTAssertEqual(pids.count, 1)
        XCTAssertNotEqual(pids[0], getpid())
        XCTAssertEqual(childProcesses(), pids)
        for i in 0..<2_000 { XCTAssertEqual(try compiled.execute(i), i + 1) }
        XCTAssertEqual(compiled.isolationStatistics.restarts, 0)
        compiled.shutdown()
        XCTAssertEqual(compiled.isolationStatistics.workerProcessIDs, [0])
    }

    func testAsyncExecuteIsResumedForResultsPublishedByAChild() async throws {
        let compiled = try FixtureGraphs.echo().compile(processOptions())
        defer { compiled.shutdown() }
        for i in 0..<300 {
            let r = try await compiled.execute(i)
            XCTAssertEqual(r, i + 1)
        }
        let r = try await compiled.execute(7, timeout: .seconds(10))
        XCTAssertEqual(r, 8)
    }

    func testAsyncWaitersAreAnsweredWhenTheWorkerCrashes() async throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions())
        defer { compiled.shutdown() }
        do {
            _ = try await compiled.execute(Job(1, .abort))
            XCTFail("expected workerCrashed")
        } catch {
            guard case .workerCrashed(0, let reason) = error else {
                return XCTFail("expected workerCrashed, got \(error)")
            }
            XCTAssertTrue(reason.contains("SIGABRT"), reason)
        }
        for i in 0..<50 {
            let r = try await compiled.execute(Job(i))
            XCTAssertEqual(r, 2 * i + 1)
        }
        waitForRestarts(compiled, 1)
        XCTAssertEqual(compiled.isolationStatistics.restarts, 1)
    }

    /// A worker publishes a batch of results and looks for their waiters after the batch: one that
    /// died in between (here the next execution of the same batch traps) left the async caller of an
    /// already published result suspended until shutdown. Found by the soak (kills at random); the
    /// supervisor now tells the waiters of the dead worker's published results.
    func testAsyncWaiterOfAResultPublishedJustBeforeTheWorkerDiedIsResumed() async throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions(capacity: 8))
        defer { compiled.shutdown() }
        let box = AnswerBox()
        let waiter = Task {
            do { box.set(.value(try await compiled.execute(Job(150, .slow)))) } catch { box.set(.error("\(error)")) }
        }
        // The worker is inside the slow stage; the caller is suspended on its continuation.
        try await Task.sleep(for: .milliseconds(50))
        // Ready before the slow one finishes, so the worker runs it in the same batch: it traps after
        // the slow result was published and before the batch's waiters were looked at.
        do {
            _ = try await compiled.execute(Job(1, .trap))
            XCTFail("expected workerCrashed")
        } catch {
            guard case .workerCrashed = error else { return XCTFail("expected workerCrashed, got \(error)") }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while box.get() == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        switch box.get() {
        case .value(let value)?: XCTAssertEqual(value, 301)
        case .error(let error)?: XCTFail("the slow execution's result was published before the crash, got \(error)")
        case nil: XCTFail("the async caller was not resumed (its result was published just before the worker died)")
        }
        compiled.shutdown()
        _ = await waiter.result
    }

    func testTwoWorkerProcessesOneCrashesDownstreamForwardsTheFailure() throws {
        // fault on one worker, plus1 on the other: the crash is forwarded by the live worker.
        let compiled = try FixtureGraphs.faulty().compile(processOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        XCTAssertNotEqual(compiled.placement["fault"], compiled.placement["plus1"])
        let jobs = (0..<4).map { Job($0) } + [Job(9, .exit)] + (5..<9).map { Job($0) }
        let answers = runBatch(compiled, jobs[...])
        XCTAssertEqual(answers.count, jobs.count)
        for (i, answer) in answers.enumerated() {
            switch answer {
            case .success(let v):
                XCTAssertEqual(v, 2 * jobs[i].value + 1)
                XCTAssertNotEqual(i, 4)
            case .failure(.workerCrashed(let w, let reason)):
                XCTAssertEqual(w, compiled.placement["fault"])
                XCTAssertTrue(reason.contains("exit status 7"), reason)
                XCTAssertGreaterThanOrEqual(i, 4)
            case .failure(let error): XCTFail("unexpected \(error)")
            }
        }
        for i in 0..<100 { XCTAssertEqual(try compiled.execute(Job(i)), 2 * i + 1) }
        waitForRestarts(compiled, 1)
        XCTAssertEqual(compiled.isolationStatistics.restarts, 1)
        XCTAssertEqual(Set(childProcesses()), Set(compiled.isolationStatistics.workerProcessIDs))
    }

    func testBatchesZeroCopyAndAsyncResultsWorkWithWorkerProcesses() async throws {
        let compiled = try FixtureGraphs.echo().compile(processOptions(capacity: 64))
        defer { compiled.shutdown() }
        try checkBatches(compiled)
        var expected = 0
        for await result in compiled.results(for: Array(0..<500), window: 32) {
            XCTAssertEqual(try result.get(), expected + 1)
            expected += 1
        }
        XCTAssertEqual(expected, 500)
    }

    private func checkBatches(_ compiled: CompiledGraph<Int, Int>) throws {
        var seen = 0
        try compiled.executeAll(Array(0..<1_000), window: 48) { i, r in
            XCTAssertEqual(try? r.get(), i + 1)
            seen += 1
        }
        XCTAssertEqual(seen, 1_000)
        let batch = try compiled.submit(contentsOf: Array(100..<140))
        var answered = 0
        batch.waitAll { i, r in
            XCTAssertEqual(try? r.get(), 100 + i + 1)
            answered += 1
        }
        XCTAssertEqual(answered, 40)
        XCTAssertEqual(try compiled.execute(initializing: { $0 = 41 }, reading: { $0 }), 42)
    }

    func testAStandbyProcessReplacesACrashedWorker() throws {
        let options = processOptions(standby: true)
        let compiled = try FixtureGraphs.faulty().compile(options)
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(Job(1)), 3)
        var waited = 0
        while compiled.isolationStatistics.standbyProcessIDs.first == 0 && waited < 5_000 {
            sleepMilliseconds(5)
            waited += 5
        }
        sleepMilliseconds(300)  // let it rebuild its graph and stand by
        let before = compiled.isolationStatistics
        let spare = before.standbyProcessIDs[0]
        XCTAssertNotEqual(spare, 0)
        XCTAssertEqual(Set(childProcesses()), [before.workerProcessIDs[0], spare])
        let answers = runBatch(compiled, [Job(2), Job(3, .abort), Job(4)][...])
        XCTAssertEqual(try answers[0].get(), 5)
        guard case .failure(.workerCrashed(0, let reason)) = answers[1] else {
            return XCTFail("expected workerCrashed, got \(answers[1])")
        }
        XCTAssertTrue(reason.contains("SIGABRT"), reason)
        switch answers[2] {
        case .success(let v): XCTAssertEqual(v, 9)
        case .failure(.workerCrashed): break
        case .failure(let error): XCTFail("unexpected \(error)")
        }
        for i in 0..<100 { XCTAssertEqual(try compiled.execute(Job(i)), 2 * i + 1) }
        waitForRestarts(compiled, 1)
        let after = compiled.isolationStatistics
        XCTAssertEqual(after.restarts, 1)
        XCTAssertEqual(after.standbyActivations, 1)
        XCTAssertEqual(after.workerProcessIDs[0], spare, "the standby became the worker")
        waited = 0
        while compiled.isolationStatistics.standbyProcessIDs.first == 0 && waited < 5_000 {
            sleepMilliseconds(5)
            waited += 5
        }
        let next = compiled.isolationStatistics.standbyProcessIDs[0]
        XCTAssertNotEqual(next, 0)
        XCTAssertNotEqual(next, spare)
        XCTAssertEqual(Set(childProcesses()), [spare, next])
    }

    func testDiamondSpreadOverTwoWorkerProcesses() throws {
        let compiled = try FixtureGraphs.diamond().compile(processOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        XCTAssertEqual(Set(compiled.placement.values), [0, 1])
        XCTAssertEqual(compiled.isolationStatistics.workerProcessIDs.filter { $0 > 0 }.count, 2)
        for x in 0..<500 { XCTAssertEqual(try compiled.execute(x), (2 * x + 1) + (2 * x) * (2 * x)) }
    }

    func testThrownErrorCrossesWithItsDescription() throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions())
        defer { compiled.shutdown() }
        let answers = runBatch(compiled, [Job(1), Job(2, .throwError), Job(3)][...])
        XCTAssertEqual(answers.count, 3)
        XCTAssertEqual(try answers[0].get(), 3)
        XCTAssertEqual(try answers[2].get(), 7)
        guard case .failure(.stageFailed(let node, let error)) = answers[1] else {
            return XCTFail("expected stageFailed, got \(answers[1])")
        }
        XCTAssertEqual(node, "fault")
        XCTAssertEqual(String(describing: error), "fixture error for value 2: ünïcödé ✓")
        XCTAssertEqual(compiled.isolationStatistics.crashes, 0)
    }

    func testTrapIsAnsweredAndTheWorkerRestarts() throws {
        try assertCrashRecovery(.trap, reason: "signal")
    }

    func testAbortIsAnsweredAndTheWorkerRestarts() throws {
        try assertCrashRecovery(.abort, reason: "SIGABRT")
    }

    func testExitIsAnsweredAndTheWorkerRestarts() throws {
        try assertCrashRecovery(.exit, reason: "exit status 7")
    }

    func testSIGKILLFromOutsideAnswersEveryExecutionInFlight() throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions())
        defer { compiled.shutdown() }
        let pid = compiled.isolationStatistics.workerProcessIDs[0]
        // The worker is busy in a slow stage with more executions queued behind it.
        let killer = try PinnedThread(name: "killer", cpu: nil) {
            sleepMilliseconds(100)
            kill(pid, SIGKILL)
        }
        let jobs = [Job(2_000, .slow)] + (1...5).map { Job($0) }
        let answers = runBatch(compiled, jobs[...])
        killer.join()
        XCTAssertEqual(answers.count, jobs.count)
        guard case .failure(.workerCrashed(0, let reason)) = answers[0] else {
            return XCTFail("expected workerCrashed, got \(answers[0])")
        }
        XCTAssertTrue(reason.contains("SIGKILL"), reason)
        for (i, answer) in answers.enumerated().dropFirst() {
            switch answer {
            case .failure(.workerCrashed(0, let reason)): XCTAssertTrue(reason.contains("SIGKILL"), reason)
            case .success(let v): XCTAssertEqual(v, 2 * jobs[i].value + 1)  // claimed after the restart
            case .failure(let error): XCTFail("unexpected \(error)")
            }
        }
        try assertServesAgain(compiled, restarts: 1, replacing: pid)
    }

    func testAnExclusiveSubmitterGetsCrashAnswersAndGoesOnAfterTheRestart() throws {
        // The supervisor reads the claimed frontier from the claim counter: the exclusive bit must
        // not make it fail sequences that were never claimed (or none at all).
        let compiled = try FixtureGraphs.faulty().compile(processOptions())
        defer { compiled.shutdown() }
        let pid = compiled.isolationStatistics.workerProcessIDs[0]
        var submitter = try compiled.exclusiveSubmitter()
        let jobs = [Job(1), Job(2, .abort)] + (3...8).map { Job($0) }
        for job in jobs { try submitter.submit(job) }
        XCTAssertEqual(try submitter.receive(), 3)
        for job in jobs.dropFirst() {
            do {
                let value = try submitter.receive()
                XCTAssertEqual(value, 2 * job.value + 1)  // claimed after the restart
            } catch {
                guard case .workerCrashed(0, let reason) = error else { return XCTFail("unexpected \(error)") }
                XCTAssertTrue(reason.contains("SIGABRT"), reason)
            }
        }
        for i in 10..<200 {
            try submitter.submit(Job(i))
            XCTAssertEqual(try submitter.receive(), 2 * i + 1)
        }
        _ = consume submitter
        try assertServesAgain(compiled, restarts: 1, replacing: pid)
    }

    func testSIGSTOPIsNoticedWithoutAStageTimeLimit() throws {
        // No stage time limit: the supervisor notices the stopped process by itself, kills it and
        // answers its executions with the signal's name.
        let compiled = try FixtureGraphs.faulty().compile(processOptions())
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(Job(1)), 3)
        let pid = compiled.isolationStatistics.workerProcessIDs[0]
        kill(pid, SIGSTOP)
        let answers = runBatch(compiled, (1...4).map { Job($0) }[...])
        XCTAssertEqual(answers.count, 4)
        for (i, answer) in answers.enumerated() {
            switch answer {
            case .failure(.workerCrashed(0, let reason)): XCTAssertTrue(reason.contains("stopped by SIGSTOP"), reason)
            case .success(let v): XCTAssertEqual(v, 2 * (i + 1) + 1)  // claimed after the restart
            case .failure(let error): XCTFail("unexpected \(error)")
            }
        }
        try assertServesAgain(compiled, restarts: 1, replacing: pid)
        let statistics = compiled.isolationStatistics
        XCTAssertTrue(
            statistics.lastCrashReason?.contains("stopped by SIGSTOP") == true,
            "\(statistics.lastCrashReason ?? "nil")"
        )
        XCTAssertEqual(compiled.isolationStatistics.stuckStageReports, 0, "noticed as a stop, not as a stuck stage")
    }

    func testSIGSTOPWithAStageTimeLimitIsAnsweredAndRestarted() throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions(stageTimeLimit: .milliseconds(300)))
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(Job(1)), 3)
        let pid = compiled.isolationStatistics.workerProcessIDs[0]
        kill(pid, SIGSTOP)
        let answers = runBatch(compiled, (1...4).map { Job($0) }[...])
        XCTAssertEqual(answers.count, 4)
        for (i, answer) in answers.enumerated() {
            switch answer {
            case .failure(.workerCrashed(0, _)), .failure(.stageTimedOut("fault")): break
            case .success(let v): XCTAssertEqual(v, 2 * (i + 1) + 1)
            case .failure(let error): XCTFail("unexpected \(error)")
            }
        }
        try assertServesAgain(compiled, restarts: 1, replacing: pid)
    }

    func testStageThatNeverReturnsIsKilledAfterTheTimeLimit() throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions(stageTimeLimit: .milliseconds(200)))
        defer { compiled.shutdown() }
        let pid = compiled.isolationStatistics.workerProcessIDs[0]
        let answers = runBatch(compiled, [Job(1), Job(2, .hang), Job(3)][...])
        XCTAssertEqual(try answers[0].get(), 3)
        guard case .failure(.stageTimedOut("fault")) = answers[1] else {
            return XCTFail("expected stageTimedOut, got \(answers[1])")
        }
        guard case .failure(.workerCrashed(0, let reason)) = answers[2] else {
            return XCTFail("expected workerCrashed, got \(answers[2])")
        }
        XCTAssertTrue(reason.contains("time limit"), reason)
        try assertServesAgain(compiled, restarts: 1, replacing: pid)
    }

    func testRestartsExhaustedFailsWaitersAndLaterCalls() throws {
        let compiled = try FixtureGraphs.faulty().compile(
            processOptions(restarts: RestartPolicy(maxRestarts: 1, window: .seconds(60)))
        )
        defer { compiled.shutdown() }
        let first = runBatch(compiled, [Job(1), Job(2, .abort)][...])
        XCTAssertEqual(try first[0].get(), 3)
        XCTAssertEqual(try compiled.execute(Job(5)), 11)  // restarted once
        waitForRestarts(compiled, 1)
        let second = runBatch(compiled, [Job(3, .abort), Job(4)][...])
        XCTAssertEqual(second.count, 2)
        for answer in second {
            switch answer {
            case .failure(.workerCrashed), .failure(.restartsExhausted): break
            default: XCTFail("expected a crash or exhaustion error, got \(answer)")
            }
        }
        assertExecutionError(try compiled.execute(Job(6))) {
            if case .restartsExhausted(0, 1) = $0 { return true } else { return false }
        }
        XCTAssertTrue(compiled.isolationStatistics.restartsExhausted)
        XCTAssertEqual(compiled.isolationStatistics.restarts, 1)
    }

    func testPlanMismatchIsRefusedWithATypedError() {
        // A graph the worker executable does not know.
        let unknown = Graph(input: Int.self) { x in x.then(name: "triple") { $0 * 3 } }
        assertCompileError(try unknown.compile(processOptions())) {
            if case .planMismatch(0, let detail) = $0 { return detail.contains("fingerprint") } else { return false }
        }
    }

    func testValuesThatCanNeitherBeCopiedNorEncodedAreRejected() {
        // A String crosses encoded (WireEncodable, EncodedValuesTests); a class reference cannot cross.
        let graph = Graph(input: Int.self) { x in x.then(name: "describe") { Box($0) } }
        assertCompileError(try graph.compile(processOptions())) {
            if case .notIsolatable("describe", let type) = $0 { return type.hasSuffix("Box") } else { return false }
        }
    }

    func testAWorkerProgramWithoutTheEntryLineRefusesInsteadOfRecursing() {
        setenv("AG_FIXTURE_FORGET_ENTRY", "1", 1)
        defer { unsetenv("AG_FIXTURE_FORGET_ENTRY") }
        assertCompileError(try FixtureGraphs.echo().compile(processOptions())) {
            if case .isolatedWorkerRefused(0, let reason) = $0 {
                return reason.contains("runIfChild")
            } else {
                return false
            }
        }
    }

    func testTimeoutsAbandonTheExecutionAndCapacityComesBack() throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions(capacity: 4))
        defer { compiled.shutdown() }
        assertExecutionError(try compiled.execute(Job(300, .slow), timeout: .milliseconds(20))) {
            if case .timedOut = $0 { return true } else { return false }
        }
        do {
            _ = try compiled.submit(Job(200, .slow)).wait(timeout: .milliseconds(10))
            XCTFail("expected timedOut")
        } catch {
            guard case .timedOut = error else { return XCTFail("expected timedOut, got \(error)") }
        }
        // The late results arrive and their slots come back: 3 * capacity executions go through.
        for i in 0..<12 { XCTAssertEqual(try compiled.execute(Job(i)), 2 * i + 1) }
    }

    func testThreadModeTimeoutsAbandonTheExecutionAndCapacityComesBack() throws {
        let compiled = try FixtureGraphs.faulty().compile(
            CompileOptions(workers: 1, capacity: 2, pinWorkers: false, idle: .eager)
        )
        defer { compiled.shutdown() }
        assertExecutionError(try compiled.execute(Job(200, .slow), timeout: .milliseconds(10))) {
            if case .timedOut = $0 { return true } else { return false }
        }
        let pending = try compiled.submit(Job(100, .slow))
        assertExecutionError(try pending.wait(timeout: .milliseconds(5))) {
            if case .timedOut = $0 { return true } else { return false }
        }
        assertExecutionError(try pending.wait()) { if case .alreadyWaited = $0 { return true } else { return false } }
        // Both late results come back: 4 * capacity more executions go through.
        for i in 0..<8 { XCTAssertEqual(try compiled.execute(Job(i)), 2 * i + 1) }
    }

    func testAsyncTimeoutAbandonsTheExecution() async throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions(capacity: 4))
        defer { compiled.shutdown() }
        do {
            _ = try await compiled.execute(Job(200, .slow), timeout: .milliseconds(10))
            XCTFail("expected timedOut")
        } catch {
            guard case .timedOut = error else { return XCTFail("expected timedOut, got \(error)") }
        }
        for i in 0..<12 {
            let r = try await compiled.execute(Job(i), timeout: .seconds(20))
            XCTAssertEqual(r, 2 * i + 1)
        }
    }

    func testThreadModeStuckStageIsReportedAndShutdownDoesNotWaitForIt() throws {
        var options = CompileOptions(
            workers: 1,
            capacity: 8,
            pinWorkers: false,
            idle: .eager,
            stageTimeLimit: .milliseconds(50),
            shutdownGracePeriod: .milliseconds(100)
        )
        options.isolation = .threads
        let compiled = try FixtureGraphs.faulty().compile(options)
        let pending = try compiled.submit(Job(1_500, .slow))
        var waited = 0
        while compiled.isolationStatistics.stuckStageReports == 0 && waited < 5_000 {
            sleepMilliseconds(10)
            waited += 10
        }
        XCTAssertEqual(compiled.isolationStatistics.stuckStageReports, 1)
        compiled.shutdown()
        XCTAssertEqual(
            compiled.diagnostics.detachedWorkerThreads,
            1,
            "shutdown must leave the stuck thread detached, not wait"
        )
        do {
            _ = try pending.wait()
            XCTFail("expected shutDown")
        } catch {
            guard case .shutDown = error else { return XCTFail("expected shutDown, got \(error)") }
        }
        sleepMilliseconds(1_600)  // let the stage return, so the thread ends before the next test
    }

    /// Process mode keeps the shutdown contract: a worker process stops at the next execution
    /// boundary (queued executions never run), a stuck one is killed after the grace period, and no
    /// stage starts after `shutdown()` returned. Start times come from the children through a file.
    func testNoStageStartsAfterShutdownReturnsInProcessMode() throws {
        for stuck in [false, true] {
            let path = "/tmp/actorgraph-starts-\(getpid())-\(stuck)"
            unlink(path)
            defer { unlink(path) }
            setenv(FixtureGraphs.startLogKey, path, 1)
            defer { unsetenv(FixtureGraphs.startLogKey) }
            var options = processOptions(capacity: 16)
            options.shutdownGracePeriod = stuck ? .milliseconds(100) : .seconds(2)
            let compiled = try FixtureGraphs.startRecorder().compile(options)
            // A deep queue behind a 200 ms stage, or behind a stage that never returns.
            var submitted = UniqueArray<PendingExecution<Int>>(minimumCapacity: 8)
            for i in 0..<8 { submitted.append(try compiled.submit(i == 0 && stuck ? -1 : 200)) }
            let deadline = ContinuousClock.now + .seconds(10)
            while readSmallFile(path).isEmpty && ContinuousClock.now < deadline { usleep(1_000) }
            compiled.shutdown()
            let returnedAt = MonotonicClock.now()
            var answered = 0
            for i in 0..<submitted.count {
                do {
                    _ = try submitted[i].wait()
                    answered += 1
                } catch .shutDown { answered += 1 } catch {
                    XCTFail("unexpected answer: \(error)")
                }
            }
            XCTAssertEqual(answered, 8, "every waiter is answered")
            usleep(300_000)
            let starts = readSmallFile(path).split(separator: "\n").compactMap { UInt64($0) }
            XCTAssertEqual(starts.count, 1, "only the stage running when shutdown() began ran (stuck: \(stuck))")
            XCTAssertTrue(starts.allSatisfy { $0 < returnedAt }, "no stage started after shutdown() returned")
        }
    }

    func testHundredCompileShutdownCyclesLeakNothing() throws {
        func cycle() throws {
            let compiled = try FixtureGraphs.echo().compile(processOptions())
            XCTAssertEqual(try compiled.execute(1), 2)
            compiled.shutdown()
            // Thread mode with a stage time limit (worker thread + supervisor thread).
            let threads = try FixtureGraphs.echo().compile(
                CompileOptions(
                    workers: 1,
                    capacity: 64,
                    pinWorkers: false,
                    idle: .eager,
                    stageTimeLimit: .seconds(5)
                )
            )
            XCTAssertEqual(try threads.execute(1), 2)
            threads.shutdown()
        }
        try cycle()
        try cycle()
        let fds = countEntries("/proc/self/fd")
        let tasks = countThreads()
        let maps = countEngineMappings()
        for _ in 0..<100 { try cycle() }
        // Refused starts clean up too.
        let unknown = Graph(input: Int.self) { x in x.then(name: "triple") { $0 * 3 } }
        for _ in 0..<10 {
            assertCompileError(try unknown.compile(processOptions())) {
                if case .planMismatch = $0 { return true } else { return false }
            }
        }
        XCTAssertEqual(childProcesses(), [])
        XCTAssertEqual(countEntries("/proc/self/fd"), fds, "descriptors leaked")
        XCTAssertEqual(countThreads(settlingTo: tasks), tasks, "threads leaked (libdispatch pool threads not counted)")
        XCTAssertEqual(countEngineMappings(), maps, "shared regions or io_uring rings leaked")
    }

    func testRegionIsSealedAndNamelessInDevShm() throws {
        let region = try SharedMemoryRegion(name: "actorgraph", byteCount: 4096, sealed: true)
        defer { region.close() }
        let seals = region.seals ?? 0
        XCTAssertEqual(seals & 0x7, 0x7, "F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW")
        XCTAssertNotEqual(ftruncate(region.fileDescriptor, 8192), 0)
        XCTAssertNil(
            opendir("/dev/shm").flatMap { dir -> String? in
                defer { closedir(dir) }
                while let e = readdir(dir) {
                    let name = withUnsafeBytes(of: e.pointee.d_name) {
                        String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name.contains("actorgraph") { return name }
                }
                return nil
            }
        )
    }

    // MARK: Helpers

    /// A batch with `action` in the middle: everything before it succeeds, it and what was in flight
    /// behind it get `workerCrashed` with `reason`, and the graph then serves again.
    private func assertCrashRecovery(
        _ action: FaultAction,
        reason: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let compiled = try FixtureGraphs.faulty().compile(processOptions())
        defer { compiled.shutdown() }
        let pid = compiled.isolationStatistics.workerProcessIDs[0]
        let jobs = (0..<8).map { Job($0) } + [Job(100, action)] + (9..<16).map { Job($0) }
        let answers = runBatch(compiled, jobs[...])
        XCTAssertEqual(answers.count, jobs.count, file: file, line: line)
        for (i, answer) in answers.enumerated() {
            switch answer {
            case .success(let v):
                XCTAssertNotEqual(i, 8, "the faulting execution cannot succeed", file: file, line: line)
                XCTAssertEqual(v, 2 * jobs[i].value + 1, file: file, line: line)
            case .failure(.workerCrashed(0, let text)):
                XCTAssertGreaterThanOrEqual(i, 8, "executions before the fault completed", file: file, line: line)
                XCTAssertTrue(text.contains(reason), "\(text) should mention \(reason)", file: file, line: line)
            case .failure(let error):
                XCTFail("unexpected \(error)", file: file, line: line)
            }
        }
        guard case .failure = answers[8] else {
            return XCTFail("the faulting execution must fail", file: file, line: line)
        }
        try assertServesAgain(compiled, restarts: 1, replacing: pid, file: file, line: line)
    }

    private func assertServesAgain(
        _ compiled: CompiledGraph<Job, Int>,
        restarts: Int,
        replacing pid: Int32,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        for i in 0..<200 { XCTAssertEqual(try compiled.execute(Job(i)), 2 * i + 1, file: file, line: line) }
        // The replacement may serve before the supervisor thread has recorded the restart.
        var waited = 0
        while compiled.isolationStatistics.restarts < restarts && waited < 5_000 {
            sleepMilliseconds(5)
            waited += 5
        }
        let stats = compiled.isolationStatistics
        XCTAssertEqual(stats.restarts, restarts, file: file, line: line)
        XCTAssertEqual(stats.crashes, restarts, file: file, line: line)
        XCTAssertNotEqual(stats.workerProcessIDs[0], pid, file: file, line: line)
        XCTAssertNotEqual(stats.workerProcessIDs[0], 0, file: file, line: line)
        XCTAssertEqual(childProcesses(), stats.workerProcessIDs, file: file, line: line)
    }
}

/// Waits (bounded) until the supervisor has recorded `n` restarts: a replacement can serve before
/// the supervisor thread updates its statistics.
func waitForRestarts<I, O>(_ compiled: CompiledGraph<I, O>, _ n: Int) {
    var waited = 0
    while compiled.isolationStatistics.restarts < n && waited < 5_000 {
        sleepMilliseconds(5)
        waited += 5
    }
}
