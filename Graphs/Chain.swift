import ActorGraph

/// Adds a fixed amount (a stateless struct stage).
public struct AddStage: Stage, Sendable {
    /// The amount added.
    public var amount: Int
    /// Adds `amount`.
    public init(_ amount: Int) { self.amount = amount }
    /// Returns `x + amount` (wrapping).
    public func process(_ x: Int) -> Int { x &+ amount }
}

/// Multiplies by a fixed factor (a stateless struct stage).
public struct MultiplyStage: Stage, Sendable {
    /// The factor multiplied by.
    public var factor: Int
    /// Multiplies by `factor`.
    public init(_ factor: Int) { self.factor = factor }
    /// Returns `x * factor` (wrapping).
    public func process(_ x: Int) -> Int { x &* factor }
}

/// `chain`: three stages in a line, `(x + 1) * 2 - 3`: the Ray quick start's actors bound one
/// after another. The compiler fuses a chain on one worker into direct calls (no channel between
/// the stages); `--workers 3` with `describe` shows how placement changes.
public enum ChainExample {
    /// input → add1 → times2 → minus3 → output.
    public static func graph() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(AddStage(1), name: "add1")
                .then(MultiplyStage(2), name: "times2")
                .then(AddStage(-3), name: "minus3")
        }
    }

    /// What the graph computes, for checking: `(x + 1) * 2 - 3`.
    public static func expected(_ x: Int) -> Int { (x &+ 1) &* 2 &- 3 }

    /// The catalog entry: execution `i` sends `input + i`.
    public static let example = ExampleGraph(
        name: "chain",
        summary: "three stages in a line, (x + 1) * 2 - 3: fused into direct calls on one worker",
        inputHelp: "an integer (default 1); execution i sends input + i",
        defaultCount: 100_000,
        run: { options in
            let base = try ExampleInputError.parseInt(options.input, example: "chain", default: 1)
            return try await ExampleDriver.run(
                graph(),
                example: "chain",
                options: options,
                input: { base &+ $0 },
                format: { x, y in ["chain(\(x)) = (\(x) + 1) * 2 - 3 = \(y)"] }
            )
        },
        describe: { options in
            let compiled = try graph().compile(options)
            defer { compiled.shutdown() }
            return compiled.dot()
        }
    )
}
