import ActorGraphPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A child process started with `posix_spawn`, its standard output read line by line on a thread
/// (so the child never blocks on a full pipe). Used to run `actorgraph serve` under the fuzzer and
/// the CLI in tests. (The platform's `ChildProcess` is the other kind: worker processes watched
/// through a pidfd.)
public final class LineReadingProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    private let lines = LineBuffer()
    private let reader: PinnedThread
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `path` with `arguments` (argv[1...]) and the current environment.
    public init(path: String, arguments: [String]) throws(Errno) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw Errno(rawValue: errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let r = posix_spawn(&pid, path, &actions, nil, argv, environ)
        close(fds[1])
        guard r == 0 else {
            close(fds[0])
            throw Errno(rawValue: r)
        }
        self.pid = pid
        let readFD = fds[0]
        let lines = self.lines
        reader = try PinnedThread(name: "child-stdout", cpu: nil, stackSize: 256 << 10) {
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                for byte in chunk[0..<n] {
                    if byte == UInt8(ascii: "\n") {
                        let line = String(decoding: pending, as: UTF8.self)
                        lines.append(line)
                        pending.removeAll(keepingCapacity: true)
                    } else {
                        pending.append(byte)
                    }
                }
            }
            close(readFD)
        }
    }

    /// Lines the child wrote so far.
    public var output: [String] { lines.all }

    /// Waits up to `timeout` for a line satisfying `match`.
    public func waitForLine(timeout: Duration, where match: (String) -> Bool) -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = output.first(where: match) { return line }
            if !isRunning { return output.first(where: match) }
            usleep(10_000)
        }
        return nil
    }

    /// Whether the child has not exited (reaps it once it has).
    public var isRunning: Bool {
        exitStatus.withLock { status in
            if status != nil { return false }
            var s: Int32 = 0
            let r = waitpid(pid, &s, WNOHANG)
            if r == pid {
                status = s
                return false
            }
            return r == 0
        }
    }

    /// Sends `signal` and waits for the child to exit; returns its raw wait status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32 {
        if isRunning { kill(pid, signal) }
        let status = exitStatus.withLock { status -> Int32 in
            if let status { return status }
            var s: Int32 = 0
            while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
            status = s
            return s
        }
        reader.join()
        return status
    }
}

/// Lines shared between the reader thread and callers.
final class LineBuffer: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
