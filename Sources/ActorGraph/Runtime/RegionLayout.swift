import ActorGraphPlatform
import Synchronization

/// Where everything lives in the shared-memory region. A pure function of the plan (and the
/// isolation mode), so a worker child process computes the same offsets as its parent.
///
///     [header page: process mode only]            plan parameters and fingerprint for children
///     [control: stopping, terminal] [next sequence] [park word of worker 0] … [park word of W-1]
///     [control block of worker 0] … [W-1]          progress, current node, handshake, refusal
///     [ring of channel 0 (input)] [ring 1] …
///     [failure messages of channel 0] [1] …        process mode only: one fixed-size text per slot
///     [scratch of fused segments]
struct RegionLayout {
    static let line = SlotRing.cacheLine
    /// The header page of a process-mode region (``RegionHeader``).
    static let headerBytes = 4096
    /// Bytes of one worker control block (``WorkerControl``).
    static let controlBlockBytes = 512
    /// Bytes of one failure message slot (``FailureMessage``).
    static let messageBytes = FailureMessage.slotBytes

    let processMode: Bool
    let control: Int
    let nextSequence: Int
    let parkWords: [Int]
    let controlBlocks: [Int]
    let rings: [Int]
    /// Per channel, the first message slot (process mode and graphs spanning hosts only).
    let messages: [Int?]
    let scratch: [[Int]]
    let totalBytes: Int

    init(plan: ExecutionPlan, processMode: Bool) {
        let line = RegionLayout.line
        self.processMode = processMode
        var offset = processMode ? RegionLayout.headerBytes : 0
        control = RegionLayout.controlLine(processMode: processMode)
        nextSequence = offset + line
        offset += 2 * line
        parkWords = (0..<plan.workerCount).map { offset + $0 * line }
        offset += plan.workerCount * line
        controlBlocks = (0..<plan.workerCount).map {
            RegionLayout.controlBlock(worker: $0, workerCount: plan.workerCount, processMode: processMode)
        }
        offset += plan.workerCount * RegionLayout.controlBlockBytes
        var rings: [Int] = []
        for channel in plan.channels {
            offset = roundUp(offset, to: max(line, channel.layout.alignment))
            rings.append(offset)
            offset += SlotRing.byteCount(for: channel.layout, capacity: plan.capacity)
        }
        self.rings = rings
        var messages: [Int?] = []
        // Failures cross processes and hosts as text.
        for _ in plan.channels {
            if processMode || plan.isRemote {
                messages.append(offset)
                offset += plan.capacity * RegionLayout.messageBytes
            } else {
                messages.append(nil)
            }
        }
        self.messages = messages
        var scratch: [[Int]] = []
        for segment in plan.segments {
            var offsets: [Int] = []
            for node in segment.nodes.dropLast() {
                let layout = plan.nodes[node].layout
                offset = roundUp(offset, to: max(line, layout.alignment))
                offsets.append(offset)
                offset += max(layout.size, 1)
            }
            scratch.append(offsets)
        }
        self.scratch = scratch
        totalBytes = offset
    }

    /// The offset of the control line (the `stopping` word first): fixed, so a standby process can
    /// watch it before it has laid out anything else.
    static func controlLine(processMode: Bool) -> Int { processMode ? headerBytes : 0 }

    /// The offset of worker `w`'s control block: depends only on the worker count, so a child
    /// that found no matching graph can still write its refusal.
    static func controlBlock(worker w: Int, workerCount: Int, processMode: Bool) -> Int {
        controlLine(processMode: processMode) + 2 * line + workerCount * line + w * controlBlockBytes
    }
}

/// Words of the region's control line.
enum TerminalState {
    /// Running, or shut down by `shutdown()`.
    static let none: UInt32 = 0
    /// A worker used up its restarts: every waiter and later call gets ``ExecutionError/restartsExhausted(worker:restarts:)``.
    static let restartsExhausted: UInt32 = 1
}

/// One worker's control block in the region: what the worker reports (progress, the node it is in,
/// how it parks) and, in process mode, the start-up handshake with the parent.
///
///     offset   0  progress        UInt64 atomic: executions finished (worker-written, relaxed)
///     offset   8  node            UInt32 atomic: index + 1 of the node running now, 0 between nodes
///     offset  12  parkMechanism   UInt32: 0 futex, 1 io_uring futex-wait
///     offset  16  parkCount       UInt64 atomic: times parked
///     offset  64  state           UInt32 atomic: 0 starting, 1 ready, 2 refused (futex: the parent waits on it)
///     offset  68  refusalCode     UInt32: a ``RefusalCode``
///     offset  72  resume          Int64: the sequence every segment of the worker starts at
///     offset  88  standbyState    UInt32 atomic: 1 while a standby process for this worker waits
///     offset  92  standbyGo       UInt32 atomic: the supervisor sets 1 to activate the standby (futex)
///     offset 128  refusal text    up to 384 bytes (``FailureMessage`` encoding)
///
/// `@unchecked Sendable`: a pointer into the region; the worker writes its fields (atomics or before
/// the handshake), the parent reads them.
struct WorkerControl: @unchecked Sendable {
    let base: UnsafeMutableRawPointer

    var progress: UnsafeMutablePointer<Atomic<UInt64>> { base.assumingMemoryBound(to: Atomic<UInt64>.self) }
    var node: UnsafeMutablePointer<Atomic<UInt32>> { (base + 8).assumingMemoryBound(to: Atomic<UInt32>.self) }
    /// Written once by the worker when it starts, read by diagnostics from any thread: an atomic.
    var parkMechanism: UnsafeMutablePointer<Atomic<UInt32>> { (base + 12).assumingMemoryBound(to: Atomic<UInt32>.self) }
    var parkCount: UnsafeMutablePointer<Atomic<UInt64>> { (base + 16).assumingMemoryBound(to: Atomic<UInt64>.self) }
    var state: UnsafeMutablePointer<Atomic<UInt32>> { (base + 64).assumingMemoryBound(to: Atomic<UInt32>.self) }
    var refusalCode: UnsafeMutablePointer<UInt32> { (base + 68).assumingMemoryBound(to: UInt32.self) }
    var resume: UnsafeMutablePointer<Int> { (base + 72).assumingMemoryBound(to: Int.self) }
    var standbyState: UnsafeMutablePointer<Atomic<UInt32>> { (base + 88).assumingMemoryBound(to: Atomic<UInt32>.self) }
    var standbyGo: UnsafeMutablePointer<Atomic<UInt32>> { (base + 92).assumingMemoryBound(to: Atomic<UInt32>.self) }
    var refusalText: UnsafeMutableRawPointer { base + 128 }
    static let refusalTextBytes = RegionLayout.controlBlockBytes - 128

    static let starting: UInt32 = 0
    static let ready: UInt32 = 1
    static let refused: UInt32 = 2
}

/// Why a worker child refused to start.
enum RefusalCode {
    /// No graph given to `runIfChild` has the parent's plan fingerprint.
    static let planMismatch: UInt32 = 1
    /// The program compiled a graph in a worker child without calling `runIfChild` first.
    static let missingEntryPoint: UInt32 = 2
}

/// A fixed-size text in shared memory: an `Int32` byte count, an `Int32` detail (a worker or node
/// index), then UTF-8 bytes, truncated on a character boundary so that it always decodes.
enum FailureMessage {
    static let slotBytes = 256

    static func write(_ text: String, detail: Int32, to slot: UnsafeMutableRawPointer, capacity: Int = slotBytes) {
        let room = capacity - 8
        var bytes = Array(text.utf8)
        if bytes.count > room {
            // Cut on a UTF-8 boundary (never in the middle of a multi-byte character).
            var cut = room
            while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
            bytes = Array(bytes[..<cut])
        }
        slot.storeBytes(of: Int32(bytes.count), as: Int32.self)
        (slot + 4).storeBytes(of: detail, as: Int32.self)
        bytes.withUnsafeBytes { (slot + 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    static func read(_ slot: UnsafeMutableRawPointer, capacity: Int = slotBytes) -> (detail: Int32, text: String) {
        let count = max(0, min(Int(slot.load(as: Int32.self)), capacity - 8))
        let detail = (slot + 4).load(as: Int32.self)
        let text = String(decoding: UnsafeRawBufferPointer(start: slot + 8, count: count), as: UTF8.self)
        return (detail, text)
    }

    static func copy(from source: UnsafeMutableRawPointer, to destination: UnsafeMutableRawPointer) {
        let count = max(0, min(Int(source.load(as: Int32.self)), slotBytes - 8))
        destination.copyMemory(from: source, byteCount: 8 + count)
    }
}

/// Failure codes below zero: failures no stage threw (the slot's message says more).
enum FailureCode {
    /// The worker process producing this slot died (detail: the worker; text: the reason).
    static let workerCrashed: Int32 = -1
    /// The host this execution needed was lost (detail: the host index; text: the reason).
    static let hostLost: Int32 = -3
    /// The stage was killed for running past the time limit (detail: the node).
    static let stageTimedOut: Int32 = -2
}

/// The header page of a process-mode region: what a worker child needs to rebuild the plan.
///
/// All fields are 64-bit at fixed offsets; CPUs from offset 512 (one `Int64` per worker, -1 unpinned).
struct RegionHeader {
    static let magic: UInt64 = 0x4147_4953_4F30_3031  // "AGISO001"
    var fingerprint: UInt64
    var workerCount: Int
    var capacity: Int
    var placement: Placement
    var batchSize: Int
    var workerSpins: Int
    var callerSpins: Int
    var spinTimeNanoseconds: Int
    var parkTimeoutNanoseconds: Int
    var useIORing: Bool
    var numaNode: Int
    var cpus: [Int?]
    /// ``CompileOptions/statistics``: the sampling interval, 0 when off (field 12).
    var statisticsInterval = 0
    /// The workers' idle strategy (field 13, as its ``WaitStrategy/code``).
    var waitStrategy: WaitStrategy = .adaptive

    static let maxWorkers = (RegionLayout.headerBytes - 512) / 8

    func write(to base: UnsafeMutableRawPointer) {
        let fields: [Int64] = [
            Int64(bitPattern: RegionHeader.magic), Int64(bitPattern: fingerprint), Int64(workerCount),
            Int64(capacity), Int64(placement.code), Int64(batchSize), Int64(workerSpins), Int64(callerSpins),
            Int64(spinTimeNanoseconds), Int64(parkTimeoutNanoseconds), useIORing ? 1 : 0, Int64(numaNode),
        ]
        for (i, f) in fields.enumerated() { base.storeBytes(of: f, toByteOffset: i * 8, as: Int64.self) }
        base.storeBytes(of: Int64(statisticsInterval), toByteOffset: 12 * 8, as: Int64.self)
        base.storeBytes(of: Int64(waitStrategy.code), toByteOffset: 13 * 8, as: Int64.self)
        for (i, cpu) in cpus.enumerated() {
            base.storeBytes(of: Int64(cpu ?? -1), toByteOffset: 512 + i * 8, as: Int64.self)
        }
    }

    static func read(from base: UnsafeMutableRawPointer, size: Int) -> RegionHeader? {
        guard size >= RegionLayout.headerBytes else { return nil }
        func field(_ i: Int) -> Int64 { base.load(fromByteOffset: i * 8, as: Int64.self) }
        guard UInt64(bitPattern: field(0)) == magic else { return nil }
        let workers = Int(field(2))
        guard workers >= 1, workers <= maxWorkers else { return nil }
        // A code this program does not know (another build wrote the header): refuse, never guess.
        guard let placement = Placement(code: Int(field(4))), let strategy = WaitStrategy(code: Int(field(13))) else {
            return nil
        }
        let cpus: [Int?] = (0..<workers).map { i in
            let c = base.load(fromByteOffset: 512 + i * 8, as: Int64.self)
            return c < 0 ? nil : Int(c)
        }
        return RegionHeader(
            fingerprint: UInt64(bitPattern: field(1)),
            workerCount: workers,
            capacity: Int(field(3)),
            placement: placement,
            batchSize: Int(field(5)),
            workerSpins: Int(field(6)),
            callerSpins: Int(field(7)),
            spinTimeNanoseconds: Int(field(8)),
            parkTimeoutNanoseconds: Int(field(9)),
            useIORing: field(10) != 0,
            numaNode: Int(field(11)),
            cpus: cpus,
            statisticsInterval: Int(field(12)),
            waitStrategy: strategy
        )
    }

    /// The options a child runs its worker with.
    var workerOptions: CompileOptions {
        var o = CompileOptions(
            workers: workerCount,
            capacity: capacity,
            pinWorkers: cpus.first.map { $0 != nil } ?? false,
            idle: IdlePolicy(
                workerSpins: workerSpins,
                callerSpins: callerSpins,
                spinTime: .nanoseconds(spinTimeNanoseconds),
                parkTimeout: .nanoseconds(parkTimeoutNanoseconds),
                strategy: waitStrategy
            ),
            batchSize: batchSize,
            useIORing: useIORing
        )
        o.placement = placement
        o.statistics = statisticsInterval > 0 ? .sampled(every: statisticsInterval) : .off
        return o
    }
}

extension WaitStrategy {
    /// How the region header stores it: its position in `allCases`, so a new case gets a code
    /// without touching this file.
    var code: Int { WaitStrategy.allCases.firstIndex(of: self)! }
    /// `nil` for a code no case has.
    init?(code: Int) {
        guard WaitStrategy.allCases.indices.contains(code) else { return nil }
        self = WaitStrategy.allCases[code]
    }
}

extension Placement {
    /// How the region header stores it: its position in `allCases`.
    var code: Int { Placement.allCases.firstIndex(of: self)! }
    /// `nil` for a code no case has.
    init?(code: Int) {
        guard Placement.allCases.indices.contains(code) else { return nil }
        self = Placement.allCases[code]
    }
}
