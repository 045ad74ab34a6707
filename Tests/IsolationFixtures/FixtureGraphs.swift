import ActorGraph
import Glibc

/// What the `fault` stage does with one execution (the fault-injection vocabulary of the tests).
public enum FaultAction: Int32, Sendable {
    /// Return `value * 2`.
    case none = 0
    /// Index an array out of bounds (a Swift runtime trap).
    case trap = 1
    /// Call `abort()`.
    case abort = 2
    /// Never return (stands in for a stuck call).
    case hang = 3
    /// Throw ``FixtureError``.
    case throwError = 4
    /// Call `exit(7)`.
    case exit = 5
    /// Sleep `value` milliseconds, then return `value * 2`.
    case slow = 6
}

/// One execution's input: a value and what the `fault` stage should do with it (trivially copyable).
public struct Job: Sendable, Equatable {
    /// The value.
    public var value: Int
    /// The fault to inject, as a ``FaultAction`` raw value.
    public var action: Int32

    /// A job.
    public init(_ value: Int, _ action: FaultAction = .none) {
        self.value = value
        self.action = action.rawValue
    }
}

/// The error the `fault` stage throws for ``FaultAction/throwError``.
public struct FixtureError: Error, CustomStringConvertible {
    /// The value of the execution.
    public let value: Int
    /// `fixture error for value N: ünïcödé ✓`.
    public var description: String { "fixture error for value \(value): ünïcödé ✓" }
}

/// What ``FixtureGraphs/words()`` answers (crosses processes encoded).
public struct WordStats: Sendable, Equatable, WireEncodable {
    public var upper: String
    public var words: [String]
    public var lengths: [Int]
    public var longest: String?

    public init(upper: String, words: [String], lengths: [Int], longest: String?) {
        self.upper = upper
        self.words = words
        self.lengths = lengths
        self.longest = longest
    }

    public func encode(to writer: inout WireWriter) {
        writer.write(upper)
        writer.write(words)
        writer.write(lengths)
        writer.write(longest)
    }

    public init(from reader: inout WireReader) throws {
        self.init(
            upper: try reader.read(),
            words: try reader.read(),
            lengths: try reader.read(),
            longest: try reader.read()
        )
    }
}

/// A reference type: neither trivially copyable nor ``WireEncodable``.
public final class Box: Sendable {
    public let value: Int
    public init(_ value: Int) { self.value = value }
}

/// Graphs shared by the isolation tests and the worker executable that runs them.
public enum FixtureGraphs {
    /// `x + 1`.
    public static func echo() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in x.then(name: "plus1") { $0 + 1 } }
    }

    /// `fault` (does the job's action, else `value * 2`) then `plus1`: `2 * value + 1`.
    public static func faulty() -> Graph<Job, Int> {
        Graph(input: Job.self) { x in
            x.then(name: "fault") { job -> Int in
                switch FaultAction(rawValue: job.action) ?? .none {
                case .none: return job.value * 2
                case .trap:
                    let small = [1, 2]
                    return small[job.value + 5]
                case .abort: Glibc.abort()
                case .hang:
                    while true { sleep(1000) }
                case .throwError: throw FixtureError(value: job.value)
                case .exit: Glibc.exit(7)
                case .slow:
                    usleep(useconds_t(job.value * 1000))
                    return job.value * 2
                }
            }
            .then(name: "plus1") { $0 + 1 }
        }
    }

    /// The diamond: (2x + 1) + (2x)², one stage per worker with `.spread`.
    public static func diamond() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            let a = x.then(name: "scale") { $0 * 2 }
            let b = a.then(name: "plus1") { $0 + 1 }
            let c = a.then(name: "square") { $0 * $0 }
            return zip(b, c).then(name: "sum") { $0 + $1 }
        }
    }

    /// The environment variable naming the file ``startRecorder()`` appends stage start times to.
    public static let startLogKey = "ACTORGRAPH_FIXTURE_START_LOG"

    /// `recordStart` appends the monotonic time (ns, one line; the clock is shared by every process)
    /// to the file named by ``startLogKey``, then sleeps `value` ms (a negative value: forever).
    public static func startRecorder() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(name: "recordStart") { v -> Int in
                if let path = getenv(startLogKey) {
                    var now = timespec()
                    clock_gettime(CLOCK_MONOTONIC, &now)
                    let line = "\(Int(now.tv_sec) * 1_000_000_000 + now.tv_nsec)\n"
                    let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
                    if fd >= 0 {
                        _ = line.withCString { write(fd, $0, strlen($0)) }
                        close(fd)
                    }
                }
                if v < 0 { while true { sleep(1000) } }
                usleep(useconds_t(v * 1000))
                return v
            }
        }
    }

    /// Text split into words and measured: values that are not trivially copyable (a `String`,
    /// `[String]`, `[Int]`, a zip's tuple of them, ``WordStats``) cross worker processes encoded.
    /// With `.spread` every stage has its own channel, so every one of them crosses.
    public static func words() -> Graph<String, WordStats> {
        Graph(input: String.self) { text in
            text.maxEncodedBytes(1024)
            let words = text.then(name: "split") { $0.split(separator: " ").map(String.init) }.maxEncodedBytes(2048)
            let lengths = words.then(name: "lengths") { $0.map(\.utf8.count) }
            let upper = text.then(name: "upper") { $0.uppercased() }
            return zip(upper, words, lengths, name: "zip").maxEncodedBytes(8192).then(name: "stats") {
                upper,
                words,
                lengths in
                WordStats(
                    upper: upper,
                    words: words,
                    lengths: lengths,
                    longest: words.max { $0.utf8.count < $1.utf8.count }
                )
            }.maxEncodedBytes(3000)
        }
    }

    /// The input crosses within 64 bytes (a `String` takes 4 + its UTF-8 bytes); `grow` answers a
    /// number `n` with `n` × "x" (anything else: as many "x" as it has bytes; "abort": abort()) within 100 bytes.
    public static func sized() -> Graph<String, String> {
        Graph(input: String.self) { text in
            text.maxEncodedBytes(64)
            return text.then(name: "grow") { text -> String in
                if text == "abort" { abort() }
                return String(repeating: "x", count: Int(text) ?? text.utf8.count)
            }.maxEncodedBytes(100)
        }
    }

    /// A class value (neither copyable as bytes nor encodable) between two stages: fine while the
    /// two are fused on one worker (it never crosses), refused at compile when it would cross.
    public static func boxed() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(name: "box") { Box($0) }.then(name: "unbox") { $0.value * 10 }
        }
    }

    /// Every graph the fixture executable can run as a worker.
    public static var all: [any IsolatableGraph] {
        [echo(), faulty(), diamond(), startRecorder(), words(), sized(), boxed()]
    }
}
