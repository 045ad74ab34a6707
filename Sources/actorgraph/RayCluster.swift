import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import Foundation
import Glibc
import Synchronization

/// One event of the Ray placer (`scripts/ray/actorgraph_placer.py`), parsed from its JSON line.
struct PlacerEvent: Sendable {
    var kind: String
    var host: String?
    var ip: String?
    var port: UInt16?
    /// The piece's process (incarnation, exit), the placer's (placer).
    var pid: Int32?
    var keeperPID: Int32?
    var rayletPID: Int32?
    var keeper: String?
    var pieceIncarnation: Int?
    var status: String?
    /// Wall-clock seconds (the placer's `time.time()`).
    var time: Double

    var address: PieceAddress? {
        guard let ip, let port else { return nil }
        return PieceAddress(ip, port: port)
    }

    init?(line: String) {
        guard line.hasPrefix("{"),
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let kind = object["event"] as? String else { return nil }
        func int(_ key: String) -> Int? { (object[key] as? NSNumber)?.intValue }
        self.kind = kind
        host = object["host"] as? String
        ip = object["ip"] as? String
        port = int("port").flatMap { UInt16(exactly: $0) }
        pid = int("pid").map { Int32($0) }
        keeperPID = int("keeper_pid").map { Int32($0) }
        rayletPID = int("raylet_pid").map { Int32($0) }
        keeper = object["keeper"] as? String
        pieceIncarnation = int("piece_incarnation")
        status = object["status"] as? String
        time = (object["t"] as? NSNumber)?.doubleValue ?? 0
    }
}

/// Reads the placer's events file as it grows (the owner's side of the placer: no Ray, no Python).
final class PlacerEventLog: @unchecked Sendable {
    private let path: String
    private var offset: UInt64 = 0
    private var pending = Data()

    init(path: String) { self.path = path }

    /// The events appended since the last call.
    func poll() -> [PlacerEvent] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return [] }
        offset += UInt64(data.count)
        pending.append(data)
        var events: [PlacerEvent] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
            pending.removeSubrange(pending.startIndex...newline)
            if let event = PlacerEvent(line: line) { events.append(event) }
        }
        return events
    }
}

/// Follows the placer's events for a running owner: every new incarnation of a host's piece is
/// handed to `apply` (which calls `compiled.setPieceAddresses`); the owner's connector then finds
/// it when the current one is lost, and gives it the next epoch.
final class PlacerFeed: Sendable {
    struct Seen: Sendable {
        var event: PlacerEvent
        /// ``MonotonicClock`` when this process read it.
        var readAt: UInt64
        /// Wall-clock seconds when this process read it (minus `event.time`: the delivery delay
        /// from the keeper through the placer's driver and the file).
        var readAtWall: Double
    }
    private let log: PlacerEventLog
    private let state = Mutex<(current: [String: Seen], all: [Seen])>(([:], []))
    private let stopFlag = Atomic<Bool>(false)
    private let thread = Mutex<PinnedThread?>(nil)

    init(path: String) { log = PlacerEventLog(path: path) }

    /// Reads what is there now (the current incarnations), then follows the file on a thread.
    func start(apply: @escaping @Sendable (_ host: String, _ address: PieceAddress) -> Void) throws {
        poll(apply: apply)
        let t = try PinnedThread(name: "placer-feed", cpu: nil) { [self] in
            while !stopFlag.load(ordering: .relaxed) {
                poll(apply: apply)
                usleep(2_000)
            }
        }
        thread.withLock { $0 = t }
    }

    /// Reads new events once (no thread).
    func poll(apply: (_ host: String, _ address: PieceAddress) -> Void = { _, _ in }) {
        let events = log.poll()
        guard !events.isEmpty else { return }
        let now = MonotonicClock.now()
        let wall = Date().timeIntervalSince1970
        for event in events {
            let seen = Seen(event: event, readAt: now, readAtWall: wall)
            state.withLock {
                $0.all.append(seen)
                if event.kind == "incarnation", let host = event.host { $0.current[host] = seen }
            }
            if event.kind == "incarnation", let host = event.host, let address = event.address { apply(host, address) }
        }
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        thread.withLock { $0 }?.join()
    }

    func current(_ host: String) -> Seen? { state.withLock { $0.current[host] } }
    var all: [Seen] { state.withLock { $0.all } }

    /// Waits up to `timeout` for a current incarnation of `host` satisfying `match`.
    func waitForIncarnation(of host: String, timeout: Duration, where match: (Seen) -> Bool = { _ in true }) -> Seen? {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if thread.withLock({ $0 }) == nil { poll() }
            if let seen = current(host), match(seen) { return seen }
            usleep(1_000)
        } while ContinuousClock.now < deadline
        return nil
    }

    /// Piece restarts (a keeper's second and later pieces) and keeper restarts Ray made.
    var restarts: (pieces: Int, keepers: Int) {
        state.withLock { s in
            (s.all.filter { $0.event.kind == "incarnation" && ($0.event.pieceIncarnation ?? 1) > 1 }.count,
             s.all.filter { $0.event.kind == "keeper_restarted" }.count)
        }
    }
}

/// `actorgraph cluster`'s machinery: a local Ray cluster across network namespaces (or an existing
/// one), the placer, and a state directory that `status` and `down` read.
enum RayCluster {
    static let directory = "/run/actorgraph-cluster"
    static var statePath: String { directory + "/state.json" }
    static var eventsPath: String { directory + "/events.jsonl" }
    static var placerLogPath: String { directory + "/placer.log" }
    static var tokenPath: String { directory + "/auth_token" }
    static var ownerStatusPath: String { directory + "/owner.txt" }
    /// The local demo's namespaces: its own rig (scripts/netns-rig.sh with this prefix and /24), so
    /// it never touches the tests' agrig-* rig.
    static let prefix = "agray"
    static let net = "10.232.0"
    static let rayPort = 6390
    static let piecePort: UInt16 = 7100
    /// Ray's session directory for the local cluster (`ray start --temp-dir`), removed by `down`.
    static let rayTempDirectory = "/tmp/actorgraph-ray"

    struct State: Codable {
        /// "local" (namespaces, Ray started here) or "attach" (an existing Ray cluster).
        var mode: String
        var namespaces: [String]
        /// Where owners run: the head's namespace (local), none (attach: this one).
        var ownerNamespace: String?
        var address: String
        var nodeIP: String
        var placerPID: Int32
        var binary: String
        var pieces: [String]
        var nodes: [String: String]
        var started: Double
    }

    enum Failure: Error, CustomStringConvertible {
        case message(String)
        var description: String { if case .message(let m) = self { return m }; return "" }
    }

    // MARK: Files and processes

    static func loadState() -> State? {
        guard let data = FileManager.default.contents(atPath: statePath) else { return nil }
        return try? JSONDecoder().decode(State.self, from: data)
    }

    static func saveState(_ state: State) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: URL(fileURLWithPath: statePath))
    }

    /// The repository's scripts/ (the placer, the rig): $ACTORGRAPH_SCRIPTS, or found upwards from
    /// this executable (.build/…/actorgraph) or the current directory.
    static func scriptsDirectory() throws -> String {
        if let env = ProcessInfo.processInfo.environment["ACTORGRAPH_SCRIPTS"] { return env }
        var candidates: [String] = []
        var dir = (RemoteFaults.executablePath() as NSString).deletingLastPathComponent
        while dir.count > 1 { candidates.append(dir); dir = (dir as NSString).deletingLastPathComponent }
        candidates.append(FileManager.default.currentDirectoryPath)
        for c in candidates where FileManager.default.fileExists(atPath: c + "/scripts/ray/actorgraph_placer.py") {
            return c + "/scripts"
        }
        throw Failure.message("cannot find scripts/ray/actorgraph_placer.py (run from the repository or set ACTORGRAPH_SCRIPTS)")
    }

    static var python: String { ProcessInfo.processInfo.environment["PYTHON"] ?? "python3" }

    /// The environment every Ray process and the placer get: token authentication (Ray 2.60 needs
    /// it here), no usage stats, and node-death detection in ~1 s instead of ~15 s.
    static func rayEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["RAY_AUTH_MODE"] = "token"
        if env["RAY_AUTH_TOKEN"] == nil && FileManager.default.fileExists(atPath: tokenPath) { env["RAY_AUTH_TOKEN_PATH"] = tokenPath }
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        for (k, v) in [("RAY_health_check_period_ms", "500"), ("RAY_health_check_timeout_ms", "500"),
                       ("RAY_health_check_failure_threshold", "3"), ("RAY_health_check_initial_delay_ms", "1000")] where env[k] == nil {
            env[k] = v
        }
        return env
    }

    /// Runs `body` (which starts child processes) with no signal blocked in this thread: a child
    /// inherits the mask, and the threads async commands run on block SIGTERM and SIGINT — a Ray
    /// process or placer started from there would ignore `down`'s SIGTERM.
    static func withUnblockedSignals<T>(_ body: () throws -> T) rethrows -> T {
        var empty = sigset_t(), old = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        return try body()
    }

    /// Runs a command to its end (at most `seconds`), returning its status and output.
    @discardableResult
    static func sh(_ arguments: [String], environment: [String: String]? = nil, seconds: Double = 60) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do { try withUnblockedSignals { try process.run() } } catch { return (127, "\(arguments.first ?? ""): \(error)") }
        let collected = Mutex(Data())
        let reader = Thread { collected.withLock { $0 = pipe.fileHandleForReading.readDataToEndOfFile() } }
        reader.start()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate(); usleep(200_000); if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        process.waitUntilExit()
        while collected.withLock({ $0.isEmpty }) && reader.isExecuting { usleep(5_000) }
        usleep(5_000)
        let text = collected.withLock { String(decoding: $0, as: UTF8.self) }
        return (process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus, text)
    }

    static func rig(_ arguments: [String]) throws -> (status: Int32, output: String) {
        var env = ProcessInfo.processInfo.environment
        env["AGRIG_PREFIX"] = prefix
        env["AGRIG_NET"] = net
        env["AGRIG_OWNER"] = "1" // a cluster is removed by `cluster down`, never by the next `up`
        return sh(["bash", try scriptsDirectory() + "/netns-rig.sh"] + arguments, environment: env)
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 else { return false }
        // A zombie (exited, not yet reaped by its new parent) is gone for our purposes.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    static func commandLine(_ pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func namespacePIDs(_ ns: String) -> [Int32] {
        sh(["ip", "netns", "pids", ns], seconds: 10).output.split(whereSeparator: \.isNewline).compactMap { Int32($0) }.filter(isAlive)
    }

    static func namespaceExists(_ ns: String) -> Bool { FileManager.default.fileExists(atPath: "/run/netns/" + ns) }

    /// Whether this process runs in network namespace `ns` (same inode as /run/netns/NS).
    static func runsInNamespace(_ ns: String) -> Bool {
        var a = stat(), b = stat()
        guard stat("/proc/self/ns/net", &a) == 0, stat("/run/netns/" + ns, &b) == 0 else { return false }
        return a.st_ino == b.st_ino && a.st_dev == b.st_dev
    }

    /// Runs this program again with `arguments` inside `ns` (stdout and stderr shared); its exit status.
    static func reexec(in ns: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", ns, RemoteFaults.executablePath()] + arguments
        process.standardInput = FileHandle.nullDevice
        do { try withUnblockedSignals { try process.run() } } catch { return 127 }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    // MARK: up

    /// Starts the local demo: namespaces agray-a (Ray head, the placer, owners), agray-b (a Ray node
    /// with host `b`'s resource) and, with `spare`, agray-c (a second node with the same resource,
    /// where Ray re-places `b`'s piece when agray-b's node dies); then the placer, and waits for
    /// every piece's first incarnation.
    static func upLocal(spare: Bool, log: (String) -> Void) throws -> State {
        try refuseIfUp()
        let t0 = MonotonicClock.now()
        let scripts = try scriptsDirectory()
        let probe = sh([python, "-c", "import ray; print(ray.__version__)"], seconds: 60)
        guard probe.status == 0 else {
            throw Failure.message("Ray is not installed for \(python) (run scripts/ray/install.sh): \(probe.output.split(separator: "\n").last ?? "")")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let up = try rig(["up", spare ? "3" : "2"])
        guard up.status == 0 else { throw Failure.message("scripts/netns-rig.sh up failed (\(up.status)): \(up.output)") }
        var state = State(mode: "local", namespaces: [prefix + "-a", prefix + "-b"] + (spare ? [prefix + "-c"] : []),
                          ownerNamespace: prefix + "-a", address: "\(net).1:\(rayPort)", nodeIP: "\(net).1", placerPID: 0,
                          binary: RemoteFaults.executablePath(), pieces: ["b:\(piecePort)"], nodes: [:], started: Date().timeIntervalSince1970)
        try saveState(state) // from here on, `down` knows what to remove
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        _ = FileManager.default.createFile(atPath: tokenPath, contents: Data(token.map { String(format: "%02x", $0) }.joined().utf8),
                                       attributes: [.posixPermissions: 0o600])
        let env = rayEnvironment()
        let head = sh(["ip", "netns", "exec", prefix + "-a", python, "-m", "ray.scripts.scripts", "start", "--head",
                       "--node-ip-address", "\(net).1", "--port", "\(rayPort)", "--num-cpus", "1",
                       "--resources", #"{"actorgraph_owner": 1}"#, "--include-dashboard=false", "--disable-usage-stats",
                       "--temp-dir", rayTempDirectory], environment: env, seconds: 90)
        guard head.status == 0 else { throw Failure.message("ray start --head failed: \(head.output.suffix(600))") }
        state.nodes["\(net).1"] = prefix + "-a"
        log("cluster: Ray head in \(prefix)-a at \(state.address)")
        for (ns, ip) in [(prefix + "-b", "\(net).2")] + (spare ? [(prefix + "-c", "\(net).3")] : []) {
            let node = sh(["ip", "netns", "exec", ns, python, "-m", "ray.scripts.scripts", "start", "--address", state.address,
                           "--node-ip-address", ip, "--num-cpus", "1", "--resources", #"{"actorgraph_host_b": 1}"#,
                           "--disable-usage-stats"], environment: env, seconds: 90)
            guard node.status == 0 else { throw Failure.message("ray start in \(ns) failed: \(node.output.suffix(600))") }
            state.nodes[ip] = ns
            log("cluster: Ray node in \(ns) at \(ip) with resource actorgraph_host_b (host b)")
        }
        try saveState(state)
        state.placerPID = try startPlacer(state: state, scripts: scripts, inNamespace: prefix + "-a")
        try saveState(state)
        try waitUntilReady(state, timeout: .seconds(90))
        log("cluster: up in \(LatencySummary.fixed(Double(MonotonicClock.now() &- t0) / 1e9, decimals: 1)) s")
        return state
    }

    /// Starts only the placer, against an existing Ray cluster (which `down` leaves running).
    static func attach(address: String, nodeIP: String, pieces: [String], log: (String) -> Void) throws -> State {
        try refuseIfUp()
        let scripts = try scriptsDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var state = State(mode: "attach", namespaces: [], ownerNamespace: nil, address: address, nodeIP: nodeIP, placerPID: 0,
                          binary: RemoteFaults.executablePath(), pieces: pieces, nodes: [:], started: Date().timeIntervalSince1970)
        try saveState(state)
        state.placerPID = try startPlacer(state: state, scripts: scripts, inNamespace: nil)
        try saveState(state)
        try waitUntilReady(state, timeout: .seconds(90))
        log("cluster: placer attached to \(address)")
        return state
    }

    static func refuseIfUp() throws {
        guard let state = loadState() else { return }
        if isAlive(state.placerPID) || state.namespaces.contains(where: namespaceExists) {
            throw Failure.message("a cluster is already up (\(state.mode), placer pid \(state.placerPID)); `actorgraph cluster down` first")
        }
        _ = down(log: { _ in })
    }

    static func startPlacer(state: State, scripts: String, inNamespace ns: String?) throws -> Int32 {
        try? FileManager.default.removeItem(atPath: eventsPath)
        _ = FileManager.default.createFile(atPath: eventsPath, contents: nil)
        _ = FileManager.default.createFile(atPath: placerLogPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        var arguments = ns.map { ["ip", "netns", "exec", $0] } ?? []
        arguments += [python, scripts + "/ray/actorgraph_placer.py", "--address", state.address, "--node-ip", state.nodeIP,
                      "--binary", state.binary, "--events", eventsPath]
        for piece in state.pieces { arguments += ["--piece", piece] }
        process.arguments = arguments
        process.environment = rayEnvironment()
        process.standardInput = FileHandle.nullDevice
        let logHandle = FileHandle(forWritingAtPath: placerLogPath)
        process.standardOutput = logHandle
        process.standardError = logHandle
        try withUnblockedSignals { try process.run() }
        // The placer reports its own pid (setsid may fork).
        let feed = PlacerFeed(path: eventsPath)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            feed.poll()
            if let placer = feed.all.first(where: { $0.event.kind == "placer" }), let pid = placer.event.pid { return pid }
            if !process.isRunning && process.processIdentifier > 0 && !isAlive(process.processIdentifier) {
                break
            }
            usleep(50_000)
        }
        throw Failure.message("the placer did not start: \(tail(placerLogPath))")
    }

    static func waitUntilReady(_ state: State, timeout: Duration) throws {
        let feed = PlacerFeed(path: eventsPath)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            feed.poll()
            if feed.all.contains(where: { $0.event.kind == "ready" }) { return }
            if !isAlive(state.placerPID) { break }
            usleep(50_000)
        }
        throw Failure.message("the placer's pieces did not all start: \(tail(placerLogPath))")
    }

    static func tail(_ path: String, lines: Int = 6) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }

    // MARK: down

    /// Stops the placer (its keepers stop their pieces), then in local mode every process in the
    /// cluster's namespaces and the namespaces; checks that no piece, Ray process or namespace is
    /// left. Returns what was left behind (empty: nothing).
    static func down(log: (String) -> Void) -> [String] {
        guard let state = loadState() else {
            // Namespaces of a cluster whose state is gone.
            let stray = [prefix + "-a", prefix + "-b", prefix + "-c"].filter(namespaceExists)
            if stray.isEmpty { log("cluster: nothing to take down"); return [] }
            return downNamespaces(stray, log: log)
        }
        let feed = PlacerFeed(path: eventsPath)
        feed.poll()
        var stopped = 0
        if isAlive(state.placerPID), commandLine(state.placerPID).contains(where: { $0.hasSuffix("actorgraph_placer.py") }) {
            kill(state.placerPID, SIGTERM)
            for _ in 0..<300 where isAlive(state.placerPID) { usleep(50_000) }
            if isAlive(state.placerPID) { kill(state.placerPID, SIGKILL) }
            stopped += 1
        }
        var left: [String] = []
        if state.mode == "local" {
            left += downNamespaces(state.namespaces, log: log)
        }
        // Every piece the placer ever reported must be gone (attach mode: the keepers stopped them).
        for seen in feed.all where seen.event.kind == "incarnation" {
            guard let pid = seen.event.pid, isAlive(pid), commandLine(pid).contains("piece") else { continue }
            kill(pid, SIGKILL)
            usleep(100_000)
            if isAlive(pid) { left.append("piece pid \(pid)") }
        }
        if state.mode == "local" {
            // Ray's session files and the keepers' pid files of this cluster's nodes.
            try? FileManager.default.removeItem(atPath: rayTempDirectory)
            let tmp = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
            for name in tmp where name.hasPrefix("actorgraph-placer-") && name.contains("-\(net).") && name.hasSuffix(".pid") {
                try? FileManager.default.removeItem(atPath: "/tmp/" + name)
            }
        }
        if left.isEmpty {
            try? FileManager.default.removeItem(atPath: directory)
            log(state.mode == "local"
                ? "cluster: down (local): placer stopped, Ray and its namespaces removed, no piece, Ray process or namespace left"
                : "cluster: down (attach): placer stopped, its keeper actors killed, no piece left; the Ray cluster at \(state.address) keeps running")
        } else {
            log("cluster: down left behind: \(left.joined(separator: ", "))")
        }
        return left
    }

    /// Kills every process in `namespaces` (all started by the cluster: these namespaces are its
    /// own), by pid, then removes the namespaces with the rig script.
    static func downNamespaces(_ namespaces: [String], log: (String) -> Void) -> [String] {
        var killed = 0
        for round in 0..<50 {
            let pids = namespaces.filter(namespaceExists).flatMap(namespacePIDs)
            if pids.isEmpty { break }
            for pid in pids { kill(pid, round == 0 ? SIGTERM : SIGKILL) }
            if round == 0 { killed = pids.count; usleep(500_000) } else { usleep(100_000) }
        }
        var left = namespaces.filter(namespaceExists).flatMap(namespacePIDs).map { "pid \($0) (\(commandLine($0).first ?? "?"))" }
        let result: (status: Int32, output: String) = (try? rig(["down"])) ?? (1, "scripts/netns-rig.sh not found")
        if result.status != 0 { left.append("rig down: \(result.output)") }
        left += namespaces.filter(namespaceExists).map { "namespace \($0)" }
        if left.isEmpty { log("cluster: \(killed) process(es) stopped in \(namespaces.joined(separator: ", ")); namespaces removed") }
        return left
    }

    // MARK: status

    static func statusLines() -> [String] {
        guard let state = loadState() else { return ["cluster: down (no \(statePath))"] }
        var lines: [String] = []
        let placer = isAlive(state.placerPID) ? "running" : "NOT RUNNING"
        lines.append("cluster: \(state.mode), Ray at \(state.address), placer pid \(state.placerPID) \(placer)")
        for ns in state.namespaces {
            let pids = namespaceExists(ns) ? namespacePIDs(ns) : []
            let names = Set(pids.map { ((try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines) })
            let raylet = names.contains("raylet") ? "raylet up" : "no raylet"
            lines.append("  node \(ns) (\(state.nodes.first { $0.value == ns }?.key ?? "-")): \(namespaceExists(ns) ? "\(pids.count) process(es), \(raylet)" : "namespace missing")")
        }
        let feed = PlacerFeed(path: eventsPath)
        feed.poll()
        let hosts = Set(feed.all.compactMap { $0.event.kind == "incarnation" ? $0.event.host : nil }).sorted()
        for host in hosts {
            let events = feed.all.map(\.event).filter { $0.host == host }
            let incarnations = events.filter { $0.kind == "incarnation" }
            guard let current = incarnations.last else { continue }
            let alive = current.pid.map(isAlive) ?? false
            let keeperRestarts = events.filter { $0.kind == "keeper_restarted" }.count
            let pieceRestarts = incarnations.filter { ($0.pieceIncarnation ?? 1) > 1 }.count
            lines.append("  piece \(host): \(current.address.map { "\($0)" } ?? "?") pid \(current.pid ?? 0) \(alive ? "alive" : "gone"), "
                         + "keeper pid \(current.keeperPID ?? 0) on node \(state.nodes[current.ip ?? ""] ?? current.ip ?? "?"); "
                         + "incarnations \(incarnations.count), piece restarts \(pieceRestarts), keeper restarts \(keeperRestarts)")
        }
        if let owner = try? String(contentsOfFile: ownerStatusPath, encoding: .utf8), !owner.isEmpty {
            lines.append("  owner (last written): " + owner.trimmingCharacters(in: .whitespacesAndNewlines))
        } else {
            lines.append("  owner: none has reported (epochs are the owner's; `faults --remote --ray` writes them here)")
        }
        return lines
    }

    /// An owner's view of its hosts, for `cluster status`.
    static func writeOwnerStatus(_ hosts: [HostStatus]) {
        let text = hosts.map { "host \($0.name) connected=\($0.connected) epoch=\($0.epoch) incarnations=\($0.incarnations) losses=\($0.losses)" }
            .joined(separator: "; ") + " (pid \(getpid()))\n"
        try? text.write(toFile: ownerStatusPath, atomically: true, encoding: .utf8)
    }
}
