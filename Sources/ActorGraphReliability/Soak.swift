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
        /// The worker program of process graphs (``CompileOptions/workerExecutable``); nil: this program.
        public var workerExecutable: String?
        /// Time between two faults injected into a living process graph (each one a `SIGKILL` or a
        /// `SIGSTOP` of one of its worker processes, picked at random).
        public var faultInterval: ClosedRange<Duration>

        /// The defaults: one submitter of each kind, graphs living 50 ms–1 s, threads only.
        public init(duration: Duration = .seconds(60), blockingSubmitters: Int = 1, asyncSubmitters: Int = 2,
                    pipelinedSubmitters: Int = 1, pipelineWindow: Int = 16, batchSubmitters: Int = 1,
                    graphLifetime: ClosedRange<Duration> = .milliseconds(50) ... .seconds(1),
                    seed: UInt64 = UInt64.random(in: 1...UInt64(UInt32.max)), hangTimeout: Duration = .seconds(60),
                    rssGrowthLimitKiB: Int = 64 << 10, mapGrowthLimit: Int = 16,
                    processGraphs: Bool = false, processGraphEvery: Int = 3, workerExecutable: String? = nil,
                    faultInterval: ClosedRange<Duration> = .milliseconds(20) ... .milliseconds(250)) {
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
        /// Answers of process graphs by kind: ``GraphError/workerCrashed(worker:reason:)`` (the worker
        /// died with the execution in it, killed or stopped and then killed by its supervisor),
        /// ``GraphError/stageTimedOut(node:)`` (its worker was killed for the stage time limit) and
        /// ``GraphError/restartsExhausted(worker:restarts:)``.
        public var crashAnswers: Int, timeLimitAnswers: Int, restartsExhaustedAnswers: Int
        /// Calls refused while the batch submitter held an ``ExclusiveSubmitter``
        /// (``GraphError/exclusiveSubmitterOpen``), and executions an exclusive submitter dropped
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
            if actorsNotFreeAfterShutdown != 0 { failed.append("actors_not_free=\(actorsNotFreeAfterShutdown) (must be 0)") }
            if childrenLeft != 0 { failed.append("children_left=\(childrenLeft) (must be 0)") }
            if otherErrors != 0 { failed.append("other_errors=\(otherErrors) (must be 0)") }
            if fdGrowth > 0 { failed.append("fd_growth=\(fdGrowth) (must be <= 0)") }
            if threadGrowth > 0 { failed.append("thread_growth=\(threadGrowth) (must be <= 0)") }
            if engineMapGrowth > 0 { failed.append("engine_map_growth=\(engineMapGrowth) (must be <= 0)") }
            if mapGrowth > mapGrowthLimit { failed.append("map_growth=\(mapGrowth) (must be <= \(mapGrowthLimit))") }
            if rssGrowthKiB > rssGrowthLimitKiB { failed.append("rss_growth_kib=\(rssGrowthKiB) (must be <= \(rssGrowthLimitKiB))") }
            return failed
        }

        /// The details: resources at the start and the end, then (the line just before the summary)
        /// answers by kind, graphs, process-worker faults, seed.
        public var details: String {
            let p = processFaults
            return "soak: start \(start)\nsoak: end   \(end)"
                + (mappingChanges.isEmpty || (mapGrowth == 0 && engineMapGrowth == 0) ? "" : "\nsoak: mappings " + mappingChanges.prefix(24).joined(separator: ", "))
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
    let ledger = Ledger()
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
        let options = CompileOptions(workers: 1, capacity: 4, pinWorkers: false, idle: .eager, isolation: .processes,
                                     workerExecutable: workerExecutable)
        do {
            let graph = try SoakShape.echo.graph().compile(options)
            defer { graph.shutdown() }
            _ = try? graph.execute(2)
            return nil
        } catch GraphError.platform(let operation, let errno) {
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
        defer { blocking.stop(); control.withLock { $0 = nil } }
        var threads: [PinnedThread] = []
        var hangFlags: [SubmitterFlag] = []
        for i in 0..<configuration.blockingSubmitters {
            let flag = SubmitterFlag()
            hangFlags.append(flag)
            if let t = try? PinnedThread(name: "soak-block\(i)", cpu: nil, stackSize: 1 << 20, { [self] in blockingLoop(flag) }) { threads.append(t) } else { flag.finish() }
        }
        for i in 0..<configuration.pipelinedSubmitters {
            let flag = SubmitterFlag()
            hangFlags.append(flag)
            if let t = try? PinnedThread(name: "soak-pipe\(i)", cpu: nil, stackSize: 1 << 20, { [self] in pipelinedLoop(flag) }) { threads.append(t) } else { flag.finish() }
        }
        for i in 0..<configuration.batchSubmitters {
            let flag = SubmitterFlag()
            hangFlags.append(flag)
            if let t = try? PinnedThread(name: "soak-batch\(i)", cpu: nil, stackSize: 1 << 20, { [self] in batchLoop(flag, seed: UInt64(i)) }) { threads.append(t) } else { flag.finish() }
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
            await cycle(shape: shape, options: options, lifetime: .milliseconds(60), inFlight: false,
                        faults: &faults, faultRNG: &faultRNG)
        }
        if configuration.processGraphs {
            // One is enough (the same code runs for every shape); each costs a spawn per worker.
            var options = processOptions(using: &rng)
            options.workers = SoakShape.maxWorkers
            await cycle(shape: .diamond, options: options, lifetime: .milliseconds(200), inFlight: false,
                        faults: &faults, faultRNG: &faultRNG)
        }
        let startSample = await settledSample()
        let startMappings = ProcessResources.mappingSignatures()
        ledger.reset()
        shutdownChecks.reset()
        faults = ProcessFaults()
        let startedAt = ContinuousClock.now
        var lastProgress = startedAt
        var graphs = 0, inFlight = 0, compileFailures = 0
        while ContinuousClock.now - startedAt < configuration.duration {
            let isolated = configuration.processGraphs && Int.random(in: 0..<configuration.processGraphEvery, using: &rng) == 0
            let shape = (isolated ? SoakShape.processCrossable : SoakShape.allCases).randomElement(using: &rng)!
            let lifetime = Duration.nanoseconds(Int64.random(
                in: configuration.graphLifetime.lowerBound.nanosecondsValue...configuration.graphLifetime.upperBound.nanosecondsValue,
                using: &rng))
            let abrupt = Int.random(in: 0..<4, using: &rng) != 0
            let options = isolated ? processOptions(using: &rng) : SoakShape.options(using: &rng)
            let ok = await cycle(shape: shape, options: options, lifetime: lifetime, inFlight: abrupt,
                                 faults: &faults, faultRNG: &faultRNG)
            graphs += 1
            if abrupt { inFlight += 1 }
            if !ok { compileFailures += 1 }
            if ContinuousClock.now - lastProgress > .seconds(10) {
                lastProgress = ContinuousClock.now
                let c = ledger.snapshot()
                progress("soak: t=\((ContinuousClock.now - startedAt).components.seconds)s graphs=\(graphs) process_graphs=\(faults.graphs) kills=\(faults.kills) stops=\(faults.stops) executions=\(c.executions) answered=\(c.answered) rss_kib=\(ProcessResources.sample().rssKiB)")
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
            executions: c.executions, answered: c.answered, lost: c.executions - c.answered, duplicated: c.duplicated,
            values: c.values, stageFailures: c.stageFailures, shutdownErrors: c.shutdownErrors,
            capacityErrors: c.capacityErrors, otherErrors: c.otherErrors,
            crashAnswers: c.crashErrors, timeLimitAnswers: c.timeLimitErrors, restartsExhaustedAnswers: c.restartsExhaustedErrors,
            exclusiveRefusals: c.exclusiveRefusals, exclusiveDropped: c.exclusiveDropped,
            processFaults: faults, graphs: graphs, shutdownsInFlight: inFlight,
            startsAfterShutdown: shutdownChecks.startsAfterShutdown.load(ordering: .relaxed),
            actorsNotFreeAfterShutdown: shutdownChecks.actorsNotFree.load(ordering: .relaxed),
            compileFailures: compileFailures, compileErrors: compileErrors.withLock { $0 }, hung: hung, start: startSample, end: endSample,
            mappingChanges: Self.multisetChanges(from: startMappings, to: endMappings),
            rssGrowthLimitKiB: configuration.rssGrowthLimitKiB, mapGrowthLimit: configuration.mapGrowthLimit, seed: configuration.seed)
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
    private func settledSample(target: ProcessResources? = nil) async -> ProcessResources {
        var sample = ProcessResources.sample()
        let startedAt = ContinuousClock.now
        repeat {
            try? await Task.sleep(for: .milliseconds(100))
            sample = ProcessResources.sample()
            guard let target else { break }
            let mappingSlack = ContinuousClock.now - startedAt < .seconds(10) ? 0 : configuration.mapGrowthLimit
            if sample.threads == target.threads && sample.openFileDescriptors == target.openFileDescriptors
                && sample.engineMappings <= target.engineMappings && sample.mappings <= target.mappings + mappingSlack
                && sample.poolThreads <= target.poolThreads && sample.childProcesses <= target.childProcesses { break }
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
        options.isolation = .processes
        options.workerExecutable = configuration.workerExecutable
        options.stageTimeLimit = .milliseconds(Int.random(in: 60...250, using: &rng))
        options.shutdownGracePeriod = .milliseconds(Int.random(in: 50...300, using: &rng))
        options.handshakeTimeout = .seconds(10)
        options.standbyWorkers = Int.random(in: 0..<3, using: &rng) == 0
        options.restartPolicy = Int.random(in: 0..<8, using: &rng) == 0
            ? RestartPolicy(maxRestarts: Int.random(in: 0...2, using: &rng), window: .seconds(60))
            : RestartPolicy(maxRestarts: 100_000, window: .seconds(60))
        return options
    }

    /// Compiles one graph, lets the submitters run it for `lifetime`, then shuts it down: with
    /// executions in flight (`inFlight`), or after pausing the submitters and letting them drain.
    /// A process graph gets faults injected into its workers meanwhile (counted in `faults`).
    /// Returns false when compile failed.
    @discardableResult
    private func cycle(shape: SoakShape, options: CompileOptions, lifetime: Duration, inFlight: Bool,
                       faults: inout ProcessFaults, faultRNG: inout SplitMix64) async -> Bool {
        let probe = ShutdownProbe()
        let compile: @Sendable () -> Result<CompiledGraph<Int, SoakOutput>, GraphError> = {
            do throws(GraphError) { return .success(try shape.graph(probe: probe).compile(options)) } catch { return .failure(error) }
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
        if options.isolation == .processes {
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
        if options.isolation == .threads {
            // No soak stage gets stuck, so the worker stopped within the grace period and its
            // actors are free now; a stage starting later would be counted by the probe (looked at
            // a few milliseconds later, when a worker that ignored the stop would have started one).
            if shape == .diamond && (try? probe.calls.withState { $0 }) == nil { shutdownChecks.actorsNotFree.add(1, ordering: .relaxed) }
            try? await Task.sleep(for: .milliseconds(2))
            shutdownChecks.startsAfterShutdown.add(probe.startsAfterShutdown.load(ordering: .relaxed), ordering: .relaxed)
        }
        if options.isolation == .processes {
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
    private func injectFaults(into graph: CompiledGraph<Int, SoakOutput>, for lifetime: Duration,
                              faults: inout ProcessFaults, rng: inout SplitMix64) async {
        let end = ContinuousClock.now + lifetime
        let interval = configuration.faultInterval
        var stopped: Set<Int32> = []
        while true {
            let gap = Duration.nanoseconds(Int64.random(
                in: interval.lowerBound.nanosecondsValue...interval.upperBound.nanosecondsValue, using: &rng))
            let worker = Int.random(in: 0..<max(1, graph.isolationStatistics.workerProcessIDs.count), using: &rng)
            let kill = Int.random(in: 0..<5, using: &rng) < 3
            let at = min(end, ContinuousClock.now + gap)
            while ContinuousClock.now < at {
                if graph.isolationStatistics.restartsExhausted { return }
                try? await Task.sleep(for: min(.milliseconds(10), at - ContinuousClock.now))
            }
            if at == end { return }
            guard let pid = WorkerFaults.processID(of: graph, worker: worker, waitingUpTo: .zero), !stopped.contains(pid) else { continue }
            if WorkerFaults.send(kill ? SIGKILL : SIGSTOP, to: pid) {
                if kill { faults.kills += 1 } else { faults.stops += 1; stopped.insert(pid) }
            }
        }
    }

    private func publish(_ graph: CompiledGraph<Int, SoakOutput>?) {
        slot.withLock { $0 = graph }
        generation.add(1, ordering: .releasing)
    }

    // MARK: Submitters

    /// The graph to use now, or nil while there is none (between graphs) or the soak is pausing.
    /// A caller that gets a graph counts as busy until it calls `ledger.busy.subtract` (see
    /// `paused`). `view` caches the graph of the last generation seen (the lock is taken only when
    /// it changed); a cached graph that was just shut down answers `shutDown`, which is counted.
    private func current(_ view: inout GraphView) -> (graph: CompiledGraph<Int, SoakOutput>?, stop: Bool) {
        if stopping.load(ordering: .sequentiallyConsistent) { return (nil, true) }
        let g = generation.load(ordering: .acquiring)
        if g != view.generation {
            view.graph = slot.withLock { $0 }
            view.generation = g
        }
        guard let graph = view.graph else { return (nil, false) }
        ledger.busy.add(1, ordering: .sequentiallyConsistent)
        if paused.load(ordering: .sequentiallyConsistent) {
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
            return (nil, false)
        }
        return (graph, false)
    }

    /// After an answer saying the graph failed for good (restarts exhausted), waits 200 µs: every
    /// further call fails at once until the controller replaces the graph, and a thread retrying in
    /// a tight loop would only count that error thousands of times.
    /// Refused while another submitter holds the graph exclusively: waits 100 µs instead of
    /// retrying at once (on 2 CPUs a refused thread would otherwise compete with the holder).
    private func pauseIfFailedForGood(_ error: any Error) {
        if case GraphError.restartsExhausted = error { usleep(200) }
        if case GraphError.exclusiveSubmitterOpen = error { usleep(100) }
    }

    private func blockingLoop(_ flag: SubmitterFlag) {
        defer { flag.finish() }
        var view = GraphView()
        while true {
            let (graph, stop) = current(&view)
            if stop { return }
            guard let graph else { usleep(200); continue }
            let id = nextID.add(1, ordering: .relaxed).newValue
            ledger.started()
            do {
                ledger.answer(id, carried: try graph.execute(id))
            } catch {
                ledger.answer(id, error: error); pauseIfFailedForGood(error)
            }
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    private func asyncLoop(_ flag: SubmitterFlag) async {
        defer { flag.finish() }
        var view = GraphView()
        var round = 0
        while true {
            let (graph, stop) = current(&view)
            if stop { return }
            guard let graph else { try? await Task.sleep(for: .microseconds(200)); continue }
            round &+= 1
            // A call that fails at once (a failed graph: restarts exhausted) never suspends; without
            // a yield two such loops would hold both threads of a 2-CPU cooperative pool forever and
            // starve the task that shuts the graph down.
            var mustYield = false
            if round % 8 == 0 {
                // The async results stream: ids in, results in input order.
                let first = nextID.add(16, ordering: .relaxed).newValue - 15
                let ids = Array(first..<(first + 16))
                var next = 0
                var last: GraphError? = nil
                for await result in graph.results(for: ids, window: 1 + round % 16) {
                    ledger.started()
                    switch result {
                    case .success(let output): ledger.answer(ids[next], carried: output); last = nil
                    case .failure(let error): ledger.answer(ids[next], error: error); last = error
                    }
                    next += 1
                    if next == ids.count { break }
                }
                // A stream that cannot go on (shut down, restarts exhausted, no room) reports that
                // error once and ends: the rest share that answer.
                while next < ids.count { ledger.started(); ledger.answer(ids[next], error: last ?? GraphError.shutDown); next += 1 }
                mustYield = last != nil
            } else {
                let id = nextID.add(1, ordering: .relaxed).newValue
                ledger.started()
                do {
                    ledger.answer(id, carried: try await graph.execute(id))
                } catch {
                    ledger.answer(id, error: error)
                    if case GraphError.stageFailed = error {} else { mustYield = true }
                    if case GraphError.restartsExhausted = error { try? await Task.sleep(for: .microseconds(200)) }
                    if case GraphError.exclusiveSubmitterOpen = error { try? await Task.sleep(for: .microseconds(100)) }
                }
            }
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
            if mustYield { await Task.yield() }
        }
    }

    /// `submit(contentsOf:)` waited for in random order or with `waitAll`, and `executeAll`.
    private func batchLoop(_ flag: SubmitterFlag, seed: UInt64) {
        defer { flag.finish() }
        var view = GraphView()
        var rng = SplitMix64(seed: configuration.seed ^ 0xBA7C ^ seed)
        while true {
            let (graph, stop) = current(&view)
            if stop { return }
            guard let graph else { usleep(200); continue }
            let n = Int.random(in: 1...max(1, min(64, graph.capacity)), using: &rng)
            let first = nextID.add(n, ordering: .relaxed).newValue - n + 1
            let ids = Array(first..<(first + n))
            // 1 in 9 an exclusive burst; of the rest, a third executeAll, two thirds submit(contentsOf:).
            let pick = Int.random(in: 0..<9, using: &rng)
            switch pick == 8 ? 3 : pick % 3 {
            case 3:
                exclusiveBurst(graph, ids, rng: &rng)
            case 0:
                // executeAll: each result handed over in input order; a throw answers the rest.
                var delivered = 0
                do {
                    try graph.executeAll(ids, window: Int.random(in: 1...n, using: &rng)) { index, result in
                        ledger.started()
                        switch result {
                        case .success(let output): ledger.answer(ids[index], carried: output)
                        case .failure(let error): ledger.answer(ids[index], error: error)
                        }
                        delivered += 1
                    }
                } catch {
                    for id in ids[delivered...] { ledger.started(); ledger.answer(id, error: error) }; pauseIfFailedForGood(error)
                }
            default:
                let batch: PendingBatch<SoakOutput>
                do {
                    batch = try graph.submit(contentsOf: ids)
                } catch {
                    for id in ids { ledger.started(); ledger.answer(id, error: error) }; pauseIfFailedForGood(error)
                    ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
                    continue
                }
                for _ in ids { ledger.started() }
                if Bool.random(using: &rng) {
                    batch.waitAll { index, result in
                        switch result {
                        case .success(let output): ledger.answer(ids[index], carried: output)
                        case .failure(let error): ledger.answer(ids[index], error: error)
                        }
                    }
                } else {
                    // Each execution waited for once, in a random order.
                    for index in (0..<n).shuffled(using: &rng) {
                        do {
                            ledger.answer(ids[index], carried: try batch.wait(index))
                        } catch {
                            ledger.answer(ids[index], error: error)
                        }
                    }
                }
            }
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Holds the graph's submissions with an ``ExclusiveSubmitter`` for `ids` (every other
    /// submitter is refused meanwhile), keeps a random window in flight, receives in order, and
    /// half the time drops the submitter with executions still in flight.
    private func exclusiveBurst(_ graph: CompiledGraph<Int, SoakOutput>, _ ids: [Int], rng: inout SplitMix64) {
        var submitter: ExclusiveSubmitter<Int, SoakOutput>
        do {
            submitter = try graph.exclusiveSubmitter()
        } catch {
            for id in ids { ledger.started(); ledger.answer(id, error: error) }; pauseIfFailedForGood(error)
            return
        }
        let window = Int.random(in: 1...max(1, min(ids.count, graph.capacity)), using: &rng)
        let dropAfter = Bool.random(using: &rng) ? Int.random(in: 0...ids.count, using: &rng) : ids.count
        var received = 0
        func receiveOne(_ submitter: inout ExclusiveSubmitter<Int, SoakOutput>) {
            do {
                let output = try submitter.receive()
                ledger.answer(ids[received], carried: output)
            } catch {
                ledger.answer(ids[received], error: error)
            }
            received += 1
        }
        var submitted = 0
        while submitted < dropAfter {
            if submitter.inFlight == window { receiveOne(&submitter) }
            ledger.started()
            do {
                try submitter.submit(ids[submitted])
            } catch {
                ledger.answer(ids[submitted], error: error); pauseIfFailedForGood(error)
                break
            }
            submitted += 1
        }
        if dropAfter < ids.count {
            ledger.dropped(submitter.inFlight)   // abandoned when it is dropped below
        } else {
            while submitter.inFlight > 0 { receiveOne(&submitter) }
        }
    }

    private func pipelinedLoop(_ flag: SubmitterFlag) {
        defer { flag.finish() }
        var view = GraphView()
        var rng = SplitMix64(seed: configuration.seed ^ 0x5EED)
        while true {
            let (graph, stop) = current(&view)
            if stop { return }
            guard let graph else { usleep(200); continue }
            let window = Int.random(in: 1...max(1, min(configuration.pipelineWindow, graph.capacity)), using: &rng)
            submitThenWait(graph, remaining: window, waitInReverse: Bool.random(using: &rng))
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Submits `remaining` executions (one per stack frame: `PendingExecution` is `~Copyable`),
    /// then waits for them, newest first or oldest first.
    private func submitThenWait(_ graph: CompiledGraph<Int, SoakOutput>, remaining: Int, waitInReverse: Bool) {
        guard remaining > 0 else { return }
        let id = nextID.add(1, ordering: .relaxed).newValue
        ledger.started()
        let pending: PendingExecution<SoakOutput>
        do {
            pending = try graph.submit(id)
        } catch {
            ledger.answer(id, error: error); pauseIfFailedForGood(error)
            return // the graph is full or shut down: wait for what is in flight
        }
        if waitInReverse {
            submitThenWait(graph, remaining: remaining - 1, waitInReverse: waitInReverse)
            wait(pending, id)
        } else {
            // Oldest first: wait for this one, then submit and wait for the rest.
            wait(pending, id)
            submitThenWait(graph, remaining: remaining - 1, waitInReverse: waitInReverse)
        }
    }

    private func wait(_ pending: consuming PendingExecution<SoakOutput>, _ id: Int) {
        do {
            ledger.answer(id, carried: try pending.wait())
        } catch {
            ledger.answer(id, error: error)
        }
    }

    /// A submitter's cached view of the current graph.
    struct GraphView {
        var generation = -1
        var graph: CompiledGraph<Int, SoakOutput>? = nil
    }
}

/// Set once a submitter returned.
/// Shutdown-contract violations summed over a soak.
final class ShutdownChecks: Sendable {
    /// Stage starts after `shutdown()` had returned.
    let startsAfterShutdown = Atomic<Int>(0)
    /// Graphs whose actor was still bound (its state unreadable) after `shutdown()` returned.
    let actorsNotFree = Atomic<Int>(0)

    func reset() {
        startsAfterShutdown.store(0, ordering: .relaxed)
        actorsNotFree.store(0, ordering: .relaxed)
    }
}

final class SubmitterFlag: Sendable {
    private let done = Atomic<Bool>(false)
    func finish() { done.store(true, ordering: .releasing) }
    var isFinished: Bool { done.load(ordering: .acquiring) }
}

/// Counts executions and answers. An answer names the execution it belongs to (the id carried in
/// the output value or in the stage's error); it must be the execution that was asked for, once.
final class Ledger: Sendable {
    // Plain atomic counters, not a Mutex: Synchronization's Mutex hands a contended lock over inside
    // the kernel (a PI futex), where ThreadSanitizer cannot see the hand-off, so every contended
    // counter update would be reported as a race under `scripts/sanitizers.sh`.
    private let executions = Atomic<Int>(0), answered = Atomic<Int>(0), duplicated = Atomic<Int>(0)
    private let values = Atomic<Int>(0), stageFailures = Atomic<Int>(0), shutdownErrors = Atomic<Int>(0)
    private let capacityErrors = Atomic<Int>(0), otherErrors = Atomic<Int>(0)
    private let crashErrors = Atomic<Int>(0), timeLimitErrors = Atomic<Int>(0), restartsExhaustedErrors = Atomic<Int>(0)
    private let exclusiveRefusals = Atomic<Int>(0), exclusiveDropped = Atomic<Int>(0)
    /// Submitters inside a call (graceful shutdowns wait for zero).
    let busy = Atomic<Int>(0)

    struct Counters {
        var executions = 0, answered = 0, duplicated = 0
        var values = 0, stageFailures = 0, shutdownErrors = 0, capacityErrors = 0, otherErrors = 0
        var crashErrors = 0, timeLimitErrors = 0, restartsExhaustedErrors = 0
        var exclusiveRefusals = 0, exclusiveDropped = 0
    }

    /// Zeroes every counter; only while no submitter is inside a call.
    func reset() {
        executions.store(0, ordering: .relaxed); answered.store(0, ordering: .relaxed)
        duplicated.store(0, ordering: .relaxed); values.store(0, ordering: .relaxed)
        stageFailures.store(0, ordering: .relaxed); shutdownErrors.store(0, ordering: .relaxed)
        capacityErrors.store(0, ordering: .relaxed); otherErrors.store(0, ordering: .relaxed)
        crashErrors.store(0, ordering: .relaxed); timeLimitErrors.store(0, ordering: .relaxed)
        restartsExhaustedErrors.store(0, ordering: .relaxed)
        exclusiveRefusals.store(0, ordering: .relaxed); exclusiveDropped.store(0, ordering: .relaxed)
    }

    func snapshot() -> Counters {
        Counters(
            executions: executions.load(ordering: .acquiring), answered: answered.load(ordering: .acquiring),
            duplicated: duplicated.load(ordering: .acquiring), values: values.load(ordering: .acquiring),
            stageFailures: stageFailures.load(ordering: .acquiring), shutdownErrors: shutdownErrors.load(ordering: .acquiring),
            capacityErrors: capacityErrors.load(ordering: .acquiring), otherErrors: otherErrors.load(ordering: .acquiring),
            crashErrors: crashErrors.load(ordering: .acquiring), timeLimitErrors: timeLimitErrors.load(ordering: .acquiring),
            restartsExhaustedErrors: restartsExhaustedErrors.load(ordering: .acquiring),
            exclusiveRefusals: exclusiveRefusals.load(ordering: .acquiring), exclusiveDropped: exclusiveDropped.load(ordering: .acquiring))
    }

    func started() { executions.add(1, ordering: .relaxed) }

    /// `count` executions an exclusive submitter dropped in flight: nothing is delivered for them.
    func dropped(_ count: Int) {
        answered.add(count, ordering: .relaxed); exclusiveDropped.add(count, ordering: .relaxed)
    }

    /// A value arrived for execution `id`.
    func answer(_ id: Int, carried output: SoakOutput) {
        if output.id == id && output.check == SoakOutput.expectedCheck(id, shape: output.shape) {
            answered.add(1, ordering: .relaxed); values.add(1, ordering: .relaxed)
        } else {
            duplicated.add(1, ordering: .relaxed)
        }
    }

    /// An error arrived for execution `id`.
    func answer(_ id: Int, error: any Error) {
        switch error {
        case GraphError.stageFailed(_, let inner as SoakFailure) where inner.id == id:
            answered.add(1, ordering: .relaxed); stageFailures.add(1, ordering: .relaxed)
        case GraphError.stageFailed(_, let inner as IsolatedStageError) where inner.description == SoakFailure(id: id).description:
            // A process worker's stage failure arrives as the thrown error's text.
            answered.add(1, ordering: .relaxed); stageFailures.add(1, ordering: .relaxed)
        case GraphError.stageFailed:
            duplicated.add(1, ordering: .relaxed) // another execution's failure
        // Process graphs: the worker holding the execution died (killed, or stopped and then killed
        // by its supervisor), or the graph failed for good. These carry no execution id,
        // so they count as this execution's one answer.
        case GraphError.workerCrashed:
            answered.add(1, ordering: .relaxed); crashErrors.add(1, ordering: .relaxed)
        case GraphError.stageTimedOut:
            answered.add(1, ordering: .relaxed); timeLimitErrors.add(1, ordering: .relaxed)
        case GraphError.restartsExhausted:
            answered.add(1, ordering: .relaxed); restartsExhaustedErrors.add(1, ordering: .relaxed)
        case GraphError.shutDown:
            answered.add(1, ordering: .relaxed); shutdownErrors.add(1, ordering: .relaxed)
        case GraphError.capacityExceeded:
            answered.add(1, ordering: .relaxed); capacityErrors.add(1, ordering: .relaxed)
        case GraphError.exclusiveSubmitterOpen:
            answered.add(1, ordering: .relaxed); exclusiveRefusals.add(1, ordering: .relaxed)
        default:
            answered.add(1, ordering: .relaxed); otherErrors.add(1, ordering: .relaxed)
        }
    }
}

// MARK: - Graphs

/// The soak's output: which execution it answers and a check value computed along the stages.
public struct SoakOutput: Sendable, Equatable {
    /// The execution's id (its input).
    public var id: Int
    /// A value every path of the graph contributes to; must equal ``expectedCheck(_:shape:)``.
    public var check: Int
    /// Which shape computed it.
    public var shape: Int

    static func expectedCheck(_ id: Int, shape: Int) -> Int {
        switch SoakShape(rawValue: shape) {
        case .echo: return id &* 3 &+ 1
        case .chain: return ((id &+ 1) &* 5) &- 7
        case .diamond: return (id &* 2 &+ 1) &+ (id &* 2) &* (id &* 2)
        case .fanOutStrings: return String(id).utf8.count &* 4 &+ id &* 2
        case nil: return Int.min
        }
    }
}

/// Thrown by soak stages for about one execution in `SoakShape.failEvery`; carries the execution's id.
public struct SoakFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The failing execution.
    public var id: Int

    /// `SoakFailure(id: N)`: what a process worker's caller receives (``IsolatedStageError``).
    public var description: String { "SoakFailure(id: \(id))" }
}

/// Process graphs of a soak and the faults injected into their workers.
public struct ProcessFaults: Sendable, Equatable {
    /// Graphs compiled with ``Isolation/processes``.
    public var graphs = 0
    /// `SIGKILL`s delivered to worker processes.
    public var kills = 0
    /// `SIGSTOP`s delivered to worker processes.
    public var stops = 0
    /// Worker deaths the supervisors saw while their graphs ran (injected kills, stopped workers
    /// the supervisors killed; not those of `shutdown()`).
    public var crashes = 0
    /// Worker processes restarted after a death.
    public var restarts = 0
    /// Workers the supervisors killed for making no progress past the stage time limit.
    public var timeLimitKills = 0
    /// Graphs that used up their restart policy and failed (``GraphError/restartsExhausted(worker:restarts:)``).
    public var exhaustedGraphs = 0

    /// Nothing yet.
    public init() {}
}

@inline(__always)
func soakShouldFail(_ id: Int, salt: Int) -> Bool {
    var z = UInt64(bitPattern: Int64(id)) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(salt)
    z = (z ^ (z >> 29)) &* 0xBF58_476D_1CE4_E5B9
    return (z ^ (z >> 32)) % 17 == 0
}

/// Graph shapes the soak cycles through: every one carries the id to the output and fails randomly.
enum SoakShape: Int, CaseIterable {
    case echo, chain, diamond, fanOutStrings

    /// The shapes whose values are trivially copyable, so they can run in worker processes
    /// (`fanOutStrings` carries `String` and `[Int]`).
    static let processCrossable: [SoakShape] = [.echo, .chain, .diamond]

    func graph(probe: ShutdownProbe = ShutdownProbe()) -> Graph<Int, SoakOutput> {
        switch self {
        case .echo:
            return Graph(input: Int.self) { x in
                x.then(name: "echo") { id -> SoakOutput in
                    probe.stageStarted()
                    if soakShouldFail(id, salt: 1) { throw SoakFailure(id: id) }
                    return SoakOutput(id: id, check: id &* 3 &+ 1, shape: 0)
                }
            }
        case .chain:
            return Graph(input: Int.self) { x in
                x.then(name: "a") { id in probe.stageStarted(); return (id, id &+ 1) }
                    .then(SoakCounter(), name: "b")
                    .then(name: "c") { id, v -> SoakOutput in
                        if soakShouldFail(id, salt: 2) { throw SoakFailure(id: id) }
                        return SoakOutput(id: id, check: v &- 7, shape: 1)
                    }
            }
        case .diamond:
            let calls = probe.calls
            return Graph(input: Int.self) { x in
                let a = x.then(calls, name: "double") { n, id in probe.stageStarted(); n &+= 1; return (id, id &* 2) }
                let b = a.then(name: "plus1") { id, v -> Int in
                    if soakShouldFail(id, salt: 3) { throw SoakFailure(id: id) }
                    return v &+ 1
                }
                let c = a.then(calls, name: "square") { n, p in n &+= 1; return p.1 &* p.1 }
                return zip(a, b, c).then(name: "sum") { p, b, c in SoakOutput(id: p.0, check: b &+ c, shape: 2) }
            }
        case .fanOutStrings:
            // Values holding references (String, [Int]) flow through rings, scratch and zips.
            return Graph(input: Int.self) { x in
                let s = x.then(name: "text") { id in probe.stageStarted(); return String(id) }
                let branches = (0..<4).map { i in
                    s.then(name: "len\(i)") { text -> [Int] in
                        if i == 2, let id = Int(text), soakShouldFail(id, salt: 4) { throw SoakFailure(id: id) }
                        return [text.utf8.count]
                    }
                }
                let joined = zip(branches[0], branches[1], branches[2], branches[3]).then(name: "join") { a, b, c, d in a + b + c + d }
                return zip(x, joined).then(name: "out") { id, lengths in
                    SoakOutput(id: id, check: lengths.reduce(0, +) &+ id &* 2, shape: 3)
                }
            }
        }
    }

    /// The most workers a soak graph gets: 2, or 1 on a single CPU.
    static var maxWorkers: Int { max(1, min(2, CPU.allowedCPUs().count)) }

    /// Random options that never make more threads spin than CPUs: workers are unpinned and park
    /// eagerly (the submitters already oversubscribe a small machine).
    static func options(using rng: inout SplitMix64) -> CompileOptions {
        let capacity = 1 << Int.random(in: 0...10, using: &rng)
        let idle = IdlePolicy(workerSpins: Int.random(in: 16...512, using: &rng), callerSpins: Int.random(in: 16...512, using: &rng),
                              spinTime: .zero, parkTimeout: .milliseconds(Int.random(in: 5...50, using: &rng)))
        return CompileOptions(
            workers: Int.random(in: 1...maxWorkers, using: &rng), capacity: capacity, pinWorkers: false,
            idle: idle, submitTimeout: .milliseconds(Int.random(in: 50...2_000, using: &rng)),
            placement: [.automatic, .spread, .singleWorker].randomElement(using: &rng)!,
            batchSize: [1, 4, 32, 256].randomElement(using: &rng)!,
            useIORing: Int.random(in: 0..<4, using: &rng) != 0)
    }
}

/// The shutdown contract as the soak checks it for one thread-mode graph: the head stage of every
/// shape reports each start here, and a start after `shutdown()` returned is counted; the
/// diamond's actor must be free (its state readable) once `shutdown()` returned.
final class ShutdownProbe: Sendable {
    let calls = ActorRef(0, name: "soak-calls")
    private let shutdownReturned = Atomic<Bool>(false)
    let startsAfterShutdown = Atomic<Int>(0)

    func stageStarted() {
        if shutdownReturned.load(ordering: .acquiring) { startsAfterShutdown.add(1, ordering: .relaxed) }
    }

    func didReturnFromShutdown() { shutdownReturned.store(true, ordering: .releasing) }
}

/// A stateful stage: adds a running count's parity-free contribution so the check stays exact.
struct SoakCounter: ActorGraph.Stage, Sendable {
    var seen = 0
    mutating func process(_ input: (Int, Int)) -> (Int, Int) {
        seen &+= 1
        return (input.0, input.1 &* 5)
    }
}


extension Duration {
    var nanosecondsValue: Int64 {
        let (s, atto) = components
        return s &* 1_000_000_000 &+ atto / 1_000_000_000
    }
}
