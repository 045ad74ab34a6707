import ActorGraphPlatform

/// One frame on a connection between the owner and a piece. Every frame starts with this 32-byte
/// header (native byte order: both ends run this program on the same architecture):
///
///     offset  0  kind      UInt8   (``Kind``)
///     offset  2  channel   UInt16  data: the channel whose slot this is
///     offset  4  payload   UInt32  bytes following the header
///     offset  8  epoch     UInt32  the piece incarnation's epoch, assigned by the owner
///     offset 12  failure   Int32   data: the slot's failure code (0: a value follows)
///     offset 16  sequence  Int64   data: the execution; start: the first sequence the piece runs
///     offset 24  stamp     UInt64  the sender's monotonic clock when it framed it
///
/// A data frame's payload is the slot's value bytes, or its failure message (``FailureMessage``).
struct EdgeFrame {
    enum Kind: UInt8 {
        case data = 1
        /// Nothing to send for a heartbeat period: "still here".
        case heartbeat = 2
        /// Owner → piece, first frame of an incarnation: epoch and start sequence.
        case start = 3
        /// The sender is shutting down cleanly.
        case bye = 4
        /// Owner → piece handshake: the plan to build (``PieceHello``).
        case hello = 5
        /// Piece → owner: the plan matches.
        case accept = 6
        /// Piece → owner: refused; the payload says why.
        case refuse = 7
    }

    static let headerBytes = 32

    var kind: Kind
    var channel: Int
    var payloadBytes: Int
    var epoch: UInt32
    var failure: Int32
    var sequence: Int
    var stamp: UInt64

    init(
        kind: Kind,
        channel: Int = 0,
        payloadBytes: Int = 0,
        epoch: UInt32,
        failure: Int32 = 0,
        sequence: Int = 0,
        stamp: UInt64 = MonotonicClock.now()
    ) {
        self.kind = kind
        self.channel = channel
        self.payloadBytes = payloadBytes
        self.epoch = epoch
        self.failure = failure
        self.sequence = sequence
        self.stamp = stamp
    }

    @inline(__always)
    func write(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: kind.rawValue, as: UInt8.self)
        (p + 1).storeBytes(of: 0, as: UInt8.self)
        (p + 2).storeBytes(of: UInt16(truncatingIfNeeded: channel), as: UInt16.self)
        (p + 4).storeBytes(of: UInt32(truncatingIfNeeded: payloadBytes), as: UInt32.self)
        (p + 8).storeBytes(of: epoch, as: UInt32.self)
        (p + 12).storeBytes(of: failure, as: Int32.self)
        (p + 16).storeBytes(of: Int64(sequence), as: Int64.self)
        (p + 24).storeBytes(of: stamp, as: UInt64.self)
    }

    /// `nil` for an unknown kind (a peer speaking another protocol).
    @inline(__always)
    static func read(from p: UnsafeRawPointer) -> EdgeFrame? {
        guard let kind = Kind(rawValue: p.loadUnaligned(as: UInt8.self)) else { return nil }
        return EdgeFrame(
            kind: kind,
            channel: Int(p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)),
            payloadBytes: Int(p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
            epoch: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self),
            failure: p.loadUnaligned(fromByteOffset: 12, as: Int32.self),
            sequence: Int(p.loadUnaligned(fromByteOffset: 16, as: Int64.self)),
            stamp: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        )
    }
}

/// The owner's handshake: everything a piece needs to rebuild the owner's plan and run its share.
struct PieceHello: Equatable {
    static let version = 1
    var fingerprint: UInt64
    var capacity: Int
    var placement: Placement
    var batchSize: Int
    var idle: IdlePolicy
    var hostIndex: Int
    var hosts: HostTable
    var heartbeatNanoseconds: Int64
    var missedHeartbeats: Int

    static func == (a: PieceHello, b: PieceHello) -> Bool { a.encoded() == b.encoded() }

    func encoded() -> [UInt8] {
        var fields: [Int64] = [
            Int64(PieceHello.version), Int64(bitPattern: fingerprint), Int64(capacity), Int64(placement.code),
            Int64(batchSize), Int64(idle.workerSpins), Int64(idle.callerSpins), idle.spinTime.nanoseconds,
            idle.parkTimeout.nanoseconds, Int64(idle.strategy.code), Int64(hostIndex), heartbeatNanoseconds,
            Int64(missedHeartbeats), Int64(hosts.ownerWorkers), Int64(hosts.workersPerPiece),
            Int64(hosts.nodeHost.count), Int64(hosts.names.count),
        ]
        fields += hosts.nodeHost.map { Int64($0) }
        var bytes: [UInt8] = []
        for f in fields { withUnsafeBytes(of: f) { bytes += $0 } }
        for name in hosts.names {
            let utf8 = Array(name.utf8)
            withUnsafeBytes(of: Int64(utf8.count)) { bytes += $0 }
            bytes += utf8
        }
        return bytes
    }

    init(
        fingerprint: UInt64,
        capacity: Int,
        placement: Placement,
        batchSize: Int,
        idle: IdlePolicy,
        hostIndex: Int,
        hosts: HostTable,
        heartbeatNanoseconds: Int64,
        missedHeartbeats: Int
    ) {
        self.fingerprint = fingerprint
        self.capacity = capacity
        self.placement = placement
        self.batchSize = batchSize
        self.idle = idle
        self.hostIndex = hostIndex
        self.hosts = hosts
        self.heartbeatNanoseconds = heartbeatNanoseconds
        self.missedHeartbeats = missedHeartbeats
    }

    /// `nil` when malformed or from another protocol version.
    init?(decoding bytes: [UInt8]) {
        var offset = 0
        func int() -> Int64? {
            guard offset + 8 <= bytes.count else { return nil }
            defer { offset += 8 }
            return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int64.self) }
        }
        guard let version = int(), version == PieceHello.version, let fingerprint = int(), let capacity = int(),
            let placementCode = int(), let placement = Placement(code: Int(placementCode)), let batch = int(),
            let workerSpins = int(), let callerSpins = int(), let spinTime = int(), let parkTimeout = int(),
            let strategyCode = int(), let strategy = WaitStrategy(code: Int(strategyCode)), let hostIndex = int(),
            let heartbeat = int(), let missed = int(), let ownerWorkers = int(), let perPiece = int(),
            let nodeCount = int(), let hostCount = int(), nodeCount >= 0, nodeCount < 1 << 20, hostCount >= 1,
            hostCount < 1 << 16
        else { return nil }
        var nodeHost: [Int] = []
        for _ in 0..<nodeCount {
            guard let h = int(), h >= 0, h < hostCount else { return nil }
            nodeHost.append(Int(h))
        }
        var names: [String] = []
        for _ in 0..<hostCount {
            guard let n = int(), n >= 0, offset + Int(n) <= bytes.count else { return nil }
            names.append(String(decoding: bytes[offset..<(offset + Int(n))], as: UTF8.self))
            offset += Int(n)
        }
        guard hostIndex >= 1, hostIndex < hostCount, ownerWorkers >= 1, perPiece >= 1 else { return nil }
        self.init(
            fingerprint: UInt64(bitPattern: fingerprint),
            capacity: Int(capacity),
            placement: placement,
            batchSize: Int(batch),
            idle: IdlePolicy(
                workerSpins: Int(workerSpins),
                callerSpins: Int(callerSpins),
                spinTime: .nanoseconds(spinTime),
                parkTimeout: .nanoseconds(parkTimeout),
                strategy: strategy
            ),
            hostIndex: Int(hostIndex),
            hosts: HostTable(
                names: names,
                nodeHost: nodeHost,
                ownerWorkers: Int(ownerWorkers),
                workersPerPiece: Int(perPiece)
            ),
            heartbeatNanoseconds: heartbeat,
            missedHeartbeats: Int(missed)
        )
    }
}

extension TCPSocket {
    /// Sends one frame with `payload` (blocking: the handshake, before io_uring owns the socket).
    func sendFrame(_ frame: EdgeFrame, payload: [UInt8] = []) throws(Errno) {
        var f = frame
        f.payloadBytes = payload.count
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: EdgeFrame.headerBytes + payload.count,
            alignment: 8
        )
        defer { buffer.deallocate() }
        f.write(to: buffer.baseAddress!)
        for (i, b) in payload.enumerated() { buffer[EdgeFrame.headerBytes + i] = b }
        try sendAll(UnsafeRawBufferPointer(buffer))
    }

    /// Receives one frame and its payload (at most `maxPayload` bytes), each part within `timeoutMilliseconds`.
    func receiveFrame(timeoutMilliseconds: Int32, maxPayload: Int = 1 << 20) throws(Errno) -> (EdgeFrame, [UInt8]) {
        let header = UnsafeMutableRawBufferPointer.allocate(byteCount: EdgeFrame.headerBytes, alignment: 8)
        defer { header.deallocate() }
        try receiveExactly(header, timeoutMilliseconds: timeoutMilliseconds)
        guard let frame = EdgeFrame.read(from: header.baseAddress!), frame.payloadBytes <= maxPayload else {
            throw Errno(rawValue: 71)  // EPROTO
        }
        guard frame.payloadBytes > 0 else { return (frame, []) }
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.payloadBytes, alignment: 8)
        defer { payload.deallocate() }
        try receiveExactly(payload, timeoutMilliseconds: timeoutMilliseconds)
        return (frame, Array(payload))
    }
}
