import ActorGraph
import ActorGraphExamples
import ActorGraphPlatform
import ActorGraphReliability
import Glibc
import Synchronization

/// The graph `faults --remote` runs: `scale` (2·id) on host `b`, `plus1` on the owner, so every
/// answer is 2·id + 1 and names the execution it belongs to.
enum RemoteFaultGraph {
    static func graph() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(name: "scale") { $0 * 2 }.on("b").then(name: "plus1") { $0 + 1 }
        }
    }

    /// Compiled for the fault campaigns: host `b` at `hostB`, one unpinned worker, short spins and
    /// connect timeout (a campaign keeps replacing the piece).
    static func compile(hostB: [PieceAddress]) throws -> CompiledGraph<Int, Int> {
        var options = CompileOptions(
            workers: 1,
            capacity: 64,
            pinWorkers: false,
            idle: IdlePolicy(workerSpins: 2_000, callerSpins: 2_000, spinTime: .microseconds(50))
        )
        options.remote.hosts = ["b": hostB]
        options.remote.connectTimeout = .milliseconds(500)
        do {
            return try graph().compile(options)
        } catch {
            throw CLI.fail(error)
        }
    }
}

/// `actorgraph faults --remote`: a graph spanning two hosts, whose piece is killed, stopped
/// (silent), shut down and — on the namespace rig — cut off by a link going down, while
/// submitters keep executing. Every execution must be answered exactly once, with its value or a
/// typed error; each fault is followed by a replacement piece on the host's other address.
struct RemoteFaults {
    let quick: Bool
    let submitters: Int
    /// Namespaces for the owner-facing pieces (`--rig`): two incarnation slots, e.g. agrig-b and agrig-c.
    let rig: Bool

    struct Slot {
        var namespace: String?
        var address: PieceAddress
    }

    func run() throws {
        let exe = Self.executablePath()
        var slots: [Slot]
        if rig {
            slots = [
                Slot(namespace: "agrig-b", address: PieceAddress("10.231.0.2", port: 7411)),
                Slot(namespace: "agrig-c", address: PieceAddress("10.231.0.3", port: 7411)),
            ]
        } else {
            slots = [
                Slot(namespace: nil, address: PieceAddress("127.0.0.1", port: Self.freePort())),
                Slot(namespace: nil, address: PieceAddress("127.0.0.1", port: Self.freePort())),
            ]
        }
        func start(_ slot: Slot) throws -> LineReadingProcess {
            let args = ["piece", "--listen", slot.address.description]
            let process: LineReadingProcess
            if let ns = slot.namespace {
                process = try LineReadingProcess(path: "/usr/sbin/ip", arguments: ["netns", "exec", ns, exe] + args)
            } else {
                process = try LineReadingProcess(path: exe, arguments: args)
            }
            guard process.waitForLine(timeout: .seconds(10), where: { $0.hasPrefix("piece listening on") }) != nil
            else {
                _ = process.stop(signal: SIGKILL)
                throw CLI.fail(
                    "faults --remote: the piece at \(slot.address) did not start: \(process.output.suffix(5).joined(separator: " | "))"
                )
            }
            return process
        }
        var current = 0
        var pieces: [LineReadingProcess?] = [try start(slots[0]), nil]
        defer { for p in pieces { _ = p?.stop(signal: SIGKILL) } }

        let compiled = try RemoteFaultGraph.compile(hostB: slots.map(\.address))
        let ledger = FaultLedger()
        let stop = Atomic<Bool>(false)
        var threads: [PinnedThread] = []
        for t in 0..<submitters {
            threads.append(
                try PinnedThread(name: "ag-submit\(t)", cpu: nil) { @Sendable in
                    var i = 0
                    while !stop.load(ordering: .relaxed) {
                        ledger.execute(compiled, id: t << 40 | i)
                        i += 1
                    }
                }
            )
        }
        let spacing: UInt32 = quick ? 150_000 : 300_000
        usleep(spacing)
        var kinds: [(String, Int32?)] = [("kill", SIGKILL), ("silent", SIGSTOP), ("shutdown", SIGTERM)]
        if rig { kinds.append(("link-down", nil)) }
        var injected = 0
        var detect: [String: Double] = [:]
        var recovery: [String: Double] = [:]
        var problems: [String] = []
        for _ in 0..<(quick ? 1 : 3) {
            for (kind, signal) in kinds {
                let before = compiled.diagnostics.hosts.first?.losses ?? 0
                let old = pieces[current]!
                let t0 = MonotonicClock.now()
                if let signal {
                    kill(old.pid, signal)
                } else {
                    Self.shell("ip -n agrig-hub link set agrig-\(slots[current].namespace!.dropFirst(6))-hub down")
                }
                injected += 1
                // Detection: the owner counts the loss.
                var detected: UInt64? = nil
                for _ in 0..<20_000 {
                    if (compiled.diagnostics.hosts.first?.losses ?? 0) > before {
                        detected = MonotonicClock.now()
                        break
                    }
                    usleep(100)
                }
                guard let detected else {
                    problems.append("\(kind): loss not detected within 2 s")
                    continue
                }
                detect[kind] = max(detect[kind] ?? 0, Double(detected &- t0) / 1e6)
                // The replacement, on the other address.
                let next = 1 - current
                if let previous = pieces[next] { _ = previous.stop(signal: SIGKILL) }
                pieces[next] = try start(slots[next])
                let successes = ledger.successCount
                var recovered: UInt64? = nil
                for _ in 0..<50_000 {
                    if ledger.successCount > successes {
                        recovered = MonotonicClock.now()
                        break
                    }
                    usleep(100)
                }
                if let recovered {
                    recovery[kind] = max(recovery[kind] ?? 0, Double(recovered &- detected) / 1e6)
                } else {
                    problems.append("\(kind): no success within 5 s of the replacement")
                }
                // The old incarnation comes back (split brain): it must not be heard.
                if signal == SIGSTOP { kill(old.pid, SIGCONT) }
                if signal == nil {
                    Self.shell("ip -n agrig-hub link set agrig-\(slots[current].namespace!.dropFirst(6))-hub up")
                }
                usleep(spacing)
                _ = old.stop(signal: SIGKILL)
                pieces[current] = nil
                current = next
            }
        }
        // Packet loss on the rig: 20 % of the packets arriving in the piece's namespace dropped for
        // half a second (nftables; TCP retransmits, or the host goes silent and is replaced).
        var lossNote = ""
        if rig, let ns = slots[current].namespace {
            let table = "agrig_loss"
            let rule =
                "table inet \(table) { chain input { type filter hook input priority 0; policy accept; iifname \"\(ns)\" numgen random mod 100 < 20 drop; }; }"
            if Self.shell("command -v nft >/dev/null && ip netns exec \(ns) nft '\(rule)'") == 0 {
                injected += 1
                let successes = ledger.successCount
                usleep(500_000)
                _ = Self.shell("ip netns exec \(ns) nft delete table inet \(table)")
                var recovered = false
                for _ in 0..<50_000 where !recovered {
                    if ledger.successCount > successes + 100 { recovered = true } else { usleep(100) }
                }
                if !recovered { problems.append("packet loss: fewer than 100 successes within 5 s after it ended") }
                lossNote = " packet_loss=20%/500ms"
            } else {
                lossNote = " packet_loss=skipped(nft)"
            }
        }
        stop.store(true, ordering: .relaxed)
        threads.forEach { $0.join() }
        let host = compiled.diagnostics.hosts.first
        compiled.shutdown()
        let report = ledger.report()
        let maxDetect = detect.values.max() ?? 0
        print(
            "faults-remote: injected=\(injected) submitted=\(report.submitted) answered=\(report.answered) lost=\(report.lost) "
                + "duplicated=\(report.duplicates) stale_applied=\(report.wrong) max_detect_ms=\(LatencySummary.fixed(maxDetect, decimals: 1))"
        )
        let detail = kinds.map { k in
            "\(k.0)=\(LatencySummary.fixed(detect[k.0] ?? -1, decimals: 1))/\(LatencySummary.fixed(recovery[k.0] ?? -1, decimals: 1))"
        }
        print(
            "faults-remote: per fault, detect_ms/first_success_after_ms: \(detail.joined(separator: " ")) "
                + "lost_answers=\(report.hostLost) stale_frames_dropped=\(host?.staleFramesDropped ?? 0) epoch=\(host?.epoch ?? 0) "
                + "incarnations=\(host?.incarnations ?? 0)\(lossNote) (\(rig ? "namespace rig" : "loopback"))"
        )
        problems += report.problems(wrong: "wrong or stale result(s)")
        if !problems.isEmpty { throw CLI.fail("faults --remote: " + problems.joined(separator: ", ")) }
    }

    static func freePort() -> UInt16 {
        guard let socket = try? UDPSocket(bindingTo: "127.0.0.1", port: 0) else { return 7411 }
        defer { socket.close() }
        // A TCP port free now is very likely free a moment later; the piece binds it with SO_REUSEADDR.
        return socket.port
    }

    @discardableResult
    static func shell(_ command: String) -> Int32 {
        system(command)
    }

    /// This program's path (`/proc/self/exe` resolved: a piece started through `ip netns exec`
    /// must be given the real file).
    static func executablePath() -> String { SelfExecutable.path ?? CommandLine.arguments[0] }
}
