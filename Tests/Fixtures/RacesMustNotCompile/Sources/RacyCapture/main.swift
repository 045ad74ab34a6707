import ActorGraph

// The race from issue 8: a stage mutates a non-Sendable box the caller also mutates.
final class Box { var n = 0 }

func run() throws {
    let box = Box()
    let graph = Graph(input: Int.self) { x in
        x.then { v in
            box.n += v
            return v * 2
        }
    }
    let compiled = try graph.compile()
    for i in 1...1000 {
        let pending = try compiled.submit(i)
        box.n += 1
        _ = try pending.wait()
    }
    print(box.n)
}
try run()
