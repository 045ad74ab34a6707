import ActorGraph
import ActorGraphPlatform

/// `telematics`: vehicle samples arrive as UDP datagrams through worker 0's io_uring, pass
/// harsh-braking and speeding detection (stateful per-vehicle windows) and a shared alert-sink
/// actor, and each reply goes back over the same ring. `run` drives it with the load generator
/// over loopback (every 50th record deliberately malformed) and checks every alert.
public enum TelematicsExample {
    /// The catalog entry. `--input` is the send rate in records per second (default 20000).
    public static let example = ExampleGraph(
        name: "telematics",
        summary: "UDP samples via io_uring → per-vehicle harsh-braking/speeding windows → alert sink → UDP reply",
        inputHelp: "records per second sent by the load generator (default 20000)",
        defaultCount: 20_000,
        run: { options in
            let rate = try ExampleInputError.parseInt(options.input, example: "telematics", default: 20_000)
            guard rate > 0 else {
                throw ExampleInputError(example: "telematics", input: "\(rate)", reason: "rate must be positive")
            }
            // In worker processes, or across hosts (nodes placed on other hosts): fed in-process,
            // since `serve`'s UDP edge needs worker 0's io_uring on this host.
            if options.mode == .compiled
                && (options.compileOptions.isolation.processOptions != nil
                    || !options.compileOptions.remote.placement.isEmpty)
            {
                return try runIsolated(options)
            }
            guard options.mode == .compiled else {
                // The network edge belongs to the compiled engine; other paths run the graph in-process.
                let sink = ActorRef(AlertSink(), name: "alerts")
                let samples = fleetSamples(options.count)
                return try await ExampleDriver.run(
                    TelematicsGraph.graph(sink: sink),
                    example: "telematics",
                    options: options,
                    input: { samples[$0] },
                    format: { s, r in [describe(s, r)] },
                    finally: {
                        try sink.withState {
                            ["alerts: harsh_braking=\($0.harshBrakingCount) speeding=\($0.speedingCount)"]
                        }
                    }
                )
            }
            let sink = ActorRef(AlertSink(), name: "alerts")
            let served = try TelematicsGraph.graph(sink: sink).serve(
                codec: TelematicsGraph.codec,
                options: options.compileOptions
            )
            options.progress("serving on udp 127.0.0.1:\(served.port); sending \(options.count) records at \(rate)/s")
            let report = try TelematicsLoadGenerator(
                port: served.port,
                rate: Double(rate),
                count: options.count,
                malformedEvery: 50
            ).run()
            let stats = served.statistics
            let graphStatistics = served.compiled.statistics
            let statisticsDOT = graphStatistics.map { served.compiled.dot(statistics: $0) }
            served.shutdown()
            let alerts = try sink.withState { ($0.harshBrakingCount, $0.speedingCount) }
            var lines = [
                "sent \(report.sent) records over loopback UDP: \(report.replies) replies, \(report.errorReplies) error replies (malformed on purpose), \(report.missing) missing",
                "harsh braking: \(report.harshBrakingReplies) alerts (expected \(report.expectedHarshBraking)); speeding: \(report.speedingReplies) (expected \(report.expectedSpeeding))",
                "alert sink actor: harsh_braking=\(alerts.0) speeding=\(alerts.1)",
            ]
            if report.missing > 0 || report.harshBrakingReplies != report.expectedHarshBraking
                || report.speedingReplies != report.expectedSpeeding
            {
                lines.append("MISMATCH: see the counts above")
            }
            return ExampleRunReport(
                lines: lines,
                latenciesNanoseconds: report.latenciesNanoseconds,
                notes: [
                    "path: compiled, fed by the io_uring UDP source; latency is end to end (client send → reply received)",
                    "server: \(stats)",
                ],
                executions: report.replies,
                omittedExecutions: 0,
                elapsedNanoseconds: UInt64(report.seconds * 1e9),
                statistics: graphStatistics,
                statisticsDOT: statisticsDOT
            )
        },
        describe: { options in
            let compiled = try TelematicsGraph.graph(sink: ActorRef(AlertSink(), name: "alerts")).compile(options)
            defer { compiled.shutdown() }
            return compiled.dot()
        }
    )

    /// `--isolated`: the graph's workers are child processes, fed in-process. (`serve` runs its UDP
    /// edge on worker 0's io_uring, which needs worker threads; here the same fleet's samples are
    /// submitted by this process and every reply is checked.) The alert-sink actor lives in the
    /// worker process, so its total is read from the last reply, not from the actor here.
    static func runIsolated(_ options: ExampleRunOptions) throws -> ExampleRunReport {
        guard options.count >= 1 else {
            throw ExampleInputError(
                example: "telematics",
                input: String(options.count),
                reason: "--count must be at least 1"
            )
        }
        var fleet = SyntheticFleet(vehicles: 32, seed: 42)
        let samples = (0..<options.count).map { i in
            var s = fleet.next()
            s.timestampMicros = UInt64(i)
            return s
        }
        let compiled = try TelematicsGraph.graph(sink: ActorRef(AlertSink(), name: "alerts")).compile(
            options.compileOptions
        )
        defer { compiled.shutdown() }
        var latencies: [UInt64] = []
        latencies.reserveCapacity(samples.count)
        var harsh = 0
        var speeding = 0
        var mismatched = 0
        var last: TelematicsReply? = nil
        let start = MonotonicClock.now()
        for sample in samples {
            let t0 = MonotonicClock.now()
            let reply = try compiled.execute(sample)
            latencies.append(MonotonicClock.now() &- t0)
            if reply.vehicleID != sample.vehicleID || reply.timestampMicros != sample.timestampMicros {
                mismatched += 1
            }
            harsh += Int(reply.alertBits & 1)
            speeding += Int(reply.alertBits >> 1 & 1)
            last = reply
        }
        let elapsed = MonotonicClock.now() &- start
        let total = Int(last?.totalAlerts ?? 0)
        var lines = [
            "submitted \(samples.count) samples in-process (no UDP edge: serve needs worker threads): \(samples.count - mismatched) matching replies",
            "harsh braking: \(harsh) alerts (expected \(fleet.expectedHarshBraking)); speeding: \(speeding) (expected \(fleet.expectedSpeeding))",
            "alert sink actor (in the worker process): \(total) alerts",
        ]
        if mismatched > 0 || harsh != fleet.expectedHarshBraking || speeding != fleet.expectedSpeeding
            || total != harsh + speeding
        {
            lines.append("MISMATCH: see the counts above")
        }
        return ExampleRunReport(
            lines: lines,
            latenciesNanoseconds: latencies,
            notes: [
                ExampleDriver.describePlacement(compiled),
                "path: compiled, isolated; latency is one blocking execute (submit to reply), no network",
            ],
            executions: samples.count,
            omittedExecutions: 0,
            elapsedNanoseconds: elapsed,
            statistics: compiled.statistics,
            statisticsDOT: compiled.statistics.map { compiled.dot(statistics: $0) }
        )
    }

    static func fleetSamples(_ count: Int) -> [VehicleSample] {
        var fleet = SyntheticFleet(vehicles: 32, seed: 42)
        return (0..<count).map { i in
            var s = fleet.next()
            s.timestampMicros = UInt64(i)
            return s
        }
    }

    static func describe(_ s: VehicleSample, _ r: TelematicsReply) -> String {
        "vehicle \(s.vehicleID) speed \(s.speedKmh) km/h accel \(s.accelerationMS2) m/s² → alerts \(r.alertBits) (total \(r.totalAlerts))"
    }
}
