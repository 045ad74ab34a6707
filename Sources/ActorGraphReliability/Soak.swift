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
        /// `waitAll`) and `executeAll`.
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

        /// The defaults: one submitter of each kind, graphs living 50 ms–1 s.
        public init(duration: Duration = .seconds(60), blockingSubmitters: Int = 1, asyncSubmitters: Int = 2,
                    pipelinedSubmitters: Int = 1, pipelineWindow: Int = 16, batchSubmitters: Int = 1,
                    graphLifetime: ClosedRange<Duration> = .milliseconds(50) ... .seconds(1),
                    seed: UInt64 = UInt64.random(in: 1...UInt64(UInt32.max)), hangTimeout: Duration = .seconds(60),
                    rssGrowthLimitKiB: Int = 64 << 10, mapGrowthLimit: Int = 16) {
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
        /// Graphs compiled and shut down; how many of them were shut down with executions in flight.
        public var graphs: Int, shutdownsInFlight: Int
        /// Compiles that failed (always a bug here: every option is valid).
        public var compileFailures: Int
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
            if otherErrors != 0 { failed.append("other_errors=\(otherErrors) (must be 0)") }
            if fdGrowth > 0 { failed.append("fd_growth=\(fdGrowth) (must be <= 0)") }
            if threadGrowth > 0 { failed.append("thread_growth=\(threadGrowth) (must be <= 0)") }
            if engineMapGrowth > 0 { failed.append("engine_map_growth=\(engineMapGrowth) (must be <= 0)") }
            if mapGrowth > mapGrowthLimit { failed.append("map_growth=\(mapGrowth) (must be <= \(mapGrowthLimit))") }
            if rssGrowthKiB > rssGrowthLimitKiB { failed.append("rss_growth_kib=\(rssGrowthKiB) (must be <= \(rssGrowthLimitKiB))") }
            return failed
        }

        /// The details: answers by kind, graphs, resources, seed.
        public var details: String {
            "soak: values=\(values) stage_failures=\(stageFailures) shutdown_errors=\(shutdownErrors) capacity_errors=\(capacityErrors) other_errors=\(otherErrors) graphs=\(graphs) shutdowns_in_flight=\(shutdownsInFlight) compile_failures=\(compileFailures) hung=\(hung) seed=\(seed) engine_map_growth=\(engineMapGrowth) arena_map_growth=\(end.mallocArenaHeaps - start.mallocArenaHeaps) map_growth_limit=\(mapGrowthLimit)\nsoak: start \(start)\nsoak: end   \(end)"
                + (mappingChanges.isEmpty || (mapGrowth == 0 && engineMapGrowth == 0) ? "" : "\nsoak: mappings " + mappingChanges.prefix(24).joined(separator: ", "))
        }

        /// The one summary line, in exactly this form.
        public var description: String {
            "soak: executions=\(executions) answered=\(answered) lost=\(lost) duplicated=\(duplicated) rss_growth_kib=\(rssGrowthKiB) fd_growth=\(fdGrowth) thread_growth=\(threadGrowth) map_growth=\(mapGrowth)"
        }
    }

    let configuration: Configuration
    let ledger = Ledger()
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

    /// A soak that will run with `configuration`.
    public init(_ configuration: Configuration) { self.configuration = configuration }

    /// Runs the soak: warm-up, baseline sample, measured phase, settle, final sample. `progress`
    /// receives a line every few seconds.
    public func run(progress: @escaping @Sendable (String) -> Void = { _ in }) async -> Report {
        var rng = SplitMix64(seed: configuration.seed)
        // Submitters live for the whole soak: they are part of the baseline, not a leak.
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
        // pool's threads, malloc arenas, cached thread stacks) exists before the baseline.
        for shape in SoakShape.allCases {
            await cycle(shape: shape, options: SoakShape.options(using: &rng), lifetime: .milliseconds(60), inFlight: false)
        }
        let startSample = await settledSample()
        let startMappings = ProcessResources.mappingSignatures()
        ledger.reset()
        let startedAt = ContinuousClock.now
        var lastProgress = startedAt
        var graphs = 0, inFlight = 0, compileFailures = 0
        while ContinuousClock.now - startedAt < configuration.duration {
            let shape = SoakShape.allCases.randomElement(using: &rng)!
            let lifetime = Duration.nanoseconds(Int64.random(
                in: configuration.graphLifetime.lowerBound.nanosecondsValue...configuration.graphLifetime.upperBound.nanosecondsValue,
                using: &rng))
            let abrupt = Int.random(in: 0..<4, using: &rng) != 0
            let ok = await cycle(shape: shape, options: SoakShape.options(using: &rng), lifetime: lifetime, inFlight: abrupt)
            graphs += 1
            if abrupt { inFlight += 1 }
            if !ok { compileFailures += 1 }
            if ContinuousClock.now - lastProgress > .seconds(10) {
                lastProgress = ContinuousClock.now
                let c = ledger.snapshot()
                progress("soak: t=\((ContinuousClock.now - startedAt).components.seconds)s graphs=\(graphs) executions=\(c.executions) answered=\(c.answered) rss_kib=\(ProcessResources.sample().rssKiB)")
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
            capacityErrors: c.capacityErrors, otherErrors: c.otherErrors, graphs: graphs, shutdownsInFlight: inFlight,
            compileFailures: compileFailures, hung: hung, start: startSample, end: endSample,
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
                && sample.poolThreads <= target.poolThreads { break }
        } while ContinuousClock.now - startedAt < .seconds(30)
        return sample
    }

    /// Compiles one graph, lets the submitters run it for `lifetime`, then shuts it down: with
    /// executions in flight (`inFlight`), or after pausing the submitters and letting them drain.
    /// Returns false when compile failed.
    @discardableResult
    private func cycle(shape: SoakShape, options: CompileOptions, lifetime: Duration, inFlight: Bool) async -> Bool {
        let graph: CompiledGraph<Int, SoakOutput>
        do {
            graph = try shape.graph().compile(options)
        } catch {
            return false
        }
        publish(graph)
        paused.store(false, ordering: .sequentiallyConsistent)
        try? await Task.sleep(for: lifetime)
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
        graph.shutdown()
        paused.store(false, ordering: .sequentiallyConsistent)
        return true
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
                ledger.answer(id, error: error)
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
            if round % 8 == 0 {
                // The async results stream: ids in, results in input order.
                let first = nextID.add(16, ordering: .relaxed).newValue - 15
                let ids = Array(first..<(first + 16))
                var next = 0
                for await result in graph.results(for: ids, window: 1 + round % 16) {
                    ledger.started()
                    switch result {
                    case .success(let output): ledger.answer(ids[next], carried: output)
                    case .failure(let error): ledger.answer(ids[next], error: error)
                    }
                    next += 1
                    if next == ids.count { break }
                }
                // After a shutdown the stream reports it once and ends: the rest share that answer.
                while next < ids.count { ledger.started(); ledger.answer(ids[next], error: GraphError.shutDown); next += 1 }
            } else {
                let id = nextID.add(1, ordering: .relaxed).newValue
                ledger.started()
                do {
                    ledger.answer(id, carried: try await graph.execute(id))
                } catch {
                    ledger.answer(id, error: error)
                }
            }
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
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
            switch Int.random(in: 0..<3, using: &rng) {
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
                    for id in ids[delivered...] { ledger.started(); ledger.answer(id, error: error) }
                }
            default:
                let batch: PendingBatch<SoakOutput>
                do {
                    batch = try graph.submit(contentsOf: ids)
                } catch {
                    for id in ids { ledger.started(); ledger.answer(id, error: error) }
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
            ledger.answer(id, error: error)
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
    /// Submitters inside a call (graceful shutdowns wait for zero).
    let busy = Atomic<Int>(0)

    struct Counters {
        var executions = 0, answered = 0, duplicated = 0
        var values = 0, stageFailures = 0, shutdownErrors = 0, capacityErrors = 0, otherErrors = 0
    }

    /// Zeroes every counter; only while no submitter is inside a call.
    func reset() {
        executions.store(0, ordering: .relaxed); answered.store(0, ordering: .relaxed)
        duplicated.store(0, ordering: .relaxed); values.store(0, ordering: .relaxed)
        stageFailures.store(0, ordering: .relaxed); shutdownErrors.store(0, ordering: .relaxed)
        capacityErrors.store(0, ordering: .relaxed); otherErrors.store(0, ordering: .relaxed)
    }

    func snapshot() -> Counters {
        Counters(
            executions: executions.load(ordering: .acquiring), answered: answered.load(ordering: .acquiring),
            duplicated: duplicated.load(ordering: .acquiring), values: values.load(ordering: .acquiring),
            stageFailures: stageFailures.load(ordering: .acquiring), shutdownErrors: shutdownErrors.load(ordering: .acquiring),
            capacityErrors: capacityErrors.load(ordering: .acquiring), otherErrors: otherErrors.load(ordering: .acquiring))
    }

    func started() { executions.add(1, ordering: .relaxed) }

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
        case GraphError.stageFailed:
            duplicated.add(1, ordering: .relaxed) // another execution's failure
        case GraphError.shutDown:
            answered.add(1, ordering: .relaxed); shutdownErrors.add(1, ordering: .relaxed)
        case GraphError.capacityExceeded:
            answered.add(1, ordering: .relaxed); capacityErrors.add(1, ordering: .relaxed)
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
public struct SoakFailure: Error, Sendable, Equatable {
    /// The failing execution.
    public var id: Int
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

    func graph() -> Graph<Int, SoakOutput> {
        switch self {
        case .echo:
            return Graph(input: Int.self) { x in
                x.then(name: "echo") { id -> SoakOutput in
                    if soakShouldFail(id, salt: 1) { throw SoakFailure(id: id) }
                    return SoakOutput(id: id, check: id &* 3 &+ 1, shape: 0)
                }
            }
        case .chain:
            return Graph(input: Int.self) { x in
                x.then(name: "a") { ($0, $0 &+ 1) }
                    .then(SoakCounter(), name: "b")
                    .then(name: "c") { id, v -> SoakOutput in
                        if soakShouldFail(id, salt: 2) { throw SoakFailure(id: id) }
                        return SoakOutput(id: id, check: v &- 7, shape: 1)
                    }
            }
        case .diamond:
            let calls = ActorRef(0, name: "soak-calls")
            return Graph(input: Int.self) { x in
                let a = x.then(calls, name: "double") { n, id in n &+= 1; return (id, id &* 2) }
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
                let s = x.then(name: "text") { String($0) }
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

    /// Random options that never make more threads spin than CPUs: workers are unpinned and park
    /// eagerly (the submitters already oversubscribe a small machine).
    static func options(using rng: inout SplitMix64) -> CompileOptions {
        let cpus = max(1, CPU.allowedCPUs().count)
        let capacity = 1 << Int.random(in: 0...10, using: &rng)
        let idle = IdlePolicy(workerSpins: Int.random(in: 16...512, using: &rng), callerSpins: Int.random(in: 16...512, using: &rng),
                              spinTime: .zero, parkTimeout: .milliseconds(Int.random(in: 5...50, using: &rng)))
        return CompileOptions(
            workers: Int.random(in: 1...max(1, min(2, cpus)), using: &rng), capacity: capacity, pinWorkers: false,
            idle: idle, submitTimeout: .milliseconds(Int.random(in: 50...2_000, using: &rng)),
            placement: [.automatic, .spread, .singleWorker].randomElement(using: &rng)!,
            batchSize: [1, 4, 32, 256].randomElement(using: &rng)!,
            useIORing: Int.random(in: 0..<4, using: &rng) != 0)
    }
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
