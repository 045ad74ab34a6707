import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import ArgumentParser

/// `actorgraph load telematics`: paced UDP load over loopback, end-to-end latency percentiles, and
/// the same graph driven in-process for comparison.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Send telematics records over loopback UDP at a fixed rate and report end-to-end latency.",
        discussion: """
            Without --port, starts the telematics graph in this process on a free port (its io_uring \
            source and sink) and drives it; with --port, drives an `actorgraph serve telematics` running \
            elsewhere. Then runs the same graph in-process (execute) for comparison.
            """
    )

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
        guard name == "telematics" else {
            throw ValidationError("only 'telematics' has a network edge (got '\(name)')")
        }
        guard rate > 0, count > 0 else { throw ValidationError("--rate and --count must be positive") }
        // An infinite rate used to trap converting the send interval to an integer.
        guard rate <= 1e8 else { throw ValidationError("--rate must be at most 1e8 records per second (got \(rate))") }
        guard malformedEvery >= 0 else {
            throw ValidationError("--malformed-every must be 0 (none) or positive (got \(malformedEvery))")
        }
    }

    func run() async throws {
        let sink = ActorRef(AlertSink(), name: "alerts")
        var served: ServedGraph<VehicleSample, TelematicsReply>? = nil
        let targetPort: UInt16
        if let port {
            targetPort = port
        } else {
            do {
                served = try TelematicsGraph.graph(sink: sink).serve(
                    codec: TelematicsGraph.codec,
                    options: engine.compileOptions
                )
            } catch {
                throw CLI.fail("\(error)")
            }
            targetPort = served!.port
        }
        print(
            "load: \(count) records at \(Int(rate))/s to udp 127.0.0.1:\(targetPort)\(malformedEvery > 0 ? ", every \(malformedEvery)th malformed" : "")"
        )
        let report: TelematicsLoadGenerator.Report
        do {
            report = try TelematicsLoadGenerator(
                port: targetPort,
                rate: rate,
                count: count,
                malformedEvery: malformedEvery
            ).run()
        } catch {
            throw CLI.fail("load generator: \(error)")
        }
        if let served {
            let stats = served.statistics
            served.shutdown()
            print("server: \(stats)")
        }
        print(
            "client: sent=\(report.sent) replies=\(report.replies) error_replies=\(report.errorReplies) missing=\(report.missing) in \(format2(report.seconds)) s"
        )
        print(
            "alerts in replies: harsh_braking=\(report.harshBrakingReplies) (expected \(report.expectedHarshBraking)) speeding=\(report.speedingReplies) (expected \(report.expectedSpeeding))"
        )
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
            latencies.append(try LoadCommand.timedExecute(compiled, sample))
        }
        compiled.shutdown()
        let inProcess = LatencySummary(latencies)
        print("in-process execute (same graph):  " + line(inProcess))
        if inProcess.p50 > 0 {
            print(
                "network edge adds p50 \(micros(network.p50 > inProcess.p50 ? network.p50 - inProcess.p50 : 0)) (ratio \(format2(Double(network.p50) / Double(inProcess.p50)))x)"
            )
        }
        if report.missing > 0 { throw CLI.fail("\(report.missing) records got no reply") }
    }

    /// One blocking execution, timed (a synchronous helper: in async code `execute` means the async overload).
    static func timedExecute(
        _ compiled: CompiledGraph<VehicleSample, TelematicsReply>,
        _ sample: VehicleSample
    ) throws -> UInt64 {
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
