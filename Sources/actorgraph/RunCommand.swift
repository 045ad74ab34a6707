import ActorGraph
import ActorGraphExamples
import ArgumentParser

/// `actorgraph run NAME`: compile, execute, print the results and the latency percentiles.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Compile an example graph, execute it and print its results and latency percentiles.",
        discussion: """
            Every execution is timed from submit to result (blocking `execute`, one at a time), and the \
            percentiles are taken over all of them. `actorgraph list --inputs` shows what --input each \
            graph accepts.
            """
    )

    @Argument(help: "The example graph to run (see `actorgraph list`).")
    var name = "echo"

    @Option(
        help: "The graph's input, parsed by the example (e.g. an integer for echo, query text for embedding-query)."
    )
    var input: String?

    @Option(help: "Executions to run (default: the example's, e.g. 100000 for echo).")
    var count: Int?

    @Flag(help: "Run on the dynamic task path (one Swift task per node per execution) instead of compiling.")
    var dynamic = false

    @Flag(help: "Call every stage in order on this thread instead of compiling (the sequential baseline).")
    var sequential = false

    @Flag(help: "Compile and pipeline: up to 64 executions submitted ahead of the one waited for.")
    var pipelined = false

    @Option(help: "Show the results of this many executions (the first ones).")
    var results = 5

    @OptionGroup(title: "Compile options")
    var engine: EngineOptions

    func run() async throws {
        let example = try CLI.example(named: name)
        if [dynamic, sequential, pipelined].filter({ $0 }).count > 1 {
            throw CLI.fail("--dynamic, --sequential and --pipelined cannot be combined", code: .validationFailure)
        }
        let count = self.count ?? example.defaultCount
        if count < 1 { throw CLI.fail("--count must be at least 1 (got \(count))", code: .validationFailure) }
        if results < 0 { throw CLI.fail("--results must not be negative (got \(results))", code: .validationFailure) }
        let mode: ExampleExecutionMode =
            dynamic ? .dynamic : sequential ? .sequential : pipelined ? .pipelined : .compiled

        let options = ExampleRunOptions(
            count: count,
            input: input,
            compileOptions: engine.compileOptions,
            mode: mode,
            resultLimit: results,
            progress: { line in CLI.printError("  … \(line)") }
        )
        print("\(example.name): \(count) execution(s) on the \(mode.rawValue) path")
        let report: ExampleRunReport
        do {
            report = try await example.run(options)
        } catch {
            throw CLI.fail(error)
        }

        for line in report.lines { print("  \(line)") }
        if report.omittedExecutions > 0 {
            print("  … results of \(report.omittedExecutions) more execution(s) not shown (--results N shows more)")
        }
        for note in report.notes { print(note) }
        let latency = report.latency
        print("latency: \(latency.formatted)")
        if report.elapsedNanoseconds > 0 {
            let perSecond = Double(report.executions) * 1e9 / Double(report.elapsedNanoseconds)
            print(
                "throughput: \(Self.rate(perSecond)) executions/s back to back, mean \(LatencySummary.format(UInt64(latency.mean.rounded())))"
            )
        }
        if engine.stats {
            if let statistics = report.statistics {
                print("statistics per node (stage: time inside the stage; wait: in its input ring before pick-up):")
                print(statistics.table)
            } else {
                print("statistics: none (--stats applies to the compiled and pipelined paths)")
            }
        }
    }

    static func rate(_ perSecond: Double) -> String {
        if perSecond >= 1e6 { return LatencySummary.threeDigits(perSecond / 1e6) + " M" }
        if perSecond >= 1e3 { return LatencySummary.threeDigits(perSecond / 1e3) + " k" }
        return LatencySummary.threeDigits(perSecond)
    }
}
