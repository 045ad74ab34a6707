import Synchronization

/// A ring slot carrying a value that is not trivially copyable across processes
/// (``Isolation/processes``): the producer encodes it into the slot with its ``WireCodec``, each
/// consumer decodes its own copy. Trivially copyable values never come here: they cross in place.
///
/// The value area of such a slot (after the 32-byte ``SlotRing`` header):
///
///     offset 0  count   UInt32: bytes of the encoded value (at most `limit`)
///     offset 4          unused
///     offset 8  bytes   the encoded value
///
/// A value that needs more than `limit` bytes is not written: the producer publishes the slot as
/// failed with ``FailureCode/valueTooLarge`` (detail: the node; text: "bytes limit"), so that one
/// execution is answered ``ExecutionError/valueTooLarge(node:bytes:limit:)`` and nothing else changes.
struct EncodedSlot: Sendable {
    /// Bytes before the encoded value.
    static let headerBytes = 8
    /// The limit of an edge that declares none (``Node/maxEncodedBytes(_:)``).
    static let defaultLimit = 4096
    /// The largest limit accepted (the count is 32 bits; the region has its own limit too).
    static let maxLimit = 1 << 30

    /// The codec of the node's value type.
    let codec: WireCodec
    /// The most bytes an encoded value may take.
    let limit: Int
    /// The node whose values the channel carries.
    let node: Int
    /// Size and alignment of the decoded value (process-local buffers hold it).
    let valueSize: Int
    let valueAlignment: Int

    /// The layout of a channel carrying `value`'s values encoded: a trivially copyable byte area.
    static func channelLayout(for value: ValueLayout, codec: WireCodec, limit: Int, node: Int) -> ValueLayout {
        var layout = ValueLayout(
            size: headerBytes + limit,
            alignment: 8,
            isTrivial: true,
            destroy: { _ in },
            typeName: "\(value.typeName), encoded (at most \(limit) bytes)"
        )
        layout.encoded = EncodedSlot(
            codec: codec,
            limit: limit,
            node: node,
            valueSize: value.size,
            valueAlignment: value.alignment
        )
        return layout
    }

    /// Encodes the value at `value` into the slot whose value area is `slot`. Returns 0, or the
    /// bytes the value needs when that is over the limit (nothing valid written: fail the slot).
    @inline(__always)
    func write(_ value: UnsafeRawPointer, toSlot slot: UnsafeMutableRawPointer) -> Int {
        let n = codec.encodedCount(
            value,
            into: UnsafeMutableRawBufferPointer(start: slot + EncodedSlot.headerBytes, count: limit)
        )
        guard n <= limit else { return n }
        slot.storeBytes(of: UInt32(truncatingIfNeeded: n), as: UInt32.self)
        return 0
    }

    /// Decodes the slot whose value area is `slot` into uninitialized memory at `destination`.
    @inline(__always)
    func read(fromSlot slot: UnsafeRawPointer, into destination: UnsafeMutableRawPointer) throws {
        let n = Int(slot.load(as: UInt32.self))
        guard n <= limit else { throw WireDecodingError("slot count \(n) over the limit \(limit)") }
        try codec.decode(
            from: UnsafeRawBufferPointer(start: slot + EncodedSlot.headerBytes, count: n),
            into: destination
        )
    }

    /// Process-local memory for `count` decoded values, one per `stride` bytes.
    func allocateValues(count: Int) -> (base: UnsafeMutableRawPointer, stride: Int) {
        let stride = roundUp(max(valueSize, 1), to: max(valueAlignment, 1))
        return (.allocate(byteCount: stride * max(count, 1), alignment: max(valueAlignment, 1)), stride)
    }

    // MARK: Failures

    /// An encoded value over the limit: writes the message; returns the failure code to store.
    static func writeTooLarge(bytes: Int, limit: Int, node: Int, message: UnsafeMutableRawPointer?) -> Int32 {
        if let message { FailureMessage.write("\(bytes) \(limit)", detail: Int32(node), to: message) }
        return FailureCode.valueTooLarge
    }

    /// The error of a slot failed with ``FailureCode/valueTooLarge`` or ``FailureCode/valueNotDecodable``.
    static func error(failure: Int32, detail: Int32, text: String, nodeName: (Int) -> String) -> ExecutionError? {
        switch failure {
        case FailureCode.valueTooLarge:
            let numbers = text.split(separator: " ").compactMap { Int($0) }
            return .valueTooLarge(
                node: nodeName(Int(detail)),
                bytes: numbers.first ?? -1,
                limit: numbers.dropFirst().first ?? -1
            )
        case FailureCode.valueNotDecodable:
            return .stageFailed(node: nodeName(Int(detail)), error: IsolatedStageError(description: text))
        default:
            return nil
        }
    }
}

extension FailureCode {
    /// An encoded value over its edge's limit (detail: the node; text: "bytes limit").
    /// (Codes −16 and below belong to encoded values.)
    static let valueTooLarge: Int32 = -16
    /// An encoded value that did not decode (detail: the node that produced it; text: why).
    static let valueNotDecodable: Int32 = -17
}

// MARK: - Submitting side (the caller's process)

/// The input side of a graph whose input crosses encoded: callers write their input into a
/// process-local staging slot (``Sequencer/slot(_:)``), and the publish encodes it into the ring slot
/// and destroys the staged value.
///
/// `@unchecked Sendable`: staging slot `k & mask` is touched only by the caller that claimed
/// sequence `k`, between its claim and its publish (the sequencer's protocol gives it one owner).
final class InputEncoder: @unchecked Sendable {
    let slot: EncodedSlot
    let staging: UnsafeMutableRawPointer
    let stride: Int
    let mask: Int
    let destroy: @Sendable (UnsafeMutableRawPointer) -> Void
    /// The input ring's failure messages (process mode always has them).
    let messages: UnsafeMutableRawPointer?

    /// `nil` unless the plan's input channel is encoded.
    init?(plan: ExecutionPlan, wiring: EngineWiring) {
        let channel = plan.channels[plan.inputChannel]
        guard let slot = channel.layout.encoded else { return nil }
        self.slot = slot
        (staging, stride) = slot.allocateValues(count: plan.capacity)
        mask = plan.capacity - 1
        destroy = plan.nodes[channel.node].layout.destroy
        messages = wiring.messages[plan.inputChannel]
    }

    deinit { staging.deallocate() }

    /// Where the caller writes sequence `k`'s input (uninitialized).
    @inline(__always)
    func staging(_ k: Int) -> UnsafeMutableRawPointer { staging + (k & mask) &* stride }

    /// Encodes sequences `first ..< first + count` into `ring` (value or failure; not published).
    func encode(first: Int, count: Int, into ring: SlotRing) {
        for k in first..<(first &+ count) {
            let value = staging(k)
            let needed = slot.write(value, toSlot: ring.value(k))
            destroy(value)
            if needed == 0 {
                ring.failure(k).pointee = 0
            } else {
                ring.failure(k).pointee = EncodedSlot.writeTooLarge(
                    bytes: needed,
                    limit: slot.limit,
                    node: slot.node,
                    message: messages.map { $0 + (k & ring.mask) &* FailureMessage.slotBytes }
                )
            }
        }
    }
}

/// The result side of a graph whose output crosses encoded: ``ResultBoard/take(_:)`` and
/// ``ResultBoard/peek(_:)`` decode the slot into a process-local staging slot and hand out that.
///
/// `@unchecked Sendable`: staging slot `k & mask` is touched only by the one taker of result `k`,
/// after `k` was published and before the slot is collected (the result board's protocol); a
/// staged value is destroyed when the next result in that slot is decoded, or at `deinit`.
final class ResultDecoder: @unchecked Sendable {
    let slot: EncodedSlot
    let staging: UnsafeMutableRawPointer
    let stride: Int
    let mask: Int
    let destroy: @Sendable (UnsafeMutableRawPointer) -> Void
    /// Whether staging slot `i` holds a value.
    let staged: UnsafeMutablePointer<Bool>

    /// `nil` unless the plan's output channel is encoded.
    init?(plan: ExecutionPlan) {
        let channel = plan.channels[plan.outputChannel]
        guard let slot = channel.layout.encoded else { return nil }
        self.slot = slot
        (staging, stride) = slot.allocateValues(count: plan.capacity)
        mask = plan.capacity - 1
        destroy = plan.nodes[channel.node].layout.destroy
        staged = .allocate(capacity: plan.capacity)
        staged.initialize(repeating: false, count: plan.capacity)
    }

    deinit {
        for i in 0...mask where staged[i] { destroy(staging + i &* stride) }
        staged.deinitialize(count: mask + 1)
        staged.deallocate()
        staging.deallocate()
    }

    /// Decodes published result `k` from `ring`; returns where the value now is.
    func decode(_ k: Int, from ring: SlotRing) throws -> UnsafeMutableRawPointer {
        let i = k & mask
        let value = staging + i &* stride
        if staged[i] {
            staged[i] = false
            destroy(value)
        }
        try slot.read(fromSlot: ring.value(k), into: value)
        staged[i] = true
        return value
    }
}

// MARK: - Worker side

/// A segment's encoded channels (process mode): the process-local memory its encoded inputs are
/// decoded into and its output is built in before it is encoded into the output slot. `nil` for a
/// segment that touches no encoded channel (the plain path, unchanged).
final class SegmentEncoding {
    /// Per head input: its slot format and decode buffer (`nil`: that input is read in place).
    let inputs:
        [(slot: EncodedSlot, buffer: UnsafeMutableRawPointer, destroy: @Sendable (UnsafeMutableRawPointer) -> Void)?]
    /// The output's slot format and staging buffer (`nil`: the tail writes its slot in place).
    let output:
        (slot: EncodedSlot, buffer: UnsafeMutableRawPointer, destroy: @Sendable (UnsafeMutableRawPointer) -> Void)?

    /// `nil` unless one of `segment`'s channels is encoded.
    init?(plan: ExecutionPlan, segment: ExecutionPlan.Segment) {
        func side(
            _ channel: Int
        ) -> (slot: EncodedSlot, buffer: UnsafeMutableRawPointer, destroy: @Sendable (UnsafeMutableRawPointer) -> Void)?
        {
            guard let slot = plan.channels[channel].layout.encoded else { return nil }
            return (slot, slot.allocateValues(count: 1).base, plan.nodes[plan.channels[channel].node].layout.destroy)
        }
        let inputs = segment.inputChannels.map(side)
        let output = side(segment.outputChannel)
        guard output != nil || inputs.contains(where: { $0 != nil }) else { return nil }
        self.inputs = inputs
        self.output = output
    }

    deinit {
        for side in inputs { side?.buffer.deallocate() }
        output?.buffer.deallocate()
    }
}

/// How ``SegmentRunner`` reaches the values of its slots: in place (``PlainSlots``, which inlines to
/// the bare pointers) or through decode and encode buffers (``EncodedSlots``).
protocol SlotAccess {
    /// What the head's kernel reads for input `i`, whose slot value area is `slot`; `nil` when it
    /// did not decode (then ``inputFailed(_:message:)`` says why).
    func input(_ i: Int, slot: UnsafeMutableRawPointer) -> UnsafeRawPointer?
    /// Input `i` did not decode: writes why to `message`; returns the failure code.
    func inputFailed(_ i: Int, message: UnsafeMutableRawPointer?) -> Int32
    /// Where the tail's kernel writes, for output slot value area `slot`.
    func outputTarget(_ slot: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer
    /// After the tail's kernel wrote its value: moves it into the slot. Returns 0, or a failure code
    /// whose message it wrote to message slot `outputSlot` of `messages`.
    func finishOutput(_ slot: UnsafeMutableRawPointer, messages: UnsafeMutableRawPointer?, outputSlot: Int) -> Int32
    /// Destroys the decoded values of inputs `0 ..< count`.
    func releaseInputs(_ count: Int)
}

/// Slots read and written in place: the path of trivially copyable values and of thread mode.
struct PlainSlots: SlotAccess {
    @inline(__always)
    func input(_ i: Int, slot: UnsafeMutableRawPointer) -> UnsafeRawPointer? { UnsafeRawPointer(slot) }
    @inline(__always)
    func inputFailed(_ i: Int, message: UnsafeMutableRawPointer?) -> Int32 { 0 }
    @inline(__always)
    func outputTarget(_ slot: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer { slot }
    @inline(__always)
    func finishOutput(_ slot: UnsafeMutableRawPointer, messages: UnsafeMutableRawPointer?, outputSlot: Int) -> Int32 {
        0
    }
    @inline(__always)
    func releaseInputs(_ count: Int) {}
}

/// Encoded inputs are decoded into the segment's buffers, an encoded output is built in its staging
/// buffer and encoded into the slot. Each decoded value allocates what its type needs (a `String`
/// over 15 bytes, an array's storage); the buffers themselves are preallocated.
struct EncodedSlots: SlotAccess {
    unowned(unsafe) let encoding: SegmentEncoding

    @inline(__always)
    func input(_ i: Int, slot: UnsafeMutableRawPointer) -> UnsafeRawPointer? {
        guard let side = encoding.inputs[i] else { return UnsafeRawPointer(slot) }
        do {
            try side.slot.read(fromSlot: slot, into: side.buffer)
            return UnsafeRawPointer(side.buffer)
        } catch {
            return nil
        }
    }

    func inputFailed(_ i: Int, message: UnsafeMutableRawPointer?) -> Int32 {
        guard let side = encoding.inputs[i] else { return FailureCode.valueNotDecodable }
        if let message {
            FailureMessage.write(
                "the encoded value of node \(side.slot.node) did not decode",
                detail: Int32(side.slot.node),
                to: message
            )
        }
        return FailureCode.valueNotDecodable
    }

    @inline(__always)
    func outputTarget(_ slot: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer { encoding.output?.buffer ?? slot }

    @inline(__always)
    func finishOutput(_ slot: UnsafeMutableRawPointer, messages: UnsafeMutableRawPointer?, outputSlot: Int) -> Int32 {
        guard let side = encoding.output else { return 0 }
        let needed = side.slot.write(side.buffer, toSlot: slot)
        side.destroy(side.buffer)
        guard needed != 0 else { return 0 }
        return EncodedSlot.writeTooLarge(
            bytes: needed,
            limit: side.slot.limit,
            node: side.slot.node,
            message: messages.map { $0 + outputSlot &* FailureMessage.slotBytes }
        )
    }

    @inline(__always)
    func releaseInputs(_ count: Int) {
        for i in 0..<count { if let side = encoding.inputs[i] { side.destroy(side.buffer) } }
    }
}
