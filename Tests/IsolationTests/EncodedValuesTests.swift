import ActorGraph
import GraphTestSupport
import IsolationFixtures
import XCTest

/// Values that are not trivially copyable crossing worker processes encoded into their slots
/// (``WireEncodable``), within each edge's ``Node/maxEncodedBytes(_:)``.
final class EncodedValuesTests: XCTestCase {
    static let texts = [
        "", "a", "hello world", "  leading and  doubled spaces ", "ünïcödé ✓ 🦀 crab",
        String(repeating: "word ", count: 100), "the quick brown fox jumps over the lazy dog",
    ]

    /// The blocking `execute` (an async test would pick the async overload).
    static func blocking<I, O>(_ compiled: CompiledGraph<I, O>, _ input: I) throws -> O { try compiled.execute(input) }

    func threadAnswers(_ inputs: [String]) throws -> [WordStats] {
        let threads = try FixtureGraphs.words().compile(CompileOptions(workers: 1, pinWorkers: false))
        defer { threads.shutdown() }
        return try inputs.map { try threads.execute($0) }
    }

    /// Every way in and out of a graph: blocking, submit + wait, async, a batch, `executeAll`, an
    /// exclusive submitter. One worker (stages fused: input and output cross) and two with
    /// `.spread` (every value crosses, the zip's tuple too).
    func testValuesThatAreNotTriviallyCopyableCrossWorkerProcessesEncoded() async throws {
        let expected = try threadAnswers(Self.texts)
        XCTAssertEqual(expected[2].words, ["hello", "world"])
        for options in [processOptions(), processOptions(workers: 2, placement: .spread)] {
            let compiled = try FixtureGraphs.words().compile(options)
            defer { compiled.shutdown() }
            if options.placement == .spread { XCTAssertEqual(compiled.isolationStatistics.workerProcessIDs.count, 2) }
            for (text, answer) in zip(Self.texts, expected) {
                XCTAssertEqual(try Self.blocking(compiled, text), answer)
                XCTAssertEqual(try compiled.submit(text).wait(), answer)
                let viaAsync = try await compiled.execute(text)
                XCTAssertEqual(viaAsync, answer)
            }
            let batch = try compiled.submit(contentsOf: Self.texts)
            XCTAssertEqual(try (0..<batch.count).map { try batch.wait($0) }, expected)
            var all: [WordStats] = []
            try compiled.executeAll(Self.texts + Self.texts) { _, result in
                if case .success(let value) = result { all.append(value) }
            }
            XCTAssertEqual(all, expected + expected)
            var submitter = try compiled.exclusiveSubmitter()
            var received: [WordStats] = []
            for text in Self.texts { try submitter.submit(text) }
            while submitter.inFlight > 0 { received.append(try submitter.receive()) }
            XCTAssertEqual(received, expected)
        }
    }

    /// A value over its edge's limit fails that execution with `valueTooLarge` naming the node; the
    /// executions around it, in flight at the same time, are answered normally.
    func testAnOversizedValueFailsOnlyItsOwnExecution() throws {
        let compiled = try FixtureGraphs.sized().compile(processOptions(capacity: 16))
        defer { compiled.shutdown() }
        let atLimit = String(repeating: "i", count: 60)  // 4 + 60 = 64: exactly the input's limit
        let over = String(repeating: "o", count: 61)  // 65
        let inputs = ["96", "97", atLimit, over, "3", "100000", "", "1"]
        let batch = try compiled.submit(contentsOf: inputs)
        var answers: [Result<String, ExecutionError>] = []
        for i in 0..<batch.count {
            do { answers.append(.success(try batch.wait(i))) } catch { answers.append(.failure(error)) }
        }
        func check(_ i: Int, _ expected: String, line: UInt = #line) {
            guard case .success(let value) = answers[i] else {
                return XCTFail("\(inputs[i]): \(answers[i])", line: line)
            }
            XCTAssertEqual(value, expected, line: line)
        }
        func checkTooLarge(_ i: Int, node: String, bytes: Int, limit: Int, line: UInt = #line) {
            guard case .failure(.valueTooLarge(let n, let b, let l)) = answers[i] else {
                return XCTFail("\(inputs[i].prefix(8)): expected valueTooLarge, got \(answers[i])", line: line)
            }
            XCTAssertEqual(n, node, line: line)
            XCTAssertEqual(b, bytes, line: line)
            XCTAssertEqual(l, limit, line: line)
        }
        check(0, String(repeating: "x", count: 96))  // 4 + 96 = 100: exactly the output's limit
        checkTooLarge(1, node: "grow", bytes: 101, limit: 100)
        check(2, String(repeating: "x", count: 60))
        checkTooLarge(3, node: "input", bytes: 65, limit: 64)
        check(4, "xxx")
        checkTooLarge(5, node: "grow", bytes: 100_004, limit: 100)
        check(6, "")
        check(7, "x")
        // Every slot came back: more executions than the capacity still run, failures included.
        for round in 0..<40 {
            XCTAssertEqual(try compiled.execute("\(round % 90)"), String(repeating: "x", count: round % 90))
            assertExecutionError(try compiled.execute(over)) {
                if case .valueTooLarge("input", 65, 64) = $0 { return true } else { return false }
            }
        }
        // The exclusive submitter's inputs are encoded too (its slow path), its results decoded.
        var submitter = try compiled.exclusiveSubmitter()
        try submitter.submit("5")
        try submitter.submit("500")
        try submitter.submit("6")
        XCTAssertEqual(try submitter.receive(), "xxxxx")
        assertExecutionError(try submitter.receive()) {
            if case .valueTooLarge("grow", 504, 100) = $0 { return true } else { return false }
        }
        XCTAssertEqual(try submitter.receive(), "xxxxxx")
        XCTAssertEqual(
            ExecutionError.valueTooLarge(node: "grow", bytes: 504, limit: 100).description,
            "the value of node 'grow' encodes to 504 bytes, over its edge's limit of 100 (raise it with .maxEncodedBytes(_:))"
        )
    }

    /// A worker that dies with encoded values in flight: they are answered `workerCrashed`, and
    /// its replacement (fresh process, same slots of bytes: nothing of the dead process's heap to
    /// destroy) goes on encoding and decoding.
    func testAReplacementWorkerGoesOnWithEncodedValues() throws {
        let compiled = try FixtureGraphs.sized().compile(processOptions(capacity: 8))
        defer { compiled.shutdown() }
        for n in 0..<20 { XCTAssertEqual(try compiled.execute("\(n)"), String(repeating: "x", count: n)) }
        assertExecutionError(try compiled.execute("abort")) {
            if case .workerCrashed(0, let reason) = $0 { return reason.contains("SIGABRT") } else { return false }
        }
        for n in 0..<50 { XCTAssertEqual(try compiled.execute("\(n % 97)"), String(repeating: "x", count: n % 97)) }
        assertExecutionError(try compiled.execute("98")) {
            if case .valueTooLarge("grow", 102, 100) = $0 { return true } else { return false }
        }
        XCTAssertEqual(try compiled.execute("hello"), "xxxxx")
    }

    /// Limits of every edge at once, boundaries included: the input exactly at its limit, the
    /// split words exactly at theirs, the answer over its own.
    func testEachEdgeHasItsOwnLimit() throws {
        let text = String(repeating: "ab ", count: 340)  // 1020 bytes: 4 + 1020 = 1024, the input's limit
        let compiled = try FixtureGraphs.words().compile(processOptions(workers: 2, placement: .spread))
        defer { compiled.shutdown() }
        // split: 4 + 340 × (4 + 2) = 2044 ≤ 2048; the zip's tuple: upper 1024 + words 2044 + lengths
        // 4 + 340 × 8 = 5792 ≤ 8192; stats: the same + longest 1 + 4 + 2 = 5799 > 3000.
        assertExecutionError(try compiled.execute(text)) {
            if case .valueTooLarge("stats", 5799, 3000) = $0 { return true } else { return false }
        }
        // 1023 bytes: the input is over its limit before anything runs.
        assertExecutionError(try compiled.execute(text + "abc")) {
            if case .valueTooLarge("input", 1027, 1024) = $0 { return true } else { return false }
        }
        // 100 two-byte words: split 4 + 100 × 6 = 604, stats 304 + 604 + 804 + 7 = 1719: within every limit.
        let short = String(repeating: "é ", count: 100)
        XCTAssertEqual(try compiled.execute(short).words.count, 100)
        let many = String(repeating: "a ", count: 500)  // 1000 bytes, 500 words: 4 + 500 × 5 = 2504 > 2048
        assertExecutionError(try compiled.execute(many)) {
            if case .valueTooLarge("split", 2504, 2048) = $0 { return true } else { return false }
        }
        XCTAssertEqual(try compiled.execute("still fine").words, ["still", "fine"])
    }

    /// A value that can neither be copied as bytes nor encoded is refused at `compile()`, naming the
    /// node, when it would cross; inside one worker's fused chain it never crosses and runs.
    func testAValueThatCannotCrossIsRejectedAtCompileOnlyWhereItWouldCross() throws {
        assertCompileError(try FixtureGraphs.boxed().compile(processOptions(workers: 2, placement: .spread))) {
            if case .notIsolatable("box", let type) = $0 { return type.hasSuffix("Box") } else { return false }
        }
        let output = Graph(input: Int.self) { x in x.then(name: "box") { Box($0) } }
        assertCompileError(try output.compile(processOptions())) {
            if case .notIsolatable("box", let type) = $0 { return type.hasSuffix("Box") } else { return false }
        }
        let fused = try FixtureGraphs.boxed().compile(processOptions())
        defer { fused.shutdown() }
        XCTAssertEqual(fused.segments.count, 1)
        for x in 0..<50 { XCTAssertEqual(try fused.execute(x), x * 10) }
    }
}
