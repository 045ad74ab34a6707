import ActorGraphBenchSuite
import ArgumentParser
import Synchronization

/// `actorgraph bench`: the compiled graph against the dynamic task path, the sequential lower bound
/// and the machine's physical limit (pinned cache-line ping-pong), in one run.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark compiled vs dynamic vs sequential execution against a cache-line ping-pong baseline.",
        discussion: """
        Prints a latency table (p50/p99/p99.9/max), ratios compiled/dynamic and compiled/ping-pong, \
        pipelined throughput, paced-load latency, allocations per execution and peak RSS; writes \
        results.json, results.csv, latency.svg and table.txt to the output directory. The last line \
        printed is the `summary:` line.
        """)

    @Flag(name: .long, help: "Fewer samples: finishes in well under a minute.")
    var quick = false

    @Option(name: .long, help: "Directory for results.json, results.csv, latency.svg and table.txt.")
    var output = "bench-results"

    @Option(name: .customLong("case"), help: "Run only this case or case prefix (repeatable): echo, chain3, chain8, diamond, fanout4, pipelined, paced, ...")
    var cases: [String] = []

    func run() async throws {
        MallocCounter.enabled.store(true, ordering: .relaxed)
        let counter = AllocationCounter(
            method: "interposed malloc/calloc/realloc/posix_memalign/aligned_alloc/memalign in the actorgraph binary, every call counted, whole process") {
            MallocCounter.calls.load(ordering: .relaxed)
        }
        _ = try await BenchSuite.run(BenchOptions(quick: quick, outputDirectory: output, cases: cases, allocationCounter: counter))
    }
}

// MARK: Allocation counting

/// Counts every call into the C allocator made by this process (the Swift runtime's
/// `swift_slowAlloc`, Swift Concurrency's task allocator, Foundation, libdispatch...): the
/// executable defines the `malloc` family, which the dynamic linker binds ahead of glibc's, and
/// forwards each call to glibc's own entry points (`__libc_malloc`, ...). Cost per call: one
/// relaxed load, plus one atomic add while `bench` is running.
enum MallocCounter {
    static let calls = Atomic<UInt64>(0)
    static let enabled = Atomic<Bool>(false)

    @inline(__always)
    static func count() {
        if enabled.load(ordering: .relaxed) { calls.add(1, ordering: .relaxed) }
    }
}

@_silgen_name("__libc_malloc") private func libcMalloc(_ size: Int) -> UnsafeMutableRawPointer?
@_silgen_name("__libc_calloc") private func libcCalloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer?
@_silgen_name("__libc_realloc") private func libcRealloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer?
@_silgen_name("__libc_memalign") private func libcMemalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer?

@_cdecl("malloc")
public func interposedMalloc(_ size: Int) -> UnsafeMutableRawPointer? {
    MallocCounter.count()
    return libcMalloc(size)
}

@_cdecl("calloc")
public func interposedCalloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    MallocCounter.count()
    return libcCalloc(count, size)
}

@_cdecl("realloc")
public func interposedRealloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    MallocCounter.count()
    return libcRealloc(pointer, size)
}

@_cdecl("memalign")
public func interposedMemalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    MallocCounter.count()
    return libcMemalign(alignment, size)
}

@_cdecl("aligned_alloc")
public func interposedAlignedAlloc(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    MallocCounter.count()
    return libcMemalign(alignment, size)
}

@_cdecl("posix_memalign")
public func interposedPosixMemalign(_ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ alignment: Int, _ size: Int) -> Int32 {
    MallocCounter.count()
    // EINVAL unless the alignment is a power of two multiple of the pointer size.
    guard alignment >= MemoryLayout<UnsafeRawPointer>.size, alignment & (alignment - 1) == 0 else { return 22 }
    guard let p = libcMemalign(alignment, size) else { return 12 } // ENOMEM
    result.pointee = p
    return 0
}
