import ActorGraphPlatform
import Glibc
import XCTest

@testable import ActorGraph

/// CPU arithmetic: cgroup v1/v2 quota parsing (odd values, malformed files), hierarchy lookup,
/// effective CPUs, the compiler's use of them, and one real cgroup where the host allows it.
final class EffectiveCPUsTests: XCTestCase {
    // MARK: cgroup v2 cpu.max

    func testCPUMaxWithoutLimit() throws {
        XCTAssertNil(try CgroupCPU.parseCPUMax("max 100000\n"))
        XCTAssertNil(try CgroupCPU.parseCPUMax("max"))
    }

    func testCPUMaxWholeAndFractionalQuotas() throws {
        let one = try XCTUnwrap(CgroupCPU.parseCPUMax("100000 100000\n"))
        XCTAssertEqual(one.cpus, 1)
        XCTAssertEqual(one.cgroupVersion, 2)
        let oneAndHalf = try XCTUnwrap(CgroupCPU.parseCPUMax("150000 100000"))
        XCTAssertEqual(oneAndHalf.cpus, 1.5)
        XCTAssertEqual(oneAndHalf.quotaMicroseconds, 150_000)
        XCTAssertEqual(oneAndHalf.periodMicroseconds, 100_000)
        XCTAssertEqual(try XCTUnwrap(CgroupCPU.parseCPUMax("25000 100000")).cpus, 0.25)
        XCTAssertEqual(try XCTUnwrap(CgroupCPU.parseCPUMax("50000 50000\n")).cpus, 1)
        // The period may be omitted: the kernel's default 100000 applies.
        XCTAssertEqual(try XCTUnwrap(CgroupCPU.parseCPUMax("200000")).cpus, 2)
    }

    func testMalformedCPUMaxIsATypedError() {
        for text in [
            "", "\n", "abc 100000", "100000 0", "100000 -1", "-5 100000", "0 100000", "1 2 3", "100000 abc",
            "1.5 100000",
        ] {
            XCTAssertThrowsError(try CgroupCPU.parseCPUMax(text), "\"\(text)\"") { error in
                XCTAssertEqual((error as? CgroupParseError)?.file, "cpu.max")
            }
        }
    }

    // MARK: cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us

    func testCFSMinusOneMeansNoLimit() throws {
        XCTAssertNil(try CgroupCPU.parseCFS(quota: "-1\n", period: "100000\n"))
        // With no limit the period is not even consulted.
        XCTAssertNil(try CgroupCPU.parseCFS(quota: "-1", period: "garbage"))
    }

    func testCFSQuotas() throws {
        let one = try XCTUnwrap(CgroupCPU.parseCFS(quota: "100000\n", period: "100000\n"))
        XCTAssertEqual(one.cpus, 1)
        XCTAssertEqual(one.cgroupVersion, 1)
        XCTAssertEqual(try XCTUnwrap(CgroupCPU.parseCFS(quota: "150000", period: "100000")).cpus, 1.5)
        XCTAssertEqual(try XCTUnwrap(CgroupCPU.parseCFS(quota: " 250000 ", period: "100000")).cpus, 2.5)
        XCTAssertEqual(try XCTUnwrap(CgroupCPU.parseCFS(quota: "1000", period: "1000000")).cpus, 0.001)
    }

    func testMalformedCFSFilesAreTypedErrors() {
        XCTAssertThrowsError(try CgroupCPU.parseCFS(quota: "x", period: "100000")) {
            XCTAssertEqual(($0 as? CgroupParseError)?.file, "cpu.cfs_quota_us")
        }
        XCTAssertThrowsError(try CgroupCPU.parseCFS(quota: "", period: "100000"))
        XCTAssertThrowsError(try CgroupCPU.parseCFS(quota: "0", period: "100000"))
        for period in ["0", "-1", "", "1e5"] {
            XCTAssertThrowsError(try CgroupCPU.parseCFS(quota: "100000", period: period)) {
                XCTAssertEqual(($0 as? CgroupParseError)?.file, "cpu.cfs_period_us")
            }
        }
    }

    // MARK: cpu.stat

    func testCPUStatOfBothVersions() throws {
        let v2 = try CgroupCPU.parseCPUStat(
            """
            usage_usec 1000
            user_usec 600
            system_usec 400
            nr_periods 10
            nr_throttled 3
            throttled_usec 4000
            nr_bursts 0
            burst_usec 0

            """
        )
        XCTAssertEqual(v2, CPUThrottling(periods: 10, throttledPeriods: 3, throttledNanoseconds: 4_000_000))
        let v1 = try CgroupCPU.parseCPUStat(
            "nr_periods 18\nnr_throttled 2\nthrottled_time 123456\nnr_bursts 0\nburst_time 0\n"
        )
        XCTAssertEqual(v1, CPUThrottling(periods: 18, throttledPeriods: 2, throttledNanoseconds: 123_456))
        XCTAssertEqual(
            try CgroupCPU.parseCPUStat(""),
            CPUThrottling(periods: 0, throttledPeriods: 0, throttledNanoseconds: 0)
        )
        XCTAssertThrowsError(try CgroupCPU.parseCPUStat("nr_throttled many\n"))
        XCTAssertThrowsError(try CgroupCPU.parseCPUStat("nr_periods\n"))
    }

    // MARK: Where the limit lives

    func testProcCgroupOfAHybridAndAUnifiedHost() {
        let hybrid = CgroupCPU.parseProcCgroup(
            """
            9:name=systemd:/
            4:memory:/process_api/abc
            2:cpuacct:/
            1:cpu:/svc/a
            0::/
            """
        )
        XCTAssertEqual(hybrid, CgroupMembership(unifiedPath: "/", cpuControllerPath: "/svc/a"))
        let combined = CgroupCPU.parseProcCgroup("3:cpu,cpuacct:/docker/1f2e\n")
        XCTAssertEqual(combined, CgroupMembership(unifiedPath: nil, cpuControllerPath: "/docker/1f2e"))
        // cpuset alone is not the cpu controller; a path may contain ':'.
        let unified = CgroupCPU.parseProcCgroup("5:cpuset:/x\n0::/user.slice/app:1.scope\n")
        XCTAssertEqual(unified, CgroupMembership(unifiedPath: "/user.slice/app:1.scope", cpuControllerPath: nil))
    }

    func testMountInfoFindsBothHierarchiesAndUnescapes() {
        let text = """
            24 30 0:22 / /sys rw,nosuid - sysfs sysfs rw
            33 24 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
            35 33 0:30 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
            36 33 0:31 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
            37 33 0:32 /docker/1f2e /sys/fs/cgroup/unified\\040dir rw,relatime - cgroup2 cgroup2 rw
            """
        let mounts = CgroupCPU.parseMountInfo(text)
        XCTAssertEqual(mounts.cpuController, CgroupMount(root: "/", mountPoint: "/sys/fs/cgroup/cpu"))
        XCTAssertEqual(mounts.unified, CgroupMount(root: "/docker/1f2e", mountPoint: "/sys/fs/cgroup/unified dir"))
        let combined = CgroupCPU.parseMountInfo(
            "40 33 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        )
        XCTAssertEqual(combined.cpuController?.mountPoint, "/sys/fs/cgroup/cpu,cpuacct")
        XCTAssertNil(combined.unified)
        XCTAssertNil(CgroupCPU.parseMountInfo("garbage\n\n1 2 3\n").cpuController)
    }

    func testMountDirectoryOfAPath() {
        let root = CgroupMount(root: "/", mountPoint: "/sys/fs/cgroup")
        XCTAssertEqual(root.directory(of: "/"), "/sys/fs/cgroup")
        XCTAssertEqual(root.directory(of: "/a/b"), "/sys/fs/cgroup/a/b")
        let sub = CgroupMount(root: "/docker/1f2e", mountPoint: "/sys/fs/cgroup")
        XCTAssertEqual(sub.directory(of: "/docker/1f2e"), "/sys/fs/cgroup")
        XCTAssertEqual(sub.directory(of: "/docker/1f2e/child"), "/sys/fs/cgroup/child")
        XCTAssertNil(sub.directory(of: "/docker/1f2eX"))
        XCTAssertNil(sub.directory(of: "/other"))
    }

    func testTightestQuotaWalksUpTheHierarchy() {
        func reader(_ files: [String: String]) -> (String) -> String? { { files[$0] } }
        // v2: the child says max, the parent 1.5 CPUs, the grandparent 4.
        let v2 = reader([
            "/cg/a/b/cpu.max": "max 100000\n", "/cg/a/cpu.max": "150000 100000\n", "/cg/cpu.max": "400000 100000",
        ])
        let q = CgroupCPU.tightestQuota(version: 2, directory: "/cg/a/b", mountPoint: "/cg", read: v2)
        XCTAssertEqual(q?.cpus, 1.5)
        XCTAssertEqual(q?.directory, "/cg/a")
        // A malformed file is skipped, not fatal.
        let broken = reader(["/cg/a/cpu.max": "nonsense", "/cg/cpu.max": "50000 100000"])
        XCTAssertEqual(
            CgroupCPU.tightestQuota(version: 2, directory: "/cg/a", mountPoint: "/cg", read: broken)?.cpus,
            0.5
        )
        // v1: -1 everywhere but the leaf.
        let v1 = reader([
            "/v1/x/cpu.cfs_quota_us": "100000", "/v1/x/cpu.cfs_period_us": "100000",
            "/v1/cpu.cfs_quota_us": "-1", "/v1/cpu.cfs_period_us": "100000",
        ])
        XCTAssertEqual(CgroupCPU.tightestQuota(version: 1, directory: "/v1/x", mountPoint: "/v1", read: v1)?.cpus, 1)
        XCTAssertNil(CgroupCPU.tightestQuota(version: 1, directory: "/v1", mountPoint: "/v1", read: v1))
        XCTAssertNil(CgroupCPU.tightestQuota(version: 2, directory: "/none", mountPoint: "/none", read: reader([:])))
    }

    // MARK: Effective CPUs

    func testEffectiveCPUsCombineAffinityAndQuota() throws {
        let none = EffectiveCPUs(affinity: 2, quota: nil)
        XCTAssertEqual(none.cpus, 2)
        XCTAssertEqual(none.count, 2)
        XCTAssertFalse(none.isQuotaLimited)
        let fractional = EffectiveCPUs(affinity: 2, quota: try CgroupCPU.parseCPUMax("150000 100000"))
        XCTAssertEqual(fractional.cpus, 1.5)  // kept for reports and spinner comparisons
        XCTAssertEqual(fractional.count, 2)  // rounded up for thread counts
        XCTAssertTrue(fractional.isQuotaLimited)
        let small = EffectiveCPUs(affinity: 8, quota: try CgroupCPU.parseCFS(quota: "20000", period: "100000"))
        XCTAssertEqual(small.cpus, 0.2, accuracy: 1e-9)
        XCTAssertEqual(small.count, 1)
        let generous = EffectiveCPUs(affinity: 2, quota: try CgroupCPU.parseCPUMax("400000 100000"))
        XCTAssertEqual(generous.cpus, 2)
        XCTAssertEqual(generous.count, 2)
        XCTAssertFalse(generous.isQuotaLimited)
        XCTAssertEqual(EffectiveCPUs(affinity: 0, quota: nil).count, 1)
        XCTAssertTrue(fractional.description.contains("1.5 CPUs"), fractional.description)
        XCTAssertEqual(CgroupCPU.formatCPUs(0.25), "0.25")
        XCTAssertEqual(CgroupCPU.formatCPUs(1.5), "1.5")
        XCTAssertEqual(CgroupCPU.formatCPUs(2), "2")
    }

    func testCurrentEffectiveCPUsAreBoundedByTheAffinityMask() {
        let current = EffectiveCPUs.current()
        XCTAssertEqual(current.affinity, CPU.allowedCPUs().count)
        XCTAssertLessThanOrEqual(current.cpus, Double(current.affinity))
        XCTAssertGreaterThanOrEqual(current.count, 1)
    }

    func testCompilerSizesWorkersAndPinningByTheQuota() throws {
        let affinity = CPU.allowedCPUs().count
        try XCTSkipIf(affinity < 2, "needs at least 2 allowed CPUs")
        let oneCPU = try CgroupCPU.parseCFS(quota: "100000", period: "100000")
        let (_, workers, cpus, _, effective) = try Compiler.validate(options: CompileOptions(), quota: oneCPU)
        XCTAssertEqual(workers, 1)
        XCTAssertEqual(effective.count, 1)
        // Under a quota smaller than the mask, workers are pinned to the lowest CPUs only.
        XCTAssertEqual(cpus, [CPU.allowedCPUs()[0]])
        // Two pinned workers cannot both get a CPU out of a 1-CPU budget.
        XCTAssertThrowsError(try Compiler.validate(options: CompileOptions(workers: 2), quota: oneCPU)) {
            guard case CompileError.tooManyWorkers(requested: 2, cpus: 1) = $0 else { return XCTFail("\($0)") }
        }
        // Unpinned, the user may still ask for more (the wait strategy copes).
        XCTAssertEqual(
            try Compiler.validate(options: CompileOptions(workers: 3, pinWorkers: false), quota: oneCPU).1,
            3
        )
        // A fractional quota rounds up for the worker count: 1.5 CPUs → 2 → 1 worker + the caller.
        let fractional = try CgroupCPU.parseCPUMax("150000 100000")
        XCTAssertEqual(try Compiler.validate(options: CompileOptions(), quota: fractional).1, min(affinity, 2) - 1)
        // No quota: the old default.
        XCTAssertEqual(try Compiler.validate(options: CompileOptions(), quota: nil).1, max(1, affinity - 1))
    }

    func testCompiledGraphReportsEffectiveCPUs() throws {
        let compiled = try Graph(input: Int.self) { $0.then { $0 + 1 } }.compile(testOptions())
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.effectiveCPUs, EffectiveCPUs.current())
        XCTAssertEqual(compiled.waitStrategy, .adaptive)
        XCTAssertEqual(try compiled.execute(1), 2)
    }

    // MARK: A real cgroup

    /// Moves this test process into a real child cgroup limited to 1.5 CPUs (v2 `cpu.max` or v1
    /// CFS files) and back; skipped where the host does not let it create one.
    func testRealCgroupQuotaIsSeenByTheCompiler() throws {
        let group = try RealQuotaCgroup.make(quota: 150_000, period: 100_000)
        defer { group.remove() }
        try group.enter()
        defer { group.leave() }
        let limit = CgroupCPU.currentLimit()
        XCTAssertEqual(limit.quota?.cpus, 1.5)
        XCTAssertEqual(limit.quota?.directory, group.directory)
        XCTAssertEqual(limit.cpuStatPath, group.directory + "/cpu.stat")
        XCTAssertNotNil(CgroupCPU.readThrottling(group.directory + "/cpu.stat"))
        let compiled = try Graph(input: Int.self) { $0.then { $0 * 3 } }.compile(
            CompileOptions(capacity: 64, pinWorkers: false, idle: IdlePolicy(parkTimeout: .milliseconds(20)))
        )
        defer { compiled.shutdown() }
        XCTAssertEqual(compiled.effectiveCPUs.cpus, min(1.5, Double(CPU.allowedCPUs().count)))
        XCTAssertEqual(compiled.workerCount, max(1, compiled.effectiveCPUs.count - 1))
        for i in 0..<2_000 { XCTAssertEqual(try compiled.execute(i), 3 * i) }
    }
}

/// A child cgroup with a CPU quota for tests (either version), or an `XCTSkip` saying why not.
struct RealQuotaCgroup {
    let directory: String
    let parent: String

    static func make(quota: Int, period: Int) throws -> RealQuotaCgroup {
        let membership = CgroupCPU.parseProcCgroup(CgroupCPU.readFile("/proc/self/cgroup") ?? "")
        let mounts = CgroupCPU.parseMountInfo(CgroupCPU.readFile("/proc/self/mountinfo") ?? "")
        let name = "actorgraph-test-\(getpid())"
        if let path = membership.unifiedPath, let mount = mounts.unified, let parent = mount.directory(of: path),
            (CgroupCPU.readFile(parent + "/cgroup.subtree_control") ?? "").contains("cpu")
        {
            let dir = parent + "/" + name
            if mkdir(dir, 0o755) == 0 || errno == EEXIST {
                if write(dir + "/cpu.max", "\(quota) \(period)") {
                    return RealQuotaCgroup(directory: dir, parent: parent)
                }
                rmdir(dir)
            }
        }
        if let path = membership.cpuControllerPath, let mount = mounts.cpuController,
            let parent = mount.directory(of: path)
        {
            let dir = parent + "/" + name
            if mkdir(dir, 0o755) == 0 || errno == EEXIST {
                if write(dir + "/cpu.cfs_period_us", "\(period)") && write(dir + "/cpu.cfs_quota_us", "\(quota)") {
                    return RealQuotaCgroup(directory: dir, parent: parent)
                }
                rmdir(dir)
            }
        }
        throw XCTSkip("cannot create a CPU-limited child cgroup here (needs a writable cgroup with the cpu controller)")
    }

    func enter() throws {
        guard RealQuotaCgroup.write(directory + "/cgroup.procs", "\(getpid())") else {
            throw XCTSkip("cannot move this process into \(directory)")
        }
    }

    func leave() { _ = RealQuotaCgroup.write(parent + "/cgroup.procs", "\(getpid())") }

    func remove() { rmdir(directory) }

    static func write(_ path: String, _ value: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return value.withCString { Glibc.write(fd, $0, strlen($0)) } >= 0
    }
}
