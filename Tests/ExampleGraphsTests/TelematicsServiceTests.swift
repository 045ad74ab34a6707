import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import XCTest

/// `telematics` end to end: the load generator drives the served graph over loopback UDP.
final class TelematicsServiceTests: XCTestCase {
    func testLoadGeneratorOverLoopbackGetsEveryAnswerAndEveryAlert() throws {
        guard case .success = IORing.probe() else { throw XCTSkip("io_uring refused on this host") }
        let sink = ActorRef(AlertSink(), name: "alerts")
        let served = try TelematicsGraph.graph(sink: sink).serve(
            codec: TelematicsGraph.codec,
            options: CompileOptions(
                workers: 1,
                capacity: 256,
                pinWorkers: false,
                idle: IdlePolicy(
                    workerSpins: 2_000,
                    callerSpins: 256,
                    spinTime: .microseconds(200),
                    parkTimeout: .milliseconds(20)
                )
            )
        )
        let load = TelematicsLoadGenerator(
            port: served.port,
            rate: 20_000,
            count: 3_000,
            malformedEvery: 100,
            vehicles: 16
        )
        let report = try load.run()
        let stats = served.statistics
        served.shutdown()

        let broken = 30
        XCTAssertEqual(report.sent, 3_000)
        XCTAssertEqual(report.missing, 0, "every record answered")
        XCTAssertEqual(report.replies, 3_000 - broken)
        XCTAssertEqual(report.errorReplies, broken)
        XCTAssertGreaterThan(report.expectedHarshBraking, 0)
        XCTAssertEqual(report.harshBrakingReplies, report.expectedHarshBraking)
        XCTAssertEqual(report.speedingReplies, report.expectedSpeeding)
        XCTAssertEqual(stats.rejectedMalformed + stats.rejectedOversized, broken)
        XCTAssertEqual(stats.admitted, 3_000 - broken)
        XCTAssertEqual(report.latenciesNanoseconds.count, report.replies)
        try sink.withState { sink in
            XCTAssertEqual(sink.harshBrakingCount, report.expectedHarshBraking)
            XCTAssertEqual(sink.speedingCount, report.expectedSpeeding)
        }
    }
}
