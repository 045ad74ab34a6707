import ActorGraphPlatform
import Glibc
import Synchronization

/// The cross-host edges of one host, on its edge worker's io_uring (a ``RingAttachment``).
///
/// Data flows slot by slot: when a channel that must leave this host is published here, the edge
/// worker frames the slot (epoch, sequence, stamp, value or failure text) into the connection's
/// send buffer and hands the buffer to io_uring; on the other side the frame is written into the
/// same slot of the same channel in that host's region and published, and that host's readers are
/// rung as if a local stage had written it. Every channel is indexed by the execution sequence on
/// every host, and the owner admits execution `k` only after `k - capacity` was answered, so a
/// received slot is always free: back-pressure is the owner's admission, never a drop.
///
/// The owner holds one ``Link`` per piece (a star: a value from one piece to another is relayed
/// by the owner, whose region has every channel); a piece holds one, to the owner.
///
/// Losing a link — the connection closed or reset, nothing heard for `missedHeartbeats`
/// heartbeats, or a protocol error — is answered on the owner by filling every channel that host
/// sends with ``FailureCode/hostLost`` failures, from the first sequence not received up to the
/// admitted ones (by ``HostLossPolicy``): downstream stages skip them and each execution gets
/// ``ExecutionError/hostLost(host:reason:)`` exactly once. A replacement piece gets the next epoch and
/// starts at the first unfilled sequence; frames of any other epoch are dropped and counted.
///
/// Everything here runs on the edge worker's thread, except ``adopt(host:socket:epoch:)`` (the
/// connector's mailbox) and the counters (atomics).
final class TCPEdges: RingAttachment {
    /// One peer: its connection (replaced on reconnect), what crosses it and where each stream stands.
    final class Link {
        let host: Int
        let name: String
        let sendChannels: [Int]
        let receiveChannels: [Int]
        /// Per send channel, the next sequence to frame.
        var sendNext: [Int]
        /// Per receive channel, the next sequence expected (owner: also where a loss fills from).
        var receiveNext: [Int]
        /// Receive channel index by channel id (-1: not received on this link).
        let receiveIndex: [Int]
        var epoch: UInt32
        var connection: Connection?
        var lostAt: UInt64 = 0
        var lossReason = ""
        /// Owner: the admitted sequence when the host was lost (executions that needed the lost incarnation).
        var admittedAtLoss = 0
        var lastReceived: UInt64 = 0
        var lastSent: UInt64 = 0
        var startQueued = false
        let counters: LinkCounters

        init(
            host: Int,
            name: String,
            sendChannels: [Int],
            receiveChannels: [Int],
            channelCount: Int,
            start: Int,
            epoch: UInt32,
            counters: LinkCounters
        ) {
            self.host = host
            self.name = name
            self.sendChannels = sendChannels
            self.receiveChannels = receiveChannels
            sendNext = sendChannels.map { _ in start }
            receiveNext = receiveChannels.map { _ in start }
            var index = [Int](repeating: -1, count: channelCount)
            for (i, c) in receiveChannels.enumerated() { index[c] = i }
            receiveIndex = index
            self.epoch = epoch
            self.counters = counters
        }
    }

    /// One TCP connection's socket and buffers. Retired connections stay alive until io_uring has
    /// completed every request that points into their buffers.
    final class Connection {
        let id: UInt32
        let socket: TCPSocket
        let sendCapacity = 1 << 18
        /// Frames being gathered; swapped with `sending` when the previous send completed.
        var filling: UnsafeMutableRawPointer
        var sending: UnsafeMutableRawPointer
        var fillBytes = 0
        var sendBytes = 0
        var sentBytes = 0
        var sendInFlight = false
        let receiveCapacity = 1 << 18
        let receiveBuffer: UnsafeMutableRawPointer
        var receiveBytes = 0
        var receiveInFlight = false
        var closing = false

        init(id: UInt32, socket: TCPSocket) {
            self.id = id
            self.socket = socket
            filling = .allocate(byteCount: sendCapacity, alignment: 64)
            sending = .allocate(byteCount: sendCapacity, alignment: 64)
            receiveBuffer = .allocate(byteCount: receiveCapacity, alignment: 64)
        }

        var idle: Bool { !sendInFlight && !receiveInFlight }

        deinit {
            socket.close()
            filling.deallocate()
            sending.deallocate()
            receiveBuffer.deallocate()
        }
    }

    private static let tag: UInt64 = 0x5443_0000_0000_0000
    private static let tagMask: UInt64 = 0xFFFF_0000_0000_0000
    private static let sendOp: UInt64 = 1
    private static let receiveOp: UInt64 = 2

    let plan: ExecutionPlan
    let wiring: EngineWiring
    /// Set on the owner: the result ring's waiters are told when a received result lands.
    let board: ResultBoard?
    let isOwner: Bool
    let links: [Link]
    private var retired: [Connection] = []
    private var nextConnectionID: UInt32 = 1
    private var ring: IORing!
    private var queued = false
    private let heartbeatNanoseconds: UInt64
    private let silenceNanoseconds: UInt64
    private let lossPolicy: HostLossPolicy
    private var pollsSinceClock = 0
    /// Per channel, whether this side received a slot of it since the last wake-up pass.
    private var touched: [Bool]
    /// Per channel, the park words of its readers and of its edge worker (precomputed: no allocation per frame).
    private let wakeTargets: [[UnsafeMutablePointer<Atomic<UInt32>>]]
    /// Per channel, its slot's value bytes and whether the slot is encoded (``EncodedSlot``): read
    /// per frame, so kept apart from the layout (a layout copied per frame would retain its closures).
    private let valueBytes: [Int]
    private let encoded: [Bool]
    private var resultFirst = -1
    private var resultEnd = -1
    /// Connections handed over by the connector thread (owner) and not yet adopted.
    private let mailbox = Mutex<[(host: Int, fd: Int32, epoch: UInt32)]>([])
    private let mailboxFlag = Atomic<Bool>(false)
    /// Rung when a host is lost (the connector waits on it) or, on a piece, when its link ended.
    let lossWord: UnsafeMutablePointer<Atomic<UInt32>> = {
        let word = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        word.initialize(to: Atomic(0))
        return word
    }()
    /// Bumps ``lossWord`` and wakes whoever waits on it (the connector, a piece's main thread).
    func ringLossWord() {
        lossWord.pointee.add(1, ordering: .sequentiallyConsistent)
        Futex.wake(futexWord(lossWord), count: Int32.max, shared: false)
    }

    /// The edge worker's park word, rung when the mailbox fills.
    var parkWord: UnsafeMutablePointer<Atomic<UInt32>>?

    init(
        plan: ExecutionPlan,
        wiring: EngineWiring,
        board: ResultBoard?,
        isOwner: Bool,
        links: [Link],
        remote: RemoteOptions
    ) {
        self.plan = plan
        self.wiring = wiring
        self.board = board
        self.isOwner = isOwner
        self.links = links
        heartbeatNanoseconds = UInt64(max(1, remote.heartbeat.nanoseconds))
        silenceNanoseconds = UInt64(max(1, remote.silenceLimit.nanoseconds))
        lossPolicy = remote.whileHostLost
        touched = [Bool](repeating: false, count: plan.channels.count)
        wakeTargets = plan.channels.indices.map { wiring.wakeTargets(of: $0, excludingWorker: nil) }
        valueBytes = plan.channels.map(\.layout.size)
        encoded = plan.channels.map { $0.layout.encoded != nil }
    }

    deinit {
        lossWord.deinitialize(count: 1)
        lossWord.deallocate()
    }

    /// Gives link `host` a freshly connected socket (a new incarnation, `epoch`); adopted by the
    /// edge worker on its next pass. Any thread.
    func adopt(host: Int, socket: TCPSocket, epoch: UInt32) {
        let fd = socket.detach()
        mailbox.withLock { $0.append((host, fd, epoch)) }
        mailboxFlag.store(true, ordering: .sequentiallyConsistent)
        if let parkWord { Worker.wake(parkWord, shared: false) }
    }

    /// Installs `socket` on `link` before the worker starts (the first incarnation).
    func connect(_ link: Link, socket: TCPSocket) {
        link.connection = Connection(id: nextConnectionID, socket: socket)
        nextConnectionID &+= 1
        link.startQueued = isOwner
        link.lastReceived = MonotonicClock.now()
        link.counters.epoch.store(link.epoch, ordering: .relaxed)
        link.counters.connected.store(true, ordering: .relaxed)
        link.counters.incarnations.add(1, ordering: .releasing)
    }

    // MARK: RingAttachment

    func start(ring: IORing) {
        self.ring = ring
        for link in links where link.connection != nil {
            if link.startQueued { queueStart(link) }
            armReceive(link)
        }
    }

    func handle(_ completion: IORing.Completion) {
        guard completion.userData & TCPEdges.tagMask == TCPEdges.tag else { return }
        let linkIndex = Int((completion.userData >> 32) & 0xFFFF)
        let connectionID = UInt32(truncatingIfNeeded: completion.userData >> 8) & 0xFF_FFFF
        let op = completion.userData & 0xFF
        guard linkIndex < links.count else { return }
        let link = links[linkIndex]
        guard let connection = link.connection, connection.id & 0xFF_FFFF == connectionID, !connection.closing else {
            // A request of a retired connection: it no longer points into live buffers once done.
            if let i = retired.firstIndex(where: { $0.id & 0xFF_FFFF == connectionID }) {
                if op == TCPEdges.sendOp { retired[i].sendInFlight = false } else { retired[i].receiveInFlight = false }
                if retired[i].idle { retired.remove(at: i) }
            }
            return
        }
        if op == TCPEdges.sendOp {
            connection.sendInFlight = false
            guard completion.result > 0 else {
                lose(
                    link,
                    reason: completion.result == 0
                        ? "connection closed" : "send failed: \(Errno(rawValue: -completion.result))"
                )
                return
            }
            connection.sentBytes += Int(completion.result)
            link.lastSent = MonotonicClock.now()
            flush(link, connection)
        } else {
            connection.receiveInFlight = false
            guard completion.result > 0 else {
                lose(
                    link,
                    reason: completion.result == 0
                        ? "connection closed by the peer" : "receive failed: \(Errno(rawValue: -completion.result))"
                )
                return
            }
            connection.receiveBytes += Int(completion.result)
            link.lastReceived = MonotonicClock.now()
            parse(link, connection)
            if link.connection === connection { armReceive(link) }
        }
    }

    func poll() -> Bool {
        var progressed = false
        if mailboxFlag.load(ordering: .relaxed) {
            adoptMailbox()
            progressed = true
        }
        for link in links {
            if let connection = link.connection {
                if frameReadySlots(link, connection) { progressed = true }
            } else if isOwner && fillLost(link) {
                progressed = true
            }
        }
        if progressed { publishTouched() }
        pollsSinceClock &+= 1
        if !progressed || pollsSinceClock >= 1024 {
            pollsSinceClock = 0
            checkClocks()
        }
        return progressed
    }

    var hasWork: Bool {
        if mailboxFlag.load(ordering: .relaxed) { return true }
        for link in links {
            guard link.connection != nil else {
                if isOwner && lostWork(link) { return true }
                continue
            }
            for (i, c) in link.sendChannels.enumerated() where wiring.rings[c].isPublished(link.sendNext[i]) {
                return true
            }
        }
        return false
    }

    var hasQueuedRequests: Bool { queued }
    func didSubmit() { queued = false }

    func stop(ring: IORing) {
        for link in links {
            guard let connection = link.connection else { continue }
            // Best effort: tell the peer this is a clean end, then close.
            try? connection.socket.sendFrame(EdgeFrame(kind: .bye, epoch: link.epoch))
            connection.socket.shutdownBoth()
        }
    }

    // MARK: Sending

    /// Frames every newly published slot of the link's send channels; returns whether any was framed.
    private func frameReadySlots(_ link: Link, _ connection: Connection) -> Bool {
        var framed = 0
        for (i, c) in link.sendChannels.enumerated() {
            let ring = wiring.rings[c]
            let size = valueBytes[c]
            var k = link.sendNext[i]
            while ring.isPublished(k) {
                let failure = ring.failure(k).pointee
                let payload: Int
                let source: UnsafeRawPointer
                if failure == 0 {
                    // An encoded slot (a value holding references) crosses as its count and bytes only.
                    payload =
                        !encoded[c]
                        ? size
                        : EncodedSlot.headerBytes
                            + min(Int(ring.value(k).load(as: UInt32.self)), size - EncodedSlot.headerBytes)
                    source = UnsafeRawPointer(ring.value(k))
                } else {
                    let message = wiring.messages[c]! + (k & ring.mask) &* FailureMessage.slotBytes
                    payload = 8 + max(0, min(Int(message.load(as: Int32.self)), FailureMessage.slotBytes - 8))
                    source = UnsafeRawPointer(message)
                }
                guard connection.fillBytes + EdgeFrame.headerBytes + payload <= connection.sendCapacity else { break }
                let p = connection.filling + connection.fillBytes
                EdgeFrame(
                    kind: .data,
                    channel: c,
                    payloadBytes: payload,
                    epoch: link.epoch,
                    failure: failure,
                    sequence: k,
                    stamp: 0
                ).write(to: p)
                if payload > 0 { (p + EdgeFrame.headerBytes).copyMemory(from: source, byteCount: payload) }
                connection.fillBytes += EdgeFrame.headerBytes + payload
                k &+= 1
                framed &+= 1
            }
            link.sendNext[i] = k
        }
        guard framed > 0 else { return false }
        link.counters.framesSent.add(framed, ordering: .relaxed)
        flush(link, connection)
        return true
    }

    private func queueStart(_ link: Link) {
        guard let connection = link.connection else { return }
        let start = link.sendNext.first ?? link.receiveNext.first ?? 0
        EdgeFrame(kind: .start, epoch: link.epoch, sequence: start).write(to: connection.filling + connection.fillBytes)
        connection.fillBytes += EdgeFrame.headerBytes
        link.startQueued = false
        flush(link, connection)
    }

    private func queueHeartbeat(_ link: Link, _ connection: Connection) {
        guard connection.fillBytes + EdgeFrame.headerBytes <= connection.sendCapacity else { return }
        EdgeFrame(kind: .heartbeat, epoch: link.epoch).write(to: connection.filling + connection.fillBytes)
        connection.fillBytes += EdgeFrame.headerBytes
        flush(link, connection)
    }

    /// Sends what is gathered if no send is in flight (continuing a partial send first).
    private func flush(_ link: Link, _ connection: Connection) {
        guard !connection.sendInFlight, !connection.closing else { return }
        if connection.sentBytes >= connection.sendBytes {
            guard connection.fillBytes > 0 else { return }
            swap(&connection.filling, &connection.sending)
            connection.sendBytes = connection.fillBytes
            connection.sentBytes = 0
            connection.fillBytes = 0
        }
        let remaining = UnsafeRawBufferPointer(
            start: connection.sending + connection.sentBytes,
            count: connection.sendBytes - connection.sentBytes
        )
        if ring.prepareSend(
            fd: connection.socket.fileDescriptor,
            from: remaining,
            userData: userData(link, connection, TCPEdges.sendOp)
        ) {
            connection.sendInFlight = true
            queued = true
        }
    }

    // MARK: Receiving

    private func armReceive(_ link: Link) {
        guard let connection = link.connection, !connection.receiveInFlight, !connection.closing else { return }
        let room = UnsafeMutableRawBufferPointer(
            start: connection.receiveBuffer + connection.receiveBytes,
            count: connection.receiveCapacity - connection.receiveBytes
        )
        if ring.prepareReceive(
            fd: connection.socket.fileDescriptor,
            into: room,
            userData: userData(link, connection, TCPEdges.receiveOp)
        ) {
            connection.receiveInFlight = true
            queued = true
        }
    }

    /// Applies every complete frame in the receive buffer and keeps the incomplete tail.
    private func parse(_ link: Link, _ connection: Connection) {
        var offset = 0
        while connection.receiveBytes - offset >= EdgeFrame.headerBytes {
            let p = UnsafeRawPointer(connection.receiveBuffer + offset)
            guard let frame = EdgeFrame.read(from: p) else {
                lose(link, reason: "protocol error: unknown frame kind")
                return
            }
            let total = EdgeFrame.headerBytes + frame.payloadBytes
            guard total <= connection.receiveCapacity else {
                lose(link, reason: "protocol error: frame of \(total) bytes")
                return
            }
            guard connection.receiveBytes - offset >= total else { break }
            offset += total
            switch frame.kind {
            case .data:
                guard frame.epoch == link.epoch else {
                    link.counters.staleDropped.add(1, ordering: .relaxed)
                    continue
                }
                guard apply(frame, payload: p + EdgeFrame.headerBytes, on: link) else { return }
            case .heartbeat:
                if frame.epoch != link.epoch { link.counters.staleDropped.add(1, ordering: .relaxed) }
            case .bye:
                lose(link, reason: isOwner ? "the piece shut down" : "the owner shut down")
                return
            case .start, .hello, .accept, .refuse:
                lose(link, reason: "protocol error: unexpected \(frame.kind) frame")
                return
            }
        }
        if offset > 0 {
            let rest = connection.receiveBytes - offset
            if rest > 0 {
                connection.receiveBuffer.copyMemory(from: connection.receiveBuffer + offset, byteCount: rest)
            }
            connection.receiveBytes = rest
        }
        publishTouched()
    }

    /// Writes one received slot into this host's ring and publishes it; false if the link was lost.
    private func apply(_ frame: EdgeFrame, payload: UnsafeRawPointer, on link: Link) -> Bool {
        let c = frame.channel
        guard c < plan.channels.count, link.receiveIndex[c] >= 0 else {
            lose(link, reason: "protocol error: channel \(c) is not received on this connection")
            return false
        }
        let i = link.receiveIndex[c]
        let k = frame.sequence
        if k < link.receiveNext[i] {
            link.counters.duplicatesDropped.add(1, ordering: .relaxed)
            return true
        }
        guard k == link.receiveNext[i] else {
            lose(link, reason: "protocol error: channel \(c) jumped from sequence \(link.receiveNext[i]) to \(k)")
            return false
        }
        let ring = wiring.rings[c]
        if frame.failure == 0 {
            let fits =
                !encoded[c]
                ? frame.payloadBytes == valueBytes[c]
                : frame.payloadBytes >= EncodedSlot.headerBytes && frame.payloadBytes <= valueBytes[c]
            guard fits else {
                lose(link, reason: "protocol error: channel \(c) value of \(frame.payloadBytes) bytes")
                return false
            }
            if frame.payloadBytes > 0 { ring.value(k).copyMemory(from: payload, byteCount: frame.payloadBytes) }
        } else if let messages = wiring.messages[c] {
            let slot = messages + (k & ring.mask) &* FailureMessage.slotBytes
            slot.copyMemory(from: payload, byteCount: min(frame.payloadBytes, FailureMessage.slotBytes))
        }
        publish(c, k, failure: frame.failure)
        link.receiveNext[i] = k &+ 1
        link.counters.framesApplied.add(1, ordering: .relaxed)
        return true
    }

    @inline(__always)
    private func publish(_ c: Int, _ k: Int, failure: Int32) {
        let ring = wiring.rings[c]
        ring.failure(k).pointee = failure
        ring.stampWord(k).pointee.store(SlotRing.stamp(k), ordering: .releasing)
        touched[c] = true
        if c == plan.outputChannel && board != nil {
            if resultFirst < 0 { resultFirst = k }
            resultEnd = k &+ 1
        }
    }

    /// After slots were published: one fence, then ring this host's readers and tell result waiters.
    private func publishTouched() {
        var any = false
        for c in touched.indices where touched[c] {
            any = true
            break
        }
        guard any else { return }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        for c in touched.indices where touched[c] {
            touched[c] = false
            for target in wakeTargets[c] { Worker.wake(target, shared: false) }
        }
        if let board, resultFirst >= 0 {
            let ring = board.ring
            for k in resultFirst..<resultEnd
            where ring.resultWaiters(k).pointee.load(ordering: .sequentiallyConsistent) != 0 {
                board.didPublish(k)
            }
            resultFirst = -1
            resultEnd = -1
        }
    }

    // MARK: Loss and replacement

    private func lose(_ link: Link, reason: String) {
        guard let connection = link.connection else { return }
        connection.closing = true
        connection.socket.shutdownBoth()
        link.connection = nil
        if !connection.idle { retired.append(connection) }
        link.lostAt = MonotonicClock.now()
        link.lossReason = reason
        link.admittedAtLoss = wiring.nextSequence.pointee.load(ordering: .sequentiallyConsistent)
        link.counters.connected.store(false, ordering: .relaxed)
        link.counters.losses.add(1, ordering: .releasing)
        link.counters.lastLossAt.store(link.lostAt, ordering: .relaxed)
        logger.notice("\(isOwner ? "host '\(link.name)'" : "the owner") lost: \(reason)")
        ringLossWord()
    }

    /// Owner: the sequences up to which a lost host's channels are answered now.
    private func fillLimit(_ link: Link) -> Int {
        let admitted = wiring.nextSequence.pointee.load(ordering: .acquiring)
        switch lossPolicy {
        case .failFast: return admitted
        case .waitForReplacement(let upTo):
            let waited = MonotonicClock.now() &- link.lostAt
            return waited >= UInt64(max(0, upTo.nanoseconds)) ? admitted : min(admitted, link.admittedAtLoss)
        }
    }

    private func lostWork(_ link: Link) -> Bool {
        guard let first = link.receiveNext.min() else { return false }
        return first < fillLimit(link) && wiring.rings[plan.inputChannel].isPublished(first)
    }

    /// Owner: answers the lost host's share of every admitted execution (by policy) with a
    /// ``FailureCode/hostLost`` failure. Returns whether it filled any.
    private func fillLost(_ link: Link) -> Bool {
        let limit = fillLimit(link)
        let input = wiring.rings[plan.inputChannel]
        var filled = false
        for (i, c) in link.receiveChannels.enumerated() {
            var k = link.receiveNext[i]
            let ring = wiring.rings[c]
            while k < limit && input.isPublished(k) {
                FailureMessage.write(
                    link.lossReason,
                    detail: Int32(link.host),
                    to: wiring.messages[c]! + (k & ring.mask) &* FailureMessage.slotBytes
                )
                publish(c, k, failure: FailureCode.hostLost)
                link.counters.answeredLost.add(1, ordering: .relaxed)
                k &+= 1
                filled = true
            }
            link.receiveNext[i] = k
        }
        return filled
    }

    private func adoptMailbox() {
        let arrivals = mailbox.withLock { items -> [(host: Int, fd: Int32, epoch: UInt32)] in
            defer { items.removeAll() }
            return items
        }
        mailboxFlag.store(false, ordering: .relaxed)
        for arrival in arrivals {
            let socket = TCPSocket(adopting: arrival.fd)
            guard let link = links.first(where: { $0.host == arrival.host }), link.connection == nil else {
                socket.close()
                continue
            }
            // Everything the lost incarnation owed up to now is answered; the replacement starts after it.
            _ = fillLost(link)
            publishTouched()
            let start = link.receiveNext.max() ?? 0
            for i in link.receiveNext.indices where link.receiveNext[i] < start {
                // Channels that were behind (possible only with nothing admitted past them) catch up.
                link.receiveNext[i] = start
            }
            for i in link.sendNext.indices { link.sendNext[i] = start }
            link.epoch = arrival.epoch
            connect(link, socket: socket)
            queueStart(link)
            armReceive(link)
        }
    }

    private func checkClocks() {
        let now = MonotonicClock.now()
        for link in links {
            guard let connection = link.connection else { continue }
            if now &- link.lastReceived > silenceNanoseconds {
                lose(
                    link,
                    reason:
                        "silent for \((now &- link.lastReceived) / 1_000_000) ms (\(silenceNanoseconds / heartbeatNanoseconds) heartbeats missed)"
                )
                continue
            }
            if now &- link.lastSent >= heartbeatNanoseconds && connection.fillBytes == 0 && !connection.sendInFlight {
                queueHeartbeat(link, connection)
                link.lastSent = now
            }
        }
    }

    private func userData(_ link: Link, _ connection: Connection, _ op: UInt64) -> UInt64 {
        let linkIndex = UInt64(links.firstIndex { $0 === link }!)
        return TCPEdges.tag | (linkIndex << 32) | (UInt64(connection.id & 0xFF_FFFF) << 8) | op
    }
}

/// What happened on one link, readable from any thread.
final class LinkCounters: Sendable {
    let incarnations = Atomic<Int>(0)
    let losses = Atomic<Int>(0)
    let lastLossAt = Atomic<UInt64>(0)
    let framesSent = Atomic<Int>(0)
    let framesApplied = Atomic<Int>(0)
    let staleDropped = Atomic<Int>(0)
    let duplicatesDropped = Atomic<Int>(0)
    let answeredLost = Atomic<Int>(0)
    let epoch = Atomic<UInt32>(0)
    let connected = Atomic<Bool>(false)
    init() {}
}
