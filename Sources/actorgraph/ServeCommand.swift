import ActorGraph
import ActorGraphExamples
import ActorGraphMetrics
import ActorGraphPlatform
import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `actorgraph serve telematics`: the telematics graph on a UDP port, fed through worker 0's io_uring.
///
/// A well-behaved service: SIGINT or SIGTERM (handlers installed with `sigaction`, so an inherited
/// SIG_IGN does not stick) stops receiving, drains the records in flight, prints the statistics and
/// exits 0. Idle, it sleeps: the worker parks on its ring (futex-wait doorbell + I/O completions).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "Serve the telematics graph over UDP (io_uring source and sink) until SIGINT/SIGTERM or --seconds pass.",
        discussion: """
            On SIGINT (Ctrl-C) or SIGTERM it stops receiving, answers every record already received, \
            prints its counters (and, with --stats or --metrics-port, the per-node statistics) and exits 0. \
            --metrics-port P serves Prometheus text on http://127.0.0.1:P/metrics.
            """
    )

    @Argument(help: "The graph to serve (telematics).")
    var name: String

    @Option(help: "UDP port on 127.0.0.1 (0 picks a free one).")
    var port: UInt16 = 7070

    @Option(help: "Stop after this many seconds (default: run until SIGINT/SIGTERM).")
    var seconds: Double?

    @Option(
        help:
            "Serve Prometheus metrics (text format) on this TCP port of 127.0.0.1 at /metrics (0 picks a free one); turns statistics on."
    )
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
            served = try TelematicsGraph.graph(sink: sink).serve(
                port: port,
                codec: TelematicsGraph.codec,
                options: options
            )
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
        print(
            "serving telematics on udp 127.0.0.1:\(served.port) (records: \(SampleCodec.recordSize)-byte samples; replies: \(TelematicsReplyCodec.recordSize) bytes)"
        )
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
                if stats != last {
                    print(stats.description)
                    fflush(nil)
                    last = stats
                }
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
        print(
            "stopping: \(reason); stopped receiving, \(drained ? "drained" : "DRAIN TIMED OUT with \(final.inFlight) left of") \(inFlightAtStop) record(s) in flight"
        )
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
