import ActorGraph
import ActorGraphPlatform

// The catalog of example graphs `actorgraph list | run | describe` works with. Each example lives
// in its own file in Graphs/ and exposes a public `graph(...)` builder (for tests and benchmarks)
// and an `ExampleGraph` entry (for the command).

/// Which execution path `run` drives the graph through.
public enum ExampleExecutionMode: String, Sendable, CaseIterable {
    /// `graph.compile(...)`: preallocated rings between pinned workers (the default).
    case compiled
    /// `graph.dynamic()`: one Swift Concurrency task per node per execution (Ray's classic path).
    case dynamic
    /// `graph.sequential()`: every stage called in order on the caller's thread.
    case sequential
    /// `graph.compile(...)`, pipelined: up to 64 executions submitted ahead of the one waited for
    /// (pending executions kept in a noncopyable `UniqueArray`, no unsafe code); each latency runs
    /// from its submit to its result.
    case pipelined
}

/// How `ExampleGraph.run` executes an example.
public struct ExampleRunOptions: Sendable {
    /// Executions to run, back to back (each one's latency is measured).
    public var count: Int
    /// The example's input as typed on the command line (`--input`); `nil` uses the example's default.
    public var input: String?
    /// How the graph is compiled (ignored by the dynamic and sequential paths).
    public var compileOptions: CompileOptions
    /// Which execution path runs the graph.
    public var mode: ExampleExecutionMode
    /// Result lines are kept for this many executions (the first ones); later results are only counted.
    public var resultLimit: Int
    /// Called about every 10% of a long run with a one-line status.
    public var progress: @Sendable (String) -> Void
    /// Runs of at least this many executions may report progress...
    public var progressThreshold: Int
    /// ...once they have been running this long (quick runs stay quiet).
    public var progressDelay: Duration

    /// Creates options; the defaults run one compiled execution of the example's default input.
    public init(
        count: Int = 1,
        input: String? = nil,
        compileOptions: CompileOptions = CompileOptions(),
        mode: ExampleExecutionMode = .compiled,
        resultLimit: Int = 5,
        progressThreshold: Int = 1_000,
        progressDelay: Duration = .milliseconds(500),
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.count = count
        self.input = input
        self.compileOptions = compileOptions
        self.mode = mode
        self.resultLimit = resultLimit
        self.progressThreshold = progressThreshold
        self.progressDelay = progressDelay
        self.progress = progress
    }
}

/// What one `run` of an example produced.
public struct ExampleRunReport: Sendable {
    /// Result lines of the first `resultLimit` executions, in execution order.
    public var lines: [String]
    /// Every execution's round-trip latency (submit to result), in execution order.
    public var latenciesNanoseconds: [UInt64]
    /// Facts about the run: the path and placement used, the final state of stateful actors...
    public var notes: [String]
    /// Executions run.
    public var executions: Int
    /// Executions whose lines are not in `lines` (beyond `resultLimit`).
    public var omittedExecutions: Int
    /// Wall time of the measured loop.
    public var elapsedNanoseconds: UInt64
    /// The compiled graph's statistics at the end of the run, when compiled with
    /// ``CompileOptions/statistics`` on (`nil` otherwise, and on the dynamic and sequential paths).
    public var statistics: GraphStatistics?
    /// The compiled graph's DOT labelled with those statistics (`nil` without them).
    public var statisticsDOT: String?

    /// A report from its parts; `executions` defaults to the number of latencies.
    public init(
        lines: [String] = [],
        latenciesNanoseconds: [UInt64] = [],
        notes: [String] = [],
        executions: Int? = nil,
        omittedExecutions: Int = 0,
        elapsedNanoseconds: UInt64 = 0,
        statistics: GraphStatistics? = nil,
        statisticsDOT: String? = nil
    ) {
        self.lines = lines
        self.latenciesNanoseconds = latenciesNanoseconds
        self.notes = notes
        self.executions = executions ?? latenciesNanoseconds.count
        self.omittedExecutions = omittedExecutions
        self.elapsedNanoseconds = elapsedNanoseconds
        self.statistics = statistics
        self.statisticsDOT = statisticsDOT
    }

    /// Percentiles of `latenciesNanoseconds`.
    public var latency: LatencySummary { LatencySummary(latenciesNanoseconds) }
}

/// One runnable example graph.
public struct ExampleGraph: Sendable {
    /// The name `actorgraph run NAME` takes.
    public let name: String
    /// One line for `actorgraph list`.
    public let summary: String
    /// What `--input` accepts, and its default.
    public let inputHelp: String
    /// Executions `run` makes when no `--count` is given.
    public let defaultCount: Int
    /// Compiles (or builds the dynamic/sequential path), executes `count` times and reports.
    public let run: @Sendable (ExampleRunOptions) async throws -> ExampleRunReport
    /// Compiles the graph with the options and returns `compiled.dot()` (then shuts it down).
    public let describe: @Sendable (CompileOptions) throws -> String

    /// A catalog entry from its parts.
    public init(
        name: String,
        summary: String,
        inputHelp: String = "",
        defaultCount: Int = 1,
        run: @escaping @Sendable (ExampleRunOptions) async throws -> ExampleRunReport,
        describe: @escaping @Sendable (CompileOptions) throws -> String
    ) {
        self.name = name
        self.summary = summary
        self.inputHelp = inputHelp
        self.defaultCount = defaultCount
        self.run = run
        self.describe = describe
    }
}

/// Every example graph, by name.
public enum ExampleCatalog {
    /// The examples, in the order `actorgraph list` shows them.
    public static var all: [ExampleGraph] {
        [
            EchoExample.example,
            ChainExample.example,
            DiamondExample.example,
            EmbeddingQueryExample.example,
            TelematicsExample.example,
        ]
    }

    /// The graphs a worker process may have to rebuild (``IsolatedWorker/runIfChild(graphs:)``):
    /// every example, plus the `faults` graph. (The embedding-query example's `String`s, token
    /// lists and hits cross its worker processes encoded: they are `WireEncodable`.)
    public static var isolatableGraphs: [any IsolatableGraph] {
        [
            EchoExample.graph(),
            ChainExample.graph(),
            DiamondExample.graph(),
            EmbeddingQueryExample.graph(index: EmbeddingQueryExample.makeIndex()),
            TelematicsGraph.graph(sink: ActorRef(AlertSink(), name: "alerts")),
            FaultInjection.graph(),
        ]
    }

    /// The example called `name`, if any.
    public static func named(_ name: String) -> ExampleGraph? {
        all.first { $0.name == name }
    }

    /// The example names, comma separated (for error messages).
    public static var names: String { all.map(\.name).joined(separator: ", ") }
}

/// A user mistake in an example's input, reported as one line.
public struct ExampleInputError: Error, CustomStringConvertible, Sendable {
    /// The example's name.
    public let example: String
    /// The `--input` text as given.
    public let input: String
    /// Why it was rejected.
    public let reason: String

    /// An error from its three parts.
    public init(example: String, input: String, reason: String) {
        self.example = example
        self.input = input
        self.reason = reason
    }

    /// `invalid --input 'INPUT' for EXAMPLE: REASON`.
    public var description: String { "invalid --input '\(input)' for \(example): \(reason)" }
}

// MARK: - Input parsing helpers

extension ExampleInputError {
    /// Parses an integer input (`--input 41`), or returns `defaultValue` when none was given.
    public static func parseInt(_ input: String?, example: String, default defaultValue: Int) throws -> Int {
        guard let input else { return defaultValue }
        guard let value = Int(input.trimmingSpaces()) else {
            throw ExampleInputError(example: example, input: input, reason: "expected an integer, e.g. --input 41")
        }
        return value
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

// MARK: - Latency summary

/// Percentiles of a series of latencies, nearest-rank on the sorted samples.
public struct LatencySummary: Sendable, Equatable {
    /// Samples summarized.
    public var count: Int
    /// The smallest sample.
    public var min: UInt64
    /// Median (nearest rank).
    public var p50: UInt64
    /// 99th percentile (nearest rank).
    public var p99: UInt64
    /// 99.9th percentile (nearest rank).
    public var p999: UInt64
    /// The largest sample.
    public var max: UInt64
    /// Arithmetic mean of the samples.
    public var mean: Double

    /// Summarizes `samples` (any order). All zero when empty.
    public init(_ samples: [UInt64]) {
        let sorted = samples.sorted()
        count = sorted.count
        guard !sorted.isEmpty else {
            min = 0
            p50 = 0
            p99 = 0
            p999 = 0
            max = 0
            mean = 0
            return
        }
        func percentile(_ p: Double) -> UInt64 {
            let rank = Int((p / 100 * Double(sorted.count) - 1e-9).rounded(.up))  // 99.9% of 1000 is rank 999
            return sorted[Swift.min(Swift.max(rank, 1), sorted.count) - 1]
        }
        min = sorted[0]
        p50 = percentile(50)
        p99 = percentile(99)
        p999 = percentile(99.9)
        max = sorted[sorted.count - 1]
        var total: Double = 0
        for s in sorted { total += Double(s) }
        mean = total / Double(sorted.count)
    }

    /// `"p50 412 ns  p99 1.20 µs  p99.9 8.31 µs  max 40.2 µs  (n=100000)"`.
    public var formatted: String {
        "p50 \(Self.format(p50))  p99 \(Self.format(p99))  p99.9 \(Self.format(p999))  max \(Self.format(max))  (n=\(count))"
    }

    /// A duration in ns, µs, ms or s with three significant digits.
    public static func format(_ nanoseconds: UInt64) -> String {
        let ns = Double(nanoseconds)
        if ns < 1_000 { return "\(nanoseconds) ns" }
        if ns < 1_000_000 { return "\(threeDigits(ns / 1_000)) µs" }
        if ns < 1_000_000_000 { return "\(threeDigits(ns / 1_000_000)) ms" }
        return "\(threeDigits(ns / 1_000_000_000)) s"
    }

    /// `x` with three significant digits (two decimals below 10, one below 100).
    public static func threeDigits(_ x: Double) -> String {
        let decimals = x >= 100 ? 0 : (x >= 10 ? 1 : 2)
        return fixed(x, decimals: decimals)
    }

    /// `x` with exactly `decimals` decimals: `fixed(0.61249, decimals: 3)` → `"0.612"`.
    public static func fixed(_ x: Double, decimals: Int) -> String {
        guard x.isFinite else { return String(x) }
        if x < 0 {
            let positive = fixed(-x, decimals: decimals)
            return positive.allSatisfy { $0 == "0" || $0 == "." } ? positive : "-" + positive
        }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (x * scale).rounded() / scale
        if decimals == 0 { return String(Int(rounded)) }
        let whole = Int(rounded)
        let fraction = Int(((rounded - Double(whole)) * scale).rounded())
        var digits = String(fraction)
        while digits.count < decimals { digits = "0" + digits }
        return "\(whole).\(digits)"
    }
}
