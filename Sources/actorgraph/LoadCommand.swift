import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import ActorGraphMetrics
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// `actorgraph serve telematics`: the telematics graph on a UDP port, fed through worker 0's io_uring.
///
/// A well-behaved service: SIGINT or SIGTERM (handlers installed with `sigaction`, so an inherited
/// SIG_IGN does not stick) stops receiving, drains the records in flight, prints the statistics and
/// exits 0. Idle, it sleeps: the worker parks on its ring (futex-wait doorbell + I/O completions).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the telematics graph over UDP (io_uring source and sink) until SIGINT/SIGTERM or --seconds pass.",
        discussion: """
        On SIGINT (Ctrl-C) or SIGTERM it stops receiving, answers every record already received, \
        prints its counters (and, with --stats or --metrics-port, the per-node statistics) and exits 0. \
        --metrics-port P serves Prometheus text on http://127.0.0.1:P/metrics.
        """)

    @Argument(help: "The graph to serve (telematics).")
    var name: String

    @Option(help: "UDP port on 127.0.0.1 (0 picks a free one).")
    var port: UInt16 = 7070

    @Option(help: "Stop after this many seconds (default: run until SIGINT/SIGTERM).")
    var seconds: Double?

    @Option(help: "Serve Prometheus metrics (text format) on this TCP port of 127.0.0.1 at /metrics (0 picks a free one); turns statistics on.")
    var metricsPort: UInt16?

    @Option(help: "The longest the drain on stop may take, in seconds.")
    var drainTimeout: Double = 5

    @OptionGroup var engine: EngineOptions

    func validate() throws {
        // A negative, NaN, infinite or huge value used to trap converting to nanoseconds.
        if let seconds, !(seconds > 0 && seconds <= 1e9) {
            throw ValidationError("--seconds must be a positive number of seconds up to 1e9 (got \(seconds))")
        }
        // Converted to milliseconds as an integer: NaN, infinite or huge values would trap.
        if !(drainTimeout >= 0 && drainTimeout <= 86_400) {
            throw ValidationError("--drain-timeout must be 0...86400 seconds (got \(drainTimeout))")
        }
    }

    func run() async throws {
        guard name == "telematics" else { throw CLI.fail("only 'telematics' has a network edge (got '\(name)')") }
        do {
            try StopSignals.install()
        } catch {
            throw CLI.fail("sigaction(SIGINT/SIGTERM): \(error)")
        }
        var options = engine.compileOptions
        if metricsPort != nil && options.statistics == .off { options.statistics = .on }
        let sink = ActorRef(AlertSink(), name: "alerts")
        let served: ServedGraph<VehicleSample, TelematicsReply>
        do {
            served = try TelematicsGraph.graph(sink: sink).serve(port: port, codec: TelematicsGraph.codec, options: options)
        } catch {
            throw CLI.fail("\(error)")
        }
        var metrics: MetricsHTTPServer? = nil
        if let metricsPort {
            let exposition = PrometheusExposition()
            do {
                metrics = try MetricsHTTPServer(port: metricsPort) { [served] in
                    exposition.render(served.compiled.statistics, service: served.statistics)
                }
            } catch {
                served.shutdown()
                throw CLI.fail("metrics endpoint on tcp 127.0.0.1:\(metricsPort): \(error)")
            }
        }
        print("serving telematics on udp 127.0.0.1:\(served.port) (records: \(SampleCodec.recordSize)-byte samples; replies: \(TelematicsReplyCodec.recordSize) bytes)")
        if let metrics { print("metrics: http://127.0.0.1:\(metrics.port)/metrics") }
        print("pid \(getpid()): SIGINT or SIGTERM stops receiving, drains and exits")
        fflush(nil)
        let deadline = seconds.map { MonotonicClock.now() + UInt64($0 * 1e9) }
        var last = ServiceStatistics()
        var lastPrint = MonotonicClock.now()
        while deadline.map({ MonotonicClock.now() < $0 }) ?? true {
            if StopSignals.received != nil { break }
            try? await Task.sleep(for: .milliseconds(100))
            if MonotonicClock.now() &- lastPrint >= 1_000_000_000 {
                lastPrint = MonotonicClock.now()
                let stats = served.statistics
                if stats != last { print(stats.description); fflush(nil); last = stats }
            }
        }
        let reason = StopSignals.received.map { "\(StopSignals.name($0)) received" } ?? "--seconds elapsed"
        served.stopReceiving()
        let inFlightAtStop = served.statistics.inFlight
        let drained = served.drain(timeout: .milliseconds(Int64(drainTimeout * 1000)))
        let final = served.statistics
        let graphStatistics = served.compiled.statistics
        metrics?.stop()
        served.shutdown()
        print("stopping: \(reason); stopped receiving, \(drained ? "drained" : "DRAIN TIMED OUT with \(final.inFlight) left of") \(inFlightAtStop) record(s) in flight")
        print("final: \(final.description)")
        try sink.withState { print("alerts: harsh_braking=\($0.harshBrakingCount) speeding=\($0.speedingCount)") }
        if let graphStatistics {
            print("statistics per node:")
            print(graphStatistics.table)
        }
        if let metrics { print("metrics: \(metrics.scrapes) scrape(s) answered") }
        fflush(nil)
        if !drained { throw CLI.fail("the drain timed out after \(drainTimeout) s") }
    }
}

/// `actorgraph load telematics`: paced UDP load over loopback, end-to-end latency percentiles, and
/// the same graph driven in-process for comparison.
struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Send telematics records over loopback UDP at a fixed rate and report end-to-end latency.",
        discussion: """
        Without --port, starts the telematics graph in this process on a free port (its io_uring \
        source and sink) and drives it; with --port, drives an `actorgraph serve telematics` running \
        elsewhere. Then runs the same graph in-process (execute) for comparison.
        """)

    @Argument(help: "The graph to load (telematics).")
    var name: String

    @Option(help: "Records per second.")
    var rate: Double = 20_000

    @Option(help: "Records to send.")
    var count: Int = 20_000

    @Option(help: "UDP port of a running `actorgraph serve telematics` (default: start one in-process).")
    var port: UInt16?

    @Option(help: "Every Nth record is deliberately malformed (short, oversized or bad magic); 0 for none.")
    var malformedEvery: Int = 0

    @OptionGroup var engine: EngineOptions

    func validate() throws {
        guard name == "telematics" else { throw ValidationError("only 'telematics' has a network edge (got '\(name)')") }
        guard rate > 0, count > 0 else { throw ValidationError("--rate and --count must be positive") }
        // An infinite rate used to trap converting the send interval to an integer.
        guard rate <= 1e8 else { throw ValidationError("--rate must be at most 1e8 records per second (got \(rate))") }
        guard malformedEvery >= 0 else { throw ValidationError("--malformed-every must be 0 (none) or positive (got \(malformedEvery))") }
    }

    func run() async throws {
        let sink = ActorRef(AlertSink(), name: "alerts")
        var served: ServedGraph<VehicleSample, TelematicsReply>? = nil
        let targetPort: UInt16
        if let port {
            targetPort = port
        } else {
            do {
                served = try TelematicsGraph.graph(sink: sink).serve(codec: TelematicsGraph.codec, options: engine.compileOptions)
            } catch {
                throw CLI.fail("\(error)")
            }
            targetPort = served!.port
        }
        print("load: \(count) records at \(Int(rate))/s to udp 127.0.0.1:\(targetPort)\(malformedEvery > 0 ? ", every \(malformedEvery)th malformed" : "")")
        let report: TelematicsLoadGenerator.Report
        do {
            report = try TelematicsLoadGenerator(port: targetPort, rate: rate, count: count, malformedEvery: malformedEvery).run()
        } catch {
            throw CLI.fail("load generator: \(error)")
        }
        if let served {
            let stats = served.statistics
            served.shutdown()
            print("server: \(stats)")
        }
        print("client: sent=\(report.sent) replies=\(report.replies) error_replies=\(report.errorReplies) missing=\(report.missing) in \(format2(report.seconds)) s")
        print("alerts in replies: harsh_braking=\(report.harshBrakingReplies) (expected \(report.expectedHarshBraking)) speeding=\(report.speedingReplies) (expected \(report.expectedSpeeding))")
        let network = LatencySummary(report.latenciesNanoseconds)
        print("end-to-end over UDP + io_uring: " + line(network))

        // The same graph, driven in-process, for comparison.
        let inProcessSink = ActorRef(AlertSink(), name: "alerts-in-process")
        let compiled = try TelematicsGraph.graph(sink: inProcessSink).compile(engine.compileOptions)
        var fleet = SyntheticFleet(vehicles: 32, seed: 42)
        var latencies: [UInt64] = []
        latencies.reserveCapacity(count)
        for i in 0..<count {
            var sample = fleet.next()
            sample.timestampMicros = UInt64(i)
            latencies.append(try Load.timedExecute(compiled, sample))
        }
        compiled.shutdown()
        let inProcess = LatencySummary(latencies)
        print("in-process execute (same graph):  " + line(inProcess))
        if inProcess.p50 > 0 {
            print("network edge adds p50 \(micros(network.p50 > inProcess.p50 ? network.p50 - inProcess.p50 : 0)) (ratio \(format2(Double(network.p50) / Double(inProcess.p50)))x)")
        }
        if report.missing > 0 { throw CLI.fail("\(report.missing) records got no reply") }
    }

    /// One blocking execution, timed (a synchronous helper: in async code `execute` means the async overload).
    static func timedExecute(_ compiled: CompiledGraph<VehicleSample, TelematicsReply>, _ sample: VehicleSample) throws -> UInt64 {
        let t0 = MonotonicClock.now()
        _ = try compiled.execute(sample)
        return MonotonicClock.now() - t0
    }

    private func line(_ s: LatencySummary) -> String {
        "n=\(s.count) p50=\(micros(s.p50)) p99=\(micros(s.p99)) p99.9=\(micros(s.p999)) max=\(micros(s.max))"
    }

    private func micros(_ ns: UInt64) -> String { ns < 10_000 ? "\(ns) ns" : "\(format2(Double(ns) / 1000)) µs" }
}

func format2(_ x: Double) -> String {
    let scaled = (x * 100).rounded() / 100
    return "\(scaled)"
}
