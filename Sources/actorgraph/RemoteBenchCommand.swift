import ActorGraph
import ActorGraphBenchSuite
import ArgumentParser

/// `actorgraph remote-bench --piece IP:PORT` (hidden): the owner's half of the bench's remote
/// cases, run inside the rig's agrig-a (or on loopback) against `actorgraph piece` on host b.
struct RemoteBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote-bench", abstract: "The owner's half of the bench's remote cases.", shouldDisplay: false)

    @Option(help: "Where host b's piece listens.")
    var piece: String

    @Option(help: "Timed remote echo executions.")
    var count = 20_000

    @Option(help: "Untimed executions first.")
    var warmup = 2_000

    @Option(help: "Pipelined remote chain3 executions.")
    var pipelined = 200_000

    @Option(help: "The owner's and the piece's wait strategy.")
    var waitStrategy: WaitStrategyArgument = .adaptive

    func validate() throws {
        guard PieceAddress(piece) != nil else { throw ValidationError("--piece must be IP:PORT (got '\(piece)')") }
        guard count >= 1, warmup >= 0, pipelined >= 1 else { throw ValidationError("--count and --pipelined must be at least 1") }
    }

    func run() throws {
        do {
            for line in try RemoteBenchOwner.run(piece: PieceAddress(piece)!, count: count, warmup: warmup, pipelined: pipelined,
                                                     strategy: waitStrategy.strategy) {
                print(line)
            }
        } catch {
            throw CLI.fail(error)
        }
    }
}
