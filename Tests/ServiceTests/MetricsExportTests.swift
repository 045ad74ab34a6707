import ActorGraph
import ActorGraphMetrics
import Glibc
import XCTest

/// swift-metrics reporting and the Prometheus text endpoint, scraped over real HTTP.
final class MetricsExportTests: XCTestCase {
    static func options() -> CompileOptions {
        var o = CompileOptions(workers: 1, capacity: 64, pinWorkers: false,
                               idle: IdlePolicy(workerSpins: 256, callerSpins: 256, spinTime: .zero, parkTimeout: .milliseconds(20)))
        o.statistics = .sampled(every: 2)
        return o
    }

    static func diamond() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            let a = x.then(name: "scale") { $0 * 2 }
            return zip(a.then(name: "plus1") { $0 + 1 }, a.then(name: "square") { $0 * $0 }).then(name: "sum") { $0 + $1 }
        }
    }

    /// Counters carry node and worker labels and grow by the delta between reports; timers fill.
    func testReporterSendsDeltasWithNodeAndWorkerLabels() throws {
        let compiled = try Self.diamond().compile(Self.options())
        defer { compiled.shutdown() }
        for i in 0..<100 { _ = try compiled.execute(i) }
        let exposition = PrometheusExposition()
        var text = exposition.render(compiled.statistics)
        XCTAssertTrue(text.contains(#"actorgraph_executions_total{node="sum",worker="0"} 100"#), text)
        XCTAssertTrue(text.contains(#"actorgraph_failures_total{node="scale",worker="0"} 0"#), text)
        XCTAssertTrue(text.contains(#"actorgraph_stage_seconds_count{node="square",worker="0"} 50"#), text)
        XCTAssertTrue(text.contains(#"actorgraph_channel_wait_seconds_count{producer="input",node="scale",worker="0"} 50"#), text)
        XCTAssertTrue(text.contains(#"actorgraph_worker_parks_total{worker="0"}"#), text)
        XCTAssertTrue(text.contains("# TYPE actorgraph_stage_seconds histogram"), text)
        for i in 0..<50 { _ = try compiled.execute(i) }
        text = exposition.render(compiled.statistics)
        XCTAssertTrue(text.contains(#"actorgraph_executions_total{node="sum",worker="0"} 150"#), "a second report adds the delta only:\n\(text)")
        XCTAssertTrue(text.contains(#"actorgraph_stage_seconds_count{node="square",worker="0"} 75"#), text)
        text = exposition.render(compiled.statistics)
        XCTAssertTrue(text.contains(#"actorgraph_executions_total{node="sum",worker="0"} 150"#), "nothing new, nothing added")
    }

    /// `GET /metrics` over a real TCP connection (and curl, when installed) returns the text format;
    /// other paths are 404.
    func testEndpointIsScrapedOverHTTP() throws {
        let compiled = try Self.diamond().compile(Self.options())
        defer { compiled.shutdown() }
        for i in 0..<20 { _ = try compiled.execute(i) }
        let exposition = PrometheusExposition()
        let server = try MetricsHTTPServer(port: 0) { [compiled] in exposition.render(compiled.statistics) }
        defer { server.stop() }
        XCTAssertGreaterThan(server.port, 0)

        let (status, headers, body) = try Self.httpGet(port: server.port, path: "/metrics")
        XCTAssertEqual(status, 200)
        XCTAssertTrue(headers.lowercased().contains("content-type: text/plain; version=0.0.4"), headers)
        XCTAssertTrue(body.contains(#"actorgraph_executions_total{node="plus1",worker="0"} 20"#), body)
        XCTAssertTrue(body.contains(#"actorgraph_stage_seconds_bucket{node="scale",worker="0",le="#), body)
        XCTAssertEqual(try Self.httpGet(port: server.port, path: "/").status, 404)

        if FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") {
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curl.arguments = ["-sf", "--max-time", "5", "http://127.0.0.1:\(server.port)/metrics"]
            let out = Pipe()
            curl.standardOutput = out
            try curl.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            curl.waitUntilExit()
            XCTAssertEqual(curl.terminationStatus, 0)
            XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("actorgraph_worker_wakeups_total{worker=\"0\"}"))
        }
        XCTAssertGreaterThanOrEqual(server.scrapes, 2)
        server.stop()
        XCTAssertThrowsError(try Self.httpGet(port: server.port, path: "/metrics"), "stopped: nothing listens")
    }

    /// A raw HTTP/1.1 GET: (status, header block, body).
    static func httpGet(port: UInt16, path: String) throws -> (status: Int, headers: String, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw POSIXError(.EBADMSG) }
        let head = String(text[..<split.lowerBound])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? -1
        return (status, head, String(text[split.upperBound...]))
    }
}
