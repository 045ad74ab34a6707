import ActorGraph
import ActorGraphPlatform
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The owner's side of a Ray placer: where each remote host's piece runs now, handed to the graphs
/// that span those hosts.
///
/// Data flows one way. Ray keeper actors (one per piece, `scripts/ray/actorgraph_placer.py`) start
/// the native pieces, restart them when they die and report every incarnation (host, address, pid)
/// → the placer's driver appends each report as a JSON line to its events file → this feed reads
/// the file on its own thread → for every new incarnation it calls
/// `CompiledGraph.setPieceAddresses(_:forHost:)` on each graph it follows → once a host's current
/// piece is lost, that graph's connector connects the new incarnation and gives it the next epoch.
/// The placer never talks to the graph and the graph never talks to Ray: epochs are the owner's,
/// and what an execution that needed a lost piece gets is decided by `RemoteOptions.whileHostLost`.
///
/// ```swift
/// let feed = try PlacerFeed.start(PlacerFeed.Placer(
///     script: "scripts/ray/actorgraph_placer.py", rayAddress: "10.0.0.1:6379", nodeIP: "10.0.0.1",
///     binary: "/usr/local/bin/myapp", pieces: [PlacerFeed.Placement(host: "gpu-box")],
///     eventsPath: "/run/myapp/placer-events.jsonl"))
/// let first = try feed.waitForPieces(["gpu-box"], timeout: .seconds(60))
/// var options = CompileOptions()
/// options.remote.hosts = first.mapValues { [$0.address] }
/// let compiled = try pipeline.compile(options)
/// try feed.follow(compiled)         // restarts and moves from now on
/// print(feed.pieces)                // host, address, pid, incarnation, epoch, restarts
/// compiled.shutdown()
/// feed.stop(placer: true)           // stop following; stop the placer (its pieces and actors)
/// ```
///
/// `PlacerFeed(eventsPath:)` attaches to a placer another process started (`actorgraph cluster up`
/// does, and `actorgraph cluster run` attaches). The user's binary serves pieces when started as
/// `BINARY piece --listen IP:PORT --host HOST` and prints `piece listening on IP:PORT` (the port it
/// bound; port 0 binds any free one): `Piece.serve(listen:host:graphs:announce:shouldStop:)` with an
/// `announce` that prints that line, as `actorgraph piece` does.
public final class PlacerFeed: Sendable {
    /// One piece to place: the host it serves, the port it listens on (0: any free port, reported),
    /// and how Ray picks its node.
    public struct Placement: Sendable, Hashable {
        /// How Ray picks the node of a piece's keeper actor.
        public enum Selector: Sendable, Hashable {
            /// A node offering one unit of this custom resource (`ray start --resources '{"NAME": 1}'`).
            case resource(String)
            /// A node with this label (`ray start --labels KEY=VALUE`; Ray's label selectors are beta in 2.60).
            case label(key: String, value: String)
        }
        public var host: String
        public var port: UInt16
        public var selector: Selector

        /// By default: any free port, on a node offering the resource `actorgraph_host_<host>`.
        public init(host: String, port: UInt16 = 0, selector: Selector? = nil) {
            self.host = host
            self.port = port
            self.selector = selector ?? .resource("actorgraph_host_\(host)")
        }

        /// The placer's `--piece` argument: `HOST:PORT@RESOURCE` or `HOST:PORT@KEY=VALUE`.
        var argument: String {
            switch selector {
            case .resource(let name): return "\(host):\(port)@\(name)"
            case .label(let key, let value): return "\(host):\(port)@\(key)=\(value)"
            }
        }
    }

    /// How to start a placer (``PlacerFeed/start(_:timeout:)``).
    public struct Placer: Sendable {
        /// `actorgraph_placer.py`.
        public var script: String
        public var python: String
        /// The Ray cluster's GCS address (`IP:PORT`) and this machine's Ray node address.
        public var rayAddress: String
        public var nodeIP: String
        /// The program that serves pieces (`BINARY piece --listen IP:PORT --host HOST`).
        public var binary: String
        public var pieces: [Placement]
        /// The events file the placer appends to (created empty); its stdout and stderr go to `logPath`.
        public var eventsPath: String
        public var logPath: String
        /// The placer's environment (default: this process's); Ray may need `RAY_AUTH_MODE` and a token.
        public var environment: [String: String]?
        /// Words put before the placer's command line, e.g. `["setsid"]` so that it outlives this
        /// process, or `["ip", "netns", "exec", NS]`.
        public var launcher: [String]
        /// The Ray namespace of the keeper actors (named `piece-HOST`): one placer per namespace.
        public var rayNamespace: String

        public init(
            script: String,
            python: String = "python3",
            rayAddress: String,
            nodeIP: String,
            binary: String,
            pieces: [Placement],
            eventsPath: String,
            logPath: String? = nil,
            environment: [String: String]? = nil,
            launcher: [String] = [],
            rayNamespace: String = "actorgraph"
        ) {
            self.script = script
            self.python = python
            self.rayAddress = rayAddress
            self.nodeIP = nodeIP
            self.binary = binary
            self.pieces = pieces
            self.eventsPath = eventsPath
            self.logPath = logPath ?? eventsPath + ".log"
            self.environment = environment
            self.launcher = launcher
            self.rayNamespace = rayNamespace
        }
    }

    /// One incarnation of a host's piece, as the placer reported it.
    public struct Incarnation: Sendable, Hashable {
        public var host: String
        /// Where it listens (the port it bound).
        public var address: PieceAddress
        /// The piece's process, its keeper actor's and (when the keeper runs under one) the raylet's.
        public var pid: Int32
        public var keeperPID: Int32
        public var rayletPID: Int32?
        /// 1 for the host's first piece, then one more for every piece the placer reported since
        /// (piece restarts and keeper restarts alike).
        public var number: Int
        /// Wall-clock seconds (`Date().timeIntervalSince1970`) when the keeper reported it and when
        /// this feed read it: the difference is the delivery delay through the placer and the file.
        public var reportedAt: Double
        public var readAt: Double
    }

    /// A host's piece now: what ``PlacerFeed/pieces`` returns.
    public struct PieceStatus: Sendable, Hashable {
        public var host: String
        public var current: Incarnation
        /// Pieces its keeper started again after they died, and keeper actors Ray restarted.
        public var pieceRestarts: Int
        public var keeperRestarts: Int
        /// The owner's view, from the first followed graph that spans this host (`nil` if none):
        /// the current (or last) epoch, and whether a piece is connected now.
        public var epoch: UInt32?
        public var connected: Bool?
        public var losses: Int?
    }

    /// Why a placer could not be started or its pieces not found.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case placerDidNotStart(String)
        case piecesNotPlaced(hosts: [String], placerLog: String)
        /// The thread that reads the events could not be started (`pthread_create`'s error).
        case cannotFollow(errno: Int32)
        public var description: String {
            switch self {
            case .cannotFollow(let errno): return "cannot start the thread that follows the placer (errno \(errno))"
            case .placerDidNotStart(let why): return "the placer did not start: \(why)"
            case .piecesNotPlaced(let hosts, let log):
                return "no piece reported for \(hosts.joined(separator: ", ")) in time"
                    + (log.isEmpty ? "" : ": \(log)")
            }
        }
    }

    /// A graph this feed tells about new incarnations. Holds the graph weakly: a shut-down,
    /// released graph simply stops being told.
    struct Follower: Sendable {
        let setAddresses: @Sendable (_ host: String, _ address: PieceAddress) -> Bool
        let hosts: @Sendable () -> [HostStatus]?
    }

    struct State {
        var offset: UInt64 = 0
        var pending: [UInt8] = []
        var all: [Incarnation] = []
        var current: [String: Incarnation] = [:]
        var pieceRestarts: [String: Int] = [:]
        var keeperRestarts: [String: Int] = [:]
        var placerPID: Int32?
        var ready = false
        var down = false
        var followers: [Follower] = []
    }

    /// The events file this feed reads.
    public let eventsPath: String
    private let logPath: String?
    private let state = Mutex(State())
    /// Held for a whole read-and-tell (``poll()``, the first hand-over of ``follow(_:)``), so that a
    /// graph is told about incarnations in the order the placer reported them, never an older one last.
    private let telling = Mutex(())
    private let thread = Mutex<PinnedThread?>(nil)
    private let stopFlag = Atomic<Bool>(false)

    /// Attaches to the placer writing `eventsPath` (started by another process); reads what is
    /// there at once.
    public init(eventsPath: String) {
        self.eventsPath = eventsPath
        self.logPath = nil
        poll()
    }

    private init(eventsPath: String, logPath: String) {
        self.eventsPath = eventsPath
        self.logPath = logPath
    }

    /// Starts the placer and returns a feed reading its events, once the placer has reported
    /// itself (it connects to Ray first: seconds). Its keepers then start the pieces:
    /// ``waitForPieces(_:timeout:)`` waits for them.
    public static func start(_ placer: Placer, timeout: Duration = .seconds(60)) throws(Failure) -> PlacerFeed {
        let fm = FileManager.default
        try? fm.removeItem(atPath: placer.eventsPath)
        guard fm.createFile(atPath: placer.eventsPath, contents: nil),
            fm.createFile(atPath: placer.logPath, contents: nil)
        else {
            throw .placerDidNotStart("cannot create \(placer.eventsPath) and \(placer.logPath)")
        }
        var arguments =
            placer.launcher + [
                placer.python, placer.script, "--address", placer.rayAddress, "--node-ip", placer.nodeIP,
                "--binary", placer.binary, "--events", placer.eventsPath,
                "--namespace", placer.rayNamespace,
            ]
        for piece in placer.pieces { arguments += ["--piece", piece.argument] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment = placer.environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        let log = FileHandle(forWritingAtPath: placer.logPath)
        process.standardOutput = log
        process.standardError = log
        do {
            try withUnblockedSignals { try process.run() }
        } catch {
            throw .placerDidNotStart("\(arguments.prefix(2).joined(separator: " ")): \(error)")
        }
        try? log?.close()
        let feed = PlacerFeed(eventsPath: placer.eventsPath, logPath: placer.logPath)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            feed.poll()
            if feed.placerPID != nil { return feed }
            // A launcher may hand the placer on and exit 0 (`setsid` forks when it leads its group).
            if !process.isRunning && process.terminationStatus != 0 { break }
            usleep(50_000)
        }
        if process.isRunning { process.terminate() }
        throw .placerDidNotStart(feed.logTail())
    }

    /// The placer's process (from its first event), once known.
    public var placerPID: Int32? { state.withLock { $0.placerPID } }

    /// Waits until every host in `hosts` has a piece (`nil`: until the placer says all of its pieces
    /// have one), and returns the current incarnations.
    public func waitForPieces(_ hosts: [String]? = nil, timeout: Duration) throws(Failure) -> [String: Incarnation] {
        let deadline = ContinuousClock.now + timeout
        repeat {
            pollIfNotFollowing()
            let (ready, current) = state.withLock { ($0.ready, $0.current) }
            if let hosts, hosts.allSatisfy({ current[$0] != nil }) { return current }
            if hosts == nil && ready { return current }
            usleep(2_000)
        } while ContinuousClock.now < deadline
        let current = state.withLock { $0.current }
        throw .piecesNotPlaced(hosts: (hosts ?? ["every piece"]).filter { current[$0] == nil }, placerLog: logTail())
    }

    /// Tells `compiled` where each of its hosts' pieces runs now, then about every new incarnation
    /// as the placer reports it (from a thread this feed starts on the first call, reading the events
    /// file every 2 ms). Any number of graphs may be followed; one that is released is dropped.
    public func follow<Input: Sendable, Output: Sendable>(_ compiled: CompiledGraph<Input, Output>) throws(Failure) {
        let follower = Follower(
            setAddresses: { [weak compiled] host, address in
                guard let compiled else { return false }
                try? compiled.setPieceAddresses([address], forHost: host)
                return true
            },
            hosts: { [weak compiled] in compiled?.diagnostics.hosts }
        )
        telling.withLock { _ in
            let current = state.withLock { s in
                s.followers.append(follower)
                return s.current
            }
            for (host, incarnation) in current { _ = follower.setAddresses(host, incarnation.address) }
        }
        try startThread()
    }

    /// The current incarnation of `host`'s piece.
    public func current(_ host: String) -> Incarnation? {
        pollIfNotFollowing()
        return state.withLock { $0.current[host] }
    }

    /// Every incarnation reported so far, in order.
    public var incarnations: [Incarnation] {
        pollIfNotFollowing()
        return state.withLock { $0.all }
    }

    /// Every host's piece now, by host name, with the owner's epoch when a followed graph spans it.
    public var pieces: [PieceStatus] {
        pollIfNotFollowing()
        let (s, followers) = state.withLock { ($0, $0.followers) }
        let owner = followers.lazy.compactMap { $0.hosts() }.first ?? []
        return s.current.keys.sorted().map { host in
            let h = owner.first { $0.name == host }
            return PieceStatus(
                host: host,
                current: s.current[host]!,
                pieceRestarts: s.pieceRestarts[host] ?? 0,
                keeperRestarts: s.keeperRestarts[host] ?? 0,
                epoch: h?.epoch,
                connected: h?.connected,
                losses: h?.losses
            )
        }
    }

    /// Stops following (joins the thread); with `placer`, also stops the placer (SIGTERM: its keepers
    /// stop their pieces and the actors go; SIGKILL after `timeout`). Returns whether the placer is
    /// gone (true when not asked to stop it). Idempotent.
    @discardableResult
    public func stop(placer: Bool = false, timeout: Duration = .seconds(15)) -> Bool {
        stopFlag.store(true, ordering: .sequentiallyConsistent)
        let t = thread.withLock { t -> PinnedThread? in
            defer { t = nil }
            return t
        }
        t?.join()
        guard placer else { return true }
        poll()
        guard let pid = placerPID, Self.isPlacer(pid) else { return true }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline && Self.isPlacer(pid) { usleep(50_000) }
        if Self.isPlacer(pid) {
            kill(pid, SIGKILL)
            usleep(100_000)
        }
        return !Self.isPlacer(pid)
    }

    // MARK: Reading the events

    private func pollIfNotFollowing() {
        if thread.withLock({ $0 == nil }) { poll() }
    }

    private func startThread() throws(Failure) {
        try thread.withLock { t throws(Failure) in
            guard t == nil else { return }
            stopFlag.store(false, ordering: .sequentiallyConsistent)
            do throws(Errno) {
                t = try PinnedThread(name: "placer-feed", cpu: nil) { [self] in
                    while !stopFlag.load(ordering: .relaxed) {
                        poll()
                        usleep(2_000)
                    }
                }
            } catch {
                throw .cannotFollow(errno: error.rawValue)
            }
        }
    }

    /// Reads the lines appended since the last call, updates the state, and tells the followers
    /// about new incarnations (outside the lock).
    func poll() {
        telling.withLock { _ in readAndTell() }
    }

    private func readAndTell() {
        let (fresh, followers) = state.withLock { s -> ([Incarnation], [Follower]) in
            guard let handle = FileHandle(forReadingAtPath: eventsPath) else { return ([], []) }
            defer { try? handle.close() }
            try? handle.seek(toOffset: s.offset)
            guard let data = try? handle.readToEnd(), !data.isEmpty else { return ([], []) }
            s.offset += UInt64(data.count)
            s.pending.append(contentsOf: data)
            var fresh: [Incarnation] = []
            let now = Date().timeIntervalSince1970
            while let newline = s.pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(s.pending[..<newline])
                s.pending.removeSubrange(...newline)
                guard let event = Self.parse(line) else { continue }
                Self.apply(event, to: &s, readAt: now, fresh: &fresh)
            }
            return (fresh, fresh.isEmpty ? [] : s.followers)
        }
        var dropped = false
        for incarnation in fresh {
            for follower in followers where !follower.setAddresses(incarnation.host, incarnation.address) {
                dropped = true
            }
        }
        if dropped { state.withLock { $0.followers.removeAll { $0.hosts() == nil } } }
    }

    static func parse(_ line: [UInt8]) -> [String: Any]? {
        guard line.first == UInt8(ascii: "{") else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
    }

    static func apply(_ event: [String: Any], to s: inout State, readAt: Double, fresh: inout [Incarnation]) {
        func int(_ key: String) -> Int? { (event[key] as? NSNumber)?.intValue }
        let host = event["host"] as? String
        switch event["event"] as? String {
        case "placer":
            s.placerPID = int("pid").map(Int32.init)
        case "ready":
            s.ready = true
        case "down":
            s.down = true
        case "keeper_restarted":
            if let host { s.keeperRestarts[host, default: 0] += 1 }
        case "incarnation":
            guard let host, let ip = event["ip"] as? String, let port = int("port").flatMap(UInt16.init(exactly:)),
                let pid = int("pid")
            else { return }
            if (int("piece_incarnation") ?? 1) > 1 { s.pieceRestarts[host, default: 0] += 1 }
            let incarnation = Incarnation(
                host: host,
                address: PieceAddress(ip, port: port),
                pid: Int32(pid),
                keeperPID: Int32(int("keeper_pid") ?? 0),
                rayletPID: int("raylet_pid").map(Int32.init),
                number: (s.current[host]?.number ?? 0) + 1,
                reportedAt: (event["t"] as? NSNumber)?.doubleValue ?? readAt,
                readAt: readAt
            )
            s.all.append(incarnation)
            s.current[host] = incarnation
            fresh.append(incarnation)
        default:
            break
        }
    }

    private func logTail(lines: Int = 6) -> String {
        guard let logPath, let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "" }
        return text.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }

    /// Whether `pid` is a live placer (not a recycled pid, not a zombie).
    static func isPlacer(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0,
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"),
            !["Z", "X"].contains(stat[stat.index(close, offsetBy: 2)...].prefix(1)),
            let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { return false }
        return cmdline.split(separator: 0).contains {
            String(decoding: $0, as: UTF8.self).hasSuffix("actorgraph_placer.py")
        }
    }
}

/// Runs `body` (which starts a child process) with no signal blocked on this thread: a child inherits
/// the mask, and the threads Swift Concurrency runs on may block SIGTERM and SIGINT — a placer started
/// from there would ignore its SIGTERM.
func withUnblockedSignals<T>(_ body: () throws -> T) rethrows -> T {
    var empty = sigset_t()
    var old = sigset_t()
    sigemptyset(&empty)
    pthread_sigmask(SIG_SETMASK, &empty, &old)
    defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
    return try body()
}
