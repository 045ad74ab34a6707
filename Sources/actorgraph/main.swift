import ActorGraph
import ActorGraphPlatform

struct Scale: Stage {
    var factor: Int
    mutating func process(_ x: Int) throws -> Int { x * factor }
}
let graph = Graph(input: Int.self) { x in
    let a = x.then(Scale(factor: 2))
    let b = a.then { $0 + 1 }
    let c = a.then { $0 * $0 }
    return zip(b, c).then { $0 + $1 }
}
let compiled = try graph.compile(CompileOptions(workers: 1))
print(try compiled.execute(3))
print(compiled.dot())
var pend: [Int] = []
for i in 0..<100000 { let p = try compiled.submit(i); pend.append(try p.wait()) }
print(pend.last!)
let echo = try Graph(input: Int.self) { $0.then { $0 &+ 1 } }.compile()
var samples: [UInt64] = []
samples.reserveCapacity(200000)
for i in 0..<200000 { let t0 = MonotonicClock.now(); _ = try echo.execute(i); samples.append(MonotonicClock.now() - t0) }
samples.sort()
print("echo p50", samples[samples.count/2], "p99", samples[samples.count*99/100], echo.parkMechanisms)
compiled.shutdown()
