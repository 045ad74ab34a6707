import Glibc

/// A CPU bandwidth limit of a cgroup: `quota` microseconds of CPU time per `period` microseconds.
///
/// Invariant: `quotaMicroseconds > 0` and `periodMicroseconds > 0`.
public struct CPUQuota: Sendable, Equatable, CustomStringConvertible {
    /// CPU time the group may use per period, in microseconds (summed over all its threads and CPUs).
    public var quotaMicroseconds: Int64
    /// The accounting period, in microseconds.
    public var periodMicroseconds: Int64
    /// The cgroup version the limit came from (1 or 2).
    public var cgroupVersion: Int
    /// The cgroup directory that sets the limit (empty when parsed from file contents alone).
    public var directory: String

    /// Creates a quota; `nil` unless both values are positive.
    package init?(quotaMicroseconds: Int64, periodMicroseconds: Int64, cgroupVersion: Int, directory: String = "") {
        guard quotaMicroseconds > 0, periodMicroseconds > 0 else { return nil }
        self.quotaMicroseconds = quotaMicroseconds
        self.periodMicroseconds = periodMicroseconds
        self.cgroupVersion = cgroupVersion
        self.directory = directory
    }

    /// The CPUs' worth of time the quota allows, fractional (`150000 100000` is 1.5).
    public var cpus: Double { Double(quotaMicroseconds) / Double(periodMicroseconds) }

    /// `1.5 CPUs (cgroup v2 cpu.max 150000/100000)`.
    public var description: String {
        let file = cgroupVersion == 2 ? "cpu.max" : "cpu.cfs_quota_us/cpu.cfs_period_us"
        return
            "\(CgroupCPU.formatCPUs(cpus)) CPUs (cgroup v\(cgroupVersion) \(file) \(quotaMicroseconds)/\(periodMicroseconds))"
    }
}

/// What a cgroup's `cpu.stat` says about CPU bandwidth throttling (both cgroup versions).
package struct CPUThrottling: Sendable, Equatable {
    /// Enforcement periods that elapsed with the group runnable (`nr_periods`).
    package var periods: UInt64
    /// Periods in which the group ran out of quota and was stopped (`nr_throttled`).
    package var throttledPeriods: UInt64
    /// Total time the group was stopped, in nanoseconds (v2 `throttled_usec` × 1000, v1 `throttled_time`).
    package var throttledNanoseconds: UInt64

    /// Creates a record.
    package init(periods: UInt64, throttledPeriods: UInt64, throttledNanoseconds: UInt64) {
        self.periods = periods
        self.throttledPeriods = throttledPeriods
        self.throttledNanoseconds = throttledNanoseconds
    }
}

/// A cgroup file whose contents do not follow the kernel's format.
package struct CgroupParseError: Error, Equatable, CustomStringConvertible {
    /// The file (`cpu.max`, `cpu.cfs_quota_us`, `cpu.stat`, ...).
    package var file: String
    /// The offending contents, trimmed.
    package var contents: String

    /// `malformed cgroup file cpu.max: "abc"`.
    package var description: String { "malformed cgroup file \(file): \"\(contents)\"" }
}

/// Where this process sits in the cgroup hierarchies (`/proc/self/cgroup`).
package struct CgroupMembership: Sendable, Equatable {
    /// The path in the v2 (unified) hierarchy (`0::/path`), if listed.
    package var unifiedPath: String?
    /// The path in the v1 hierarchy holding the `cpu` controller (`N:cpu,cpuacct:/path`), if listed.
    package var cpuControllerPath: String?

    /// Creates a membership record.
    package init(unifiedPath: String? = nil, cpuControllerPath: String? = nil) {
        self.unifiedPath = unifiedPath
        self.cpuControllerPath = cpuControllerPath
    }
}

/// A mounted cgroup hierarchy (`/proc/self/mountinfo`): where it is mounted and which cgroup its root is.
package struct CgroupMount: Sendable, Equatable {
    /// The cgroup path the mount shows as its root (`/` unless the mount is of a sub-tree).
    package var root: String
    /// The directory it is mounted on.
    package var mountPoint: String

    /// Creates a mount record.
    package init(root: String, mountPoint: String) {
        self.root = root
        self.mountPoint = mountPoint
    }

    /// The directory of cgroup `path` under this mount, or `nil` when the mount does not show it.
    package func directory(of path: String) -> String? {
        let relative: Substring
        if root == "/" {
            relative = path[...]
        } else if path == root {
            relative = ""
        } else if path.hasPrefix(root + "/") {
            relative = path.dropFirst(root.count)
        } else {
            return nil
        }
        let trimmed = relative.drop { $0 == "/" }
        return trimmed.isEmpty ? mountPoint : mountPoint + "/" + trimmed
    }
}

/// Pure parsers for the cgroup files that limit CPU bandwidth, and the reads that use them.
///
/// Every parser takes the file's contents, so both cgroup versions and odd values are testable
/// without a kernel: v2 `cpu.max` (`"max 100000"` = no limit, `"150000 100000"` = 1.5 CPUs),
/// v1 `cpu.cfs_quota_us` (`-1` = no limit) with `cpu.cfs_period_us`.
package enum CgroupCPU {
    /// Parses v2 `cpu.max` (`"$MAX $PERIOD"`, `$MAX` may be `max`; the period may be missing and then
    /// defaults to 100000). Returns `nil` for no limit.
    package static func parseCPUMax(_ contents: String) throws(CgroupParseError) -> CPUQuota? {
        let fields = contents.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        let fail = CgroupParseError(file: "cpu.max", contents: trimmed(contents))
        guard fields.count == 1 || fields.count == 2 else { throw fail }
        var period: Int64 = 100_000
        if fields.count == 2 {
            guard let p = Int64(fields[1]), p > 0 else { throw fail }
            period = p
        }
        if fields[0] == "max" { return nil }
        guard let quota = Int64(fields[0]), quota > 0 else { throw fail }
        return CPUQuota(quotaMicroseconds: quota, periodMicroseconds: period, cgroupVersion: 2)
    }

    /// Parses v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`. Returns `nil` for no limit (a negative quota, `-1`).
    package static func parseCFS(quota: String, period: String) throws(CgroupParseError) -> CPUQuota? {
        guard let q = Int64(trimmed(quota)) else {
            throw CgroupParseError(file: "cpu.cfs_quota_us", contents: trimmed(quota))
        }
        if q < 0 { return nil }
        guard let p = Int64(trimmed(period)), p > 0 else {
            throw CgroupParseError(file: "cpu.cfs_period_us", contents: trimmed(period))
        }
        guard q > 0 else { throw CgroupParseError(file: "cpu.cfs_quota_us", contents: trimmed(quota)) }
        return CPUQuota(quotaMicroseconds: q, periodMicroseconds: p, cgroupVersion: 1)
    }

    /// Parses `cpu.stat` of either version (unknown keys are ignored; missing keys read as 0).
    package static func parseCPUStat(_ contents: String) throws(CgroupParseError) -> CPUThrottling {
        var result = CPUThrottling(periods: 0, throttledPeriods: 0, throttledNanoseconds: 0)
        for line in contents.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2 else { throw CgroupParseError(file: "cpu.stat", contents: String(line)) }
            let key = fields[0]
            guard ["nr_periods", "nr_throttled", "throttled_usec", "throttled_time"].contains(key) else { continue }
            guard let value = UInt64(fields[1]) else {
                throw CgroupParseError(file: "cpu.stat", contents: String(line))
            }
            switch key {
            case "nr_periods": result.periods = value
            case "nr_throttled": result.throttledPeriods = value
            case "throttled_usec": result.throttledNanoseconds = value &* 1_000
            default: result.throttledNanoseconds = value  // v1 throttled_time is in nanoseconds
            }
        }
        return result
    }

    /// Parses `/proc/self/cgroup`: the unified (v2) path and the v1 path of the `cpu` controller.
    package static func parseProcCgroup(_ contents: String) -> CgroupMembership {
        var membership = CgroupMembership()
        for line in contents.split(separator: "\n") {
            // hierarchy-ID:controller-list:path (the path may itself contain ':').
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                membership.unifiedPath = String(parts[2])
            } else if parts[1].split(separator: ",").contains("cpu") {
                membership.cpuControllerPath = String(parts[2])
            }
        }
        return membership
    }

    /// Parses `/proc/self/mountinfo`: the v2 mount and the v1 mount carrying the `cpu` controller.
    package static func parseMountInfo(_ contents: String) -> (unified: CgroupMount?, cpuController: CgroupMount?) {
        var unified: CgroupMount?
        var cpu: CgroupMount?
        for line in contents.split(separator: "\n") {
            let fields = line.split(separator: " ")
            // id parent major:minor root mount-point options [optional...] - fstype source super-options
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, dash + 1 < fields.count else { continue }
            let type = fields[dash + 1]
            let mount = CgroupMount(root: unescape(fields[3]), mountPoint: unescape(fields[4]))
            if type == "cgroup2", unified == nil {
                unified = mount
            } else if type == "cgroup", cpu == nil, dash + 3 < fields.count,
                fields[dash + 3].split(separator: ",").contains("cpu")
            {
                cpu = mount
            }
        }
        return (unified, cpu)
    }

    /// The tightest CPU quota on `directory` and its ancestors up to `mountPoint`, reading files with
    /// `read` (a path → contents function; `nil` for a missing file). Malformed files are skipped.
    package static func tightestQuota(
        version: Int,
        directory: String,
        mountPoint: String,
        read: (String) -> String?
    ) -> CPUQuota? {
        var best: CPUQuota?
        var dir = directory
        while true {
            var found: CPUQuota?
            if version == 2 {
                if let text = read(dir + "/cpu.max") { found = try? parseCPUMax(text) }
            } else if let q = read(dir + "/cpu.cfs_quota_us"), let p = read(dir + "/cpu.cfs_period_us") {
                found = try? parseCFS(quota: q, period: p)
            }
            if var f = found {
                f.directory = dir
                if best == nil || f.cpus < best!.cpus { best = f }
            }
            if dir == mountPoint || dir.count <= mountPoint.count { break }
            guard let slash = dir.lastIndex(of: "/") else { break }
            dir = String(dir[..<slash])
            if dir.count < mountPoint.count { break }
        }
        return best
    }

    /// Where this process's CPU limit lives now: the tightest quota (either version) and the
    /// `cpu.stat` file of the cgroup that sets it (or of the process's own cgroup without a quota).
    package static func currentLimit() -> (quota: CPUQuota?, cpuStatPath: String?) {
        guard let membershipText = readFile("/proc/self/cgroup"), let mountText = readFile("/proc/self/mountinfo")
        else {
            return (nil, nil)
        }
        let membership = parseProcCgroup(membershipText)
        let mounts = parseMountInfo(mountText)
        var quota: CPUQuota?
        var statPath: String?
        if let path = membership.unifiedPath, let mount = mounts.unified, let dir = mount.directory(of: path) {
            quota = tightestQuota(version: 2, directory: dir, mountPoint: mount.mountPoint, read: readFile)
            if readFile(dir + "/cpu.max") != nil { statPath = dir + "/cpu.stat" }
        }
        if let path = membership.cpuControllerPath, let mount = mounts.cpuController,
            let dir = mount.directory(of: path)
        {
            if let v1 = tightestQuota(version: 1, directory: dir, mountPoint: mount.mountPoint, read: readFile),
                quota == nil || v1.cpus < quota!.cpus
            {
                quota = v1
            }
            if statPath == nil { statPath = dir + "/cpu.stat" }
        }
        if let q = quota { statPath = q.directory + "/cpu.stat" }
        return (quota, statPath)
    }

    /// Reads a `cpu.stat` file (either version), or `nil` when missing or malformed.
    package static func readThrottling(_ path: String) -> CPUThrottling? {
        guard let text = readFile(path) else { return nil }
        return try? parseCPUStat(text)
    }

    /// `1`, `1.5`, `0.25`: CPUs with up to two decimals.
    package static func formatCPUs(_ cpus: Double) -> String {
        let hundredths = Int((cpus * 100).rounded())
        if hundredths % 100 == 0 { return String(hundredths / 100) }
        let fraction = hundredths % 100
        return "\(hundredths / 100)."
            + (fraction % 10 == 0 ? String(fraction / 10) : (fraction < 10 ? "0\(fraction)" : String(fraction)))
    }

    /// The whole file at `path` as UTF-8 (small files: procfs, cgroupfs), or `nil`.
    package static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func trimmed(_ s: String) -> String {
        String(
            s.drop { $0 == " " || $0 == "\n" || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\n" || $0 == "\t" }
                .reversed()
        )
    }

    /// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
    private static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var out: [UInt8] = []
        let bytes = Array(field.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count {
                let digits = bytes[(i + 1)...(i + 3)]
                if digits.allSatisfy({ $0 >= 48 && $0 <= 55 }) {
                    out.append(digits.reduce(0) { $0 &* 8 &+ ($1 - 48) })
                    i += 4
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The CPUs this process may really use: its affinity mask *and* its cgroup CPU quota.
///
/// `count` (whole CPUs, the quota rounded up) sizes thread pools; `cpus` keeps the fraction for
/// reports and for comparing against the number of spinning threads. Public (with ``CPUQuota``)
/// because `CompiledGraph.effectiveCPUs` returns it.
public struct EffectiveCPUs: Sendable, Equatable, CustomStringConvertible {
    /// CPUs in the calling thread's affinity mask.
    public var affinity: Int
    /// The tightest cgroup CPU quota, or `nil` when there is none.
    public var quota: CPUQuota?

    /// Combines an affinity count (at least 1 is assumed) with an optional quota.
    package init(affinity: Int, quota: CPUQuota?) {
        self.affinity = max(1, affinity)
        self.quota = quota
    }

    /// CPUs' worth of time available, fractional: `min(affinity, quota)`.
    public var cpus: Double { min(Double(affinity), quota?.cpus ?? Double(affinity)) }

    /// Whole CPUs available: the quota rounded up, capped by the affinity mask, at least 1.
    public var count: Int {
        guard let q = quota else { return affinity }
        return max(1, min(affinity, Int(q.cpus.rounded(.up))))
    }

    /// Whether the quota, not the affinity mask, is the limit (threads on different CPUs share the budget).
    public var isQuotaLimited: Bool { quota.map { $0.cpus < Double(affinity) } ?? false }

    /// `2 CPUs (affinity 2, no quota)` or `1 CPUs (affinity 2, quota 1 CPUs (cgroup v1 ...))`.
    public var description: String {
        "\(CgroupCPU.formatCPUs(cpus)) CPUs (affinity \(affinity), "
            + (quota.map { "quota \($0)" } ?? "no cgroup quota") + ")"
    }

    /// Reads the affinity mask and the cgroup hierarchy now.
    package static func current() -> EffectiveCPUs {
        EffectiveCPUs(affinity: CPU.allowedCPUs().count, quota: CgroupCPU.currentLimit().quota)
    }
}
