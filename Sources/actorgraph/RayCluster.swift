import ActorGraph
import ActorGraphCluster
import ActorGraphExamples
import ActorGraphPlatform
import Foundation
import Glibc
import Synchronization

/// `actorgraph cluster`'s machinery: a local Ray cluster across network namespaces (or an existing
/// one), the placer, and a state directory that `status` and `down` read.
enum RayCluster {
    static let directory = "/run/actorgraph-cluster"
    static var statePath: String { directory + "/state.json" }
    static var eventsPath: String { directory + "/events.jsonl" }
    static var placerLogPath: String { directory + "/placer.log" }
    static var tokenPath: String { directory + "/auth_token" }
    static var ownerStatusPath: String { directory + "/owner.json" }
    /// The local demo's namespaces: its own rig (scripts/netns-rig.sh with this prefix and /24), so
    /// it never touches the tests' agrig-* rig.
    static let prefix = "agray"
    static let net = "10.232.0"
    static let rayPort = 6390
    /// The piece's port in the local demo: 0, any free one (the keeper reports the port it bound,
    /// so a restarted piece never waits for the old one's); `cluster up --piece-port` fixes it.
    static let piecePort: UInt16 = 0
    /// The node label of host b's Ray nodes (`cluster up --by-label` places by it instead of the resource).
    static let hostLabel = "actorgraph-host"
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
        /// The process that ran `up` (while it is alive and the placer not yet started, the cluster
        /// is being brought up: another `up` must not take it for a stale one).
        var upPID: Int32? = nil
    }

    enum Failure: Error, CustomStringConvertible {
        case message(String)
        /// Another process's cluster is up (or being brought up): never taken down by a refused `up`.
        case alreadyUp(String)
        var description: String {
            switch self {
            case .message(let m), .alreadyUp(let m): return m
            }
        }
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
        while dir.count > 1 {
            candidates.append(dir)
            dir = (dir as NSString).deletingLastPathComponent
        }
        candidates.append(FileManager.default.currentDirectoryPath)
        for c in candidates where FileManager.default.fileExists(atPath: c + "/scripts/ray/actorgraph_placer.py") {
            return c + "/scripts"
        }
        throw Failure.message(
            "cannot find scripts/ray/actorgraph_placer.py (run from the repository or set ACTORGRAPH_SCRIPTS)"
        )
    }

    static var python: String { ProcessInfo.processInfo.environment["PYTHON"] ?? "python3" }

    /// The environment every Ray process and the placer get: token authentication (Ray 2.60 needs
    /// it here), no usage stats, and node-death detection in ~1 s instead of ~15 s.
    static func rayEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["RAY_AUTH_MODE"] = "token"
        if env["RAY_AUTH_TOKEN"] == nil && FileManager.default.fileExists(atPath: tokenPath) {
            env["RAY_AUTH_TOKEN_PATH"] = tokenPath
        }
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        for (k, v) in [
            ("RAY_health_check_period_ms", "500"), ("RAY_health_check_timeout_ms", "500"),
            ("RAY_health_check_failure_threshold", "3"), ("RAY_health_check_initial_delay_ms", "1000"),
        ] where env[k] == nil {
            env[k] = v
        }
        return env
    }

    /// Runs `body` (which starts child processes) with no signal blocked in this thread: a child
    /// inherits the mask, and the threads async commands run on block SIGTERM and SIGINT — a Ray
    /// process or placer started from there would ignore `down`'s SIGTERM.
    static func withUnblockedSignals<T>(_ body: () throws -> T) rethrows -> T {
        var empty = sigset_t()
        var old = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        return try body()
    }

    /// Runs a command to its end (at most `seconds`), returning its status and output.
    @discardableResult
    static func sh(
        _ arguments: [String],
        environment: [String: String]? = nil,
        seconds: Double = 60
    ) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do { try withUnblockedSignals { try process.run() } } catch {
            return (127, "\(arguments.first ?? ""): \(error)")
        }
        let collected = Mutex(Data())
        let reader = Thread { collected.withLock { $0 = pipe.fileHandleForReading.readDataToEndOfFile() } }
        reader.start()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            usleep(200_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        while collected.withLock({ $0.isEmpty }) && reader.isExecuting { usleep(5_000) }
        usleep(5_000)
        let text = collected.withLock { String(decoding: $0, as: UTF8.self) }
        return (
            process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus,
            text
        )
    }

    static func rig(_ arguments: [String]) throws -> (status: Int32, output: String) {
        var env = ProcessInfo.processInfo.environment
        env["AGRIG_PREFIX"] = prefix
        env["AGRIG_NET"] = net
        env["AGRIG_OWNER"] = "1"  // a cluster is removed by `cluster down`, never by the next `up`
        return sh(["bash", try scriptsDirectory() + "/netns-rig.sh"] + arguments, environment: env)
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 else { return false }
        // A zombie (exited, not yet reaped by its new parent) is gone for our purposes.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    static func commandLine(_ pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func namespacePIDs(_ ns: String) -> [Int32] {
        sh(["ip", "netns", "pids", ns], seconds: 10).output.split(whereSeparator: \.isNewline).compactMap { Int32($0) }
            .filter(isAlive)
    }

    static func namespaceExists(_ ns: String) -> Bool { FileManager.default.fileExists(atPath: "/run/netns/" + ns) }

    /// Whether this process runs in network namespace `ns` (same inode as /run/netns/NS).
    static func runsInNamespace(_ ns: String) -> Bool {
        var a = stat()
        var b = stat()
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
        return process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
    }

    // MARK: up

    /// Starts the local demo: namespaces agray-a (Ray head, the placer, owners), agray-b (a Ray node
    /// with host `b`'s resource) and, with `spare`, agray-c (a second node with the same resource,
    /// where Ray re-places `b`'s piece when agray-b's node dies); then the placer, and waits for
    /// every piece's first incarnation.
    static func upLocal(
        spare: Bool,
        piecePort: UInt16 = piecePort,
        byLabel: Bool = false,
        log: (String) -> Void
    ) throws -> State {
        try refuseIfUp()
        let t0 = MonotonicClock.now()
        let scripts = try scriptsDirectory()
        let probe = sh([python, "-c", "import ray; print(ray.__version__)"], seconds: 60)
        guard probe.status == 0 else {
            throw Failure.message(
                "Ray is not installed for \(python) (run scripts/ray/install.sh): \(probe.output.split(separator: "\n").last ?? "")"
            )
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let up = try rig(["up", spare ? "3" : "2"])
        guard up.status == 0 else {
            throw Failure.message("scripts/netns-rig.sh up failed (\(up.status)): \(up.output)")
        }
        var state = State(
            mode: "local",
            namespaces: [prefix + "-a", prefix + "-b"] + (spare ? [prefix + "-c"] : []),
            ownerNamespace: prefix + "-a",
            address: "\(net).1:\(rayPort)",
            nodeIP: "\(net).1",
            placerPID: 0,
            binary: RemoteFaults.executablePath(),
            pieces: ["b:\(piecePort)" + (byLabel ? "@\(hostLabel)=b" : "")],
            nodes: [:],
            started: Date().timeIntervalSince1970,
            upPID: getpid()
        )
        try saveState(state)  // from here on, `down` knows what to remove
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        _ = FileManager.default.createFile(
            atPath: tokenPath,
            contents: Data(token.map { String(format: "%02x", $0) }.joined().utf8),
            attributes: [.posixPermissions: 0o600]
        )
        let env = rayEnvironment()
        let head = sh(
            [
                "ip", "netns", "exec", prefix + "-a", python, "-m", "ray.scripts.scripts", "start", "--head",
                "--node-ip-address", "\(net).1", "--port", "\(rayPort)", "--num-cpus", "1",
                "--resources", #"{"actorgraph_owner": 1}"#, "--include-dashboard=false", "--disable-usage-stats",
                "--temp-dir", rayTempDirectory,
            ],
            environment: env,
            seconds: 90
        )
        guard head.status == 0 else { throw Failure.message("ray start --head failed: \(head.output.suffix(600))") }
        state.nodes["\(net).1"] = prefix + "-a"
        log("cluster: Ray head in \(prefix)-a at \(state.address)")
        for (ns, ip) in [(prefix + "-b", "\(net).2")] + (spare ? [(prefix + "-c", "\(net).3")] : []) {
            let node = sh(
                [
                    "ip", "netns", "exec", ns, python, "-m", "ray.scripts.scripts", "start", "--address", state.address,
                    "--node-ip-address", ip, "--num-cpus", "1", "--resources", #"{"actorgraph_host_b": 1}"#,
                    "--labels", "\(hostLabel)=b", "--disable-usage-stats",
                ],
                environment: env,
                seconds: 90
            )
            guard node.status == 0 else {
                throw Failure.message("ray start in \(ns) failed: \(node.output.suffix(600))")
            }
            state.nodes[ip] = ns
            log(
                "cluster: Ray node in \(ns) at \(ip) with resource actorgraph_host_b and label \(hostLabel)=b (host b; placed by \(byLabel ? "label" : "resource"))"
            )
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
        var state = State(
            mode: "attach",
            namespaces: [],
            ownerNamespace: nil,
            address: address,
            nodeIP: nodeIP,
            placerPID: 0,
            binary: RemoteFaults.executablePath(),
            pieces: pieces,
            nodes: [:],
            started: Date().timeIntervalSince1970,
            upPID: getpid()
        )
        try saveState(state)
        state.placerPID = try startPlacer(state: state, scripts: scripts, inNamespace: nil)
        try saveState(state)
        try waitUntilReady(state, timeout: .seconds(90))
        log("cluster: placer attached to \(address)")
        return state
    }

    static func refuseIfUp() throws {
        guard let state = loadState() else { return }
        if isAlive(state.placerPID) || state.namespaces.contains(where: namespaceExists)
            || state.upPID.map(isAlive) == true
        {
            throw Failure.alreadyUp(
                "a cluster is already up (\(state.mode), placer pid \(state.placerPID), started by pid \(state.upPID ?? 0), "
                    + "binary \(state.binary)); `actorgraph cluster down` first"
            )
        }
        _ = down(log: { _ in })
    }

    /// Starts the placer (through ``PlacerFeed/start(_:timeout:)``, under `setsid` so that it
    /// outlives this command; in the head's namespace when local) and returns its pid.
    static func startPlacer(state: State, scripts: String, inNamespace ns: String?) throws -> Int32 {
        let placer = PlacerFeed.Placer(
            script: scripts + "/ray/actorgraph_placer.py",
            python: python,
            rayAddress: state.address,
            nodeIP: state.nodeIP,
            binary: state.binary,
            pieces: try state.pieces.map(placement),
            eventsPath: eventsPath,
            logPath: placerLogPath,
            environment: rayEnvironment(),
            launcher: ["setsid"] + (ns.map { ["ip", "netns", "exec", $0] } ?? [])
        )
        let feed = try PlacerFeed.start(placer)
        return feed.placerPID ?? 0
    }

    /// `HOST[:PORT][@RESOURCE|@KEY=VALUE]` (the CLI's and the state's form of a piece).
    static func placement(_ spec: String) throws -> PlacerFeed.Placement {
        var rest = Substring(spec)
        var selector: PlacerFeed.Placement.Selector? = nil
        if let at = rest.firstIndex(of: "@") {
            let what = rest[rest.index(after: at)...]
            rest = rest[..<at]
            if let eq = what.firstIndex(of: "=") {
                selector = .label(key: String(what[..<eq]), value: String(what[what.index(after: eq)...]))
            } else {
                selector = .resource(String(what))
            }
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard let host = parts.first, !host.isEmpty, parts.count <= 2,
            let port = parts.count == 2 ? UInt16(parts[1]) : 0
        else {
            throw Failure.message("a piece is HOST[:PORT][@RESOURCE|@KEY=VALUE] (got '\(spec)')")
        }
        return PlacerFeed.Placement(host: String(host), port: port, selector: selector)
    }

    static func waitUntilReady(_ state: State, timeout: Duration) throws {
        let feed = PlacerFeed(eventsPath: eventsPath)
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                _ = try feed.waitForPieces(timeout: .milliseconds(500))
                return
            } catch {
                if ContinuousClock.now >= deadline || !isAlive(state.placerPID) {
                    throw Failure.message("the placer's pieces did not all start: \(tail(placerLogPath))")
                }
            }
        }
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
            if stray.isEmpty {
                log("cluster: nothing to take down")
                return []
            }
            return downNamespaces(stray, log: log)
        }
        // The placer's SIGTERM: its keepers stop their pieces, its actors are killed (SIGKILL after 15 s).
        let feed = PlacerFeed(eventsPath: eventsPath)
        var left: [String] = []
        if !feed.stop(placer: true) { left.append("placer pid \(state.placerPID)") }
        if state.mode == "local" {
            left += downNamespaces(state.namespaces, log: log)
        }
        // Every piece the placer ever reported must be gone (attach mode: the keepers stopped them).
        for incarnation in feed.incarnations {
            let pid = incarnation.pid
            guard isAlive(pid), commandLine(pid).contains("piece") else { continue }
            kill(pid, SIGKILL)
            usleep(100_000)
            if isAlive(pid) { left.append("piece pid \(pid)") }
        }
        if state.mode == "local" {
            // Ray's session files and the keepers' pid files of this cluster's nodes.
            try? FileManager.default.removeItem(atPath: rayTempDirectory)
            let tmp = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
            for name in tmp
            where name.hasPrefix("actorgraph-placer-") && name.contains("-\(net).") && name.hasSuffix(".pid") {
                try? FileManager.default.removeItem(atPath: "/tmp/" + name)
            }
        }
        if left.isEmpty {
            try? FileManager.default.removeItem(atPath: directory)
            log(
                state.mode == "local"
                    ? "cluster: down (local): placer stopped, Ray and its namespaces removed, no piece, Ray process or namespace left"
                    : "cluster: down (attach): placer stopped, its keeper actors killed, no piece left; the Ray cluster at \(state.address) keeps running"
            )
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
            if round == 0 {
                killed = pids.count
                usleep(500_000)
            } else {
                usleep(100_000)
            }
        }
        var left = namespaces.filter(namespaceExists).flatMap(namespacePIDs).map {
            "pid \($0) (\(commandLine($0).first ?? "?"))"
        }
        let result: (status: Int32, output: String) = (try? rig(["down"])) ?? (1, "scripts/netns-rig.sh not found")
        if result.status != 0 { left.append("rig down: \(result.output)") }
        left += namespaces.filter(namespaceExists).map { "namespace \($0)" }
        if left.isEmpty {
            log("cluster: \(killed) process(es) stopped in \(namespaces.joined(separator: ", ")); namespaces removed")
        }
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
            let names = Set(
                pids.map {
                    ((try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) ?? "?").trimmingCharacters(
                        in: .whitespacesAndNewlines
                    )
                }
            )
            let raylet = names.contains("raylet") ? "raylet up" : "no raylet"
            lines.append(
                "  node \(ns) (\(state.nodes.first { $0.value == ns }?.key ?? "-")): \(namespaceExists(ns) ? "\(pids.count) process(es), \(raylet)" : "namespace missing")"
            )
        }
        // Pieces from the placer's events; epochs from the owner that follows them (it writes
        // ownerStatusPath: the epoch is the owner's, the placer never knows it).
        let owner = (FileManager.default.contents(atPath: ownerStatusPath)).flatMap {
            try? JSONDecoder().decode(OwnerStatus.self, from: $0)
        }
        let ownerAlive = owner.map { isAlive($0.pid) } ?? false
        for piece in PlacerFeed(eventsPath: eventsPath).pieces {
            let c = piece.current
            var line =
                "  piece \(piece.host): \(c.address) pid \(c.pid) \(isAlive(c.pid) ? "alive" : "gone"), "
                + "node \(state.nodes[c.address.ip] ?? c.address.ip) (keeper pid \(c.keeperPID)); incarnation \(c.number), "
            if let o = owner?.hosts[piece.host] {
                line +=
                    "epoch \(o.epoch) (owner pid \(owner!.pid) \(ownerAlive ? "running" : "gone, last written"), "
                    + "\(o.connected ? "connected" : "not connected")\(o.incarnation == c.number ? "" : " to incarnation \(o.incarnation)"), losses \(o.losses)), "
            } else {
                line += "epoch - (no owner has reported), "
            }
            line += "piece restarts \(piece.pieceRestarts), keeper restarts \(piece.keeperRestarts)"
            lines.append(line)
        }
        if owner == nil {
            lines.append(
                "  owner: none has reported (epochs are the owner's: `cluster run` and `faults --remote --ray` write them)"
            )
        }
        return lines
    }

    /// What an owner following the placer last wrote, for `cluster status`.
    struct OwnerStatus: Codable {
        struct Host: Codable {
            var epoch: UInt32
            var connected: Bool
            var losses: Int
            /// The placer's incarnation number of the piece the feed last handed over.
            var incarnation: Int
            var address: String
        }
        var pid: Int32
        var time: Double
        var hosts: [String: Host]
    }

    /// Writes the owner's view of its pieces (``PlacerFeed/pieces`` of a feed following the graph).
    static func writeOwnerStatus(_ feed: PlacerFeed) {
        var hosts: [String: OwnerStatus.Host] = [:]
        for p in feed.pieces {
            guard let epoch = p.epoch else { continue }
            hosts[p.host] = OwnerStatus.Host(
                epoch: epoch,
                connected: p.connected ?? false,
                losses: p.losses ?? 0,
                incarnation: p.current.number,
                address: "\(p.current.address)"
            )
        }
        guard
            let data = try? JSONEncoder().encode(
                OwnerStatus(pid: getpid(), time: Date().timeIntervalSince1970, hosts: hosts)
            )
        else { return }
        try? data.write(to: URL(fileURLWithPath: ownerStatusPath), options: .atomic)
    }

}
