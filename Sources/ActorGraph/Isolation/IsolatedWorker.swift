import ActorGraphPlatform
import CPlatformShims
import Glibc
import Synchronization

/// A graph a worker process can rebuild: ``Graph`` conforms. Pass your graphs to
/// ``IsolatedWorker/runIfChild(graphs:)``.
public protocol IsolatableGraph {
    /// The graph's validated declaration, type-erased (used by a worker child to rebuild the plan).
    func isolationCandidate() throws(CompileError) -> IsolationCandidate
}

/// A graph's declaration, type-erased, as a worker child needs it.
public struct IsolationCandidate {
    let nodes: [NodeSpec]
    let inputNode: Int
    let outputNode: Int
}

extension Graph: IsolatableGraph {
    /// The graph's validated declaration, type-erased.
    public func isolationCandidate() throws(CompileError) -> IsolationCandidate {
        IsolationCandidate(nodes: try validatedNodes(), inputNode: inputIndex, outputNode: outputIndex)
    }
}

/// The entry point of worker processes (``Isolation/processes``).
///
/// A compiled graph in process mode starts each worker by spawning this program again
/// (`/proc/self/exe`, same arguments) with ``environmentKey`` set. Make it the first line of `main`:
///
/// ```swift
/// IsolatedWorker.runIfChild(graphs: { [graphA, graphB] })
/// ```
///
/// In the parent (the variable is not set) it returns at once. In a worker child it never returns:
/// it maps the inherited region, finds the graph whose plan fingerprint matches the parent's,
/// builds that worker's stages afresh (new stage values and actor state: nothing of the parent's
/// or of a crashed predecessor's state survives), runs the worker loop and exits. A child whose
/// graphs do not match refuses, and the parent's `compile()` throws ``CompileError/planMismatch(worker:detail:)``.
public enum IsolatedWorker {
    /// The environment variable describing the worker: memfd, worker index, plan fingerprint,
    /// parent pid, notification eventfd.
    public static let environmentKey = "ACTORGRAPH_ISOLATED_WORKER"

    /// Whether this process went through ``runIfChild(graphs:)`` as a worker (set just before the
    /// worker loop, so a nested `compile()` in a stage is not mistaken for a forgotten entry line).
    static let entered = Atomic<Bool>(false)

    /// Whether this process was started as a worker child.
    public static var isWorkerProcess: Bool { getenv(environmentKey) != nil || entered.load(ordering: .relaxed) }

    /// Runs the worker loop and exits if this process is a worker child; returns at once otherwise.
    /// - Parameter graphs: every graph the program may compile with ``Isolation/processes``; only
    ///   called in a worker child.
    public static func runIfChild(graphs: () -> [any IsolatableGraph]) {
        guard let raw = getenv(environmentKey) else { return }
        let text = String(cString: raw)
        unsetenv(environmentKey)
        entered.store(true, ordering: .relaxed)
        guard let spec = Spec(text) else {
            logger.error("\(environmentKey) is malformed: '\(text)'")
            _exit(3)
        }
        // Die with the parent; if it is already gone, nobody waits for us.
        guard ParentWatch.dieWithParent(expectedParent: spec.parent) else { _exit(0) }
        // A terminal's Ctrl-C reaches the whole foreground process group: the parent decides
        // (its shutdown stops us, its death kills us), a worker must not die of it as a "crash".
        signal(SIGINT, SIG_IGN)
        guard let region = try? SharedMemoryRegion(mapping: spec.fd),
            let header = RegionHeader.read(from: region.base, size: region.size),
            spec.worker >= 0, spec.worker < header.workerCount
        else {
            _exit(3)
        }
        let controlBase =
            region.base
            + RegionLayout.controlBlock(worker: spec.worker, workerCount: header.workerCount, processMode: true)
        let control = WorkerControl(base: controlBase)

        // Find the graph whose plan matches the parent's.
        var plan: ExecutionPlan? = nil
        var seen: [String] = []
        let cpus: [Int]? = header.cpus.allSatisfy({ $0 != nil }) ? header.cpus.map { $0! } : nil
        for graph in graphs() {
            guard let candidate = try? graph.isolationCandidate() else { continue }
            var p = Compiler.plan(
                nodes: candidate.nodes,
                inputNode: candidate.inputNode,
                outputNode: candidate.outputNode,
                capacity: header.capacity,
                workerCount: header.workerCount,
                cpus: cpus,
                numaNode: header.numaNode >= 0 ? header.numaNode : nil,
                placement: header.placement
            )
            // The same encoded slots as the parent's plan (a graph whose values cannot cross is not this one).
            guard (try? p.encodeValuesCrossingProcesses()) != nil else { continue }
            let fingerprint = PlanFingerprint.of(p)
            if fingerprint == header.fingerprint {
                plan = p
                break
            }
            seen.append(String(fingerprint, radix: 16))
        }
        guard let plan else {
            // A standby must not overwrite the running worker's handshake words.
            if spec.standby { _exit(2) }
            refuse(
                control,
                code: RefusalCode.planMismatch,
                "no graph given to runIfChild matches the compiled plan (fingerprint \(String(header.fingerprint, radix: 16)); "
                    + "candidates: \(seen.isEmpty ? "none" : seen.joined(separator: ", "))): the worker runs a different program or graph"
            )
        }
        if spec.standby {
            standBy(control: control, stopping: region.base.advanced(by: RegionLayout.controlLine(processMode: true)))
        }
        runWorker(plan: plan, header: header, region: region, spec: spec, control: control)
    }

    /// A standby process: announce it, then sleep until the supervisor activates it (its worker
    /// died) or the graph stops. Nothing in the rings is touched before activation.
    private static func standBy(control: WorkerControl, stopping rawStopping: UnsafeMutableRawPointer) {
        let stopping = rawStopping.assumingMemoryBound(to: Atomic<UInt32>.self)
        control.standbyState.pointee.store(1, ordering: .sequentiallyConsistent)
        Futex.wake(futexWord(control.standbyState), count: Int32.max, shared: true)
        while control.standbyGo.pointee.load(ordering: .sequentiallyConsistent) == 0 {
            if stopping.pointee.load(ordering: .sequentiallyConsistent) != 0 { _exit(0) }
            _ = Futex.wait(on: futexWord(control.standbyGo), expected: 0, timeoutNanoseconds: 100_000_000, shared: true)
        }
        control.standbyGo.pointee.store(0, ordering: .relaxed)
    }

    /// Refuses in a worker child whose program compiled a graph without calling ``runIfChild(graphs:)``
    /// first: it must not run the user's program as if it were the parent (no recursive spawning).
    static func refuseIfForgotten() {
        guard !entered.load(ordering: .relaxed), let raw = getenv(environmentKey) else { return }
        guard let spec = Spec(String(cString: raw)),
            let region = try? SharedMemoryRegion(mapping: spec.fd),
            let header = RegionHeader.read(from: region.base, size: region.size),
            spec.worker >= 0, spec.worker < header.workerCount
        else { _exit(3) }
        let control = WorkerControl(
            base: region.base
                + RegionLayout.controlBlock(
                    worker: spec.worker,
                    workerCount: header.workerCount,
                    processMode: true
                )
        )
        refuse(
            control,
            code: RefusalCode.missingEntryPoint,
            "the program compiled a graph in a worker process without calling IsolatedWorker.runIfChild(graphs:) first thing in main"
        )
    }

    private static func refuse(_ control: WorkerControl, code: UInt32, _ reason: String) -> Never {
        FailureMessage.write(reason, detail: 0, to: control.refusalText, capacity: WorkerControl.refusalTextBytes)
        control.refusalCode.pointee = code
        control.state.pointee.store(WorkerControl.refused, ordering: .sequentiallyConsistent)
        Futex.wake(futexWord(control.state), count: Int32.max, shared: true)
        _exit(2)
    }

    private static func runWorker(
        plan: ExecutionPlan,
        header: RegionHeader,
        region: SharedMemoryRegion,
        spec: Spec,
        control: WorkerControl
    ) -> Never {
        let w = spec.worker
        let layout = RegionLayout(plan: plan, processMode: true)
        guard layout.totalBytes <= region.size else { _exit(3) }
        let wiring = EngineWiring(plan: plan, layout: layout, base: region.base)
        let options = header.workerOptions
        // This process's own failure tables (errors travel as text in the region's message areas).
        let errorTables = wiring.makeErrorTables()
        let ownsResult = plan.segments.contains { $0.worker == w && $0.outputChannel == plan.outputChannel }
        let board =
            ownsResult
            ? ResultBoard(
                ring: wiring.rings[plan.outputChannel],
                errors: errorTables[plan.outputChannel],
                stopping: wiring.stopping,
                nodeNames: plan.nodes.map(\.name),
                policy: options.idle,
                sharedFutex: true,
                messages: wiring.messages[plan.outputChannel],
                remoteNotifyFD: spec.notifyFD
            ) : nil
        let runners = wiring.makeRunners(
            worker: w,
            errorTables: errorTables,
            board: board,
            sharedFutex: true,
            start: control.resume.pointee
        )
        let worker = Worker(
            index: w,
            runners: runners,
            parkWord: wiring.parkWords[w],
            stopping: wiring.stopping,
            options: options,
            numaNode: plan.numaNode,
            control: control,
            sharedFutex: true,
            pinnedCPU: plan.workerCPUs[w],
            workerCPUs: plan.pinnedWorkerCPUs
        )
        // Statistics: the parent's store at the end of the region, this worker's blocks recorded here.
        var statistics: StatisticsStore? = nil
        if let interval = options.statistics.sampleInterval {
            let offset = StatisticsStore.offset(afterLayoutBytes: layout.totalBytes)
            if offset + StatisticsStore.byteCount(for: plan) <= region.size {
                statistics = StatisticsStore(
                    plan: plan,
                    sampleInterval: interval,
                    base: region.base + offset,
                    initialize: false
                )
                statistics?.install(workers: [worker], inputCount: wiring.nextSequence)
            }
        }
        // The wait strategy's CPU accounting, as the parent's compile set it: from the process's affinity
        // and quota, read *before* this thread is pinned (pinned, the affinity is one CPU, and a lone
        // worker plus the caller it assumes would look crowded and yield instead of spinning).
        let limit = CgroupCPU.currentLimit()
        Contention.shared.update(
            EffectiveCPUs(affinity: CPU.allowedCPUs().count, quota: limit.quota),
            cpuStatPath: limit.cpuStatPath
        )
        if let cpu = plan.workerCPUs[w] { _ = cplatform_pin_current_thread(Int32(cpu)) }
        cplatform_set_thread_name("actorgraph-p\(w)")
        control.state.pointee.store(WorkerControl.ready, ordering: .sequentiallyConsistent)
        Futex.wake(futexWord(control.state), count: Int32.max, shared: true)
        worker.run()
        withExtendedLifetime((region, board, runners, statistics)) {}
        _exit(0)
    }

    /// The parent's environment, minus any worker variable, as `KEY=VALUE` strings. Unless the user
    /// configured it, the Swift runtime's crash backtracer is off in workers: a crashing worker then
    /// dies at once (its one-line fatal error message still goes to stderr) and is restarted sooner.
    static func inheritedEnvironment() -> [String] {
        var result: [String] = []
        var p = environ
        var backtraceSet = false
        while let entry = p.pointee {
            let s = String(cString: entry)
            if s.hasPrefix("SWIFT_BACKTRACE=") { backtraceSet = true }
            if !s.hasPrefix(environmentKey + "=") { result.append(s) }
            p += 1
        }
        if !backtraceSet { result.append("SWIFT_BACKTRACE=enable=no") }
        return result
    }

    /// The worker variable's value: `fd=5;worker=0;fp=1a2b…;ppid=123;notify=7`.
    struct Spec {
        var fd: Int32
        var worker: Int
        var fingerprint: UInt64
        var parent: Int32
        var notifyFD: Int32
        /// A standby process (activated when the worker dies), not the worker itself.
        var standby = false

        init(fd: Int32, worker: Int, fingerprint: UInt64, parent: Int32, notifyFD: Int32, standby: Bool = false) {
            self.fd = fd
            self.worker = worker
            self.fingerprint = fingerprint
            self.parent = parent
            self.notifyFD = notifyFD
            self.standby = standby
        }

        init?(_ text: String) {
            var fields: [Substring: Substring] = [:]
            for part in text.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { return nil }
                fields[kv[0]] = kv[1]
            }
            guard let fd = fields["fd"].flatMap({ Int32($0) }), let worker = fields["worker"].flatMap({ Int($0) }),
                let fp = fields["fp"].flatMap({ UInt64($0, radix: 16) }),
                let parent = fields["ppid"].flatMap({ Int32($0) }),
                let notify = fields["notify"].flatMap({ Int32($0) })
            else { return nil }
            self.init(
                fd: fd,
                worker: worker,
                fingerprint: fp,
                parent: parent,
                notifyFD: notify,
                standby: fields["standby"] == "1"
            )
        }

        var encoded: String {
            "fd=\(fd);worker=\(worker);fp=\(String(fingerprint, radix: 16));ppid=\(parent);notify=\(notifyFD)"
                + (standby ? ";standby=1" : "")
        }
    }
}
