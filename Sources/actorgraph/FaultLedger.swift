import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import Synchronization

/// Every execution's answers, by id, and the first success after each worker death (the `faults`
/// campaigns, local and remote).
final class FaultLedger: Sendable {
    private struct State {
        var answers: [Int: Int] = [:]
        var submitted = 0
        var successes: [UInt64] = []
        var errorTimes: [UInt64] = []
        var typedErrors = 0
        var hung = 0
        var wrong = 0
        var duplicates = 0
        var hostLost = 0
    }
    private let state = Mutex(State())
    private let successTotal = Atomic<Int>(0)

    /// Executes one request and records its one answer (a result or a typed error).
    func execute(_ compiled: CompiledGraph<FaultInjection.Request, Int>, _ request: FaultInjection.Request) {
        record(id: request.id) { () throws(ExecutionError) in try compiled.execute(request, timeout: .seconds(10)) }
    }

    /// The same for a graph whose input is the id itself (the remote fault graph: 2·id + 1).
    func execute(_ compiled: CompiledGraph<Int, Int>, id: Int) {
        record(id: id) { () throws(ExecutionError) in try compiled.execute(id, timeout: .seconds(10)) }
    }

    /// Successful executions so far (read without the lock: campaigns poll it to see recovery).
    var successCount: Int { successTotal.load(ordering: .relaxed) }

    /// Runs `call` (an execution whose value is 2·owner + 1) and records its one answer; a
    /// `timedOut` counts as hung.
    private func record(id: Int, _ call: () throws(ExecutionError) -> Int) {
        state.withLock { $0.submitted += 1 }
        do {
            let value = try call()
            let now = MonotonicClock.now()
            successTotal.add(1, ordering: .relaxed)
            // The value names the execution it belongs to: a result delivered to the wrong caller
            // shows up as a second answer for its real owner.
            let owner = (value - 1) / 2
            state.withLock {
                $0.successes.append(now)
                if owner != id { $0.wrong += 1 }
                $0.answers[owner, default: 0] += 1
                if $0.answers[owner]! > 1 { $0.duplicates += 1 }
            }
        } catch {
            let now = MonotonicClock.now()
            state.withLock {
                if case .timedOut = error {
                    $0.hung += 1
                    return
                }
                if case .hostLost = error { $0.hostLost += 1 }
                $0.typedErrors += 1
                $0.errorTimes.append(now)
                $0.answers[id, default: 0] += 1
                if $0.answers[id]! > 1 { $0.duplicates += 1 }
            }
        }
    }

    struct Report {
        var submitted: Int
        var answered: Int
        var lost: Int
        var hung: Int
        var duplicates: Int
        var wrong: Int
        var maxRecoveryMilliseconds: Double
        /// Typed errors that were ``ExecutionError/hostLost(host:reason:)``.
        var hostLost: Int

        /// What breaks the campaign's promise: lost, hung, duplicated or wrong answers (`wrong`
        /// names the last kind in the message).
        func problems(wrong wrongKind: String = "wrong result(s)") -> [String] {
            var problems: [String] = []
            if lost > 0 { problems.append("\(lost) execution(s) lost") }
            if hung > 0 { problems.append("\(hung) execution(s) hung") }
            if duplicates > 0 { problems.append("\(duplicates) execution(s) answered twice") }
            if wrong > 0 { problems.append("\(wrong) \(wrongKind)") }
            return problems
        }
    }

    /// The worst time from each of `kills` to the first typed error answered after it, in ms.
    func worstAnswerMilliseconds(after kills: [UInt64]) -> Double {
        state.withLock { s in
            let sorted = s.errorTimes.sorted()
            var worst: UInt64 = 0
            for kill in kills {
                if let first = sorted.first(where: { $0 > kill }) { worst = max(worst, first &- kill) }
            }
            return Double(worst) / 1e6
        }
    }

    /// The answers so far; `deaths`: worker deaths, for the worst time to the next success.
    func report(deaths: [UInt64] = []) -> Report {
        state.withLock { s in
            let answered = s.successes.count + s.typedErrors
            let sorted = s.successes.sorted()
            var worst: UInt64 = 0
            for death in deaths {
                // The first successful execution after the death.
                var lo = 0
                var hi = sorted.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if sorted[mid] <= death { lo = mid + 1 } else { hi = mid }
                }
                if lo < sorted.count { worst = max(worst, sorted[lo] &- death) }
            }
            return Report(
                submitted: s.submitted,
                answered: answered,
                lost: s.submitted - answered - s.hung,
                hung: s.hung,
                duplicates: s.duplicates,
                wrong: s.wrong,
                maxRecoveryMilliseconds: Double(worst) / 1e6,
                hostLost: s.hostLost
            )
        }
    }
}
