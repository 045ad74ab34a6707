import ActorGraphPlatform
import Synchronization

/// The owner's side of bringing pieces in: the handshake (at `compile()`, for the first
/// incarnation of every piece) and, on a background thread, replacements for lost hosts.
///
/// A lost host gets a new connection to the first of its addresses (``RemoteOptions/hosts``) that
/// accepts the handshake, with the next epoch; the edge worker adopts it (``TCPEdges/adopt(host:socket:epoch:)``).
/// Epochs only grow, so an older incarnation's frames can never be taken for the new one's.
///
/// `@unchecked Sendable`: `stopFlag` and the edges' counters are atomics; `epochs` and `thread`
/// are touched only by the connector thread (`epochs`) or under `lifecycle` (`thread`).
final class PieceConnector: @unchecked Sendable {
    let plan: ExecutionPlan
    let hosts: HostTable
    let remote: RemoteOptions
    let hello: (Int) -> PieceHello
    private let stopFlag = Atomic<Bool>(false)
    private var epochs: [UInt32]
    /// Per host, the address index of the incarnation connected last: a replacement is looked for
    /// from the next one on (the lost incarnation may still hold its listener, e.g. while stopped,
    /// and would accept a connection it never answers).
    private var lastAddress: [Int]
    private let lifecycle = Mutex<PinnedThread?>(nil)
    /// Where each host's piece may listen: ``RemoteOptions/hosts`` at first, replaced by
    /// ``setAddresses(_:forHost:)`` (e.g. a placer that restarted a piece elsewhere).
    private let addressBook: Mutex<[String: [PieceAddress]]>
    /// Bumped by every ``setAddresses(_:forHost:)``: the connector then retries at once instead of
    /// waiting out the back-off it took after the last failed attempt (the new piece is likely up).
    private let addressChanges = Atomic<Int>(0)
    weak var edges: TCPEdges?

    init(plan: ExecutionPlan, options: CompileOptions, firstEpoch: UInt32 = 1) {
        self.plan = plan
        self.hosts = plan.hosts!
        self.remote = options.remote
        let fingerprint = PlanFingerprint.of(plan)
        let hosts = plan.hosts!
        hello = { h in
            PieceHello(
                fingerprint: fingerprint,
                capacity: plan.capacity,
                placement: options.placement,
                batchSize: options.batchSize,
                idle: options.idle,
                hostIndex: h,
                hosts: hosts,
                heartbeatNanoseconds: options.remote.heartbeat.nanoseconds,
                missedHeartbeats: options.remote.missedHeartbeats
            )
        }
        epochs = [UInt32](repeating: firstEpoch, count: hosts.count)
        addressBook = Mutex(options.remote.hosts)
        lastAddress = [Int](repeating: -1, count: hosts.count)
    }

    /// Connects and handshakes every piece (the first incarnations, epoch 1).
    func connectAll() throws(CompileError) -> [Int: TCPSocket] {
        var sockets: [Int: TCPSocket] = [:]
        for h in 1..<hosts.count {
            do {
                sockets[h] = try connect(host: h, epoch: epochs[h])
            } catch {
                sockets.values.forEach { $0.close() }
                throw error
            }
        }
        return sockets
    }

    /// The first address of `host` whose piece accepts the handshake.
    func connect(host h: Int, epoch: UInt32, timeout limit: Duration? = nil) throws(CompileError) -> TCPSocket {
        let name = hosts.names[h]
        let timeout = Int32(clamping: max(1, (limit ?? remote.connectTimeout).nanoseconds / 1_000_000))
        var reasons: [String] = []
        let addresses = addressBook.withLock { $0[name] ?? [] }
        for i in addresses.indices {
            let index = (lastAddress[h] + 1 + i) % addresses.count
            let address = addresses[index]
            do {
                let socket = try TCPSocket.connect(host: address.ip, port: address.port, timeoutMilliseconds: timeout)
                try socket.sendFrame(EdgeFrame(kind: .hello, epoch: epoch), payload: hello(h).encoded())
                let (reply, payload) = try socket.receiveFrame(timeoutMilliseconds: timeout)
                switch reply.kind {
                case .accept:
                    lastAddress[h] = index
                    return socket
                case .refuse:
                    socket.close()
                    throw CompileError.pieceRefused(host: name, reason: String(decoding: payload, as: UTF8.self))
                default:
                    socket.close()
                    reasons.append("\(address): unexpected \(reply.kind) frame")
                }
            } catch let error as CompileError {
                throw error
            } catch {
                reasons.append("\(address): \(error)")
            }
        }
        throw .hostUnreachable(
            host: name,
            reason: reasons.isEmpty ? "no address given" : reasons.joined(separator: "; ")
        )
    }

    /// Replaces the addresses of `host` for every later (re)connect; false for a host the graph does not use.
    func setAddresses(_ addresses: [PieceAddress], forHost host: String) -> Bool {
        guard hosts.names.dropFirst().contains(host) else { return false }
        addressBook.withLock { $0[host] = addresses }
        addressChanges.add(1, ordering: .releasing)
        if let edges {
            edges.ringLossWord()
        }
        return true
    }

    /// Starts the thread that replaces lost pieces.
    func start() throws(CompileError) {
        guard remote.reconnect else { return }
        do {
            let thread = try PinnedThread(name: "actorgraph-connector", cpu: nil) { [self] in run() }
            lifecycle.withLock { $0 = thread }
        } catch {
            throw .platform(operation: "pthread_create", errno: error)
        }
    }

    /// Stops and joins the thread. Idempotent.
    func stop() {
        stopFlag.store(true, ordering: .sequentiallyConsistent)
        if let edges {
            edges.ringLossWord()
        }
        let thread = lifecycle.withLock { t -> PinnedThread? in
            defer { t = nil }
            return t
        }
        thread?.join()
    }

    private func run() {
        var adopting = [Int](repeating: -1, count: hosts.count)  // incarnations count when handed over
        var nextAttempt = [UInt64](repeating: 0, count: hosts.count)
        var changesSeen = 0
        while !stopFlag.load(ordering: .sequentiallyConsistent) {
            guard let edges else { return }
            let changes = addressChanges.load(ordering: .acquiring)
            if changes != changesSeen {
                changesSeen = changes
                for h in nextAttempt.indices { nextAttempt[h] = 0 }
            }
            let seen = edges.lossWord.pointee.load(ordering: .sequentiallyConsistent)
            var waiting = false
            for link in edges.links {
                let h = link.host
                let incarnations = link.counters.incarnations.load(ordering: .acquiring)
                let losses = link.counters.losses.load(ordering: .acquiring)
                guard losses >= incarnations else { continue }  // connected
                if adopting[h] == incarnations { continue }  // handed over, not yet adopted
                waiting = true
                let now = MonotonicClock.now()
                guard now >= nextAttempt[h] else { continue }
                epochs[h] &+= 1
                do {
                    // A live piece answers the handshake in well under this; a lost incarnation that
                    // still holds its listener (stopped, partitioned) must not hold the search up for
                    // the whole connect timeout.
                    let socket = try connect(
                        host: h,
                        epoch: epochs[h],
                        timeout: min(remote.connectTimeout, max(.milliseconds(100), remote.silenceLimit * 2))
                    )
                    adopting[h] = incarnations
                    edges.adopt(host: h, socket: socket, epoch: epochs[h])
                } catch {
                    nextAttempt[h] = now &+ 20_000_000
                }
            }
            _ = Futex.wait(
                on: futexWord(edges.lossWord),
                expected: seen,
                timeoutNanoseconds: waiting ? 20_000_000 : 200_000_000,
                shared: false
            )
        }
    }
}
