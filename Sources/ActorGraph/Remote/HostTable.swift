/// Which host every node and worker belongs to, when a graph spans hosts. Host 0 is the owner
/// (the process that compiled the graph and submits); hosts 1… are remote pieces, in name order.
///
/// Workers are laid out host by host: the owner's workers, then `workersPerPiece` for each remote
/// host. Each host's first worker is its edge worker: its io_uring also carries the host's TCP
/// connections (a value arriving for a stage on that worker needs no thread hand-over). Every
/// piece lays out the same plan and region and runs only
/// its own workers; a channel whose producer and consumers sit on different hosts is mirrored
/// across the connection, slot for slot (``TCPEdges``).
struct HostTable: Sendable, Equatable {
    /// Host names; index 0 is the owner.
    let names: [String]
    /// The host of each node (the input node is the owner's).
    let nodeHost: [Int]
    let ownerWorkers: Int
    let workersPerPiece: Int

    static let ownerName = "owner"

    var count: Int { names.count }
    /// Stage workers of `host`.
    func stageWorkers(of host: Int) -> Range<Int> {
        if host == 0 { return 0..<ownerWorkers }
        let first = ownerWorkers + (host - 1) * workersPerPiece
        return first..<(first + workersPerPiece)
    }
    /// The worker carrying `host`'s connections: its first.
    func edgeWorker(of host: Int) -> Int { stageWorkers(of: host).lowerBound }
    var workerCount: Int { ownerWorkers + (count - 1) * workersPerPiece }
    func host(ofWorker w: Int) -> Int { w < ownerWorkers ? 0 : 1 + (w - ownerWorkers) / workersPerPiece }
    func index(of name: String) -> Int? { names.firstIndex(of: name) }
}

extension ExecutionPlan {
    /// The host that writes channel `c` (the owner for the input channel).
    func producerHost(of c: Int) -> Int {
        guard let hosts else { return 0 }
        return hosts.nodeHost[channels[c].node]
    }

    /// Hosts with a segment reading channel `c`.
    func consumerHosts(of c: Int) -> Set<Int> {
        guard let hosts else { return [0] }
        return Set(channels[c].consumers.map { hosts.host(ofWorker: segments[$0].worker) })
    }

    /// Channels remote host `h` sends to the owner: written on `h` and read elsewhere (or the result).
    /// Connections form a star around the owner: a value from one piece to another is relayed by the owner.
    func channelsSent(byPiece h: Int) -> [Int] {
        channels.indices.filter { c in
            producerHost(of: c) == h && (c == outputChannel || consumerHosts(of: c).contains { $0 != h })
        }
    }

    /// Channels the owner sends to remote host `h`: read on `h`, written elsewhere.
    func channelsReceived(byPiece h: Int) -> [Int] {
        channels.indices.filter { c in producerHost(of: c) != h && consumerHosts(of: c).contains(h) }
    }

    /// The edge worker to ring when channel `c` is published on its producer's host, if the value
    /// must leave that host.
    func edgeWakeTarget(of c: Int) -> Int? {
        guard let hosts else { return nil }
        let p = producerHost(of: c)
        if p == 0 {
            return (1..<hosts.count).contains { channelsReceived(byPiece: $0).contains(c) }
                ? hosts.edgeWorker(of: 0) : nil
        }
        return channelsSent(byPiece: p).contains(c) ? hosts.edgeWorker(of: p) : nil
    }

    /// Whether the graph spans hosts.
    var isRemote: Bool { hosts != nil }
}
