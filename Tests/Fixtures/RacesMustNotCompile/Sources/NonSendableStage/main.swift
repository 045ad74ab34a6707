import ActorGraph

// A stage struct holding a non-Sendable class: every compiled copy of the stage would share it.
final class Cache { var hits = 0 }

struct Counting: Stage {
    let cache: Cache
    mutating func process(_ x: Int) -> Int {
        cache.hits += 1
        return x
    }
}

let cache = Cache()
let graph = Graph(input: Int.self) { x in x.then(Counting(cache: cache)) }
print(try graph.compile().execute(1), cache.hits)
