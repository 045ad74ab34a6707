import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Blasts random and almost-valid datagrams at a telematics UDP service on 127.0.0.1 and checks
/// every one is answered correctly: a reply (`TREP`, matched by vehicle and timestamp) for each
/// record the reference decoder (`SampleCodec.decode`) accepts, an error reply (`TERR`) for each it
/// rejects. At most `window` datagrams are outstanding (below the service's error-reply pool, so no
/// reject reply is skipped), so loopback never drops one for lack of buffer space.
public struct DatagramFuzzer {
    /// What to send.
    public struct Configuration: Sendable {
        /// Datagrams to send.
        public var count: Int
        /// The service's UDP port on 127.0.0.1.
        public var port: UInt16
        /// Seed of every random choice.
        public var seed: UInt64
        /// Datagrams outstanding at most.
        public var window: Int
        /// How long to wait for an answer before counting the outstanding datagrams as unanswered.
        public var answerTimeout: Duration

        /// One million datagrams, 32 outstanding.
        public init(
            count: Int = 1_000_000,
            port: UInt16,
            seed: UInt64 = UInt64.random(in: 1...UInt64(UInt32.max)),
            window: Int = 32,
            answerTimeout: Duration = .seconds(2)
        ) {
            self.count = count
            self.port = port
            self.seed = seed
            self.window = window
            self.answerTimeout = answerTimeout
        }
    }

    /// What came back.
    public struct Tally: Sendable, Equatable {
        /// Datagrams sent, by kind.
        public var sent = 0, sentValid = 0, sentInvalid = 0, bytesSent = 0
        /// Answers: replies to valid records, error replies, and the two kinds of wrong answer.
        public var replies = 0, errorReplies = 0
        /// A reply for a record the reference decoder rejected, for nothing outstanding, or twice.
        public var mismatched = 0
        /// Bytes that are neither a reply nor an error reply.
        public var garbage = 0
        /// Outstanding datagrams never answered within the timeout.
        public var unanswered = 0
        /// Per kind of datagram generated.
        public var kinds = [Int](repeating: 0, count: DatagramKind.allCases.count)

        /// All counters zero.
        public init() {}

        public var answered: Int { replies + errorReplies }
    }

    let configuration: Configuration

    /// A fuzzer for `configuration`.
    public init(_ configuration: Configuration) { self.configuration = configuration }

    /// Sends `configuration.count` datagrams; `progress` gets a line every `progressEvery` datagrams.
    public func run(progressEvery: Int = 100_000, progress: (Tally) -> Void = { _ in }) throws(Errno) -> Tally {
        let socket = try UDPSocket(bindingTo: "127.0.0.1", port: 0)
        defer { socket.close() }
        try socket.connect(host: "127.0.0.1", port: configuration.port)
        socket.setReceiveTimeout(nanoseconds: 20_000_000)
        var rng = SplitMix64(seed: configuration.seed)
        var tally = Tally()
        var outstandingValid: [UInt64: UInt32] = [:]  // timestamp → vehicle
        var outstandingErrors = 0
        var lastAnswer = ContinuousClock.now
        let datagram = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer {
            datagram.deallocate()
            reply.deallocate()
        }

        func receiveOne() {
            let n: Int
            do { n = try socket.receive(into: reply) } catch { return }  // timeout: checked by the caller
            lastAnswer = ContinuousClock.now
            switch TelematicsReplyCodec.decode(UnsafeRawBufferPointer(rebasing: reply[0..<n])) {
            case .reply(let r):
                if outstandingValid.removeValue(forKey: r.timestampMicros) == r.vehicleID {
                    tally.replies += 1
                } else {
                    tally.mismatched += 1
                }
            case .error:
                if outstandingErrors > 0 {
                    outstandingErrors -= 1
                    tally.errorReplies += 1
                } else {
                    tally.mismatched += 1
                }
            case .garbage:
                tally.garbage += 1
            }
        }

        var sequence: UInt64 = 0
        while tally.sent < configuration.count || outstandingValid.count + outstandingErrors > 0 {
            if tally.sent < configuration.count && outstandingValid.count + outstandingErrors < configuration.window {
                sequence &+= 1
                let (length, kind) = DatagramKind.make(into: datagram, sequence: sequence, using: &rng)
                let bytes = UnsafeRawBufferPointer(rebasing: datagram[0..<length])
                // The reference decoder says what the service must answer.
                let expected: (vehicle: UInt32, timestamp: UInt64)?
                do throws(SampleDecodeError) {
                    let sample = try SampleCodec.decode(bytes)
                    expected = (sample.vehicleID, sample.timestampMicros)
                } catch {
                    expected = nil
                }
                do {
                    _ = try socket.send(bytes)
                } catch {
                    continue  // ENOBUFS and the like: not sent, not counted; retried with a new datagram
                }
                tally.sent += 1
                tally.bytesSent += length
                tally.kinds[kind.rawValue] += 1
                if let expected {
                    tally.sentValid += 1
                    if outstandingValid.updateValue(expected.vehicle, forKey: expected.timestamp) != nil {
                        tally.mismatched += 1
                    }
                } else {
                    tally.sentInvalid += 1
                    outstandingErrors += 1
                }
                if tally.sent % progressEvery == 0 { progress(tally) }
                continue
            }
            receiveOne()
            if ContinuousClock.now - lastAnswer > configuration.answerTimeout {
                tally.unanswered += outstandingValid.count + outstandingErrors
                outstandingValid.removeAll()
                outstandingErrors = 0
                lastAnswer = ContinuousClock.now
            }
        }
        return tally
    }
}

/// The kinds of datagram the fuzzer sends.
public enum DatagramKind: Int, CaseIterable, Sendable {
    /// A valid sample (extreme ids and timestamps included).
    case valid
    /// The right length and magic, every field random bytes.
    case garbageFields
    /// The right length and magic, a NaN, ±infinity, subnormal or huge value in a float field.
    case specialFloats
    /// The right length, a wrong magic.
    case badMagic
    /// 0–39 bytes: random, or a truncated valid record.
    case short
    /// 41–1 500 bytes: random, or a valid record with trailing bytes.
    case long
    /// 1 501–65 507 bytes (the largest UDP payload over IPv4).
    case huge

    /// Writes one datagram of a random kind into `buffer`; returns its length and kind. Every
    /// 40-byte record carries `sequence` as its timestamp, so replies can be matched.
    static func make(
        into buffer: UnsafeMutableRawBufferPointer,
        sequence: UInt64,
        using rng: inout SplitMix64
    ) -> (Int, DatagramKind) {
        let roll = Int.random(in: 0..<100, using: &rng)
        let kind: DatagramKind =
            switch roll {
            case 0..<30: .valid
            case 30..<45: .garbageFields
            case 45..<60: .specialFloats
            case 60..<66: .badMagic
            case 66..<80: .short
            case 80..<92: .long
            default: .huge
            }
        let record = SampleCodec.recordSize
        func validSample() -> VehicleSample {
            VehicleSample(
                vehicleID: [
                    0, 1, UInt32.max, UInt32.max - 1, UInt32.random(in: 0...UInt32.max, using: &rng),
                    UInt32.random(in: 0..<64, using: &rng),
                ].randomElement(using: &rng)!,
                timestampMicros: sequence,
                latitude: [-90, 90, 0, Double.random(in: -90...90, using: &rng)].randomElement(using: &rng)!,
                longitude: [-180, 180, -0.0, Double.random(in: -180...180, using: &rng)].randomElement(using: &rng)!,
                speedKmh: [0, -1, Float.greatestFiniteMagnitude, Float.random(in: 0...250, using: &rng)].randomElement(
                    using: &rng
                )!,
                accelerationMS2: [-Float.greatestFiniteMagnitude, 0, Float.random(in: -15...5, using: &rng)]
                    .randomElement(using: &rng)!
            )
        }
        func randomBytes(_ range: Range<Int>) {
            var i = range.lowerBound
            while i < range.upperBound {
                var word = rng.next()
                let n = min(8, range.upperBound - i)
                withUnsafeBytes(of: &word) { w in for j in 0..<n { buffer[i + j] = w[j] } }
                i += n
            }
        }
        switch kind {
        case .valid:
            return (SampleCodec.encode(validSample(), into: buffer), kind)
        case .garbageFields:
            randomBytes(0..<record)
            buffer.storeBytes(of: SampleCodec.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            buffer.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
            return (record, kind)
        case .specialFloats:
            _ = SampleCodec.encode(validSample(), into: buffer)
            let doubles: [Double] = [
                .nan, -.nan, .signalingNaN, .infinity, -.infinity, .leastNonzeroMagnitude,
                .greatestFiniteMagnitude, 90.000_000_000_001, -180.000_000_1,
            ]
            let floats: [Float] = [
                .nan, .signalingNaN, .infinity, -.infinity, .leastNonzeroMagnitude, -.greatestFiniteMagnitude,
            ]
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                buffer.storeBytes(
                    of: doubles.randomElement(using: &rng)!.bitPattern.littleEndian,
                    toByteOffset: 16,
                    as: UInt64.self
                )
            case 1:
                buffer.storeBytes(
                    of: doubles.randomElement(using: &rng)!.bitPattern.littleEndian,
                    toByteOffset: 24,
                    as: UInt64.self
                )
            case 2:
                buffer.storeBytes(
                    of: floats.randomElement(using: &rng)!.bitPattern.littleEndian,
                    toByteOffset: 32,
                    as: UInt32.self
                )
            default:
                buffer.storeBytes(
                    of: floats.randomElement(using: &rng)!.bitPattern.littleEndian,
                    toByteOffset: 36,
                    as: UInt32.self
                )
            }
            return (record, kind)
        case .badMagic:
            _ = SampleCodec.encode(validSample(), into: buffer)
            var magic = UInt32.random(in: 0...UInt32.max, using: &rng)
            if magic == SampleCodec.magic { magic ^= 1 }
            buffer.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            return (record, kind)
        case .short:
            let length = Int.random(in: 0..<record, using: &rng)
            if Bool.random(using: &rng) {
                _ = SampleCodec.encode(validSample(), into: buffer)
            } else {
                randomBytes(0..<length)
            }
            return (length, kind)
        case .long:
            let length = Int.random(in: (record + 1)...1_500, using: &rng)
            _ = SampleCodec.encode(validSample(), into: buffer)
            randomBytes(record..<length)
            return (length, kind)
        case .huge:
            let length = Int.random(in: 1_501...65_507, using: &rng)
            randomBytes(0..<min(length, 256))  // the rest is whatever the buffer held: size is what matters
            return (length, kind)
        }
    }
}

extension ProcessResources {
    /// `VmRSS` of another process, in KiB (nil when it is gone).
    public static func residentKiB(ofProcess pid: Int32) -> Int? {
        let text = String(decoding: read("/proc/\(pid)/status"), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }
}
