import ActorGraph
import ActorGraphPlatform
import Foundation
import Synchronization
import XCTest

/// A pinned worker floats over the CPUs no worker is pinned to while it parks and pins itself again when traffic
/// is dense (`WorkerAffinity.swift`), observed from outside through `/proc/self/task/*/status`.
final class WorkerAffinityTests: XCTestCase {
    /// The CPUs the worker thread named `name` may run on now (`Cpus_allowed_list`), or nil.
    private func allowedCPUs(ofThread name: String) -> [Int]? {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return nil }
        for tid in tasks {
            guard let comm = try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8),
                comm.trimmingCharacters(in: .whitespacesAndNewlines) == name,
                let status = try? String(contentsOfFile: "/proc/self/task/\(tid)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
            else { continue }
            var cpus: [Int] = []
            for part in line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).split(
                separator: ","
            ) {
                let bounds = part.split(separator: "-").compactMap { Int($0) }
                if bounds.count == 2 {
                    cpus += Array(bounds[0]...bounds[1])
                } else if let one = bounds.first {
                    cpus.append(one)
                }
            }
            return cpus
        }
        return nil
    }

    /// Polls (bounded) until `condition` holds for the worker's allowed CPUs; returns the last seen.
    private func waitForAffinity(_ condition: ([Int]) -> Bool, while work: () throws -> Void) rethrows -> [Int]? {
        let deadline = ContinuousClock.now + .seconds(10)
        var seen = allowedCPUs(ofThread: "actorgraph-w0")
        while ContinuousClock.now < deadline {
            if let cpus = seen, condition(cpus) { return cpus }
            try work()
            seen = allowedCPUs(ofThread: "actorgraph-w0")
        }
        return seen
    }

    /// The CPU the plan pins worker 0 to ("worker 0 (CPU 1)" in the DOT); skips where nothing is pinned.
    private func pinnedCPU<I, O>(of compiled: CompiledGraph<I, O>) throws -> Int {
        let dot = compiled.dot()
        guard let marker = dot.range(of: "(CPU "),
            let cpu = Int(dot[marker.upperBound...].prefix(while: \.isNumber))
        else {
            throw XCTSkip("the compiler did not pin the worker here (one CPU, or a quota): nothing floats")
        }
        return cpu
    }

    func testAParkedWorkerFloatsAndDenseTrafficPinsItAgain() throws {
        let graph = Graph(input: Int.self) { x in x.then(name: "double") { $0 * 2 } }
        var options = CompileOptions(workers: 1, capacity: 256)
        // Long enough that every park between two batches counts as short even in a sanitizer build
        // (a park shorter than the spin time is what pins the worker again), short enough to idle past.
        options.idle.spinTime = .milliseconds(50)
        let compiled = try graph.compile(options)
        defer { compiled.shutdown() }
        // On 2 CPUs the floating set has one CPU too, so the test compares sets, not sizes.
        let cpu = try pinnedCPU(of: compiled)
        let ownCPU = [cpu]

        // Busy: pinned to its CPU.
        XCTAssertEqual(try compiled.submit(1).wait(), 2)
        let pinned = try waitForAffinity({ $0 == ownCPU }) { XCTAssertEqual(try compiled.submit(2).wait(), 4) }
        XCTAssertEqual(pinned, ownCPU, "a busy worker is pinned (\(pinned ?? []))")

        // Idle: it parks and floats over the CPUs no worker is pinned to (one worker here: all but its own).
        let floating = waitForAffinity({ $0 != ownCPU }) { usleep(2_000) }
        XCTAssertNotNil(floating, "a parked worker floats")
        XCTAssertFalse(floating?.contains(cpu) ?? true, "it floats off its own CPU (\(floating ?? []))")
        XCTAssertGreaterThan(compiled.diagnostics.parkCounts.reduce(0, +), 0)

        // Dense traffic (batches a few µs apart): short doorbell parks pin it again, and every result is right.
        let inputs = Array(0..<64)
        let repinned = try waitForAffinity({ $0 == ownCPU }) {
            var sum = 0
            try compiled.executeAll(inputs) { _, result in sum += (try? result.get()) ?? -1_000_000 }
            XCTAssertEqual(sum, inputs.reduce(0, +) * 2)
        }
        XCTAssertEqual(repinned, ownCPU, "dense traffic pins the worker again (\(repinned ?? []))")
    }

    /// A caller that rings the parked, floating worker narrows it to the caller's own CPU first
    /// (`WakeSteering.swift`), so the wake-up is local: seen here from a caller pinned to the worker's
    /// own CPU, which is outside the float set.
    func testARingingCallerSteersTheFloatingWorkerToItsCPU() throws {
        let graph = Graph(input: Int.self) { x in x.then(name: "double") { $0 * 2 } }
        var options = CompileOptions(workers: 1, capacity: 64)
        options.callerTakeover = false  // so that a blocking execute rings the parked worker
        let compiled = try graph.compile(options)
        defer { compiled.shutdown() }
        let cpu = try pinnedCPU(of: compiled)
        XCTAssertEqual(try compiled.execute(1), 2)
        // Idle: parked and floating off its own CPU (the parks end by timeout: nothing pins it again).
        let floating = waitForAffinity({ !$0.contains(cpu) }) { usleep(2_000) }
        XCTAssertFalse(floating?.contains(cpu) ?? true, "a parked worker floats off its CPU (\(floating ?? []))")

        // A caller on the worker's own CPU executes (a ring: take-over is off) and waits.
        let results = Mutex<[Int]>([])
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            guard CPU.pinCurrentThread(to: cpu) else { return }
            for x in 1...3 {
                if let y = try? compiled.execute(x) { results.withLock { $0.append(y) } }
                usleep(20_000)  // longer than the spin: every execution rings a parked worker
            }
        }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(results.withLock { $0 }, [2, 4, 6])
        XCTAssertEqual(
            allowedCPUs(ofThread: "actorgraph-w0"),
            [cpu],
            "rung from CPU \(cpu), the parked worker was steered there"
        )
    }
}
