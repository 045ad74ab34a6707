import ActorGraph
import ActorGraphExamples
import Synchronization
import XCTest

/// Every example graph compiled with small options, its answers checked (never its timing).
final class ExampleGraphsTests: XCTestCase {
    /// One unpinned worker, small rings, short spins: fits a 2-core CI machine.
    static let small = CompileOptions(
        workers: 1,
        capacity: 64,
        pinWorkers: false,
        idle: IdlePolicy(workerSpins: 256, callerSpins: 256, spinTime: .zero, parkTimeout: .milliseconds(20))
    )

    static func runOptions(
        count: Int,
        input: String? = nil,
        mode: ExampleExecutionMode = .compiled
    ) -> ExampleRunOptions {
        ExampleRunOptions(count: count, input: input, compileOptions: small, mode: mode, resultLimit: 5)
    }

    // MARK: Catalog

    func testCatalogListsEveryExampleOnceAndFindsThemByName() {
        let names = ExampleCatalog.all.map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "duplicate example names: \(names)")
        for name in ["echo", "chain", "diamond", "embedding-query"] {
            XCTAssertTrue(names.contains(name), "\(name) missing from \(names)")
            XCTAssertEqual(ExampleCatalog.named(name)?.name, name)
        }
        XCTAssertNil(ExampleCatalog.named("no-such-graph"))
        for example in ExampleCatalog.all {
            XCTAssertFalse(example.summary.isEmpty)
            XCTAssertFalse(example.summary.contains("\n"), "\(example.name): summary must be one line")
            XCTAssertGreaterThan(example.defaultCount, 0)
        }
    }

    func testEveryExampleDescribesItsCompiledGraph() throws {
        for example in ExampleCatalog.all {
            let dot = try example.describe(Self.small)
            XCTAssertTrue(dot.hasPrefix("digraph"), "\(example.name): \(dot.prefix(40))")
            XCTAssertTrue(dot.contains("worker 0"), "\(example.name): no placement in the DOT")
        }
        let diamond = try DiamondExample.example.describe(Self.small)
        for node in ["square", "record", "join"] { XCTAssertTrue(diamond.contains(node), node) }
        let query = try EmbeddingQueryExample.example.describe(Self.small)
        for node in ["sanitize", "tokenize", "embed", "normalize", "search", "answer"] {
            XCTAssertTrue(query.contains(node), "embedding-query DOT lacks \(node)")
        }
    }

    // MARK: echo

    func testEchoAddsOne() throws {
        let compiled = try EchoExample.graph().compile(Self.small)
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(41), 42)
        for x in 0..<1_000 { XCTAssertEqual(try compiled.execute(x), x + 1) }
        // Through submit + wait: results come back per execution, in submit order.
        var pending: [Int] = []
        for x in 0..<32 {
            let p = try compiled.submit(x * 10)
            pending.append(try p.wait())
        }
        XCTAssertEqual(pending, (0..<32).map { $0 * 10 + 1 })
        XCTAssertEqual(try EchoExample.graph().sequential().execute(Int.max), Int.min)  // wrapping, no trap
    }

    func testEchoAsyncAndDynamicPaths() async throws {
        let compiled = try EchoExample.graph().compile(Self.small)
        defer { compiled.shutdown() }
        let viaAsync = try await compiled.execute(-1)
        XCTAssertEqual(viaAsync, 0)
        let viaDynamic = try await EchoExample.graph().dynamic().execute(7)
        XCTAssertEqual(viaDynamic, 8)
    }

    func testEchoRunReportsResultsAndOneLatencyPerExecution() async throws {
        let report = try await EchoExample.example.run(Self.runOptions(count: 200, input: "41"))
        XCTAssertEqual(report.executions, 200)
        XCTAssertEqual(report.latenciesNanoseconds.count, 200)
        XCTAssertEqual(report.lines, (41..<46).map { "echo(\($0)) = \($0 + 1)" })
        XCTAssertEqual(report.omittedExecutions, 195)
        XCTAssertTrue(report.notes.contains { $0.hasPrefix("path: compiled") }, "\(report.notes)")
        let latency = report.latency
        XCTAssertEqual(latency.count, 200)
        XCTAssertLessThanOrEqual(latency.min, latency.p50)
        XCTAssertLessThanOrEqual(latency.p50, latency.p99)
        XCTAssertLessThanOrEqual(latency.p99, latency.p999)
        XCTAssertLessThanOrEqual(latency.p999, latency.max)
    }

    func testBadInputIsAOneLineInputError() async throws {
        for (example, input) in [
            (EchoExample.example, "forty-one"), (ChainExample.example, "1.5"),
            (DiamondExample.example, ""), (EmbeddingQueryExample.example, " ; ;"),
        ] {
            do {
                _ = try await example.run(Self.runOptions(count: 1, input: input))
                XCTFail("\(example.name) accepted --input '\(input)'")
            } catch let error as ExampleInputError {
                XCTAssertEqual(error.example, example.name)
                XCTAssertFalse(error.description.contains("\n"))
                XCTAssertTrue(error.description.contains("--input"), error.description)
            }
        }
        do {
            _ = try await EchoExample.example.run(Self.runOptions(count: 0))
            XCTFail("count 0 accepted")
        } catch is ExampleInputError {}
    }

    func testGraphsReachTheCaller() async {
        var options = Self.runOptions(count: 1)
        options.compileOptions.capacity = 0
        do {
            _ = try await ChainExample.example.run(options)
            XCTFail("capacity 0 accepted")
        } catch let error as CompileError {
            guard case .invalidCapacity(0) = error else { return XCTFail("\(error)") }
        } catch {
            XCTFail("unexpected \(error)")
        }
    }

    func testLongRunsReportProgressAboutEveryTenPercent() async throws {
        let messages = Mutex<[String]>([])
        var options = Self.runOptions(count: 2_000)
        options.progressThreshold = 1
        options.progressDelay = .zero
        options.progress = { line in messages.withLock { $0.append(line) } }
        _ = try await EchoExample.example.run(options)
        let lines = messages.withLock { $0 }
        XCTAssertEqual(lines.count, 9, "\(lines)")
        XCTAssertEqual(lines.first, "echo: 10% (200/2000 executions)")
        XCTAssertEqual(lines.last, "echo: 90% (1800/2000 executions)")
    }

    // MARK: chain

    func testChainComputesThreeStagesFusedOnOneWorker() throws {
        let compiled = try ChainExample.graph().compile(Self.small)
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(5), 9)  // (5 + 1) * 2 - 3
        XCTAssertEqual(try compiled.execute(0), -1)
        XCTAssertEqual(try compiled.execute(-10), -21)
        for x in -500..<500 { XCTAssertEqual(try compiled.execute(x), ChainExample.expected(x)) }
        XCTAssertTrue(
            compiled.segments.contains { $0.nodes == ["add1", "times2", "minus3"] },
            "the chain is not fused: \(compiled.segments)"
        )
        let sequential = try ChainExample.graph().sequential()
        for x in [-3, 0, 1, 100] { XCTAssertEqual(try sequential.execute(x), ChainExample.expected(x)) }
    }

    func testChainDynamicPathAndRunReport() async throws {
        let dynamic = try ChainExample.graph().dynamic()
        for x in [-3, 0, 1, 100] {
            let y = try await dynamic.execute(x)
            XCTAssertEqual(y, ChainExample.expected(x))
        }
        let report = try await ChainExample.example.run(Self.runOptions(count: 3, input: " 5 "))
        XCTAssertEqual(
            report.lines,
            [
                "chain(5) = (5 + 1) * 2 - 3 = 9", "chain(6) = (6 + 1) * 2 - 3 = 11",
                "chain(7) = (7 + 1) * 2 - 3 = 13",
            ]
        )
    }

    // MARK: diamond

    func testDiamondValuesAndTheSharedActorsFinalState() throws {
        let stats = ActorRef(RunningStats(), name: "stats")
        let compiled = try DiamondExample.graph(stats: stats).compile(Self.small)
        // Both actor nodes run on one worker.
        XCTAssertEqual(compiled.placement["record"], compiled.placement["join"])
        XCTAssertNotNil(compiled.placement["record"])
        XCTAssertTrue(stats.isBound)
        var sum = 0
        for (i, x) in (1...100).enumerated() {
            sum += x
            let r = try compiled.execute(x)
            XCTAssertEqual(r.value, (x + 1) * (x + 1))
            XCTAssertEqual(r.seen, i + 1)
            XCTAssertEqual(r.runningMean, Double(sum) / Double(i + 1))
        }
        compiled.shutdown()
        XCTAssertFalse(stats.isBound)
        let final = try stats.withState { $0 }
        XCTAssertEqual(final.count, 100)
        XCTAssertEqual(final.sum, 5050)
        XCTAssertEqual(final.min, 1)
        XCTAssertEqual(final.max, 100)
        XCTAssertEqual(final.mean, 50.5)
    }

    func testDiamondAgreesAcrossPaths() async throws {
        let inputs = [-7, 0, 3, 12, 3]
        func check(_ results: [DiamondResult], file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(results.map(\.value), [36, 1, 16, 169, 16], file: file, line: line)
            XCTAssertEqual(results.map(\.seen), [1, 2, 3, 4, 5], file: file, line: line)
            XCTAssertEqual(results.map(\.runningMean), [-7, -3.5, -4.0 / 3, 2, 11.0 / 5], file: file, line: line)
        }
        let sequentialStats = ActorRef(RunningStats())
        let sequential = try DiamondExample.graph(stats: sequentialStats).sequential()
        check(try inputs.map { try sequential.execute($0) })
        XCTAssertEqual(try sequentialStats.withState { $0.count }, 5)

        let dynamicStats = ActorRef(RunningStats())
        let dynamic = try DiamondExample.graph(stats: dynamicStats).dynamic()
        var dynamicResults: [DiamondResult] = []
        for x in inputs { dynamicResults.append(try await dynamic.execute(x)) }
        check(dynamicResults)
        XCTAssertEqual(try dynamicStats.withState { $0.sum }, 11)
    }

    func testDiamondRunReportsTheActorsFinalState() async throws {
        let report = try await DiamondExample.example.run(Self.runOptions(count: 1_000))
        XCTAssertEqual(report.latenciesNanoseconds.count, 1_000)
        XCTAssertEqual(report.lines.first, "diamond(1) = 1² + (2·1 + 1) = 4   [stats seen 1, running mean 1.0]")
        XCTAssertTrue(
            report.notes.contains("stats actor final state: count 1000, sum 500500, min 1, max 1000, mean 500.5"),
            "\(report.notes)"
        )
        for mode in [ExampleExecutionMode.dynamic, .sequential] {
            let other = try await DiamondExample.example.run(Self.runOptions(count: 10, input: "5", mode: mode))
            XCTAssertEqual(
                other.lines.first,
                "diamond(5) = 5² + (2·5 + 1) = 36   [stats seen 1, running mean 5.0]",
                "\(mode)"
            )
            XCTAssertTrue(
                other.notes.contains("stats actor final state: count 10, sum 95, min 5, max 14, mean 9.5"),
                "\(mode): \(other.notes)"
            )
        }
    }

    // MARK: embedding-query

    static let index = EmbeddingQueryExample.makeIndex()
    static let queries = [
        "borrow checker ownership",
        "Espresso coffee beans!",
        "volcano magma eruption",
        "honey bees and flowers",
        "the",  // only a stop word: no features, all-zero embedding
    ]

    func testEmbeddingQueryFindsTheBorrowCheckerDocumentFirst() throws {
        let compiled = try EmbeddingQueryExample.graph(index: Self.index).compile(Self.small)
        defer { compiled.shutdown() }
        let answer = try compiled.execute("borrow checker ownership")
        XCTAssertEqual(answer.query, "borrow checker ownership")
        XCTAssertEqual(answer.hits.count, EmbeddingQueryExample.defaultK)
        XCTAssertEqual(answer.hits.first?.id, "rust-borrow")
        XCTAssertGreaterThan(answer.hits[0].score, answer.hits[1].score)
        XCTAssertEqual(try compiled.execute("Espresso coffee beans!").hits.first?.id, "espresso")
        XCTAssertEqual(try compiled.execute("volcano magma eruption").hits.first?.id, "volcanoes")
        XCTAssertEqual(
            Set(compiled.placement.keys).intersection([
                "sanitize", "tokenize", "embed", "normalize", "search", "answer",
            ]).count,
            6
        )
    }

    func testEmbeddingQueryCompiledAnswersEqualTheSequentialPathAndTheModel() throws {
        let compiled = try EmbeddingQueryExample.graph(index: Self.index).compile(Self.small)
        defer { compiled.shutdown() }
        let sequential = try EmbeddingQueryExample.graph(index: Self.index).sequential()
        for query in Self.queries {
            let answer = try compiled.execute(query)
            XCTAssertEqual(answer, try sequential.execute(query), query)
            XCTAssertEqual(answer, Self.index.search(query, k: EmbeddingQueryExample.defaultK), query)
        }
        // Through submit + wait, in submit order.
        var answers: [QueryAnswer] = []
        for query in Self.queries + Self.queries {
            let p = try compiled.submit(query)
            answers.append(try p.wait())
        }
        XCTAssertEqual(answers.map(\.query), Self.queries + Self.queries)
    }

    func testEmbeddingQueryDynamicPathAgrees() async throws {
        let dynamic = try EmbeddingQueryExample.graph(index: Self.index).dynamic()
        for query in Self.queries {
            let answer = try await dynamic.execute(query)
            XCTAssertEqual(answer, Self.index.search(query, k: EmbeddingQueryExample.defaultK), query)
        }
    }

    func testEmbeddingQueryStagesEachComputeTheModelsStep() {
        let raw = "  The Borrow-Checker: OWNERSHIP!"
        let clean = SanitizeStage().process(raw)
        XCTAssertEqual(clean, "the borrow checker ownership")
        let tokens = TokenizeStage().process(clean)
        XCTAssertEqual(tokens, ["borrow", "checker", "ownership"])
        let vector = EmbedStage(Self.index.embedder).process(tokens)
        XCTAssertEqual(vector.count, Self.index.embedder.dimensions)
        let unit = NormalizeStage().process(vector)
        let norm = unit.reduce(0) { $0 + Double($1) * Double($1) }
        XCTAssertEqual(norm, 1, accuracy: 1e-5)
        XCTAssertEqual(unit, Self.index.embedQuery(raw))
        let hits = SearchStage(index: Self.index, k: 5).process(unit)
        XCTAssertEqual(hits.count, 5)
        XCTAssertEqual(hits.first?.id, "rust-borrow")
    }

    func testEmbeddingQueryRunCyclesItsQueries() async throws {
        let report = try await EmbeddingQueryExample.example.run(
            Self.runOptions(count: 10, input: "borrow checker ownership; espresso coffee")
        )
        XCTAssertEqual(report.latenciesNanoseconds.count, 10)
        XCTAssertEqual(report.lines.first, "\"borrow checker ownership\":")
        XCTAssertTrue(report.lines[1].hasPrefix("  1. rust-borrow  cosine 0."), report.lines[1])
        XCTAssertEqual(
            report.lines.filter { $0.hasPrefix("\"") },
            ["\"borrow checker ownership\":", "\"espresso coffee\":"]
        )
        XCTAssertTrue(report.lines.contains { $0.hasPrefix("  1. espresso ") }, "\(report.lines)")
        XCTAssertEqual(try EmbeddingQueryExample.parseQueries(nil), ["borrow checker ownership"])
        XCTAssertEqual(try EmbeddingQueryExample.parseQueries(" a ;b;; "), ["a", "b"])
    }

    // MARK: Latency summary

    func testLatencySummaryUsesNearestRankPercentiles() {
        let summary = LatencySummary((1...1000).reversed().map(UInt64.init))
        XCTAssertEqual(summary.count, 1000)
        XCTAssertEqual(summary.min, 1)
        XCTAssertEqual(summary.p50, 500)
        XCTAssertEqual(summary.p99, 990)
        XCTAssertEqual(summary.p999, 999)
        XCTAssertEqual(summary.max, 1000)
        XCTAssertEqual(summary.mean, 500.5)
        XCTAssertEqual(LatencySummary([7]).p999, 7)
        XCTAssertEqual(LatencySummary([]), LatencySummary([UInt64]()))
        XCTAssertEqual(LatencySummary([]).max, 0)
        XCTAssertEqual(LatencySummary.format(412), "412 ns")
        XCTAssertEqual(LatencySummary.format(1_204), "1.20 µs")
        XCTAssertEqual(LatencySummary.format(40_250), "40.3 µs")
        XCTAssertEqual(LatencySummary.format(3_110_000), "3.11 ms")
        XCTAssertEqual(LatencySummary.format(2_000_000_000), "2.00 s")
        XCTAssertEqual(LatencySummary.fixed(0.61249, decimals: 3), "0.612")
        XCTAssertEqual(LatencySummary.fixed(-0.0504, decimals: 3), "-0.050")
        XCTAssertEqual(LatencySummary.fixed(-0.0004, decimals: 3), "0.000")
    }
}

/// The pipelined run mode keeps pending executions in a `UniqueArray` ring.
final class PipelinedRunModeTests: XCTestCase {
    func testPipelinedRunAnswersEveryExecutionInOrderLikeTheSequentialPath() async throws {
        for count in [1, 63, 64, 65, 1_000] {
            let options = ExampleGraphsTests.runOptions(count: count, mode: .pipelined)
            let pipelined = try await DiamondExample.example.run(options)
            let sequential = try await DiamondExample.example.run(
                ExampleGraphsTests.runOptions(count: count, mode: .sequential)
            )
            XCTAssertEqual(pipelined.latenciesNanoseconds.count, count, "one latency per execution")
            // "stats seen" is the actor's count when `join` ran: with executions in flight, `record`
            // may have run ahead (up to a batch), so only the values are compared line by line.
            func values(_ lines: [String]) -> [String] { lines.map { String($0.prefix { $0 != "[" }) } }
            XCTAssertEqual(values(pipelined.lines), values(sequential.lines), "count \(count)")
            XCTAssertEqual(
                pipelined.notes.filter { $0.hasPrefix("stats actor") },
                sequential.notes.filter { $0.hasPrefix("stats actor") }
            )
        }
    }
}
