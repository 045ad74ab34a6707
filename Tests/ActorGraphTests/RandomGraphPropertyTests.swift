import ActorGraph
import ActorGraphPlatform
import Foundation
import Synchronization
import XCTest

/// Random-graph property tests: every graph shape the DSL allows, random options, random inputs and
/// random stage failures. For each generated graph the compiled, sequential and dynamic paths must
/// give the same outcome per execution (value, or the failing node and its error) and leave every
/// shared actor in the same state; malformed variants must be rejected with the right `CompileError`.
///
/// Reproduce a run: `ACTORGRAPH_PROPERTY_SEED=<printed seed>`; one graph of it:
/// `ACTORGRAPH_PROPERTY_ONLY=<index>`; more graphs: `ACTORGRAPH_PROPERTY_GRAPHS=<count>`.
final class RandomGraphPropertyTests: XCTestCase {
    func testRandomGraphsAgreeOnAllThreePaths() async throws {
        let config = PropertyConfig.fromEnvironment(defaultGraphs: 10_000)
        print("property: seed=\(config.seed) graphs=\(config.graphs) (replay: ACTORGRAPH_PROPERTY_SEED=\(config.seed))")
        let started = ContinuousClock.now
        var stats = PropertyStats()
        for index in config.indices {
            var rng = SplitMix64(seed: config.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
            let blueprint = Blueprint.random(using: &rng)
            let options = PropertyOptions.random(using: &rng)
            let run = PropertyRun.random(using: &rng)
            let context =
                "seed=\(config.seed) graph=\(index) (replay: ACTORGRAPH_PROPERTY_SEED=\(config.seed) ACTORGRAPH_PROPERTY_ONLY=\(index))\n  \(blueprint)\n  \(options.summary) \(run.summary)"
            let ok: Bool
            if blueprint.heapValues {
                ok = await check(blueprint, HeapValue.self, options: options, run: run, context: context, stats: &stats)
            } else {
                ok = await check(blueprint, Int.self, options: options, run: run, context: context, stats: &stats)
            }
            if !ok { break }  // the first counterexample is the useful one
        }
        let seconds =
            Double((ContinuousClock.now - started).components.seconds)
            + Double((ContinuousClock.now - started).components.attoseconds) * 1e-18
        print(
            "property: graphs=\(stats.graphs) executions=\(stats.executions) failed_executions=\(stats.failures) abandoned=\(stats.abandoned) actors=\(stats.actorGraphs) tuple_outputs=\(stats.tupleGraphs) heap_values=\(stats.heapGraphs) seconds=\(String(format: "%.1f", seconds))"
        )
        XCTAssertEqual(stats.graphs, config.indices.count)
    }

    func testMalformedRandomGraphsAreRejectedWithTheRightError() throws {
        let config = PropertyConfig.fromEnvironment(defaultGraphs: 2_000)
        print(
            "property(malformed): seed=\(config.seed) graphs=\(config.graphs) (replay: ACTORGRAPH_PROPERTY_SEED=\(config.seed))"
        )
        var counts: [String: Int] = [:]
        for index in config.indices {
            var rng = SplitMix64(seed: config.seed &+ UInt64(index) &* 0xD1B5_4A32_D192_ED03)
            let blueprint = Blueprint.random(using: &rng)
            let flaw = Flaw.random(for: blueprint, using: &rng)
            let context =
                "seed=\(config.seed) graph=\(index) (replay: ACTORGRAPH_PROPERTY_SEED=\(config.seed) ACTORGRAPH_PROPERTY_ONLY=\(index))\n  \(blueprint)\n  flaw: \(flaw)"
            counts[flaw.kind, default: 0] += 1
            if !checkMalformed(blueprint, flaw: flaw, context: context) { break }
        }
        print(
            "property(malformed): "
                + counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        )
        XCTAssertEqual(counts.values.reduce(0, +), config.indices.count)
    }

    // MARK: One well-formed graph on the three paths

    private func check<V: PropertyValue>(
        _ blueprint: Blueprint,
        _: V.Type,
        options: PropertyOptions,
        run: PropertyRun,
        context: String,
        stats: inout PropertyStats
    ) async -> Bool {
        if blueprint.outputs.count == 1 {
            return await check(
                make: { actors in blueprint.graph(V.self, actors: actors) },
                summarize: { $0.fingerprint },
                blueprint: blueprint,
                options: options,
                run: run,
                context: context,
                stats: &stats
            )
        }
        return await check(
            make: { actors in blueprint.tupleGraph(V.self, actors: actors) },
            summarize: { $0.0.fingerprint + [-1] + $0.1.fingerprint },
            blueprint: blueprint,
            options: options,
            run: run,
            context: context,
            stats: &stats
        )
    }

    private func check<V: PropertyValue, O>(
        make: ([ActorRef<PropertyActorState>]) -> Graph<V, O>,
        summarize: @escaping @Sendable (O) -> [Int],
        blueprint: Blueprint,
        options: PropertyOptions,
        run: PropertyRun,
        context: String,
        stats: inout PropertyStats
    ) async -> Bool {
        let inputs = run.inputs.map { V(property: $0) }
        // Each path gets its own graph instance and its own actors, so their final states can be compared.
        let compiledActors = blueprint.makeActors()
        let compiled: CompiledGraph<V, O>
        do {
            compiled = try make(compiledActors).compile(options.compileOptions)
        } catch {
            XCTFail("compile failed: \(error)\n\(context)")
            return false
        }
        let observed = await runCompiled(compiled, inputs: inputs, run: run, summarize: summarize)
        compiled.shutdown()
        if !compiled.isShutDown || compiledActors.contains(where: \.isBound) {
            XCTFail("shutdown left the graph running or an actor bound\n\(context)")
            return false
        }
        // The engine ran the executions in `observed` order: replay that order on the other paths.
        let sequentialActors = blueprint.makeActors()
        let dynamicActors = blueprint.makeActors()
        let sequential: SequentialGraph<V, O>
        let dynamic: DynamicGraph<V, O>
        do {
            sequential = try make(sequentialActors).sequential()
            dynamic = try make(dynamicActors).dynamic()
        } catch {
            XCTFail("sequential()/dynamic() failed: \(error)\n\(context)")
            return false
        }
        for (position, execution) in observed.enumerated() {
            let input = inputs[execution.input]
            let s = Outcome.of { try sequential.execute(input) }
            var d: Outcome
            do { d = .value(try summarize(await dynamic.execute(input))) } catch { d = Outcome(error) }
            let summarizedS = s.map(summarize)
            if summarizedS != d || (execution.outcome != nil && execution.outcome != summarizedS) {
                XCTFail(
                    """
                    paths disagree at execution \(position) (input \(run.inputs[execution.input])):
                      compiled:   \(execution.outcome.map { "\($0)" } ?? "abandoned")
                      sequential: \(summarizedS)
                      dynamic:    \(d)
                    \(context)
                    """
                )
                return false
            }
            if case .failed = summarizedS { stats.failures += 1 }
            if execution.outcome == nil { stats.abandoned += 1 }
        }
        dynamic.shutdown()
        let states: [[PropertyActorState]]
        do {
            states = try [compiledActors, sequentialActors, dynamicActors].map {
                try $0.map { try $0.withState { $0 } }
            }
        } catch {
            XCTFail("an actor is still bound after shutdown: \(error)\n\(context)")
            return false
        }
        if states[0] != states[1] || states[0] != states[2] {
            XCTFail(
                "actor state differs after shutdown:\n  compiled:   \(states[0])\n  sequential: \(states[1])\n  dynamic:    \(states[2])\n\(context)"
            )
            return false
        }
        if observed.count != inputs.count {
            XCTFail("compiled path answered \(observed.count) of \(inputs.count) executions\n\(context)")
            return false
        }
        stats.graphs += 1
        stats.executions += observed.count
        if blueprint.actorCount > 0 { stats.actorGraphs += 1 }
        if blueprint.outputs.count == 2 { stats.tupleGraphs += 1 }
        if blueprint.heapValues { stats.heapGraphs += 1 }
        return true
    }

    /// Runs `inputs` on the compiled graph the way `run` says; returns the executions in the order
    /// the engine sequenced them, each with its outcome (`nil`: the caller dropped it unawaited).
    private func runCompiled<V: PropertyValue, O>(
        _ compiled: CompiledGraph<V, O>,
        inputs: [V],
        run: PropertyRun,
        summarize: @escaping @Sendable (O) -> [Int]
    ) async -> [Execution] {
        switch run.mode {
        case .blocking:
            return inputs.indices.map { i in
                Execution(input: i, outcome: Outcome.of { try compiled.execute(inputs[i]) }.map(summarize))
            }
        case .async:
            var result: [Execution] = []
            for i in inputs.indices {
                var outcome: Outcome
                do { outcome = .value(summarize(try await compiled.execute(inputs[i]))) } catch {
                    outcome = Outcome(error)
                }
                result.append(Execution(input: i, outcome: outcome))
            }
            return result
        case .pipelined(let window):
            var result = [Execution?](repeating: nil, count: inputs.count)
            var start = 0
            let window = max(1, min(window, compiled.capacity))
            while start < inputs.count {
                let end = min(inputs.count, start + window)
                submitAndWait(
                    compiled,
                    inputs: inputs,
                    range: start..<end,
                    position: start,
                    into: &result,
                    summarize: summarize
                )
                start = end
            }
            return result.map { $0! }
        case .abandonSome(let mask):
            // The last execution is always awaited: once it is answered every earlier one has run
            // (every segment runs every execution in order), so shutdown discards nothing.
            return inputs.indices.map { i in
                if i < inputs.count - 1, mask & (1 << (i % 64)) != 0 {
                    do { _ = try compiled.submit(inputs[i]) } catch {
                        return Execution(input: i, outcome: Outcome(error))
                    }
                    return Execution(input: i, outcome: nil)
                }
                return Execution(input: i, outcome: Outcome.of { try compiled.execute(inputs[i]) }.map(summarize))
            }
        case .batch(let chunk, let shuffleSeed):
            // submit(contentsOf:) in chunks of at most `capacity`, waited for with waitAll or one by
            // one in a random order; one thread, so the engine's order is the input order.
            var result = [Execution?](repeating: nil, count: inputs.count)
            var rng = SplitMix64(seed: shuffleSeed)
            var start = 0
            let chunk = max(1, min(chunk, compiled.capacity))
            while start < inputs.count {
                let range = start..<min(inputs.count, start + chunk)
                do {
                    let batch = try compiled.submit(contentsOf: inputs[range])
                    if shuffleSeed & 1 == 0 {
                        batch.waitAll { index, r in
                            let outcome: Outcome
                            switch r {
                            case .success(let v): outcome = .value(summarize(v))
                            case .failure(let e): outcome = Outcome(e)
                            }
                            result[range.lowerBound + index] = Execution(
                                input: range.lowerBound + index,
                                outcome: outcome
                            )
                        }
                    } else {
                        for index in Array(0..<range.count).shuffled(using: &rng) {
                            let outcome: Outcome
                            do { outcome = .value(summarize(try batch.wait(index))) } catch { outcome = Outcome(error) }
                            result[range.lowerBound + index] = Execution(
                                input: range.lowerBound + index,
                                outcome: outcome
                            )
                        }
                    }
                } catch {
                    for i in range { result[i] = Execution(input: i, outcome: Outcome(error)) }
                }
                start = range.upperBound
            }
            return result.map { $0! }
        case .executeAll(let window):
            var result: [Execution] = []
            do {
                try compiled.executeAll(inputs, window: window) { index, r in
                    switch r {
                    case .success(let v): result.append(Execution(input: index, outcome: .value(summarize(v))))
                    case .failure(let e): result.append(Execution(input: index, outcome: Outcome(e)))
                    }
                }
            } catch {
                for i in result.count..<inputs.count { result.append(Execution(input: i, outcome: Outcome(error))) }
            }
            return result
        case .asyncResults(let window):
            var result: [Execution] = []
            for await r in compiled.results(for: inputs, window: window) {
                switch r {
                case .success(let v): result.append(Execution(input: result.count, outcome: .value(summarize(v))))
                case .failure(let e): result.append(Execution(input: result.count, outcome: Outcome(e)))
                }
            }
            return result
        case .borrowed:
            // withResult lends the output in place (zero-copy read of the result slot).
            return inputs.indices.map { i in
                do {
                    let pending = try compiled.submit(inputs[i])
                    return Execution(
                        input: i,
                        outcome: .value(try pending.withResult { (o: borrowing O) in summarize(copy o) })
                    )
                } catch {
                    return Execution(input: i, outcome: Outcome(error))
                }
            }
        case .concurrent(let threads):
            // Each thread records into its own box, read after joining it (pthread_join orders the
            // writes for ThreadSanitizer too; a contended Mutex is handed over inside the kernel,
            // which TSan cannot see).
            let boxes = (0..<threads).map { _ in ThreadResults() }
            var started: [PinnedThread] = []
            for t in 0..<threads {
                let box = boxes[t]
                guard
                    let thread = try? PinnedThread(
                        name: "property\(t)",
                        cpu: nil,
                        {
                            for i in stride(from: t, to: inputs.count, by: threads) {
                                do {
                                    let pending = try compiled.submit(inputs[i])
                                    let sequence = pending.sequence
                                    let outcome: Outcome
                                    do { outcome = .value(summarize(try pending.wait())) } catch {
                                        outcome = Outcome(error)
                                    }
                                    box.collected.append((sequence, Execution(input: i, outcome: outcome)))
                                } catch {
                                    box.failures.append(Execution(input: i, outcome: Outcome(error)))
                                }
                            }
                        }
                    )
                else { continue }
                started.append(thread)
            }
            started.forEach { $0.join() }
            // A failed submit has no sequence: report it (it can only be a bug here), after the rest.
            return boxes.flatMap(\.collected).sorted { $0.sequence < $1.sequence }.map(\.execution)
                + boxes.flatMap(\.failures)
        }
    }

    /// Submits `range` (at most `capacity` executions), then waits for them in reverse order
    /// (a `PendingExecution` is `~Copyable`: recursion keeps one per frame).
    private func submitAndWait<V, O>(
        _ compiled: CompiledGraph<V, O>,
        inputs: [V],
        range: Range<Int>,
        position: Int,
        into result: inout [Execution?],
        summarize: (O) -> [Int]
    ) {
        guard position < range.upperBound else { return }
        let pending: PendingExecution<O>
        do {
            pending = try compiled.submit(inputs[position])
        } catch {
            result[position] = Execution(input: position, outcome: Outcome(error))
            submitAndWait(
                compiled,
                inputs: inputs,
                range: range,
                position: position + 1,
                into: &result,
                summarize: summarize
            )
            return
        }
        submitAndWait(
            compiled,
            inputs: inputs,
            range: range,
            position: position + 1,
            into: &result,
            summarize: summarize
        )
        let outcome: Outcome
        do { outcome = .value(summarize(try pending.wait())) } catch { outcome = Outcome(error) }
        result[position] = Execution(input: position, outcome: outcome)
    }

    // MARK: Malformed graphs

    private func checkMalformed(_ blueprint: Blueprint, flaw: Flaw, context: String) -> Bool {
        if blueprint.heapValues {
            return checkMalformed(blueprint, HeapValue.self, flaw: flaw, context: context)
        }
        return checkMalformed(blueprint, Int.self, flaw: flaw, context: context)
    }

    private func checkMalformed<V: PropertyValue>(
        _ blueprint: Blueprint,
        _: V.Type,
        flaw: Flaw,
        context: String
    ) -> Bool {
        let actors = blueprint.makeActors()
        func expect<O>(
            _ graph: Graph<V, O>,
            _ options: CompileOptions,
            _ matches: (CompileError) -> Bool,
            shapeError: Bool
        ) -> Bool {
            var outcomes: [String] = []
            var ok = true
            func record(_ what: String, _ body: () throws -> Void) {
                do {
                    try body()
                    ok = false
                    outcomes.append("\(what): accepted")
                } catch let error as CompileError {
                    if !matches(error) { ok = false }
                    outcomes.append("\(what): \(error)")
                } catch {
                    ok = false
                    outcomes.append("\(what): untyped \(error)")
                }
            }
            record("compile") {
                let c = try graph.compile(options)
                c.shutdown()
            }
            if shapeError {
                record("sequential") { _ = try graph.sequential() }
                record("dynamic") { _ = try graph.dynamic() }
            }
            if !ok { XCTFail("wrong answer for a malformed graph: \(outcomes.joined(separator: "; "))\n\(context)") }
            if actors.contains(where: \.isBound) {
                XCTFail("a rejected compile left an actor bound\n\(context)")
                return false
            }
            return ok
        }
        let good = PropertyOptions.safe.compileOptions
        switch flaw {
        case .deadStages(let count):
            let graph = blueprint.graph(V.self, actors: actors, deadStages: count)
            let firstDead = "n\(blueprint.steps.count)"
            return expect(graph, good, { if case .deadStage(firstDead) = $0 { true } else { false } }, shapeError: true)
        case .foreignInput:
            let graph = blueprint.graph(V.self, actors: actors, foreign: .input)
            return expect(
                graph,
                good,
                { if case .foreignNode("foreign-zip") = $0 { true } else { false } },
                shapeError: true
            )
        case .foreignOutput:
            let graph = blueprint.graph(V.self, actors: actors, foreign: .output)
            return expect(graph, good, { if case .outputNotFromInput = $0 { true } else { false } }, shapeError: true)
        case .noStages:
            let graph = Graph(input: V.self) { x in x }
            return expect(graph, good, { if case .noStages = $0 { true } else { false } }, shapeError: true)
        case .badOptions(let bad):
            let graph = blueprint.graph(V.self, actors: actors)
            return expect(graph, bad.options, bad.matches, shapeError: false)
        case .actorBoundElsewhere:
            let first: CompiledGraph<V, V>
            do {
                first = try blueprint.graph(V.self, actors: actors).compile(good)
            } catch {
                XCTFail("compile failed: \(error)\n\(context)")
                return false
            }
            defer { first.shutdown() }
            let names = Set(blueprint.usedActors.map { actors[$0].name })
            var ok = true
            do {
                let second = try blueprint.graph(V.self, actors: actors).compile(good)
                second.shutdown()
                ok = false
                XCTFail("a second compile with bound actors was accepted\n\(context)")
            } catch {
                if case .actorAlreadyBound(let name) = error, names.contains(name) {
                } else {
                    ok = false
                    XCTFail("expected actorAlreadyBound, got \(error)\n\(context)")
                }
            }
            if blueprint.usedActors.contains(where: { !actors[$0].isBound }) {
                XCTFail("the rejected compile unbound the running graph's actors\n\(context)")
                return false
            }
            return ok
        }
    }
}

// MARK: - Configuration

/// Seed and graph count, from the environment when set.
struct PropertyConfig {
    var seed: UInt64
    var graphs: Int
    var only: Int?

    var indices: Range<Int> { only.map { $0..<($0 + 1) } ?? 0..<graphs }

    static func fromEnvironment(defaultGraphs: Int) -> PropertyConfig {
        let env = ProcessInfo.processInfo.environment
        let seed = env["ACTORGRAPH_PROPERTY_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let graphs = env["ACTORGRAPH_PROPERTY_GRAPHS"].flatMap { Int($0) } ?? defaultGraphs
        return PropertyConfig(
            seed: seed,
            graphs: max(1, graphs),
            only: env["ACTORGRAPH_PROPERTY_ONLY"].flatMap { Int($0) }
        )
    }
}

struct PropertyStats {
    var graphs = 0, executions = 0, failures = 0, abandoned = 0, actorGraphs = 0, tupleGraphs = 0, heapGraphs = 0
}

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same graphs everywhere.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Values, stages and actors

/// The value type flowing through a generated graph: `Int` (trivial) or `HeapValue` (holds references,
/// so rings, scratch and results must retain and destroy it correctly).
protocol PropertyValue: Sendable {
    init(property: Int)
    var property: Int { get }
    /// Everything the value holds, for comparing outcomes.
    var fingerprint: [Int] { get }
}

extension Int: PropertyValue {
    init(property: Int) { self = property }
    var property: Int { self }
    var fingerprint: [Int] { [self] }
}

struct HeapValue: PropertyValue {
    var words: [Int]
    var label: String
    init(property: Int) {
        words = [property, property &* 31, Int(property.nonzeroBitCount)]
        label = "value-\(property & 0xFFFF)"
    }
    var property: Int { words[0] }
    var fingerprint: [Int] { words + label.utf8.map(Int.init) }
}

/// Deterministic mixing (SplitMix64 finalizer) of two values.
@inline(__always)
func propertyMix(_ a: Int, _ b: Int) -> Int {
    var z = UInt64(bitPattern: Int64(a)) &+ 0x9E37_79B9_7F4A_7C15 &* (UInt64(bitPattern: Int64(b)) &+ 1)
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return Int(bitPattern: UInt(z ^ (z >> 31)))
}

/// The error a generated stage throws: which node, for which value.
struct PropertyFailure: Error, Equatable, Sendable {
    let node: Int
    let value: Int
}

/// Throws for about one value in `every` (never when `every` is 0), the same on every path.
@inline(__always)
func propertyMaybeFail(_ value: Int, node: Int, every: Int) throws {
    if every > 0, UInt(bitPattern: propertyMix(value, node &+ 7_777)) % UInt(every) == 0 {
        throw PropertyFailure(node: node, value: value)
    }
}

/// A stateful stage: its output depends on every value it saw before, in order.
struct HistoryStage<V: PropertyValue>: Stage, Sendable {
    let node: Int
    let failEvery: Int
    var history = 0
    var count = 0
    mutating func process(_ value: V) throws -> V {
        count += 1
        history = propertyMix(history, value.property)
        try propertyMaybeFail(value.property, node: node, every: failEvery)
        return V(property: history ^ count)
    }
}

/// The state of a shared actor: an order-sensitive history per node using it, and a call count.
struct PropertyActorState: Equatable, Sendable, CustomStringConvertible {
    var perNode: [Int: Int] = [:]
    var calls = 0
    var description: String {
        "calls=\(calls) " + perNode.sorted { $0.key < $1.key }.map { "n\($0.key):\($0.value)" }.joined(separator: ",")
    }
}

// MARK: - Blueprints: a graph as data, instantiated once per path

/// A generated graph as plain data. Ref 0 is the input; step `i` produces ref `i + 1`, a node named
/// `n<i>` (a zip step also makes the zip node `z<i>` feeding the combining stage `n<i>`).
struct Blueprint: CustomStringConvertible {
    enum Step {
        case closure(from: Int)
        case stateful(from: Int)
        case actor(Int, from: Int)
        case zip([Int])
    }

    var steps: [Step]
    /// One output, or two (the tuple-output `Graph` initializer).
    var outputs: [Int]
    var actorCount: Int
    var failEvery: Int
    var heapValues: Bool

    var description: String {
        let body = steps.enumerated().map { i, step -> String in
            switch step {
            case .closure(let from): return "n\(i)=closure(r\(from))"
            case .stateful(let from): return "n\(i)=stateful(r\(from))"
            case .actor(let a, let from): return "n\(i)=actor\(a)(r\(from))"
            case .zip(let from): return "n\(i)=zip(\(from.map { "r\($0)" }.joined(separator: ",")))"
            }
        }.joined(separator: " ")
        return
            "graph[\(heapValues ? "HeapValue" : "Int") failEvery=\(failEvery) actors=\(actorCount) outputs=\(outputs.map { "r\($0)" })] \(body)"
    }

    static func random(using rng: inout SplitMix64) -> Blueprint {
        let actorCount = [0, 0, 1, 1, 2, 3].randomElement(using: &rng)!
        let failEvery = [0, 0, 2, 3, 5, 11, 97].randomElement(using: &rng)!
        let heapValues = Int.random(in: 0..<4, using: &rng) == 0
        var steps: [Step] = []
        var consumed: Set<Int> = [0]
        var refCount = 1
        func pick(_ rng: inout SplitMix64) -> Int {
            // Favour recent refs (chains), sometimes any earlier one (fan-out).
            Bool.random(using: &rng) ? refCount - 1 : Int.random(in: 0..<refCount, using: &rng)
        }
        let stepCount = Int.random(in: 1...12, using: &rng)
        for _ in 0..<stepCount {
            let roll = Int.random(in: 0..<10, using: &rng)
            let step: Step
            switch roll {
            case 0..<3: step = .closure(from: pick(&rng))
            case 3..<5: step = .stateful(from: pick(&rng))
            case 5..<7 where actorCount > 0:
                step = .actor(Int.random(in: 0..<actorCount, using: &rng), from: pick(&rng))
            case 5..<7: step = .closure(from: pick(&rng))
            default:
                let arity = Int.random(in: 2...4, using: &rng)
                step = .zip((0..<arity).map { _ in Int.random(in: 0..<refCount, using: &rng) })
            }
            steps.append(step)
            refCount += 1
            switch step {
            case .closure(let f), .stateful(let f), .actor(_, let f): consumed.insert(f)
            case .zip(let from): consumed.formUnion(from)
            }
        }
        // Join every unconsumed ref into the output(s), so no stage is dead.
        let outputCount = Bool.random(using: &rng) ? 2 : 1
        var sinks = (1..<refCount).filter { !consumed.contains($0) }
        while sinks.count > outputCount {
            let arity = min(4, sinks.count - outputCount + 1, Int.random(in: 2...4, using: &rng))
            let group = Array(sinks.prefix(arity))
            sinks.removeFirst(arity)
            steps.append(.zip(group))
            sinks.append(refCount)
            refCount += 1
        }
        var outputs = sinks
        while outputs.count < outputCount {
            steps.append(.closure(from: Int.random(in: 0..<refCount, using: &rng)))
            outputs.append(refCount)
            refCount += 1
        }
        // An actor declared but never used by a step is simply not part of the graph.
        return Blueprint(
            steps: steps,
            outputs: outputs,
            actorCount: actorCount,
            failEvery: failEvery,
            heapValues: heapValues
        )
    }

    func makeActors() -> [ActorRef<PropertyActorState>] {
        (0..<actorCount).map { ActorRef(PropertyActorState(), name: "actor\($0)") }
    }

    /// Where a malformed variant takes a node of another graph.
    enum ForeignUse { case none, input, output }

    /// The graph with a single output; `deadStages` unconsumed stages appended; `foreign` flaws.
    func graph<V: PropertyValue>(
        _: V.Type,
        actors: [ActorRef<PropertyActorState>],
        deadStages: Int = 0,
        foreign: ForeignUse = .none
    ) -> Graph<V, V> {
        var other: Node<V>? = nil
        if foreign != .none {
            _ = Graph(input: V.self) { y in
                let node = y.then(name: "foreign") { $0 }
                other = node
                return node
            }
        }
        return Graph(input: V.self) { x in
            var refs = nodes(x, actors: actors)
            // A dead chain: the first reads the last ref, each next one the previous dead stage.
            for d in 0..<deadStages {
                refs.append(refs[refs.count - 1].then(name: "n\(steps.count + d)") { $0 })
            }
            // Malformed variants of two-output blueprints join both outputs, so only the flaw is wrong.
            let output =
                outputs.count == 1
                ? refs[outputs[0]]
                : zip(refs[outputs[0]], refs[outputs[1]], name: "outputs").then(name: "first") { a, _ in a }
            switch foreign {
            case .none: return output
            case .input: return zip(output, other!, name: "foreign-zip").then { a, _ in a }
            case .output: return other!
            }
        }
    }

    /// The graph with two outputs, returned as a tuple.
    func tupleGraph<V: PropertyValue>(_: V.Type, actors: [ActorRef<PropertyActorState>]) -> Graph<V, (V, V)> {
        Graph(input: V.self) { x in
            let refs = nodes(x, actors: actors)
            return (refs[outputs[0]], refs[outputs[1]])
        }
    }

    private func nodes<V: PropertyValue>(_ x: Node<V>, actors: [ActorRef<PropertyActorState>]) -> [Node<V>] {
        var refs = [x]
        let every = failEvery
        for (node, step) in steps.enumerated() {
            let name = "n\(node)"
            switch step {
            case .closure(let from):
                refs.append(
                    refs[from].then(name: name) { v in
                        try propertyMaybeFail(v.property, node: node, every: every)
                        return V(property: propertyMix(v.property, node))
                    }
                )
            case .stateful(let from):
                refs.append(refs[from].then(HistoryStage<V>(node: node, failEvery: every), name: name))
            case .actor(let a, let from):
                refs.append(
                    refs[from].then(actors[a], name: name) { state, v in
                        state.calls += 1
                        let h = propertyMix(state.perNode[node, default: 0], v.property)
                        state.perNode[node] = h
                        try propertyMaybeFail(v.property, node: node, every: every)
                        return V(property: h)
                    }
                )
            case .zip(let from):
                let z = "z\(node)"
                switch from.count {
                case 2:
                    refs.append(
                        zip(refs[from[0]], refs[from[1]], name: z).then(name: name) { a, b in
                            let m = propertyMix(a.property, b.property)
                            try propertyMaybeFail(m, node: node, every: every)
                            return V(property: m)
                        }
                    )
                case 3:
                    refs.append(
                        zip(refs[from[0]], refs[from[1]], refs[from[2]], name: z).then(name: name) { a, b, c in
                            let m = propertyMix(propertyMix(a.property, b.property), c.property)
                            try propertyMaybeFail(m, node: node, every: every)
                            return V(property: m)
                        }
                    )
                default:
                    refs.append(
                        zip(refs[from[0]], refs[from[1]], refs[from[2]], refs[from[3]], name: z).then(name: name) {
                            a,
                            b,
                            c,
                            d in
                            let m = propertyMix(
                                propertyMix(a.property, b.property),
                                propertyMix(c.property, d.property)
                            )
                            try propertyMaybeFail(m, node: node, every: every)
                            return V(property: m)
                        }
                    )
                }
            }
        }
        return refs
    }
}

// MARK: - Options and runs

/// Random `CompileOptions` within the machine's limits.
struct PropertyOptions {
    var compileOptions: CompileOptions
    var summary: String

    static var cpus: Int { CPU.allowedCPUs().count }

    static var safe: PropertyOptions {
        PropertyOptions(
            compileOptions: CompileOptions(
                workers: 1,
                capacity: 16,
                pinWorkers: false,
                idle: .eager,
                submitTimeout: .seconds(30)
            ),
            summary: "safe"
        )
    }

    static func random(using rng: inout SplitMix64) -> PropertyOptions {
        let exponent = Int.random(in: 0...12, using: &rng)
        let capacity = Int.random(in: max(1, (1 << exponent) / 2 + 1)...(1 << exponent), using: &rng)
        let cpus = self.cpus
        let workers: Int? = Int.random(in: 0..<4, using: &rng) == 0 ? nil : Int.random(in: 1...cpus, using: &rng)
        let pin = Bool.random(using: &rng)
        let placement = [Placement.automatic, .spread, .singleWorker].randomElement(using: &rng)!
        let batchSize = [1, 2, 3, 8, 32, 64, 1000].randomElement(using: &rng)!
        // Eager-like idle policies: parked workers cost nothing on a 2-core CI machine.
        let idle = IdlePolicy(
            workerSpins: Int.random(in: 0...256, using: &rng),
            callerSpins: Int.random(in: 0...256, using: &rng),
            spinTime: .microseconds(Int.random(in: 0...3, using: &rng) == 0 ? Int.random(in: 1...50, using: &rng) : 0),
            parkTimeout: .milliseconds(Int.random(in: 1...100, using: &rng))
        )
        let useIORing = Int.random(in: 0..<4, using: &rng) != 0
        let numaNode: Int? = Bool.random(using: &rng) ? nil : 0
        let options = CompileOptions(
            workers: workers,
            capacity: capacity,
            pinWorkers: pin,
            numaNode: numaNode,
            idle: idle,
            submitTimeout: .seconds(30),
            placement: placement,
            batchSize: batchSize,
            useIORing: useIORing
        )
        return PropertyOptions(
            compileOptions: options,
            summary:
                "options[capacity=\(capacity) workers=\(workers.map(String.init) ?? "nil") pin=\(pin) placement=\(placement) batch=\(batchSize) spins=\(idle.workerSpins)/\(idle.callerSpins) spinTime=\(idle.spinTime) park=\(idle.parkTimeout) io_uring=\(useIORing) numa=\(numaNode.map(String.init) ?? "nil")]"
        )
    }
}

/// How the compiled path is driven, and with which inputs.
struct PropertyRun {
    enum Mode {
        case blocking
        case async
        /// `submit` up to `window` executions, then wait for them (newest first).
        case pipelined(window: Int)
        /// Executions whose bit is set are submitted and dropped without waiting (never the last).
        case abandonSome(mask: UInt64)
        /// Several threads submit and wait at once; compared in the engine's sequence order.
        case concurrent(threads: Int)
        /// `submit(contentsOf:)` in chunks, then `waitAll` (even seed) or `wait(i)` in random order.
        case batch(chunk: Int, shuffleSeed: UInt64)
        /// `executeAll` with a window.
        case executeAll(window: Int)
        /// The async `results(for:)` stream with a window.
        case asyncResults(window: Int)
        /// `submit` then `withResult` (the output borrowed in place).
        case borrowed
    }

    var mode: Mode
    var inputs: [Int]

    var summary: String { "run[\(mode) inputs=\(inputs)]" }

    static func random(using rng: inout SplitMix64) -> PropertyRun {
        let count = Int.random(in: 1...10, using: &rng)
        let inputs = (0..<count).map { _ -> Int in
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: return [Int.min, Int.max, 0, -1, 1].randomElement(using: &rng)!
            case 1: return Int(bitPattern: UInt(rng.next()))
            default: return Int.random(in: -1_000...1_000, using: &rng)
            }
        }
        let mode: Mode
        switch Int.random(in: 0..<15, using: &rng) {
        case 0..<3: mode = .blocking
        case 3..<5: mode = .async
        case 5..<7: mode = .pipelined(window: Int.random(in: 1...8, using: &rng))
        case 7..<9: mode = .abandonSome(mask: rng.next())
        case 9: mode = .concurrent(threads: 2)
        case 10..<12: mode = .batch(chunk: Int.random(in: 1...8, using: &rng), shuffleSeed: rng.next())
        case 12: mode = .executeAll(window: Int.random(in: 1...8, using: &rng))
        case 13: mode = .asyncResults(window: Int.random(in: 1...8, using: &rng))
        default: mode = .borrowed
        }
        return PropertyRun(mode: mode, inputs: inputs)
    }
}

/// What one submitting thread of the `.concurrent` mode saw; written by that thread only, read after it joined.
final class ThreadResults: @unchecked Sendable {  // one writer, then read after pthread_join
    var collected: [(sequence: Int, execution: Execution)] = []
    var failures: [Execution] = []
}

/// One execution of the compiled path: which input, and its outcome (`nil`: dropped unawaited).
struct Execution: Sendable {
    var input: Int
    var outcome: Outcome?
}

/// What one execution answered, comparable across paths.
enum Outcome: Equatable, Sendable, CustomStringConvertible {
    case value([Int])
    case failed(node: String, PropertyFailure)
    case other(String)

    init(_ error: any Error) {
        if case ExecutionError.stageFailed(let node, let inner) = error, let failure = inner as? PropertyFailure {
            self = .failed(node: node, failure)
        } else {
            self = .other("\(error)")
        }
    }

    /// Runs `body`, keeping its value (un-summarized, see ``map(_:)``) or its error.
    static func of<T>(_ body: () throws -> T) -> Pending<T> {
        do { return .value(try body()) } catch { return .error(Outcome(error)) }
    }

    enum Pending<T> {
        case value(T)
        case error(Outcome)
        func map(_ summarize: (T) -> [Int]) -> Outcome {
            switch self {
            case .value(let v): return .value(summarize(v))
            case .error(let e): return e
            }
        }
    }

    var description: String {
        switch self {
        case .value(let v): return "value\(v)"
        case .failed(let node, let f): return "stageFailed(\(node), node \(f.node) value \(f.value))"
        case .other(let s): return "error(\(s))"
        }
    }
}

// MARK: - Malformed variants

/// What is wrong with a malformed variant of a generated graph, and the error it must produce.
enum Flaw: CustomStringConvertible {
    case deadStages(Int)
    case foreignInput
    case foreignOutput
    case noStages
    case badOptions(BadOptions)
    case actorBoundElsewhere

    var kind: String {
        switch self {
        case .deadStages: return "dead_stage"
        case .foreignInput: return "foreign_node"
        case .foreignOutput: return "output_not_from_input"
        case .noStages: return "no_stages"
        case .badOptions(let b): return "options_\(b.kind)"
        case .actorBoundElsewhere: return "actor_already_bound"
        }
    }

    var description: String { kind }

    static func random(for blueprint: Blueprint, using rng: inout SplitMix64) -> Flaw {
        switch Int.random(in: 0..<7, using: &rng) {
        case 0: return .deadStages(Int.random(in: 1...3, using: &rng))
        case 1: return .foreignInput
        case 2: return .foreignOutput
        case 3: return .noStages
        case 4 where blueprint.usesActors: return .actorBoundElsewhere
        default: return .badOptions(.random(using: &rng))
        }
    }
}

extension Blueprint {
    var usesActors: Bool {
        steps.contains { if case .actor = $0 { true } else { false } }
    }

    /// Actors a step uses (an actor created but unused is not bound by compile).
    var usedActors: Set<Int> {
        Set(steps.compactMap { if case .actor(let a, _) = $0 { a } else { nil } })
    }
}

/// One option out of range, with the `CompileError` it must produce.
struct BadOptions: Sendable {
    var kind: String
    var options: CompileOptions
    var matches: @Sendable (CompileError) -> Bool

    static func random(using rng: inout SplitMix64) -> BadOptions {
        var o = PropertyOptions.safe.compileOptions
        let cpus = PropertyOptions.cpus
        switch Int.random(in: 0..<9, using: &rng) {
        case 0:
            let c = [0, -1, Int.min, CompileOptions.maxCapacity + 1, Int.max].randomElement(using: &rng)!
            o.capacity = c
            return BadOptions(kind: "capacity", options: o) { if case .invalidCapacity(c) = $0 { true } else { false } }
        case 1:
            let w = [0, -1, Int.min].randomElement(using: &rng)!
            o.workers = w
            o.pinWorkers = Bool.random(using: &rng)
            return BadOptions(kind: "workers", options: o) {
                if case .invalidWorkerCount(w) = $0 { true } else { false }
            }
        case 2:
            let w = Int.random(in: (cpus + 1)...(cpus + 64), using: &rng)
            o.workers = w
            o.pinWorkers = true
            return BadOptions(kind: "pinned_workers", options: o) {
                if case .tooManyWorkers(w, cpus) = $0 { true } else { false }
            }
        case 3:
            o.batchSize = [0, -1, Int.min].randomElement(using: &rng)!
            return BadOptions(kind: "batch_size", options: o) { if case .invalidOption = $0 { true } else { false } }
        case 4:
            o.submitTimeout = .nanoseconds(-Int64.random(in: 1...1_000_000_000, using: &rng))
            return BadOptions(kind: "submit_timeout", options: o) {
                if case .invalidOption = $0 { true } else { false }
            }
        case 5:
            o.idle.workerSpins = -Int.random(in: 1...1000, using: &rng)
            return BadOptions(kind: "idle_spins", options: o) { if case .invalidOption = $0 { true } else { false } }
        case 6:
            o.idle.parkTimeout = Bool.random(using: &rng) ? .zero : .milliseconds(-5)
            return BadOptions(kind: "park_timeout", options: o) { if case .invalidOption = $0 { true } else { false } }
        case 7:
            o.idle.spinTime = .microseconds(-Int.random(in: 1...100, using: &rng))
            return BadOptions(kind: "spin_time", options: o) { if case .invalidOption = $0 { true } else { false } }
        default:
            let n = [NUMA.nodeCount, NUMA.nodeCount + 7, -1, Int.min].randomElement(using: &rng)!
            o.numaNode = n
            return BadOptions(kind: "numa_node", options: o) {
                if case .invalidNUMANode(n, _) = $0 { true } else { false }
            }
        }
    }
}
