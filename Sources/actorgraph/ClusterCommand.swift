import ActorGraph
import ArgumentParser
import Foundation
import Glibc

/// `actorgraph cluster up|status|down|run|demo`: pieces placed and restarted by Ray (issue 17).
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Run pieces under Ray: a placer actor per piece starts, watches and restarts it (needs Ray: scripts/ray/install.sh).",
        discussion: """
        `actorgraph cluster demo chain` does it all on one machine: network namespaces agray-a (Ray \
        head, placer, owner) and agray-b (a Ray node for host b), the chain example with `times2` on b, \
        then everything removed. `up` / `run` / `status` / `down` are the steps one at a time; \
        `up --address IP:PORT --node-ip IP` attaches the placer to an existing Ray cluster instead.
        """,
        subcommands: [Up.self, Status.self, Down.self, Run.self, Demo.self])

    /// A line on stdout, flushed at once (an owner re-run in the head's namespace writes to the same stdout).
    @Sendable static func say(_ line: String) {
        print(line)
        fflush(nil)
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the local two-namespace Ray cluster and the placer, or attach the placer to a Ray cluster.")

        @Flag(help: "Local: a third namespace agray-c, a second Ray node for host b (where Ray re-places b's piece when agray-b's node dies).")
        var spare = false

        @Option(help: "Attach to this Ray cluster (GCS IP:PORT) instead of starting one; RAY_AUTH_TOKEN(_PATH) as that cluster needs.")
        var address: String?

        @Option(help: "With --address: this machine's Ray node address.")
        var nodeIP: String?

        @Option(help: "With --address: a piece to place, HOST[:PORT][@RESOURCE] (default resource actorgraph_host_HOST; repeatable).")
        var piece: [String] = []

        func run() throws {
            do {
                let state: RayCluster.State
                if let address {
                    guard let nodeIP else { throw CLI.fail("cluster up --address needs --node-ip", code: .validationFailure) }
                    state = try RayCluster.attach(address: address, nodeIP: nodeIP, pieces: piece.isEmpty ? ["b:\(RayCluster.piecePort)"] : piece,
                                                  log: say)
                } else {
                    state = try RayCluster.upLocal(spare: spare, log: say)
                }
                for line in RayCluster.statusLines().dropFirst() where line.hasPrefix("  piece") { say(String(line.dropFirst(2))) }
                say("next: actorgraph cluster run chain --place times2=b; actorgraph cluster status; actorgraph cluster down"
                      + (state.mode == "local" ? "" : " (leaves your Ray cluster running)"))
            } catch let code as ExitCode {
                throw code
            } catch {
                let left = RayCluster.down(log: { _ in })
                throw CLI.fail("cluster up: \(error)" + (left.isEmpty ? " (removed what it started)" : " (left: \(left.joined(separator: ", ")))"))
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pieces (address, pid, node, restarts), Ray nodes and the owner's epochs.")
        func run() throws {
            for line in RayCluster.statusLines() { print(line) }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the placer, every piece and keeper actor; local: every Ray process and the namespaces.")
        func run() throws {
            let left = RayCluster.down(log: say)
            if !left.isEmpty { throw CLI.fail("cluster down: left behind: \(left.joined(separator: ", "))") }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an example graph with nodes on the placed pieces (the owner runs in the head's namespace).")

        @Argument(help: "The example graph (see `actorgraph list`).")
        var name = "chain"

        @Option(name: .customLong("place"), help: ArgumentHelp("NODE=HOST (repeatable; default for echo, chain, diamond: one stage on b).", valueName: "node=host"))
        var placements: [String] = []

        @Option(help: "Executions to run.")
        var count = 10_000

        func run() async throws {
            try await Self.runExample(name: name, placements: placements, count: count, reexecArguments: ["cluster", "run", name, "--count", "\(count)"]
                                      + placements.flatMap { ["--place", $0] })
        }

        static let defaultPlacements = ["echo": ["echo=b"], "chain": ["times2=b"], "diamond": ["square=b"]]

        static func runExample(name: String, placements: [String], count: Int, reexecArguments: [String]) async throws {
            guard let state = RayCluster.loadState() else { throw CLI.fail("cluster: not up (`actorgraph cluster up` first)") }
            if let ns = state.ownerNamespace, !RayCluster.runsInNamespace(ns) {
                let status = RayCluster.reexec(in: ns, reexecArguments)
                if status != 0 { throw ExitCode(status) }
                return
            }
            let placements = placements.isEmpty ? (defaultPlacements[name] ?? []) : placements
            if placements.isEmpty { throw CLI.fail("cluster run \(name): give --place NODE=HOST (node names: `actorgraph describe \(name)`)", code: .validationFailure) }
            let feed = PlacerFeed(path: RayCluster.eventsPath)
            var hostArguments: [String] = []
            for host in Set(placements.compactMap { $0.split(separator: "=").last.map(String.init) }).sorted() {
                guard let seen = feed.waitForIncarnation(of: host, timeout: .seconds(30)), let address = seen.event.address else {
                    throw CLI.fail("cluster run: the placer has no piece for host '\(host)' (pieces: \(state.pieces.joined(separator: ", ")))")
                }
                ClusterCommand.say("cluster: host \(host) is the piece at \(address) (pid \(seen.event.pid ?? 0), placed by Ray on node \(state.nodes[address.ip] ?? address.ip))")
                hostArguments += ["--host", "\(host)=\(address)"]
            }
            let command = try RunCommand.parse([name, "--count", "\(count)", "--no-pin"] + hostArguments + placements.flatMap { ["--place", $0] })
            try await command.run()
        }
    }

    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One command: cluster up (local), run an example across the two namespaces, cluster down.")

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
                } catch {
                    let left = RayCluster.down(log: { _ in })
                    throw CLI.fail("cluster demo: \(error)" + (left.isEmpty ? "" : " (left: \(left.joined(separator: ", ")))"))
                }
            }
            var failure: (any Error)? = nil
            do {
                try await Run.runExample(name: name, placements: placements, count: count,
                                         reexecArguments: ["cluster", "run", name, "--count", "\(count)"] + placements.flatMap { ["--place", $0] })
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
