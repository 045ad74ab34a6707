import ActorGraph
import GraphTestSupport
import XCTest

/// Errors split by when they can happen: `compile()` throws `CompileError`, a running graph
/// `ExecutionError`. The signatures below are checked by the compiler: a `CompileError` cannot reach
/// a caller of `execute`, `submit` or `wait`.
final class ErrorTypesTests: XCTestCase {
    private struct Odd: Error {}

    func testExecuteSubmitAndWaitThrowOnlyExecutionErrors() throws {
        let graph = Graph(input: Int.self) { x in
            x.then(name: "even") { v throws -> Int in
                if v % 2 != 0 { throw Odd() }
                return v
            }
        }
        let compile: (CompileOptions) throws(CompileError) -> CompiledGraph<Int, Int> = graph.compile
        let compiled = try compile(testOptions())
        defer { compiled.shutdown() }
        let execute: (Int) throws(ExecutionError) -> Int = compiled.execute
        let submit: (Int) throws(ExecutionError) -> PendingExecution<Int> = compiled.submit
        XCTAssertEqual(try execute(2), 2)
        let pending = try submit(4)
        let wait: () throws(ExecutionError) -> Int = { () throws(ExecutionError) in try pending.wait() }
        XCTAssertEqual(try wait(), 4)
        do throws(ExecutionError) {
            _ = try compiled.execute(3)
            XCTFail("an odd input was accepted")
        } catch {
            XCTAssertEqual(Self.kind(of: error), "stage even failed")
        }
    }

    func testCompileErrorsNameTheNode() {
        let graph = Graph(input: Int.self) { x in
            _ = x.then(name: "orphan") { $0 + 1 }
            return x.then(name: "kept") { $0 * 2 }
        }
        do throws(CompileError) {
            _ = try graph.compile(testOptions())
            XCTFail("a dead stage was accepted")
        } catch {
            guard case .deadStage(let node) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(node, "orphan")
        }
    }

    /// A caller's switch over everything an execution can fail with: exhaustive without `default`.
    private static func kind(of error: ExecutionError) -> String {
        switch error {
        case .stageFailed(let node, _): return "stage \(node) failed"
        case .capacityExceeded, .batchTooLarge, .exclusiveSubmitterOpen, .nothingInFlight, .alreadyWaited:
            return "submission refused"
        case .timedOut: return "timed out"
        case .shutDown, .restartsExhausted: return "graph stopped"
        case .workerCrashed, .stageTimedOut, .hostLost: return "worker or host lost"
        case .valueTooLarge: return "value too large"
        }
    }
}
