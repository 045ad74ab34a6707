import ActorGraphBenchSuite
import ArgumentParser
import CMallocCounter

/// `actorgraph bench`: the compiled graph against the dynamic task path, the sequential lower bound
/// and the machine's physical limit (pinned cache-line ping-pong), in one run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark compiled vs dynamic vs sequential execution against a cache-line ping-pong baseline.",
        discussion: """
            Prints a latency table (p50/p99/p99.9/max), ratios compiled/dynamic and compiled/ping-pong, \
            pipelined throughput, paced-load latency, allocations per execution and peak RSS; writes \
            results.json, results.csv, latency.svg and table.txt to the output directory. The last line \
            printed is the `summary:` line.
            """
    )

    @Flag(name: .long, help: "Fewer samples: finishes in well under a minute.")
    var quick = false

    @Option(name: .long, help: "Directory for results.json, results.csv, latency.svg and table.txt.")
    var output = "bench-results"

    @Option(
        name: .customLong("case"),
        help:
            "Run only this case or case prefix (repeatable): echo, chain3, chain8, diamond, fanout4, pipelined, paced, poisson, competing, idle, unpinned, serve, remote (only when selected; needs root), ... (an unknown one is refused with the list)"
    )
    var cases: [String] = []

    func validate() throws {
        if let message = BenchSuite.caseSelectionError(cases, quick: quick) { throw ValidationError(message) }
    }

    func run() async throws {
        actorgraph_malloc_counting(1)
        let counter = AllocationCounter(
            method:
                "interposed malloc/calloc/realloc/posix_memalign/aligned_alloc/memalign in the actorgraph binary, every call counted, whole process"
        ) {
            actorgraph_malloc_calls()
        }
        _ = try await BenchSuite.run(
            BenchOptions(quick: quick, outputDirectory: output, cases: cases, allocationCounter: counter)
        )
    }
}
