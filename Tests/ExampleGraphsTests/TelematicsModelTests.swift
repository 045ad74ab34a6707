import ActorGraphExamples
import XCTest

final class TelematicsModelTests: XCTestCase {
    private let sample = VehicleSample(
        vehicleID: 0xDEAD_BEEF,
        timestampMicros: 1_735_689_600_123_456,
        latitude: 48.137_154,
        longitude: -11.576_124,
        speedKmh: 87.5,
        accelerationMS2: -1.25
    )

    private func decodeError(_ bytes: [UInt8]) -> SampleDecodeError? {
        do throws(SampleDecodeError) {
            _ = try SampleCodec.decode(bytes)
            return nil
        } catch {
            return error
        }
    }

    private func encoded(_ mutate: (inout VehicleSample) -> Void) -> [UInt8] {
        var s = sample
        mutate(&s)
        return SampleCodec.encode(s)
    }

    // MARK: Codec

    func testTypesAreTriviallyCopyable() {
        XCTAssertTrue(_isPOD(VehicleSample.self))
        XCTAssertTrue(_isPOD(Alert.self))
        XCTAssertTrue(_isPOD(DetectionResult.self))
        XCTAssertEqual(MemoryLayout<VehicleSample>.size, 40)
    }

    func testRoundTripAndLayout() throws {
        XCTAssertEqual(SampleCodec.recordSize, 40)
        var buffer = [UInt8](repeating: 0xAA, count: 48)
        let written = buffer.withUnsafeMutableBytes { SampleCodec.encode(sample, into: $0) }
        XCTAssertEqual(written, 40)
        XCTAssertEqual(Array(buffer[40...]), [UInt8](repeating: 0xAA, count: 8), "wrote past the record")
        // Little-endian magic 0x54454C45, then vehicle id 0xDEADBEEF.
        XCTAssertEqual(Array(buffer[0..<8]), [0x45, 0x4C, 0x45, 0x54, 0xEF, 0xBE, 0xAD, 0xDE])
        // Speed 87.5 = 0x42AF0000 at offset 32.
        XCTAssertEqual(Array(buffer[32..<36]), [0x00, 0x00, 0xAF, 0x42])

        let decoded = try buffer.withUnsafeBytes { raw in
            try SampleCodec.decode(UnsafeRawBufferPointer(rebasing: raw[0..<40]))
        }
        XCTAssertEqual(decoded, sample)
        XCTAssertEqual(try SampleCodec.decode(SampleCodec.encode(sample)), sample)

        // Extremes survive bit-exactly.
        var edge = sample
        edge.vehicleID = .max
        edge.timestampMicros = .max
        edge.latitude = -90
        edge.longitude = 180
        edge.speedKmh = 0
        edge.accelerationMS2 = -Float.greatestFiniteMagnitude
        XCTAssertEqual(try SampleCodec.decode(SampleCodec.encode(edge)), edge)
    }

    func testDecodeRejectsWrongLengths() {
        let bytes = SampleCodec.encode(sample)
        XCTAssertEqual(decodeError(Array(bytes.prefix(39))), .shortRecord(length: 39))
        XCTAssertEqual(decodeError([]), .shortRecord(length: 0))
        XCTAssertEqual(decodeError(bytes + [0]), .oversizedRecord(length: 41))
        XCTAssertEqual(decodeError(bytes + bytes), .oversizedRecord(length: 80))
    }

    func testDecodeRejectsBadMagic() {
        var bytes = SampleCodec.encode(sample)
        bytes[0] = 0x00
        XCTAssertEqual(decodeError(bytes), .badMagic(0x5445_4C00))
        XCTAssertEqual(decodeError([UInt8](repeating: 0, count: 40)), .badMagic(0))
    }

    func testDecodeRejectsInvalidValues() {
        let invalid: [(String, (inout VehicleSample) -> Void)] = [
            ("NaN speed", { $0.speedKmh = .nan }),
            ("inf speed", { $0.speedKmh = .infinity }),
            ("-inf speed", { $0.speedKmh = -.infinity }),
            ("NaN acceleration", { $0.accelerationMS2 = .nan }),
            ("lat 90.0001", { $0.latitude = 90.0001 }),
            ("lat -91", { $0.latitude = -91 }),
            ("lat NaN", { $0.latitude = .nan }),
            ("lon 180.5", { $0.longitude = 180.5 }),
            ("lon -181", { $0.longitude = -181 }),
            ("lon inf", { $0.longitude = .infinity }),
        ]
        for (name, mutate) in invalid {
            let error = decodeError(encoded(mutate))
            guard case .invalidValue(let field)? = error else {
                XCTFail("\(name): expected invalidValue, got \(String(describing: error))")
                continue
            }
            XCTAssertFalse(field.isEmpty, name)
        }
        XCTAssertEqual(decodeError(encoded { $0.speedKmh = .nan }).map { "\($0)" }?.contains("speedKmh"), true)
        XCTAssertEqual(decodeError(encoded { $0.latitude = 91 }), .invalidValue("latitude 91.0"))
        XCTAssertNil(
            decodeError(
                encoded {
                    $0.latitude = 90
                    $0.longitude = -180
                }
            )
        )
    }

    // MARK: Detector

    private func s(_ id: UInt32, _ t: UInt64, speed: Float = 60, accel: Float = 0) -> VehicleSample {
        VehicleSample(
            vehicleID: id,
            timestampMicros: t,
            latitude: 48,
            longitude: 11,
            speedKmh: speed,
            accelerationMS2: accel
        )
    }

    func testHarshBrakingThresholdIsInclusive() {
        var w = VehicleWindows()
        XCTAssertEqual(w.observe(s(1, 1, accel: -6.99)), DetectionResult())
        let atThreshold = w.observe(s(1, 2, accel: -7))
        XCTAssertEqual(
            atThreshold.harshBraking,
            Alert(vehicleID: 1, timestampMicros: 2, kind: .harshBraking, value: -7)
        )
        XCTAssertNil(atThreshold.speeding)
        XCTAssertEqual(w.observe(s(1, 3, accel: -9.5)).harshBraking?.value, -9.5)
        XCTAssertEqual(w.observe(s(1, 4, accel: 3)).alertCount, 0)
    }

    func testSpeedingFiresOncePerExcursionOnFullWindow() {
        var w = VehicleWindows(windowSize: 4, speedLimitKmh: 100)
        // Window not yet full: no alert even far above the limit.
        for t in 1...3 { XCTAssertNil(w.observe(s(7, UInt64(t), speed: 200)).speeding) }
        let first = w.observe(s(7, 4, speed: 200)).speeding
        XCTAssertEqual(first, Alert(vehicleID: 7, timestampMicros: 4, kind: .speeding, value: 200))
        // Still above: stays silent.
        for t in 5...10 { XCTAssertNil(w.observe(s(7, UInt64(t), speed: 150)).speeding) }
        // Average exactly at the limit neither fires nor re-arms: (150+150+50+50)/4 = 100.
        XCTAssertNil(w.observe(s(7, 11, speed: 50)).speeding)  // 150,150,150,50 → 125
        XCTAssertNil(w.observe(s(7, 12, speed: 50)).speeding)  // 150,150,50,50 → 100
        XCTAssertNil(w.observe(s(7, 13, speed: 250)).speeding)  // 150,50,50,250 → 125, not re-armed
        // Drop below (re-arm), then exceed again: a second alert.
        for t in 14...17 { XCTAssertNil(w.observe(s(7, UInt64(t), speed: 40)).speeding) }
        XCTAssertNil(w.observe(s(7, 18, speed: 140)).speeding)  // 40,40,40,140 → 65
        XCTAssertNil(w.observe(s(7, 19, speed: 140)).speeding)  // 90
        let second = w.observe(s(7, 20, speed: 140)).speeding  // 40,140,140,140 → 115
        XCTAssertEqual(second?.timestampMicros, 20)
        XCTAssertEqual(second?.value ?? 0, 115, accuracy: 1e-4)
        XCTAssertEqual(w.vehiclesTracked, 1)
        XCTAssertEqual(w.rejectedVehicles, 0)
    }

    func testVehiclesHaveIndependentWindows() {
        var w = VehicleWindows(windowSize: 2, speedLimitKmh: 100)
        XCTAssertNil(w.observe(s(1, 1, speed: 150)).speeding)
        XCTAssertNil(w.observe(s(2, 2, speed: 10)).speeding)
        XCTAssertNil(w.observe(s(2, 3, speed: 10)).speeding)
        XCTAssertNotNil(w.observe(s(1, 4, speed: 150)).speeding)
        XCTAssertEqual(w.vehiclesTracked, 2)
    }

    func testTableOverflowIsCountedNotFatal() {
        var w = VehicleWindows(maxVehicles: 4, windowSize: 2, speedLimitKmh: 100)
        for id in UInt32(1)...4 { _ = w.observe(s(id, 1)) }
        XCTAssertEqual(w.vehiclesTracked, 4)
        XCTAssertEqual(w.rejectedVehicles, 0)

        // A fifth vehicle is rejected for speed tracking, every time it reports…
        XCTAssertNil(w.observe(s(99, 2, speed: 200)).speeding)
        XCTAssertNil(w.observe(s(99, 3, speed: 200)).speeding)
        XCTAssertEqual(w.rejectedVehicles, 2)
        XCTAssertEqual(w.vehiclesTracked, 4)
        // …but harsh braking needs no state and is still reported.
        XCTAssertEqual(w.observe(s(99, 4, accel: -8)).harshBraking?.vehicleID, 99)
        XCTAssertEqual(w.rejectedVehicles, 3)

        // Known vehicles keep working.
        XCTAssertNotNil(w.observe(s(3, 5, speed: 300)).speeding)  // 60, 300 → 180
        XCTAssertEqual(w.rejectedVehicles, 3)
    }

    func testManyVehiclesWithCollidingIDs() {
        // Ids that share low bits exercise linear probing; all must stay distinct.
        var w = VehicleWindows(maxVehicles: 300, windowSize: 1, speedLimitKmh: 100)
        let ids = (0..<300).map { UInt32($0) << 16 }
        for id in ids { XCTAssertNil(w.observe(s(id, 1, speed: 50)).speeding) }
        for id in ids { XCTAssertEqual(w.observe(s(id, 2, speed: 150)).speeding?.vehicleID, id) }
        XCTAssertEqual(w.vehiclesTracked, 300)
        XCTAssertEqual(w.rejectedVehicles, 0)
        XCTAssertNil(w.observe(s(12345, 3)).speeding)
        XCTAssertEqual(w.rejectedVehicles, 1)
    }

    // MARK: Sink

    func testAlertSinkCounts() {
        var sink = AlertSink()
        let brake = Alert(vehicleID: 1, timestampMicros: 1, kind: .harshBraking, value: -8)
        let fast = Alert(vehicleID: 1, timestampMicros: 1, kind: .speeding, value: 140)
        XCTAssertEqual(sink.record(DetectionResult()), 0)
        XCTAssertEqual(sink.record(DetectionResult(harshBraking: brake)), 1)
        XCTAssertEqual(sink.record(DetectionResult(harshBraking: brake, speeding: fast)), 3)
        XCTAssertEqual(sink.record(DetectionResult(speeding: fast)), 4)
        XCTAssertEqual(sink.harshBrakingCount, 2)
        XCTAssertEqual(sink.speedingCount, 2)
        XCTAssertEqual(sink.totalCount, 4)
    }

    // MARK: Fleet

    func testScriptedScenarioMatchesDetectorExactly() throws {
        let scenario = SyntheticFleet.scripted()
        XCTAssertEqual(scenario.samples.count, 512)
        XCTAssertEqual(scenario.expectedHarshBraking, 8)
        XCTAssertEqual(scenario.expectedSpeeding, 8)
        var windows = VehicleWindows()
        var sink = AlertSink()
        for sample in scenario.samples {
            // Every generated sample is valid on the wire.
            XCTAssertEqual(try SampleCodec.decode(SampleCodec.encode(sample)), sample)
            sink.record(windows.observe(sample))
        }
        XCTAssertEqual(sink.harshBrakingCount, scenario.expectedHarshBraking)
        XCTAssertEqual(sink.speedingCount, scenario.expectedSpeeding)
        XCTAssertEqual(windows.vehiclesTracked, 4)
    }

    func testFleetExpectationsHoldAfterEverySample() {
        var fleet = SyntheticFleet(vehicles: 37, seed: 0xC0FFEE)
        var windows = VehicleWindows()
        var sink = AlertSink()
        var lastTimestamp: UInt64 = 0
        for _ in 0..<(37 * 300) {
            let sample = fleet.next()
            XCTAssertGreaterThan(sample.timestampMicros, lastTimestamp)
            lastTimestamp = sample.timestampMicros
            XCTAssert(abs(sample.latitude - 48.1) <= 0.5 && abs(sample.longitude - 11.6) <= 0.5)
            sink.record(windows.observe(sample))
            if sink.harshBrakingCount != fleet.expectedHarshBraking || sink.speedingCount != fleet.expectedSpeeding {
                XCTFail("diverged after \(fleet.emitted) samples")
                break
            }
        }
        XCTAssertEqual(fleet.emitted, 37 * 300)
        // 300 samples per vehicle cover at least 4 full 64-sample cycles.
        XCTAssertGreaterThanOrEqual(fleet.expectedHarshBraking, 37 * 4)
        XCTAssertGreaterThanOrEqual(fleet.expectedSpeeding, 37 * 4)
        XCTAssertEqual(windows.vehiclesTracked, 37)
    }

    func testFleetIsDeterministic() {
        var a = SyntheticFleet(vehicles: 5, seed: 9)
        var b = SyntheticFleet(vehicles: 5, seed: 9)
        var c = SyntheticFleet(vehicles: 5, seed: 10)
        var sawDifference = false
        for i in 0..<500 {
            let x = a.next()
            XCTAssertEqual(x, b.next())
            XCTAssertEqual(x.vehicleID, SyntheticFleet.firstVehicleID + UInt32(i % 5))
            if x != c.next() { sawDifference = true }
        }
        XCTAssertTrue(sawDifference)
    }
}
