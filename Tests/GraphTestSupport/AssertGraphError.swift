import ActorGraph
import XCTest

/// Asserts that `body` throws a `GraphError` matching `check` (shared by the test targets).
package func assertGraphError<T: ~Copyable>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath,
                                            line: UInt = #line, _ check: (GraphError) -> Bool) {
    do {
        _ = try body()
        XCTFail("expected a GraphError", file: file, line: line)
    } catch let error as GraphError {
        XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
}
