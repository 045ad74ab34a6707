import ActorGraph
import ActorGraphPlatform
import Glibc

/// How `actorgraph bench` (or any caller) runs the suite.
public struct BenchOptions: Sendable {
    /// Fewer samples: the whole run in well under a minute.
    public var quick: Bool
    /// Where `results.json`, `results.csv` and `latency.svg` go (created if missing).
    public var outputDirectory: String
    /// Case names or prefixes to run (`echo`, `chain8`, `paced`, `pipelined`); empty runs every case.
    /// The ping-pong baseline always runs: every ratio needs it.
    public var cases: [String]
    /// Counts allocation calls; `nil` falls back to glibc's net heap bytes (`mallinfo2`), which cannot count calls.
    public var allocationCounter: AllocationCounter?

    /// Creates options; the defaults run every case in full mode into `bench-results`, allocations uncounted.
    public init(
        quick: Bool = false,
        outputDirectory: String = "bench-results",
        cases: [String] = [],
        allocationCounter: AllocationCounter? = nil
    ) {
        self.quick = quick
        self.outputDirectory = outputDirectory
        self.cases = cases
        self.allocationCounter = allocationCounter
    }

    func includes(_ name: String) -> Bool {
        cases.isEmpty || cases.contains { name == $0 || name.hasPrefix($0 + ".") || name.hasSuffix("." + $0) }
    }
}

/// Pipelined throughput of one path.
public struct ThroughputResult: Codable, Sendable {
    /// The case: `chain3.pipelined`.
    public var name: String
    /// `compiled` or `dynamic`.
    public var path: String
    /// Executions in flight.
    public var window: Int
    /// Executions per second, one figure per round.
    public var rounds: [Double]
    /// The median round.
    public var perSecond: Double
    /// Allocation calls per execution over the measured rounds; compiled path only, when counted.
    public var allocationsPerExecution: Double?
}

/// The headline ratio measured so that a change of the host's mood hits both sides: short rounds of
/// compiled `echo` and of the ping-pong, alternating, each side's samples merged over the rounds.
public struct InterleavedRatio: Codable, Sendable {
    /// Alternating rounds (echo, then ping-pong, per round).
    public var rounds: Int
    /// Samples per side per round.
    public var samplesPerRound: Int
    /// Compiled `echo`, merged over the rounds.
    public var echo: LatencyStats
    /// Plain-spin ping-pong, merged over the rounds.
    public var pingPong: LatencyStats
    /// The p50 ratio of each round alone, to show the spread.
    public var roundP50Ratios: [Double]
}

/// The headline numbers: the `summary:` line.
public struct BenchSummary: Codable, Sendable {
    /// Compiled `echo` p50 over the ping-pong p50, from the interleaved rounds.
    public var echoP50RatioToPingPong: Double
    /// Compiled `echo` p99 over the ping-pong p99, from the interleaved rounds.
    public var echoP99RatioToPingPong: Double
    /// `echo` dynamic p50 over compiled p50.
    public var compiledVsDynamicEcho: Double
    /// `chain3` dynamic p50 over compiled p50.
    public var compiledVsDynamicChain3: Double
    /// `diamond` dynamic p50 over compiled p50.
    public var compiledVsDynamicDiamond: Double
    /// Executions per second of the compiled `chain3.pipelined` run (median round).
    public var chain3ThroughputPerSecond: Double
    /// The highest allocations per execution of any compiled result; NaN when not counted.
    public var allocationsPerExecution: Double
    /// Executions per second of compiled `chain3` pipelined through the batch API (`executeAll`), results returned.
    public var chain3BatchThroughputPerSecond: Double
    /// `echo.64KiB` compiled p50 (zero-copy loan + borrow) over dynamic p50.
    public var echo64kCompiledOverDynamic: Double
    /// `echo.64KiB` compiled p50 over sequential p50.
    public var echo64kCompiledOverSequential: Double
    /// `echo.process` p50 (worker in a child process) over `echo` p50 (worker thread), same run.
    public var echoProcessOverThread: Double
    /// p50 of `oversubscribed.diamond` (3 workers + caller on 2 CPUs), ns; NaN when skipped.
    public var oversubscribedDiamondP50: Double = .nan
    /// Executions per second of `oversubscribed.diamond`, back to back; NaN when skipped.
    public var oversubscribedDiamondPerSecond: Double = .nan
    /// Slowest `quota.echo` execution (1-CPU cgroup quota), ns; NaN when skipped.
    public var quotaEchoMax: Double = .nan
    /// `poisson.chain3`, the worst rate: compiled p99 from the call, ns (service cases: NaN when not run).
    public var poissonP99: Double = .nan
    /// `poisson.chain3`, the worst rate: compiled p99.9 over dynamic p99.9, both from the call.
    public var poissonP999OverDynamic: Double = .nan
    /// `idle.echo`, the worst idle length: compiled (threads) p50 of the first execution, ns.
    public var idleFirstP50: Double = .nan
    /// `idle.echo`, the worst idle length: compiled (threads) p50 over the semaphore pair's p50.
    public var idleFirstOverSemaphore: Double = .nan
    /// `idle.echo`, the worst idle length: compiled (processes) p50 over the semaphore pair's p50.
    public var idleFirstProcessOverSemaphore: Double = .nan
    /// `unpinned.echo`: p99.9 of the first block after `compile()`, the worse of threads and processes, ns.
    public var unpinnedFirstP999: Double = .nan
    /// `serve.udp`, the worst rate: served-graph p50 over the blocking UDP echo server's p50.
    public var serveOverUDPEchoP50: Double = .nan
    /// `remote.echo` p50 over the raw TCP ping-pong p50 between the same two ends (the rig's
    /// namespaces when it could be created, else loopback); NaN when the remote cases did not run.
    public var remoteEchoOverTCP: Double = .nan
    /// `remote.echo` p99 over the raw TCP ping-pong p99, same ends.
    public var remoteEchoP99OverTCP: Double = .nan
    /// `remote.chain3.pipelined`: executions per second across the two ends.
    public var remotePipelinedPerSecond: Double = .nan

    /// The `summary:` line: every field as `key=value`.
    public var line: String {
        "summary: echo_p50_ratio_to_pingpong=\(fmt(echoP50RatioToPingPong, 2)) echo_p99_ratio_to_pingpong=\(fmt(echoP99RatioToPingPong, 2))"
            + " compiled_vs_dynamic_echo=\(fmt(compiledVsDynamicEcho, 1)) compiled_vs_dynamic_chain3=\(fmt(compiledVsDynamicChain3, 1))"
            + " compiled_vs_dynamic_diamond=\(fmt(compiledVsDynamicDiamond, 1)) chain3_throughput_per_s=\(fmt(chain3ThroughputPerSecond, 0))"
            + " allocs_per_execution=\(fmt(allocationsPerExecution, 3))"
            + " chain3_batch_throughput_per_s=\(fmt(chain3BatchThroughputPerSecond, 0))"
            + " echo64k_compiled_over_dynamic=\(fmt(echo64kCompiledOverDynamic, 2))"
            + " echo64k_compiled_over_sequential=\(fmt(echo64kCompiledOverSequential, 2))"
            + " echo_process_over_thread=\(fmt(echoProcessOverThread, 2))"
            + " oversubscribed_diamond_p50_ns=\(fmt(oversubscribedDiamondP50, 0)) oversubscribed_diamond_per_s=\(fmt(oversubscribedDiamondPerSecond, 0))"
            + " quota_echo_max_ns=\(fmt(quotaEchoMax, 0))"
            + " poisson_p99_ns=\(fmt(poissonP99, 0)) poisson_p999_over_dynamic=\(fmt(poissonP999OverDynamic, 2))"
            + " idle_first_p50_ns=\(fmt(idleFirstP50, 0)) idle_first_over_semaphore=\(fmt(idleFirstOverSemaphore, 2))"
            + " idle_first_process_over_semaphore=\(fmt(idleFirstProcessOverSemaphore, 2))"
            + " unpinned_first_p999_ns=\(fmt(unpinnedFirstP999, 0)) serve_over_udp_echo_p50=\(fmt(serveOverUDPEchoP50, 2))"
            + " remote_echo_over_tcp=\(fmt(remoteEchoOverTCP, 2)) remote_echo_p99_over_tcp=\(fmt(remoteEchoP99OverTCP, 2))"
            + " remote_pipelined_per_s=\(fmt(remotePipelinedPerSecond, 0))"
    }
}

/// The machine a run came from.
public struct MachineInfo: Codable, Sendable {
    /// The `model name` from `/proc/cpuinfo`.
    public var cpuModel: String
    /// CPUs online.
    public var onlineCPUs: Int
    /// CPUs this process may run on (its affinity mask).
    public var allowedCPUs: [Int]
    /// The CPUs it may really use: affinity mask and cgroup CPU quota (``EffectiveCPUs``).
    public var effectiveCPUs: String = ""
    /// The kernel release (`uname -r`).
    public var kernel: String
    /// Configured NUMA nodes (1 without NUMA).
    public var numaNodes: Int
}

/// Everything one run measured; written as `results.json`.
public struct BenchReport: Codable, Sendable {
    /// `quick` or `full`.
    public var mode: String
    /// Wall-clock start of the run, in Unix seconds.
    public var startedAtUnixSeconds: Int
    /// How long the run took, in seconds.
    public var durationSeconds: Double
    /// The machine the run came from.
    public var machine: MachineInfo
    /// Compiled-graph defaults used: workers, and the CPU the measuring thread was pinned to.
    public var compiledWorkers: Int
    /// The CPU the measuring thread was pinned to; `nil` with fewer than two allowed CPUs.
    public var callerCPU: Int?
    /// Nanoseconds one clock read costs, included in every latency sample.
    public var clockReadNanoseconds: UInt64
    /// CPUs kept busy by other processes just before the run (from `/proc/stat` over 250 ms, 0...CPUs):
    /// anything else running on these cores skews every number.
    public var busyCPUsBeforeRun: Double
    /// How allocations were counted, and whether the counter passed its self-check.
    public var allocationMethod: String
    /// The physical limit: pinned cache-line ping-pong, plain spin, in its own phase.
    public var pingPong: PathResult
    /// Echo and ping-pong in alternating rounds (the summary's ratios use these).
    public var interleaved: InterleavedRatio
    /// The same with the `pause` hint in both spin loops, as the engine's spin loops have.
    public var pingPongPause: PathResult
    /// Every latency case on the compiled, sequential and dynamic paths, in that order.
    public var latency: [PathResult]
    /// `echo` and `chain3` with one execution submitted per fixed period.
    public var paced: [PathResult]
    /// Pipelined throughput, compiled and dynamic.
    public var throughput: [ThroughputResult]
    /// Peak resident set size in bytes once the compiled-path cases had run.
    public var peakRSSBytesAfterCompiled: Int
    /// Peak resident set size in bytes at the end of the run.
    public var peakRSSBytes: Int
    /// Isolated worker recovery: from a worker's SIGKILL to the next successful execution (`nil` when skipped).
    public var recovery: PathResult?
    /// The same with ``ProcessOptions/standbyWorkers`` (a standby process is activated).
    public var recoveryStandby: PathResult?
    /// The contended cases (oversubscription, CPU quota, competing processes), when run.
    public var contended: ContendedResults?
    /// The headline numbers.
    public var summary: BenchSummary
    /// Where the files were written.
    public var files: [String]
    /// Echo with statistics off and on (`nil` when the case was not selected).
    public var statisticsOverhead: StatisticsOverhead?
    /// The service cases: Poisson arrivals, first execution after idle, unpinned caller, UDP service (`nil` when none ran).
    public var service: ServiceResults? = nil
    /// The remote cases: raw TCP ping-pong across the namespace rig and over loopback (`nil` unless selected).
    public var remote: RemoteResults? = nil
}

/// Runs the benchmark suite behind `actorgraph bench`.
public enum BenchSuite {
    /// The graphs the `.process` cases compile: a program running the suite passes them to
    /// `IsolatedWorker.runIfChild(graphs:)` at the top of `main`.
    public static var isolatableGraphs: [any IsolatableGraph] {
        [BenchGraphs.echo(UInt64.self), BenchGraphs.chain(3, UInt64.self)] + RemoteBenchGraphs.all
    }

    /// The pipelined throughput cases (compiled path): one submit + wait per execution (shared path,
    /// then an exclusive submitter), then the batch API, same graph shape.
    static let pipelinedCases: [(name: String, batch: Bool, exclusive: Bool, capacity: Int, window: Int)] = [
        ("chain3.pipelined", false, false, 1024, 512),
        ("chain3.exclusive", false, true, 1024, 512),
        ("chain3.batch", true, false, 4096, 4096),
    ]

    /// Every name a `--case` selector is matched against (``BenchOptions/cases``): the cases of the
    /// table, the pipelined and paced ones (paced periods of the quick or the full run), the
    /// contended and service ones, and the group names `pipelined`, `paced`, `recovery`, `stats`,
    /// `contended`, `poisson`, `competing`, `idle`, `unpinned`, `serve`, `remote` (run only when selected).
    /// Keep it in step with the names `run` asks `includes` about.
    public static func caseNames(quick: Bool = false) -> [String] {
        let budget = quick ? Budget.quick : Budget.full
        let paced = budget.pacedPeriodsMicroseconds.flatMap { period in
            ["echo", "chain3"].map { "paced.\($0).\(period)us" }
        }
        let names =
            LatencyCase.all.map(\.name) + pipelinedCases.map(\.name) + ["pipelined"] + paced
            + ["paced", "recovery", "stats"] + ContendedCases.names + ["contended"] + ServiceCases.names
            + RemoteCases.names
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// The selectors in `cases` that select nothing: neither one of ``caseNames(quick:)`` nor a
    /// dot-separated prefix or suffix of one (`chain8`, `1KiB`, `process`).
    public static func unknownCases(_ cases: [String], quick: Bool = false) -> [String] {
        let names = caseNames(quick: quick)
        return cases.filter { selector in
            !names.contains { BenchOptions(cases: [selector]).includes($0) }
        }
    }

    /// One line naming the selectors in `cases` that select nothing and listing the valid names;
    /// `nil` when every selector selects something.
    public static func caseSelectionError(_ cases: [String], quick: Bool = false) -> String? {
        let unknown = unknownCases(cases, quick: quick)
        guard !unknown.isEmpty else { return nil }
        return "unknown bench case \(unknown.map { "'\($0)'" }.joined(separator: ", ")); valid cases "
            + "(or a dot-separated prefix or suffix of one): \(caseNames(quick: quick).joined(separator: ", "))"
    }

    /// Runs the suite: compiled path of every case first (then peak RSS is read), the ping-pong,
    /// the sequential path, then the dynamic path; prints progress and the table, writes the files,
    /// and prints the `summary:` line last. Throws before measuring anything when a selector in
    /// ``BenchOptions/cases`` selects nothing (see ``caseSelectionError(_:quick:)``).
    public static func run(_ options: BenchOptions) async throws -> BenchReport {
        if let message = caseSelectionError(options.cases, quick: options.quick) {
            throw BenchFailure(description: message)
        }
        let started = MonotonicClock.now()
        var wallClock = timespec()
        clock_gettime(CLOCK_REALTIME, &wallClock)
        let budget = options.quick ? Budget.quick : Budget.full
        let allowed = CPU.allowedCPUs()
        // The compiled graphs use their default: one worker per CPU but one, pinned highest first; the
        // measuring thread takes the lowest CPU. Never more spinning threads than CPUs.
        let workers = max(1, allowed.count - 1)
        let callerCPU: Int? = allowed.count >= 2 ? allowed[0] : nil
        let pingPongCPUs: (Int?, Int?) = allowed.count >= 2 ? (allowed[0], allowed[allowed.count - 1]) : (nil, nil)

        var counter = options.allocationCounter
        var allocationMethod: String
        if let c = counter {
            if c.selfCheck() {
                allocationMethod = "\(c.method) (self-check: a 64-byte allocation was counted)"
            } else {
                allocationMethod = "\(c.method) FAILED its self-check (a 64-byte allocation was not counted): not used"
                counter = nil
            }
        } else {
            allocationMethod =
                "none: no allocation counter given; allocations per execution not measured (mallinfo2 sees net bytes only)"
        }

        let busyBefore = busyCPUs(overMilliseconds: 250)
        let context = RunContext(budget: budget, counter: counter, callerCPU: callerCPU)
        let machine = machineInfo(allowed: allowed)
        say(
            "actorgraph bench (\(options.quick ? "quick" : "full")): \(machine.cpuModel), \(allowed.count) CPUs allowed \(allowed), kernel \(machine.kernel)"
        )
        say("effective CPUs: \(machine.effectiveCPUs)")
        say(
            "compiled graphs: \(workers) pinned worker(s) on the highest CPU(s) + the measuring thread pinned to CPU \(callerCPU.map(String.init) ?? "none")"
        )
        say("allocations: \(allocationMethod)")
        say("other load before the run: \(fmt(busyBefore, 2)) of \(CPU.onlineCount) CPUs busy")
        if busyBefore >= 0.25 {
            say(
                "WARNING: other processes keep \(fmt(busyBefore, 2)) CPUs busy: they compete for the cores, latencies will be inflated"
            )
        }
        let clockRead = Measure.clockOverhead(iterations: 100_000)
        say("clock read (vDSO clock_gettime): \(clockRead) ns, included in every latency sample")

        let cases = LatencyCase.all.filter { options.includes($0.name) }
        var latency: [PathResult] = []
        var paced: [PathResult] = []
        var throughput: [ThroughputResult] = []

        // 1. Compiled path.
        for c in cases {
            let r = try c.runCompiled(context)
            latency.append(r)
            progress(r)
        }
        // Pipelined throughput: one submit + wait per execution (shared path, then an exclusive
        // submitter), then the batch API, same graph shape.
        for (name, batch, exclusive, capacity, window) in pipelinedCases
        where options.includes(name) || options.includes("pipelined") {
            let graph = try BenchGraphs.chain(3, UInt64.self).compile(CompileOptions(capacity: capacity))
            defer { graph.shutdown() }
            let r = try onPinnedThread(name: "ag-bench", cpu: callerCPU) {
                try Measure.pipelinedCompiled(
                    graph,
                    window: window,
                    executions: budget.pipelinedExecutions,
                    rounds: budget.pipelinedRounds,
                    batch: batch,
                    exclusive: exclusive,
                    counter: counter
                )
            }
            let t = ThroughputResult(
                name: name,
                path: "compiled",
                window: window,
                rounds: r.perSecond,
                perSecond: median(r.perSecond),
                allocationsPerExecution: r.allocationsPerExecution
            )
            throughput.append(t)
            say(
                "  \(pad(name, 17)) compiled    \(fmtRate(t.perSecond)) exec/s (window \(window), rounds \(t.rounds.map(fmtRate).joined(separator: " ")))"
            )
        }
        for period in budget.pacedPeriodsMicroseconds {
            for (shape, graphOf) in [
                ("echo", { BenchGraphs.echo(UInt64.self) }), ("chain3", { BenchGraphs.chain(3, UInt64.self) }),
            ] {
                let name = "paced.\(shape).\(period)us"
                guard options.includes(name) || options.includes("paced") else { continue }
                let graph = try graphOf().compile(CompileOptions())
                defer { graph.shutdown() }
                let m = try onPinnedThread(name: "ag-bench", cpu: callerCPU) {
                    try Measure.pacedCompiled(
                        graph,
                        input: 7,
                        periodNanoseconds: UInt64(period) * 1_000,
                        iterations: budget.pacedCompiled / max(1, period / 10)
                    )
                }
                let r = PathResult(
                    name: name,
                    path: "compiled",
                    payloadBytes: 8,
                    stats: m.stats,
                    placement: "automatic",
                    workers: graph.workerCount,
                    segments: graph.segments.count
                )
                paced.append(r)
                progress(r, extra: "parks \(graph.diagnostics.parkCounts.reduce(0, +))")
            }
        }
        // Recovery of an isolated worker: SIGKILL it, time until the next successful execution;
        // spawning a replacement, then activating a standby process instead.
        var recovery: PathResult? = nil
        var recoveryStandby: PathResult? = nil
        if options.includes("recovery") || options.includes("echo.process") {
            for standby in [false, true] {
                // Every kill is a restart: allow all of them (the default policy fails the graph after 10 a minute).
                let restarts = RestartPolicy(
                    maxRestarts: (options.quick ? 5 : budget.recoveryKills) + 1,
                    window: .seconds(60)
                )
                let compileOptions = CompileOptions(
                    isolation: .processes(ProcessOptions(restartPolicy: restarts, standbyWorkers: standby))
                )
                let graph = try BenchGraphs.echo(UInt64.self).compile(compileOptions)
                defer { graph.shutdown() }
                let kills = options.quick ? 5 : budget.recoveryKills
                let m = try onPinnedThread(name: "ag-bench", cpu: callerCPU) {
                    try Measure.recovery(graph, kills: kills, standby: standby)
                }
                let r = PathResult(
                    name: standby ? "recovery.standby" : "recovery.echo.process",
                    path: "compiled",
                    payloadBytes: 8,
                    stats: m.stats,
                    placement: standby ? "automatic, worker process, standby" : "automatic, worker process",
                    workers: graph.workerCount
                )
                if standby { recoveryStandby = r } else { recovery = r }
                let stats = graph.isolationStatistics
                progress(
                    r,
                    extra:
                        "SIGKILL of the worker to the next successful execution, \(kills) kills, \(stats.restarts) restarts"
                        + (standby ? " (\(stats.standbyActivations) by activating a standby)" : "")
                        + "; death seen to replacement ready: worst \(fmtNs(stats.maxRecoveryNanoseconds))"
                )
            }
        }
        let peakAfterCompiled = MemoryStats.peakRSSBytes()

        // 2. Physical limit (the compiled graphs are shut down: only these two threads spin now).
        say(
            "physical limit: cache-line ping-pong between CPUs \(pingPongCPUs.0.map(String.init) ?? "-") and \(pingPongCPUs.1.map(String.init) ?? "-")"
        )
        let pp = try Measure.pingPong(
            cpus: pingPongCPUs,
            warmup: budget.pingPong / 10,
            iterations: budget.pingPong,
            pause: false
        )
        let pingPong = PathResult(name: "pingpong", path: "pingpong", payloadBytes: 8, stats: pp.stats)
        progress(pingPong, extra: "plain spin")
        let ppPause = try Measure.pingPong(
            cpus: pingPongCPUs,
            warmup: budget.pingPong / 10,
            iterations: budget.pingPong,
            pause: true
        )
        let pingPongPause = PathResult(name: "pingpong.pause", path: "pingpong", payloadBytes: 8, stats: ppPause.stats)
        progress(pingPongPause, extra: "spin with pause")

        // 2b. The headline ratio from alternating short rounds of echo and ping-pong.
        let interleaved = try measureInterleaved(
            rounds: options.quick ? 4 : 8,
            samples: options.quick ? 50_000 : 250_000,
            callerCPU: callerCPU,
            pingPongCPUs: pingPongCPUs
        )
        say(
            "  interleaved       echo p50 \(fmtNs(interleaved.echo.p50)) p99 \(fmtNs(interleaved.echo.p99))  ping-pong p50 \(fmtNs(interleaved.pingPong.p50)) p99 \(fmtNs(interleaved.pingPong.p99))  (\(interleaved.rounds) alternating rounds; per-round p50 ratios \(interleaved.roundP50Ratios.map { fmt($0, 2) }.joined(separator: " ")))"
        )

        // 2c. What statistics cost: echo with them off and on, alternating rounds of the same run.
        var statisticsOverhead: StatisticsOverhead? = nil
        if options.includes("stats") || options.includes("echo") {
            let o = try measureStatisticsOverhead(
                rounds: options.quick ? 4 : 8,
                samples: options.quick ? 50_000 : 250_000,
                callerCPU: callerCPU,
                counter: counter
            )
            statisticsOverhead = o
            say(
                "  echo.stats        statistics off p50 \(fmtNs(o.off.p50)) p99 \(fmtNs(o.off.p99))  on (1/16) p50 \(fmtNs(o.on.p50)) p99 \(fmtNs(o.on.p99))  on/off p50 \(fmt(o.p50Ratio, 3)) p99 \(fmt(o.p99Ratio, 3))"
                    + (o.allocationsPerExecutionOn.map { "  allocs/exec on \(fmt($0, 2))" } ?? "")
                    + "  (stage p50 seen by the statistics \(fmtNs(o.echoStageP50Nanoseconds)); \(o.rounds) alternating rounds)"
            )
        }

        // 3. Sequential path.
        for c in cases {
            guard let runSequential = c.runSequential else { continue }
            let r = try runSequential(context)
            latency.append(r)
            progress(r)
        }

        // 4. Dynamic path.
        for c in cases {
            guard let runDynamic = c.runDynamic else { continue }
            let r = try await runDynamic(context)
            latency.append(r)
            progress(r)
        }
        if options.includes("chain3.pipelined") || options.includes("pipelined") {
            let dynamic = try BenchGraphs.chain(3, UInt64.self).dynamic()
            defer { dynamic.shutdown() }
            let window = 64
            _ = try await Measure.pipelinedDynamic(dynamic, window: window, executions: budget.dynamicPipelined / 10)
            var rounds: [Double] = []
            for _ in 0..<budget.pipelinedRounds {
                rounds.append(
                    try await Measure.pipelinedDynamic(dynamic, window: window, executions: budget.dynamicPipelined)
                )
            }
            let t = ThroughputResult(
                name: "chain3.pipelined",
                path: "dynamic",
                window: window,
                rounds: rounds,
                perSecond: median(rounds),
                allocationsPerExecution: nil
            )
            throughput.append(t)
            say("  chain3.pipelined  dynamic     \(fmtRate(t.perSecond)) exec/s (window \(window), task group)")
        }
        for period in budget.pacedPeriodsMicroseconds {
            for (shape, graphOf) in [
                ("echo", { BenchGraphs.echo(UInt64.self) }), ("chain3", { BenchGraphs.chain(3, UInt64.self) }),
            ] {
                let name = "paced.\(shape).\(period)us"
                guard options.includes(name) || options.includes("paced") else { continue }
                let dynamic = try graphOf().dynamic()
                defer { dynamic.shutdown() }
                let m = try await Measure.pacedDynamic(
                    dynamic,
                    input: 7,
                    periodNanoseconds: UInt64(period) * 1_000,
                    iterations: budget.pacedDynamic / max(1, period / 10)
                )
                let r = PathResult(name: name, path: "dynamic", payloadBytes: 8, stats: m.stats)
                paced.append(r)
                progress(r)
            }
        }

        // 5. Contended cases: oversubscribed, under a CPU quota, beside busy processes.
        let contended = try ContendedCases.run(options, budget: budget, context: context, counter: counter)

        // 5b. Service cases: unpinned callers sleeping between requests, beside their baselines.
        let service = try await ServiceCases.run(options)

        // 5c. Remote cases (only when a --case selects them: they need root and create namespaces).
        let remote = try await RemoteCases.run(options)

        // 6. Summary, table, files.
        func p50(_ name: String, _ path: String) -> Double? {
            latency.first { $0.name == name && $0.path == path }.map { Double($0.stats.p50) }
        }
        func ratio(_ name: String, _ path: String, over other: String) -> Double {
            guard let a = p50(name, path), let b = p50(name, other), b > 0 else { return .nan }
            return a / b
        }
        func speedup(_ name: String) -> Double {
            guard let c = p50(name, "compiled"), let d = p50(name, "dynamic"), c > 0 else { return .nan }
            return d / c
        }
        let echo = latency.first { $0.name == "echo" && $0.path == "compiled" }
        let compiledAllocations =
            (latency.filter { $0.path == "compiled" }.compactMap(\.allocationsPerExecution)
                + throughput.filter { $0.path == "compiled" }.compactMap(\.allocationsPerExecution)
                + [statisticsOverhead?.allocationsPerExecutionOn].compactMap { $0 })
        if let echo {
            say(
                "echo / ping-pong p50: \(fmt(Double(interleaved.echo.p50) / Double(max(1, interleaved.pingPong.p50)), 2)) interleaved (summary), \(fmt(Double(echo.stats.p50) / Double(max(1, pingPong.stats.p50)), 2)) from the separate phases"
            )
        }
        var summary = BenchSummary(
            echoP50RatioToPingPong: Double(interleaved.echo.p50) / Double(max(1, interleaved.pingPong.p50)),
            echoP99RatioToPingPong: Double(interleaved.echo.p99) / Double(max(1, interleaved.pingPong.p99)),
            compiledVsDynamicEcho: speedup("echo"),
            compiledVsDynamicChain3: speedup("chain3"),
            compiledVsDynamicDiamond: speedup("diamond"),
            chain3ThroughputPerSecond: throughput.first { $0.name == "chain3.pipelined" && $0.path == "compiled" }?
                .perSecond ?? .nan,
            allocationsPerExecution: compiledAllocations.isEmpty ? .nan : compiledAllocations.max()!,
            chain3BatchThroughputPerSecond: throughput.first { $0.name == "chain3.batch" }?.perSecond ?? .nan,
            echo64kCompiledOverDynamic: ratio("echo.64KiB", "compiled", over: "dynamic"),
            echo64kCompiledOverSequential: ratio("echo.64KiB", "compiled", over: "sequential"),
            echoProcessOverThread: {
                guard let process = p50("echo.process", "compiled"), let thread = p50("echo", "compiled"), thread > 0
                else { return .nan }
                return process / thread
            }()
        )
        if let d = contended?.oversubscribedDiamond {
            summary.oversubscribedDiamondP50 = Double(d.stats.p50)
            summary.oversubscribedDiamondPerSecond = d.stats.throughputPerSecond
        }
        if let q = contended?.quotaEcho { summary.quotaEchoMax = Double(q.stats.max) }
        if let service { summary.addService(service) }
        if let remote {
            // The rig's path when it ran, else loopback: both ends of each ratio from the same path.
            let path =
                remote.results.contains { $0.path == "netns-veth" && $0.name == "remote.echo" }
                ? "netns-veth" : "loopback"
            let tcp = remote.results.first { $0.name == "remote.tcp_pingpong" && $0.path == path }
            let echo = remote.results.first { $0.name == "remote.echo" && $0.path == path }
            if let tcp, let echo, tcp.p50 > 0, tcp.p99 > 0 {
                summary.remoteEchoOverTCP = Double(echo.p50) / Double(tcp.p50)
                summary.remoteEchoP99OverTCP = Double(echo.p99) / Double(tcp.p99)
            }
            if let chain = remote.results.first(where: { $0.name == "remote.chain3.pipelined" && $0.path == path }) {
                summary.remotePipelinedPerSecond = chain.perSecond ?? .nan
            }
        }

        var report = BenchReport(
            mode: options.quick ? "quick" : "full",
            startedAtUnixSeconds: Int(wallClock.tv_sec),
            durationSeconds: Double(MonotonicClock.now() &- started) / 1e9,
            machine: machine,
            compiledWorkers: workers,
            callerCPU: callerCPU,
            clockReadNanoseconds: clockRead,
            busyCPUsBeforeRun: busyBefore,
            allocationMethod: allocationMethod,
            pingPong: pingPong,
            interleaved: interleaved,
            pingPongPause: pingPongPause,
            latency: latency,
            paced: paced,
            throughput: throughput,
            peakRSSBytesAfterCompiled: peakAfterCompiled,
            peakRSSBytes: MemoryStats.peakRSSBytes(),
            recovery: recovery,
            recoveryStandby: recoveryStandby,
            contended: contended,
            summary: summary,
            files: [],
            statisticsOverhead: statisticsOverhead,
            service: service
        )
        report.remote = remote
        print("")
        print(ReportWriter.table(report))
        report.files = try ReportWriter.write(report, to: options.outputDirectory)
        say("wrote \(report.files.joined(separator: ", ")) (run took \(fmt(report.durationSeconds, 1)) s)")
        say(summary.line)
        return report
    }

    /// `rounds` alternating rounds of compiled `echo` (a fresh compile each round, shut down before
    /// the ping-pong so no worker competes) and the ping-pong, `samples` each.
    static func measureInterleaved(
        rounds: Int,
        samples: Int,
        callerCPU: Int?,
        pingPongCPUs: (Int?, Int?)
    ) throws -> InterleavedRatio {
        var echo = makeLatencyHistogram()
        var pp = makeLatencyHistogram()
        var echoExecutions: UInt64 = 0
        var echoElapsed: UInt64 = 0
        var ppExecutions: UInt64 = 0
        var ppElapsed: UInt64 = 0
        var ratios: [Double] = []
        // The hand-off between threads, as in the latency table (no caller take-over).
        var handOff = CompileOptions()
        handOff.callerTakeover = false
        for _ in 0..<rounds {
            let graph = try BenchGraphs.echo(UInt64.self).compile(handOff)
            let e = try onPinnedThread(name: "ag-bench", cpu: callerCPU) {
                try Measure.compiled(graph, input: 7, warmup: samples / 10, iterations: samples, counter: nil)
            }
            graph.shutdown()
            let p = try Measure.pingPong(cpus: pingPongCPUs, warmup: samples / 10, iterations: samples, pause: false)
            echo.add(e.histogram)
            pp.add(p.histogram)
            echoExecutions += e.executions
            echoElapsed += e.elapsedNanoseconds
            ppExecutions += p.executions
            ppElapsed += p.elapsedNanoseconds
            ratios.append(Double(e.stats.p50) / Double(max(1, p.stats.p50)))
        }
        return InterleavedRatio(
            rounds: rounds,
            samplesPerRound: samples,
            echo: LatencyStats(histogram: echo, executions: echoExecutions, elapsedNanoseconds: echoElapsed),
            pingPong: LatencyStats(histogram: pp, executions: ppExecutions, elapsedNanoseconds: ppElapsed),
            roundP50Ratios: ratios
        )
    }

    static func progress(_ r: PathResult, extra: String = "") {
        let s = r.stats
        var line =
            "  \(pad(r.name, 18)) \(pad(r.path, 10)) p50 \(fmtNs(s.p50))  p99 \(fmtNs(s.p99))  p99.9 \(fmtNs(s.p999))  max \(fmtNs(s.max))"
        if let a = r.allocationsPerExecution { line += "  allocs/exec \(fmt(a, 2))" }
        if !extra.isEmpty { line += "  (\(extra))" }
        say(line)
    }

    static func machineInfo(allowed: [Int]) -> MachineInfo {
        var model = "unknown CPU"
        if let cpuinfo = readTextFile("/proc/cpuinfo"),
            let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let colon = line.firstIndex(of: ":")
        {
            model = line[line.index(after: colon)...].trimmingPrefix(" ").description
        }
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return MachineInfo(
            cpuModel: model,
            onlineCPUs: CPU.onlineCount,
            allowedCPUs: allowed,
            effectiveCPUs: EffectiveCPUs.current().description,
            kernel: release,
            numaNodes: NUMA.nodeCount
        )
    }
}

/// Prints a progress line at once (stdout is block-buffered when piped).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// How many CPUs' worth of time the whole machine spent busy over the next `milliseconds`
/// (`/proc/stat`, all CPUs; this process is sleeping meanwhile, so it is other work). -1 if unreadable.
func busyCPUs(overMilliseconds milliseconds: Int) -> Double {
    func sample() -> (busy: Double, total: Double)? {
        guard let text = readTextFile("/proc/stat"), let line = text.split(separator: "\n").first,
            line.hasPrefix("cpu ")
        else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 5 else { return nil }
        let total = fields.reduce(0, +)
        let idle = fields[3] + fields[4]  // idle + iowait
        return (total - idle, total)
    }
    guard let a = sample() else { return -1 }
    var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    nanosleep(&request, nil)
    guard let b = sample(), b.total > a.total else { return -1 }
    return (b.busy - a.busy) / (b.total - a.total) * Double(CPU.onlineCount)
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

func readTextFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n <= 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}
