import ActorGraphPlatform
import Glibc
import Synchronization

/// The entry point of a piece: the share of a graph that runs on one host (`Node.on(_:)`).
///
/// A piece is the same program as the owner. It listens; the owner connects, sends its plan
/// (``PieceHello``: fingerprint, host table, capacity, idle policy) and an epoch; the piece finds
/// the graph whose plan matches among those it was given, builds that host's workers into its
/// own region, and runs until the owner goes away, shuts down or goes silent — then it tears
/// that incarnation down and waits for the next connection. A piece whose graphs do not match
/// refuses (the owner's `compile()` throws ``CompileError/pieceRefused(host:reason:)``).
///
/// ```swift
/// // First line of main: a process started with ACTORGRAPH_PIECE="listen=10.231.0.2:7100"
/// // serves pieces and never returns; any other process continues.
/// Piece.runIfPiece(graphs: { [makePipeline()] })
/// ```
public enum Piece {
    /// `listen=IP:PORT` and optionally `,host=NAME` (refuse any other host's share).
    public static let environmentKey = "ACTORGRAPH_PIECE"

    /// Serves pieces and exits if ``environmentKey`` is set; returns at once otherwise.
    public static func runIfPiece(graphs: @escaping () -> [any IsolatableGraph]) {
        guard let raw = getenv(environmentKey) else { return }
        let text = String(cString: raw)
        unsetenv(environmentKey)
        var listen: PieceAddress?
        var host: String?
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { continue }
            if kv[0] == "listen" { listen = PieceAddress(kv[1]) }
            if kv[0] == "host" { host = kv[1] }
        }
        guard let listen else {
            logger.error("\(environmentKey) must hold listen=IP:PORT (got '\(text)')")
            exit(3)
        }
        do {
            try serve(listen: listen, host: host, graphs: graphs)
            exit(0)
        } catch {
            logger.error("piece: \(error)")
            exit(1)
        }
    }

    /// Listens on `listen` and serves one owner at a time until `shouldStop` returns true (checked
    /// every 100 ms) — a new incarnation per connection. `announce` gets the bound port once listening.
    public static func serve(
        listen: PieceAddress,
        host: String? = nil,
        graphs: @escaping () -> [any IsolatableGraph],
        announce: (UInt16) -> Void = { _ in },
        shouldStop: () -> Bool = { false }
    ) throws(Errno) {
        let listener = try TCPSocket.listen(host: listen.ip, port: listen.port)
        announce(listener.localPort)
        while !shouldStop() {
            guard let connection = try listener.accept(timeoutMilliseconds: 100) else { continue }
            runIncarnation(connection, host: host, graphs: graphs(), shouldStop: shouldStop)
        }
    }

    /// One owner connection: handshake, build, run until the link ends, tear down.
    static func runIncarnation(
        _ connection: TCPSocket,
        host: String?,
        graphs: [any IsolatableGraph],
        shouldStop: () -> Bool
    ) {
        func refuse(_ reason: String) {
            logger.warning("piece: refused an owner: \(reason)")
            try? connection.sendFrame(EdgeFrame(kind: .refuse, epoch: 0), payload: Array(reason.utf8))
            connection.close()
        }
        guard let (helloFrame, payload) = try? connection.receiveFrame(timeoutMilliseconds: 5000),
            helloFrame.kind == .hello
        else {
            return refuse("no hello frame")
        }
        guard let hello = PieceHello(decoding: payload) else {
            return refuse("malformed hello (another protocol version?)")
        }
        let hostName = hello.hosts.names[hello.hostIndex]
        if let host, host != hostName { return refuse("this piece serves host '\(host)', not '\(hostName)'") }
        var plan: ExecutionPlan?
        var seen: [String] = []
        for graph in graphs {
            guard let candidate = try? graph.isolationCandidate(), candidate.nodes.count == hello.hosts.nodeHost.count
            else { continue }
            var p = Compiler.plan(
                nodes: candidate.nodes,
                inputNode: candidate.inputNode,
                outputNode: candidate.outputNode,
                capacity: hello.capacity,
                workerCount: hello.hosts.workerCount,
                cpus: nil,
                numaNode: nil,
                placement: hello.placement,
                hosts: hello.hosts
            )
            // The same encoded slots as the owner's plan (a graph whose values cannot cross is not this one).
            guard (try? p.encodeValuesCrossingHosts()) != nil else { continue }
            let fingerprint = PlanFingerprint.of(p)
            if fingerprint == hello.fingerprint {
                plan = p
                break
            }
            seen.append(String(fingerprint, radix: 16))
        }
        guard let plan else {
            return refuse(
                "planMismatch: no graph of this program matches the owner's plan (fingerprint \(String(hello.fingerprint, radix: 16)); candidates: \(seen.isEmpty ? "none" : seen.joined(separator: ", ")))"
            )
        }
        guard (try? connection.sendFrame(EdgeFrame(kind: .accept, epoch: helloFrame.epoch))) != nil,
            let (startFrame, _) = try? connection.receiveFrame(timeoutMilliseconds: 5000), startFrame.kind == .start
        else {
            connection.close()
            return
        }
        var options = CompileOptions(
            capacity: hello.capacity,
            pinWorkers: false,
            idle: hello.idle,
            batchSize: hello.batchSize
        )
        options.placement = hello.placement
        options.callerTakeover = false
        options.remote.heartbeat = .nanoseconds(hello.heartbeatNanoseconds)
        options.remote.missedHeartbeats = hello.missedHeartbeats
        let h = hello.hostIndex
        let epoch = startFrame.epoch
        let start = startFrame.sequence
        let core: EngineCore
        do {
            core = try EngineCore(
                plan: plan,
                options: options,
                host: h,
                start: start,
                makeEdges: { core in
                    let link = TCPEdges.Link(
                        host: 0,
                        name: HostTable.ownerName,
                        sendChannels: plan.channelsSent(byPiece: h),
                        receiveChannels: plan.channelsReceived(byPiece: h),
                        channelCount: plan.channels.count,
                        start: start,
                        epoch: epoch,
                        counters: LinkCounters()
                    )
                    let edges = TCPEdges(
                        plan: plan,
                        wiring: core.wiring,
                        board: nil,
                        isOwner: false,
                        links: [link],
                        remote: options.remote
                    )
                    edges.connect(link, socket: connection)
                    return edges
                }
            )
        } catch {
            logger.error("piece: could not build host '\(hostName)': \(error)")
            connection.close()
            return
        }
        logger.notice("piece: host '\(hostName)' epoch \(epoch) running from sequence \(start)")
        let edges = core.edges!
        while edges.lossWord.pointee.load(ordering: .sequentiallyConsistent) == 0 && !shouldStop() {
            _ = Futex.wait(on: futexWord(edges.lossWord), expected: 0, timeoutNanoseconds: 100_000_000)
        }
        core.shutdown()
        logger.notice("piece: host '\(hostName)' epoch \(epoch) ended")
    }
}
