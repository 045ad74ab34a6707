import ActorGraph
import ActorGraphPlatform
import Glibc
import Histogram
import Synchronization

/// What one measured loop produced.
struct Measurement: Sendable {
    var histogram: Histogram<UInt64>
    var executions: UInt64
    var elapsedNanoseconds: UInt64
    /// Allocation calls during the measured loop (whole process), when a counter was given.
    var allocations: UInt64?
    var checksum: UInt64

    var stats: LatencyStats {
        LatencyStats(histogram: histogram, executions: executions, elapsedNanoseconds: elapsedNanoseconds)
    }
}

/// Carries a value out of a thread that has been joined.
/// `@unchecked Sendable`: written by that thread only, read only after `join` (which orders the write
/// before the read).
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs `body` on a new thread pinned to `cpu` and waits for it. The measuring loops of the compiled
/// and sequential paths and the ping-pong run here, never on the cooperative pool.
func onPinnedThread<T>(name: String, cpu: Int?, _ body: sending @escaping () throws -> T) throws -> T {
    let box = Box<Result<T, any Error>?>(nil)
    let thread: PinnedThread
    do {
        thread = try PinnedThread(name: name, cpu: cpu) { box.value = Result { try body() } }
    } catch {
        throw BenchFailure(description: "pthread_create failed: \(error)")
    }
    thread.join()
    return try box.value!.get()
}

enum Measure {
    // MARK: Back-to-back latency

    /// Compiled path, blocking `execute`, one execution at a time. Every sample is one round trip
    /// timed with the vDSO monotonic clock (its ~20 ns read cost is included, as in the ping-pong).
    static func compiled<P: BenchPayload>(
        _ graph: CompiledGraph<P, P>,
        input: P,
        warmup: Int,
        iterations: Int,
        counter: AllocationCounter?
    ) throws -> Measurement {
        try blocking(input: input, warmup: warmup, iterations: iterations, counter: counter) { try graph.execute($0) }
    }

    /// Compiled path with zero-copy payloads: the input is written straight into its slot (a loan)
    /// and the output read in place in the result slot (a borrow), one execution at a time.
    static func compiledZeroCopy<P: BenchPayload>(
        _ graph: CompiledGraph<P, P>,
        input: P,
        warmup: Int,
        iterations: Int,
        counter: AllocationCounter?
    ) throws -> Measurement {
        try blocking(input: input, warmup: warmup, iterations: iterations, counter: counter) { input in
            try graph.execute(initializing: { $0 = input }, reading: { $0.checksum })
        }
    }

    /// Sequential path: every stage called in order on this thread.
    static func sequential<P: BenchPayload>(
        _ graph: SequentialGraph<P, P>,
        input: P,
        warmup: Int,
        iterations: Int,
        counter: AllocationCounter?
    ) throws -> Measurement {
        try blocking(input: input, warmup: warmup, iterations: iterations, counter: counter) { try graph.execute($0) }
    }

    /// The back-to-back loop shared by the blocking paths: warm up, then time each `execute` alone.
    private static func blocking<P: BenchPayload>(
        input: P,
        warmup: Int,
        iterations: Int,
        counter: AllocationCounter?,
        execute: (P) throws -> P
    ) throws -> Measurement {
        try blocking(input: input, warmup: warmup, iterations: iterations, counter: counter) {
            try execute($0).checksum
        }
    }

    /// The loop itself; `execute` returns the output's checksum (so a borrowed output is never copied).
    private static func blocking<P: BenchPayload>(
        input: P,
        warmup: Int,
        iterations: Int,
        counter: AllocationCounter?,
        execute: (P) throws -> UInt64
    ) throws -> Measurement {
        var checksum: UInt64 = 0
        for _ in 0..<warmup { checksum &+= try execute(input) }
        var histogram = makeLatencyHistogram()
        let allocationsBefore = counter?.read()
        let start = MonotonicClock.now()
        for _ in 0..<iterations {
            let t0 = MonotonicClock.now()
            let outputChecksum = try execute(input)
            let t1 = MonotonicClock.now()
            checksum &+= outputChecksum
            _ = histogram.record(t1 &- t0)
        }
        let elapsed = MonotonicClock.now() &- start
        let allocations = counter.map { $0.read() &- allocationsBefore! }
        return Measurement(
            histogram: histogram,
            executions: UInt64(iterations),
            elapsedNanoseconds: elapsed,
            allocations: allocations,
            checksum: checksum
        )
    }

    /// Dynamic path: a Swift Concurrency task per node per execution, awaited from this task.
    static func dynamic<P: BenchPayload>(
        _ graph: DynamicGraph<P, P>,
        input: P,
        warmup: Int,
        iterations: Int,
        counter: AllocationCounter?
    ) async throws -> Measurement {
        var checksum: UInt64 = 0
        for _ in 0..<warmup { checksum &+= try await graph.execute(input).checksum }
        var histogram = makeLatencyHistogram()
        let allocationsBefore = counter?.read()
        let start = MonotonicClock.now()
        for _ in 0..<iterations {
            let t0 = MonotonicClock.now()
            let output = try await graph.execute(input)
            let t1 = MonotonicClock.now()
            checksum &+= output.checksum
            _ = histogram.record(t1 &- t0)
        }
        let elapsed = MonotonicClock.now() &- start
        let allocations = counter.map { $0.read() &- allocationsBefore! }
        return Measurement(
            histogram: histogram,
            executions: UInt64(iterations),
            elapsedNanoseconds: elapsed,
            allocations: allocations,
            checksum: checksum
        )
    }

    // MARK: Paced load (Disruptor style)

    /// One execution every `periodNanoseconds`, each latency measured from its *intended* start, so a
    /// slow execution also charges the ones queued behind it (no coordinated omission).
    static func pacedCompiled<P: BenchPayload>(
        _ graph: CompiledGraph<P, P>,
        input: P,
        periodNanoseconds: UInt64,
        iterations: Int
    ) throws -> Measurement {
        var checksum: UInt64 = 0
        for _ in 0..<1_000 { checksum &+= try graph.execute(input).checksum }
        var histogram = makeLatencyHistogram()
        let start = MonotonicClock.now() &+ 100_000
        for i in 0..<iterations {
            let intended = start &+ UInt64(i) &* periodNanoseconds
            while MonotonicClock.now() < intended { CPU.relax() }
            checksum &+= try graph.execute(input).checksum
            _ = histogram.record(MonotonicClock.now() &- intended)
        }
        let elapsed = MonotonicClock.now() &- start
        return Measurement(
            histogram: histogram,
            executions: UInt64(iterations),
            elapsedNanoseconds: elapsed,
            allocations: nil,
            checksum: checksum
        )
    }

    static func pacedDynamic<P: BenchPayload>(
        _ graph: DynamicGraph<P, P>,
        input: P,
        periodNanoseconds: UInt64,
        iterations: Int
    ) async throws -> Measurement {
        var checksum: UInt64 = 0
        for _ in 0..<200 { checksum &+= try await graph.execute(input).checksum }
        var histogram = makeLatencyHistogram()
        let start = MonotonicClock.now() &+ 100_000
        for i in 0..<iterations {
            let intended = start &+ UInt64(i) &* periodNanoseconds
            while MonotonicClock.now() < intended { CPU.relax() }
            checksum &+= try await graph.execute(input).checksum
            _ = histogram.record(MonotonicClock.now() &- intended)
        }
        let elapsed = MonotonicClock.now() &- start
        return Measurement(
            histogram: histogram,
            executions: UInt64(iterations),
            elapsedNanoseconds: elapsed,
            allocations: nil,
            checksum: checksum
        )
    }

    // MARK: Pipelined throughput

    /// Keeps `window` executions in flight: submit ahead, wait behind, in order. Returns the best of
    /// `rounds` rounds of `executions` each, and the allocations over all rounds.
    /// `batch` selects the batch API (`executeAll`) instead of one `submit` + `wait` per execution;
    /// `exclusive` one `submit` per execution through an ``ExclusiveSubmitter``.
    static func pipelinedCompiled(
        _ graph: CompiledGraph<UInt64, UInt64>,
        window: Int,
        executions: Int,
        rounds: Int,
        batch: Bool = false,
        exclusive: Bool = false,
        counter: AllocationCounter?
    ) throws -> (perSecond: [Double], allocationsPerExecution: Double?, checksum: UInt64) {
        let window = max(1, min(window, graph.capacity))
        let ring = PipelinedDriver.Window(window)
        var checksum: UInt64 = 0
        var rates: [Double] = []
        rates.reserveCapacity(rounds + 1)
        func round(_ n: Int) throws(ExecutionError) -> UInt64 {
            let start = MonotonicClock.now()
            checksum &+=
                batch
                ? try BenchDrivers.batched(graph, executions: n, window: window)
                : exclusive
                    ? try BenchDrivers.exclusive(graph, executions: n, window: window)
                    : try PipelinedDriver.run(graph, executions: n, window: ring)
            return MonotonicClock.now() &- start
        }
        _ = try round(min(executions, 100_000))  // warm-up
        let allocationsBefore = counter?.read()
        for _ in 0..<rounds {
            let elapsed = try round(executions)
            rates.append(Double(executions) * 1e9 / Double(max(1, elapsed)))
        }
        let allocations = counter.map { Double($0.read() &- allocationsBefore!) / Double(executions * rounds) }
        return (rates, allocations, checksum)
    }

    /// The dynamic path with `window` executions in flight (a task group refilled as results arrive).
    static func pipelinedDynamic(
        _ graph: DynamicGraph<UInt64, UInt64>,
        window: Int,
        executions: Int
    ) async throws -> Double {
        let start = MonotonicClock.now()
        _ = try await withThrowingTaskGroup(of: UInt64.self) { group in
            var submitted = 0
            var sum: UInt64 = 0
            while submitted < min(window, executions) {
                let i = UInt64(submitted)
                group.addTask { try await graph.execute(i) }
                submitted += 1
            }
            while let value = try await group.next() {
                sum &+= value
                if submitted < executions {
                    let i = UInt64(submitted)
                    group.addTask { try await graph.execute(i) }
                    submitted += 1
                }
            }
            return sum
        }
        return Double(executions) * 1e9 / Double(max(1, MonotonicClock.now() &- start))
    }

    // MARK: Physical limit

    /// Isolated-worker recovery: `kills` times, SIGKILL the worker process and time from the kill to
    /// the next successful execution (executions answered with `workerCrashed` meanwhile are retried).
    /// With `standby`, each round first waits until the standby process is there (and 200 ms for it
    /// to stand by), so that every kill is recovered by activation.
    static func recovery(
        _ graph: CompiledGraph<UInt64, UInt64>,
        kills: Int,
        standby: Bool = false
    ) throws -> Measurement {
        var histogram = makeLatencyHistogram()
        var checksum: UInt64 = 0
        let start = MonotonicClock.now()
        for _ in 0..<kills {
            for _ in 0..<1_000 { checksum &+= try graph.execute(7) }
            if standby {
                var waited = 0
                while (graph.isolationStatistics.standbyProcessIDs.first ?? 0) == 0 && waited < 5_000 {
                    usleep(1_000)
                    waited += 1
                }
                usleep(200_000)
                for _ in 0..<1_000 { checksum &+= try graph.execute(7) }
            }
            // The restarted worker may serve executions a few ms before the supervisor records its pid.
            var pid = graph.isolationStatistics.workerProcessIDs.first ?? 0
            var waited = 0
            while pid <= 0 && waited < 5_000 {
                usleep(1_000)
                waited += 1
                pid = graph.isolationStatistics.workerProcessIDs.first ?? 0
            }
            guard pid > 0 else { throw BenchFailure(description: "no worker process to kill after 5 s") }
            let t0 = MonotonicClock.now()
            kill(pid, SIGKILL)
            while true {
                do {
                    checksum &+= try graph.execute(7)
                    break
                } catch {
                    guard case .workerCrashed = error else { throw error }
                }
            }
            _ = histogram.record(MonotonicClock.now() &- t0)
        }
        return Measurement(
            histogram: histogram,
            executions: UInt64(kills),
            elapsedNanoseconds: MonotonicClock.now() &- start,
            allocations: nil,
            checksum: checksum
        )
    }

    /// Two threads pinned to two CPUs bounce one cache line (`Synchronization.Atomic`): the initiator
    /// stores an odd value and spins until the responder answers with the next even one. Each sample
    /// is one round trip, timed like the engine's. `pause` selects whether the spin loops use the
    /// `pause` hint, as the engine's spin loops do.
    static func pingPong(cpus: (Int?, Int?), warmup: Int, iterations: Int, pause: Bool) throws -> Measurement {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        defer { raw.deallocate() }
        let flag = raw.bindMemory(to: Atomic<UInt64>.self, capacity: 1)
        flag.initialize(to: Atomic(0))
        let total = warmup + iterations
        let ready = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
        ready.initialize(to: Atomic(0))
        defer { ready.deallocate() }
        let flagAddress = UInt(bitPattern: flag)
        let readyAddress = UInt(bitPattern: ready)
        let responder: PinnedThread
        do {
            responder = try PinnedThread(name: "ag-pong", cpu: cpus.1) {
                let flag = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: flagAddress)!
                UnsafeMutablePointer<Atomic<Int>>(bitPattern: readyAddress)!.pointee.store(1, ordering: .releasing)
                var expected: UInt64 = 1
                for _ in 0..<total {
                    if pause {
                        while flag.pointee.load(ordering: .acquiring) != expected { CPU.relax() }
                    } else {
                        while flag.pointee.load(ordering: .acquiring) != expected {}
                    }
                    flag.pointee.store(expected &+ 1, ordering: .releasing)
                    expected &+= 2
                }
            }
        } catch {
            throw BenchFailure(description: "pthread_create failed: \(error)")
        }
        defer { responder.join() }
        return try onPinnedThread(name: "ag-ping", cpu: cpus.0) {
            let flag = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: flagAddress)!
            let ready = UnsafeMutablePointer<Atomic<Int>>(bitPattern: readyAddress)!
            while ready.pointee.load(ordering: .acquiring) == 0 { CPU.relax() }
            var histogram = makeLatencyHistogram()
            var value: UInt64 = 1
            var start: UInt64 = 0
            for i in 0..<total {
                if i == warmup { start = MonotonicClock.now() }
                let t0 = MonotonicClock.now()
                flag.pointee.store(value, ordering: .releasing)
                let answer = value &+ 1
                if pause {
                    while flag.pointee.load(ordering: .acquiring) != answer { CPU.relax() }
                } else {
                    while flag.pointee.load(ordering: .acquiring) != answer {}
                }
                let t1 = MonotonicClock.now()
                if i >= warmup { _ = histogram.record(t1 &- t0) }
                value &+= 2
            }
            let elapsed = MonotonicClock.now() &- start
            return Measurement(
                histogram: histogram,
                executions: UInt64(iterations),
                elapsedNanoseconds: elapsed,
                allocations: nil,
                checksum: value
            )
        }
    }

    /// The cost of one clock read (back-to-back `MonotonicClock.now()`), included in every sample.
    static func clockOverhead(iterations: Int) -> UInt64 {
        var histogram = makeLatencyHistogram()
        for _ in 0..<iterations {
            let t0 = MonotonicClock.now()
            let t1 = MonotonicClock.now()
            _ = histogram.record(t1 &- t0)
        }
        return histogram.valueAtPercentile(50)
    }
}
