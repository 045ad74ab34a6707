import ActorGraph
import ActorGraphBenchSuite
import ActorGraphExamples
import ActorGraphPlatform
import ActorGraphReliability
import ArgumentParser
import Glibc

/// `actorgraph piece --listen IP:PORT`: runs the pieces of any example graph placed on this host.
struct PieceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "piece",
        abstract: "Serve the pieces of example graphs that span hosts (one owner at a time).",
        discussion: """
            Start it on each host (e.g. inside a network namespace), then compile from the owner with \
            `actorgraph run NAME --host b=IP:PORT --place NODE=b`. Prints `piece listening on IP:PORT` \
            once it accepts connections; runs until SIGINT or SIGTERM.
            """
    )

    @Option(help: "The IPv4 address and port to listen on (port 0: any free port, printed).")
    var listen: String

    @Option(help: "Refuse owners asking this process for another host's share.")
    var host: String?

    func validate() throws {
        guard PieceAddress(listening: listen) != nil else {
            throw ValidationError("--listen must be IP:PORT (got '\(listen)')")
        }
    }

    func run() throws {
        let address = PieceAddress(listening: listen)!
        try? StopSignals.install()
        do {
            try Piece.serve(
                listen: address,
                host: host,
                graphs: {
                    ExampleCatalog.isolatableGraphs + BenchSuite.isolatableGraphs + Soak.isolatableGraphs + [
                        RemoteFaultGraph.graph()
                    ]
                },
                announce: { port in
                    print("piece listening on \(address.ip):\(port)")
                    fflush(nil)
                },
                shouldStop: { StopSignals.received != nil }
            )
        } catch {
            throw CLI.fail("piece: cannot listen on \(listen): \(error)")
        }
    }
}
