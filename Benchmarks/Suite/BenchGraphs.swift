import ActorGraph

/// The graph shapes of the suite, generic over the payload. `@inlinable` so that every module using
/// them (the `actorgraph bench` command, the package-benchmark harness) gets stage kernels
/// specialized for the concrete payload.
public enum BenchGraphs {
    /// One stage: the smallest round trip through the engine.
    @inlinable
    public static func echo<P: BenchPayload>(_: P.Type = P.self) -> Graph<P, P> {
        Graph(input: P.self) { x in x.then(name: "echo") { $0.bumped(1) } }
    }

    /// `length` stages in a line.
    @inlinable
    public static func chain<P: BenchPayload>(_ length: Int, _: P.Type = P.self) -> Graph<P, P> {
        Graph(input: P.self) { x in
            var node = x
            for i in 0..<length { node = node.then(name: "s\(i)") { $0.bumped(1) } }
            return node
        }
    }

    /// Fan-out 2 + zip: two branches read the input, a join combines them.
    @inlinable
    public static func diamond<P: BenchPayload>(_: P.Type = P.self) -> Graph<P, P> {
        Graph(input: P.self) { x in
            let left = x.then(name: "left") { $0.bumped(1) }
            let right = x.then(name: "right") { $0.bumped(2) }
            return zip(left, right, name: "join").then(name: "combine") { P.combine($0, $1) }
        }
    }

    /// Fan-out 4 + one 4-way zip.
    @inlinable
    public static func fanout4<P: BenchPayload>(_: P.Type = P.self) -> Graph<P, P> {
        Graph(input: P.self) { x in
            let a = x.then(name: "b0") { $0.bumped(1) }
            let b = x.then(name: "b1") { $0.bumped(2) }
            let c = x.then(name: "b2") { $0.bumped(3) }
            let d = x.then(name: "b3") { $0.bumped(4) }
            return zip(a, b, c, d, name: "join4").then(name: "combine") { v in
                P.combine(P.combine(v.0, v.1), P.combine(v.2, v.3))
            }
        }
    }
}
