import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import ActorGraphReliability
import ArgumentParser
import Glibc
import Synchronization

/// `actorgraph faults`: kills isolated workers in every way the engine must survive while callers
/// keep submitting, and checks that every execution got exactly one answer.
struct FaultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract:
            "Inject worker faults (trap, abort, SIGKILL, SIGSTOP, a stage that never returns) into isolated workers under load.",
        discussion: """
            One process tree: the graph's worker is a child process (isolation .processes) with a stage \
            time limit. Submitter threads keep executing throughout; each execution's result must be \
            2·id + 1 or a typed error, exactly once. Ends with one line: \
            `faults: injected=K submitted=N answered=N lost=0 hung=0 restarts=R max_recovery_ms=X`, \
            where max_recovery_ms is the worst time from a worker's death to the next successful \
            execution. Exits non-zero if anything was lost, hung, answered twice or wrong.
            """
    )

    @Flag(help: "One round of the five faults (default: three rounds).")
    var quick = false

    @Option(help: "Submitter threads executing throughout.")
    var submitters = 2

    @Flag(
        help:
            "Keep a standby process per worker (ProcessOptions.standbyWorkers): recovery activates it instead of spawning."
    )
    var standby = false

    @Flag(
        help:
            "Faults of a graph spanning two hosts instead: its piece killed, stopped (silent, then resumed: split brain), shut down; prints `faults-remote: …`."
    )
    var remote = false

    @Flag(
        help:
            "With --remote: pieces in the namespace rig's agrig-b and agrig-c (scripts/netns-rig.sh up 3; run this inside agrig-a), plus a link going down."
    )
    var rig = false

    @Flag(
        help:
            "With --remote: the piece placed and restarted by Ray (its own local cluster: `actorgraph cluster up --spare`, taken down after); faults: piece SIGKILL, keeper actor SIGKILL, the node's raylet SIGKILL. Appends `ray_restarts=R max_replacement_ms=X`."
    )
    var ray = false

    func validate() throws {
        // 0 or a negative count used to trap (index out of range) instead of refusing the value.
        guard (1...64).contains(submitters) else {
            throw ValidationError("--submitters must be 1...64 (got \(submitters))")
        }
    }

    func run() throws {
        if ray {
            guard remote, !rig else {
                throw CLI.fail("--ray goes with --remote (and not --rig)", code: .validationFailure)
            }
            try RayFaults.runAll(quick: quick, submitters: submitters)
            return
        }
        if remote {
            try RemoteFaults(quick: quick, submitters: submitters, rig: rig).run()
            return
        }
        let rounds = quick ? 1 : 3
        let spacing: UInt32 = quick ? 150_000 : 300_000  // µs between faults
        var options = CompileOptions(
            workers: 1,
            capacity: 64,
            pinWorkers: false,
            idle: IdlePolicy(workerSpins: 2_000, callerSpins: 2_000, spinTime: .microseconds(50)),
            isolation: .processes(
                ProcessOptions(
                    restartPolicy: RestartPolicy(maxRestarts: 5 * rounds + 5, window: .seconds(60)),
                    standbyWorkers: standby
                )
            ),
            stageTimeLimit: .milliseconds(200)
        )
        options.shutdownGracePeriod = .milliseconds(500)
        let compiled: CompiledGraph<FaultInjection.Request, Int>
        do {
            compiled = try FaultInjection.graph().compile(options)
        } catch {
            throw CLI.fail(error)
        }
        let ledger = FaultLedger()
        let stop = Atomic<Bool>(false)
        // Submitters: unique ids, blocking execute with a deadline (a timeout would be a hang).
        var threads: [PinnedThread] = []
        for t in 0..<max(1, submitters) {
            threads.append(
                try PinnedThread(name: "ag-submit\(t)", cpu: nil) { @Sendable in
                    var i = 0
                    while !stop.load(ordering: .relaxed) {
                        let id = t << 40 | i
                        i += 1
                        ledger.execute(compiled, FaultInjection.Request(id: id))
                    }
                }
            )
        }
        usleep(spacing)
        var injected = 0
        var killTimes: [UInt64] = []
        for _ in 0..<rounds {
            // A trapping stage, abort(): executions that carry the fault.
            for action in [FaultInjection.Action.trap, .abort] {
                ledger.execute(compiled, FaultInjection.Request(id: 1 << 50 | injected, action: action))
                injected += 1
                usleep(spacing)
            }
            // SIGKILL and SIGSTOP of the worker from outside.
            for signal in [SIGKILL, SIGSTOP] {
                // The worker of the previous fault may still be restarting: wait for its replacement.
                if let pid = WorkerFaults.processID(of: compiled, worker: 0, waitingUpTo: .seconds(5)) {
                    if signal == SIGKILL { killTimes.append(MonotonicClock.now()) }
                    WorkerFaults.send(signal, to: pid)
                }
                injected += 1
                // The stopped worker is caught by the stage time limit once work is waiting for it.
                ledger.execute(compiled, FaultInjection.Request(id: 1 << 50 | injected | 1 << 45))
                usleep(spacing)
            }
            // A stage that never returns.
            ledger.execute(compiled, FaultInjection.Request(id: 1 << 50 | injected, action: .hang))
            injected += 1
            usleep(spacing)
        }
        stop.store(true, ordering: .relaxed)
        threads.forEach { $0.join() }
        let statistics = compiled.isolationStatistics
        compiled.shutdown()
        let report = ledger.report(deaths: statistics.deathTimes)
        print(
            "faults: injected=\(injected) submitted=\(report.submitted) answered=\(report.answered) lost=\(report.lost) "
                + "hung=\(report.hung) restarts=\(statistics.restarts) max_recovery_ms=\(LatencySummary.fixed(report.maxRecoveryMilliseconds, decimals: 1))"
        )
        print(
            "faults: SIGKILL to the first typed error of an execution in flight: worst \(LatencySummary.fixed(ledger.worstAnswerMilliseconds(after: killTimes), decimals: 2)) ms over \(killTimes.count) kill(s)"
        )
        var problems = report.problems()
        if statistics.restarts < injected {
            problems.append("only \(statistics.restarts) restart(s) for \(injected) fault(s)")
        }
        if statistics.restartsExhausted { problems.append("restarts exhausted") }
        if !problems.isEmpty { throw CLI.fail("faults: " + problems.joined(separator: ", ")) }
    }
}
