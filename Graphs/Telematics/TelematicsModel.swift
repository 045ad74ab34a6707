// Domain logic for the Telematics example graph: a fixed binary wire format for vehicle
// samples, a per-vehicle stateful detector with preallocated storage, an alert counter and a
// deterministic synthetic fleet with scripted episodes.
//
// Everything here is plain Swift with no dependency on the engine. The value types that cross
// node boundaries (`VehicleSample`, `Alert`, `DetectionResult`) are `BitwiseCopyable`, so they
// can travel through fixed-size channel slots without reference counting.

#if canImport(Glibc)
import Glibc  // links libm, which `squareRoot()` calls in unoptimized builds on Linux
#elseif canImport(Musl)
import Musl
#endif

// MARK: - Values

/// One telemetry reading from one vehicle. Trivially copyable (no references).
public struct VehicleSample: Sendable, Equatable, BitwiseCopyable {
    /// Identifier of the reporting vehicle.
    public var vehicleID: UInt32
    /// Reading time, microseconds since the Unix epoch.
    public var timestampMicros: UInt64
    /// Latitude in degrees, `-90...90`.
    public var latitude: Double
    /// Longitude in degrees, `-180...180`.
    public var longitude: Double
    /// Ground speed in km/h.
    public var speedKmh: Float
    /// Longitudinal acceleration in m/s² (negative when braking).
    public var accelerationMS2: Float

    /// Creates a sample.
    public init(
        vehicleID: UInt32,
        timestampMicros: UInt64,
        latitude: Double,
        longitude: Double,
        speedKmh: Float,
        accelerationMS2: Float
    ) {
        self.vehicleID = vehicleID
        self.timestampMicros = timestampMicros
        self.latitude = latitude
        self.longitude = longitude
        self.speedKmh = speedKmh
        self.accelerationMS2 = accelerationMS2
    }
}

// MARK: - Wire format

/// Why a wire record could not be decoded.
public enum SampleDecodeError: Error, Equatable, Sendable {
    /// Fewer than `SampleCodec.recordSize` bytes.
    case shortRecord(length: Int)
    /// More than `SampleCodec.recordSize` bytes.
    case oversizedRecord(length: Int)
    /// The first four bytes are not `SampleCodec.magic`.
    case badMagic(UInt32)
    /// A field holds an impossible value; the payload names the field.
    case invalidValue(String)
}

/// Fixed 40-byte little-endian record for `VehicleSample`.
///
/// Layout (byte offsets): 0 `u32` magic `0x54454C45` ("TELE"), 4 `u32` vehicleID,
/// 8 `u64` timestampMicros, 16 `f64` latitude, 24 `f64` longitude, 32 `f32` speedKmh,
/// 36 `f32` accelerationMS2. Floats are IEEE 754 bit patterns.
public enum SampleCodec {
    /// Size of one encoded record in bytes.
    public static let recordSize: Int = 40
    /// Magic number in the first four bytes ("TELE" read big-endian).
    public static let magic: UInt32 = 0x5445_4C45

    /// Writes `s` into the first `recordSize` bytes of `buffer` and returns `recordSize`.
    /// - Precondition: `buffer.count >= recordSize`.
    @discardableResult
    public static func encode(_ s: VehicleSample, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= recordSize, "buffer holds \(buffer.count) bytes, need \(recordSize)")
        buffer.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        buffer.storeBytes(of: s.vehicleID.littleEndian, toByteOffset: 4, as: UInt32.self)
        buffer.storeBytes(of: s.timestampMicros.littleEndian, toByteOffset: 8, as: UInt64.self)
        buffer.storeBytes(of: s.latitude.bitPattern.littleEndian, toByteOffset: 16, as: UInt64.self)
        buffer.storeBytes(of: s.longitude.bitPattern.littleEndian, toByteOffset: 24, as: UInt64.self)
        buffer.storeBytes(of: s.speedKmh.bitPattern.littleEndian, toByteOffset: 32, as: UInt32.self)
        buffer.storeBytes(of: s.accelerationMS2.bitPattern.littleEndian, toByteOffset: 36, as: UInt32.self)
        return recordSize
    }

    /// Encodes `s` into a fresh `recordSize`-byte array (convenience for tests and tools).
    public static func encode(_ s: VehicleSample) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: recordSize)
        bytes.withUnsafeMutableBytes { _ = encode(s, into: $0) }
        return bytes
    }

    /// Decodes exactly one record. Rejects wrong lengths, a wrong magic, non-finite speed or
    /// acceleration, latitude outside ±90 and longitude outside ±180 (NaN coordinates included).
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(SampleDecodeError) -> VehicleSample {
        if bytes.count < recordSize { throw .shortRecord(length: bytes.count) }
        if bytes.count > recordSize { throw .oversizedRecord(length: bytes.count) }
        let foundMagic = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        if foundMagic != magic { throw .badMagic(foundMagic) }
        let sample = VehicleSample(
            vehicleID: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
            timestampMicros: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
            latitude: Double(
                bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            ),
            longitude: Double(
                bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            ),
            speedKmh: Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 32, as: UInt32.self))),
            accelerationMS2: Float(
                bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 36, as: UInt32.self))
            )
        )
        if !sample.speedKmh.isFinite { throw .invalidValue("speedKmh \(sample.speedKmh)") }
        if !sample.accelerationMS2.isFinite { throw .invalidValue("accelerationMS2 \(sample.accelerationMS2)") }
        if !(sample.latitude >= -90 && sample.latitude <= 90) { throw .invalidValue("latitude \(sample.latitude)") }
        if !(sample.longitude >= -180 && sample.longitude <= 180) {
            throw .invalidValue("longitude \(sample.longitude)")
        }
        return sample
    }

    /// Decodes a byte array (convenience wrapper over the buffer-pointer overload).
    public static func decode(_ bytes: [UInt8]) throws(SampleDecodeError) -> VehicleSample {
        let result: Result<VehicleSample, SampleDecodeError> = bytes.withUnsafeBytes { raw in
            do throws(SampleDecodeError) { return .success(try decode(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

// MARK: - Alerts

/// What an alert is about.
public enum AlertKind: UInt8, Sendable, BitwiseCopyable {
    /// A single sample with acceleration at or below the braking threshold.
    case harshBraking = 1
    /// The moving-average speed went above the limit.
    case speeding = 2
}

/// One detected event. Trivially copyable.
public struct Alert: Sendable, Equatable, BitwiseCopyable {
    /// Vehicle that caused the alert.
    public var vehicleID: UInt32
    /// Timestamp of the sample that triggered it.
    public var timestampMicros: UInt64
    /// Which rule fired.
    public var kind: AlertKind
    /// The measured value: acceleration (m/s²) for harsh braking, average speed (km/h) for speeding.
    public var value: Float

    /// Creates an alert.
    public init(vehicleID: UInt32, timestampMicros: UInt64, kind: AlertKind, value: Float) {
        self.vehicleID = vehicleID
        self.timestampMicros = timestampMicros
        self.kind = kind
        self.value = value
    }
}

/// Alerts produced by one observed sample (at most one of each kind). Trivially copyable.
public struct DetectionResult: Sendable, Equatable, BitwiseCopyable {
    /// Set when the sample's acceleration is at or below the braking threshold.
    public var harshBraking: Alert?
    /// Set on the sample whose window average first goes above the speed limit.
    public var speeding: Alert?

    /// Creates a result (empty by default).
    public init(harshBraking: Alert? = nil, speeding: Alert? = nil) {
        self.harshBraking = harshBraking
        self.speeding = speeding
    }

    /// Number of alerts present (0, 1 or 2).
    public var alertCount: Int { (harshBraking == nil ? 0 : 1) + (speeding == nil ? 0 : 1) }
    /// True when no alert fired.
    public var isEmpty: Bool { alertCount == 0 }
}

// MARK: - Detector

/// Per-vehicle harsh-braking and speeding detector whose storage is all allocated in `init`.
///
/// Vehicles are found through an open-addressing (linear probing) table of fixed capacity;
/// each tracked vehicle owns a ring of its last `windowSize` speeds. Once `maxVehicles`
/// distinct vehicles are tracked, samples from new vehicles are still checked for harsh
/// braking (which needs no state) but cannot be tracked for speeding; each such sample is
/// counted in `rejectedVehicles`. `observe` never allocates.
///
/// Speeding: when a vehicle has at least `windowSize` samples and the mean of its last
/// `windowSize` speeds is above `speedLimitKmh`, one alert fires; the rule re-arms only when
/// the mean drops below the limit again.
public struct VehicleWindows: Sendable {
    /// Most distinct vehicles tracked at once.
    public let maxVehicles: Int
    /// Samples per vehicle in the speed moving average.
    public let windowSize: Int
    /// Moving-average speed (km/h) above which a speeding alert fires.
    public let speedLimitKmh: Float
    /// Acceleration (m/s², negative) at or below which a harsh-braking alert fires.
    public let harshBrakingMS2: Float

    /// Distinct vehicles currently tracked (at most `maxVehicles`).
    public private(set) var vehiclesTracked: Int = 0
    /// Samples whose vehicle could not be tracked because the table was full.
    public private(set) var rejectedVehicles: Int = 0

    // Open-addressing table: power-of-two capacity ≥ 2 × maxVehicles; `slotVehicle[i] < 0` is empty.
    private var slotKeys: [UInt32]
    private var slotVehicle: [Int32]
    private let slotMask: Int
    // Per-vehicle state, indexed by dense vehicle index.
    private var speeds: [Float]  // maxVehicles × windowSize rings
    private var ringNext: [Int32]  // next write position in each ring
    private var sampleCount: [UInt32]  // samples seen, saturating at windowSize
    private var speedingArmed: [Bool]

    /// Allocates all storage for `maxVehicles` vehicles with `windowSize`-sample windows.
    public init(
        maxVehicles: Int = 1024,
        windowSize: Int = 8,
        speedLimitKmh: Float = 130,
        harshBrakingMS2: Float = -7.0
    ) {
        precondition(maxVehicles > 0, "maxVehicles must be positive")
        precondition(windowSize > 0, "windowSize must be positive")
        self.maxVehicles = maxVehicles
        self.windowSize = windowSize
        self.speedLimitKmh = speedLimitKmh
        self.harshBrakingMS2 = harshBrakingMS2
        var capacity = 2
        while capacity < maxVehicles * 2 { capacity <<= 1 }
        self.slotMask = capacity - 1
        self.slotKeys = [UInt32](repeating: 0, count: capacity)
        self.slotVehicle = [Int32](repeating: -1, count: capacity)
        self.speeds = [Float](repeating: 0, count: maxVehicles * windowSize)
        self.ringNext = [Int32](repeating: 0, count: maxVehicles)
        self.sampleCount = [UInt32](repeating: 0, count: maxVehicles)
        self.speedingArmed = [Bool](repeating: true, count: maxVehicles)
    }

    /// Feeds one sample and returns the alerts it triggers.
    public mutating func observe(_ s: VehicleSample) -> DetectionResult {
        var result = DetectionResult()
        if s.accelerationMS2 <= harshBrakingMS2 {
            result.harshBraking = Alert(
                vehicleID: s.vehicleID,
                timestampMicros: s.timestampMicros,
                kind: .harshBraking,
                value: s.accelerationMS2
            )
        }
        guard let v = vehicleIndex(for: s.vehicleID) else {
            rejectedVehicles += 1
            return result
        }
        // Push the speed into the vehicle's ring.
        let base = v * windowSize
        let position = Int(ringNext[v])
        speeds[base + position] = s.speedKmh
        ringNext[v] = Int32(position + 1 == windowSize ? 0 : position + 1)
        if sampleCount[v] < UInt32(windowSize) { sampleCount[v] += 1 }
        guard sampleCount[v] == UInt32(windowSize) else { return result }

        var sum: Float = 0
        for i in base..<(base + windowSize) { sum += speeds[i] }
        let average = sum / Float(windowSize)
        if average > speedLimitKmh {
            if speedingArmed[v] {
                speedingArmed[v] = false
                result.speeding = Alert(
                    vehicleID: s.vehicleID,
                    timestampMicros: s.timestampMicros,
                    kind: .speeding,
                    value: average
                )
            }
        } else if average < speedLimitKmh {
            speedingArmed[v] = true
        }
        return result
    }

    /// Returns the dense index for `id`, inserting it if there is room; nil when the table is full.
    private mutating func vehicleIndex(for id: UInt32) -> Int? {
        // Fibonacci hashing spreads sequential ids across the table.
        var slot = Int(truncatingIfNeeded: (UInt64(id) &* 0x9E37_79B9_7F4A_7C15) >> 32) & slotMask
        while true {
            let occupant = slotVehicle[slot]
            if occupant < 0 {
                guard vehiclesTracked < maxVehicles else { return nil }
                let index = vehiclesTracked
                vehiclesTracked += 1
                slotKeys[slot] = id
                slotVehicle[slot] = Int32(index)
                return index
            }
            if slotKeys[slot] == id { return Int(occupant) }
            slot = (slot + 1) & slotMask
        }
    }
}

// MARK: - Sink

/// Counts the alerts it is given.
public struct AlertSink: Sendable {
    /// Harsh-braking alerts recorded so far.
    public private(set) var harshBrakingCount: Int = 0
    /// Speeding alerts recorded so far.
    public private(set) var speedingCount: Int = 0

    /// Creates an empty sink.
    public init() {}

    /// All alerts recorded so far.
    public var totalCount: Int { harshBrakingCount + speedingCount }

    /// Counts the alerts in `r` and returns the running total of all alerts.
    @discardableResult
    public mutating func record(_ r: DetectionResult) -> Int {
        if r.harshBraking != nil { harshBrakingCount += 1 }
        if r.speeding != nil { speedingCount += 1 }
        return totalCount
    }
}

// MARK: - Synthetic fleet

/// Deterministic generator of telemetry for a fleet, with scripted alert episodes.
///
/// Samples are emitted round-robin: vehicle `i` (id `firstVehicleID + i`) reports once per
/// simulated second. Each vehicle follows a 64-sample cycle, offset by a per-vehicle phase in
/// `0..<16`: phase 24 is one harsh brake (acceleration −8…−9 m/s²); phases 32..<44 are a
/// speeding episode at 170…180 km/h; all other samples cruise at 65…75 km/h with acceleration
/// within ±2 m/s². These bands make the default `VehicleWindows` (window 8, limit 130 km/h,
/// braking −7 m/s²) fire exactly one speeding alert on an episode's 5th sample and exactly one
/// harsh-braking alert per brake, so `expectedHarshBraking` and `expectedSpeeding` equal a
/// default detector's counts after every call to `next()`. Vehicles stay within ±0.5° of
/// (48.1°, 11.6°).
public struct SyntheticFleet: Sendable {
    /// Number of vehicles in the fleet.
    public let vehicles: Int
    /// Seed of the generator.
    public let seed: UInt64
    /// Id of vehicle 0; vehicle `i` has id `firstVehicleID + i`.
    public static let firstVehicleID: UInt32 = 10_000
    /// Timestamp of the first round, microseconds since the Unix epoch (2025-01-01T00:00:00Z).
    public static let startMicros: UInt64 = 1_735_689_600_000_000
    /// Samples per vehicle in one scripted cycle.
    public static let cycleLength = 64

    /// Harsh-braking alerts a default `VehicleWindows` raises on the samples emitted so far.
    public private(set) var expectedHarshBraking: Int = 0
    /// Speeding alerts a default `VehicleWindows` raises on the samples emitted so far.
    public private(set) var expectedSpeeding: Int = 0
    /// Samples emitted so far.
    public private(set) var emitted: Int = 0

    private static let brakePhase = 24
    private static let speedingPhases = 32..<44
    private static let centerLatitude = 48.1
    private static let centerLongitude = 11.6
    private static let radiusDegrees = 0.5

    private var rng: SplitMixState
    private var phaseOffset: [Int]
    private var latitude: [Double]
    private var longitude: [Double]
    private var headingLat: [Double]
    private var headingLon: [Double]

    /// Creates a fleet of `vehicles` (at least 1) whose whole sample stream is fixed by `seed`.
    public init(vehicles: Int, seed: UInt64) {
        precondition(vehicles > 0, "a fleet needs at least one vehicle")
        self.vehicles = vehicles
        self.seed = seed
        var rng = SplitMixState(seed)
        var offsets = [Int]()
        var lats = [Double]()
        var lons = [Double]()
        var hLat = [Double]()
        var hLon = [Double]()
        for _ in 0..<vehicles {
            offsets.append(Int(rng.next() % 16))
            lats.append(Self.centerLatitude + (rng.unit() * 2 - 1) * Self.radiusDegrees * 0.9)
            lons.append(Self.centerLongitude + (rng.unit() * 2 - 1) * Self.radiusDegrees * 0.9)
            var x = rng.unit() * 2 - 1
            var y = rng.unit() * 2 - 1
            let length = (x * x + y * y).squareRoot()
            if length < 1e-6 {
                x = 1
                y = 0
            } else {
                x /= length
                y /= length
            }
            hLat.append(x)
            hLon.append(y)
        }
        self.rng = rng
        self.phaseOffset = offsets
        self.latitude = lats
        self.longitude = lons
        self.headingLat = hLat
        self.headingLon = hLon
    }

    /// Returns the next sample in round-robin vehicle order.
    public mutating func next() -> VehicleSample {
        let vehicle = emitted % vehicles
        let tick = emitted / vehicles
        emitted += 1
        let phase = (tick + phaseOffset[vehicle]) % Self.cycleLength

        var speed = 70 + Float(rng.unit() * 10 - 5)
        var acceleration = Float(rng.unit() * 4 - 2)
        if phase == Self.brakePhase {
            acceleration = -8.5 + Float(rng.unit() - 0.5)
            expectedHarshBraking += 1
        } else if Self.speedingPhases.contains(phase) {
            speed = 175 + Float(rng.unit() * 10 - 5)
            if phase == Self.speedingPhases.lowerBound + 4 { expectedSpeeding += 1 }
        }

        // Move one second along the heading, bouncing off the edges of the box.
        let degrees = Double(speed) / 3.6 / 111_320
        var lat = latitude[vehicle] + headingLat[vehicle] * degrees
        var lon = longitude[vehicle] + headingLon[vehicle] * degrees
        if abs(lat - Self.centerLatitude) > Self.radiusDegrees {
            headingLat[vehicle] = -headingLat[vehicle]
            lat = latitude[vehicle]
        }
        if abs(lon - Self.centerLongitude) > Self.radiusDegrees {
            headingLon[vehicle] = -headingLon[vehicle]
            lon = longitude[vehicle]
        }
        latitude[vehicle] = lat
        longitude[vehicle] = lon

        let spacing = UInt64(1_000_000 / vehicles)
        return VehicleSample(
            vehicleID: Self.firstVehicleID &+ UInt32(truncatingIfNeeded: vehicle),
            timestampMicros: Self.startMicros + UInt64(tick) * 1_000_000 + UInt64(vehicle) * spacing,
            latitude: lat,
            longitude: lon,
            speedKmh: speed,
            accelerationMS2: acceleration
        )
    }

    /// A ready-made scenario: 4 vehicles × 2 cycles (512 samples, seed 42) with 8 harsh brakes
    /// and 8 speeding episodes; the counts are what a default `VehicleWindows` reports.
    public static func scripted() -> (samples: [VehicleSample], expectedHarshBraking: Int, expectedSpeeding: Int) {
        var fleet = SyntheticFleet(vehicles: 4, seed: 42)
        var samples = [VehicleSample]()
        samples.reserveCapacity(4 * 2 * cycleLength)
        for _ in 0..<(4 * 2 * cycleLength) { samples.append(fleet.next()) }
        return (samples, fleet.expectedHarshBraking, fleet.expectedSpeeding)
    }
}

/// SplitMix64 state private to this file, so the telematics model needs nothing from other files.
private struct SplitMixState: Sendable {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
