import ActorGraph
import ActorGraphPlatform
import BasicContainers

/// Runs an example graph `count` times on the chosen path, timing every execution: the shared
/// engine behind each catalog entry's `run`.
public enum ExampleDriver {
    /// Builds the chosen path for `graph`, runs execution `i` on `input(i)` for `i` in `0..<count`,
    /// and keeps `format(input, output)` for the first `resultLimit` executions. `finally` runs after
    /// the graph is shut down (read stateful actors there) and its lines become notes.
    public static func run<Input, Output>(
        _ graph: Graph<Input, Output>,
        example: String,
        options: ExampleRunOptions,
        input: (Int) -> Input,
        format: @escaping (Input, Output) -> [String],
        finally: () throws -> [String] = { [] }
    ) async throws -> ExampleRunReport {
        guard options.count >= 1 else {
            throw ExampleInputError(
                example: example,
                input: String(options.count),
                reason: "--count must be at least 1"
            )
        }
        var recorder = RunRecorder(example: example, options: options, format: format)
        var notes: [String] = []
        var statistics: GraphStatistics? = nil
        var statisticsDOT: String? = nil
        let start = MonotonicClock.now()
        switch options.mode {
        case .compiled:
            let compiled = try graph.compile(options.compileOptions)
            defer { compiled.shutdown() }
            try runBlocking(options.count, input: input, recorder: &recorder) { x throws(ExecutionError) in
                try compiled.execute(x)
            }
            notes.append(describePlacement(compiled))
            statistics = compiled.statistics
            statisticsDOT = statistics.map { compiled.dot(statistics: $0) }
            let cpus = compiled.effectiveCPUs
            notes.append("effective CPUs: \(cpus)")
            if Double(compiled.workerCount + 1) > cpus.cpus {
                notes.append(
                    "warning: \(compiled.workerCount) worker(s) + the calling thread want more than the "
                        + "\(CgroupCPU.formatCPUs(cpus.cpus)) effective CPU(s): oversubscribed, so idle threads "
                        + (cpus.isQuotaLimited
                            ? "take turns or park to stay under the CPU quota" : "yield to each other")
                        + " (wait strategy \(compiled.waitStrategy))"
                        + (compiled.workerCount > 1 ? "; fewer --workers is faster" : "")
                )
            }
        case .pipelined:
            let compiled = try graph.compile(options.compileOptions)
            defer { compiled.shutdown() }
            let window = min(64, compiled.capacity)
            notes.append("pipelined: up to \(window) executions in flight (submit ahead, wait behind, in order)")
            try runPipelined(options.count, window: window, compiled: compiled, input: input, recorder: &recorder)
            notes.append(describePlacement(compiled))
            statistics = compiled.statistics
            statisticsDOT = statistics.map { compiled.dot(statistics: $0) }
        case .dynamic:
            let dynamic = try graph.dynamic()
            defer { dynamic.shutdown() }
            notes.append("path: dynamic (one Swift Concurrency task per node per execution)")
            for i in 0..<options.count {
                let x = input(i)
                let t0 = MonotonicClock.now()
                let y = try await dynamic.execute(x)
                recorder.record(i, input: x, output: y, nanoseconds: MonotonicClock.now() &- t0)
            }
        case .sequential:
            let sequential = try graph.sequential()
            notes.append("path: sequential (every stage called in order on the caller's thread)")
            try runBlocking(options.count, input: input, recorder: &recorder) { x throws(ExecutionError) in
                try sequential.execute(x)
            }
        }
        let elapsed = MonotonicClock.now() &- start
        notes.append(contentsOf: try finally())
        return ExampleRunReport(
            lines: recorder.lines,
            latenciesNanoseconds: recorder.latencies,
            notes: notes,
            executions: options.count,
            omittedExecutions: max(0, options.count - options.resultLimit),
            elapsedNanoseconds: elapsed,
            statistics: statistics,
            statisticsDOT: statisticsDOT
        )
    }

    /// One line on where the compiled graph runs.
    public static func describePlacement<Input, Output>(_ compiled: CompiledGraph<Input, Output>) -> String {
        let segments = compiled.segments.map { "w\($0.worker)[\($0.nodes.joined(separator: "→"))]" }
        let park = Set(compiled.diagnostics.parkMechanisms).sorted().joined(separator: "/")
        var line =
            "path: compiled, \(compiled.workerCount) worker(s), \(compiled.channelCount) channel(s), "
            + "capacity \(compiled.capacity), segments \(segments.joined(separator: " ")), park: \(park.isEmpty ? "n/a" : park)"
        if case .processes = compiled.isolation {
            let pids = compiled.isolationStatistics.workerProcessIDs.map(String.init).joined(separator: ", ")
            line +=
                "\nisolation: each worker is a child process (pid \(pids)) over the shared memfd region; "
                + "stage and actor state live in the workers (an actor read here shows its state before the run)"
        }
        return line
    }

    /// Submit ahead, wait behind: the pending executions live in a `UniqueArray` used as a ring of
    /// `window` entries (a `PendingExecution` is noncopyable: one owner, one result).
    static func runPipelined<Input, Output>(
        _ count: Int,
        window: Int,
        compiled: CompiledGraph<Input, Output>,
        input: (Int) -> Input,
        recorder: inout RunRecorder<Input, Output>
    ) throws(ExecutionError) {
        var pending = UniqueArray<PendingExecution<Output>>(minimumCapacity: window)
        var inputs: [Input] = []
        var started: [UInt64] = []
        inputs.reserveCapacity(window)
        started.reserveCapacity(window)
        func finish(_ i: Int) throws(ExecutionError) {
            let slot = i % window
            let y = try pending[slot].wait()
            recorder.record(i, input: inputs[slot], output: y, nanoseconds: MonotonicClock.now() &- started[slot])
        }
        for i in 0..<count {
            let x = input(i)
            let slot = i % window
            if i >= window { try finish(i - window) }
            let t0 = MonotonicClock.now()
            let submitted = try compiled.submit(x)
            if i < window {
                pending.append(submitted)
                inputs.append(x)
                started.append(t0)
            } else {
                pending[slot] = submitted
                inputs[slot] = x
                started[slot] = t0
            }
        }
        for i in max(0, count - window)..<count { try finish(i) }
    }

    /// The blocking loop (compiled and sequential paths): a synchronous function, so `execute`
    /// resolves to the blocking overload and nothing but the call sits between the two clock reads.
    static func runBlocking<Input, Output>(
        _ count: Int,
        input: (Int) -> Input,
        recorder: inout RunRecorder<Input, Output>,
        execute: (Input) throws(ExecutionError) -> Output
    ) throws(ExecutionError) {
        for i in 0..<count {
            let x = input(i)
            let t0 = MonotonicClock.now()
            let y = try execute(x)
            recorder.record(i, input: x, output: y, nanoseconds: MonotonicClock.now() &- t0)
        }
    }
}

/// Collects latencies, the first results and progress reports of one run.
struct RunRecorder<Input, Output> {
    let example: String
    let count: Int
    let resultLimit: Int
    let progressStep: Int
    let progress: @Sendable (String) -> Void
    let progressDelay: UInt64
    let start: UInt64
    let format: (Input, Output) -> [String]
    var latencies: [UInt64] = []
    var lines: [String] = []

    init(example: String, options: ExampleRunOptions, format: @escaping (Input, Output) -> [String]) {
        self.example = example
        count = options.count
        resultLimit = options.resultLimit
        progressStep = options.count >= options.progressThreshold ? max(1, options.count / 10) : Int.max
        progress = options.progress
        progressDelay =
            UInt64(max(0, options.progressDelay.components.seconds)) * 1_000_000_000
            + UInt64(max(0, options.progressDelay.components.attoseconds) / 1_000_000_000)
        start = MonotonicClock.now()
        self.format = format
        latencies.reserveCapacity(options.count)
    }

    @inline(__always)
    mutating func record(_ i: Int, input: Input, output: Output, nanoseconds: UInt64) {
        latencies.append(nanoseconds)
        if i < resultLimit { lines.append(contentsOf: format(input, output)) }
        let done = i + 1
        if done % progressStep == 0 && done < count && MonotonicClock.now() &- start >= progressDelay {
            progress("\(example): \(done * 100 / count)% (\(done)/\(count) executions)")
        }
    }
}
