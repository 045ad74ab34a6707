import ActorGraph
import ActorGraphPlatform
import Glibc
import IsolationFixtures
import Synchronization
import XCTest

/// The worker executable the tests spawn: built beside the test bundle (a dependency of this
/// target). Inside XCTest `/proc/self/exe` is the test runner, which knows none of the graphs.
func fixtureExecutable() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    var dir = exe
    while let last = dir.last, last != "/" { dir.removeLast() }
    // `swift test` runs `.build/<config>/ActorGraphPackageTests.xctest` on Linux.
    return dir + "actorgraph-isolation-fixture"
}

/// Process-mode options for tests: unpinned, eager parking (2 cores shared with the test thread),
/// the fixture executable as the worker program.
func processOptions(
    workers: Int = 1,
    capacity: Int = 64,
    placement: Placement = .automatic,
    restarts: RestartPolicy = RestartPolicy(),
    stageTimeLimit: Duration? = nil,
    standby: Bool = false
) -> CompileOptions {
    if access(fixtureExecutable(), X_OK) != 0 {
        XCTFail("\(fixtureExecutable()) is missing: build it with `swift build --build-tests` (it builds every target)")
    }
    return CompileOptions(
        workers: workers,
        capacity: capacity,
        pinWorkers: false,
        idle: IdlePolicy(workerSpins: 256, callerSpins: 256, spinTime: .zero, parkTimeout: .milliseconds(20)),
        submitTimeout: .seconds(10),
        placement: placement,
        isolation: .processes(
            ProcessOptions(
                restartPolicy: restarts,
                workerExecutable: fixtureExecutable(),
                standbyWorkers: standby
            )
        ),
        stageTimeLimit: stageTimeLimit
    )
}

/// The pids of this process's living or unreaped children (from every thread's `children` list).
func childProcesses() -> [Int32] {
    var result: [Int32] = []
    guard let dir = opendir("/proc/self/task") else { return [] }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name.first?.isNumber == true else { continue }
        let text = readSmallFile("/proc/self/task/\(name)/children")
        result += text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
    return result
}

/// Entries in a /proc directory of this process (`fd`, `task`).
/// Threads of this process other than libdispatch's pool (names containing "qos"), which starts and
/// retires workers on its own schedule. Waits up to 5 s for the count to come down to `target`:
/// a joined thread's `/proc` entry can outlive the join by a moment.
func countThreads(settlingTo target: Int? = nil) -> Int {
    func count() -> Int {
        guard let dir = opendir("/proc/self/task") else { return -1 }
        defer { closedir(dir) }
        var n = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.first?.isNumber == true else { continue }
            if !readSmallFile("/proc/self/task/\(name)/comm").contains("qos") { n += 1 }
        }
        return n
    }
    var n = count()
    guard let target else { return n }
    let deadline = ContinuousClock.now + .seconds(5)
    while n > target && ContinuousClock.now < deadline {
        usleep(10_000)
        n = count()
    }
    return n
}

func countEntries(_ path: String) -> Int {
    guard let dir = opendir(path) else { return -1 }
    defer { closedir(dir) }
    var n = 0
    while let entry = readdir(dir) {
        let first = entry.pointee.d_name.0
        if first != UInt8(ascii: ".") { n += 1 }
    }
    return n
}

/// Lines of /proc/self/maps that the engine creates and must release exactly: shared regions
/// (memfd) and io_uring rings. (The total also moves with malloc arenas and cached thread stacks.)
func countEngineMappings() -> Int {
    readSmallFile("/proc/self/maps").split(separator: "\n").filter {
        $0.contains("/memfd:") || $0.contains("[io_uring]")
    }.count
}

func readSmallFile(_ path: String) -> String {
    guard let f = fopen(path, "r") else { return "" }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Sleeps `ms` milliseconds.
func sleepMilliseconds(_ ms: Int) { usleep(useconds_t(ms * 1000)) }

/// One answer per execution: the result, or the typed error.
enum Answer: Equatable, CustomStringConvertible, Sendable {
    case value(Int)
    case error(String)

    var description: String {
        switch self {
        case .value(let v): return "\(v)"
        case .error(let e): return e
        }
    }
}

extension String {
    func trimmingCharacters(in _: CharacterSetLike) -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

enum CharacterSetLike { case whitespacesAndNewlines }

/// Submits `jobs` to `compiled` (all in flight at once), then waits for each: exactly one answer
/// per execution by construction (a pending execution is consumed by its one wait). A submission
/// that throws is that execution's answer.
func runBatch(_ compiled: CompiledGraph<Job, Int>, _ jobs: ArraySlice<Job>) -> [Result<Int, ExecutionError>] {
    guard let first = jobs.first else { return [] }
    let pending: PendingExecution<Int>
    do { pending = try compiled.submit(first) } catch {
        return [.failure(error)] + runBatch(compiled, jobs.dropFirst())
    }
    let rest = runBatch(compiled, jobs.dropFirst())
    let mine: Result<Int, ExecutionError>
    do { mine = .success(try pending.wait(timeout: .seconds(20))) } catch { mine = .failure(error) }
    return [mine] + rest
}

/// One answer handed from a task to the test.
final class AnswerBox: Sendable {
    private let value = Mutex<Answer?>(nil)
    func set(_ answer: Answer) { value.withLock { $0 = answer } }
    func get() -> Answer? { value.withLock { $0 } }
}
