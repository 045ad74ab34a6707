import ActorGraph

// A reference into an actor's state kept by the caller while a worker mutates it.
final class Tally { var n = 0 }

func run() throws {
    let actor = ActorRef(Tally(), name: "tally")
    let leaked = try actor.withState { $0 }
    let graph = Graph(input: Int.self) { x in
        x.then(actor) { tally, v in
            tally.n += v
            return v
        }
    }
    let compiled = try graph.compile()
    for i in 1...1000 {
        let pending = try compiled.submit(i)
        leaked.n += 1
        _ = try pending.wait()
    }
}
try run()
