import ActorGraph
import ActorGraphCluster
import ActorGraphExamples
import ActorGraphPlatform
import ArgumentParser
import Foundation
import Glibc

/// `actorgraph cluster up|status|down|run|demo`: pieces placed and restarted by Ray (issue 17).
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract:
            "Run pieces under Ray: a placer actor per piece starts, watches and restarts it (needs Ray: scripts/ray/install.sh).",
        discussion: """
            `actorgraph cluster demo chain` does it all on one machine: network namespaces agray-a (Ray \
            head, placer, owner) and agray-b (a Ray node for host b), the chain example with `times2` on b, \
            then everything removed. `up` / `run` / `status` / `down` are the steps one at a time; \
            `up --address IP:PORT --node-ip IP` attaches the placer to an existing Ray cluster instead.
            """,
        subcommands: [Up.self, Status.self, Down.self, Run.self, Demo.self]
    )

    /// A line on stdout, flushed at once (an owner re-run in the head's namespace writes to the same stdout).
    @Sendable static func say(_ line: String) {
        print(line)
        fflush(nil)
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the local two-namespace Ray cluster and the placer, or attach the placer to a Ray cluster."
        )

        @Flag(
            help:
                "Local: a third namespace agray-c, a second Ray node for host b (where Ray re-places b's piece when agray-b's node dies)."
        )
        var spare = false

        @Option(
            help:
                "Attach to this Ray cluster (GCS IP:PORT) instead of starting one; RAY_AUTH_TOKEN(_PATH) as that cluster needs."
        )
        var address: String?

        @Option(help: "With --address: this machine's Ray node address.")
        var nodeIP: String?

        @Option(
            help:
                "With --address: a piece to place, HOST[:PORT][@RESOURCE|@KEY=VALUE] (a Ray resource, default actorgraph_host_HOST, or a node label; PORT 0 or none: any free port; repeatable)."
        )
        var piece: [String] = []

        @Option(
            help:
                "Local: the piece's fixed port (default 0: any free port, reported by the placer, so a restarted piece never waits for the old one's)."
        )
        var piecePort: UInt16 = RayCluster.piecePort

        @Flag(
            help:
                "Local: place the piece by its Ray node label (actorgraph-host=b, `label_selector`, beta in Ray 2.60) instead of the resource actorgraph_host_b."
        )
        var byLabel = false

        func run() throws {
            do {
                let state: RayCluster.State
                if let address {
                    guard let nodeIP else {
                        throw CLI.fail("cluster up --address needs --node-ip", code: .validationFailure)
                    }
                    state = try RayCluster.attach(
                        address: address,
                        nodeIP: nodeIP,
                        pieces: piece.isEmpty ? ["b"] : piece,
                        log: say
                    )
                } else {
                    state = try RayCluster.upLocal(spare: spare, piecePort: piecePort, byLabel: byLabel, log: say)
                }
                for line in RayCluster.statusLines().dropFirst() where line.hasPrefix("  piece") {
                    say(String(line.dropFirst(2)))
                }
                say(
                    "next: actorgraph cluster run chain --place times2=b; actorgraph cluster status; actorgraph cluster down"
                        + (state.mode == "local" ? "" : " (leaves your Ray cluster running)")
                )
            } catch let code as ExitCode {
                throw code
            } catch RayCluster.Failure.alreadyUp(let why) {
                throw CLI.fail("cluster up: \(why)")
            } catch {
                let left = RayCluster.down(log: { _ in })
                throw CLI.fail(
                    "cluster up: \(error)"
                        + (left.isEmpty ? " (removed what it started)" : " (left: \(left.joined(separator: ", ")))")
                )
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pieces (host, address, pid, node, incarnation, the owner's epoch, restarts) and Ray nodes."
        )
        func run() throws {
            for line in RayCluster.statusLines() { print(line) }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the placer, every piece and keeper actor; local: every Ray process and the namespaces."
        )
        func run() throws {
            let left = RayCluster.down(log: say)
            if !left.isEmpty { throw CLI.fail("cluster down: left behind: \(left.joined(separator: ", "))") }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an example graph with nodes on the placed pieces (the owner runs in the head's namespace).",
            discussion: """
                The owner follows the placer (ActorGraphCluster's PlacerFeed): a piece that dies is restarted \
                by Ray, the owner connects the new one with the next epoch and later executions succeed. \
                Executions in flight when a piece is lost are answered `hostLost` and counted; later ones wait \
                up to --wait-ms for the replacement. echo, chain and diamond follow restarts; other examples \
                run through `actorgraph run` with the addresses of the moment.
                """
        )

        @Argument(help: "The example graph (see `actorgraph list`).")
        var name = "chain"

        @Option(
            name: .customLong("place"),
            help: ArgumentHelp(
                "NODE=HOST (repeatable; default for echo, chain, diamond: one stage on b).",
                valueName: "node=host"
            )
        )
        var placements: [String] = []

        @Option(help: "Executions to run.")
        var count = 10_000

        @Option(
            help:
                "SIGKILL host HOST's piece after N executions (HOST@N, repeatable): Ray restarts it; the run reports the first success after."
        )
        var killPiece: [String] = []

        @Option(help: "How long an execution submitted while a piece is lost waits for its replacement (ms).")
        var waitMs = 5_000

        func validate() throws {
            guard count >= 1 else { throw ValidationError("--count must be at least 1 (got \(count))") }
            guard (0...3_600_000).contains(waitMs) else {
                throw ValidationError("--wait-ms must be 0...3600000 (got \(waitMs))")
            }
            for k in killPiece {
                let parts = k.split(separator: "@", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, let n = Int(parts[1]), n >= 0 else {
                    throw ValidationError("--kill-piece must be HOST@N, N executions at least 0 (got '\(k)')")
                }
            }
        }

        func run() async throws {
            try await Self.runExample(
                name: name,
                placements: placements,
                count: count,
                killPiece: killPiece,
                waitMs: waitMs,
                reexecArguments: ["cluster", "run", name, "--count", "\(count)", "--wait-ms", "\(waitMs)"]
                    + placements.flatMap { ["--place", $0] } + killPiece.flatMap { ["--kill-piece", $0] }
            )
        }

        static let defaultPlacements = ["echo": ["echo=b"], "chain": ["times2=b"], "diamond": ["square=b"]]

        static func runExample(
            name: String,
            placements: [String],
            count: Int,
            killPiece: [String] = [],
            waitMs: Int = 5_000,
            reexecArguments: [String]
        ) async throws {
            guard let state = RayCluster.loadState() else {
                throw CLI.fail("cluster: not up (`actorgraph cluster up` first)")
            }
            if let ns = state.ownerNamespace, !RayCluster.runsInNamespace(ns) {
                let status = RayCluster.reexec(in: ns, reexecArguments)
                if status != 0 { throw ExitCode(status) }
                return
            }
            let placements = placements.isEmpty ? (defaultPlacements[name] ?? []) : placements
            if placements.isEmpty {
                throw CLI.fail(
                    "cluster run \(name): give --place NODE=HOST (node names: `actorgraph describe \(name)`)",
                    code: .validationFailure
                )
            }
            var kills: [(host: String, after: Int)] = []
            for k in killPiece {
                let parts = k.split(separator: "@").map(String.init)
                guard parts.count == 2, let n = Int(parts[1]), n >= 0 else {
                    throw CLI.fail("--kill-piece must be HOST@N (got '\(k)')", code: .validationFailure)
                }
                kills.append((parts[0], n))
            }
            let feed = PlacerFeed(eventsPath: RayCluster.eventsPath)
            let hosts = Set(placements.compactMap { $0.split(separator: "=").last.map(String.init) }).sorted()
            let first: [String: PlacerFeed.Incarnation]
            do {
                first = try feed.waitForPieces(hosts, timeout: .seconds(30))
            } catch {
                throw CLI.fail("cluster run: \(error) (pieces: \(state.pieces.joined(separator: ", ")))")
            }
            var hostArguments: [String] = []
            for host in hosts {
                let seen = first[host]!
                ClusterCommand.say(
                    "cluster: host \(host) is the piece at \(seen.address) (pid \(seen.pid), incarnation \(seen.number), placed by Ray on node \(state.nodes[seen.address.ip] ?? seen.address.ip))"
                )
                hostArguments += ["--host", "\(host)=\(seen.address)"]
            }
            let engine = try EngineOptions.parse(["--no-pin"] + hostArguments + placements.flatMap { ["--place", $0] })
            var options = engine.compileOptions
            options.remote.whileHostLost = .waitForReplacement(upTo: .milliseconds(waitMs))
            switch name {
            case "echo":
                try FollowingRun(feed: feed, kills: kills).run(
                    EchoExample.graph(),
                    name: name,
                    options: options,
                    count: count,
                    check: { $1 == $0 &+ 1 },
                    format: { "echo(\($0)) = \($1)" }
                )
            case "chain":
                try FollowingRun(feed: feed, kills: kills).run(
                    ChainExample.graph(),
                    name: name,
                    options: options,
                    count: count,
                    check: { $1 == ChainExample.expected($0) },
                    format: { "chain(\($0)) = (\($0) + 1) * 2 - 3 = \($1)" }
                )
            case "diamond":
                try FollowingRun(feed: feed, kills: kills).run(
                    DiamondExample.graph(),
                    name: name,
                    options: options,
                    count: count,
                    check: nil,
                    format: { "diamond(\($0)) = \($1)" }
                )
            default:
                if !kills.isEmpty {
                    throw CLI.fail(
                        "--kill-piece: only echo, chain and diamond follow restarts",
                        code: .validationFailure
                    )
                }
                ClusterCommand.say(
                    "cluster: \(name) runs with the addresses above (it does not follow restarts; echo, chain and diamond do)"
                )
                let command = try RunCommand.parse(
                    [name, "--count", "\(count)", "--no-pin"] + hostArguments + placements.flatMap { ["--place", $0] }
                )
                try await command.run()
            }
        }
    }

    /// `cluster run` for a graph of `Int`: compile against the pieces the placer reported, follow it
    /// (``PlacerFeed/follow(_:)``), execute `count` times one after another; `hostLost` answers are
    /// counted, not fatal (the piece comes back); every other error and every wrong result is.
    struct FollowingRun {
        let feed: PlacerFeed
        let kills: [(host: String, after: Int)]

        func run<Output: Sendable>(
            _ graph: Graph<Int, Output>,
            name: String,
            options: CompileOptions,
            count: Int,
            check: ((Int, Output) -> Bool)?,
            format: (Int, Output) -> String
        ) throws {
            let compiled: CompiledGraph<Int, Output>
            do { compiled = try graph.compile(options) } catch { throw CLI.fail(error) }
            defer { compiled.shutdown() }
            try feed.follow(compiled)
            defer {
                RayCluster.writeOwnerStatus(feed)
                feed.stop()
            }
            RayCluster.writeOwnerStatus(feed)
            print("\(name): \(count) execution(s), the owner following the placer")
            var lost = 0
            var wrong = 0
            var shown = 0
            var latencies: [UInt64] = []
            latencies.reserveCapacity(count)
            var pendingKills = kills.sorted { $0.after < $1.after }
            var killedAt: UInt64? = nil
            var killed: PlacerFeed.Incarnation? = nil
            var lastWrite = MonotonicClock.now()
            let start = MonotonicClock.now()
            for i in 0..<count {
                while let k = pendingKills.first, k.after <= i {
                    pendingKills.removeFirst()
                    guard let current = feed.current(k.host) else {
                        throw CLI.fail("--kill-piece: no piece for host \(k.host)")
                    }
                    // The pid is the piece's on its Ray node: only signal it if it is that process here.
                    let command = RayCluster.commandLine(current.pid)
                    guard command.contains("piece"), command.contains(k.host) else {
                        throw CLI.fail(
                            "--kill-piece: host \(k.host)'s piece (pid \(current.pid) at \(current.address)) is not a process of this machine"
                        )
                    }
                    kill(current.pid, SIGKILL)
                    killedAt = MonotonicClock.now()
                    killed = current
                    ClusterCommand.say(
                        "cluster: SIGKILL to host \(k.host)'s piece (pid \(current.pid), incarnation \(current.number)) after \(i) executions"
                    )
                }
                let x = 1 &+ i
                let t0 = MonotonicClock.now()
                let result: Result<Output, ExecutionError> = Result { () throws(ExecutionError) in
                    try compiled.execute(x)
                }
                switch result {
                case .success(let y):
                    let t1 = MonotonicClock.now()
                    latencies.append(t1 &- t0)
                    if let check, !check(x, y) { wrong += 1 }
                    if shown < 5 {
                        print("  " + format(x, y))
                        shown += 1
                    }
                    if let at = killedAt, let before = killed {
                        let now = feed.current(before.host)
                        let epoch = compiled.diagnostics.hosts.first { $0.name == before.host }?.epoch ?? 0
                        ClusterCommand.say(
                            "cluster: first success \(LatencySummary.fixed(Double(t1 &- at) / 1e6, decimals: 1)) ms after the SIGKILL: "
                                + "host \(before.host)'s piece restarted by Ray (pid \(now?.pid ?? 0), incarnation \(now?.number ?? 0), "
                                + "\(now.map { "\($0.address)" } ?? "?"), epoch \(epoch)); \(lost) execution(s) answered hostLost so far"
                        )
                        killedAt = nil
                        RayCluster.writeOwnerStatus(feed)
                    }
                case .failure(.hostLost):
                    lost += 1
                    // A lost piece comes back within seconds; without one, stop rather than spin.
                    if lost > 1_000 { throw CLI.fail("cluster run: more than 1000 executions answered hostLost") }
                    usleep(1_000)
                case .failure(let error):
                    throw CLI.fail(error)
                }
                if i & 255 == 0, MonotonicClock.now() &- lastWrite > 250_000_000 {
                    RayCluster.writeOwnerStatus(feed)
                    lastWrite = MonotonicClock.now()
                }
            }
            let elapsed = MonotonicClock.now() &- start
            print("latency: \(LatencySummary(latencies).formatted)")
            print(
                "throughput: \(RunCommand.rate(Double(latencies.count) * 1e9 / Double(max(1, elapsed)))) executions/s"
            )
            let line = feed.pieces.map { p in
                "\(p.host): incarnation \(p.current.number) pid \(p.current.pid) at \(p.current.address), epoch \(p.epoch ?? 0), "
                    + "piece restarts \(p.pieceRestarts), keeper restarts \(p.keeperRestarts)"
            }.joined(separator: "; ")
            print(
                "cluster run: \(latencies.count) succeeded, \(lost) answered hostLost, \(wrong) wrong; pieces: \(line)"
            )
            if wrong > 0 { throw CLI.fail("cluster run: \(wrong) wrong result(s)") }
            if killedAt != nil { throw CLI.fail("cluster run: no success after the SIGKILL") }
        }
    }

    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One command: cluster up (local), run an example across the two namespaces, cluster down."
        )

        @Argument(help: "The example graph: echo, chain or diamond (or any with --place).")
        var name = "chain"

        @Option(name: .customLong("place"), help: ArgumentHelp("NODE=HOST (repeatable).", valueName: "node=host"))
        var placements: [String] = []

        @Option(help: "Executions to run.")
        var count = 10_000

        @Flag(help: "Leave the cluster up afterwards (`actorgraph cluster down` removes it).")
        var keep = false

        func run() async throws {
            var startedHere = false
            if RayCluster.loadState() == nil {
                do {
                    _ = try RayCluster.upLocal(spare: false, log: say)
                    startedHere = true
                } catch RayCluster.Failure.alreadyUp(let why) {
                    throw CLI.fail("cluster demo: \(why)")
                } catch {
                    let left = RayCluster.down(log: { _ in })
                    throw CLI.fail(
                        "cluster demo: \(error)" + (left.isEmpty ? "" : " (left: \(left.joined(separator: ", ")))")
                    )
                }
            }
            var failure: (any Error)? = nil
            do {
                try await Run.runExample(
                    name: name,
                    placements: placements,
                    count: count,
                    reexecArguments: ["cluster", "run", name, "--count", "\(count)"]
                        + placements.flatMap { ["--place", $0] }
                )
            } catch {
                failure = error
            }
            if startedHere && !keep {
                let left = RayCluster.down(log: say)
                if !left.isEmpty { throw CLI.fail("cluster demo: down left behind: \(left.joined(separator: ", "))") }
            }
            if let failure { throw failure }
        }
    }
}
