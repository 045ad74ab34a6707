import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The soak's output: which execution it answers and a check value computed along the stages.
public struct SoakOutput: Sendable, Equatable {
    /// The execution's id (its input).
    public var id: Int
    /// A value every path of the graph contributes to; must equal ``expectedCheck(_:shape:)``.
    public var check: Int
    /// Which shape computed it.
    public var shape: Int

    static func expectedCheck(_ id: Int, shape: Int) -> Int {
        switch SoakShape(rawValue: shape) {
        case .echo: return id &* 3 &+ 1
        case .chain: return ((id &+ 1) &* 5) &- 7
        case .diamond: return (id &* 2 &+ 1) &+ (id &* 2) &* (id &* 2)
        case .fanOutStrings: return String(id).utf8.count &* 4 &+ id &* 2
        case nil: return Int.min
        }
    }
}

/// Thrown by soak stages for about one execution in `SoakShape.failEvery`; carries the execution's id.
public struct SoakFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The failing execution.
    public var id: Int

    /// `SoakFailure(id: N)`: what a process worker's caller receives (``IsolatedStageError``).
    public var description: String { "SoakFailure(id: \(id))" }
}

/// Process graphs of a soak and the faults injected into their workers.
public struct ProcessFaults: Sendable, Equatable {
    /// Graphs compiled with ``Isolation/processes``.
    public var graphs = 0
    /// `SIGKILL`s delivered to worker processes.
    public var kills = 0
    /// `SIGSTOP`s delivered to worker processes.
    public var stops = 0
    /// Worker deaths the supervisors saw while their graphs ran (injected kills, stopped workers
    /// the supervisors killed; not those of `shutdown()`).
    public var crashes = 0
    /// Worker processes restarted after a death.
    public var restarts = 0
    /// Workers the supervisors killed for making no progress past the stage time limit.
    public var timeLimitKills = 0
    /// Graphs that used up their restart policy and failed (``ExecutionError/restartsExhausted(worker:restarts:)``).
    public var exhaustedGraphs = 0

    /// Nothing yet.
    public init() {}
}

@inline(__always)
func soakShouldFail(_ id: Int, salt: Int) -> Bool {
    var z = UInt64(bitPattern: Int64(id)) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(salt)
    z = (z ^ (z >> 29)) &* 0xBF58_476D_1CE4_E5B9
    return (z ^ (z >> 32)) % 17 == 0
}

/// Graph shapes the soak cycles through: every one carries the id to the output and fails randomly.
enum SoakShape: Int, CaseIterable {
    case echo, chain, diamond, fanOutStrings

    /// The shapes whose values are trivially copyable, so they can run in worker processes
    /// (`fanOutStrings` carries `String` and `[Int]`).
    static let processCrossable: [SoakShape] = [.echo, .chain, .diamond]

    func graph(probe: ShutdownProbe = ShutdownProbe()) -> Graph<Int, SoakOutput> {
        switch self {
        case .echo:
            return Graph(input: Int.self) { x in
                x.then(name: "echo") { id -> SoakOutput in
                    probe.stageStarted()
                    if soakShouldFail(id, salt: 1) { throw SoakFailure(id: id) }
                    return SoakOutput(id: id, check: id &* 3 &+ 1, shape: 0)
                }
            }
        case .chain:
            return Graph(input: Int.self) { x in
                x.then(name: "a") { id in
                    probe.stageStarted()
                    return (id, id &+ 1)
                }
                .then(SoakCounter(), name: "b")
                .then(name: "c") { id, v -> SoakOutput in
                    if soakShouldFail(id, salt: 2) { throw SoakFailure(id: id) }
                    return SoakOutput(id: id, check: v &- 7, shape: 1)
                }
            }
        case .diamond:
            let calls = probe.calls
            return Graph(input: Int.self) { x in
                let a = x.then(calls, name: "double") { n, id in
                    probe.stageStarted()
                    n &+= 1
                    return (id, id &* 2)
                }
                let b = a.then(name: "plus1") { id, v -> Int in
                    if soakShouldFail(id, salt: 3) { throw SoakFailure(id: id) }
                    return v &+ 1
                }
                let c = a.then(calls, name: "square") { n, p in
                    n &+= 1
                    return p.1 &* p.1
                }
                return zip(a, b, c).then(name: "sum") { p, b, c in SoakOutput(id: p.0, check: b &+ c, shape: 2) }
            }
        case .fanOutStrings:
            // Values holding references (String, [Int]) flow through rings, scratch and zips.
            return Graph(input: Int.self) { x in
                let s = x.then(name: "text") { id in
                    probe.stageStarted()
                    return String(id)
                }
                let branches = (0..<4).map { i in
                    s.then(name: "len\(i)") { text -> [Int] in
                        if i == 2, let id = Int(text), soakShouldFail(id, salt: 4) { throw SoakFailure(id: id) }
                        return [text.utf8.count]
                    }
                }
                let joined = zip(branches[0], branches[1], branches[2], branches[3]).then(name: "join") { a, b, c, d in
                    a + b + c + d
                }
                return zip(x, joined).then(name: "out") { id, lengths in
                    SoakOutput(id: id, check: lengths.reduce(0, +) &+ id &* 2, shape: 3)
                }
            }
        }
    }

    /// The most workers a soak graph gets: 2, or 1 on a single CPU.
    static var maxWorkers: Int { max(1, min(2, CPU.allowedCPUs().count)) }

    /// Random options that never make more threads spin than CPUs: workers are unpinned and park
    /// eagerly (the submitters already oversubscribe a small machine).
    static func options(using rng: inout SplitMix64) -> CompileOptions {
        let capacity = 1 << Int.random(in: 0...10, using: &rng)
        let idle = IdlePolicy(
            workerSpins: Int.random(in: 16...512, using: &rng),
            callerSpins: Int.random(in: 16...512, using: &rng),
            spinTime: .zero,
            parkTimeout: .milliseconds(Int.random(in: 5...50, using: &rng))
        )
        return CompileOptions(
            workers: Int.random(in: 1...maxWorkers, using: &rng),
            capacity: capacity,
            pinWorkers: false,
            idle: idle,
            submitTimeout: .milliseconds(Int.random(in: 50...2_000, using: &rng)),
            placement: [.automatic, .spread, .singleWorker].randomElement(using: &rng)!,
            batchSize: [1, 4, 32, 256].randomElement(using: &rng)!,
            useIORing: Int.random(in: 0..<4, using: &rng) != 0
        )
    }
}

/// The shutdown contract as the soak checks it for one thread-mode graph: the head stage of every
/// shape reports each start here, and a start after `shutdown()` returned is counted; the
/// diamond's actor must be free (its state readable) once `shutdown()` returned.
final class ShutdownProbe: Sendable {
    let calls = ActorRef(0, name: "soak-calls")
    private let shutdownReturned = Atomic<Bool>(false)
    let startsAfterShutdown = Atomic<Int>(0)

    func stageStarted() {
        if shutdownReturned.load(ordering: .acquiring) { startsAfterShutdown.add(1, ordering: .relaxed) }
    }

    func didReturnFromShutdown() { shutdownReturned.store(true, ordering: .releasing) }
}

/// A stateful stage: adds a running count's parity-free contribution so the check stays exact.
struct SoakCounter: ActorGraph.Stage, Sendable {
    var seen = 0
    mutating func process(_ input: (Int, Int)) -> (Int, Int) {
        seen &+= 1
        return (input.0, input.1 &* 5)
    }
}

extension Duration {
    var nanosecondsValue: Int64 {
        let (s, atto) = components
        return s &* 1_000_000_000 &+ atto / 1_000_000_000
    }
}
