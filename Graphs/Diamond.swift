import ActorGraph

/// Running statistics of the values a graph has seen: the state of the `diamond` example's actor.
public struct RunningStats: Sendable, Equatable {
    /// Values recorded.
    public private(set) var count = 0
    /// Their sum (wrapping).
    public private(set) var sum = 0
    /// The smallest value recorded (`Int.max` when none).
    public private(set) var min = Int.max
    /// The largest value recorded (`Int.min` when none).
    public private(set) var max = Int.min

    /// No values recorded.
    public init() {}

    /// Adds one value.
    public mutating func record(_ value: Int) {
        count += 1
        sum &+= value
        if value < min { min = value }
        if value > max { max = value }
    }

    /// The mean of the values recorded (0 when none).
    public var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }

    /// One line: count, sum, min, max and mean (`count 0` when none).
    public var summary: String {
        count == 0 ? "count 0" : "count \(count), sum \(sum), min \(min), max \(max), mean \(mean)"
    }
}

/// One `diamond` execution's answer.
public struct DiamondResult: Sendable, Equatable {
    /// `x² + (2x + 1)`, that is `(x + 1)²`.
    public var value: Int
    /// Values the stats actor had recorded when the join ran (this execution's included).
    public var seen: Int
    /// Their mean at that point.
    public var runningMean: Double

    /// A result from its three fields.
    public init(value: Int, seen: Int, runningMean: Double) {
        self.value = value
        self.seen = seen
        self.runningMean = runningMean
    }
}

/// `diamond`: fan-out to two stages and a zip join, with one stateful actor used at two nodes.
///
/// ```text
///          ┌─ square: x²  ───────────────────────────┐
/// input ───┤                                          zip ── join (stats): x² + 2x + 1, seen, mean
///          └─ record (stats): record x, 2x + 1 ──────┘
/// ```
/// `record` updates the `RunningStats` actor and `join` reads it: both nodes use the same
/// `ActorRef`, so the compiler places them on one worker and the state is never touched by two
/// threads. Once the graph is shut down, `stats.withState { $0 }` reads the final state.
public enum DiamondExample {
    /// Builds the diamond around `stats` (an actor is bound to one running compiled graph at a time).
    public static func graph(
        stats: ActorRef<RunningStats> = ActorRef(RunningStats(), name: "stats")
    ) -> Graph<Int, DiamondResult> {
        Graph(input: Int.self) { x in
            let square = x.then(name: "square") { $0 &* $0 }
            let record = x.then(stats, name: "record") { state, v in
                state.record(v)
                return 2 &* v &+ 1
            }
            return zip(square, record, name: "zip").then(stats, name: "join") { state, pair in
                DiamondResult(value: pair.0 &+ pair.1, seen: state.count, runningMean: state.mean)
            }
        }
    }

    /// The catalog entry: execution `i` sends `input + i`; the actor's final state is reported.
    public static let example = ExampleGraph(
        name: "diamond",
        summary: "fan-out to two stages and a zip join, a stateful stats actor shared by two nodes",
        inputHelp: "an integer (default 1); execution i sends input + i",
        defaultCount: 100_000,
        run: { options in
            let base = try ExampleInputError.parseInt(options.input, example: "diamond", default: 1)
            let stats = ActorRef(RunningStats(), name: "stats")
            return try await ExampleDriver.run(
                graph(stats: stats),
                example: "diamond",
                options: options,
                input: { base &+ $0 },
                format: { x, r in
                    [
                        "diamond(\(x)) = \(x)² + (2·\(x) + 1) = \(r.value)   [stats seen \(r.seen), running mean \(r.runningMean)]"
                    ]
                },
                finally: { [try "stats actor final state: " + stats.withState { $0.summary }] }
            )
        },
        describe: { options in
            let compiled = try graph().compile(options)
            defer { compiled.shutdown() }
            return compiled.dot()
        }
    )
}
