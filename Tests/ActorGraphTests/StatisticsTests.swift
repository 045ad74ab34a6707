import ActorGraph
import Foundation
import Synchronization
import XCTest

/// Per-stage statistics: exact counts, sampled times, channel waits, parks; snapshots from any thread.
final class StatisticsTests: XCTestCase {
    func options(_ mode: StatisticsMode, workers: Int = 1, placement: Placement = .automatic) -> CompileOptions {
        var o = testOptions(workers: workers, placement: placement)
        o.statistics = mode
        return o
    }

    func testOffByDefaultGivesNoSnapshot() throws {
        XCTAssertEqual(CompileOptions().statistics, .off)
        let compiled = try diamondGraph().compile(testOptions())
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(1), diamondExpected(1))
        XCTAssertNil(compiled.statistics)
        XCTAssertEqual(compiled.dot(statistics: nil), compiled.dot())
    }

    func testSampleIntervalRoundsToAPowerOfTwo() {
        XCTAssertNil(StatisticsMode.off.sampleInterval)
        XCTAssertEqual(StatisticsMode.on.sampleInterval, 16)
        XCTAssertEqual(StatisticsMode.sampled(every: 0).sampleInterval, 1)
        XCTAssertEqual(StatisticsMode.sampled(every: -5).sampleInterval, 1)
        XCTAssertEqual(StatisticsMode.sampled(every: 1).sampleInterval, 1)
        XCTAssertEqual(StatisticsMode.sampled(every: 10).sampleInterval, 16)
        XCTAssertEqual(StatisticsMode.sampled(every: 1 << 30).sampleInterval, 65_536)
        XCTAssertEqual(StatisticsMode.sampled(every: 8).description, "1/8")
    }

    /// Every power of two and its neighbours land in a bucket whose range holds them, and
    /// percentiles come back within the bucket resolution.
    func testHistogramBucketsHoldTheirValues() {
        var values: [UInt64] = Array(0...40)
        for e in 3..<41 {
            let p = UInt64(1) << UInt64(e)
            values += [p - 1, p, p + 1, p + p / 3]
        }
        for v in values {
            let i = bucketIndex(of: v)
            XCTAssertLessThanOrEqual(LatencyHistogram.bucketLowerBound(i), v, "value \(v) bucket \(i)")
            if i + 1 < LatencyHistogram.bucketCount {
                XCTAssertLessThan(v, LatencyHistogram.bucketLowerBound(i + 1), "value \(v) bucket \(i)")
            }
        }
        var h = LatencyHistogram()
        XCTAssertEqual(h.p50, 0)
        XCTAssertTrue(h.isEmpty)
        h.merge(histogram(of: Array(repeating: 1_000, count: 90) + Array(repeating: 50_000, count: 10)))
        XCTAssertEqual(h.count, 100)
        XCTAssertEqual(h.sum, 90 * 1_000 + 10 * 50_000)
        XCTAssertEqual(Double(h.p50), 1_000, accuracy: 1_000 / 16)
        XCTAssertEqual(Double(h.p99), 50_000, accuracy: 50_000 / 16)
        var merged = h
        merged.merge(histogram(of: Array(repeating: 50_000, count: 100)))
        XCTAssertEqual(merged.count, 200)
        XCTAssertEqual(Double(merged.p50), 50_000, accuracy: 50_000 / 16)
    }

    /// Counts are exact, one execution in N is timed, the slow stage dominates, and the failing
    /// stage's failures and the stage behind it (skipped) are counted.
    func testCountsFailuresSampledTimesAndDominantNode() throws {
        let graph = Graph(input: Int.self) { x in
            let a = x.then(FailOnMultiples(every: 10), name: "filter")
            let slow = a.then(name: "slow") { v -> Int in
                let until = Date().addingTimeInterval(300e-6)
                while Date() < until {}
                return v
            }
            return slow.then(name: "last") { $0 + 1 }
        }
        for placement in [Placement.automatic, .spread] {
            let compiled = try graph.compile(
                options(.sampled(every: 4), workers: placement == .spread ? 2 : 1, placement: placement)
            )
            for i in 1...400 {
                if i % 10 == 0 {
                    XCTAssertThrowsError(try compiled.execute(i))
                } else {
                    XCTAssertEqual(try compiled.execute(i), i + 1)
                }
            }
            let stats = try XCTUnwrap(compiled.statistics)
            compiled.shutdown()
            XCTAssertEqual(stats.sampleInterval, 4)
            XCTAssertEqual(stats.nodes.map(\.name), ["filter", "slow", "last"])
            let filter = try XCTUnwrap(stats[node: "filter"])
            let slow = try XCTUnwrap(stats[node: "slow"])
            let last = try XCTUnwrap(stats[node: "last"])
            for node in [filter, slow, last] { XCTAssertEqual(node.executions, 400, "\(placement) \(node.name)") }
            XCTAssertEqual(filter.failures, 40)
            XCTAssertEqual(filter.skipped, 0)
            XCTAssertEqual(slow.failures, 0)
            XCTAssertEqual(slow.skipped, 40)
            XCTAssertEqual(last.skipped, 40)
            XCTAssertTrue(last.isOutput)
            // Sequences k = 0, 4, 8, … (input k + 1) are sampled: 100 of 400, the filter throws on 10 of them.
            var sampledAndPassed: UInt64 = 0
            for k in stride(from: 0, to: 400, by: 4) where (k + 1) % 10 != 0 { sampledAndPassed += 1 }
            XCTAssertEqual(filter.stageTime.count, sampledAndPassed)
            XCTAssertEqual(slow.stageTime.count, filter.stageTime.count)
            XCTAssertGreaterThanOrEqual(slow.stageTime.p50, 280_000, "the busy-wait stage takes 300 µs")
            XCTAssertEqual(stats.dominantNode?.name, "slow")
            XCTAssertNotNil(filter.channelWait, "the head reads the input ring")
            XCTAssertEqual(filter.channelWait?.count, 100, "every sampled execution waited in the input ring")
            if placement == .automatic {
                XCTAssertNil(slow.channelWait, "fused behind filter: no ring")
                XCTAssertEqual(stats.channels.count, 1)
            } else {
                XCTAssertEqual(slow.channelWait?.count, 100)
                XCTAssertEqual(stats.channels.map(\.producer), ["input", "filter", "slow"])
                XCTAssertEqual(stats.channels.map(\.consumer), ["filter", "slow", "last"])
                XCTAssertFalse(stats.channels[1].occupancy.isEmpty)
            }
            XCTAssertTrue(stats.table.contains("dominant node: slow"), stats.table)
            XCTAssertTrue(compiled.dot(statistics: stats).contains("stage p50"))
        }
    }

    /// An idle worker parks; the next submit rings its doorbell: parks and wake-ups are counted.
    /// (`submit`, not `execute`: a blocking `execute` runs the stages of a parked worker itself.)
    func testWorkerParksAndWakeUpsAreCounted() throws {
        let compiled = try Graph(input: Int.self) { $0.then { $0 + 1 } }.compile(options(.on))
        for i in 0..<5 {
            XCTAssertEqual(try compiled.submit(i).wait(), i + 1)
            Thread.sleep(forTimeInterval: 0.01)  // the worker parks (spinTime zero in tests)
        }
        compiled.shutdown()  // a still snapshot: no park is being recorded while it is read
        let worker = try XCTUnwrap(compiled.statistics?.workers.first)
        XCTAssertGreaterThanOrEqual(worker.parks, 4)
        XCTAssertGreaterThanOrEqual(worker.wakeUps, 4, "each execute after a sleep rang the doorbell")
        XCTAssertEqual(worker.parks, worker.wakeUps + worker.parkTimeouts)
        XCTAssertGreaterThan(worker.parkedNanoseconds, 0)
    }

    /// Snapshots taken on another thread while the graph runs never go backwards.
    func testSnapshotsFromAnotherThreadWhileRunning() throws {
        let compiled = try diamondGraph().compile(options(.sampled(every: 1)))
        defer { compiled.shutdown() }
        final class Flag: Sendable { let raised = Atomic<Bool>(false) }
        let done = Flag()
        let reader = Thread { [compiled] in
            var lastCount: UInt64 = 0
            while !done.raised.load(ordering: .relaxed) {
                let count = compiled.statistics?[node: "sum"]?.executions ?? 0
                precondition(count >= lastCount, "counts never go backwards")
                lastCount = count
                usleep(200)
            }
        }
        reader.start()
        for i in 0..<3_000 { XCTAssertEqual(try compiled.execute(i), diamondExpected(i)) }
        try compiled.executeAll(0..<1_000) { i, result in XCTAssertEqual(try? result.get(), diamondExpected(i)) }
        done.raised.store(true, ordering: .relaxed)
        let stats = try XCTUnwrap(compiled.statistics)
        XCTAssertEqual(stats[node: "sum"]?.executions, 4_000)
        XCTAssertEqual(stats[node: "scale"]?.stageTime.count, 4_000)
    }

    private func histogram(of values: [UInt64]) -> LatencyHistogram {
        var buckets = [UInt64](repeating: 0, count: LatencyHistogram.bucketCount)
        for v in values { buckets[bucketIndex(of: v)] += 1 }
        return LatencyHistogram(buckets: buckets, sum: values.reduce(0, +))
    }

    private func bucketIndex(of value: UInt64) -> Int {
        var i = 0
        while i + 1 < LatencyHistogram.bucketCount && LatencyHistogram.bucketLowerBound(i + 1) <= value { i += 1 }
        return i
    }
}
