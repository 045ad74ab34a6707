import ActorGraph
import ActorGraphCluster
import ActorGraphExamples
import ActorGraphPlatform
import ActorGraphReliability
import ArgumentParser
import Foundation
import Glibc
import Synchronization

/// `actorgraph faults --remote --ray`: part 1's campaign with Ray placing and restarting the piece.
/// The piece of host `b` runs under a keeper actor of the placer on a Ray node (agray-b or agray-c,
/// both offering host b's resource); the owner (this process, in agray-a) follows the placer's events
/// and tells the compiled graph where the piece listens. Faults: the piece `SIGKILL`ed (the keeper
/// restarts it), the keeper actor `SIGKILL`ed (Ray restarts the actor, which starts a new piece), the
/// raylet of the piece's node `SIGKILL`ed (the keeper and its piece die with it at once, so the owner
/// sees the connection close; Ray declares the node dead and places the keeper on the other node).
/// Every execution must be answered exactly once; `faults-ray-targets:` says which of issue 17's
/// targets each fault kind met.
struct RayFaults {
    let quick: Bool
    let submitters: Int

    /// From any namespace: brings up its own local cluster (with the spare node), runs the campaign
    /// in the head's namespace, takes the cluster down whatever happened.
    static func runAll(quick: Bool, submitters: Int) throws {
        if let state = RayCluster.loadState(), let ns = state.ownerNamespace, RayCluster.runsInNamespace(ns) {
            try RayFaults(quick: quick, submitters: submitters).run(state: state)
            return
        }
        if RayCluster.loadState() != nil {
            throw CLI.fail(
                "faults --remote --ray brings up its own cluster, and one is up: `actorgraph cluster down` first"
            )
        }
        let state: RayCluster.State
        do {
            state = try RayCluster.upLocal(spare: true, log: ClusterCommand.say)
        } catch RayCluster.Failure.alreadyUp(let why) {
            throw CLI.fail("faults --remote --ray: \(why)")
        } catch {
            let left = RayCluster.down(log: { _ in })
            throw CLI.fail(
                "faults --remote --ray: cluster up failed: \(error)"
                    + (left.isEmpty ? "" : " (left: \(left.joined(separator: ", ")))")
            )
        }
        let status = RayCluster.reexec(
            in: state.ownerNamespace!,
            ["faults", "--remote", "--ray", "--submitters", "\(submitters)"] + (quick ? ["--quick"] : [])
        )
        let left = RayCluster.down(log: ClusterCommand.say)
        if !left.isEmpty {
            throw CLI.fail("faults --remote --ray: cluster down left behind: \(left.joined(separator: ", "))")
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// Ray's node-death detection with the health-check settings `RayCluster.rayEnvironment()` sets
    /// (period 500 ms, timeout 500 ms, threshold 3): ~1.1 s measured here (issue 17, platform notes;
    /// 14.5 s with Ray's defaults). Issue 17's target for a node loss: every affected execution
    /// answered within this + 100 ms. The owner does not wait for Ray: a killed raylet takes its
    /// keeper and piece down at once (the keeper's PDEATHSIG), so the connection closes, and a
    /// partition is seen by missed heartbeats (50 ms); Ray's detection only decides the re-placement.
    static let tunedRayDetectionMs = 1100.0
    /// Issue 17: after a piece `SIGKILL`, the first successful execution within 1 s.
    static let pieceKillFirstSuccessMs = 1000.0

    /// One line: per fault kind, the target it is held to and whether this run met it. Printed, not
    /// enforced (wall-clock times on a shared 2-core VM do not gate CI); the report says which held.
    static func targetsLine(_ measured: [String: Measured], kinds: [String]) -> String {
        let bound = tunedRayDetectionMs + 100
        let f = { (x: Double) in LatencySummary.fixed(x, decimals: 1) }
        var allMet = true
        func check(_ name: String, _ value: Double, _ limit: Double) -> String {
            let met = value >= 0 && value <= limit
            allMet = allMet && met
            return "\(name) \(f(value))<=\(f(limit)) \(met ? "met" : "MISSED")"
        }
        let parts = kinds.compactMap { kind -> String? in
            guard let m = measured[kind] else { return nil }
            var checks = [check("detect", m.detect, bound), check("answered", m.answered, bound)]
            if kind == "piece-kill" { checks.append(check("first_success", m.firstSuccess, pieceKillFirstSuccessMs)) }
            return "\(kind)=\(checks.joined(separator: ", "))"
        }
        return
            "faults-ray-targets: bound_ms=\(f(bound)) (tuned Ray node-death detection \(f(tunedRayDetectionMs)) + 100) "
            + parts.joined(separator: "; ") + " all_met=\(allMet && parts.count == kinds.count)"
    }

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    struct Measured {
        var detect = -1.0, answered = -1.0, placed = -1.0, firstSuccess = -1.0
        /// From the fault to the keeper's report of the new piece (its wall clock), and from that
        /// report to this process reading it.
        var respawn = -1.0, delivery = -1.0
    }

    func run(state: RayCluster.State) throws {
        let feed = PlacerFeed(eventsPath: RayCluster.eventsPath)
        guard let first = try? feed.waitForPieces(["b"], timeout: .seconds(30))["b"] else {
            throw CLI.fail("faults --remote --ray: the placer reports no piece for host b")
        }
        let compiled = try RemoteFaultGraph.compile(hostB: [first.address])
        defer { compiled.shutdown() }
        try feed.follow(compiled)
        defer { feed.stop() }
        func restartCounts() -> (pieces: Int, keepers: Int) {
            feed.pieces.reduce((0, 0)) { ($0.0 + $1.pieceRestarts, $0.1 + $1.keeperRestarts) }
        }
        let baseline = restartCounts()

        let ledger = FaultLedger()
        let stop = Atomic<Bool>(false)
        let completions = (0..<submitters).map { _ in Counter() }
        var threads: [PinnedThread] = []
        for t in 0..<submitters {
            let done = completions[t]
            threads.append(
                try PinnedThread(name: "ag-submit\(t)", cpu: nil) { @Sendable in
                    var i = 0
                    while !stop.load(ordering: .relaxed) {
                        let successes = ledger.successCount
                        ledger.execute(compiled, id: t << 40 | i)
                        done.value.add(1, ordering: .releasing)
                        i += 1
                        // A caller answered `hostLost` backs off for 1 ms, as a client would: a tight
                        // fail-fast loop on 2 CPUs would starve the Ray processes restarting the piece.
                        if ledger.successCount == successes { usleep(1_000) }
                    }
                }
            )
        }
        defer {
            stop.store(true, ordering: .relaxed)
            threads.forEach { $0.join() }
        }
        let spacing: UInt32 = quick ? 300_000 : 600_000
        usleep(spacing)

        func ms(_ from: UInt64, _ to: UInt64) -> Double { Double(to &- from) / 1e6 }
        func waitUntil(seconds: Double, _ condition: () -> Bool) -> UInt64? {
            let deadline = MonotonicClock.now() &+ UInt64(seconds * 1e9)
            while MonotonicClock.now() < deadline {
                if condition() { return MonotonicClock.now() }
                usleep(100)
            }
            return nil
        }

        var problems: [String] = []
        // The node that lost the piece (partition, raylet) is cleared and started again, so the
        // next node fault has somewhere to move it.
        func revive(_ ns: String, ip: String) {
            for _ in 0..<50 {
                let pids = RayCluster.namespacePIDs(ns)
                if pids.isEmpty { break }
                pids.forEach { kill($0, SIGKILL) }
                usleep(100_000)
            }
            let r = RayCluster.sh(
                [
                    "ip", "netns", "exec", ns, RayCluster.python, "-m", "ray.scripts.scripts", "start", "--address",
                    state.address,
                    "--node-ip-address", ip, "--num-cpus", "1", "--resources", #"{"actorgraph_host_b": 1}"#,
                    "--labels", "\(RayCluster.hostLabel)=b", "--disable-usage-stats",
                ],
                environment: RayCluster.rayEnvironment(),
                seconds: 90
            )
            if r.status != 0 { problems.append("restarting the Ray node in \(ns) failed: \(r.output.suffix(300))") }
        }

        let kinds = ["piece-kill", "keeper-kill", "partition", "raylet-kill"]
        var measured: [String: Measured] = [:]
        var injected = 0
        for _ in 0..<(quick ? 1 : 2) {
            for kind in kinds {
                guard let current = feed.current("b"), case let ip = current.address.ip, let ns = state.nodes[ip] else {
                    problems.append("\(kind): no current piece")
                    continue
                }
                let target: Int32?
                switch kind {
                case "piece-kill": target = current.pid
                case "keeper-kill": target = current.keeperPID
                case "raylet-kill": target = current.rayletPID
                default: target = nil
                }
                if kind != "partition" {
                    guard let target, RayCluster.isAlive(target) else {
                        problems.append("\(kind): no live process to kill")
                        continue
                    }
                }
                let host = { compiled.diagnostics.hosts.first }
                let lossesBefore = host()?.losses ?? 0
                let incarnationsBefore = host()?.incarnations ?? 0
                let inFlight = completions.map { $0.value.load(ordering: .acquiring) }
                let link = ns + "-hub"
                let t0 = MonotonicClock.now()
                let t0Wall = Date().timeIntervalSince1970
                if let target {
                    kill(target, SIGKILL)
                } else {
                    RemoteFaults.shell("ip -n \(RayCluster.prefix)-hub link set \(link) down")
                }
                injected += 1
                var m = Measured()
                // The owner sees the loss (connection reset or silence), answers what needed the piece...
                if let t = waitUntil(seconds: 5, { (host()?.losses ?? 0) > lossesBefore }) {
                    m.detect = ms(t0, t)
                } else {
                    problems.append("\(kind): loss not detected within 5 s")
                }
                if let t = waitUntil(
                    seconds: 15,
                    { zip(completions, inFlight).allSatisfy { $0.value.load(ordering: .acquiring) > $1 } }
                ) {
                    m.answered = ms(t0, t)
                } else {
                    problems.append("\(kind): executions in flight at the fault not all answered within 15 s")
                }
                // ...Ray brings a new piece up (the placer reports it; the feed hands its address over)...
                if let t = waitUntil(seconds: 30, { (feed.current("b")?.number ?? current.number) != current.number }) {
                    m.placed = ms(t0, t)
                    if let new = feed.current("b") {
                        m.respawn = (new.reportedAt - t0Wall) * 1e3
                        m.delivery = (new.readAt - new.reportedAt) * 1e3
                    }
                } else {
                    problems.append("\(kind): no new piece within 30 s")
                }
                // ...and the owner connects it (next epoch): the first success after that.
                if waitUntil(
                    seconds: 10,
                    { (host()?.incarnations ?? 0) > incarnationsBefore && host()?.connected == true }
                ) != nil {
                    let successes = ledger.successCount
                    if let t = waitUntil(seconds: 10, { ledger.successCount > successes }) {
                        m.firstSuccess = ms(t0, t)
                    }
                }
                if m.firstSuccess < 0 { problems.append("\(kind): no success within 10 s of the new piece") }
                if kind == "partition" {
                    // The old incarnation is still running behind the partition: heal it and let it
                    // talk (split brain); epochs keep its frames out. Then its node is restarted.
                    RemoteFaults.shell("ip -n \(RayCluster.prefix)-hub link set \(link) up")
                    usleep(spacing)
                }
                if kind == "partition" || kind == "raylet-kill" { revive(ns, ip: ip) }
                let before = measured[kind] ?? Measured()
                measured[kind] = Measured(
                    detect: max(before.detect, m.detect),
                    answered: max(before.answered, m.answered),
                    placed: max(before.placed, m.placed),
                    firstSuccess: max(before.firstSuccess, m.firstSuccess),
                    respawn: max(before.respawn, m.respawn),
                    delivery: max(before.delivery, m.delivery)
                )
                RayCluster.writeOwnerStatus(feed)
                usleep(spacing)
            }
        }
        stop.store(true, ordering: .relaxed)
        threads.forEach { $0.join() }
        threads = []
        let hostStatus = compiled.diagnostics.hosts.first
        RayCluster.writeOwnerStatus(feed)
        let report = ledger.report()
        let restarts = restartCounts()
        let rayRestarts = (restarts.pieces - baseline.pieces) + (restarts.keepers - baseline.keepers)
        let maxDetect = measured.values.map(\.detect).max() ?? 0
        let maxReplacement = measured.values.map(\.firstSuccess).max() ?? 0
        let f = { (x: Double) in LatencySummary.fixed(x, decimals: 1) }
        print(
            "faults-remote: injected=\(injected) submitted=\(report.submitted) answered=\(report.answered) lost=\(report.lost) "
                + "duplicated=\(report.duplicates) stale_applied=\(report.wrong) max_detect_ms=\(f(maxDetect)) "
                + "ray_restarts=\(rayRestarts) max_replacement_ms=\(f(maxReplacement))"
        )
        let detail = kinds.compactMap { k in
            measured[k].map {
                "\(k)=\(f($0.detect))/\(f($0.answered))/\(f($0.respawn))/\(f($0.delivery))/\(f($0.placed))/\(f($0.firstSuccess))"
            }
        }
        print(
            "faults-ray: per fault, ms after it: detect/all_in_flight_answered/new_piece_listening/+report_delivery/owner_told/first_success: \(detail.joined(separator: " ")) "
                + "piece_restarts=\(restarts.pieces - baseline.pieces) keeper_restarts=\(restarts.keepers - baseline.keepers) "
                + "lost_answers=\(report.hostLost) stale_frames_dropped=\(hostStatus?.staleFramesDropped ?? 0) epoch=\(hostStatus?.epoch ?? 0) "
                + "incarnations=\(hostStatus?.incarnations ?? 0) losses=\(hostStatus?.losses ?? 0) (Ray \(state.address), nodes \(state.nodes.values.sorted().joined(separator: ",")))"
        )
        print(Self.targetsLine(measured, kinds: kinds))
        fflush(nil)
        problems += report.problems(wrong: "wrong or stale result(s)")
        if !problems.isEmpty { throw CLI.fail("faults --remote --ray: " + problems.joined(separator: ", ")) }
    }
}
