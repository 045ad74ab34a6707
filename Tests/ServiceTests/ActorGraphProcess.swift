import Foundation
import XCTest

/// Runs the built `actorgraph` with `arguments` (in `directory` when given) and returns its exit
/// status, stdout and stderr.
func runActorGraph(
    _ arguments: [String],
    in directory: URL? = nil
) throws -> (status: Int32, stdout: String, stderr: String) {
    let binary = try XCTUnwrap(ServeProcessTests.binary, "build the CLI first: swift build --build-tests")
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    // stdout through a pipe read to its end; stderr into a file (no second pipe to drain).
    let out = Pipe()
    let errPath = NSTemporaryDirectory() + "actorgraph-cli-\(UUID().uuidString).err"
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    let err = try XCTUnwrap(FileHandle(forWritingAtPath: errPath))
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try err.close()
    // FileHandle, not FileManager.contents(atPath:): the latter leaks its 4 KiB read buffer
    // (FoundationEssentials.readBytesFromFile; LeakSanitizer in the ASan pass).
    let reader = try XCTUnwrap(FileHandle(forReadingAtPath: errPath))
    let errData = reader.readDataToEndOfFile()
    try reader.close()
    return (
        process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self)
    )
}
