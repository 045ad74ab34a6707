/// Where a host's piece listens: an IPv4 address and a TCP port.
public struct PieceAddress: Sendable, Hashable, CustomStringConvertible {
    public var ip: String
    public var port: UInt16

    public init(_ ip: String, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses `"10.231.0.2:7100"`; `nil` when malformed.
    public init?(_ text: String) {
        guard let address = PieceAddress(listening: text), address.port > 0 else { return nil }
        self = address
    }

    /// Parses an address to listen on: as ``init(_:)``, and port 0 (any free port) is allowed.
    package init?(listening text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        self.init(String(parts[0]), port: port)
    }

    public var description: String { "\(ip):\(port)" }
}

/// What happens to executions submitted while a host's piece is lost.
public enum HostLossPolicy: Sendable, Equatable {
    /// Every execution that needs the lost host is answered ``ExecutionError/hostLost(host:reason:)`` at once
    /// until a replacement piece is connected.
    case failFast
    /// Executions submitted after the loss wait up to this long for a replacement piece (those in
    /// flight when the host was lost are answered at once), then fail as with ``failFast``.
    case waitForReplacement(upTo: Duration)
}

/// How a graph spans hosts (`Node.on(_:)`): where each host's piece listens, and how its loss is
/// detected and answered. Empty `hosts` (the default): the graph lives on this machine only.
public struct RemoteOptions: Sendable {
    /// Per host name, the addresses its piece may listen on, tried in order on every (re)connect:
    /// a replacement incarnation may listen on another address than the one it replaces.
    public var hosts: [String: [PieceAddress]]
    /// Node name → host, added to (and overriding) the DSL's `.on(host)`: placement decided at deploy
    /// time, e.g. by `actorgraph run NAME --place node=host`.
    public var placement: [String: String]
    /// Stage worker threads of each remote piece.
    public var workersPerPiece: Int
    /// How often each side of a connection sends a heartbeat when it has nothing else to send.
    public var heartbeat: Duration
    /// Heartbeats missed in a row before a silent peer counts as lost.
    public var missedHeartbeats: Int
    /// How long connecting to a piece and its handshake may take.
    public var connectTimeout: Duration
    /// What executions submitted while a host is lost get.
    public var whileHostLost: HostLossPolicy
    /// Whether the owner keeps trying to connect a replacement piece for a lost host.
    public var reconnect: Bool

    public init(
        hosts: [String: [PieceAddress]] = [:],
        placement: [String: String] = [:],
        workersPerPiece: Int = 1,
        heartbeat: Duration = .milliseconds(10),
        missedHeartbeats: Int = 5,
        connectTimeout: Duration = .seconds(2),
        whileHostLost: HostLossPolicy = .failFast,
        reconnect: Bool = true
    ) {
        self.hosts = hosts
        self.placement = placement
        self.workersPerPiece = workersPerPiece
        self.heartbeat = heartbeat
        self.missedHeartbeats = missedHeartbeats
        self.connectTimeout = connectTimeout
        self.whileHostLost = whileHostLost
        self.reconnect = reconnect
    }

    /// How long a peer may stay silent before it counts as lost.
    var silenceLimit: Duration { heartbeat * missedHeartbeats }
}
