import ActorGraph
import ActorGraphPlatform

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Faults injected into isolated workers from outside the engine, the way an operator or the
/// kernel would (`SIGKILL`, `SIGSTOP`): shared by `actorgraph faults` and the soak.
public enum WorkerFaults {
    /// The process id of worker `worker` of `compiled` (``Isolation/processes``), read from
    /// ``CompiledGraph/isolationStatistics``. While the worker is being restarted the id reads 0:
    /// polls every millisecond for up to `timeout` (`.zero`: one read). Nil when there is none.
    public static func processID<Input, Output>(
        of compiled: CompiledGraph<Input, Output>,
        worker: Int,
        waitingUpTo timeout: Duration = .seconds(5)
    ) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let ids = compiled.isolationStatistics.workerProcessIDs
            if worker < ids.count, ids[worker] > 0 { return ids[worker] }
            if ContinuousClock.now >= deadline { return nil }
            usleep(1_000)
        }
    }

    /// Sends `signal` to `pid` if it is still a child of this process (see
    /// `ChildProcess.signal(child:_:)`: never an unrelated process that reused the id of a worker
    /// that was reaped in the meantime). True when it was delivered.
    @discardableResult
    public static func send(_ signal: Int32, to pid: Int32) -> Bool {
        ActorGraphPlatform.ChildProcess.signal(child: pid, signal)
    }

    /// The ids of this process's children, running or not yet reaped (zombies included), read from
    /// every thread's `/proc/self/task/<tid>/children` (a child is listed under the thread that
    /// spawned it).
    public static func childProcesses() -> [Int32] {
        guard let dir = opendir("/proc/self/task") else { return [] }
        defer { closedir(dir) }
        var result: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.first?.isNumber == true else { continue }
            let text = String(decoding: ProcessResources.read("/proc/self/task/\(name)/children"), as: UTF8.self)
            result += text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int32($0) }
        }
        return result
    }
}
