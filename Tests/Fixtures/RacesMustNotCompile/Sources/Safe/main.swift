import ActorGraph
import Synchronization

// Value captures, a Sendable counter, a Sendable stage and an actor's state read back by value.
final class Total: Sendable { let n = Atomic<Int>(0) }

struct Scale: Stage {
    var factor: Int
    mutating func process(_ x: Int) -> Int { x * factor }
}

func run() throws {
    let total = Total()
    let offset = 1
    let counter = ActorRef(0, name: "counter")
    let graph = Graph(input: Int.self) { x in
        x.then(Scale(factor: 2)).then { v in
            total.n.add(v, ordering: .relaxed)
            return v + offset
        }
        .then(counter) { state, v in
            state += 1
            return v
        }
    }
    let compiled = try graph.compile()
    for i in 1...1000 { _ = try compiled.execute(i) }
    compiled.shutdown()
    let seen = try counter.withState { $0 }
    print("total \(total.n.load(ordering: .relaxed)) seen \(seen)")
}
try run()
