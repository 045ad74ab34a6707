import ActorGraphPlatform
import Glibc
import Synchronization

/// A UDP source and sink on worker 0's io_uring: each datagram is one record, decoded and
/// submitted as an execution; each result (or error) goes back to the sender as one datagram.
///
/// The same ring that parks the worker carries the receive and the `sendmsg` requests, so a parked
/// worker wakes for network input as well as for its doorbell. One multishot `recvmsg` stays armed
/// on the socket and fills buffers the kernel picks from a ``ProvidedBufferRing``: one request, so a
/// datagram wakes one waiter (32 single-shot receives used to wake all 32, and the losers moved to
/// io_uring's worker threads: an extra thread wake-up per request), and still a completion per
/// datagram, reaped in batches. A buffer goes back to the kernel once its record is in the graph;
/// while the graph is full, records wait in their buffers, and with every buffer held the receive
/// ends (`-ENOBUFS`) until one frees: back-pressure reaches the socket. Reply buffers are
/// preallocated; the per-record cost is the two system calls io_uring batches.
///
/// `@unchecked Sendable` so a ``ServedGraph`` can read ``statistics`` from any thread: that is a
/// `Mutex`; everything else is touched only by worker 0's thread once the worker started.
final class UDPService<Input, Output>: RingAttachment, @unchecked Sendable {
    private static var receiveTag: UInt64 { 0x5243_0000_0000_0000 }
    private static var sendTag: UInt64 { 0x5344_0000_0000_0000 }
    private static var cancelTag: UInt64 { 0x4341_0000_0000_0000 }
    private static var tagMask: UInt64 { 0xFFFF_0000_0000_0000 }
    /// The buffer group of the receive buffers (one buffer ring on worker 0's io_uring).
    private static var bufferGroup: UInt16 { 0x5544 }

    let socket: UDPSocket
    let codec: RecordCodec<Input, Output>
    /// The engine (set once before the worker starts; the engine owns this service) and the
    /// worker's ring, reached through guaranteed references: read as `core.board` or through a
    /// class `var`, every poll, record and reply retained and released them (a uprobe on
    /// `swift_retain` during `load telematics`: ~4 per admitted record in `admit` alone, ~23 per
    /// record on the worker thread in all).
    var engine: Unmanaged<EngineCore>!
    private var ringReference: Unmanaged<IORing>!
    // Receive side: the buffers the multishot receive fills, and the header that tells the kernel
    // how much room the sender's address takes in each.
    private let receiveBuffers: ProvidedBufferRing
    private let receiveTemplate: UnsafeMutablePointer<msghdr>
    private var receiveArmed = false
    private var receiveCancelled = false
    private let bufferSize: Int
    /// Decoded records waiting for a free slot (graph full), by buffer id, with their senders.
    private var stalled: [Input?]
    private let stalledPeers: UnsafeMutablePointer<sockaddr_in>
    /// Buffer ids of stalled records in arrival order (a ring of the buffer count).
    private let stalledOrder: UnsafeMutablePointer<Int>
    private var stalledHead = 0
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

    init(socket: UDPSocket, codec: RecordCodec<Input, Output>, capacity: Int, receiveBufferCount: Int = 64) {
        self.socket = socket
        self.codec = codec
        self.capacity = capacity
        self.bufferSize = roundUp(max(codec.maxRecordSize, 256), to: 64)
        // An oversized datagram is truncated to the buffer, its header still gives its full length.
        receiveBuffers = ProvidedBufferRing(
            count: receiveBufferCount,
            bufferSize: roundUp(ReceivedDatagram.payloadOffset + bufferSize, to: 64),
            groupID: Self.bufferGroup
        )
        receiveTemplate = .allocate(capacity: 1)
        receiveTemplate.initialize(to: msghdr())
        receiveTemplate.pointee.msg_namelen = ReceivedDatagram.addressLength
        stalled = Array(repeating: nil, count: receiveBufferCount)
        stalledPeers = .allocate(capacity: receiveBufferCount)
        stalledPeers.initialize(repeating: sockaddr_in(), count: receiveBufferCount)
        stalledOrder = .allocate(capacity: receiveBufferCount)
        stalledOrder.initialize(repeating: 0, count: receiveBufferCount)
        let sendCount = capacity + rejectPool
        sendBuffers = .allocate(byteCount: bufferSize * sendCount, alignment: 64)
        sendIOVecs = .allocate(capacity: sendCount)
        sendHeaders = .allocate(capacity: sendCount)
        sendPeers = .allocate(capacity: sendCount)
        sendSequence = .allocate(capacity: sendCount)
        sendSequence.initialize(repeating: -1, count: sendCount)
        pending = .allocate(capacity: capacity)
        for i in 0..<sendCount {
            (sendIOVecs + i).initialize(to: iovec(iov_base: sendBuffers + i * bufferSize, iov_len: 0))
            (sendPeers + i).initialize(to: sockaddr_in())
            (sendHeaders + i).initialize(to: msghdr())
        }
    }

    deinit {
        receiveTemplate.deallocate()
        stalledPeers.deallocate()
        stalledOrder.deallocate()
        sendBuffers.deallocate()
        sendIOVecs.deallocate()
        sendHeaders.deallocate()
        sendPeers.deallocate()
        sendSequence.deallocate()
        pending.deallocate()
    }

    // MARK: RingAttachment

    func start(ring: IORing) {
        ringReference = Unmanaged.passUnretained(ring)
        do {
            try receiveBuffers.register(on: ring)
        } catch {
            // Checked by serve() before the engine was built (ServedGraph.swift); seen here only if
            // the kernel refuses a second ring: the service then answers nothing, and says so.
            logger.error("serve: io_uring_register_buf_ring failed (\(error)): no datagram will be received")
            local.receiveErrors += 1
            publishStatistics()
            return
        }
        armReceive()
        _ = try? ring.submit()
    }

    func stop(ring: IORing) {
        stopping = true
        receiveBuffers.unregister()
        publishStatistics()
    }

    var hasWork: Bool {
        stopRequestPending || stalledCount > 0
            || (pendingHead != pendingTail
                && engine._withUnsafeGuaranteedRef { $0.board.ring.isPublished(pending[pendingHead & (capacity - 1)]) })
    }
    var hasQueuedRequests: Bool { queued }
    func didSubmit() { queued = false }

    func handle(_ completion: IORing.Completion) {
        let index = Int(completion.userData & ~Self.tagMask)
        switch completion.userData & Self.tagMask {
        case Self.receiveTag: received(completion)
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
            cancelReceive()
            publishStatistics()
            progressed = true
        }
        if stalledCount > 0 { progressed = retryStalled() }
        // Reply to every completed execution this source submitted, in order.
        while pendingHead != pendingTail {
            let k = pending[pendingHead & (capacity - 1)]
            guard engine._withUnsafeGuaranteedRef({ $0.board.ring.isPublished(k) }) else { break }
            pendingHead &+= 1
            reply(to: k)
            progressed = true
        }
        return progressed
    }

    // MARK: Receive

    /// Arms the multishot receive (once armed it stays armed until it ends: no buffer, an error, a cancel).
    private func armReceive() {
        guard !receiveArmed, !receiveCancelled, local.receiving, !stopping else { return }
        receiveArmed = ringReference._withUnsafeGuaranteedRef {
            $0.prepareReceiveMessageMultishot(
                fd: socket.fileDescriptor,
                message: receiveTemplate,
                bufferGroup: Self.bufferGroup,
                userData: Self.receiveTag
            )
        }
        queued = true
    }

    /// Stops receiving: cancels the armed receive; datagrams it delivers before the cancel lands are ignored.
    private func cancelReceive() {
        guard receiveArmed, !receiveCancelled else { return }
        receiveCancelled = true
        ringReference._withUnsafeGuaranteedRef { $0.prepareCancel(userData: Self.receiveTag, userData: Self.cancelTag) }
        queued = true
    }

    private func received(_ completion: IORing.Completion) {
        if !completion.hasMore { receiveArmed = false }
        // An ended receive is armed again unless every buffer holds a waiting record (it would end
        // with -ENOBUFS at once: ``retryStalled()`` re-arms as soon as one frees).
        defer { if stalledCount < receiveBuffers.count { armReceive() } }
        guard let id = completion.bufferID else {
            // No datagram: the receive ended (-ENOBUFS while every buffer holds a stalled record,
            // -ECANCELED once stopped) or failed.
            let result = completion.result
            if result < 0 && result != -ENOBUFS && result != -ECANCELED { local.receiveErrors += 1 }
            if result == -EINVAL {
                // A kernel without multishot recvmsg (before 6.0): re-arming would fail the same way.
                logger.error("serve: the kernel refused a multishot recvmsg (EINVAL): no datagram will be received")
                receiveCancelled = true
            }
            return
        }
        guard !stopping, local.receiving else {
            // Stopping: the datagram is not admitted.
            local.ignoredWhileStopping += 1
            receiveBuffers.recycle(id)
            return
        }
        guard let datagram = ReceivedDatagram(buffer: receiveBuffers.buffer(id), length: Int(completion.result)) else {
            local.receiveErrors += 1
            receiveBuffers.recycle(id)
            return
        }
        local.received += 1
        let peer = datagram.peer
        if datagram.truncated || datagram.datagramLength > codec.maxRecordSize {
            receiveBuffers.recycle(id)
            local.rejectedOversized += 1
            sendReject("oversized record: more than \(codec.maxRecordSize) bytes", to: peer)
            return
        }
        let input: Input
        do {
            input = try codec.decode(datagram.payload)
        } catch {
            receiveBuffers.recycle(id)
            local.rejectedMalformed += 1
            sendReject("malformed record: \(error)", to: peer)
            return
        }
        local.inFlight += 1
        // Behind records already waiting, or the graph is full: wait in its buffer (back-pressure).
        if stalledCount > 0 || !admit(input, from: peer) {
            stalled[id] = input
            stalledPeers[id] = peer
            stalledOrder[(stalledHead + stalledCount) % receiveBuffers.count] = id
            stalledCount += 1
            local.backPressureStalls += 1
            return
        }
        receiveBuffers.recycle(id)
    }

    /// Submits `input` if the graph has room; false when it is full.
    private func admit(_ input: Input, from peer: sockaddr_in) -> Bool {
        let claimed = engine._withUnsafeGuaranteedRef { core -> Int? in
            guard !core.board.isStopping, let k = core.sequencer.tryClaim() else { return nil }
            core.sequencer.slot(k).initializeMemory(as: Input.self, to: input)
            return k
        }
        guard let k = claimed else { return false }
        sendPeers[k & (capacity - 1)] = peer
        pending[pendingTail & (capacity - 1)] = k
        pendingTail &+= 1
        engine._withUnsafeGuaranteedRef { $0.sequencer.publish(k) }
        local.admitted += 1
        return true
    }

    /// Admits waiting records in arrival order while the graph has room, giving their buffers back.
    private func retryStalled() -> Bool {
        var progressed = false
        while stalledCount > 0 {
            let id = stalledOrder[stalledHead]
            guard let input = stalled[id], admit(input, from: stalledPeers[id]) else { break }
            stalled[id] = nil
            stalledHead = (stalledHead + 1) % receiveBuffers.count
            stalledCount -= 1
            receiveBuffers.recycle(id)
            progressed = true
        }
        if progressed { armReceive() }
        return progressed
    }

    // MARK: Send

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

    private func reply(to k: Int) {
        let slot = k & (capacity - 1)
        let buffer = UnsafeMutableRawBufferPointer(start: sendBuffers + slot * bufferSize, count: bufferSize)
        let length: Int
        do {
            let value = try engine._withUnsafeGuaranteedRef { core throws(ExecutionError) in
                try core.board.take(k).assumingMemoryBound(to: Output.self).pointee
            }
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
        let fd = socket.fileDescriptor
        ringReference._withUnsafeGuaranteedRef {
            $0.prepareSendMessage(fd: fd, message: header, userData: Self.sendTag | UInt64(slot))
        }
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
            let k = sendSequence[slot]
            engine._withUnsafeGuaranteedRef { $0.board.collect(k) }
            sendSequence[slot] = -1
        }
    }

    private func publishStatistics() {
        let snapshot = local
        statistics.withLock { $0 = snapshot }
    }
}
