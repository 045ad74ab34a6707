import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import Glibc
import Histogram
import Synchronization

// Latency as a service sees it (issue 14, point 6): the caller is an ordinary unpinned thread (or a
// Task) that sleeps between requests, not the pinned measuring thread spinning in a tight loop,
// which hides wake-up and scheduling costs. Every case runs its baselines in the same run.

/// One path of one service case.
public struct ServiceResult: Codable, Sendable {
    /// The case: `poisson.chain3.1000`, `competing.poisson.chain3.1000`, `idle.echo.20ms`,
    /// `unpinned.echo`, `serve.udp.200`.
    public var name: String
    /// `compiled`, `dynamic`, `actors`, `semaphore`, `process`, `actor`, `serve`, `udp-echo`;
    /// `unpinned.echo`: `compiled.first`, `compiled.next`, `process.first`, `process.next`.
    public var path: String
    /// Who called: an unpinned thread or a detached Task.
    public var caller: String
    /// Bytes of one request: 8 (`UInt64`), 40 for `serve.udp` (one telematics record).
    public var payloadBytes: Int = 8
    /// Latency from the call itself (`execute`, `send`), ns; throughput is the rate achieved.
    public var stats: LatencyStats
    /// Open-loop cases: latency from the intended arrival time (includes the caller's own lateness
    /// and any queueing behind a slow earlier request).
    public var fromIntended: LatencyStats?
    /// Open-loop cases: how late the caller started each request (wake-up of the sleeping caller).
    public var callerLateness: LatencyStats?
    /// Requests scheduled; more than `stats.count` when the time limit cut the run short.
    public var requested: Int
    /// `serve.udp`: requests with no reply within the receive timeout (not in the histograms).
    public var lost: Int = 0
    /// What else the run saw (park counts, CPU shares).
    public var note: String = ""
}

/// What the service cases measured, in run order.
public struct ServiceResults: Codable, Sendable {
    /// Every path of every service case that ran.
    public var results: [ServiceResult] = []
    /// Skipped cases and why.
    public var notes: [String] = []
}

/// The service cases of `actorgraph bench`: `poisson.chain3.<rate>`, `competing.poisson.chain3.<rate>`,
/// `idle.echo.<ms>ms`, `unpinned.echo`, `serve.udp.<rate>`.
enum ServiceCases {
    static let poissonRates = [1_000, 10_000, 100_000]
    static let idleMilliseconds = [1, 20, 150]
    static let serveRates = [200, 1_000, 10_000]

    static var names: [String] {
        poissonRates.map { "poisson.chain3.\($0)" } + poissonRates.map { "competing.poisson.chain3.\($0)" }
            + idleMilliseconds.map { "idle.echo.\($0)ms" } + ["unpinned.echo"] + serveRates.map { "serve.udp.\($0)" }
            + ["poisson", "competing", "idle", "unpinned", "serve"]
    }

    /// Requests and samples per case.
    struct Sizes {
        var poissonRequests: [Int: Int]
        var idleSamples: Int
        var unpinnedBlock: Int
        var serveRequests: [Int: Int]

        // Quick: about 2.7 s of schedule per path and rate, ~10 s per idle path set, so the quick
        // run of every service case stays near a minute.
        static let quick = Sizes(
            poissonRequests: [1_000: 2_000, 10_000: 5_000, 100_000: 20_000],
            idleSamples: 10,
            unpinnedBlock: 20_000,
            serveRequests: [200: 400, 1_000: 1_000, 10_000: 3_000]
        )
        static let full = Sizes(
            poissonRequests: [1_000: 5_000, 10_000: 30_000, 100_000: 100_000],
            idleSamples: 30,
            unpinnedBlock: 200_000,
            serveRequests: [200: 1_000, 1_000: 2_000, 10_000: 20_000]
        )
    }

    /// Runs the selected service cases; `nil` when none is selected.
    static func run(_ options: BenchOptions) async throws -> ServiceResults? {
        let selectedPoisson = poissonRates.filter { options.includes("poisson.chain3.\($0)") }
        let selectedCompeting = poissonRates.filter { options.includes("competing.poisson.chain3.\($0)") }
        let selectedIdle = idleMilliseconds.filter { options.includes("idle.echo.\($0)ms") }
        let unpinned = options.includes("unpinned.echo")
        let selectedServe = serveRates.filter { options.includes("serve.udp.\($0)") }
        guard
            !(selectedPoisson.isEmpty && selectedCompeting.isEmpty && selectedIdle.isEmpty && !unpinned
                && selectedServe.isEmpty)
        else {
            return nil
        }
        let sizes = options.quick ? Sizes.quick : Sizes.full
        var out = ServiceResults()
        say("service cases: unpinned callers that sleep between requests; every case beside its baselines")
        for rate in selectedPoisson {
            out.results += try await poisson(
                name: "poisson.chain3.\(rate)",
                rate: rate,
                count: sizes.poissonRequests[rate]!
            )
        }
        if !selectedCompeting.isEmpty {
            let allowed = CPU.allowedCPUs()
            let hogs = BusyNeighbours(count: allowed.count)
            // Killed on every exit path: here, by deinit, and by themselves if this process dies.
            defer { hogs.stop() }
            say("  \(hogs.started) busy process(es) started, one per allowed CPU")
            for rate in selectedCompeting {
                out.results += try await poisson(
                    name: "competing.poisson.chain3.\(rate)",
                    rate: rate,
                    count: sizes.poissonRequests[rate]!,
                    extra: "\(hogs.started) busy processes"
                )
            }
        }
        if !selectedIdle.isEmpty {
            out.results += try await idle(selectedIdle, samples: sizes.idleSamples)
        }
        if unpinned {
            out.results += try await unpinnedEcho(block: sizes.unpinnedBlock)
        }
        if !selectedServe.isEmpty {
            if case .failure(let errno) = IORing.probe() {
                let note = "serve.udp skipped: io_uring refused on this host (\(errno))"
                out.notes.append(note)
                say("  \(note)")
            } else {
                for rate in selectedServe {
                    out.results += try await serve(rate: rate, count: sizes.serveRequests[rate]!)
                }
            }
        }
        return out
    }

    // MARK: Poisson arrivals

    /// chain3 on four paths, one seeded arrival schedule: compiled and semaphore pair from an unpinned
    /// thread, dynamic and plain actors from a detached Task (their callers are async code).
    static func poisson(name: String, rate: Int, count: Int, extra: String = "") async throws -> [ServiceResult] {
        // Seeded by the rate only: the quiet and the competing run of a rate replay the same arrivals.
        let schedule = ArrivalSchedule.poisson(rate: rate, count: count, seed: 0x5EED_0000 &+ UInt64(rate))
        var results: [ServiceResult] = []

        // Compiled chain3, default options, called from an unpinned thread.
        do {
            let graph = try BenchGraphs.chain(3, UInt64.self).compile(CompileOptions())
            defer { graph.shutdown() }
            let parksBefore = graph.diagnostics.parkCounts.reduce(0, +)
            let m = try await onUnpinnedThread(name: "ag-svc-caller") {
                try OpenLoop.onThread(schedule, warmup: 1_000) { x throws(ExecutionError) in try graph.execute(x) }
            }
            let workerCPUs = pinnedWorkerCPUs(graph.workerCount).map(String.init).joined(separator: ",")
            results.append(
                m.result(
                    name: name,
                    path: "compiled",
                    caller: "unpinned thread",
                    note:
                        "worker pinned to CPU \(workerCPUs); parks \(graph.diagnostics.parkCounts.reduce(0, +) - parksBefore)"
                )
            )
        }
        // Dynamic chain3 from a detached Task: its natural caller is async code; a thread bridging
        // into it would add a Task spawn and a second wake-up that belong to the bridge, not the path.
        do {
            let dynamic = try BenchGraphs.chain(3, UInt64.self).dynamic()
            defer { dynamic.shutdown() }
            let m = try await Task.detached {
                try await OpenLoop.onTask(schedule, warmup: 200) { x in try await dynamic.execute(x) }
            }.value
            results.append(m.result(name: name, path: "dynamic", caller: "detached Task"))
        }
        // Three plain actors awaited in sequence from a detached Task, sleeping with Task.sleep: a
        // blocking sleep would hold a cooperative-pool thread; a TaskExecutor on a thread of our own
        // (tried: 4 enqueues per chain, p50 1.6 µs) would measure that executor, not the actors.
        do {
            let a = StageActor()
            let b = StageActor()
            let c = StageActor()
            let m = await Task.detached {
                await OpenLoop.onTask(schedule, warmup: 200) { x in await c.step(await b.step(await a.step(x))) }
            }.value
            results.append(m.result(name: name, path: "actors", caller: "detached Task"))
        }
        // Two plain threads and a pair of semaphores: what a wake-up costs without any engine.
        do {
            let pipeline = try SemaphorePipeline(stages: 3)
            defer { pipeline.stop() }
            let m = try await onUnpinnedThread(name: "ag-svc-caller") {
                OpenLoop.onThread(schedule, warmup: 1_000) { x in pipeline.call(x) }
            }
            results.append(m.result(name: name, path: "semaphore", caller: "unpinned thread"))
        }
        for r in results { printResult(r, extra: extra) }
        return results
    }

    /// The CPUs of the first `count` workers: the compiler pins workers to the highest allowed CPUs first.
    static func pinnedWorkerCPUs(_ count: Int) -> [Int] {
        Array(CPU.allowedCPUs().reversed().prefix(count))
    }

    // MARK: First execution after idle

    /// echo after 1, 20, 150 ms of idle (samples interleaved over the idle lengths, so a change of the
    /// host's mood hits every length): compiled threads and processes, a semaphore pair, from an
    /// unpinned thread; a plain actor and the dynamic path from a detached Task.
    static func idle(_ idles: [Int], samples: Int) async throws -> [ServiceResult] {
        var results: [ServiceResult] = []
        func add(_ path: String, caller: String, _ ms: [IdleMeasurement], note: String = "") {
            for (i, m) in ms.enumerated() {
                results.append(
                    ServiceResult(
                        name: "idle.echo.\(idles[i])ms",
                        path: path,
                        caller: caller,
                        stats: LatencyStats(
                            histogram: m.histogram,
                            executions: UInt64(m.histogram.totalCount),
                            elapsedNanoseconds: m.elapsed
                        ),
                        requested: samples,
                        note: note.isEmpty ? m.callerCPUNote : "\(m.callerCPUNote); \(note)"
                    )
                )
            }
        }
        for isolation in [Isolation.threads, .processes] {
            let graph = try BenchGraphs.echo(UInt64.self).compile(CompileOptions(isolation: isolation))
            defer { graph.shutdown() }
            let ms = try await onUnpinnedThread(name: "ag-svc-caller") {
                try IdleLoop.onThread(idles, samples: samples) { x throws(ExecutionError) in try graph.execute(x) }
            }
            // Take-overs say how many executions ran on the caller's thread (no wake-up at all);
            // the caller's CPU, whether a wake-up had to cross to the worker's (WakeSteering.swift).
            add(
                isolation.processOptions == nil ? "compiled" : "process",
                caller: "unpinned thread",
                ms,
                note:
                    "worker pinned to CPU \(pinnedWorkerCPUs(1)[0]); parks \(graph.diagnostics.parkCounts.reduce(0, +)), caller take-overs \(graph.diagnostics.callerTakeovers)"
            )
        }
        do {
            let pipeline = try SemaphorePipeline(stages: 1)
            defer { pipeline.stop() }
            let ms = try await onUnpinnedThread(name: "ag-svc-caller") {
                IdleLoop.onThread(idles, samples: samples) { x in pipeline.call(x) }
            }
            add("semaphore", caller: "unpinned thread", ms)
        }
        do {
            let echo = StageActor()
            let ms = await Task.detached { await IdleLoop.onTask(idles, samples: samples) { x in await echo.step(x) } }
                .value
            add("actor", caller: "detached Task", ms)
        }
        do {
            let dynamic = try BenchGraphs.echo(UInt64.self).dynamic()
            defer { dynamic.shutdown() }
            let ms = try await Task.detached {
                try await IdleLoop.onTask(idles, samples: samples) { x in try await dynamic.execute(x) }
            }.value
            add("dynamic", caller: "detached Task", ms)
        }
        // Per idle length, every path together.
        let ordered = idles.flatMap { ms in results.filter { $0.name == "idle.echo.\(ms)ms" } }
        for r in ordered { printResult(r) }
        return ordered
    }

    // MARK: Unpinned caller right after compile()

    /// The first `block` back-to-back executions from an unpinned thread started right after
    /// `compile()`, then the next `block`: threads, then processes.
    static func unpinnedEcho(block: Int) async throws -> [ServiceResult] {
        var results: [ServiceResult] = []
        for isolation in [Isolation.threads, .processes] {
            let graph = try BenchGraphs.echo(UInt64.self).compile(CompileOptions(isolation: isolation))
            defer { graph.shutdown() }
            let workerCPUs = Set(pinnedWorkerCPUs(graph.workerCount))
            let blocks = try await onUnpinnedThread(name: "ag-svc-caller") {
                try UnpinnedLoop.run(block: block, workerCPUs: workerCPUs) { x throws(ExecutionError) in
                    try graph.execute(x)
                }
            }
            let prefix = isolation.processOptions == nil ? "compiled" : "process"
            for (i, b) in blocks.enumerated() {
                let r = ServiceResult(
                    name: "unpinned.echo",
                    path: prefix + (i == 0 ? ".first" : ".next"),
                    caller: "unpinned thread",
                    stats: LatencyStats(
                        histogram: b.histogram,
                        executions: UInt64(block),
                        elapsedNanoseconds: b.elapsed
                    ),
                    requested: block,
                    note: "caller on a worker's CPU in \(b.onWorkerCPU) of \(b.cpuSamples) sampled executions"
                )
                results.append(r)
                printResult(r)
            }
        }
        return results
    }

    // MARK: The UDP service

    /// The telematics graph served over UDP (worker 0's io_uring), then a blocking UDP echo server
    /// on a plain unpinned thread; the same client thread, schedule and records for both.
    static func serve(rate: Int, count: Int) async throws -> [ServiceResult] {
        let name = "serve.udp.\(rate)"
        let schedule = ArrivalSchedule.poisson(rate: rate, count: count, seed: 0x5E4E_0000 &+ UInt64(rate))
        var results: [ServiceResult] = []
        do {
            let served = try TelematicsGraph.graph(sink: ActorRef(AlertSink(), name: "alerts"))
                .serve(codec: TelematicsGraph.codec, options: CompileOptions())
            defer { served.shutdown() }
            let port = served.port
            let m = try await onUnpinnedThread(name: "ag-svc-client") {
                try UDPClient.run(port: port, schedule: schedule, warmup: 200) { bytes, tag in
                    if case .reply(let r) = TelematicsReplyCodec.decode(bytes) { return r.timestampMicros == tag }
                    return false
                }
            }
            // Drained first, so the counts include the last reply's send completion.
            served.stopReceiving()
            _ = served.drain(timeout: .seconds(1))
            let s = served.statistics
            results.append(
                m.result(
                    name: name,
                    path: "serve",
                    caller: "unpinned thread (UDP client)",
                    payloadBytes: SampleCodec.recordSize,
                    note:
                        "server: received \(s.received) replied \(s.replied) rejected \(s.rejectedMalformed + s.rejectedOversized)"
                )
            )
        }
        do {
            let echo = try UDPEchoServer()
            defer { echo.stop() }
            let port = echo.port
            let m = try await onUnpinnedThread(name: "ag-svc-client") {
                try UDPClient.run(port: port, schedule: schedule, warmup: 200) { bytes, tag in
                    bytes.count == SampleCodec.recordSize
                        && UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) == tag
                }
            }
            results.append(
                m.result(
                    name: name,
                    path: "udp-echo",
                    caller: "unpinned thread (UDP client)",
                    payloadBytes: SampleCodec.recordSize,
                    note: "blocking recvfrom/sendto on an unpinned thread"
                )
            )
        }
        for r in results { printResult(r) }
        return results
    }

    // MARK: Printing

    static func printResult(_ r: ServiceResult, extra: String = "") {
        let s = r.stats
        var line =
            "  \(pad(r.name, 30)) \(pad(r.path, 14)) p50 \(fmtNs(s.p50))  p99 \(fmtNs(s.p99))  p99.9 \(fmtNs(s.p999))  max \(fmtNs(s.max))"
        if let i = r.fromIntended {
            line +=
                "  | from intended p50 \(fmtNs(i.p50))  p99 \(fmtNs(i.p99))  p99.9 \(fmtNs(i.p999))  max \(fmtNs(i.max))"
        }
        var notes = [
            "\(fmtRate(s.throughputPerSecond))/s",
            "\(s.count)" + (Int(s.count) + r.lost < r.requested ? " of \(r.requested) (time limit)" : "") + " samples",
            r.caller,
        ]
        if let late = r.callerLateness { notes.append("caller late p50 \(fmtNs(late.p50)) p99 \(fmtNs(late.p99))") }
        if r.lost > 0 { notes.append("\(r.lost) lost") }
        if !r.note.isEmpty { notes.append(r.note) }
        if !extra.isEmpty { notes.append(extra) }
        say(line + "  (" + notes.joined(separator: "; ") + ")")
    }
}

// MARK: - Summary fields

extension BenchSummary {
    /// Fills the service fields from `service`; each stays NaN when its case did not run.
    mutating func addService(_ service: ServiceResults) {
        let r = service.results
        func stat(_ name: String, _ path: String) -> LatencyStats? {
            r.first { $0.name == name && $0.path == path }?.stats
        }
        func worst(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.max()! }
        func ratio(_ a: UInt64?, _ b: UInt64?) -> Double? {
            guard let a, let b, b > 0 else { return nil }
            return Double(a) / Double(b)
        }
        let poisson = ServiceCases.poissonRates.map { "poisson.chain3.\($0)" }
        poissonP99 = worst(poisson.compactMap { stat($0, "compiled").map { Double($0.p99) } })
        poissonP999OverDynamic = worst(
            poisson.compactMap { ratio(stat($0, "compiled")?.p999, stat($0, "dynamic")?.p999) }
        )
        let idle = ServiceCases.idleMilliseconds.map { "idle.echo.\($0)ms" }
        idleFirstP50 = worst(idle.compactMap { stat($0, "compiled").map { Double($0.p50) } })
        idleFirstOverSemaphore = worst(idle.compactMap { ratio(stat($0, "compiled")?.p50, stat($0, "semaphore")?.p50) })
        idleFirstProcessOverSemaphore = worst(
            idle.compactMap { ratio(stat($0, "process")?.p50, stat($0, "semaphore")?.p50) }
        )
        unpinnedFirstP999 = worst(
            ["compiled.first", "process.first"].compactMap { stat("unpinned.echo", $0).map { Double($0.p999) } }
        )
        serveOverUDPEchoP50 = worst(
            ServiceCases.serveRates.map { "serve.udp.\($0)" }.compactMap {
                ratio(stat($0, "serve")?.p50, stat($0, "udp-echo")?.p50)
            }
        )
    }
}

// MARK: - Arrivals

extension SplitMix64 {
    /// Uniform in [0, 1), from the top 53 bits (the examples' generator: every path of a case
    /// replays exactly the same arrivals).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

/// The intended start of every request: exponential gaps (Poisson arrivals) with mean 1/rate.
struct ArrivalSchedule: Sendable {
    /// Nanoseconds from the schedule's start to request i's intended start.
    let offsets: [UInt64]

    static func poisson(rate: Int, count: Int, seed: UInt64) -> ArrivalSchedule {
        var rng = SplitMix64(seed: seed)
        let mean = 1e9 / Double(rate)
        var t = 0.0
        var offsets: [UInt64] = []
        offsets.reserveCapacity(count)
        for _ in 0..<count {
            t += -log1p(-rng.unit()) * mean
            offsets.append(UInt64(t))
        }
        return ArrivalSchedule(offsets: offsets)
    }

    /// Bounds an overloaded path (one that cannot keep up with the rate): it stops after 1.5× the
    /// schedule plus 1 s, and the result says how many requests it completed.
    var timeLimit: UInt64 { (offsets.last ?? 0) * 3 / 2 &+ 1_000_000_000 }
}

// MARK: - Open-loop drivers

struct OpenLoopMeasurement: Sendable {
    var fromCall = makeLatencyHistogram()
    var fromIntended = makeLatencyHistogram()
    var late = makeLatencyHistogram()
    var requested = 0
    var lost = 0
    var elapsed: UInt64 = 0
    var checksum: UInt64 = 0
    /// Requests sampled per CPU the caller was on right after them (every 64th request).
    var callerCPUs: [Int: Int] = [:]

    mutating func record(intended: UInt64, start t0: UInt64, end t1: UInt64) {
        _ = fromCall.record(t1 &- t0)
        _ = fromIntended.record(t1 &- intended)
        _ = late.record(t0 > intended ? t0 &- intended : 0)
    }

    /// Notes the caller's CPU after every 64th request, outside the timed window (`getcpu` is a
    /// system call here): shows when an unpinned caller shared a pinned worker's CPU.
    mutating func sampleCPU(_ i: Int) {
        if i & 63 == 0, let cpu = CPU.current { callerCPUs[cpu, default: 0] += 1 }
    }

    var callerCPUNote: String {
        let total = callerCPUs.values.reduce(0, +)
        guard total > 0 else { return "" }
        return "caller on "
            + callerCPUs.keys.sorted().map { "CPU \($0) \(callerCPUs[$0]! * 100 / total)%" }.joined(separator: ", ")
    }

    func result(name: String, path: String, caller: String, payloadBytes: Int = 8, note: String = "") -> ServiceResult {
        let n = fromCall.totalCount
        return ServiceResult(
            name: name,
            path: path,
            caller: caller,
            payloadBytes: payloadBytes,
            stats: LatencyStats(histogram: fromCall, executions: n, elapsedNanoseconds: elapsed),
            fromIntended: LatencyStats(histogram: fromIntended, executions: n, elapsedNanoseconds: elapsed),
            callerLateness: LatencyStats(histogram: late, executions: n, elapsedNanoseconds: elapsed),
            requested: requested,
            lost: lost,
            note: [callerCPUNote, note].filter { !$0.isEmpty }.joined(separator: "; ")
        )
    }
}

/// One request at a time at the schedule's arrival times (open loop: a slow request delays the next
/// one's start, and the latency from the intended start charges it, so nothing is omitted).
enum OpenLoop {
    /// Gaps longer than this are slept (the rest spun), so the caller is an ordinary sleeping thread
    /// yet starts on time; shorter gaps are spun, as a busy event loop would be running anyway.
    static let sleepMargin: UInt64 = 60_000

    /// From the calling (unpinned) thread: `nanosleep` for gaps over ``OpenLoop/sleepMargin``, then spin.
    static func onThread<E: Error>(
        _ schedule: ArrivalSchedule,
        warmup: Int,
        _ call: (UInt64) throws(E) -> UInt64
    ) throws(E) -> OpenLoopMeasurement {
        // Timer slack 1 ns: the default 50 µs slack would make the harness itself late.
        CPU.usePreciseSleeps()
        var m = OpenLoopMeasurement()
        m.requested = schedule.offsets.count
        for i in 0..<warmup { m.checksum &+= try call(UInt64(i)) }
        let start = MonotonicClock.now() &+ 1_000_000
        let limit = schedule.timeLimit
        var end = start
        for (i, offset) in schedule.offsets.enumerated() {
            let intended = start &+ offset
            CPU.sleep(until: intended, spinWindow: OpenLoop.sleepMargin)
            let t0 = MonotonicClock.now()
            m.checksum &+= try call(UInt64(i))
            let t1 = MonotonicClock.now()
            m.record(intended: intended, start: t0, end: t1)
            m.sampleCPU(i)
            end = t1
            if t1 &- start > limit { break }
        }
        m.elapsed = end &- start
        return m
    }

    /// From a Task: `Task.sleep` for gaps over ``OpenLoop/sleepMargin`` (never a blocking sleep on the
    /// cooperative pool), then spin. On Linux `Task.sleep` often wakes tens to hundreds of µs late:
    /// that lands in the caller lateness and the from-intended figures, not in the from-call ones.
    static func onTask(
        _ schedule: ArrivalSchedule,
        warmup: Int,
        _ call: @Sendable (UInt64) async throws -> UInt64
    ) async rethrows -> OpenLoopMeasurement {
        var m = OpenLoopMeasurement()
        m.requested = schedule.offsets.count
        for i in 0..<warmup { m.checksum &+= try await call(UInt64(i)) }
        let start = MonotonicClock.now() &+ 1_000_000
        let limit = schedule.timeLimit
        var end = start
        for (i, offset) in schedule.offsets.enumerated() {
            let intended = start &+ offset
            let now = MonotonicClock.now()
            if intended > now &+ OpenLoop.sleepMargin {
                try? await Task.sleep(for: .nanoseconds(Int64(intended &- now &- OpenLoop.sleepMargin)))
            }
            while MonotonicClock.now() < intended { CPU.relax() }
            let t0 = MonotonicClock.now()
            m.checksum &+= try await call(UInt64(i))
            let t1 = MonotonicClock.now()
            m.record(intended: intended, start: t0, end: t1)
            m.sampleCPU(i)
            end = t1
            if t1 &- start > limit { break }
        }
        m.elapsed = end &- start
        return m
    }
}

/// The first executions after each idle length.
struct IdleMeasurement: Sendable {
    var histogram = makeLatencyHistogram()
    /// Idle plus execution time over every sample (the rate is one over the idle, roughly).
    var elapsed: UInt64 = 0
    /// Samples whose caller woke from its sleep on each CPU (read after the timed window).
    var callerCPUs: [Int: Int] = [:]

    /// "caller on CPU 0 ×7, CPU 1 ×3".
    var callerCPUNote: String {
        "caller on "
            + callerCPUs.sorted { $0.key < $1.key }.map { "CPU \($0.key) ×\($0.value)" }.joined(separator: ", ")
    }
}

enum IdleLoop {
    /// Warm-up executions before the first idle, so a sample is never the first ever (page faults,
    /// lazy initialisation): only the idle before it differs.
    static let warmup = 1_000

    static func onThread<E: Error>(
        _ idles: [Int],
        samples: Int,
        _ call: (UInt64) throws(E) -> UInt64
    ) throws(E) -> [IdleMeasurement] {
        CPU.usePreciseSleeps()
        var out = [IdleMeasurement](repeating: IdleMeasurement(), count: idles.count)
        for i in 0..<warmup { _ = try call(UInt64(i)) }
        for _ in 0..<samples {
            for (k, ms) in idles.enumerated() {
                let before = MonotonicClock.now()
                var pause = timespec(tv_sec: ms / 1_000, tv_nsec: (ms % 1_000) * 1_000_000)
                nanosleep(&pause, nil)
                let t0 = MonotonicClock.now()
                _ = try call(UInt64(k))
                let t1 = MonotonicClock.now()
                _ = out[k].histogram.record(t1 &- t0)
                out[k].elapsed &+= t1 &- before
                if let cpu = CPU.current { out[k].callerCPUs[cpu, default: 0] += 1 }
            }
        }
        return out
    }

    static func onTask(
        _ idles: [Int],
        samples: Int,
        _ call: @Sendable (UInt64) async throws -> UInt64
    ) async rethrows -> [IdleMeasurement] {
        var out = [IdleMeasurement](repeating: IdleMeasurement(), count: idles.count)
        for i in 0..<warmup { _ = try await call(UInt64(i)) }
        for _ in 0..<samples {
            for (k, ms) in idles.enumerated() {
                let before = MonotonicClock.now()
                try? await Task.sleep(for: .milliseconds(ms))
                let t0 = MonotonicClock.now()
                _ = try await call(UInt64(k))
                let t1 = MonotonicClock.now()
                _ = out[k].histogram.record(t1 &- t0)
                out[k].elapsed &+= t1 &- before
            }
        }
        return out
    }
}

struct UnpinnedBlock: Sendable {
    var histogram = makeLatencyHistogram()
    var elapsed: UInt64 = 0
    var onWorkerCPU = 0
    var cpuSamples = 0
}

enum UnpinnedLoop {
    /// Two blocks of `block` back-to-back executions. Every 64th execution (outside the timed
    /// window: `getcpu` is a system call here) notes whether the caller sat on a worker's CPU.
    static func run<E: Error>(
        block: Int,
        workerCPUs: Set<Int>,
        _ call: (UInt64) throws(E) -> UInt64
    ) throws(E) -> [UnpinnedBlock] {
        var blocks: [UnpinnedBlock] = []
        for _ in 0..<2 {
            var b = UnpinnedBlock()
            let start = MonotonicClock.now()
            for i in 0..<block {
                let t0 = MonotonicClock.now()
                _ = try call(UInt64(i))
                let t1 = MonotonicClock.now()
                _ = b.histogram.record(t1 &- t0)
                if i & 63 == 0, let cpu = CPU.current {
                    b.cpuSamples += 1
                    if workerCPUs.contains(cpu) { b.onWorkerCPU += 1 }
                }
            }
            b.elapsed = MonotonicClock.now() &- start
            blocks.append(b)
        }
        return blocks
    }
}

/// Runs `body` on a new thread with no CPU affinity of its own (it inherits this process's mask,
/// never the pinned measuring thread's) and awaits it without blocking a cooperative-pool thread.
func onUnpinnedThread<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    let started = Box<PinnedThread?>(nil)
    let result: Result<T, any Error> = await withCheckedContinuation { continuation in
        do {
            started.value = try PinnedThread(name: name, cpu: nil) {
                continuation.resume(returning: Result { try body() })
            }
        } catch {
            continuation.resume(returning: .failure(BenchFailure(description: "pthread_create failed: \(error)")))
        }
    }
    started.value?.join()
    return try result.get()
}

// MARK: - Baselines

/// A plain Swift actor standing for one stage: a counter, so the call is not empty.
actor StageActor {
    private var executions: UInt64 = 0

    func step(_ x: UInt64) -> UInt64 {
        executions &+= 1
        return x &+ 1
    }
}

/// A POSIX semaphore at a fixed address.
/// `@unchecked Sendable`: `sem_t` is made for use from several threads; it is destroyed in
/// `deinit`, when no thread can hold a reference any more.
final class PosixSemaphore: @unchecked Sendable {
    private let semaphore: UnsafeMutablePointer<sem_t>

    init() {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    func post() { sem_post(semaphore) }

    func wait() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }
}

/// Two plain threads: the caller posts a request semaphore; a stage thread (unpinned, blocked in
/// `sem_wait`) runs the stage functions and posts the reply semaphore.
final class SemaphorePipeline: Sendable {
    private let request = PosixSemaphore()
    private let reply = PosixSemaphore()
    /// The value in flight: written before a post, read after the matching wait (which orders it).
    private let value = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<PinnedThread?>(nil)

    init(stages: Int) throws {
        let t: PinnedThread
        do {
            t = try PinnedThread(name: "ag-svc-stage", cpu: nil) { [self] in
                while true {
                    request.wait()
                    if stopping.load(ordering: .acquiring) { return }
                    var x = value.load(ordering: .relaxed)
                    for _ in 0..<stages { x = SemaphorePipeline.stage(x) }
                    value.store(x, ordering: .relaxed)
                    reply.post()
                }
            }
        } catch {
            throw BenchFailure(description: "pthread_create failed: \(error)")
        }
        thread.withLock { $0 = t }
    }

    @inline(never)
    static func stage(_ x: UInt64) -> UInt64 { x &+ 1 }

    /// One request through the stage thread and back.
    func call(_ x: UInt64) -> UInt64 {
        value.store(x, ordering: .relaxed)
        request.post()
        reply.wait()
        return value.load(ordering: .relaxed)
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        request.post()
        let t = thread.withLock { t in
            defer { t = nil }
            return t
        }
        t?.join()
    }

    deinit { stop() }
}

/// A blocking UDP echo server: one unpinned thread in `recvfrom`/`sendto` on loopback, the 30-line
/// server a C programmer would write; the kernel's own socket wake-up is all it costs.
final class UDPEchoServer: Sendable {
    private let socket: UDPSocket
    private let stopRequested = Atomic<Bool>(false)
    private let thread = Mutex<PinnedThread?>(nil)
    var port: UInt16 { socket.port }

    init() throws {
        socket = try UDPSocket(bindingTo: "127.0.0.1", port: 0)
        // Wakes the blocked recvfrom now and then, so stop() returns within 50 ms.
        socket.setReceiveTimeout(nanoseconds: 50_000_000)
        let t: PinnedThread
        do {
            t = try PinnedThread(name: "ag-udp-echo", cpu: nil) { [self] in
                let fd = socket.fileDescriptor
                var buffer = [UInt8](repeating: 0, count: 512)
                while !stopRequested.load(ordering: .relaxed) {
                    var peer = sockaddr_in()
                    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                    let n = buffer.withUnsafeMutableBytes { raw in
                        withUnsafeMutablePointer(to: &peer) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length)
                            }
                        }
                    }
                    guard n >= 0 else { continue }  // timeout or EINTR: check the stop flag
                    _ = buffer.withUnsafeBytes { raw in
                        withUnsafePointer(to: &peer) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                sendto(fd, raw.baseAddress, n, 0, $0, length)
                            }
                        }
                    }
                }
            }
        } catch {
            socket.close()
            throw BenchFailure(description: "pthread_create failed: \(error)")
        }
        thread.withLock { $0 = t }
    }

    func stop() {
        stopRequested.store(true, ordering: .relaxed)
        let t = thread.withLock { t in
            defer { t = nil }
            return t
        }
        t?.join()
        socket.close()
    }

    deinit { stop() }
}

/// Sends one valid 40-byte telematics record at a time over loopback and waits for its reply,
/// sleeping between sends like ``OpenLoop/onThread(_:warmup:_:)``.
enum UDPClient {
    /// A request whose reply has not come within this long is counted lost (and not timed).
    static let replyTimeout: Int64 = 100_000_000

    static func run(
        port: UInt16,
        schedule: ArrivalSchedule,
        warmup: Int,
        matches: (UnsafeRawBufferPointer, UInt64) -> Bool
    ) throws -> OpenLoopMeasurement {
        CPU.usePreciseSleeps()
        let socket = try UDPSocket(bindingTo: "127.0.0.1", port: 0)
        defer { socket.close() }
        try socket.connect(host: "127.0.0.1", port: port)
        socket.setReceiveTimeout(nanoseconds: replyTimeout)
        var request = [UInt8](repeating: 0, count: SampleCodec.recordSize)
        var reply = [UInt8](repeating: 0, count: 512)
        var m = OpenLoopMeasurement()
        m.requested = schedule.offsets.count

        /// One round trip; false when no matching reply came in time. The tag (the timestamp
        /// field, which the reply echoes) tells a late reply to an earlier request from this one's.
        func roundTrip(_ tag: UInt64) throws -> Bool {
            let sample = VehicleSample(
                vehicleID: 10_000 + UInt32(tag % 32),
                timestampMicros: tag,
                latitude: 52.52,
                longitude: 13.40,
                speedKmh: 50,
                accelerationMS2: 0
            )
            request.withUnsafeMutableBytes { _ = SampleCodec.encode(sample, into: $0) }
            _ = try request.withUnsafeBytes { try socket.send($0) }
            while true {
                let n: Int
                do {
                    n = try reply.withUnsafeMutableBytes { try socket.receive(into: $0) }
                } catch let error as Errno where error == .resourceTemporarilyUnavailable {
                    return false  // SO_RCVTIMEO ran out
                }
                if reply.withUnsafeBytes({ matches(UnsafeRawBufferPointer(rebasing: $0[0..<n]), tag) }) { return true }
            }
        }

        for i in 0..<warmup { _ = try roundTrip(1 << 40 | UInt64(i)) }
        let start = MonotonicClock.now() &+ 1_000_000
        let limit = schedule.timeLimit
        var end = start
        for (i, offset) in schedule.offsets.enumerated() {
            let intended = start &+ offset
            CPU.sleep(until: intended, spinWindow: OpenLoop.sleepMargin)
            let t0 = MonotonicClock.now()
            let answered = try roundTrip(UInt64(i))
            let t1 = MonotonicClock.now()
            if answered { m.record(intended: intended, start: t0, end: t1) } else { m.lost += 1 }
            m.sampleCPU(i)
            end = t1
            if t1 &- start > limit { break }
        }
        m.elapsed = end &- start
        return m
    }
}

/// One busy process per CPU for the competing cases: `/bin/sh` counting in a loop. Each checks
/// every ~20 000 iterations that this process is still alive (`kill -0 $PPID`) and exits when it
/// is not, so even a bench killed by a signal leaves no spinner behind.
final class BusyNeighbours {
    private var pids: [pid_t] = []
    var started: Int { pids.count }

    init(count: Int) {
        let script = "while kill -0 $PPID 2>/dev/null; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done"
        for _ in 0..<count {
            var pid: pid_t = 0
            let args = ["sh", "-c", script]
            var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            if posix_spawn(&pid, "/bin/sh", nil, nil, &argv, environ) == 0 { pids.append(pid) }
        }
        // Let them get going (and the scheduler spread them) before measuring.
        var pause = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        nanosleep(&pause, nil)
    }

    func stop() {
        for pid in pids { kill(pid, SIGKILL) }
        for pid in pids {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        pids = []
    }

    deinit { stop() }
}
