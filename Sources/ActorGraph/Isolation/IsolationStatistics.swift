import ActorGraphPlatform
import Glibc
import Synchronization

/// What the supervisor of a compiled graph observed (process mode: crashes and restarts; both
/// modes: stages reported past ``CompileOptions/stageTimeLimit``).
public struct IsolationStatistics: Sendable, Equatable {
    /// Worker processes that died while the graph was running (not counting `shutdown()`).
    public var crashes = 0
    /// Worker processes started again after a crash.
    public var restarts = 0
    /// Workers killed (process mode) or reported (thread mode) for a stage past the time limit.
    public var stuckStageReports = 0
    /// From the supervisor seeing a worker's death to its replacement reporting ready, last and worst.
    public var lastRecoveryNanoseconds: UInt64 = 0
    /// The worst recovery so far.
    public var maxRecoveryNanoseconds: UInt64 = 0
    /// The process id of each worker now (process mode; 0 while it is being restarted or after shutdown).
    public var workerProcessIDs: [Int32] = []
    /// The process id of each worker's standby process (``ProcessOptions/standbyWorkers``; 0: none now).
    public var standbyProcessIDs: [Int32] = []
    /// Restarts that activated a standby process instead of spawning one.
    public var standbyActivations = 0
    /// Why the last worker died (`signal 9 (SIGKILL)`, `exit status 3`, …).
    public var lastCrashReason: String?
    /// When the supervisor saw each worker death (monotonic clock, nanoseconds), oldest first.
    public var deathTimes: [UInt64] = []
    /// True once a worker used up its restarts and the graph failed.
    public var restartsExhausted = false
}
