/// One remote host of a graph spanning hosts, as the owner sees it (``GraphDiagnostics/hosts``).
public struct HostStatus: Sendable, Equatable {
    public var name: String
    /// Whether a piece incarnation is connected now.
    public var connected: Bool
    /// The current (or last) incarnation's epoch; every replacement gets a higher one.
    public var epoch: UInt32
    /// Incarnations connected so far (1 + replacements).
    public var incarnations: Int
    /// Times the host was lost (closed, reset, silent or protocol error).
    public var losses: Int
    /// Slots sent to the piece and slots received from it and applied.
    public var framesSent: Int
    public var framesApplied: Int
    /// Frames of another epoch (a fenced incarnation): dropped, never applied.
    public var staleFramesDropped: Int
    /// Slots received twice: dropped.
    public var duplicatesDropped: Int
    /// Slots the owner answered with ``ExecutionError/hostLost(host:reason:)`` on the host's behalf.
    public var answeredLost: Int

    init(link: TCPEdges.Link) {
        let c = link.counters
        name = link.name
        connected = c.connected.load(ordering: .relaxed)
        epoch = c.epoch.load(ordering: .relaxed)
        incarnations = c.incarnations.load(ordering: .relaxed)
        losses = c.losses.load(ordering: .relaxed)
        framesSent = c.framesSent.load(ordering: .relaxed)
        framesApplied = c.framesApplied.load(ordering: .relaxed)
        staleFramesDropped = c.staleDropped.load(ordering: .relaxed)
        duplicatesDropped = c.duplicatesDropped.load(ordering: .relaxed)
        answeredLost = c.answeredLost.load(ordering: .relaxed)
    }
}

extension EngineCore {
    /// The owner of a graph spanning hosts: connects and handshakes every piece, builds this
    /// host's engine with the cross-host edges on its edge worker, and starts the connector that
    /// brings in replacements.
    static func owner(plan: ExecutionPlan, options: CompileOptions) throws(CompileError) -> EngineCore {
        let hosts = plan.hosts!
        let connector = PieceConnector(plan: plan, options: options)
        let sockets = try connector.connectAll()
        let core = try EngineCore(
            plan: plan,
            options: options,
            host: 0,
            makeEdges: { core in
                let links = (1..<hosts.count).map { h in
                    TCPEdges.Link(
                        host: h,
                        name: hosts.names[h],
                        sendChannels: plan.channelsReceived(byPiece: h),
                        receiveChannels: plan.channelsSent(byPiece: h),
                        channelCount: plan.channels.count,
                        start: 0,
                        epoch: 1,
                        counters: LinkCounters()
                    )
                }
                let edges = TCPEdges(
                    plan: plan,
                    wiring: core.wiring,
                    board: core.board,
                    isOwner: true,
                    links: links,
                    remote: options.remote
                )
                for link in links { edges.connect(link, socket: sockets[link.host]!) }
                return edges
            }
        )
        connector.edges = core.edges
        core.connector = connector
        do {
            try connector.start()
        } catch {
            core.shutdown()
            throw error
        }
        return core
    }
}
