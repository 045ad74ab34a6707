import ActorGraphPlatform
import Synchronization

/// Runs an execution on the calling thread while the workers it needs are parked (thread mode).
///
/// Data flow: `execute` claims `k` and publishes its input, then, instead of ringing a parked
/// worker's doorbell (a cross-CPU wake-up: 20–150 µs on a VM whose idle vCPU has halted), takes the
/// parked workers over and runs their segments itself, in the same order a worker would, until
/// `k`'s result is published; then it gives the workers back. A worker that is awake is never taken
/// over: the hand-off through the rings is faster than doing its work.
///
/// Ownership lives in each worker's park word: `0` awake, `1` parked, `2` parked and taken over
/// by a caller. A caller takes a worker with one CAS `1 → 2` (so a producer's wake-up CAS `1 → 0`
/// fails while it holds it: nobody rings a worker whose segments are running elsewhere), and gives
/// it back by storing `1`, a full fence, and a look at what became ready meanwhile (the other half
/// of the Dekker pair with those producers, who saw `2` and did not ring). A worker that wakes (its
/// park timeout) and finds `2` waits on the word until the caller gives it back. Actor state, the
/// runners' positions and statistics therefore have one owner at a time, ordered by the CAS
/// (acquire) and the store (release).
///
/// Never taken over: process mode (stages stay out of the caller by design), graphs with a
/// ``CompileOptions/stageTimeLimit`` or an I/O attachment, executions with a deadline (a caller
/// inside a stage could not answer its own deadline), and graphs whose timed inline runs (one in
/// ``timedRunInterval``) took longer than ``slowRunNanoseconds`` ``slowRunsToStop`` times in a row (their stages are long: a wake-up is
/// noise there, and other callers should not queue behind the caller running them; one slow run
/// alone may be the caller's own preemption).
///
/// `@unchecked Sendable`: its pointers address the region and the runners, which every thread may
/// read; a runner is only run by whoever holds its worker's park word (see above).
final class CallerTakeover: @unchecked Sendable {
    /// Park words of the workers that own segments, in worker order (taken in this order).
    private let parkWords: [UnsafeMutablePointer<Atomic<UInt32>>]
    /// Every runner of those workers, worker by worker: one round runs each once.
    private let runners: [Unmanaged<SegmentRunner>]
    /// Keeps the runners alive (`runners` holds them unretained: no ARC traffic per run).
    private let runnerStore: [SegmentRunner]
    private let inputRing: SlotRing
    private let resultRing: SlotRing
    private let stopping: UnsafeMutablePointer<Atomic<UInt32>>
    /// Cleared for good once inline runs were slow ``slowRunsToStop`` times in a row.
    private let enabled = Atomic<Bool>(true)
    private let slowRunsInARow = Atomic<Int>(0)
    /// Executions run on callers' threads so far (diagnostics).
    let inlineRuns = Atomic<Int>(0)

    /// Inline runs longer than this, ``slowRunsToStop`` times in a row, turn take-overs off for the graph.
    static let slowRunNanoseconds: UInt64 = 1_000_000
    static let slowRunsToStop = 3
    /// One inline run in this many (a power of two) is timed.
    static let timedRunInterval = 8

    /// Park-word values (see the type's documentation).
    enum ParkWord {
        static let awake: UInt32 = 0
        static let parked: UInt32 = 1
        static let takenOver: UInt32 = 2
    }

    init(workers: [Worker], inputRing: SlotRing, resultRing: SlotRing, stopping: UnsafeMutablePointer<Atomic<UInt32>>) {
        let owning = workers.filter { !$0.runners.isEmpty }
        parkWords = owning.map(\.parkWord)
        runnerStore = owning.flatMap(\.runners)
        runners = runnerStore.map { Unmanaged.passUnretained($0) }
        self.inputRing = inputRing
        self.resultRing = resultRing
        self.stopping = stopping
    }

    /// Runs until `k` is published on this thread if every worker is parked now; returns whether
    /// `k` was published here. `false`: nothing was taken, or the run stopped early (shutdown):
    /// the caller waits as usual (and the workers were rung if anything was left for them).
    func runIfParked(_ k: Int) -> Bool {
        guard enabled.load(ordering: .relaxed) else { return false }
        var taken = 0
        while taken < parkWords.count {
            guard
                parkWords[taken].pointee.compareExchange(
                    expected: ParkWord.parked,
                    desired: ParkWord.takenOver,
                    ordering: .sequentiallyConsistent
                ).exchanged
            else { break }
            taken &+= 1
        }
        guard taken == parkWords.count else {
            giveBack(taken, after: nil)
            return false
        }
        // One run in eight is timed: two clock reads are a noticeable part of a cold run after idle
        // (the vDSO and clock pages), and a slow stage is slow every time anyway.
        let runs = inlineRuns.load(ordering: .relaxed)
        let timed = runs & (CallerTakeover.timedRunInterval - 1) == 0
        let started = timed ? MonotonicClock.now() : 0
        var published = false
        while true {
            var progressed = false
            for runner in runners where runner._withUnsafeGuaranteedRef({ $0.runBatch(1) }) > 0 { progressed = true }
            if resultRing.isPublished(k) {
                published = true
                break
            }
            if !progressed { break }  // stopping: runOne refuses to start anything
        }
        if timed { noteRunTime(MonotonicClock.now() &- started) }
        // A plain store, not a locked add: concurrent take-overs of one graph are serialized by
        // the park words (only the holder gets here), so no increment is lost.
        inlineRuns.store(runs &+ 1, ordering: .relaxed)
        giveBack(taken, after: published ? k : nil)
        return published
    }

    /// Learns from a timed inline run: ``slowRunsToStop`` slow ones in a row turn take-overs off.
    private func noteRunTime(_ nanoseconds: UInt64) {
        if nanoseconds > CallerTakeover.slowRunNanoseconds {
            // One slow run can be the caller's own preemption (a busy neighbour); a slow stage is
            // slow every time.
            if slowRunsInARow.add(1, ordering: .relaxed).newValue >= CallerTakeover.slowRunsToStop {
                enabled.store(false, ordering: .relaxed)
                logger.notice(
                    "stages run on the caller's thread took over 1 ms \(CallerTakeover.slowRunsToStop) times in a row: callers no longer run this graph's stages"
                )
            }
        } else if slowRunsInARow.load(ordering: .relaxed) != 0 {
            slowRunsInARow.store(0, ordering: .relaxed)
        }
    }

    /// Gives the first `count` workers back (`2 → 1`), then rings them if work arrived meanwhile or
    /// the graph is stopping.
    ///
    /// `after`: the execution this thread just saw published. Every segment feeds the output (the
    /// compiler rejects dead stages) and runs in sequence order, so every segment is past it, and
    /// only an input published after it can be waiting: one stamp to read, never a runner's fields
    /// (a woken worker may be moving them already). `nil` (nothing run, or a partial take: a worker
    /// upstream may have published into a ring of one taken here): ring them all.
    private func giveBack(_ count: Int, after k: Int?) {
        guard count > 0 else { return }
        for i in 0..<count { parkWords[i].pointee.store(ParkWord.parked, ordering: .sequentiallyConsistent) }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let ring =
            k.map { stopping.pointee.load(ordering: .sequentiallyConsistent) != 0 || inputRing.isPublished($0 &+ 1) }
            ?? true
        if ring {
            for i in 0..<count { Worker.wake(parkWords[i], shared: false) }
        }
    }
}
