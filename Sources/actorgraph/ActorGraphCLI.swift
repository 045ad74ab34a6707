import ActorGraph
import ActorGraphBenchSuite
import ActorGraphExamples
import ActorGraphReliability
import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The program's entry: first the one line isolated workers need (in a worker child it runs the
/// worker and never returns), then the command line.
@main
enum Entry {
    static func main() async {
        IsolatedWorker.runIfChild(graphs: {
            ExampleCatalog.isolatableGraphs + BenchSuite.isolatableGraphs + Soak.isolatableGraphs
        })
        await ActorGraphCLI.main()
    }
}

/// `actorgraph`: list, run, describe and benchmark the example graphs in Graphs/.
struct ActorGraphCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actorgraph",
        abstract: "Run, inspect and benchmark ActorGraph example graphs.",
        discussion: """
            Start with `actorgraph list`, then `actorgraph run diamond` (compile, execute, print the \
            results and latency percentiles) and `actorgraph describe diamond` (placement and channels \
            as Graphviz DOT). With no subcommand, `actorgraph` runs `run`.
            """,
        subcommands: [
            ListCommand.self,
            RunCommand.self,
            DescribeCommand.self,
            BenchCommand.self,
            ServeCommand.self,
            LoadCommand.self,
            SoakCommand.self,
            FuzzUDPCommand.self,
            FaultsCommand.self,
            TcpPingPongCommand.self,
            PieceCommand.self,
            ClusterCommand.self,
            RemoteBenchCommand.self,
        ],
        defaultSubcommand: RunCommand.self
    )

    /// Parses and runs the command. A bad command line is reported in one line
    /// (`actorgraph: error: …`, then a non-zero exit), not ArgumentParser's usage block; `--help`
    /// still prints the full help.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)  // --help, --version: the full text
            }
            let message =
                self.message(for: error)
                .split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            if !message.isEmpty {
                let trimmed = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
                CLI.printError("actorgraph: error: \(trimmed) (see `actorgraph help`)")
            }
            Glibc.exit(code.rawValue)
        }
    }
}

/// Compile options shared by `run` and `describe`.
struct EngineOptions: ParsableArguments {
    @Option(help: "Worker threads (default: fits the machine, one fewer than the CPUs, at least one).")
    var workers: Int?

    @Option(help: "Channel capacity: executions in flight at most (rounded up to a power of two).")
    var capacity: Int = 1024

    @Flag(inversion: .prefixedNo, help: "Pin each worker thread to its own CPU.")
    var pin = true

    @Option(help: "How idle workers and waiting callers wait: adaptive (default), busy-spin, yielding or blocking.")
    var waitStrategy: WaitStrategyArgument = .adaptive

    @Flag(
        help:
            "Run every worker in its own child process over the shared memory (isolation .processes): a crashing stage is answered with a typed error and its worker restarted."
    )
    var isolated = false

    @Flag(help: "Record per-stage statistics (counts, stage time, channel wait, parks) and print them at the end.")
    var stats = false

    @Option(help: "With --stats: time one execution in N (rounded up to a power of two; counts are always exact).")
    var statsEvery = 16

    @Option(
        name: .customLong("host"),
        help: ArgumentHelp(
            "A host the graph may span: NAME=IP:PORT, where `actorgraph piece --listen IP:PORT` runs (repeat for more hosts or more addresses of one host).",
            valueName: "name=ip:port"
        )
    )
    var hosts: [String] = []

    @Option(
        name: .customLong("place"),
        help: ArgumentHelp(
            "Run a node on a host: NODE=HOST (repeatable; node names: `actorgraph describe NAME`).",
            valueName: "node=host"
        )
    )
    var placements: [String] = []

    func validate() throws {
        for host in hosts {
            let kv = host.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty, PieceAddress(kv[1]) != nil else {
                throw ValidationError("--host must be NAME=IP:PORT (got '\(host)')")
            }
        }
        for placement in placements {
            let kv = placement.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else {
                throw ValidationError("--place must be NODE=HOST (got '\(placement)')")
            }
        }
        // 0 or a negative sampling period was accepted silently.
        guard statsEvery >= 1 && statsEvery <= 1 << 30 else {
            throw ValidationError("--stats-every must be 1...\(1 << 30) (got \(statsEvery))")
        }
    }

    var compileOptions: CompileOptions {
        var options = CompileOptions(
            workers: workers,
            capacity: capacity,
            pinWorkers: pin,
            idle: IdlePolicy(strategy: waitStrategy.strategy),
            isolation: isolated ? .processes : .threads
        )
        options.statistics = stats ? .sampled(every: statsEvery) : .off
        for host in hosts {
            let kv = host.split(separator: "=", maxSplits: 1).map(String.init)
            if let address = PieceAddress(kv[1]) { options.remote.hosts[kv[0], default: []].append(address) }
        }
        for placement in placements {
            let kv = placement.split(separator: "=", maxSplits: 1).map(String.init)
            options.remote.placement[kv[0]] = kv[1]
        }
        return options
    }
}

/// `--wait-strategy` values.
enum WaitStrategyArgument: String, ExpressibleByArgument, CaseIterable {
    case adaptive
    case busySpin = "busy-spin"
    case yielding, blocking

    var strategy: WaitStrategy {
        switch self {
        case .adaptive: .adaptive
        case .busySpin: .busySpin
        case .yielding: .yielding
        case .blocking: .blocking
        }
    }
}

/// User-facing failures: one line on stderr, then a non-zero exit, never a stack trace.
enum CLI {
    /// Writes `actorgraph: error: MESSAGE` to stderr and returns the exit code to throw.
    static func fail(_ message: String, code: ExitCode = .failure) -> ExitCode {
        printError("actorgraph: error: \(message)")
        return code
    }

    /// Writes one line to stderr.
    static func printError(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }

    /// The example called `name`, or an `unknown graph` failure listing the names.
    static func example(named name: String) throws -> ExampleGraph {
        guard let example = ExampleCatalog.named(name) else {
            throw fail(
                "unknown graph '\(name)' (available: \(ExampleCatalog.names); see `actorgraph list`)",
                code: .validationFailure
            )
        }
        return example
    }

    /// Turns an error thrown by an example into its one-line failure.
    static func fail(_ error: any Error) -> ExitCode {
        switch error {
        case let exit as ExitCode: return exit
        case let input as ExampleInputError: return fail(input.description, code: .validationFailure)
        case let compile as CompileError: return fail(compile.description)
        case let execution as ExecutionError: return fail(execution.description)
        default: return fail(String(describing: error))
        }
    }
}
