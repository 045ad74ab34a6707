import ActorGraphExamples
import ArgumentParser
import Foundation

/// `actorgraph describe NAME`: placement and channels as Graphviz DOT on stdout; files only with `--output`.
struct DescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract:
            "Print a graph's placement and channels as Graphviz DOT; with --output DIR, also write NAME.dot and NAME.svg/png there.",
        discussion: """
            The DOT (from `compiled.dot()`) goes to stdout and nothing is written unless --output is \
            given: then NAME.dot goes to that directory and, when Graphviz `dot` is on the PATH, NAME.svg \
            and NAME.png next to it. Status lines go to stderr. With --stats, a short workload runs first \
            (--count executions) and every node and ring is labelled with its measured figures (count, \
            failures, stage and channel-wait p50/p99).
            """
    )

    @Option(help: "With --stats: executions of the short workload (default: the example's, at most 20000).")
    var count: Int?

    @Argument(help: "The example graph to describe (see `actorgraph list`).")
    var name: String

    @Option(help: "Also write NAME.dot (and NAME.svg, NAME.png when Graphviz is installed) into this directory.")
    var output: String?

    /// Accepted so that existing command lines keep working; nothing is written without --output.
    @Flag(help: .hidden)
    var noFiles = false

    @OptionGroup(title: "Compile options")
    var engine: EngineOptions

    func run() async throws {
        let example = try CLI.example(named: name)
        var dot: String
        do {
            if engine.stats {
                let count = self.count ?? min(example.defaultCount, 20_000)
                if count < 1 { throw CLI.fail("--count must be at least 1 (got \(count))", code: .validationFailure) }
                let report = try await example.run(
                    ExampleRunOptions(
                        count: count,
                        compileOptions: engine.compileOptions,
                        mode: .compiled,
                        resultLimit: 0
                    )
                )
                guard let labelled = report.statisticsDOT, let statistics = report.statistics else {
                    throw CLI.fail("no statistics came back from the compiled run")
                }
                dot = labelled
                CLI.printError("measured over \(report.executions) execution(s):\n" + statistics.table)
            } else {
                dot = try example.describe(engine.compileOptions)
            }
        } catch {
            throw CLI.fail(error)
        }
        print(dot, terminator: dot.hasSuffix("\n") ? "" : "\n")
        guard let output, !noFiles else { return }

        let directory = URL(fileURLWithPath: output, isDirectory: true)
        let dotFile = directory.appendingPathComponent("\(example.name).dot")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try dot.write(to: dotFile, atomically: true, encoding: .utf8)
        } catch {
            throw CLI.fail("cannot write \(dotFile.path): \(error.localizedDescription)")
        }
        CLI.printError("wrote \(dotFile.path)")

        guard let graphviz = Self.findExecutable("dot") else {
            CLI.printError(
                "Graphviz `dot` is not on the PATH: no SVG/PNG rendered (install it with `apt-get install graphviz`)"
            )
            return
        }
        for format in ["svg", "png"] {
            let image = directory.appendingPathComponent("\(example.name).\(format)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: graphviz)
            process.arguments = ["-T\(format)", dotFile.path, "-o", image.path]
            do {
                try process.run()
                process.waitUntilExit()
            } catch {
                throw CLI.fail("cannot run \(graphviz): \(error.localizedDescription)")
            }
            guard process.terminationStatus == 0 else {
                throw CLI.fail("\(graphviz) -T\(format) exited with status \(process.terminationStatus)")
            }
            CLI.printError("wrote \(image.path)")
        }
    }

    /// The first executable called `name` in a directory of `$PATH`.
    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
