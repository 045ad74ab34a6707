import ActorGraphPlatform
import Glibc
import Synchronization
import XCTest

@testable import ActorGraph

/// Wait strategies: every strategy answers every execution correctly while threads move between
/// spinning, yielding and parking (bursts separated by idle gaps that cross the park threshold),
/// and the adaptive one's contention picture is what the counts say. No timing is asserted.
final class WaitStrategyTests: XCTestCase {
    /// Bursts of pipelined submits with idle gaps of 0 to ~300 µs between them: each gap ends with
    /// the worker and the caller in a different phase (spinning, yielding, or parked with the
    /// announce/re-check protocol), and the next burst must wake them. Every result is checked.
    private func runBursts(
        _ strategy: WaitStrategy,
        workers: Int = 1,
        placement: Placement = .automatic,
        bursts: Int = 400,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let policy = IdlePolicy(
            workerSpins: 256,
            callerSpins: 256,
            spinTime: .microseconds(50),
            parkTimeout: .milliseconds(50),
            strategy: strategy
        )
        let compiled = try diamondGraph().compile(
            CompileOptions(
                workers: workers,
                capacity: 64,
                pinWorkers: false,
                idle: policy,
                submitTimeout: .seconds(10),
                placement: placement
            )
        )
        defer { compiled.shutdown() }
        var generator = SystemRandomNumberGenerator()
        var x = 0
        for burst in 0..<bursts {
            let size = 1 + Int(generator.next() % 40)
            if burst % 3 == 0 {
                // Back to back, one at a time.
                for _ in 0..<size {
                    x += 1
                    XCTAssertEqual(try compiled.execute(x), diamondExpected(x), file: file, line: line)
                }
            } else {
                // Pipelined: submit ahead, wait behind.
                let pending = UnsafeMutablePointer<PendingExecution<Int>>.allocate(capacity: size)
                defer { pending.deallocate() }
                let first = x + 1
                for i in 0..<size {
                    x += 1
                    (pending + i).initialize(to: try compiled.submit(x))
                }
                for i in 0..<size {
                    let result = try (pending + i).move().wait()
                    XCTAssertEqual(result, diamondExpected(first + i), file: file, line: line)
                }
            }
            // An idle gap: none, shorter than spinTime, or longer (everyone parks).
            switch generator.next() % 4 {
            case 0: break
            case 1: for _ in 0..<Int(generator.next() % 2_000) { CPU.relax() }
            default:
                var pause = timespec(tv_sec: 0, tv_nsec: Int(generator.next() % 300_000))
                nanosleep(&pause, nil)
            }
        }
    }

    func testAdaptiveAnswersEveryExecutionAcrossIdleGaps() throws {
        try runBursts(.adaptive)
    }

    func testAdaptiveOversubscribedAnswersEveryExecution() throws {
        // 3 unpinned workers + this thread on (at most) 2 CPUs: crowded, so threads yield, then park.
        try runBursts(.adaptive, workers: 3, placement: .spread)
    }

    func testBlockingAnswersEveryExecution() throws {
        try runBursts(.blocking, workers: 2, placement: .spread)
    }

    func testYieldingAnswersEveryExecution() throws {
        try runBursts(.yielding, bursts: 200)
    }

    func testBusySpinAnswersEveryExecution() throws {
        // One worker + this thread: never more busy spinners than the 2 cores.
        try runBursts(.busySpin, bursts: 200)
    }

    /// Several callers at once on an oversubscribed adaptive graph: callers enter and leave the
    /// waiting count, workers move between phases, every caller gets its own answers.
    func testConcurrentCallersOnAnOversubscribedGraph() throws {
        let compiled = try diamondGraph().compile(
            CompileOptions(
                workers: 2,
                capacity: 64,
                pinWorkers: false,
                idle: IdlePolicy(
                    workerSpins: 256,
                    callerSpins: 256,
                    spinTime: .microseconds(20),
                    parkTimeout: .milliseconds(50)
                )
            )
        )
        defer { compiled.shutdown() }
        let failures = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        var threads: [PinnedThread] = []
        for t in 0..<3 {
            threads.append(
                try PinnedThread(name: "caller\(t)", cpu: nil) { @Sendable in
                    for i in 0..<3_000 {
                        let x = t * 100_000 + i
                        if (try? compiled.execute(x)) != diamondExpected(x) { failures.add(1, ordering: .relaxed) }
                        if i % 500 == 0 {
                            var pause = timespec(tv_sec: 0, tv_nsec: 200_000)
                            nanosleep(&pause, nil)
                        }
                    }
                    done.add(1, ordering: .relaxed)
                }
            )
        }
        threads.forEach { $0.join() }
        XCTAssertEqual(done.load(ordering: .relaxed), 3)
        XCTAssertEqual(failures.load(ordering: .relaxed), 0)
    }

    /// A waiter parked under any strategy is answered at shutdown (never hangs).
    func testShutdownAnswersWaitersUnderEveryStrategy() throws {
        for strategy in [WaitStrategy.adaptive, .blocking, .yielding, .busySpin] {
            let gate = StageGate()
            let graph = Graph(input: Int.self) { x in
                x.then(name: "gate") { v -> Int in
                    while gate.open.load(ordering: .acquiring) == 0 {
                        var p = timespec(tv_sec: 0, tv_nsec: 100_000)
                        nanosleep(&p, nil)
                    }
                    return v
                }
            }
            let compiled = try graph.compile(
                CompileOptions(
                    workers: 1,
                    capacity: 8,
                    pinWorkers: false,
                    idle: IdlePolicy(
                        workerSpins: 64,
                        callerSpins: 64,
                        spinTime: .zero,
                        parkTimeout: .milliseconds(20),
                        strategy: strategy
                    )
                )
            )
            let outcome = Atomic<Int>(0)  // 1: shut down, 2: other
            let waiter = try PinnedThread(name: "waiter", cpu: nil) {
                do {
                    _ = try compiled.execute(1)
                    outcome.store(2, ordering: .releasing)
                } catch {
                    if case .shutDown? = error as? ExecutionError {
                        outcome.store(1, ordering: .releasing)
                    } else {
                        outcome.store(3, ordering: .releasing)
                    }
                }
            }
            var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
            nanosleep(&pause, nil)
            // Shut down while the stage holds the worker; release it so the worker can stop.
            let stopper = try PinnedThread(name: "stopper", cpu: nil) { compiled.shutdown() }
            nanosleep(&pause, nil)
            gate.open.store(1, ordering: .releasing)
            stopper.join()
            waiter.join()
            // Either the result made it out before the stop, or the waiter was told: never a hang.
            XCTAssertTrue([1, 2].contains(outcome.load(ordering: .acquiring)), "\(strategy)")
        }
    }

    /// The contention picture: workers count while not parked for idleness and leave the count
    /// when their graph shuts down; the verdict follows the count against the effective CPUs.
    func testContentionCountsFollowWorkersAndVerdictFollowsCounts() throws {
        let before = Contention.shared.activeWorkers.load(ordering: .relaxed)
        let compiled = try diamondGraph().compile(
            CompileOptions(
                workers: 3,
                capacity: 64,
                pinWorkers: false,
                idle: IdlePolicy(
                    workerSpins: 64,
                    callerSpins: 64,
                    spinTime: .seconds(10),
                    parkTimeout: .milliseconds(20)
                )
            )
        )
        XCTAssertEqual(try compiled.execute(2), diamondExpected(2))
        // Busy or spinning workers (spinTime 10 s: none parks for idleness) are counted.
        var deadline = MonotonicClock.now() + 2_000_000_000
        while Contention.shared.activeWorkers.load(ordering: .relaxed) < before + 3 && MonotonicClock.now() < deadline {
            CPU.yield()
        }
        XCTAssertEqual(Contention.shared.activeWorkers.load(ordering: .relaxed), before + 3)
        // 3 workers + a caller on the allowed CPUs is more than 2 CPUs' worth whenever the mask has fewer than 4.
        if CPU.allowedCPUs().count < 4 {
            XCTAssertNotEqual(Contention.shared.verdict(now: MonotonicClock.now()), .quiet)
        }
        compiled.shutdown()
        deadline = MonotonicClock.now() + 2_000_000_000
        while Contention.shared.activeWorkers.load(ordering: .relaxed) > before && MonotonicClock.now() < deadline {
            CPU.yield()
        }
        XCTAssertEqual(Contention.shared.activeWorkers.load(ordering: .relaxed), before)
        XCTAssertEqual(Contention.shared.waitingCallers.load(ordering: .relaxed), 0)
    }

    /// Back-off phases of one thread, driven directly: blocking parks at once, busy-spin never,
    /// adaptive spins first and parks once idle for `spinTime` after `spins` polls.
    func testBackoffPhases() {
        var blocking = Backoff(policy: IdlePolicy(strategy: .blocking), role: .caller)
        XCTAssertEqual(blocking.idle(), .park)
        blocking.finish()
        var spin = Backoff(
            policy: IdlePolicy(workerSpins: 1, callerSpins: 1, spinTime: .zero, strategy: .busySpin),
            role: .caller
        )
        for _ in 0..<10_000 { XCTAssertEqual(spin.idle(), .retry) }
        spin.finish()
        var yielding = Backoff(policy: IdlePolicy(strategy: .yielding), role: .caller)
        for _ in 0..<1_000 { XCTAssertEqual(yielding.idle(), .retry) }
        yielding.finish()
        // Adaptive with no graph running (quiet): retries until `spins` polls and `spinTime`, then parks.
        var adaptive = Backoff(policy: IdlePolicy(workerSpins: 512, callerSpins: 512, spinTime: .zero), role: .caller)
        var polls = 0
        while adaptive.idle() == .retry && polls < 1_000_000 { polls += 1 }
        XCTAssertLessThan(polls, 1_000_000, "adaptive never parked")
        XCTAssertGreaterThanOrEqual(polls, 511)
        adaptive.progressed()
        adaptive.finish()
        XCTAssertEqual(Contention.shared.waitingCallers.load(ordering: .relaxed), 0)
    }
}

/// A flag a stage polls (shared with the test thread).
final class StageGate: Sendable {
    let open = Atomic<Int>(0)
}
