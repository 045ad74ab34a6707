import ActorGraphExamples
import Foundation
import Glibc
import XCTest

/// `actorgraph serve telematics` as a real process: load over UDP, a Prometheus scrape, then a
/// SIGINT or SIGTERM gives a clean, counted stop with exit status 0.
final class ServeProcessTests: XCTestCase {
    /// The `actorgraph` binary built next to the test bundle (`swift build --build-tests` builds it).
    static var binary: URL? {
        // The test runner is `.build/<config>/<Package>PackageTests.xctest`, an executable on Linux.
        let runner = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let candidate = runner.deletingLastPathComponent().appendingPathComponent("actorgraph")
        return FileManager.default.isExecutableFile(atPath: candidate.path) ? candidate : nil
    }

    func testSIGINTStopsReceivingDrainsAndExitsZeroWithCounts() throws {
        try stop(with: SIGINT, name: "SIGINT", records: 600)
    }

    func testSIGTERMStopsCleanlyToo() throws {
        try stop(with: SIGTERM, name: "SIGTERM", records: 100)
    }

    /// SIGINT in the middle of a load, delivered to a serve that inherited SIGINT as SIG_IGN (as
    /// a background job of a non-interactive shell does): its own `sigaction` handler still stops
    /// it; every record it admitted is answered (the drain), later datagrams are counted, exit 0.
    func testSIGINTDuringLoadWithInheritedSIGIGNAnswersEveryAdmittedRecord() throws {
        let binary = try XCTUnwrap(Self.binary, "build the CLI first: swift build --build-tests")
        let (serve, reader, udpPort) = try Self.startServe(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c", #"trap "" INT; exec "$0" "$@""#, binary.path,
                "serve", "telematics", "--port", "0", "--workers", "1", "--no-pin", "--stats",
            ]
        )
        defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
        let pidLine = try XCTUnwrap(reader.line(containing: "SIGINT or SIGTERM", within: 5))
        XCTAssertTrue(pidLine.hasPrefix("pid \(serve.processIdentifier):"), "exec kept the pid: \(pidLine)")

        let records = 6_000
        final class Box: @unchecked Sendable {
            var report: TelematicsLoadGenerator.Report?
            var error: (any Error)?
        }
        let box = Box()  // @unchecked Sendable: written by the thread, read after join (the semaphore)
        let done = DispatchSemaphore(value: 0)
        Thread {
            do {
                box.report = try TelematicsLoadGenerator(port: udpPort, rate: 10_000, count: records, malformedEvery: 0)
                    .run()
            } catch { box.error = error }
            done.signal()
        }.start()
        usleep(250_000)
        XCTAssertEqual(kill(serve.processIdentifier, SIGINT), 0)
        let deadline = Date().addingTimeInterval(20)
        while serve.isRunning && Date() < deadline { usleep(10_000) }
        XCTAssertFalse(serve.isRunning, "serve must exit after SIGINT even with SIG_IGN inherited")
        XCTAssertEqual(serve.terminationStatus, 0)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertNil(box.error)
        let load = try XCTUnwrap(box.report)

        let rest = reader.rest()
        XCTAssertTrue(rest.contains("stopping: SIGINT received; stopped receiving, drained"), rest)
        let finalLine = try XCTUnwrap(rest.split(separator: "\n").first { $0.hasPrefix("final: ") })
        var counters: [String: Int] = [:]
        for field in finalLine.dropFirst("final: ".count).split(separator: " ") {
            let pair = field.split(separator: "=")
            if pair.count == 2 { counters[String(pair[0])] = Int(pair[1]) }
        }
        let received = try XCTUnwrap(counters["received"])
        let admitted = try XCTUnwrap(counters["admitted"])
        let replied = try XCTUnwrap(counters["replied"])
        let ignored = try XCTUnwrap(counters["ignored_while_stopping"])
        XCTAssertGreaterThan(admitted, 0)
        XCTAssertLessThan(received, records, "stopped receiving before the load ended")
        XCTAssertEqual(admitted, received, "every well-formed record received was admitted")
        XCTAssertEqual(replied, admitted, "the drain answered every admitted record")
        XCTAssertEqual(counters["in_flight"], 0)
        XCTAssertEqual(load.replies, replied, "the client got every reply the server counted")
        XCTAssertLessThanOrEqual(received + ignored, load.sent)
        XCTAssertTrue(rest.contains("dominant node:"), rest)
    }

    /// Starts `serve` (stdout and stderr through one pipe) and waits for its banner: the process, a
    /// reader of its output lines, and the UDP port it bound.
    static func startServe(_ executable: URL, _ arguments: [String]) throws -> (Process, LineReader, UInt16) {
        let serve = Process()
        serve.executableURL = executable
        serve.arguments = arguments
        let output = Pipe()
        serve.standardOutput = output
        serve.standardError = output
        try serve.run()
        let reader = LineReader(output.fileHandleForReading)
        let serving = reader.line(containing: "serving telematics on udp 127.0.0.1:", within: 20)
        guard let serving, let udpPort = port(after: "udp 127.0.0.1:", in: serving) else {
            kill(serve.processIdentifier, SIGKILL)
            throw ServeDidNotStart()
        }
        return (serve, reader, udpPort)
    }

    static func port(after marker: String, in line: String) -> UInt16? {
        guard let range = line.range(of: marker) else { return nil }
        return UInt16(line[range.upperBound...].prefix { $0.isNumber })
    }

    private func stop(with signo: Int32, name: String, records: Int) throws {
        let binary = try XCTUnwrap(Self.binary, "build the CLI first: swift build --build-tests")
        let (serve, reader, udpPort) = try Self.startServe(
            binary,
            ["serve", "telematics", "--port", "0", "--metrics-port", "0", "--workers", "1", "--no-pin"]
        )
        defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }

        let metricsLine = try XCTUnwrap(reader.line(containing: "metrics: http://127.0.0.1:", within: 5))
        let metricsPort = try XCTUnwrap(Self.port(after: "http://127.0.0.1:", in: metricsLine))
        XCTAssertNotNil(reader.line(containing: "SIGINT or SIGTERM", within: 5))

        let load = try TelematicsLoadGenerator(port: udpPort, rate: 5_000, count: records, malformedEvery: 0).run()
        XCTAssertEqual(load.replies, records)
        XCTAssertEqual(load.missing, 0)

        // A reply counts once its send completed, which the client may see first: scrape until it shows.
        var scrapes = 0
        var (status, body) = (0, "")
        let scrapeDeadline = Date().addingTimeInterval(5)
        repeat {
            if scrapes > 0 { usleep(20_000) }
            (status, _, body) = try MetricsExportTests.httpGet(port: metricsPort, path: "/metrics")
            scrapes += 1
        } while !body.contains("actorgraph_udp_replied_total \(records)\n") && Date() < scrapeDeadline
        XCTAssertEqual(status, 200)
        XCTAssertTrue(body.contains("actorgraph_udp_replied_total \(records)\n"), body)
        XCTAssertTrue(body.contains(#"actorgraph_executions_total{node="detect",worker="0"} \#(records)"#), body)
        XCTAssertTrue(
            body.contains(#"actorgraph_channel_wait_seconds_count{producer="input",node="detect",worker="0"}"#),
            body
        )

        XCTAssertEqual(kill(serve.processIdentifier, signo), 0)
        let deadline = Date().addingTimeInterval(20)
        while serve.isRunning && Date() < deadline { usleep(10_000) }
        XCTAssertFalse(serve.isRunning, "serve must exit after \(name)")
        XCTAssertEqual(serve.terminationReason, .exit)
        XCTAssertEqual(serve.terminationStatus, 0)
        let rest = reader.rest()
        XCTAssertTrue(rest.contains("stopping: \(name) received; stopped receiving, drained"), rest)
        XCTAssertTrue(rest.contains("final: received=\(records) admitted=\(records)"), rest)
        XCTAssertTrue(rest.contains("replied=\(records)"), rest)
        XCTAssertTrue(rest.contains("in_flight=0"), rest)
        XCTAssertTrue(rest.contains("dominant node:"), rest)
        XCTAssertTrue(rest.contains("metrics: \(scrapes) scrape(s) answered"), rest)
    }
}

/// Reads a child's output line by line with deadlines (no wait without a way out).
/// `serve` printed no banner with its UDP port within 20 s (fails the test, like a failed `XCTUnwrap`).
struct ServeDidNotStart: Error {}

final class LineReader: @unchecked Sendable {
    // @unchecked Sendable: `buffer` is only touched under `lock`.
    private let lock = NSLock()
    private var buffer = ""
    private var consumed = ""

    init(_ handle: FileHandle) {
        handle.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self else { return }
            if data.isEmpty {
                h.readabilityHandler = nil
                return
            }
            self.lock.lock()
            self.buffer += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
    }

    /// The first unread line containing `text`, waiting up to `seconds`; lines before it are skipped.
    func line(containing text: String, within seconds: Double) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            lock.lock()
            if let range = buffer.range(of: text) {
                let end = buffer[range.upperBound...].firstIndex(of: "\n") ?? buffer.endIndex
                let start =
                    buffer[..<range.lowerBound].lastIndex(of: "\n").map { buffer.index(after: $0) } ?? buffer.startIndex
                let line = String(buffer[start..<end])
                consumed += buffer[..<end]
                buffer = String(buffer[end...])
                lock.unlock()
                return line
            }
            lock.unlock()
            usleep(5_000)
        }
        return nil
    }

    /// Everything not consumed yet (after the child exited, waits briefly for the pipe to drain).
    func rest() -> String {
        usleep(100_000)
        lock.lock()
        defer { lock.unlock() }
        return buffer
    }
}
