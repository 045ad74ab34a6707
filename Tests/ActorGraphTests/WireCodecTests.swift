import XCTest

@testable import ActorGraph

/// The encodings values cross processes with (``WireEncodable``, ``WireCodec``, ``EncodedSlot``):
/// round trips, exact sizes, and malformed bytes answered with an error, never a crash.
final class WireCodecTests: XCTestCase {
    struct Hit: Sendable, Equatable, WireEncodable {
        var id: String
        var score: Float
        init(id: String, score: Float) {
            self.id = id
            self.score = score
        }
        func encode(to writer: inout WireWriter) {
            writer.write(id)
            writer.write(score)
        }
        init(from reader: inout WireReader) throws {
            id = try reader.read()
            score = try reader.read()
        }
    }

    struct Point: Sendable, Equatable, BitwiseCopyable, WireEncodable {
        var x: Int32
        var y: Double
    }

    /// Trivially copyable, no conformance: arrays of it still cross (as their bytes).
    struct Plain: Sendable, Equatable {
        var a: UInt16
        var b: Int64
    }

    final class Box: Sendable {
        let value: Int
        init(_ value: Int) { self.value = value }
    }

    /// Encodes `value` through `codec` (its type's, by default) and decodes it back.
    func roundTrip<T>(
        _ value: T,
        codec: WireCodec? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> (T, Int) {
        let codec = try XCTUnwrap(codec ?? WireCodec.of(T.self), "no codec for \(T.self)", file: file, line: line)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        var v = value
        let n = try XCTUnwrap(
            withUnsafePointer(to: &v) { codec.encode(UnsafeRawPointer($0), into: buffer) },
            file: file,
            line: line
        )
        let out = UnsafeMutablePointer<T>.allocate(capacity: 1)
        defer { out.deallocate() }
        try codec.decode(from: UnsafeRawBufferPointer(rebasing: buffer[0..<n]), into: out)
        return (out.move(), n)
    }

    func assertRoundTrip<T: Equatable>(
        _ value: T,
        bytes: Int? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let (back, n) = try roundTrip(value, file: file, line: line)
        XCTAssertEqual(back, value, file: file, line: line)
        if let bytes { XCTAssertEqual(n, bytes, "encoded size of \(value)", file: file, line: line) }
    }

    func testReadyConformancesRoundTrip() throws {
        try assertRoundTrip("", bytes: 4)
        try assertRoundTrip("borrow checker ownership", bytes: 4 + 24)
        try assertRoundTrip("ünïcödé ✓ 🦀", bytes: 4 + "ünïcödé ✓ 🦀".utf8.count)
        try assertRoundTrip(String(repeating: "long string ", count: 100))
        try assertRoundTrip(["borrow", "checker", "", "ownership"], bytes: 4 + 4 * 4 + 6 + 7 + 9)
        try assertRoundTrip([Float](), bytes: 4)
        try assertRoundTrip((0..<64).map { Float($0) / 7 }, bytes: 4 + 64 * 4)
        try assertRoundTrip([true, false, true])
        try assertRoundTrip([Hit(id: "rust-borrow", score: 0.612), Hit(id: "bees", score: -0.25)])
        try assertRoundTrip(Optional<String>.none, bytes: 1)
        try assertRoundTrip(Optional("x"), bytes: 1 + 4 + 1)
        try assertRoundTrip([Optional<Int>.none, 7])
        try assertRoundTrip(["a": [1, 2], "bb": []] as [String: [Int]])
        try assertRoundTrip(Set(["x", "y", "z"]))
        try assertRoundTrip([[1, 2], [], [3]] as [[Int]])
        try assertRoundTrip(
            [Point(x: 1, y: 2.5), Point(x: -3, y: .infinity)],
            bytes: 4 + 2 * MemoryLayout<Point>.stride
        )
    }

    func testCodecKindsFollowTheType() {
        XCTAssertEqual(WireCodec.of(Int.self)?.kind, .bytes)
        XCTAssertEqual(WireCodec.of(Point.self)?.kind, .bytes)
        XCTAssertEqual(WireCodec.of(String.self)?.kind, .encodable)
        XCTAssertEqual(WireCodec.of([Hit].self)?.kind, .encodable)
        // An array of trivially copyable elements crosses without a conformance of its element.
        XCTAssertEqual(WireCodec.of([Plain].self)?.kind, .arrayOfBytes)
        // Neither copyable as bytes nor encodable.
        XCTAssertNil(WireCodec.of(Box.self))
        XCTAssertNil(WireCodec.of([Box].self))
        XCTAssertNil(WireCodec.of(Optional<Box>.self))
    }

    func testArraysOfTrivialElementsWithoutAConformanceRoundTrip() throws {
        try assertRoundTrip([Plain(a: 1, b: -2), Plain(a: 65535, b: .max)], bytes: 4 + 2 * MemoryLayout<Plain>.stride)
        try assertRoundTrip([Plain]())
    }

    func testZipTuplesComposeTheirComponentsCodecs() throws {
        let layout = ValueLayout.of(zipOf: String.self, [Hit].self)
        XCTAssertEqual(layout.wire?.kind, .tuple)
        let pair = ("query", [Hit(id: "a", score: 1)])
        let (back, n) = try roundTrip(pair, codec: XCTUnwrap(layout.wire))
        XCTAssertEqual(back.0, "query")
        XCTAssertEqual(back.1, [Hit(id: "a", score: 1)])
        XCTAssertEqual(n, 4 + 5 + 4 + 4 + 1 + 4)
        let (three, _) = try roundTrip(
            (UInt8(7), ["x", "y"], Point(x: 3, y: 4)),
            codec: XCTUnwrap(ValueLayout.of(zipOf: UInt8.self, [String].self, Point.self).wire)
        )
        XCTAssertEqual(three.0, 7)
        XCTAssertEqual(three.1, ["x", "y"])
        XCTAssertEqual(three.2, Point(x: 3, y: 4))
        // A tuple of trivially copyable values is itself trivial: it crosses in place.
        XCTAssertTrue(ValueLayout.of(zipOf: Int.self, Double.self).isTrivial)
        // One component without a codec: the tuple has none.
        XCTAssertNil(ValueLayout.of(zipOf: String.self, Box.self).wire)
        XCTAssertNil(ValueLayout.of(zipOf: Int.self, String.self, Box.self, Int.self).wire)
    }

    func testAValueOverTheBufferIsCountedNotWritten() throws {
        let codec = try XCTUnwrap(WireCodec.of([String].self))
        var value = ["0123456789", "abc"]
        let area = UnsafeMutableRawBufferPointer.allocate(byteCount: 32, alignment: 8)
        defer { area.deallocate() }
        area.initializeMemory(as: UInt8.self, repeating: 0xEE)
        let small = UnsafeMutableRawBufferPointer(rebasing: area[0..<10])
        withUnsafePointer(to: &value) { p in
            XCTAssertNil(codec.encode(UnsafeRawPointer(p), into: small))
            // The exact size it needs: count, two lengths, 13 bytes.
            XCTAssertEqual(codec.encodedCount(UnsafeRawPointer(p), into: small), 4 + 4 + 10 + 4 + 3)
        }
        // Nothing was written past the buffer.
        XCTAssertTrue(area[10...].allSatisfy { $0 == 0xEE })
    }

    /// Every prefix of an encoding, and the encoding with a byte more, is refused with an error.
    func testTruncatedOrTrailingBytesThrowAndInitializeNothing() throws {
        let codec = try XCTUnwrap(WireCodec.of([Hit].self))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        defer { buffer.deallocate() }
        var value = [Hit(id: "rust-borrow", score: 0.5), Hit(id: "bees", score: 0.25)]
        let n = try XCTUnwrap(withUnsafePointer(to: &value) { codec.encode(UnsafeRawPointer($0), into: buffer) })
        let out = UnsafeMutablePointer<[Hit]>.allocate(capacity: 1)
        defer { out.deallocate() }
        for cut in 0..<n {
            XCTAssertThrowsError(
                try codec.decode(from: UnsafeRawBufferPointer(rebasing: buffer[0..<cut]), into: out),
                "prefix \(cut)"
            )
        }
        XCTAssertThrowsError(try codec.decode(from: UnsafeRawBufferPointer(rebasing: buffer[0..<(n + 1)]), into: out)) {
            XCTAssertTrue("\($0)".contains("left after"), "\($0)")
        }
        try codec.decode(from: UnsafeRawBufferPointer(rebasing: buffer[0..<n]), into: out)
        XCTAssertEqual(out.move(), value)
    }

    func testMalformedCountsAndTagsAreErrorsNotHugeAllocations() throws {
        func decode<T>(_ bytes: [UInt8], as _: T.Type) throws {
            let codec = try XCTUnwrap(WireCodec.of(T.self))
            let out = UnsafeMutablePointer<T>.allocate(capacity: 1)
            defer { out.deallocate() }
            try bytes.withUnsafeBytes { try codec.decode(from: $0, into: out) }
            out.deinitialize(count: 1)
        }
        // A count of 4 billion elements in 4 bytes.
        XCTAssertThrowsError(try decode([0xFF, 0xFF, 0xFF, 0xFF], as: [String].self))
        XCTAssertThrowsError(try decode([0xFF, 0xFF, 0xFF, 0xFF], as: [Double].self))
        XCTAssertThrowsError(try decode([0xFF, 0xFF, 0xFF, 0xFF], as: [Plain].self))
        XCTAssertThrowsError(try decode([0xFF, 0xFF, 0xFF, 0xFF], as: [String: Int].self))
        XCTAssertThrowsError(try decode([0xFF, 0xFF, 0xFF, 0x7F, 0x61], as: String.self))
        XCTAssertThrowsError(try decode([3, 0], as: Optional<String>.self))
        // A trivially copyable value crosses as its bytes (the codec trusts its peer, the same
        // program); Bool's own conformance, used inside encoded values, checks its byte.
        XCTAssertThrowsError(
            try [UInt8(2)].withUnsafeBytes { bytes in
                var reader = WireReader(bytes)
                return try Bool(from: &reader)
            }
        )
        XCTAssertThrowsError(try decode([], as: Int.self))
        try decode([1, 0, 0, 0, 0x61], as: String.self)
    }

    func testAnEncodedSlotHoldsTheCountAndTheBytesWithinItsLimit() throws {
        let codec = try XCTUnwrap(WireCodec.of(String.self))
        let layout = EncodedSlot.channelLayout(for: .of(String.self), codec: codec, limit: 16, node: 3)
        XCTAssertTrue(layout.isTrivial)
        XCTAssertEqual(layout.size, EncodedSlot.headerBytes + 16)
        let slot = try XCTUnwrap(layout.encoded)
        let area = UnsafeMutableRawPointer.allocate(byteCount: layout.size, alignment: 8)
        defer { area.deallocate() }
        var fits = "twelve bytes"  // 4 + 12 = 16: exactly the limit
        XCTAssertEqual(withUnsafePointer(to: &fits) { slot.write(UnsafeRawPointer($0), toSlot: area) }, 0)
        XCTAssertEqual(area.load(as: UInt32.self), 16)
        let out = UnsafeMutablePointer<String>.allocate(capacity: 1)
        defer { out.deallocate() }
        try slot.read(fromSlot: area, into: out)
        XCTAssertEqual(out.move(), fits)
        var over = "thirteen byte"  // 17 > 16
        XCTAssertEqual(withUnsafePointer(to: &over) { slot.write(UnsafeRawPointer($0), toSlot: area) }, 17)
        // A count over the limit (a corrupt slot) is an error, not a read past the slot.
        area.storeBytes(of: UInt32(1000), as: UInt32.self)
        XCTAssertThrowsError(try slot.read(fromSlot: area, into: out))
    }

    func testTooLargeFailuresBecomeTypedErrorsNamingTheNode() {
        let names = ["input", "split", "grow"]
        let message = UnsafeMutableRawPointer.allocate(byteCount: FailureMessage.slotBytes, alignment: 8)
        defer { message.deallocate() }
        let code = EncodedSlot.writeTooLarge(bytes: 5000, limit: 4096, node: 2, message: message)
        let (detail, text) = FailureMessage.read(message)
        let error = EncodedSlot.error(failure: code, detail: detail, text: text) { names[$0] }
        guard case .valueTooLarge("grow", 5000, 4096)? = error else {
            return XCTFail("got \(String(describing: error))")
        }
        XCTAssertEqual(
            error?.description,
            "the value of node 'grow' encodes to 5000 bytes, over its edge's limit of 4096 (raise it with .maxEncodedBytes(_:))"
        )
        XCTAssertNil(
            EncodedSlot.error(failure: FailureCode.workerCrashed, detail: 0, text: "", nodeName: { names[$0] })
        )
    }

    func testEncodedLimitsAreValidatedInEveryMode() {
        let graph = Graph(input: String.self) { s in s.maxEncodedBytes(0).then(name: "count") { $0.count } }
        XCTAssertThrowsError(try graph.compile(CompileOptions(workers: 1, pinWorkers: false))) { error in
            guard case .invalidOption(let what)? = error as? CompileError else { return XCTFail("got \(error)") }
            XCTAssertTrue(what.contains("maxEncodedBytes(0)") && what.contains("'input'"), what)
        }
    }
}
