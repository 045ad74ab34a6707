import ActorGraph
import ActorGraphPlatform

/// One reply per vehicle sample: which alerts it raised and the fleet's running alert total.
public struct TelematicsReply: Sendable, Equatable, BitwiseCopyable {
    /// The vehicle the sample came from.
    public var vehicleID: UInt32
    /// The sample's timestamp, echoed so a client can match replies to requests.
    public var timestampMicros: UInt64
    /// Bit 0: harsh braking, bit 1: speeding.
    public var alertBits: UInt8
    /// Alerts raised by the whole fleet so far.
    public var totalAlerts: UInt32

    /// A reply from its parts.
    public init(vehicleID: UInt32, timestampMicros: UInt64, alertBits: UInt8, totalAlerts: UInt32) {
        self.vehicleID = vehicleID
        self.timestampMicros = timestampMicros
        self.alertBits = alertBits
        self.totalAlerts = totalAlerts
    }
}

/// The reply wire format: 24 bytes little-endian `"TREP"`, u32 vehicle, u64 timestamp, u32 alert bits,
/// u32 total; errors are `"TERR"` followed by a UTF-8 message.
public enum TelematicsReplyCodec {
    /// Bytes of an OK reply.
    public static let recordSize = 24
    /// Magic of an OK reply ("TREP").
    public static let magic: UInt32 = 0x5045_5254
    /// Magic of an error reply ("TERR").
    public static let errorMagic: UInt32 = 0x5252_4554

    /// A decoded reply datagram.
    public enum Decoded: Equatable, Sendable {
        /// The graph's answer.
        case reply(TelematicsReply)
        /// The server rejected the record or the execution failed.
        case error(String)
        /// Not a reply datagram.
        case garbage
    }

    /// Writes `reply` into `buffer`; returns 24.
    public static func encode(_ reply: TelematicsReply, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        buffer.storeBytes(of: reply.vehicleID.littleEndian, toByteOffset: 4, as: UInt32.self)
        buffer.storeBytes(of: reply.timestampMicros.littleEndian, toByteOffset: 8, as: UInt64.self)
        buffer.storeBytes(of: UInt32(reply.alertBits).littleEndian, toByteOffset: 16, as: UInt32.self)
        buffer.storeBytes(of: reply.totalAlerts.littleEndian, toByteOffset: 20, as: UInt32.self)
        return recordSize
    }

    /// Writes an error reply carrying `message` (truncated to fit).
    public static func encodeError(_ message: String, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        buffer.storeBytes(of: errorMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
        let bytes = Array(message.utf8.prefix(buffer.count - 4))
        for (i, b) in bytes.enumerated() { buffer[4 + i] = b }
        return 4 + bytes.count
    }

    /// Reads one reply datagram.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Decoded {
        guard bytes.count >= 4 else { return .garbage }
        let m = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        if m == errorMagic { return .error(String(decoding: bytes[4...], as: UTF8.self)) }
        guard m == magic, bytes.count == recordSize else { return .garbage }
        return .reply(
            TelematicsReply(
                vehicleID: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
                timestampMicros: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                alertBits: UInt8(
                    truncatingIfNeeded: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
                ),
                totalAlerts: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
            )
        )
    }
}

/// The detector as a stage: per-vehicle windows owned by one worker.
public struct DetectStage: Stage {
    /// The detector's state.
    public var windows: VehicleWindows
    /// A detector with default thresholds.
    public init(windows: VehicleWindows = VehicleWindows()) { self.windows = windows }
    /// Observes one sample.
    public mutating func process(_ sample: VehicleSample) -> DetectionResult { windows.observe(sample) }
}

/// The telematics pipeline: samples → harsh-braking and speeding detection (stateful per-vehicle
/// windows) → alert sink (a shared stateful actor) → reply, fed over UDP through worker 0's io_uring.
public enum TelematicsGraph {
    /// The graph; `sink` collects every alert (read it with `withState` after shutdown).
    public static func graph(sink: ActorRef<AlertSink>) -> Graph<VehicleSample, TelematicsReply> {
        Graph(input: VehicleSample.self) { sample in
            let detected = sample.then(DetectStage(), name: "detect")
            let total = detected.then(sink, name: "alert-sink") { sink, result in
                UInt32(truncatingIfNeeded: sink.record(result))
            }
            let bits = detected.then(name: "alert-bits") { r -> UInt8 in
                (r.harshBraking == nil ? 0 : 1) | (r.speeding == nil ? 0 : 2)
            }
            return zip(sample, bits, total).then(name: "reply") { s, bits, total in
                TelematicsReply(
                    vehicleID: s.vehicleID,
                    timestampMicros: s.timestampMicros,
                    alertBits: bits,
                    totalAlerts: total
                )
            }
        }
    }

    /// Samples in, replies out, over UDP datagrams of one record each.
    public static var codec: RecordCodec<VehicleSample, TelematicsReply> {
        RecordCodec(
            maxRecordSize: SampleCodec.recordSize,
            decode: { bytes in try SampleCodec.decode(bytes) },
            encode: { reply, buffer in TelematicsReplyCodec.encode(reply, into: buffer) },
            encodeError: { message, buffer in TelematicsReplyCodec.encodeError(message, into: buffer) }
        )
    }
}
