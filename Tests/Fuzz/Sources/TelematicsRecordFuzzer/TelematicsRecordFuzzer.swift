import ActorGraph
import ActorGraphExamples
import CFuzzerDriver

/// The executable's entry point (SwiftPM names it `<Target>_main`): runs libFuzzer's driver, which
/// parses the libFuzzer flags and calls ``fuzzOneDatagram(_:_:)`` for every input.
@_cdecl("TelematicsRecordFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneDatagram(data!, size) }
}

/// libFuzzer entry point: one datagram's bytes through everything the UDP edge does with them.
///
/// Checked properties (a violation traps, which libFuzzer reports with the input that caused it):
/// - `RecordCodec.decode` (the telematics codec) accepts exactly the 40-byte records with the right
///   magic, finite speed and acceleration and in-range coordinates, and rejects everything else with
///   the error matching the first problem; an accepted record re-encodes to the same bytes.
/// - The reply codec never reads out of bounds; a decoded reply re-encodes to a reply equal to it.
/// - Error replies built from arbitrary text fit the service's buffer.
/// - The stateful detector and the alert sink accept any decoded sample (NaN-free by construction).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneDatagram(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let codec = TelematicsGraph.codec
    do {
        let sample = try codec.decode(bytes)
        precondition(size == SampleCodec.recordSize, "accepted a \(size)-byte record")
        precondition(sample.speedKmh.isFinite && sample.accelerationMS2.isFinite, "accepted a non-finite value")
        precondition(
            (-90...90).contains(sample.latitude) && (-180...180).contains(sample.longitude),
            "accepted out-of-range coordinates"
        )
        let again = SampleCodec.encode(sample)
        precondition(again.elementsEqual(bytes), "decode/encode does not round-trip")
        Harness.detect(sample)
    } catch let error as SampleDecodeError {
        switch error {
        case .shortRecord(let length): precondition(length == size && size < SampleCodec.recordSize)
        case .oversizedRecord(let length): precondition(length == size && size > SampleCodec.recordSize)
        case .badMagic(let magic):
            precondition(size == SampleCodec.recordSize && magic != SampleCodec.magic)
        case .invalidValue(let field): precondition(size == SampleCodec.recordSize && !field.isEmpty)
        }
    } catch {
        preconditionFailure("untyped decode error \(error)")
    }

    switch TelematicsReplyCodec.decode(bytes) {
    case .reply(let reply):
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: TelematicsReplyCodec.recordSize, alignment: 8)
        defer { buffer.deallocate() }
        let n = TelematicsReplyCodec.encode(reply, into: buffer)
        precondition(TelematicsReplyCodec.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) == .reply(reply))
    case .error, .garbage:
        break
    }

    // The service builds error replies from decoder messages into `maxRecordSize`-byte buffers.
    let message = String(decoding: bytes.prefix(512), as: UTF8.self)
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(codec.maxRecordSize, 256), alignment: 8)
    defer { out.deallocate() }
    let written = codec.encodeError(message, out)
    precondition(written >= 4 && written <= out.count, "error reply of \(written) bytes")
    return 0
}

/// State kept across inputs, like the service keeps it across datagrams.
enum Harness {
    nonisolated(unsafe) static var detector = DetectStage()  // libFuzzer calls the entry point on one thread
    nonisolated(unsafe) static var sink = AlertSink()  // same: one thread

    static func detect(_ sample: VehicleSample) {
        let result = detector.process(sample)
        _ = sink.record(result)
    }
}
