import ActorGraphPlatform
import Glibc

// Across hosts (issue 16, point 8): a graph spanning two hosts — `remote.echo` (one stage on host b,
// round trip from a blocking caller on the owner) and `remote.chain3.pipelined` (three stages on b,
// executeAll) — beside the raw TCP round trip between the same two ends in the same run: two
// network namespaces of `scripts/netns-rig.sh` (a veth pair each, bridged in a hub namespace), and
// the same over loopback in the root namespace. The owner runs `actorgraph remote-bench`, the piece
// `actorgraph piece`, each a process of its own, like the raw TCP ends.

/// One path of a remote case.
public struct RemoteResult: Codable, Sendable {
    /// The case: `remote.tcp_pingpong`, `remote.echo` or `remote.chain3.pipelined`.
    public var name: String
    /// `netns-veth` (namespace agrig-a to agrig-b through the rig) or `loopback` (root namespace, 127.0.0.1).
    public var path: String
    /// Where the two ends ran: `agrig-a 10.231.0.1 -> agrig-b 10.231.0.2`.
    public var route: String
    /// Bytes of one message each way.
    public var payloadBytes: Int = 32
    /// Timed round trips.
    public var count: Int
    /// Round trip percentiles from the client's own line (nearest rank over every sample), ns.
    public var p50: UInt64
    public var p99: UInt64
    public var p999: UInt64
    public var max: UInt64
    /// The client's line, as printed.
    public var line: String
    /// `remote.chain3.pipelined`: executions per second (the latency fields are 0 then).
    public var perSecond: Double? = nil
}

/// What the remote cases measured; `notes` says why a path was skipped.
public struct RemoteResults: Codable, Sendable {
    public var results: [RemoteResult] = []
    public var notes: [String] = []
}

/// `remote.tcp_pingpong`: needs root (network namespaces), so it runs only when a `--case` selects
/// it (`remote`, `remote.tcp_pingpong`, `tcp_pingpong`), never in a plain or `--quick` run.
enum RemoteCases {
    static let names = ["remote.tcp_pingpong", "remote.echo", "remote.chain3.pipelined", "remote"]

    /// The ends: this binary's hidden `tcp-pingpong` command (the suite runs inside `actorgraph`).
    static let command = "tcp-pingpong"
    /// Every wait of either end (connect, accept, each receive), seconds.
    static let endTimeoutSeconds = 10

    static func run(_ options: BenchOptions) async throws -> RemoteResults? {
        guard !options.cases.isEmpty,
            options.includes("remote.tcp_pingpong") || options.includes("remote.echo")
                || options.includes("remote.chain3.pipelined")
        else { return nil }
        let count = options.quick ? 10_000 : 50_000
        let warmup = options.quick ? 1_000 : 5_000
        let pipelined = options.quick ? 200_000 : 1_000_000
        say(
            "remote cases: raw TCP ping-pong, 32-byte messages, TCP_NODELAY, blocking send/recv, client and server unpinned processes"
        )
        // Blocking waits on child processes: on a thread of their own, not a cooperative-pool thread.
        return try await onUnpinnedThread(name: "ag-remote") {
            var out = RemoteResults()
            guard let exe = SelfExecutable.path else {
                out.notes.append("remote.tcp_pingpong skipped: cannot read /proc/self/exe")
                say("  \(out.notes.last!)")
                return out
            }
            switch measureAcrossNamespaces(exe: exe, count: count, warmup: warmup, pipelined: pipelined) {
            case .success(let r): out.results += r
            case .failure(let skip): out.notes.append(skip.description)
            }
            let loopbackRoute = "root namespace, 127.0.0.1 -> 127.0.0.1"
            switch pingPong(
                exe: exe,
                serverPrefix: [],
                clientPrefix: [],
                bind: "127.0.0.1",
                connect: "127.0.0.1",
                count: count,
                warmup: warmup
            ) {
            case .success(let m):
                out.results.append(m.result(path: "loopback", route: loopbackRoute))
            case .failure(let failure):
                out.notes.append("remote.tcp_pingpong loopback failed: \(failure)")
            }
            // Loopback: the piece served inside the owner's process, so the allocation count covers both ends.
            switch remoteGraph(
                exe: exe,
                piecePrefix: nil,
                ownerPrefix: [],
                bind: "127.0.0.1",
                count: count,
                warmup: warmup,
                pipelined: pipelined,
                path: "loopback",
                route: loopbackRoute + " (piece in the owner's process)"
            ) {
            case .success(let r): out.results += r
            case .failure(let failure): out.notes.append("remote.echo loopback failed: \(failure)")
            }
            for note in out.notes { say("  \(note)") }
            for r in out.results { printResult(r) }
            return out
        }
    }

    /// `up 2`, server in agrig-b, client in agrig-a, and `down` on every path out.
    static func measureAcrossNamespaces(
        exe: String,
        count: Int,
        warmup: Int,
        pipelined: Int
    ) -> Result<[RemoteResult], BenchFailure> {
        if geteuid() != 0 {
            return .failure(
                BenchFailure(description: "remote.tcp_pingpong (netns) skipped: creating network namespaces needs root")
            )
        }
        guard let script = rigScript() else {
            return .failure(
                BenchFailure(
                    description:
                        "remote.tcp_pingpong (netns) skipped: scripts/netns-rig.sh not found (run from the repository root)"
                )
            )
        }
        // The rig's owner is this process (not the shell in between): a rig left by a bench that
        // died is then recognised as stale and replaced by the next `up`.
        let owner = "AGRIG_OWNER=\(getpid())"
        let up: (status: Int32?, lines: [String])
        do {
            up = try RigChild.run("/bin/bash", [script, "up", "2"], environment: [owner], seconds: 30)
        } catch {
            return .failure(
                BenchFailure(description: "remote.tcp_pingpong (netns) skipped: cannot run \(script): \(error)")
            )
        }
        // Exit 3: another live process's rig. Left alone: `down` would tear it out from under its owner.
        if up.status == 3 {
            let why = up.lines.last { $0.hasPrefix("netns-rig:") } ?? "a rig is already up"
            return .failure(BenchFailure(description: "remote.tcp_pingpong (netns) skipped: \(why)"))
        }
        // Always, whatever happens below (and after a failed `up`, which removes its own work: harmless).
        defer {
            let down = try? RigChild.run("/bin/bash", [script, "down"], environment: [owner], seconds: 30)
            if down?.status != 0 {
                say(
                    "  warning: netns-rig down did not finish cleanly (status \(down?.status.map(String.init) ?? "none")): \(down?.lines.joined(separator: " | ") ?? "")"
                )
            }
        }
        let addresses = Dictionary(
            up.lines.compactMap { line -> (String, String)? in
                // ns=agrig-a addr=10.231.0.1
                let fields = line.split(separator: " ")
                guard fields.count == 2, fields[0].hasPrefix("ns="), fields[1].hasPrefix("addr=") else { return nil }
                return (String(fields[0].dropFirst(3)), String(fields[1].dropFirst(5)))
            },
            uniquingKeysWith: { a, _ in a }
        )
        guard up.status == 0, let a = addresses["agrig-a"], let b = addresses["agrig-b"] else {
            let why = up.lines.last { $0.hasPrefix("netns-rig:") } ?? up.lines.last ?? "no output"
            return .failure(
                BenchFailure(description: "remote.tcp_pingpong (netns) skipped: the rig could not be created (\(why))")
            )
        }
        let route = "agrig-a \(a) -> agrig-b \(b) (veth pairs, bridge in agrig-hub)"
        var results: [RemoteResult] = []
        switch pingPong(
            exe: exe,
            serverPrefix: [script, "exec", "agrig-b"],
            clientPrefix: [script, "exec", "agrig-a"],
            bind: b,
            connect: b,
            count: count,
            warmup: warmup
        ) {
        case .success(let m):
            results.append(m.result(path: "netns-veth", route: route))
        case .failure(let failure):
            return .failure(BenchFailure(description: "remote.tcp_pingpong (netns) failed: \(failure)"))
        }
        switch remoteGraph(
            exe: exe,
            piecePrefix: [script, "exec", "agrig-b"],
            ownerPrefix: [script, "exec", "agrig-a"],
            bind: b,
            count: count,
            warmup: warmup,
            pipelined: pipelined,
            path: "netns-veth",
            route: route
        ) {
        case .success(let r): results += r
        case .failure(let failure): say("  remote.echo (netns) failed: \(failure)")
        }
        return .success(results)
    }

    /// `actorgraph piece` (through `piecePrefix`; `nil`: served inside the owner's process) and
    /// `actorgraph remote-bench` against it (through `ownerPrefix`); both killed on every path out.
    static func remoteGraph(
        exe: String,
        piecePrefix: [String]?,
        ownerPrefix: [String],
        bind: String,
        count: Int,
        warmup: Int,
        pipelined: Int,
        path: String,
        route: String
    ) -> Result<[RemoteResult], BenchFailure> {
        var pieceArguments = ["--with-piece", "--piece", "\(bind):0"]
        var piece: RigChild?
        defer { piece?.stop() }
        if let piecePrefix {
            let child: RigChild
            do {
                let arguments = piecePrefix + [exe, "piece", "--listen", "\(bind):0"]
                child =
                    piecePrefix.isEmpty
                    ? try RigChild(exe, Array(arguments.dropFirst())) : try RigChild("/bin/bash", arguments)
            } catch {
                return .failure(BenchFailure(description: "cannot start the piece: \(error)"))
            }
            piece = child
            guard let banner = child.waitForLine(seconds: 10, where: { $0.hasPrefix("piece listening on ") }),
                let port = banner.split(separator: ":").last.flatMap({ Int($0) })
            else {
                return .failure(
                    BenchFailure(description: "the piece did not start: \(child.lines.joined(separator: " | "))")
                )
            }
            pieceArguments = ["--piece", "\(bind):\(port)"]
        }
        let owner: (status: Int32?, lines: [String])
        do {
            owner = try RigChild.run(
                ownerPrefix.isEmpty ? exe : "/bin/bash",
                (ownerPrefix.isEmpty ? [] : ownerPrefix + [exe])
                    + ["remote-bench"] + pieceArguments + [
                        "--count", "\(count)", "--warmup", "\(warmup)",
                        "--pipelined", "\(pipelined)",
                    ],
                seconds: 60 + (count + warmup) / 1_000 + pipelined / 10_000
            )
        } catch {
            return .failure(BenchFailure(description: "cannot start the owner: \(error)"))
        }
        guard owner.status == 0,
            let echo = owner.lines.first(where: { $0.hasPrefix("remote-bench: echo ") }),
            let chain = owner.lines.first(where: { $0.hasPrefix("remote-bench: chain3.pipelined ") })
        else {
            return .failure(
                BenchFailure(
                    description:
                        "the owner failed (status \(owner.status.map(String.init) ?? "killed after its time limit")): \(owner.lines.suffix(5).joined(separator: " | "))"
                )
            )
        }
        func fields(_ line: String, dropping prefix: String) -> [String: Double] {
            var out: [String: Double] = [:]
            for pair in line.dropFirst(prefix.count).split(separator: " ") {
                let kv = pair.split(separator: "=")
                if kv.count == 2, let v = Double(kv[1]) { out[String(kv[0])] = v }
            }
            return out
        }
        let e = fields(echo, dropping: "remote-bench: echo ")
        let c = fields(chain, dropping: "remote-bench: chain3.pipelined ")
        guard let p50 = e["p50_ns"], let p99 = e["p99_ns"], let p999 = e["p999_ns"], let max = e["max_ns"],
            let n = e["count"],
            let perSecond = c["per_s"], let m = c["count"]
        else {
            return .failure(BenchFailure(description: "cannot parse the owner's lines: \(echo) / \(chain)"))
        }
        return .success([
            RemoteResult(
                name: "remote.echo",
                path: path,
                route: route,
                payloadBytes: 8,
                count: Int(n),
                p50: UInt64(p50),
                p99: UInt64(p99),
                p999: UInt64(p999),
                max: UInt64(max),
                line: echo
            ),
            RemoteResult(
                name: "remote.chain3.pipelined",
                path: path,
                route: route,
                payloadBytes: 8,
                count: Int(m),
                p50: 0,
                p99: 0,
                p999: 0,
                max: 0,
                line: chain,
                perSecond: perSecond
            ),
        ])
    }

    struct Measured {
        var count: Int, p50: UInt64, p99: UInt64, p999: UInt64, max: UInt64, line: String

        func result(path: String, route: String) -> RemoteResult {
            RemoteResult(
                name: "remote.tcp_pingpong",
                path: path,
                route: route,
                count: count,
                p50: p50,
                p99: p99,
                p999: p999,
                max: max,
                line: line
            )
        }
    }

    /// Starts the server (through `serverPrefix`, e.g. `netns-rig.sh exec agrig-b`, which execs, so
    /// the child is the server itself), reads its port, runs the client to completion, parses its
    /// line. Both are killed on every path out; each wait is bounded.
    static func pingPong(
        exe: String,
        serverPrefix: [String],
        clientPrefix: [String],
        bind: String,
        connect: String,
        count: Int,
        warmup: Int
    ) -> Result<Measured, BenchFailure> {
        func spawn(_ arguments: [String]) throws -> RigChild {
            arguments.first == exe
                ? try RigChild(exe, Array(arguments.dropFirst())) : try RigChild("/bin/bash", arguments)
        }
        let timeout = "\(endTimeoutSeconds)"
        let server: RigChild
        do {
            server = try spawn(
                serverPrefix + [exe, command, "--serve", "--host", bind, "--port", "0", "--timeout", timeout]
            )
        } catch {
            return .failure(BenchFailure(description: "cannot start the server: \(error)"))
        }
        defer { server.stop() }
        let listening = "tcp-pingpong: listening on "
        guard let banner = server.waitForLine(seconds: 10, where: { $0.hasPrefix(listening) }),
            let port = banner.split(separator: ":").last.flatMap({ Int($0) })
        else {
            return .failure(
                BenchFailure(description: "the server did not start: \(server.lines.joined(separator: " | "))")
            )
        }
        let client: (status: Int32?, lines: [String])
        do {
            // 1 ms per round trip is ~20x what it takes here: the bound only stops a run gone wrong.
            client = try RigChild.run(
                clientPrefix.isEmpty ? exe : "/bin/bash",
                (clientPrefix.isEmpty ? [] : clientPrefix + [exe])
                    + [
                        command, "--connect", connect, "--port", "\(port)", "--count", "\(count)",
                        "--warmup", "\(warmup)", "--timeout", timeout,
                    ],
                seconds: 30 + (count + warmup) / 1_000
            )
        } catch {
            return .failure(BenchFailure(description: "cannot start the client: \(error)"))
        }
        guard client.status == 0, let line = client.lines.first(where: { $0.hasPrefix("tcp-pingpong: p50_ns=") }) else {
            return .failure(
                BenchFailure(
                    description:
                        "the client failed (status \(client.status.map(String.init) ?? "killed after its time limit")): \(client.lines.joined(separator: " | "))"
                )
            )
        }
        var fields: [String: UInt64] = [:]
        for pair in line.dropFirst("tcp-pingpong: ".count).split(separator: " ") {
            let kv = pair.split(separator: "=")
            if kv.count == 2, let v = UInt64(kv[1]) { fields[String(kv[0])] = v }
        }
        guard let p50 = fields["p50_ns"], let p99 = fields["p99_ns"], let p999 = fields["p999_ns"],
            let max = fields["max_ns"],
            let n = fields["count"]
        else {
            return .failure(BenchFailure(description: "cannot parse the client's line: \(line)"))
        }
        // The server ends at the client's EOF; give it a moment, then stop() kills it if needed.
        _ = server.waitExit(seconds: 2)
        return .success(Measured(count: Int(n), p50: p50, p99: p99, p999: p999, max: max, line: line))
    }

    static func printResult(_ r: RemoteResult) {
        if let perSecond = r.perSecond {
            say(
                "  \(pad(r.name, 24)) \(pad(r.path, 11)) \(fmt(perSecond, 0)) executions/s pipelined (\(r.count) executions; \(r.route))"
            )
            return
        }
        say(
            "  \(pad(r.name, 24)) \(pad(r.path, 11)) p50 \(fmtNs(r.p50))  p99 \(fmtNs(r.p99))  p99.9 \(fmtNs(r.p999))  max \(fmtNs(r.max))"
                + "  (\(r.count) round trips of \(r.payloadBytes) B; \(r.route))"
        )
    }

    /// `scripts/netns-rig.sh` under the working directory (the bench runs from the repository root),
    /// else above this binary (`.build/<triple>/release/actorgraph`).
    static func rigScript() -> String? {
        var candidates: [String] = []
        var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        if getcwd(&cwd, cwd.count) != nil {
            candidates.append(
                String(decoding: cwd.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    + "/scripts/netns-rig.sh"
            )
        }
        if var directory = SelfExecutable.path {
            for _ in 0..<5 {
                guard let slash = directory.lastIndex(of: "/"), slash != directory.startIndex else { break }
                directory = String(directory[..<slash])
                candidates.append(directory + "/scripts/netns-rig.sh")
            }
        }
        return candidates.first { access($0, R_OK) == 0 }
    }
}

/// A child process with its stdout and stderr in one pipe, read without a thread (poll + read on the
/// caller's thread, every wait bounded). Used on one thread only; `stop()` (also run by `deinit`)
/// kills and reaps it, so no path out of a case leaves it running.
final class RigChild {
    let pid: pid_t
    private let fd: Int32
    private var pending: [UInt8] = []
    private(set) var lines: [String] = []
    private var eof = false
    private var reaped: Int32?
    private var closed = false

    init(_ path: String, _ arguments: [String], environment extra: [String] = []) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw BenchFailure(description: "pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var environment: [String] = []
        var e = environ
        while let entry = e.pointee {
            environment.append(String(cString: entry))
            e += 1
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = (environment + extra).map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let r = posix_spawn(&pid, path, &actions, nil, argv, envp)
        close(fds[1])
        guard r == 0 else {
            close(fds[0])
            throw BenchFailure(description: "posix_spawn \(path): \(String(cString: strerror(r)))")
        }
        self.pid = pid
        self.fd = fds[0]
    }

    /// Runs `path` to completion within `seconds` (killed after that: status nil) and returns its lines.
    static func run(
        _ path: String,
        _ arguments: [String],
        environment: [String] = [],
        seconds: Int
    ) throws -> (status: Int32?, lines: [String]) {
        let child = try RigChild(path, arguments, environment: environment)
        defer { child.stop() }
        let status = child.waitExit(seconds: seconds)
        return (status, child.lines)
    }

    /// Reads output for up to `milliseconds`; false once the pipe is at EOF.
    @discardableResult
    private func pump(milliseconds: Int32) -> Bool {
        guard !eof else { return false }
        var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, max(0, milliseconds)) > 0 else { return true }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { return true }
        if n <= 0 {
            eof = true
            if !pending.isEmpty {
                lines.append(String(decoding: pending, as: UTF8.self))
                pending = []
            }
            return false
        }
        for byte in chunk[0..<n] {
            if byte == UInt8(ascii: "\n") {
                lines.append(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
            }
        }
        return true
    }

    private static func nowMs() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000 + Int64(t.tv_nsec) / 1_000_000
    }

    /// The first line satisfying `match` within `seconds`, or nil (timeout, or the child closed its output).
    func waitForLine(seconds: Int, where match: (String) -> Bool) -> String? {
        let deadline = Self.nowMs() + Int64(seconds) * 1_000
        while true {
            if let line = lines.first(where: match) { return line }
            let left = deadline - Self.nowMs()
            guard left > 0, pump(milliseconds: Int32(clamping: left)) else { return lines.first(where: match) }
        }
    }

    /// Reads the output to EOF and reaps the child within `seconds`; its exit code (128 + signal when
    /// a signal ended it), or nil when it was still running then (it is killed by `stop()`).
    func waitExit(seconds: Int) -> Int32? {
        let deadline = Self.nowMs() + Int64(seconds) * 1_000
        while Self.nowMs() < deadline && pump(milliseconds: Int32(clamping: deadline - Self.nowMs())) {}
        while reaped == nil && Self.nowMs() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                reaped = status
                break
            }
            usleep(5_000)
        }
        guard let status = reaped else { return nil }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Kills the child if it still runs, reaps it and closes the pipe. Idempotent.
    func stop() {
        if reaped == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            reaped = status
        }
        if !closed {
            closed = true
            eof = true
            close(fd)
        }
    }

    deinit { stop() }
}
