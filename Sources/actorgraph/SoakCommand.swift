import ActorGraph
import ActorGraphReliability
import ArgumentParser
import Logging

/// `actorgraph soak`: concurrent submitters, random failures, compile/shutdown cycles; counts every
/// execution and answer and checks the process for leaks. Exits non-zero when anything is off.
struct SoakCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Soak the compiled engine: count every execution and answer, check for leaks.",
        discussion: """
            Blocking, async (execute and the results stream), pipelined and batch submitters drive a sequence of compiled graphs (random shapes, \
            options and stage failures), each shut down after a random time, usually with executions in \
            flight. About one graph in three runs its workers as child processes (isolation .processes, \
            off with --no-processes) while they are killed (SIGKILL) and stopped (SIGSTOP) at random; \
            their executions must still be answered once (worker crashed, stage time limit, restarts \
            exhausted: counted by kind in the details line, with the kills, stops, crashes and restarts) and no child process may be left. Ends with `soak: executions=N answered=N lost=0 duplicated=0 rss_growth_kib=X \
            fd_growth=0 thread_growth=0 map_growth=0` and a non-zero exit when anything is \
            lost, duplicated or leaked (the engine's own mappings, memfd regions and io_uring rings, must \
            return exactly; other mappings may grow by what glibc and the Swift runtime keep, up to 16 lines).
            """
    )

    @Option(help: "How long to run: 90s, 10m, 500ms or plain seconds (default 60s; --quick: 25s).")
    var duration: SoakDuration?

    @Flag(help: "A short run for CI (25 s).")
    var quick = false

    @Option(help: "Seed for every random choice (default: random, printed).")
    var seed: UInt64?

    @Option(help: "Threads calling the blocking execute.")
    var blocking = 1

    @Option(name: .customLong("async"), help: "Tasks calling the async execute.")
    var asyncSubmitters = 2

    @Option(help: "Threads pipelining submit/wait.")
    var pipelined = 1

    @Option(help: "Threads using submit(contentsOf:) and executeAll.")
    var batch = 1

    @Flag(
        inversion: .prefixedNo,
        help: "Run about one graph in three with process workers and kill/stop them at random."
    )
    var processes = true

    @Flag(
        help:
            "Print the engine's warning for every worker death and restart (default: only errors; they are counted in the details line)."
    )
    var logFaults = false

    func validate() throws {
        for (name, value) in [
            ("--blocking", blocking), ("--async", asyncSubmitters), ("--pipelined", pipelined), ("--batch", batch),
        ] where !(0...64).contains(value) {
            throw ValidationError("\(name) must be 0...64 (got \(value))")
        }
        if blocking + asyncSubmitters + pipelined + batch == 0 {
            throw ValidationError("at least one submitter is needed")
        }
        if quick && duration != nil { throw ValidationError("--quick and --duration cannot be combined") }
    }

    func run() async throws {
        // Injected faults make the engine log a warning per worker death; keep errors only unless asked.
        let level: Logger.Level = logFaults ? .info : .error
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var configuration = Soak.Configuration(
            duration: duration?.value ?? (quick ? .seconds(25) : .seconds(60)),
            blockingSubmitters: blocking,
            asyncSubmitters: asyncSubmitters,
            pipelinedSubmitters: pipelined,
            batchSubmitters: batch
        )
        if let seed { configuration.seed = seed }
        if processes {
            // Default on where process workers work (this program is their entry: see Entry.main).
            if let why = Soak.processWorkersUnavailable(workerExecutable: nil) {
                print("soak: process workers unavailable here (\(why)): threads only")
            } else {
                configuration.processGraphs = true
            }
        }
        print(
            "soak: duration=\(configuration.duration) submitters blocking=\(blocking) async=\(asyncSubmitters) pipelined=\(pipelined) batch=\(batch) processes=\(configuration.processGraphs ? "1/\(configuration.processGraphEvery) of graphs" : "off") seed=\(configuration.seed)"
        )
        let report = await Soak(configuration).run { line in print(line) }
        print(report.details)
        print(report.description)
        if !report.passed {
            print("soak: FAILED: " + report.failedChecks.joined(separator: "; "))
            throw ExitCode.failure
        }
    }
}

/// A duration on the command line: `90s`, `10m`, `500ms`, `1h` or plain seconds.
struct SoakDuration: ExpressibleByArgument {
    var value: Duration

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(argument)
        var scale = 1.0
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            number = argument.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let n = Double(number), n.isFinite, n > 0, n * scale <= 7 * 86_400 else { return nil }
        value = .nanoseconds(Int64(n * scale * 1e9))
    }

    static var defaultValueDescription: String { "60s" }
}
