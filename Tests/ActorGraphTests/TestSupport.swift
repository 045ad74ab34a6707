import ActorGraph
import XCTest

/// Options for tests: few workers, unpinned, eager parking (the CI machine has 2 cores and the
/// test thread spins too), and a short park timeout so nothing waits long.
func testOptions(
    workers: Int = 1,
    capacity: Int = 64,
    placement: Placement = .automatic,
    submitTimeout: Duration = .seconds(10)
) -> CompileOptions {
    CompileOptions(
        workers: workers,
        capacity: capacity,
        pinWorkers: false,
        idle: IdlePolicy(workerSpins: 256, callerSpins: 256, spinTime: .zero, parkTimeout: .milliseconds(20)),
        submitTimeout: submitTimeout,
        placement: placement
    )
}

struct Scale: Stage {
    var factor: Int
    mutating func process(_ x: Int) throws -> Int { x * factor }
}

/// Counts how many values it saw: its state must be owned by exactly one worker.
struct RunningSum: Stage {
    var total = 0
    mutating func process(_ x: Int) throws -> Int {
        total += x
        return total
    }
}

struct Boom: Error, Equatable { let value: Int }

/// Throws for multiples of `every`.
struct FailOnMultiples: Stage {
    var every: Int
    mutating func process(_ x: Int) throws -> Int {
        if x % every == 0 { throw Boom(value: x) }
        return x
    }
}

/// The diamond of the README: (2x + 1) + (2x)^2.
func diamondGraph() -> Graph<Int, Int> {
    Graph(input: Int.self) { x in
        let a = x.then(Scale(factor: 2), name: "scale")
        let b = a.then(name: "plus1") { $0 + 1 }
        let c = a.then(name: "square") { $0 * $0 }
        return zip(b, c).then(name: "sum") { $0 + $1 }
    }
}

func diamondExpected(_ x: Int) -> Int { (2 * x + 1) + (2 * x) * (2 * x) }
