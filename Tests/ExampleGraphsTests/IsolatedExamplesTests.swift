import ActorGraph
import ActorGraphExamples
import Glibc
import XCTest

/// The example graphs with worker processes (`actorgraph run NAME --isolated`): the worker program is
/// the `actorgraph` CLI built beside this test bundle, whose `main` starts with
/// `IsolatedWorker.runIfChild(graphs: { ExampleCatalog.isolatableGraphs + … })`. Same answers as
/// thread mode; the graphs that cannot cross are rejected with a typed error.
final class IsolatedExamplesTests: XCTestCase {
    static var cli: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        var dir = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        while let last = dir.last, last != "/" { dir.removeLast() }
        return dir + "actorgraph"
    }

    static func isolated() -> CompileOptions {
        var options = ExampleGraphsTests.small
        options.isolation = .processes
        options.workerExecutable = cli
        if access(cli, X_OK) != 0 { XCTFail("\(cli) is missing: `swift build --build-tests` builds it") }
        return options
    }

    func testEchoChainAndDiamondGiveTheSameAnswersInWorkerProcesses() throws {
        let echo = try EchoExample.graph().compile(Self.isolated())
        defer { echo.shutdown() }
        XCTAssertEqual(echo.isolationStatistics.workerProcessIDs.count, 1)
        for x in 0..<300 { XCTAssertEqual(try echo.execute(x), x + 1) }

        let chain = try ChainExample.graph().compile(Self.isolated())
        defer { chain.shutdown() }
        for x in -50..<250 { XCTAssertEqual(try chain.execute(x), ChainExample.expected(x)) }

        // The stats actor lives in the worker process: its state starts fresh there.
        let diamond = try DiamondExample.graph().compile(Self.isolated())
        defer { diamond.shutdown() }
        for x in 1...200 {
            let r = try diamond.execute(x)
            XCTAssertEqual(r.value, (x + 1) * (x + 1))
            XCTAssertEqual(r.seen, x)
        }
    }

    func testTelematicsDetectorRunsInAWorkerProcess() throws {
        let threads = try TelematicsGraph.graph(sink: ActorRef(AlertSink(), name: "alerts")).compile(ExampleGraphsTests.small)
        defer { threads.shutdown() }
        let processes = try TelematicsGraph.graph(sink: ActorRef(AlertSink(), name: "alerts")).compile(Self.isolated())
        defer { processes.shutdown() }
        for i in 0..<200 {
            let sample = VehicleSample(vehicleID: UInt32(i % 7), timestampMicros: UInt64(i) * 100_000, latitude: 48, longitude: 11,
                                       speedKmh: Float(80 + i % 70), accelerationMS2: Float(i % 9) - 8)
            XCTAssertEqual(try processes.execute(sample), try threads.execute(sample))
        }
    }

    func testTheFaultGraphSurvivesAnAbortAndServesAgain() throws {
        let compiled = try FaultInjection.graph().compile(Self.isolated())
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(FaultInjection.Request(id: 1)), 3)
        do {
            _ = try compiled.execute(FaultInjection.Request(id: 2, action: .abort))
            XCTFail("expected workerCrashed")
        } catch {
            guard case .workerCrashed(0, let reason) = error else { return XCTFail("expected workerCrashed, got \(error)") }
            XCTAssertTrue(reason.contains("SIGABRT"), reason)
        }
        for i in 0..<100 { XCTAssertEqual(try compiled.execute(FaultInjection.Request(id: i)), 2 * i + 1) }
        var waited = 0 // the replacement can serve before the supervisor records the restart
        while compiled.isolationStatistics.restarts < 1 && waited < 5_000 { usleep(5_000); waited += 5 }
        XCTAssertEqual(compiled.isolationStatistics.restarts, 1)
    }

    func testEmbeddingQueryCannotCrossAProcessBoundary() throws {
        let graph = EmbeddingQueryExample.graph(index: EmbeddingQueryExample.makeIndex())
        XCTAssertThrowsError(try graph.compile(Self.isolated())) { error in
            guard case .notIsolatable("input", "String")? = error as? GraphError else { return XCTFail("got \(error)") }
        }
    }
}
