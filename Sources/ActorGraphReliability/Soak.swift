import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A soak of the compiled engine: several concurrent submitters (blocking `execute`, async
/// `execute` and `results(for:)`, pipelined `submit`/`wait`, batches: `submit(contentsOf:)` and
/// `executeAll`) drive a sequence of compiled graphs with random shapes,
/// options and stage failures; each graph is shut down after a random time, usually with
/// executions still in flight. Every execution is counted when it starts and every answer (a value
/// or a typed error) when it arrives: each must arrive exactly once and carry the execution's own
/// identity. Process resources are sampled at the start and the end, in the same idle state.
///
/// With ``Configuration/processGraphs`` about one graph in ``Configuration/processGraphEvery`` runs its
/// workers as child processes (``Isolation/processes``) while a fault injector kills (`SIGKILL`) and
/// stops (`SIGSTOP`) them at random times; the engine answers the executions they held with typed
/// errors (counted by kind), restarts them, and kills a stopped worker (its supervisor looks for
/// stopped children every few milliseconds; ``CompileOptions/stageTimeLimit`` is set as well). No
/// child process may be left at the end.
///
/// On a machine with few CPUs the soak oversubscribes on purpose: workers are unpinned and park
/// eagerly, so no more threads spin than there are CPUs.
public final class Soak: Sendable {
    /// What to run and for how long.
    public struct Configuration: Sendable {
        /// How long the measured phase runs (the warm-up and settling come on top).
        public var duration: Duration
        /// Threads calling the blocking `execute`.
        public var blockingSubmitters: Int
        /// Tasks calling the async `execute`.
        public var asyncSubmitters: Int
        /// Threads submitting up to `pipelineWindow` executions before waiting for them.
        public var pipelinedSubmitters: Int
        /// Executions a pipelined submitter keeps in flight (bounded by each graph's capacity).
        public var pipelineWindow: Int
        /// Threads using the batch APIs: `submit(contentsOf:)` (waited for in random order or with
        /// `waitAll`), `executeAll`, and bursts through an ``ExclusiveSubmitter`` (which refuses
        /// every other submitter meanwhile; half of them dropped with executions in flight).
        public var batchSubmitters: Int
        /// Each graph runs for a random time in this range before it is shut down.
        public var graphLifetime: ClosedRange<Duration>
        /// The seed of every random choice (graph shapes, options, lifetimes, failures).
        public var seed: UInt64
        /// How long after the end the submitters may take to return before they count as hung.
        public var hangTimeout: Duration
        /// RSS growth (KiB) beyond which the soak reports a leak.
        public var rssGrowthLimitKiB: Int
        /// Growth of `/proc/self/maps` lines (malloc arena heaps excluded, see
        /// `ProcessResources.mallocArenaHeaps`) beyond which the soak reports a leak. The engine's own
        /// mappings (shared regions, io_uring rings) must return to the baseline exactly; this bound
        /// is for what the Swift runtime and glibc map lazily and keep (a cached thread stack), which
        /// is bounded and does not grow with the number of graphs. A per-graph leak exceeds it within
        /// the quick soak's ~40 graphs.
        public var mapGrowthLimit: Int
        /// Whether some graphs run their workers as child processes (``Isolation/processes``) under
        /// injected `SIGKILL`s and `SIGSTOP`s. The worker program (`workerExecutable`, or this program)
        /// must call `IsolatedWorker.runIfChild(graphs:)` with ``Soak/isolatableGraphs`` first thing in `main`.
        public var processGraphs: Bool
        /// With `processGraphs`, about one graph in this many is a process graph (seeded choice).
        public var processGraphEvery: Int
        /// The worker program of process graphs (``ProcessOptions/workerExecutable``); nil: this program.
        public var workerExecutable: String?
        /// Time between two faults injected into a living process graph (each one a `SIGKILL` or a
        /// `SIGSTOP` of one of its worker processes, picked at random).
        public var faultInterval: ClosedRange<Duration>

        /// The defaults: one submitter of each kind, graphs living 50 ms–1 s, threads only.
        public init(
            duration: Duration = .seconds(60),
            blockingSubmitters: Int = 1,
            asyncSubmitters: Int = 2,
            pipelinedSubmitters: Int = 1,
            pipelineWindow: Int = 16,
            batchSubmitters: Int = 1,
            graphLifetime: ClosedRange<Duration> = .milliseconds(50) ... .seconds(1),
            seed: UInt64 = UInt64.random(in: 1...UInt64(UInt32.max)),
            hangTimeout: Duration = .seconds(60),
            rssGrowthLimitKiB: Int = 64 << 10,
            mapGrowthLimit: Int = 16,
            processGraphs: Bool = false,
            processGraphEvery: Int = 3,
            workerExecutable: String? = nil,
            faultInterval: ClosedRange<Duration> = .milliseconds(20) ... .milliseconds(250)
        ) {
            self.duration = duration
            self.blockingSubmitters = blockingSubmitters
            self.asyncSubmitters = asyncSubmitters
            self.pipelinedSubmitters = pipelinedSubmitters
            self.pipelineWindow = pipelineWindow
            self.batchSubmitters = batchSubmitters
            self.graphLifetime = graphLifetime
            self.seed = seed
            self.hangTimeout = hangTimeout
            self.rssGrowthLimitKiB = rssGrowthLimitKiB
            self.mapGrowthLimit = mapGrowthLimit
            self.processGraphs = processGraphs
            self.processGraphEvery = max(1, processGraphEvery)
            self.workerExecutable = workerExecutable
            self.faultInterval = faultInterval
        }
    }

    /// What the soak counted and measured.
    public struct Report: Sendable, CustomStringConvertible {
        /// Executions started (each `execute` call and each successful or failed `submit`).
        public var executions: Int
        /// Executions answered exactly once with their own value or a typed error.
        public var answered: Int
        /// Executions never answered (including those of submitters that hung).
        public var lost: Int
        /// Answers that arrived twice or carried another execution's identity.
        public var duplicated: Int
        /// Answers by kind.
        public var values: Int, stageFailures: Int, shutdownErrors: Int, capacityErrors: Int, otherErrors: Int
        /// Answers of process graphs by kind: ``ExecutionError/workerCrashed(worker:reason:)`` (the worker
        /// died with the execution in it, killed or stopped and then killed by its supervisor),
        /// ``ExecutionError/stageTimedOut(node:)`` (its worker was killed for the stage time limit) and
        /// ``ExecutionError/restartsExhausted(worker:restarts:)``.
        public var crashAnswers: Int, timeLimitAnswers: Int, restartsExhaustedAnswers: Int
        /// Calls refused while the batch submitter held an ``ExclusiveSubmitter``
        /// (``ExecutionError/exclusiveSubmitterOpen``), and executions an exclusive submitter dropped
        /// in flight (answered by design with nothing: their slots must come back, which later
        /// executions of the same graph depend on).
        public var exclusiveRefusals: Int, exclusiveDropped: Int
        /// What happened to process graphs: how many ran, the faults injected into their workers, and
        /// what their supervisors saw (see ``ProcessFaults``).
        public var processFaults: ProcessFaults
        /// Graphs compiled and shut down; how many of them were shut down with executions in flight.
        public var graphs: Int, shutdownsInFlight: Int
        /// The shutdown contract (thread-mode graphs): stage starts seen after `shutdown()` returned,
        /// and graphs whose actor was not free once `shutdown()` returned. Both must be 0.
        public var startsAfterShutdown: Int, actorsNotFreeAfterShutdown: Int
        /// Compiles that failed (always a bug here: every option is valid), and the first few errors.
        public var compileFailures: Int, compileErrors: [String]
        /// Whether a submitter failed to return within the hang timeout.
        public var hung: Bool
        /// Resources at the start and at the end, both sampled with no graph alive.
        public var start: ProcessResources, end: ProcessResources
        /// Mappings present at the end and not at the start (`+ …`) and the reverse (`- …`), as
        /// size, permissions and pathname: what `map_growth` consists of.
        public var mappingChanges: [String]
        /// The RSS growth (KiB) above which growth counts as a leak.
        public var rssGrowthLimitKiB: Int
        /// The growth of all mappings above which growth counts as a leak (engine mappings: none).
        public var mapGrowthLimit: Int
        /// The seed that reproduces the run's choices.
        public var seed: UInt64

        public var rssGrowthKiB: Int { end.rssKiB - start.rssKiB }
        public var fdGrowth: Int { end.openFileDescriptors - start.openFileDescriptors }
        public var threadGrowth: Int { end.threads - start.threads }
        public var mapGrowth: Int { end.mappings - start.mappings }
        public var engineMapGrowth: Int { end.engineMappings - start.engineMappings }
        /// Child processes alive or unreaped at the end that were not there at the start (worker
        /// processes of shut-down graphs: must be 0).
        public var childrenLeft: Int { max(0, end.childProcesses - start.childProcesses) }

        /// True when nothing was lost, duplicated, leaked or hung.
        public var passed: Bool { failedChecks.isEmpty }

        /// One entry per check that failed, naming the measured value and its bound.
        public var failedChecks: [String] {
            var failed: [String] = []
            if lost != 0 { failed.append("lost=\(lost) (must be 0)") }
            if duplicated != 0 { failed.append("duplicated=\(duplicated) (must be 0)") }
            if answered != executions { failed.append("answered=\(answered) != executions=\(executions)") }
            if hung { failed.append("hung: a submitter did not return") }
            if compileFailures != 0 { failed.append("compile_failures=\(compileFailures) (must be 0)") }
            if startsAfterShutdown != 0 { failed.append("starts_after_shutdown=\(startsAfterShutdown) (must be 0)") }
            if actorsNotFreeAfterShutdown != 0 {
                failed.append("actors_not_free=\(actorsNotFreeAfterShutdown) (must be 0)")
            }
            if childrenLeft != 0 { failed.append("children_left=\(childrenLeft) (must be 0)") }
            if otherErrors != 0 { failed.append("other_errors=\(otherErrors) (must be 0)") }
            if fdGrowth > 0 { failed.append("fd_growth=\(fdGrowth) (must be <= 0)") }
            if threadGrowth > 0 { failed.append("thread_growth=\(threadGrowth) (must be <= 0)") }
            if engineMapGrowth > 0 { failed.append("engine_map_growth=\(engineMapGrowth) (must be <= 0)") }
            if mapGrowth > mapGrowthLimit { failed.append("map_growth=\(mapGrowth) (must be <= \(mapGrowthLimit))") }
            if rssGrowthKiB > rssGrowthLimitKiB {
                failed.append("rss_growth_kib=\(rssGrowthKiB) (must be <= \(rssGrowthLimitKiB))")
            }
            return failed
        }

        /// The details: resources at the start and the end, then (the line just before the summary)
        /// answers by kind, graphs, process-worker faults, seed.
        public var details: String {
            let p = processFaults
            return "soak: start \(start)\nsoak: end   \(end)"
                + (mappingChanges.isEmpty || (mapGrowth == 0 && engineMapGrowth == 0)
                    ? "" : "\nsoak: mappings " + mappingChanges.prefix(24).joined(separator: ", "))
                + "\n"
                + "soak: values=\(values) stage_failures=\(stageFailures) shutdown_errors=\(shutdownErrors) capacity_errors=\(capacityErrors) "
                + "crash_errors=\(crashAnswers) time_limit_errors=\(timeLimitAnswers) restarts_exhausted_errors=\(restartsExhaustedAnswers) "
                + "exclusive_refusals=\(exclusiveRefusals) exclusive_dropped=\(exclusiveDropped) "
                + "other_errors=\(otherErrors) graphs=\(graphs) shutdowns_in_flight=\(shutdownsInFlight) compile_failures=\(compileFailures) "
                + "starts_after_shutdown=\(startsAfterShutdown) actors_not_free=\(actorsNotFreeAfterShutdown) "
                + "process_graphs=\(p.graphs) kills=\(p.kills) stops=\(p.stops) crashes=\(p.crashes) restarts=\(p.restarts) "
                + "time_limit_kills=\(p.timeLimitKills) exhausted_graphs=\(p.exhaustedGraphs) children_left=\(childrenLeft) "
                + "hung=\(hung) seed=\(seed) engine_map_growth=\(engineMapGrowth) arena_map_growth=\(end.mallocArenaHeaps - start.mallocArenaHeaps) map_growth_limit=\(mapGrowthLimit)"
                + compileErrors.map { "\nsoak: compile error: \($0)" }.joined()
        }

        /// The one summary line, in exactly this form.
        public var description: String {
            "soak: executions=\(executions) answered=\(answered) lost=\(lost) duplicated=\(duplicated) rss_growth_kib=\(rssGrowthKiB) fd_growth=\(fdGrowth) thread_growth=\(threadGrowth) map_growth=\(mapGrowth)"
        }
    }

    let configuration: Configuration
    let ledger = SoakLedger()
    /// The shutdown contract over every thread-mode graph (``ShutdownProbe``).
    let shutdownChecks = ShutdownChecks()
    /// The graph submitters use (nil between graphs). Written rarely, under the lock, then
    /// `generation` is bumped (release); submitters re-read it only when `generation` changed.
    let slot = Mutex<CompiledGraph<Int, SoakOutput>?>(nil)
    let generation = Atomic<Int>(0)
    /// Pause protocol (Dekker): a submitter adds itself to `ledger.busy` and then reads `paused`;
    /// the controller sets `paused` and then waits for `busy` to reach zero. Both sides are
    /// sequentially consistent, so either the submitter sees the pause or the controller sees it busy.
    let paused = Atomic<Bool>(false)
    let stopping = Atomic<Bool>(false)
    let nextID = Atomic<Int>(1)
    /// The first few compile errors (each one is a failure: every option the soak picks is valid).
    let compileErrors = Mutex<[String]>([])
    /// Where `compile` and `shutdown` run (off the cooperative pool: see ``BlockingCalls``); set by `run`.
    let control = Mutex<BlockingCalls?>(nil)

    /// A soak that will run with `configuration`.
    public init(_ configuration: Configuration) { self.configuration = configuration }

    /// The graphs a soak runs in worker processes: a program running a soak with
    /// ``Configuration/processGraphs`` passes them to `IsolatedWorker.runIfChild(graphs:)`.
    public static var isolatableGraphs: [any IsolatableGraph] { SoakShape.processCrossable.map { $0.graph() } }

    /// Why process workers cannot run here (the system refused a call they need: `posix_spawn`,
    /// pidfds, sealed memfds, e.g. under a seccomp profile), or nil when a probe graph compiled with
    /// ``Isolation/processes`` ran. Any other failure is not "unavailable": the soak then counts it.
    public static func processWorkersUnavailable(workerExecutable: String?) -> String? {
        let options = CompileOptions(
            workers: 1,
            capacity: 4,
            pinWorkers: false,
            idle: .eager,
            isolation: .processes(ProcessOptions(workerExecutable: workerExecutable))
        )
        do {
            let graph = try SoakShape.echo.graph().compile(options)
            defer { graph.shutdown() }
            _ = try? graph.execute(2)
            return nil
        } catch CompileError.platform(let operation, let errno) {
            return "\(operation): \(errno)"
        } catch {
            return nil
        }
    }

    /// Runs the soak: warm-up, baseline sample, measured phase, settle, final sample. `progress`
    /// receives a line every few seconds.
    public func run(progress: @escaping @Sendable (String) -> Void = { _ in }) async -> Report {
        var rng = SplitMix64(seed: configuration.seed)
        // Submitters (and the thread for blocking calls) live for the whole soak: they are part of
        // the baseline, not a leak.
        let blocking = BlockingCalls()
        control.withLock { $0 = blocking }
        defer {
            blocking.stop()
            control.withLock { $0 = nil }
        }
        var threads: [PinnedThread] = []
        var hangFlags: [SubmitterFlag] = []
        for i in 0..<configuration.blockingSubmitters {
            let flag = SubmitterFlag()
            hangFlags.append(flag)
            if let t = try? PinnedThread(
                name: "soak-block\(i)",
                cpu: nil,
                stackSize: 1 << 20,
                { [self] in blockingLoop(flag) }
            ) {
                threads.append(t)
            } else {
                flag.finish()
            }
        }
        for i in 0..<configuration.pipelinedSubmitters {
            let flag = SubmitterFlag()
            hangFlags.append(flag)
            if let t = try? PinnedThread(
                name: "soak-pipe\(i)",
                cpu: nil,
                stackSize: 1 << 20,
                { [self] in pipelinedLoop(flag) }
            ) {
                threads.append(t)
            } else {
                flag.finish()
            }
        }
        for i in 0..<configuration.batchSubmitters {
            let flag = SubmitterFlag()
            hangFlags.append(flag)
            if let t = try? PinnedThread(
                name: "soak-batch\(i)",
                cpu: nil,
                stackSize: 1 << 20,
                { [self] in batchLoop(flag, seed: UInt64(i)) }
            ) {
                threads.append(t)
            } else {
                flag.finish()
            }
        }
        let asyncFlags = (0..<configuration.asyncSubmitters).map { _ in SubmitterFlag() }
        hangFlags += asyncFlags
        let tasks = asyncFlags.map { flag in Task { [self] in await asyncLoop(flag) } }

        // Warm-up: a few graphs of every shape, so lazily created runtime state (the concurrency
        // pool's threads, malloc arenas, cached thread stacks) exists before the baseline; process
        // graphs with faults too (a supervisor's restart path, the log handler).
        var faults = ProcessFaults()
        var faultRNG = SplitMix64(seed: configuration.seed ^ 0xFA17)
        // Each with the most workers the soak uses, so glibc's cache of thread stacks holds as many
        // as any later graph frees (a stack cached later shows up as two more mappings).
        for shape in SoakShape.allCases {
            var options = SoakShape.options(using: &rng)
            options.workers = SoakShape.maxWorkers
            await cycle(
                shape: shape,
                options: options,
                lifetime: .milliseconds(60),
                inFlight: false,
                faults: &faults,
                faultRNG: &faultRNG
            )
        }
        if configuration.processGraphs {
            // One is enough (the same code runs for every shape); each costs a spawn per worker.
            var options = processOptions(using: &rng)
            options.workers = SoakShape.maxWorkers
            await cycle(
                shape: .diamond,
                options: options,
                lifetime: .milliseconds(200),
                inFlight: false,
                faults: &faults,
                faultRNG: &faultRNG
            )
        }
        let startSample = await settledSample()
        let startMappings = ProcessResources.mappingSignatures()
        ledger.reset()
        shutdownChecks.reset()
        faults = ProcessFaults()
        let startedAt = ContinuousClock.now
        var lastProgress = startedAt
        var graphs = 0
        var inFlight = 0
        var compileFailures = 0
        while ContinuousClock.now - startedAt < configuration.duration {
            let isolated =
                configuration.processGraphs && Int.random(in: 0..<configuration.processGraphEvery, using: &rng) == 0
            let shape = (isolated ? SoakShape.processCrossable : SoakShape.allCases).randomElement(using: &rng)!
            let lifetime = Duration.nanoseconds(
                Int64.random(
                    in: configuration.graphLifetime.lowerBound
                        .nanosecondsValue...configuration.graphLifetime.upperBound.nanosecondsValue,
                    using: &rng
                )
            )
            let abrupt = Int.random(in: 0..<4, using: &rng) != 0
            let options = isolated ? processOptions(using: &rng) : SoakShape.options(using: &rng)
            let ok = await cycle(
                shape: shape,
                options: options,
                lifetime: lifetime,
                inFlight: abrupt,
                faults: &faults,
                faultRNG: &faultRNG
            )
            graphs += 1
            if abrupt { inFlight += 1 }
            if !ok { compileFailures += 1 }
            if ContinuousClock.now - lastProgress > .seconds(10) {
                lastProgress = ContinuousClock.now
                let c = ledger.snapshot()
                progress(
                    "soak: t=\((ContinuousClock.now - startedAt).components.seconds)s graphs=\(graphs) process_graphs=\(faults.graphs) kills=\(faults.kills) stops=\(faults.stops) executions=\(c.executions) answered=\(c.answered) rss_kib=\(ProcessResources.sample().rssKiB)"
                )
            }
        }
        // Stop: no new calls; wait until every submitter is between calls (a call that never
        // returns is a hang: reported, not waited out), then sample in the same idle state as the start.
        paused.store(true, ordering: .sequentiallyConsistent)
        let deadline = ContinuousClock.now + configuration.hangTimeout
        while ledger.busy.load(ordering: .sequentiallyConsistent) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let hung = ledger.busy.load(ordering: .sequentiallyConsistent) > 0
        let endSample = hung ? ProcessResources.sample() : await settledSample(target: startSample)
        let endMappings = ProcessResources.mappingSignatures()
        stopping.store(true, ordering: .sequentiallyConsistent)
        if !hung {
            while hangFlags.contains(where: { !$0.isFinished }) { try? await Task.sleep(for: .milliseconds(1)) }
            for task in tasks { await task.value }
            threads.forEach { $0.join() }
        }
        let c = ledger.snapshot()
        return Report(
            executions: c.executions,
            answered: c.answered,
            lost: c.executions - c.answered,
            duplicated: c.duplicated,
            values: c.values,
            stageFailures: c.stageFailures,
            shutdownErrors: c.shutdownErrors,
            capacityErrors: c.capacityErrors,
            otherErrors: c.otherErrors,
            crashAnswers: c.crashErrors,
            timeLimitAnswers: c.timeLimitErrors,
            restartsExhaustedAnswers: c.restartsExhaustedErrors,
            exclusiveRefusals: c.exclusiveRefusals,
            exclusiveDropped: c.exclusiveDropped,
            processFaults: faults,
            graphs: graphs,
            shutdownsInFlight: inFlight,
            startsAfterShutdown: shutdownChecks.startsAfterShutdown.load(ordering: .relaxed),
            actorsNotFreeAfterShutdown: shutdownChecks.actorsNotFree.load(ordering: .relaxed),
            compileFailures: compileFailures,
            compileErrors: compileErrors.withLock { $0 },
            hung: hung,
            start: startSample,
            end: endSample,
            mappingChanges: Self.multisetChanges(from: startMappings, to: endMappings),
            rssGrowthLimitKiB: configuration.rssGrowthLimitKiB,
            mapGrowthLimit: configuration.mapGrowthLimit,
            seed: configuration.seed
        )
    }

    /// The elements whose count differs between `start` and `end`, as `+ element` (more at the end)
    /// and `- element` (fewer), once per unit of difference.
    static func multisetChanges(from start: [String], to end: [String]) -> [String] {
        var counts: [String: Int] = [:]
        for line in end { counts[line, default: 0] += 1 }
        for line in start { counts[line, default: 0] -= 1 }
        return counts.sorted { $0.key < $1.key }.flatMap { line, n in
            Array(repeating: (n > 0 ? "+ " : "- ") + line, count: abs(n))
        }
    }

    /// Samples resources once nothing is running; waits (up to 30 s) for the counts to return to
    /// `target`: threads exit and descriptors close asynchronously after a join, and libdispatch
    /// retires idle pool threads (and with them their stack mappings) on its own schedule. After
    /// 10 s, mappings within `mapGrowthLimit` of the target are accepted (see the limit's doc).
    func settledSample(target: ProcessResources? = nil) async -> ProcessResources {
        var sample = ProcessResources.sample()
        let startedAt = ContinuousClock.now
        repeat {
            try? await Task.sleep(for: .milliseconds(100))
            sample = ProcessResources.sample()
            guard let target else { break }
            let mappingSlack = ContinuousClock.now - startedAt < .seconds(10) ? 0 : configuration.mapGrowthLimit
            if sample.threads == target.threads && sample.openFileDescriptors == target.openFileDescriptors
                && sample.engineMappings <= target.engineMappings && sample.mappings <= target.mappings + mappingSlack
                && sample.poolThreads <= target.poolThreads && sample.childProcesses <= target.childProcesses
            {
                break
            }
        } while ContinuousClock.now - startedAt < .seconds(30)
        return sample
    }

    /// Options of a process graph: ``SoakShape/options(using:)`` with ``Isolation/processes``, a
    /// stage time limit (a second net for a worker that makes no progress; a stopped one is normally
    /// killed first by the supervisor's stop check), a short shutdown grace period, sometimes a standby process per worker, and
    /// a restart policy generous enough for every injected fault — except about one graph in eight,
    /// which allows 0–2 restarts so that the failed-graph path (`restartsExhausted`) runs too.
    func processOptions(using rng: inout SplitMix64) -> CompileOptions {
        var options = SoakShape.options(using: &rng)
        var process = ProcessOptions(workerExecutable: configuration.workerExecutable, handshakeTimeout: .seconds(10))
        options.stageTimeLimit = .milliseconds(Int.random(in: 60...250, using: &rng))
        options.shutdownGracePeriod = .milliseconds(Int.random(in: 50...300, using: &rng))
        process.standbyWorkers = Int.random(in: 0..<3, using: &rng) == 0
        process.restartPolicy =
            Int.random(in: 0..<8, using: &rng) == 0
            ? RestartPolicy(maxRestarts: Int.random(in: 0...2, using: &rng), window: .seconds(60))
            : RestartPolicy(maxRestarts: 100_000, window: .seconds(60))
        options.isolation = .processes(process)
        return options
    }

    /// Compiles one graph, lets the submitters run it for `lifetime`, then shuts it down: with
    /// executions in flight (`inFlight`), or after pausing the submitters and letting them drain.
    /// A process graph gets faults injected into its workers meanwhile (counted in `faults`).
    /// Returns false when compile failed.
    @discardableResult
    func cycle(
        shape: SoakShape,
        options: CompileOptions,
        lifetime: Duration,
        inFlight: Bool,
        faults: inout ProcessFaults,
        faultRNG: inout SplitMix64
    ) async -> Bool {
        let probe = ShutdownProbe()
        let compile: @Sendable () -> Result<CompiledGraph<Int, SoakOutput>, CompileError> = {
            do throws(CompileError) { return .success(try shape.graph(probe: probe).compile(options)) } catch {
                return .failure(error)
            }
        }
        let blocking = control.withLock { $0 }
        let graph: CompiledGraph<Int, SoakOutput>
        switch await blocking?.run(compile) ?? compile() {
        case .success(let compiled): graph = compiled
        case .failure(let error):
            compileErrors.withLock { if $0.count < 4 { $0.append("\(error)") } }
            return false
        }
        publish(graph)
        paused.store(false, ordering: .sequentiallyConsistent)
        if case .processes = options.isolation {
            faults.graphs += 1
            await injectFaults(into: graph, for: lifetime, faults: &faults, rng: &faultRNG)
        } else {
            try? await Task.sleep(for: lifetime)
        }
        if !inFlight {
            // Graceful: no new executions; wait until every submitter is between calls.
            paused.store(true, ordering: .sequentiallyConsistent)
            let deadline = ContinuousClock.now + .seconds(10)
            while ledger.busy.load(ordering: .sequentiallyConsistent) > 0 && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .microseconds(200))
            }
        }
        // New calls stop first; calls already inside the graph meet the shutdown.
        publish(nil)
        if let blocking { await blocking.run { graph.shutdown() } } else { graph.shutdown() }
        probe.didReturnFromShutdown()
        paused.store(false, ordering: .sequentiallyConsistent)
        if case .threads = options.isolation {
            // No soak stage gets stuck, so the worker stopped within the grace period and its
            // actors are free now; a stage starting later would be counted by the probe (looked at
            // a few milliseconds later, when a worker that ignored the stop would have started one).
            if shape == .diamond && (try? probe.calls.withState { $0 }) == nil {
                shutdownChecks.actorsNotFree.add(1, ordering: .relaxed)
            }
            try? await Task.sleep(for: .milliseconds(2))
            shutdownChecks.startsAfterShutdown.add(
                probe.startsAfterShutdown.load(ordering: .relaxed),
                ordering: .relaxed
            )
        }
        if case .processes = options.isolation {
            // After shutdown: the supervisor has stopped, so its counts are final.
            let statistics = graph.isolationStatistics
            faults.crashes += statistics.crashes
            faults.restarts += statistics.restarts
            faults.timeLimitKills += statistics.stuckStageReports
            if statistics.restartsExhausted { faults.exhaustedGraphs += 1 }
        }
        return true
    }

    /// Sends `SIGKILL` (3 in 5) or `SIGSTOP` to a random worker process of `graph` at random
    /// intervals (``Configuration/faultInterval``) until `lifetime` has passed. A worker being
    /// restarted (no process id yet) is skipped for that fault, and so is a worker this injector
    /// stopped: it is left to the engine (its supervisor kills a stopped worker). Returns
    /// early once the graph has failed (restarts exhausted): every call to it fails at once, so
    /// keeping it would only count the same error over and over.
    func injectFaults(
        into graph: CompiledGraph<Int, SoakOutput>,
        for lifetime: Duration,
        faults: inout ProcessFaults,
        rng: inout SplitMix64
    ) async {
        let end = ContinuousClock.now + lifetime
        let interval = configuration.faultInterval
        var stopped: Set<Int32> = []
        while true {
            let gap = Duration.nanoseconds(
                Int64.random(
                    in: interval.lowerBound.nanosecondsValue...interval.upperBound.nanosecondsValue,
                    using: &rng
                )
            )
            let worker = Int.random(in: 0..<max(1, graph.isolationStatistics.workerProcessIDs.count), using: &rng)
            let kill = Int.random(in: 0..<5, using: &rng) < 3
            let at = min(end, ContinuousClock.now + gap)
            while ContinuousClock.now < at {
                if graph.isolationStatistics.restartsExhausted { return }
                try? await Task.sleep(for: min(.milliseconds(10), at - ContinuousClock.now))
            }
            if at == end { return }
            guard let pid = WorkerFaults.processID(of: graph, worker: worker, waitingUpTo: .zero),
                !stopped.contains(pid)
            else { continue }
            if WorkerFaults.send(kill ? SIGKILL : SIGSTOP, to: pid) {
                if kill {
                    faults.kills += 1
                } else {
                    faults.stops += 1
                    stopped.insert(pid)
                }
            }
        }
    }

    func publish(_ graph: CompiledGraph<Int, SoakOutput>?) {
        slot.withLock { $0 = graph }
        generation.add(1, ordering: .releasing)
    }

}
