import ActorGraph
import ActorGraphBenchSuite
import ArgumentParser
import CMallocCounter
import Foundation
import Synchronization

/// `actorgraph remote-bench --piece IP:PORT` (hidden): the owner's half of the bench's remote
/// cases, run inside the rig's agrig-a (or on loopback) against `actorgraph piece` on host b.
struct RemoteBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote-bench",
        abstract: "The owner's half of the bench's remote cases.",
        shouldDisplay: false
    )

    @Option(help: "Where host b's piece listens.")
    var piece: String = "127.0.0.1:0"

    @Flag(
        help:
            "Serve host b's piece in this process (on --piece, port 0: any), so the allocation count covers both ends."
    )
    var withPiece = false

    @Option(help: "Timed remote echo executions.")
    var count = 20_000

    @Option(help: "Untimed executions first.")
    var warmup = 2_000

    @Option(help: "Pipelined remote chain3 executions.")
    var pipelined = 200_000

    @Option(help: "The owner's and the piece's wait strategy.")
    var waitStrategy: WaitStrategyArgument = .adaptive

    func validate() throws {
        guard let address = PieceAddress(listening: piece), address.port > 0 || withPiece else {
            throw ValidationError("--piece must be IP:PORT (got '\(piece)')")
        }
        guard count >= 1, warmup >= 0, pipelined >= 1 else {
            throw ValidationError("--count and --pipelined must be at least 1")
        }
    }

    func run() throws {
        actorgraph_malloc_counting(1)
        var address = PieceAddress(listening: piece)!
        let stop = Atomic<Bool>(false)
        if withPiece {
            let bound = Mutex<UInt16>(0)
            let ready = DispatchSemaphore(value: 0)
            let listen = address
            Thread.detachNewThread {
                try? Piece.serve(
                    listen: listen,
                    graphs: { RemoteBenchGraphs.all },
                    announce: { port in
                        bound.withLock { $0 = port }
                        ready.signal()
                    },
                    shouldStop: { stop.load(ordering: .relaxed) }
                )
            }
            ready.wait()
            address.port = bound.withLock { $0 }
        }
        defer { stop.store(true, ordering: .relaxed) }
        do {
            for line in try RemoteBenchOwner.run(
                piece: address,
                count: count,
                warmup: warmup,
                pipelined: pipelined,
                strategy: waitStrategy.strategy,
                allocations: { actorgraph_malloc_calls() }
            ) {
                print(line)
            }
        } catch {
            throw CLI.fail(error)
        }
    }
}
