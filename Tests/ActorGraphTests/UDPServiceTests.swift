import ActorGraph
import ActorGraphPlatform
import Foundation
import XCTest

/// The io_uring network edge: records in over UDP, replies out, errors answered, nothing dropped.
final class UDPServiceTests: XCTestCase {
    /// Records are 8-byte little-endian Ints; replies are 8-byte Ints or "ERR" + message.
    static let codec = RecordCodec<Int, Int>(
        maxRecordSize: 8,
        decode: { bytes in
            guard bytes.count == 8 else { throw Malformed(length: bytes.count) }
            return Int(littleEndian: bytes.loadUnaligned(as: Int.self))
        },
        encode: { value, buffer in
            buffer.storeBytes(of: value.littleEndian, as: Int.self)
            return 8
        },
        encodeError: { message, buffer in
            let bytes = Array(("ERR " + message).utf8.prefix(buffer.count))
            for (i, b) in bytes.enumerated() { buffer[i] = b }
            return bytes.count
        }
    )

    struct Malformed: Error { let length: Int }

    enum Reply: Equatable {
        case value(Int)
        case error(String)
    }

    func roundTrip(_ client: UDPSocket, _ bytes: [UInt8]) throws -> Reply {
        try bytes.withUnsafeBytes { _ = try client.send($0) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = try buffer.withUnsafeMutableBytes { try client.receive(into: $0) }
        if n == 8 && !buffer.starts(with: Array("ERR ".utf8)) {
            return .value(buffer.withUnsafeBytes { Int(littleEndian: $0.loadUnaligned(as: Int.self)) })
        }
        return .error(String(decoding: buffer[0..<n], as: UTF8.self))
    }

    func bytes(_ value: Int) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    func testRecordsRepliesErrorsAndRejectionsOverLoopback() throws {
        guard case .success = IORing.probe() else { throw XCTSkip("io_uring refused on this host") }
        let graph = Graph(input: Int.self) { x in
            x.then(name: "checked") { v -> Int in
                if v < 0 { throw Boom(value: v) }
                return v * 2
            }.then(name: "plus1") { $0 + 1 }
        }
        let served = try graph.serve(codec: Self.codec, options: testOptions(capacity: 16))
        defer { served.shutdown() }
        XCTAssertGreaterThan(served.port, 0)
        let client = try UDPSocket(bindingTo: "127.0.0.1", port: 0)
        defer { client.close() }
        try client.connect(host: "127.0.0.1", port: served.port)
        client.setReceiveTimeout(nanoseconds: 5_000_000_000)

        XCTAssertEqual(try roundTrip(client, bytes(20)), .value(41))
        // A stage that throws fails that record only.
        guard case .error(let failure) = try roundTrip(client, bytes(-3)) else {
            return XCTFail("expected an error reply")
        }
        XCTAssertTrue(failure.contains("checked"), failure)
        // Short and oversized records are answered with errors.
        guard case .error(let short) = try roundTrip(client, [1, 2, 3]) else {
            return XCTFail("expected an error reply")
        }
        XCTAssertTrue(short.contains("malformed"), short)
        guard case .error(let long) = try roundTrip(client, Array(repeating: 7, count: 100)) else {
            return XCTFail("expected an error reply")
        }
        XCTAssertTrue(long.contains("oversized"), long)
        // And the graph keeps serving, in-process callers beside the network.
        for i in 0..<200 { XCTAssertEqual(try roundTrip(client, bytes(i)), .value(2 * i + 1)) }
        XCTAssertEqual(try served.compiled.execute(5), 11)

        // Statistics count everything (the worker publishes them as it makes progress).
        var stats = served.statistics
        for _ in 0..<100 where stats.replied < 201 {
            Thread.sleep(forTimeInterval: 0.01)
            stats = served.statistics
        }
        XCTAssertEqual(stats.received, 204)
        XCTAssertEqual(stats.admitted, 202)
        XCTAssertEqual(stats.rejectedMalformed, 1)
        XCTAssertEqual(stats.rejectedOversized, 1)
        XCTAssertEqual(stats.failedExecutions, 1)
        XCTAssertEqual(stats.replied, 201)
    }

    func testManyRecordsInFlightBeyondCapacityAreHeldBackNotDropped() throws {
        guard case .success = IORing.probe() else { throw XCTSkip("io_uring refused on this host") }
        let graph = Graph(input: Int.self) { x in x.then { $0 &* 3 } }
        let served = try graph.serve(codec: Self.codec, options: testOptions(capacity: 4))
        defer { served.shutdown() }
        let client = try UDPSocket(bindingTo: "127.0.0.1", port: 0)
        try client.connect(host: "127.0.0.1", port: served.port)
        client.setReceiveTimeout(nanoseconds: 5_000_000_000)
        let total = 500
        for i in 0..<total { try bytes(i).withUnsafeBytes { _ = try client.send($0) } }
        var seen = Set<Int>()
        var buffer = [UInt8](repeating: 0, count: 64)
        while seen.count < total {
            let n = try buffer.withUnsafeMutableBytes { try client.receive(into: $0) }
            XCTAssertEqual(n, 8)
            seen.insert(buffer.withUnsafeBytes { Int(littleEndian: $0.loadUnaligned(as: Int.self)) })
        }
        XCTAssertEqual(seen, Set((0..<total).map { $0 * 3 }))
    }
}
