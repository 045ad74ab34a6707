import ActorGraphPlatform
import Foundation
import Synchronization

/// Drives a served telematics graph over loopback UDP at a fixed rate and measures end-to-end
/// latency per record (send → reply), Disruptor-style paced load.
///
/// Each record's timestamp field carries its index, which the reply echoes, so replies are matched
/// without any shared state with the server. A fraction of records can be deliberately broken
/// (short, oversized, bad magic) to show they are answered with errors, not dropped.
public struct TelematicsLoadGenerator: Sendable {
    /// Where the graph listens.
    public var host: String
    /// The graph's UDP port.
    public var port: UInt16
    /// Records per second to send.
    public var rate: Double
    /// Records to send.
    public var count: Int
    /// Every `malformedEvery`-th record is broken on purpose (0: none).
    public var malformedEvery: Int
    /// Vehicles in the synthetic fleet.
    public var vehicles: Int

    /// A load generator.
    public init(
        host: String = "127.0.0.1",
        port: UInt16,
        rate: Double = 20_000,
        count: Int = 20_000,
        malformedEvery: Int = 0,
        vehicles: Int = 32
    ) {
        self.host = host
        self.port = port
        self.rate = rate
        self.count = count
        self.malformedEvery = malformedEvery
        self.vehicles = vehicles
    }

    /// What one run measured.
    public struct Report: Sendable {
        /// Records sent (well-formed and broken).
        public var sent = 0
        /// Replies with the graph's answer.
        public var replies = 0
        /// Error replies (rejected records or failed executions).
        public var errorReplies = 0
        /// Records with no reply before the deadline.
        public var missing = 0
        /// Alerts flagged in replies.
        public var harshBrakingReplies = 0
        /// Speeding alerts flagged in replies.
        public var speedingReplies = 0
        /// Expected alerts for the well-formed samples sent (from the synthetic fleet's script).
        public var expectedHarshBraking = 0
        /// Expected speeding alerts.
        public var expectedSpeeding = 0
        /// Send → reply latency of each answered well-formed record, nanoseconds.
        public var latenciesNanoseconds: [UInt64] = []
        /// Wall time of the run, seconds.
        public var seconds = 0.0
    }

    /// Sends `count` records at `rate`, collects replies until every record is answered or 2 s pass.
    public func run() throws -> Report {
        let socket = try UDPSocket(bindingTo: "127.0.0.1", port: 0)
        defer { socket.close() }
        try socket.connect(host: host, port: port)
        socket.setReceiveTimeout(nanoseconds: 50_000_000)
        let sendTimes = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: count)
        for i in 0..<count { (sendTimes + i).initialize(to: Atomic(0)) }
        defer { sendTimes.deallocate() }
        // `nonisolated(unsafe)`: a pointer to atomics, freed only after both threads joined.
        nonisolated(unsafe) let times = sendTimes
        let sentCount = Atomic<Int>(0)
        let finished = Atomic<Bool>(false)
        let expected = Mutex((harsh: 0, speeding: 0))
        let count = self.count
        let rate = self.rate
        let malformedEvery = self.malformedEvery
        let vehicles = self.vehicles
        let start = MonotonicClock.now()

        let sender = Thread {
            var fleet = SyntheticFleet(vehicles: vehicles, seed: 42)
            var buffer = [UInt8](repeating: 0, count: 128)
            let period = rate > 0 ? 1e9 / rate : 0
            CPU.usePreciseSleeps()
            for i in 0..<count {
                // Sleep (not spin) between records, so the receiver thread can run on this core.
                CPU.sleep(until: start &+ UInt64(Double(i) * period))
                let length: Int
                if malformedEvery > 0 && i % malformedEvery == malformedEvery - 1 {
                    // An extra, broken record: the fleet's samples (and expected alerts) are untouched.
                    let junk = VehicleSample(
                        vehicleID: 1,
                        timestampMicros: UInt64(i),
                        latitude: 0,
                        longitude: 0,
                        speedKmh: 0,
                        accelerationMS2: 0
                    )
                    length = buffer.withUnsafeMutableBytes {
                        TelematicsLoadGenerator.broken(i / malformedEvery, junk, into: $0)
                    }
                } else {
                    var sample = fleet.next()
                    sample.timestampMicros = UInt64(i)
                    length = buffer.withUnsafeMutableBytes { SampleCodec.encode(sample, into: $0) }
                }
                times[i].store(MonotonicClock.now(), ordering: .releasing)
                _ = buffer.withUnsafeBytes { try? socket.send(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
                sentCount.add(1, ordering: .releasing)
            }
            expected.withLock { $0 = (fleet.expectedHarshBraking, fleet.expectedSpeeding) }
            finished.store(true, ordering: .releasing)
        }
        sender.start()

        var report = Report()
        var answered = [Bool](repeating: false, count: count)
        var answeredCount = 0
        report.latenciesNanoseconds.reserveCapacity(count)
        var buffer = [UInt8](repeating: 0, count: 512)
        var quietSince: UInt64 = 0
        while answeredCount + report.errorReplies < count {
            let n = buffer.withUnsafeMutableBytes { try? socket.receive(into: $0) }
            let now = MonotonicClock.now()
            guard let n else {
                // Timed out: stop once sending is over and nothing arrived for 2 s.
                if finished.load(ordering: .acquiring) {
                    if quietSince == 0 { quietSince = now } else if now - quietSince > 2_000_000_000 { break }
                }
                continue
            }
            quietSince = 0
            switch buffer.withUnsafeBytes({ TelematicsReplyCodec.decode(UnsafeRawBufferPointer(rebasing: $0[0..<n])) })
            {
            case .reply(let reply):
                let i = Int(reply.timestampMicros)
                guard i < count, !answered[i] else { continue }
                answered[i] = true
                answeredCount += 1
                report.replies += 1
                report.latenciesNanoseconds.append(now &- times[i].load(ordering: .acquiring))
                if reply.alertBits & 1 != 0 { report.harshBrakingReplies += 1 }
                if reply.alertBits & 2 != 0 { report.speedingReplies += 1 }
            case .error:
                report.errorReplies += 1
            case .garbage:
                continue
            }
        }
        sender.join()
        report.sent = sentCount.load(ordering: .acquiring)
        report.missing = report.sent - report.replies - report.errorReplies
        let e = expected.withLock { $0 }
        report.expectedHarshBraking = e.harsh
        report.expectedSpeeding = e.speeding
        report.seconds = Double(MonotonicClock.now() - start) / 1e9
        return report
    }

    /// Writes a deliberately broken record: short, oversized or with a bad magic, in turn.
    static func broken(_ n: Int, _ sample: VehicleSample, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let length = SampleCodec.encode(sample, into: buffer)
        switch n % 3 {
        case 0: return length / 2
        case 1: return length + 17
        default:
            buffer.storeBytes(of: UInt32(0xBAD0_BAD0), toByteOffset: 0, as: UInt32.self)
            return length
        }
    }
}

extension Thread {
    /// Blocks until the thread finished (polling `isFinished`).
    func join() { while !isFinished { usleep(1_000) } }
}
