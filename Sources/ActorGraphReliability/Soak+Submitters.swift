import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The soak's submitters: each loop takes the current graph, calls it one way, and records every
/// start and answer in the ledger.
extension Soak {
    // MARK: Submitters

    /// The graph to use now, or nil while there is none (between graphs) or the soak is pausing.
    /// A caller that gets a graph counts as busy until it calls `ledger.busy.subtract` (see
    /// `paused`). `view` caches the graph of the last generation seen (the lock is taken only when
    /// it changed); a cached graph that was just shut down answers `shutDown`, which is counted.
    func current(_ view: inout GraphView) -> (graph: CompiledGraph<Int, SoakOutput>?, stop: Bool) {
        if stopping.load(ordering: .sequentiallyConsistent) { return (nil, true) }
        let g = generation.load(ordering: .acquiring)
        if g != view.generation {
            view.graph = slot.withLock { $0 }
            view.generation = g
        }
        guard let graph = view.graph else { return (nil, false) }
        ledger.busy.add(1, ordering: .sequentiallyConsistent)
        if paused.load(ordering: .sequentiallyConsistent) {
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
            return (nil, false)
        }
        return (graph, false)
    }

    /// After an answer saying the graph failed for good (restarts exhausted), waits 200 µs: every
    /// further call fails at once until the controller replaces the graph, and a thread retrying in
    /// a tight loop would only count that error thousands of times.
    /// Refused while another submitter holds the graph exclusively: waits 100 µs instead of
    /// retrying at once (on 2 CPUs a refused thread would otherwise compete with the holder).
    func pauseIfFailedForGood(_ error: any Error) {
        if case ExecutionError.restartsExhausted = error { usleep(200) }
        if case ExecutionError.exclusiveSubmitterOpen = error { usleep(100) }
    }

    func blockingLoop(_ flag: SubmitterFlag) {
        defer { flag.finish() }
        var view = GraphView()
        while true {
            let (graph, stop) = current(&view)
            if stop { return }
            guard let graph else {
                usleep(200)
                continue
            }
            let id = nextID.add(1, ordering: .relaxed).newValue
            ledger.started()
            do {
                ledger.answer(id, carried: try graph.execute(id))
            } catch {
                ledger.answer(id, error: error)
                pauseIfFailedForGood(error)
            }
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    func asyncLoop(_ flag: SubmitterFlag) async {
        defer { flag.finish() }
        var view = GraphView()
        var round = 0
        while true {
            let (graph, stop) = current(&view)
            if stop { return }
            guard let graph else {
                try? await Task.sleep(for: .microseconds(200))
                continue
            }
            round &+= 1
            // A call that fails at once (a failed graph: restarts exhausted) never suspends; without
            // a yield two such loops would hold both threads of a 2-CPU cooperative pool forever and
            // starve the task that shuts the graph down.
            var mustYield = false
            if round % 8 == 0 {
                // The async results stream: ids in, results in input order.
                let first = nextID.add(16, ordering: .relaxed).newValue - 15
                let ids = Array(first..<(first + 16))
                var next = 0
                var last: ExecutionError? = nil
                for await result in graph.results(for: ids, window: 1 + round % 16) {
                    ledger.started()
                    switch result {
                    case .success(let output):
                        ledger.answer(ids[next], carried: output)
                        last = nil
                    case .failure(let error):
                        ledger.answer(ids[next], error: error)
                        last = error
                    }
                    next += 1
                    if next == ids.count { break }
                }
                // A stream that cannot go on (shut down, restarts exhausted, no room) reports that
                // error once and ends: the rest share that answer.
                while next < ids.count {
                    ledger.started()
                    ledger.answer(ids[next], error: last ?? ExecutionError.shutDown)
                    next += 1
                }
                mustYield = last != nil
            } else {
                let id = nextID.add(1, ordering: .relaxed).newValue
                ledger.started()
                do {
                    ledger.answer(id, carried: try await graph.execute(id))
                } catch {
                    ledger.answer(id, error: error)
                    if case ExecutionError.stageFailed = error {} else { mustYield = true }
                    if case ExecutionError.restartsExhausted = error { try? await Task.sleep(for: .microseconds(200)) }
                    if case ExecutionError.exclusiveSubmitterOpen = error {
                        try? await Task.sleep(for: .microseconds(100))
                    }
                }
            }
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
            if mustYield { await Task.yield() }
        }
    }

    /// `submit(contentsOf:)` waited for in random order or with `waitAll`, and `executeAll`.
    func batchLoop(_ flag: SubmitterFlag, seed: UInt64) {
        defer { flag.finish() }
        var view = GraphView()
        var rng = SplitMix64(seed: configuration.seed ^ 0xBA7C ^ seed)
        while true {
            let (graph, stop) = current(&view)
            if stop { return }
            guard let graph else {
                usleep(200)
                continue
            }
            let n = Int.random(in: 1...max(1, min(64, graph.capacity)), using: &rng)
            let first = nextID.add(n, ordering: .relaxed).newValue - n + 1
            let ids = Array(first..<(first + n))
            // 1 in 9 an exclusive burst; of the rest, a third executeAll, two thirds submit(contentsOf:).
            let pick = Int.random(in: 0..<9, using: &rng)
            switch pick == 8 ? 3 : pick % 3 {
            case 3:
                exclusiveBurst(graph, ids, rng: &rng)
            case 0:
                // executeAll: each result handed over in input order; a throw answers the rest.
                var delivered = 0
                do {
                    try graph.executeAll(ids, window: Int.random(in: 1...n, using: &rng)) { index, result in
                        ledger.started()
                        switch result {
                        case .success(let output): ledger.answer(ids[index], carried: output)
                        case .failure(let error): ledger.answer(ids[index], error: error)
                        }
                        delivered += 1
                    }
                } catch {
                    for id in ids[delivered...] {
                        ledger.started()
                        ledger.answer(id, error: error)
                    }
                    pauseIfFailedForGood(error)
                }
            default:
                let batch: PendingBatch<SoakOutput>
                do {
                    batch = try graph.submit(contentsOf: ids)
                } catch {
                    for id in ids {
                        ledger.started()
                        ledger.answer(id, error: error)
                    }
                    pauseIfFailedForGood(error)
                    ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
                    continue
                }
                for _ in ids { ledger.started() }
                if Bool.random(using: &rng) {
                    batch.waitAll { index, result in
                        switch result {
                        case .success(let output): ledger.answer(ids[index], carried: output)
                        case .failure(let error): ledger.answer(ids[index], error: error)
                        }
                    }
                } else {
                    // Each execution waited for once, in a random order.
                    for index in (0..<n).shuffled(using: &rng) {
                        do {
                            ledger.answer(ids[index], carried: try batch.wait(index))
                        } catch {
                            ledger.answer(ids[index], error: error)
                        }
                    }
                }
            }
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Holds the graph's submissions with an ``ExclusiveSubmitter`` for `ids` (every other
    /// submitter is refused meanwhile), keeps a random window in flight, receives in order, and
    /// half the time drops the submitter with executions still in flight.
    func exclusiveBurst(_ graph: CompiledGraph<Int, SoakOutput>, _ ids: [Int], rng: inout SplitMix64) {
        var submitter: ExclusiveSubmitter<Int, SoakOutput>
        do {
            submitter = try graph.exclusiveSubmitter()
        } catch {
            for id in ids {
                ledger.started()
                ledger.answer(id, error: error)
            }
            pauseIfFailedForGood(error)
            return
        }
        let window = Int.random(in: 1...max(1, min(ids.count, graph.capacity)), using: &rng)
        let dropAfter = Bool.random(using: &rng) ? Int.random(in: 0...ids.count, using: &rng) : ids.count
        var received = 0
        func receiveOne(_ submitter: inout ExclusiveSubmitter<Int, SoakOutput>) {
            do {
                let output = try submitter.receive()
                ledger.answer(ids[received], carried: output)
            } catch {
                ledger.answer(ids[received], error: error)
            }
            received += 1
        }
        var submitted = 0
        while submitted < dropAfter {
            if submitter.inFlight == window { receiveOne(&submitter) }
            ledger.started()
            do {
                try submitter.submit(ids[submitted])
            } catch {
                ledger.answer(ids[submitted], error: error)
                pauseIfFailedForGood(error)
                break
            }
            submitted += 1
        }
        if dropAfter < ids.count {
            ledger.dropped(submitter.inFlight)  // abandoned when it is dropped below
        } else {
            while submitter.inFlight > 0 { receiveOne(&submitter) }
        }
    }

    func pipelinedLoop(_ flag: SubmitterFlag) {
        defer { flag.finish() }
        var view = GraphView()
        var rng = SplitMix64(seed: configuration.seed ^ 0x5EED)
        while true {
            let (graph, stop) = current(&view)
            if stop { return }
            guard let graph else {
                usleep(200)
                continue
            }
            let window = Int.random(in: 1...max(1, min(configuration.pipelineWindow, graph.capacity)), using: &rng)
            submitThenWait(graph, remaining: window, waitInReverse: Bool.random(using: &rng))
            ledger.busy.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Submits `remaining` executions (one per stack frame: `PendingExecution` is `~Copyable`),
    /// then waits for them, newest first or oldest first.
    func submitThenWait(_ graph: CompiledGraph<Int, SoakOutput>, remaining: Int, waitInReverse: Bool) {
        guard remaining > 0 else { return }
        let id = nextID.add(1, ordering: .relaxed).newValue
        ledger.started()
        let pending: PendingExecution<SoakOutput>
        do {
            pending = try graph.submit(id)
        } catch {
            ledger.answer(id, error: error)
            pauseIfFailedForGood(error)
            return  // the graph is full or shut down: wait for what is in flight
        }
        if waitInReverse {
            submitThenWait(graph, remaining: remaining - 1, waitInReverse: waitInReverse)
            wait(pending, id)
        } else {
            // Oldest first: wait for this one, then submit and wait for the rest.
            wait(pending, id)
            submitThenWait(graph, remaining: remaining - 1, waitInReverse: waitInReverse)
        }
    }

    func wait(_ pending: consuming PendingExecution<SoakOutput>, _ id: Int) {
        do {
            ledger.answer(id, carried: try pending.wait())
        } catch {
            ledger.answer(id, error: error)
        }
    }

    /// A submitter's cached view of the current graph.
    struct GraphView {
        var generation = -1
        var graph: CompiledGraph<Int, SoakOutput>? = nil
    }
}
