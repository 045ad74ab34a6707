import ActorGraph

/// `echo`: the smallest graph there is, one stage that returns its input plus one: the Swift
/// version of the Ray Compiled Graphs quick start's `EchoActor.echo`. Its round trip is the
/// engine's latency floor (`actorgraph run echo`).
///
/// ```swift
/// let compiled = try EchoExample.graph().compile()
/// try compiled.execute(41)   // 42
/// ```
public enum EchoExample {
    /// input → echo (+1) → output.
    public static func graph() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(name: "echo") { $0 &+ 1 }
        }
    }

    /// The catalog entry: execution `i` sends `input + i`.
    public static let example = ExampleGraph(
        name: "echo",
        summary: "one stage, x → x + 1: the quick start and the engine's latency floor",
        inputHelp: "an integer (default 1); execution i sends input + i",
        defaultCount: 100_000,
        run: { options in
            let base = try ExampleInputError.parseInt(options.input, example: "echo", default: 1)
            return try await ExampleDriver.run(
                graph(),
                example: "echo",
                options: options,
                input: { base &+ $0 },
                format: { x, y in ["echo(\(x)) = \(y)"] }
            )
        },
        describe: { options in
            let compiled = try graph().compile(options)
            defer { compiled.shutdown() }
            return compiled.dot()
        }
    )
}
