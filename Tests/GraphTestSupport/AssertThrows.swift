import ActorGraph
import XCTest

/// Asserts that `body` throws a ``CompileError`` matching `check` (shared by the test targets).
package func assertCompileError<T: ~Copyable>(
    _ body: @autoclosure () throws -> T,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ check: (CompileError) -> Bool
) {
    assertThrows(try body(), as: CompileError.self, file: file, line: line, check)
}

/// Asserts that `body` throws an ``ExecutionError`` matching `check` (shared by the test targets).
package func assertExecutionError<T: ~Copyable>(
    _ body: @autoclosure () throws -> T,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ check: (ExecutionError) -> Bool
) {
    assertThrows(try body(), as: ExecutionError.self, file: file, line: line, check)
}

private func assertThrows<T: ~Copyable, E: Error>(
    _ body: @autoclosure () throws -> T,
    as _: E.Type,
    file: StaticString,
    line: UInt,
    _ check: (E) -> Bool
) {
    do {
        _ = try body()
        XCTFail("expected a \(E.self)", file: file, line: line)
    } catch let error as E {
        XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
}
