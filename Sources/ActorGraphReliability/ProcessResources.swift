#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the process holds, read from `/proc/self`: resident memory, open descriptors, threads and
/// memory mappings. Comparing two samples taken in the same state shows leaks.
public struct ProcessResources: Sendable, Equatable, CustomStringConvertible {
    /// Resident set size in KiB (`VmRSS` of `/proc/self/status`).
    public var rssKiB: Int
    /// Entries of `/proc/self/fd` (the directory's own descriptor excluded).
    public var openFileDescriptors: Int
    /// Entries of `/proc/self/task`, less the Swift concurrency pool's threads (see `poolThreads`).
    public var threads: Int
    /// Threads of libdispatch's root queues (the Swift concurrency pool: names containing "qos").
    /// libdispatch starts and retires them on its own schedule (idle ones exit after a few seconds),
    /// so they are counted apart; a call stuck on one shows up as a hang instead.
    public var poolThreads: Int
    /// Lines of `/proc/self/maps`, less the malloc arena heaps (counted in `mallocArenaHeaps`).
    /// Still includes what the Swift runtime and glibc keep once mapped (cached thread stacks), so a
    /// healthy process may end a few lines above its baseline; `engineMappings` is exact.
    public var mappings: Int
    /// Lines of glibc's per-thread malloc arena heaps: 64 MiB reservations aligned to 64 MiB (a
    /// read-write part and the `---p` rest). glibc creates an arena lazily when a thread finds the
    /// others locked, up to 8 per CPU, and never unmaps one, so they are counted apart.
    public var mallocArenaHeaps: Int
    /// Mappings the engine itself creates and must release exactly: shared regions (`memfd:`) and
    /// io_uring rings (`anon_inode:[io_uring]`).
    public var engineMappings: Int
    /// Child processes, running or not yet reaped (isolated workers and their standbys): see
    /// ``WorkerFaults/childProcesses()``.
    public var childProcesses: Int

    /// Samples the current process.
    public static func sample() -> ProcessResources {
        let maps = mappingCounts()
        return ProcessResources(
            rssKiB: statusField("VmRSS:") ?? -1,
            openFileDescriptors: max(0, directoryEntries("/proc/self/fd") - 1),
            threads: directoryEntries("/proc/self/task") - poolThreadCount(),
            poolThreads: poolThreadCount(),
            mappings: maps.all - maps.arena,
            mallocArenaHeaps: maps.arena,
            engineMappings: maps.engine,
            childProcesses: WorkerFaults.childProcesses().count
        )
    }

    /// `rss_kib=… fds=… threads=… pool_threads=… maps=… arena_maps=… engine_maps=… children=…`.
    public var description: String {
        "rss_kib=\(rssKiB) fds=\(openFileDescriptors) threads=\(threads) pool_threads=\(poolThreads) maps=\(mappings) arena_maps=\(mallocArenaHeaps) engine_maps=\(engineMappings) children=\(childProcesses)"
    }

    /// Entries of a directory other than `.` and `..`; -1 when it cannot be read.
    static func directoryEntries(_ path: String) -> Int {
        guard let dir = opendir(path) else { return -1 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { count += 1 }
        }
        return count
    }

    /// The whole of a small `/proc` file (they report size 0, so read until EOF).
    static func read(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Threads whose name (`/proc/self/task/N/comm`) marks them as libdispatch root-queue workers.
    static func poolThreadCount() -> Int {
        guard let dir = opendir("/proc/self/task") else { return 0 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.first?.isNumber == true else { continue }
            let comm = String(decoding: read("/proc/self/task/\(name)/comm"), as: UTF8.self)
            if comm.contains("qos") { count += 1 }
        }
        return count
    }

    /// Each mapping of `/proc/self/maps` as its size in KiB, permissions and pathname (addresses,
    /// offsets and inodes left out), so two listings can be compared as multisets.
    public static func mappingSignatures() -> [String] {
        String(decoding: read("/proc/self/maps"), as: UTF8.self).split(separator: "\n").map { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5 else { return String(line) }
            let range = fields[0].split(separator: "-")
            var size = 0
            if range.count == 2, let lo = Int(range[0], radix: 16), let hi = Int(range[1], radix: 16) {
                size = (hi - lo) >> 10
            }
            let path = fields.count > 5 ? fields[5...].joined(separator: " ") : "[anon]"
            return "\(size)KiB \(fields[1]) \(path)"
        }
    }

    /// Lines of `/proc/self/maps`; those of malloc arena heaps; those naming a memfd or an io_uring
    /// instance.
    static func mappingCounts() -> (all: Int, arena: Int, engine: Int) {
        let heapSize = 64 << 20  // glibc's HEAP_MAX_SIZE on 64-bit: 2 × DEFAULT_MMAP_THRESHOLD_MAX
        var all = 0
        var arena = 0
        var engine = 0
        // (start, end, perms, named) of each line, in address order.
        var previous: (start: Int, end: Int, readWrite: Bool, named: Bool)?
        for line in String(decoding: read("/proc/self/maps"), as: UTF8.self).split(separator: "\n") {
            all += 1
            if line.contains("/memfd:") || line.contains("[io_uring]") { engine += 1 }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            let range = fields.first?.split(separator: "-") ?? []
            guard fields.count >= 5, range.count == 2, let start = Int(range[0], radix: 16),
                let end = Int(range[1], radix: 16)
            else {
                previous = nil
                continue
            }
            let named = fields.count > 5
            let perms = fields[1]
            // An arena heap: an anonymous rw-p part at a 64 MiB boundary followed by an anonymous
            // ---p part, together exactly 64 MiB.
            if let p = previous, p.readWrite, !p.named, !named, perms == "---p", p.end == start,
                p.start % heapSize == 0, end - p.start == heapSize
            {
                arena += 2
            }
            previous = (start, end, perms == "rw-p", named)
        }
        return (all, arena, engine)
    }

    /// The number after `field` in `/proc/self/status` (in kB for memory fields).
    static func statusField(_ field: String) -> Int? {
        let text = String(decoding: read("/proc/self/status"), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            return Int(line.dropFirst(field.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }
}
