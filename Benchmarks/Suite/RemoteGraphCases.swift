import ActorGraph
import ActorGraphPlatform
import Glibc

/// Graphs spanning two hosts for the remote cases: their stages run on host `b` (a piece, e.g. in
/// the rig's agrig-b), the caller on the owner.
public enum RemoteBenchGraphs {
    /// `remote.echo`: one stage on `b` returning its input.
    public static func echo() -> Graph<UInt64, UInt64> {
        Graph(input: UInt64.self) { x in x.then(name: "remote-echo") { $0 }.on("b") }
    }

    /// `remote.chain3`: three fused stages on `b` (one crossing each way per execution).
    public static func chain3() -> Graph<UInt64, UInt64> {
        Graph(input: UInt64.self) { x in
            x.then(name: "r1") { $0 &+ 1 }.on("b").then(name: "r2") { $0 &* 3 }.on("b").then(name: "r3") { $0 &- 2 }.on(
                "b"
            )
        }
    }

    public static var all: [any IsolatableGraph] { [echo(), chain3()] }
}

/// The owner's half of `remote.echo` and `remote.chain3.pipelined` (run by the hidden
/// `actorgraph remote-bench` command, inside the rig's agrig-a or on loopback). Prints one line each:
///
///     remote-bench: echo p50_ns=… p99_ns=… p999_ns=… max_ns=… count=N
///     remote-bench: chain3.pipelined per_s=… count=N
public enum RemoteBenchOwner {
    /// `allocations`: the process's allocation calls so far (the counting `malloc` of the
    /// `actorgraph` binary); each line then says how many the measured loop made per execution.
    public static func run(
        piece: PieceAddress,
        count: Int,
        warmup: Int,
        pipelined: Int,
        strategy: WaitStrategy = .adaptive,
        allocations: (@Sendable () -> UInt64)? = nil
    ) throws -> [String] {
        func perExecution(_ before: UInt64?, _ n: Int) -> String {
            guard let before, let allocations else { return "" }
            return " allocs_per_execution=\(fmt(Double(allocations() &- before) / Double(max(1, n)), 3))"
        }
        var options = CompileOptions(workers: 1, idle: IdlePolicy(strategy: strategy))
        options.remote.hosts = ["b": [piece]]
        var lines: [String] = []
        do {
            let compiled = try RemoteBenchGraphs.echo().compile(options)
            defer { compiled.shutdown() }
            for i in 0..<warmup { _ = try compiled.execute(UInt64(i)) }
            var samples = [UInt64](repeating: 0, count: count)
            let before = allocations?()
            for i in 0..<count {
                let t0 = MonotonicClock.now()
                let v = try compiled.execute(UInt64(i))
                samples[i] = MonotonicClock.now() &- t0
                guard v == UInt64(i) else { throw CompileError.invalidOption("remote echo returned \(v) for \(i)") }
            }
            let allocationText = perExecution(before, count)
            samples.sort()
            func rank(_ q: Double) -> UInt64 {
                samples[min(samples.count - 1, Int((q * Double(samples.count)).rounded(.up)) - 1)]
            }
            lines.append(
                "remote-bench: echo p50_ns=\(rank(0.5)) p99_ns=\(rank(0.99)) p999_ns=\(rank(0.999)) max_ns=\(samples.last!) count=\(count)\(allocationText)"
            )
        }
        do {
            options.capacity = 1024
            let compiled = try RemoteBenchGraphs.chain3().compile(options)
            defer { compiled.shutdown() }
            var sum: UInt64 = 0
            var failures = 0
            let n = max(1, pipelined)
            _ = try compiled.execute(0)
            let before = allocations?()
            let t0 = MonotonicClock.now()
            try compiled.executeAll(UInt64(0)..<UInt64(n), window: 512) { _, result in
                if case .success(let v) = result { sum &+= v } else { failures += 1 }
            }
            let elapsed = MonotonicClock.now() &- t0
            let allocationText = perExecution(before, n)
            guard failures == 0 else {
                throw CompileError.invalidOption("remote chain3: \(failures) executions failed")
            }
            lines.append(
                "remote-bench: chain3.pipelined per_s=\(UInt64(Double(n) * 1e9 / Double(max(1, elapsed)))) count=\(n) checksum=\(sum)\(allocationText)"
            )
        }
        return lines
    }
}
