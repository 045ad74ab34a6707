import ActorGraph
import ActorGraphPlatform
import Glibc

/// What the contended cases measured (issue 11): the engine sharing its CPUs.
public struct ContendedResults: Codable, Sendable {
    /// The effective CPUs of the process before the cases ran (affinity mask and cgroup quota).
    public var effectiveCPUs: String
    /// `oversubscribed.diamond`: 3 unpinned workers + the unpinned caller on the allowed CPUs, back to back.
    public var oversubscribedDiamond: PathResult?
    /// `oversubscribed.chain3.pipelined`: chain3 spread over 3 unpinned workers, 512 in flight (median round).
    public var oversubscribedChain3PerSecond: Double?
    /// `quota.echo`: echo in a child cgroup limited to 1 CPU, back to back.
    public var quotaEcho: PathResult?
    /// Periods the quota cgroup was throttled in, out of the periods it ran in, during `quota.echo`.
    public var quotaThrottledPeriods: UInt64?
    /// Enforcement periods that elapsed during `quota.echo`.
    public var quotaPeriods: UInt64?
    /// Time the quota cgroup was stopped during `quota.echo`, in nanoseconds.
    public var quotaThrottledNanoseconds: UInt64?
    /// Why `quota.echo` did not run, when it did not.
    public var quotaSkipped: String?
    /// `competing.echo`: the default echo alone …
    public var quietEcho: PathResult?
    /// … and with one busy process per allowed CPU competing.
    public var competingEcho: PathResult?
}

/// The contended cases of `actorgraph bench`: more spinning threads than CPUs, a CPU quota, and
/// competing processes. Each prints its line and its target.
enum ContendedCases {
    static let names = ["oversubscribed.diamond", "oversubscribed.chain3.pipelined", "quota.echo", "competing.echo"]

    static func run(
        _ options: BenchOptions,
        budget: Budget,
        context: RunContext,
        counter: AllocationCounter?
    ) throws -> ContendedResults? {
        guard names.contains(where: { options.includes($0) }) || options.includes("contended") else { return nil }
        let explicit = options.includes("contended")
        let allowed = CPU.allowedCPUs()
        var results = ContendedResults(effectiveCPUs: EffectiveCPUs.current().description)
        say("contended cases (effective CPUs: \(results.effectiveCPUs))")

        if explicit || options.includes("oversubscribed.diamond") {
            let graph = try BenchGraphs.diamond(UInt64.self).compile(
                CompileOptions(workers: 3, capacity: 1024, pinWorkers: false)
            )
            defer { graph.shutdown() }
            let n = options.quick ? 20_000 : 200_000
            let m = try onPinnedThread(name: "ag-bench", cpu: nil) {
                try Measure.compiled(graph, input: 7, warmup: n / 10, iterations: n, counter: nil)
            }
            let r = PathResult(
                name: "oversubscribed.diamond",
                path: "compiled",
                payloadBytes: 8,
                stats: m.stats,
                placement: "automatic",
                workers: 3,
                segments: graph.segments.count
            )
            results.oversubscribedDiamond = r
            BenchSuite.progress(
                r,
                extra: "3 unpinned workers + unpinned caller on \(allowed.count) CPUs, "
                    + "\(fmtRate(r.stats.throughputPerSecond)) exec/s; target p50 <= 20 µs and >= 200 k/s"
            )
        }
        if explicit || options.includes("oversubscribed.chain3.pipelined") {
            let graph = try BenchGraphs.chain(3, UInt64.self).compile(
                CompileOptions(workers: 3, capacity: 1024, pinWorkers: false, placement: .spread)
            )
            defer { graph.shutdown() }
            let r = try onPinnedThread(name: "ag-bench", cpu: nil) {
                try Measure.pipelinedCompiled(
                    graph,
                    window: 512,
                    executions: budget.pipelinedExecutions / 2,
                    rounds: budget.pipelinedRounds,
                    counter: nil
                )
            }
            let perSecond = median(r.perSecond)
            results.oversubscribedChain3PerSecond = perSecond
            say(
                "  oversubscribed.chain3.pipelined  \(fmtRate(perSecond)) exec/s (3 unpinned workers, one stage each, "
                    + "+ the submitting thread on \(allowed.count) CPUs, window 512; target >= 5 M/s)"
            )
        }
        if explicit || options.includes("quota.echo") {
            runQuotaEcho(options, into: &results, callerCPU: context.callerCPU)
        }
        if explicit || options.includes("competing.echo") {
            let n = options.quick ? 200_000 : 1_000_000
            func echo() throws -> PathResult {
                let graph = try BenchGraphs.echo(UInt64.self).compile(CompileOptions())
                defer { graph.shutdown() }
                let m = try onPinnedThread(name: "ag-bench", cpu: context.callerCPU) {
                    try Measure.compiled(graph, input: 7, warmup: n / 10, iterations: n, counter: nil)
                }
                return PathResult(
                    name: "competing.echo",
                    path: "compiled",
                    payloadBytes: 8,
                    stats: m.stats,
                    workers: graph.workerCount
                )
            }
            var quiet = try echo()
            quiet.name = "quiet.echo"
            results.quietEcho = quiet
            BenchSuite.progress(quiet, extra: "no competing process")
            let hogs = BusyNeighbours(count: allowed.count)
            let started = hogs.started
            let competing = try echo()
            hogs.stop()
            results.competingEcho = competing
            BenchSuite.progress(competing, extra: "\(started) busy process(es) competing, one per CPU")
        }
        return results
    }

    /// `quota.echo`: moves this process into a child cgroup limited to 1 CPU (100000/100000),
    /// compiles echo there (the default worker count sees the quota), runs 1 M executions, counts
    /// throttled periods, and moves back. Skips with a line saying why where cgroups are not writable.
    static func runQuotaEcho(_ options: BenchOptions, into results: inout ContendedResults, callerCPU: Int?) {
        let group: QuotaCgroup
        switch QuotaCgroup.create(quotaMicroseconds: 100_000, periodMicroseconds: 100_000) {
        case .success(let g): group = g
        case .failure(let reason):
            results.quotaSkipped = reason.description
            say("  quota.echo         skipped: \(reason.description)")
            return
        }
        defer { group.remove() }
        if let error = group.enter() {
            results.quotaSkipped = error
            say("  quota.echo         skipped: \(error)")
            return
        }
        defer {
            if let error = group.leave() { say("  WARNING: could not move back out of \(group.directory): \(error)") }
        }
        do {
            let graph = try BenchGraphs.echo(UInt64.self).compile(CompileOptions())
            defer { graph.shutdown() }
            let n = 1_000_000
            let before = group.throttling()
            let m = try onPinnedThread(name: "ag-bench", cpu: callerCPU) {
                try Measure.compiled(graph, input: 7, warmup: 10_000, iterations: n, counter: nil)
            }
            let after = group.throttling()
            let r = PathResult(
                name: "quota.echo",
                path: "compiled",
                payloadBytes: 8,
                stats: m.stats,
                workers: graph.workerCount
            )
            results.quotaEcho = r
            if let before, let after {
                results.quotaPeriods = after.periods &- before.periods
                results.quotaThrottledPeriods = after.throttledPeriods &- before.throttledPeriods
                results.quotaThrottledNanoseconds = after.throttledNanoseconds &- before.throttledNanoseconds
            }
            let throttled =
                results.quotaThrottledPeriods.map {
                    "throttled in \($0) of \(results.quotaPeriods!) periods, "
                        + "stopped \(fmtNs(results.quotaThrottledNanoseconds!))"
                } ?? "throttling unreadable"
            BenchSuite.progress(
                r,
                extra: "cgroup v\(group.version) quota 1 CPU, \(graph.workerCount) worker(s), effective "
                    + "\(CgroupCPU.formatCPUs(graph.effectiveCPUs.cpus)) CPUs, \(throttled); target max <= 2 ms, p99.9 <= 20 µs"
            )
        } catch {
            results.quotaSkipped = "failed: \(error)"
            say("  quota.echo         failed: \(error)")
        }
    }
}

/// A child cgroup with a CPU quota that this process can enter and leave (v2 `cpu.max`, or v1
/// `cpu.cfs_quota_us`/`cpu.cfs_period_us`, whichever hierarchy carries the cpu controller).
struct QuotaCgroup {
    let version: Int
    let directory: String
    let parent: String

    struct Skip: Error, CustomStringConvertible { var description: String }

    static func create(quotaMicroseconds: Int, periodMicroseconds: Int) -> Result<QuotaCgroup, Skip> {
        guard let membershipText = CgroupCPU.readFile("/proc/self/cgroup"),
            let mountText = CgroupCPU.readFile("/proc/self/mountinfo")
        else {
            return .failure(Skip(description: "/proc/self/cgroup or /proc/self/mountinfo unreadable"))
        }
        let membership = CgroupCPU.parseProcCgroup(membershipText)
        let mounts = CgroupCPU.parseMountInfo(mountText)
        let name = "actorgraph-bench-\(getpid())"
        var reasons: [String] = []
        // v2 first, where it has the cpu controller; then a v1 cpu hierarchy.
        if let path = membership.unifiedPath, let mount = mounts.unified, let parent = mount.directory(of: path) {
            let controllers = CgroupCPU.readFile(parent + "/cgroup.controllers") ?? ""
            if controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("cpu") {
                let enabled = (CgroupCPU.readFile(parent + "/cgroup.subtree_control") ?? "")
                    .split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("cpu")
                if !enabled, let error = writeFile(parent + "/cgroup.subtree_control", "+cpu") {
                    reasons.append("cgroup v2: cannot enable the cpu controller under \(parent) (\(error))")
                } else if let group = make(
                    version: 2,
                    parent: parent,
                    name: name,
                    files: [
                        ("cpu.max", "\(quotaMicroseconds) \(periodMicroseconds)")
                    ],
                    reasons: &reasons
                ) {
                    return .success(group)
                }
            } else {
                reasons.append("cgroup v2 at \(mount.mountPoint) has no cpu controller")
            }
        }
        if let path = membership.cpuControllerPath, let mount = mounts.cpuController,
            let parent = mount.directory(of: path)
        {
            if let group = make(
                version: 1,
                parent: parent,
                name: name,
                files: [
                    ("cpu.cfs_period_us", "\(periodMicroseconds)"), ("cpu.cfs_quota_us", "\(quotaMicroseconds)"),
                ],
                reasons: &reasons
            ) {
                return .success(group)
            }
        } else {
            reasons.append("no cgroup v1 cpu hierarchy")
        }
        return .failure(Skip(description: "cannot create a CPU-limited cgroup: " + reasons.joined(separator: "; ")))
    }

    private static func make(
        version: Int,
        parent: String,
        name: String,
        files: [(String, String)],
        reasons: inout [String]
    ) -> QuotaCgroup? {
        let directory = parent + "/" + name
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            reasons.append("cgroup v\(version): mkdir \(directory): \(Errno(rawValue: errno))")
            return nil
        }
        for (file, value) in files {
            if let error = writeFile(directory + "/" + file, value) {
                reasons.append("cgroup v\(version): writing \(value) to \(file): \(error)")
                rmdir(directory)
                return nil
            }
        }
        return QuotaCgroup(version: version, directory: directory, parent: parent)
    }

    /// Moves this whole process into the group; returns an error message or `nil`.
    func enter() -> String? {
        writeFile(directory + "/cgroup.procs", "\(getpid())").map { "cannot move into \(directory): \($0)" }
    }

    /// Moves this process back to the parent group.
    func leave() -> String? {
        writeFile(parent + "/cgroup.procs", "\(getpid())").map { "\($0)" }
    }

    func throttling() -> CPUThrottling? { CgroupCPU.readThrottling(directory + "/cpu.stat") }

    /// Removes the group; retries briefly while the kernel still counts the threads that just left it.
    func remove() {
        for _ in 0..<100 {
            if rmdir(directory) == 0 || errno == ENOENT { return }
            var pause = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            nanosleep(&pause, nil)
        }
        say("  WARNING: could not remove \(directory): \(Errno(rawValue: errno))")
    }

    /// Writes `value` to a cgroup file; returns the error or `nil`.
    @discardableResult
    static func writeFile(_ path: String, _ value: String) -> Errno? {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return Errno(rawValue: errno) }
        defer { close(fd) }
        let n = value.withCString { write(fd, $0, strlen($0)) }
        return n < 0 ? Errno(rawValue: errno) : nil
    }

    private func writeFile(_ path: String, _ value: String) -> Errno? { QuotaCgroup.writeFile(path, value) }
}
