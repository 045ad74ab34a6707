import ActorGraphPlatform
import Glibc
import Synchronization

/// A UDP source and sink on worker 0's io_uring: each datagram is one record, decoded and
/// submitted as an execution; each result (or error) goes back to the sender as one datagram.
///
/// The same ring that parks the worker carries the `recvmsg`/`sendmsg` requests, so a parked
/// worker wakes for network input as well as for its doorbell. Receive buffers, message headers
/// and reply buffers are preallocated; the per-record cost is the two system calls io_uring batches.
///
/// `@unchecked Sendable` so a ``ServedGraph`` can read ``statistics`` from any thread: that is a
/// `Mutex`; everything else is touched only by worker 0's thread once the worker started.
final class UDPService<Input, Output>: RingAttachment, @unchecked Sendable {
    private static var receiveTag: UInt64 { 0x5243_0000_0000_0000 }
    private static var sendTag: UInt64 { 0x5344_0000_0000_0000 }
    private static var tagMask: UInt64 { 0xFFFF_0000_0000_0000 }

    let socket: UDPSocket
    let codec: RecordCodec<Input, Output>
    unowned(unsafe) var core: EngineCore!
    private var ring: IORing!
    private let receiveSlots: Int
    private let bufferSize: Int
    // Receive side: one buffer, iovec, msghdr and peer address per outstanding recvmsg.
    private let receiveBuffers: UnsafeMutableRawPointer
    private let receiveIOVecs: UnsafeMutablePointer<iovec>
    private let receiveHeaders: UnsafeMutablePointer<msghdr>
    private let receivePeers: UnsafeMutablePointer<sockaddr_in>
    /// Decoded records waiting for a free slot (graph full), per receive slot.
    private var stalled: [Input?]
    private var stalledCount = 0
    // Send side: one buffer, iovec, msghdr and peer per result slot (indexed by sequence & mask).
    private let capacity: Int
    private let sendBuffers: UnsafeMutableRawPointer
    private let sendIOVecs: UnsafeMutablePointer<iovec>
    private let sendHeaders: UnsafeMutablePointer<msghdr>
    private let sendPeers: UnsafeMutablePointer<sockaddr_in>
    private let sendSequence: UnsafeMutablePointer<Int>
    /// Sequences this source submitted, in order, awaiting their result (a ring of `capacity`).
    private let pending: UnsafeMutablePointer<Int>
    private var pendingHead = 0
    private var pendingTail = 0
    /// Error replies for rejected records, sent from a small separate pool.
    private let rejectPool = 64
    private var rejectsInFlight = 0
    private var queued = false
    private var stopping = false
    let statistics = Mutex(ServiceStatistics())
    private var local = ServiceStatistics()
    /// Set by ``ServedGraph/stopReceiving()`` on any thread; the worker then stops admitting records.
    let stopReceivingRequested = Atomic<Bool>(false)

    init(socket: UDPSocket, codec: RecordCodec<Input, Output>, capacity: Int, receiveSlots: Int = 32) {
        self.socket = socket
        self.codec = codec
        self.capacity = capacity
        self.receiveSlots = receiveSlots
        self.bufferSize = roundUp(max(codec.maxRecordSize, 256), to: 64)
        receiveBuffers = .allocate(byteCount: bufferSize * receiveSlots, alignment: 64)
        receiveIOVecs = .allocate(capacity: receiveSlots)
        receiveHeaders = .allocate(capacity: receiveSlots)
        receivePeers = .allocate(capacity: receiveSlots)
        stalled = Array(repeating: nil, count: receiveSlots)
        let sendCount = capacity + rejectPool
        sendBuffers = .allocate(byteCount: bufferSize * sendCount, alignment: 64)
        sendIOVecs = .allocate(capacity: sendCount)
        sendHeaders = .allocate(capacity: sendCount)
        sendPeers = .allocate(capacity: sendCount)
        sendSequence = .allocate(capacity: sendCount)
        sendSequence.initialize(repeating: -1, count: sendCount)
        pending = .allocate(capacity: capacity)
        for i in 0..<receiveSlots {
            (receiveIOVecs + i).initialize(to: iovec(iov_base: receiveBuffers + i * bufferSize, iov_len: bufferSize))
            (receivePeers + i).initialize(to: sockaddr_in())
            (receiveHeaders + i).initialize(to: msghdr())
        }
        for i in 0..<sendCount {
            (sendIOVecs + i).initialize(to: iovec(iov_base: sendBuffers + i * bufferSize, iov_len: 0))
            (sendPeers + i).initialize(to: sockaddr_in())
            (sendHeaders + i).initialize(to: msghdr())
        }
    }

    deinit {
        receiveBuffers.deallocate()
        receiveIOVecs.deallocate()
        receiveHeaders.deallocate()
        receivePeers.deallocate()
        sendBuffers.deallocate()
        sendIOVecs.deallocate()
        sendHeaders.deallocate()
        sendPeers.deallocate()
        sendSequence.deallocate()
        pending.deallocate()
    }

    // MARK: RingAttachment

    func start(ring: IORing) {
        self.ring = ring
        for slot in 0..<receiveSlots { armReceive(slot) }
        _ = try? ring.submit()
    }

    func stop(ring: IORing) {
        stopping = true
        publishStatistics()
    }

    var hasWork: Bool {
        stopRequestPending || stalledCount > 0
            || (pendingHead != pendingTail && core.board.ring.isPublished(pending[pendingHead & (capacity - 1)]))
    }
    var hasQueuedRequests: Bool { queued }
    func didSubmit() { queued = false }

    func handle(_ completion: IORing.Completion) {
        let index = Int(completion.userData & ~Self.tagMask)
        switch completion.userData & Self.tagMask {
        case Self.receiveTag: received(slot: index, result: completion.result)
        case Self.sendTag: sent(slot: index, result: completion.result)
        default: break
        }
        publishStatistics()
    }

    /// A stop request the worker has not acted on yet.
    private var stopRequestPending: Bool { local.receiving && stopReceivingRequested.load(ordering: .relaxed) }

    func poll() -> Bool {
        var progressed = false
        if stopRequestPending {
            // Stop receiving: no receive is re-armed from now on. Records already received (in the
            // graph, or held back by back-pressure) are still executed and answered: the drain.
            local.receiving = false
            publishStatistics()
            progressed = true
        }
        if stalledCount > 0 { progressed = retryStalled() }
        // Reply to every completed execution this source submitted, in order.
        let board = core.board
        while pendingHead != pendingTail {
            let k = pending[pendingHead & (capacity - 1)]
            guard board.ring.isPublished(k) else { break }
            pendingHead &+= 1
            reply(to: k)
            progressed = true
        }
        return progressed
    }

    // MARK: Receive

    /// Points `header` at one peer address and one buffer.
    private func reset(
        _ header: UnsafeMutablePointer<msghdr>,
        peer: UnsafeMutablePointer<sockaddr_in>,
        buffer: UnsafeMutablePointer<iovec>
    ) {
        header.pointee = msghdr()
        header.pointee.msg_name = UnsafeMutableRawPointer(peer)
        header.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
        header.pointee.msg_iov = buffer
        header.pointee.msg_iovlen = 1
    }

    private func armReceive(_ slot: Int) {
        let header = receiveHeaders + slot
        reset(header, peer: receivePeers + slot, buffer: receiveIOVecs + slot)
        ring.prepareReceiveMessage(fd: socket.fileDescriptor, message: header, userData: Self.receiveTag | UInt64(slot))
        queued = true
    }

    private func received(slot: Int, result: Int32) {
        guard !stopping else { return }
        guard local.receiving else {
            // Stopping: this receive is not re-armed, and its datagram is not admitted.
            if result >= 0 { local.ignoredWhileStopping += 1 }
            return
        }
        guard result >= 0 else {
            local.receiveErrors += 1
            armReceive(slot)
            return
        }
        local.received += 1
        let header = receiveHeaders[slot]
        let peer = receivePeers[slot]
        if header.msg_flags & Int32(MSG_TRUNC) != 0 || Int(result) > codec.maxRecordSize {
            local.rejectedOversized += 1
            sendReject("oversized record: more than \(codec.maxRecordSize) bytes", to: peer)
            armReceive(slot)
            return
        }
        let bytes = UnsafeRawBufferPointer(start: receiveBuffers + slot * bufferSize, count: Int(result))
        let input: Input
        do {
            input = try codec.decode(bytes)
        } catch {
            local.rejectedMalformed += 1
            sendReject("malformed record: \(error)", to: peer)
            armReceive(slot)
            return
        }
        local.inFlight += 1
        if !admit(input, from: peer) {
            stalled[slot] = input
            stalledCount += 1
            local.backPressureStalls += 1
            return  // re-armed once the record is admitted
        }
        armReceive(slot)
    }

    /// Submits `input` if the graph has room; false when it is full.
    private func admit(_ input: Input, from peer: sockaddr_in) -> Bool {
        guard !core.board.isStopping, let k = core.sequencer.tryClaim() else { return false }
        core.sequencer.slot(k).initializeMemory(as: Input.self, to: input)
        sendPeers[k & (capacity - 1)] = peer
        pending[pendingTail & (capacity - 1)] = k
        pendingTail &+= 1
        core.sequencer.publish(k)
        local.admitted += 1
        return true
    }

    private func retryStalled() -> Bool {
        var progressed = false
        for slot in 0..<receiveSlots {
            guard let input = stalled[slot] else { continue }
            guard admit(input, from: receivePeers[slot]) else { break }
            stalled[slot] = nil
            stalledCount -= 1
            armReceive(slot)
            progressed = true
        }
        return progressed
    }

    // MARK: Send

    private func reply(to k: Int) {
        let slot = k & (capacity - 1)
        let buffer = UnsafeMutableRawBufferPointer(start: sendBuffers + slot * bufferSize, count: bufferSize)
        let length: Int
        do {
            let value = try core.board.take(k).assumingMemoryBound(to: Output.self).pointee
            length = codec.encode(value, buffer)
        } catch {
            // take() collected the failed execution already, so slot's buffer may be reused at once:
            // the error reply goes out from the separate pool.
            local.failedExecutions += 1
            local.inFlight -= 1
            sendReject("\(error)", to: sendPeers[slot])
            return
        }
        sendSequence[slot] = k
        send(slot: slot, length: length)
    }

    private func sendReject(_ message: String, to peer: sockaddr_in) {
        guard rejectsInFlight < rejectPool else { return }  // counted already; the reply is best effort
        var slot = capacity
        while sendSequence[slot] != -1 || (sendIOVecs + slot).pointee.iov_len != 0 { slot += 1 }
        rejectsInFlight += 1
        sendPeers[slot] = peer
        let buffer = UnsafeMutableRawBufferPointer(start: sendBuffers + slot * bufferSize, count: bufferSize)
        send(slot: slot, length: codec.encodeError(message, buffer))
    }

    private func send(slot: Int, length: Int) {
        sendIOVecs[slot].iov_len = max(length, 0)
        let header = sendHeaders + slot
        reset(header, peer: sendPeers + slot, buffer: sendIOVecs + slot)
        ring.prepareSendMessage(fd: socket.fileDescriptor, message: header, userData: Self.sendTag | UInt64(slot))
        queued = true
    }

    private func sent(slot: Int, result: Int32) {
        if result < 0 { local.sendErrors += 1 } else if slot < capacity { local.replied += 1 }
        sendIOVecs[slot].iov_len = 0
        if slot >= capacity {
            rejectsInFlight -= 1
        } else if sendSequence[slot] >= 0 {
            local.inFlight -= 1
            // The reply buffer is free again: only now may execution k + capacity reuse it.
            core.board.collect(sendSequence[slot])
            sendSequence[slot] = -1
        }
    }

    private func publishStatistics() {
        let snapshot = local
        statistics.withLock { $0 = snapshot }
    }
}
