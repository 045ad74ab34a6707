import ActorGraph
import ActorGraphExamples
import Glibc
import XCTest

/// The example graphs with worker processes (`actorgraph run NAME --isolated`): the worker program is
/// the `actorgraph` CLI built beside this test bundle, whose `main` starts with
/// `IsolatedWorker.runIfChild(graphs: { ExampleCatalog.isolatableGraphs + … })`. Same answers as
/// thread mode; values that are not trivially copyable cross encoded (`WireEncodable`).
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
        options.isolation = .processes(ProcessOptions(workerExecutable: cli))
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
        let threads = try TelematicsGraph.graph(sink: ActorRef(AlertSink(), name: "alerts")).compile(
            ExampleGraphsTests.small
        )
        defer { threads.shutdown() }
        let processes = try TelematicsGraph.graph(sink: ActorRef(AlertSink(), name: "alerts")).compile(Self.isolated())
        defer { processes.shutdown() }
        for i in 0..<200 {
            let sample = VehicleSample(
                vehicleID: UInt32(i % 7),
                timestampMicros: UInt64(i) * 100_000,
                latitude: 48,
                longitude: 11,
                speedKmh: Float(80 + i % 70),
                accelerationMS2: Float(i % 9) - 8
            )
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
            guard case .workerCrashed(0, let reason) = error else {
                return XCTFail("expected workerCrashed, got \(error)")
            }
            XCTAssertTrue(reason.contains("SIGABRT"), reason)
        }
        for i in 0..<100 { XCTAssertEqual(try compiled.execute(FaultInjection.Request(id: i)), 2 * i + 1) }
        var waited = 0  // the replacement can serve before the supervisor records the restart
        while compiled.isolationStatistics.restarts < 1 && waited < 5_000 {
            usleep(5_000)
            waited += 5
        }
        XCTAssertEqual(compiled.isolationStatistics.restarts, 1)
    }

    /// The query's `String`, its tokens, vectors, hits and the answer cross worker processes
    /// encoded. One worker (the five stages fused: the query and the answer cross) and two with
    /// `.spread` (every stage on its own channel: every value crosses, the zip's tuple too).
    func testEmbeddingQueryGivesTheSameAnswersInWorkerProcesses() throws {
        let index = EmbeddingQueryExample.makeIndex()
        let threads = try EmbeddingQueryExample.graph(index: index).compile(ExampleGraphsTests.small)
        defer { threads.shutdown() }
        let queries = [
            "borrow checker ownership", "", "GPU kernels!!", "bees & hives", "ünïcödé 🦀 rust",
            String(repeating: "swift actors isolate state ", count: 20),
        ]
        var spread = Self.isolated()
        spread.workers = 2
        spread.placement = .spread
        for options in [Self.isolated(), spread] {
            let processes = try EmbeddingQueryExample.graph(index: index).compile(options)
            defer { processes.shutdown() }
            for round in 0..<20 {
                for query in queries {
                    let answer = try processes.execute(query)
                    XCTAssertEqual(answer, try threads.execute(query))
                    if round == 0 { XCTAssertEqual(answer, index.search(query, k: EmbeddingQueryExample.defaultK)) }
                }
            }
            XCTAssertEqual(try processes.execute("borrow checker ownership").hits.first?.id, "rust-borrow")
        }
    }

    /// Every example in the catalog runs with `--isolated` (`actorgraph run NAME --isolated`) and
    /// answers as it does with threads.
    func testEveryExampleRunsIsolated() async throws {
        for example in ExampleCatalog.all {
            var options = ExampleRunOptions(count: 300, compileOptions: Self.isolated(), resultLimit: 3)
            options.compileOptions.workers = 1
            let report = try await example.run(options)
            XCTAssertEqual(report.executions, 300, example.name)
            XCTAssertFalse(report.lines.contains { $0.contains("MISMATCH") }, "\(example.name): \(report.lines)")
            XCTAssertTrue(report.notes.contains { $0.contains("child process") }, "\(example.name): \(report.notes)")
        }
    }
}
