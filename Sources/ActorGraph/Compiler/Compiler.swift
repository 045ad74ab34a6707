import ActorGraphPlatform

/// Validates a graph and lays it out: placement, fusion, channels. Pure: allocates nothing shared.
enum Compiler {
    /// Lays out validated `nodes` (see ``validate(nodes:builder:inputNode:outputNode:outputBuilder:outputName:)``).
    static func plan(
        nodes: [NodeSpec],
        inputNode: Int,
        outputNode: Int,
        options: CompileOptions
    ) throws(CompileError) -> ExecutionPlan {
        let limit = CgroupCPU.currentLimit()
        let (capacity, workerCount, cpus, numaNode, effective) = try validate(options: options, quota: limit.quota)
        try validateEncodedLimits(nodes: nodes)
        if options.isolatesProcesses {
            guard workerCount <= RegionHeader.maxWorkers else { throw .invalidWorkerCount(workerCount) }
        }
        let hosts = try hostTable(nodes: nodes, inputNode: inputNode, ownerWorkers: workerCount, options: options)
        var plan = plan(
            nodes: nodes,
            inputNode: inputNode,
            outputNode: outputNode,
            capacity: capacity,
            workerCount: hosts?.workerCount ?? workerCount,
            cpus: cpus,
            numaNode: numaNode,
            placement: options.placement,
            hosts: hosts
        )
        if plan.isRemote { try plan.encodeValuesCrossingHosts() }
        if options.isolatesProcesses { try plan.encodeValuesCrossingProcesses() }
        plan.effectiveCPUs = effective
        plan.cpuStatPath = limit.cpuStatPath
        warnIfSpinningWillCrawl(options: options, workers: workerCount, effective: effective)
        return plan
    }

    /// Busy-spinning and yielding threads never park: with more of them than CPUs each waits for
    /// the others' scheduler slices and the graph crawls. Said once, at `compile()`, rather than
    /// found later in a latency chart (the adaptive default adapts instead).
    static func warnIfSpinningWillCrawl(options: CompileOptions, workers: Int, effective: EffectiveCPUs) {
        let strategy = options.idle.strategy
        guard spinningWillCrawl(strategy: strategy, workers: workers, effectiveCPUs: effective.cpus) else { return }
        logger.warning(
            "compile: \(workers) worker(s) and the caller never park (\(strategy)) on \(effective): more spinning threads than CPUs; use .adaptive (the default) or fewer workers"
        )
    }

    /// Whether `workers` workers and one caller that never park outnumber the effective CPUs.
    static func spinningWillCrawl(strategy: WaitStrategy, workers: Int, effectiveCPUs: Double) -> Bool {
        (strategy == .busySpin || strategy == .yielding) && Double(workers + 1) > effectiveCPUs
    }

    /// Lays out validated `nodes` with validated parameters (a worker child rebuilds its parent's
    /// plan this way, from the region header, whatever its own CPU affinity).
    static func plan(
        nodes: [NodeSpec],
        inputNode: Int,
        outputNode: Int,
        capacity: Int,
        workerCount: Int,
        cpus: [Int]?,
        numaNode: Int?,
        placement: Placement,
        hosts: HostTable? = nil
    ) -> ExecutionPlan {
        let nodeWorker = place(
            nodes: nodes,
            inputNode: inputNode,
            workers: workerCount,
            placement: placement,
            hosts: hosts
        )
        var (segments, channels, inputChannel, outputChannel) = fuse(
            nodes: nodes,
            inputNode: inputNode,
            outputNode: outputNode,
            nodeWorker: nodeWorker,
            fuseChains: placement != .spread
        )
        // The segments reading each channel.
        for segment in segments {
            for channel in segment.inputChannels where !channels[channel].consumers.contains(segment.id) {
                channels[channel].consumers.append(segment.id)
            }
        }
        segments.sort { $0.id < $1.id }
        // Only the owner's stage workers take the CPUs chosen here; a piece's workers and every
        // edge worker run unpinned (a piece's CPUs are its own host's).
        let pinned = hosts?.ownerWorkers ?? workerCount
        var plan = ExecutionPlan(
            nodes: nodes,
            inputNode: inputNode,
            outputNode: outputNode,
            workerCount: workerCount,
            capacity: capacity,
            nodeWorker: nodeWorker,
            segments: segments,
            channels: channels,
            inputChannel: inputChannel,
            outputChannel: outputChannel,
            workerCPUs: (0..<workerCount).map { $0 < pinned ? cpus?[$0] : nil },
            numaNode: numaNode
        )
        plan.hosts = hosts
        return plan
    }

    // MARK: Validation

    static func validate(
        nodes: [NodeSpec],
        builder: ObjectIdentifier,
        inputNode: Int,
        outputNode: Int,
        outputBuilder: ObjectIdentifier,
        outputName: String
    ) throws(CompileError) {
        for node in nodes where node.inputBuilders.contains(where: { $0 != builder }) {
            throw .foreignNode(node: node.name)
        }
        guard outputBuilder == builder else { throw .outputNotFromInput(node: outputName) }
        guard outputNode != inputNode else { throw .noStages }
        // Every node must reach the output: walk backwards from it.
        var reaches = [Bool](repeating: false, count: nodes.count)
        reaches[outputNode] = true
        for index in stride(from: outputNode, through: 0, by: -1) where reaches[index] {
            for input in nodes[index].inputs { reaches[input] = true }
        }
        if let dead = nodes.first(where: { !reaches[$0.index] }) {
            throw .deadStage(node: dead.name)
        }
        // The input is reached by construction: every node is built from earlier nodes of this builder.
        guard reaches[inputNode] else { throw .outputNotFromInput(node: outputName) }
    }

    /// Returns (capacity rounded to a power of two, workers, CPUs for pinned workers, NUMA node,
    /// effective CPUs). `quota` is the process's cgroup CPU quota (``CgroupCPU/currentLimit()``).
    static func validate(
        options: CompileOptions,
        quota: CPUQuota? = nil
    )
        throws(CompileError) -> (Int, Int, [Int]?, Int?, EffectiveCPUs)
    {
        guard options.capacity >= 1, options.capacity <= CompileOptions.maxCapacity else {
            throw .invalidCapacity(options.capacity)
        }
        guard options.batchSize >= 1 else { throw .invalidOption("batchSize \(options.batchSize) must be at least 1") }
        guard options.submitTimeout >= .zero else { throw .invalidOption("submitTimeout must not be negative") }
        guard options.idle.workerSpins >= 0, options.idle.callerSpins >= 0, options.idle.spinTime >= .zero,
            options.idle.parkTimeout > .zero
        else {
            throw .invalidOption("idle policy spins and spinTime must be >= 0 and parkTimeout > 0")
        }
        if let node = options.numaNode, node < 0 || node >= NUMA.nodeCount {
            throw .invalidNUMANode(node, available: NUMA.nodeCount)
        }
        var available = CPU.allowedCPUs()
        if let node = options.numaNode {
            let nodeCPUs = Set(NUMA.cpus(ofNode: node))
            available = available.filter { nodeCPUs.contains($0) }
        }
        // The quota caps the CPUs worth using: a 1.5-CPU container gets 2 (rounded up), never more than the mask.
        let effective = EffectiveCPUs(affinity: available.count, quota: quota)
        let workers = options.workers ?? max(1, effective.count - 1)
        guard workers >= 1 else { throw .invalidWorkerCount(workers) }
        var cpus: [Int]? = nil
        if options.pinWorkers {
            guard workers <= effective.count else { throw .tooManyWorkers(requested: workers, cpus: effective.count) }
            // Highest CPUs first: CPU 0 usually takes interrupts and the caller. Under a quota smaller
            // than the mask, only the lowest `effective.count` CPUs: threads that must take turns
            // on a CPU's worth of budget do it on one CPU (a caller pinned low shares it).
            let usable = effective.isQuotaLimited ? Array(available.prefix(effective.count)) : available
            cpus = Array(usable.reversed().prefix(workers))
        }
        var capacity = 1
        while capacity < options.capacity { capacity <<= 1 }
        return (capacity, workers, cpus, options.numaNode, effective)
    }

    // MARK: Hosts

    /// The host of every node (`Node.on(_:)`, overridden by ``RemoteOptions/placement``), or `nil`
    /// when every node is on this machine.
    static func hostTable(
        nodes: [NodeSpec],
        inputNode: Int,
        ownerWorkers: Int,
        options: CompileOptions
    ) throws(CompileError) -> HostTable? {
        let remote = options.remote
        let placedNames = nodes.map { remote.placement[$0.name] ?? $0.host }
        guard placedNames.contains(where: { $0 != nil }) else { return nil }
        for (node, host) in zip(nodes, placedNames) {
            guard let host else { continue }
            guard remote.hosts[host]?.isEmpty == false else { throw .unknownHost(node: node.name, host: host) }
        }
        if options.isolatesProcesses {
            throw .invalidOption(
                "a graph spanning hosts runs its pieces' workers as threads (isolation .processes is not supported across hosts yet)"
            )
        }
        if options.stageTimeLimit != nil {
            throw .invalidOption("stageTimeLimit is not supported on a graph spanning hosts yet")
        }
        guard remote.workersPerPiece >= 1 else { throw .invalidOption("workersPerPiece must be at least 1") }
        guard remote.heartbeat > .zero, remote.missedHeartbeats >= 1, remote.connectTimeout > .zero else {
            throw .invalidOption("heartbeat and connectTimeout must be positive, missedHeartbeats at least 1")
        }
        let names =
            [HostTable.ownerName] + Set(placedNames.compactMap { $0 }).subtracting([HostTable.ownerName]).sorted()
        var nodeHost = placedNames.map { $0.flatMap { names.firstIndex(of: $0) } ?? 0 }
        nodeHost[inputNode] = 0
        // One actor's state lives in one place.
        var actorHost: [ObjectIdentifier: Int] = [:]
        for node in nodes {
            guard let actor = node.actor else { continue }
            if let h = actorHost[actor.id], h != nodeHost[node.index] {
                throw .actorSplitAcrossHosts(actor: actor.name)
            }
            actorHost[actor.id] = nodeHost[node.index]
        }
        return HostTable(
            names: names,
            nodeHost: nodeHost,
            ownerWorkers: ownerWorkers,
            workersPerPiece: remote.workersPerPiece
        )
    }

    // MARK: Placement

    /// Assigns every stage to a worker. Nodes sharing an actor share a worker; chains stay together.
    static func place(
        nodes: [NodeSpec],
        inputNode: Int,
        workers: Int,
        placement: Placement,
        hosts: HostTable? = nil
    ) -> [Int?] {
        var groups = UnionFind(count: nodes.count)
        var actorFirst: [ObjectIdentifier: Int] = [:]
        for node in nodes {
            if let actor = node.actor {
                if let first = actorFirst[actor.id] {
                    groups.union(first, node.index)
                } else {
                    actorFirst[actor.id] = node.index
                }
            }
        }
        let consumers = consumerLists(nodes)
        if placement == .automatic {
            for node in nodes
            where isFusable(node, consumers: consumers, inputNode: inputNode)
                && hosts.map({ $0.nodeHost[node.inputs[0]] == $0.nodeHost[node.index] }) ?? true
            {
                groups.union(node.inputs[0], node.index)
            }
        }
        var result = [Int?](repeating: nil, count: nodes.count)
        var groupWorker: [Int: Int] = [:]
        var load = [Int](repeating: 0, count: workers)
        var nextRoundRobin = [Int](repeating: 0, count: hosts?.count ?? 1)
        // A host with several workers keeps stages off its edge worker: a long stage there would
        // hold its connections' heartbeats and the peer would count the host as silent.
        if let hosts {
            for h in 0..<hosts.count where hosts.stageWorkers(of: h).count > 1 {
                load[hosts.edgeWorker(of: h)] = Int.max / 2
            }
        }
        for node in nodes where node.index != inputNode {
            let root = groups.find(node.index)
            let worker: Int
            if let w = groupWorker[root] {
                worker = w
            } else {
                // A node's host's stage workers (all workers on one machine).
                let host = hosts?.nodeHost[node.index] ?? 0
                let range = hosts?.stageWorkers(of: host) ?? 0..<workers
                switch placement {
                case .singleWorker: worker = range.lowerBound
                case .spread:
                    worker = range.lowerBound + nextRoundRobin[host] % range.count
                    nextRoundRobin[host] += 1
                case .automatic: worker = range.min { load[$0] < load[$1] }!
                }
                groupWorker[root] = worker
            }
            load[worker] += 1
            result[node.index] = worker
        }
        return result
    }

    /// A node can be fused into its input's segment when it is that node's only reader and reads only it.
    static func isFusable(_ node: NodeSpec, consumers: [[Int]], inputNode: Int) -> Bool {
        guard node.kind == .stage, node.inputs.count == 1 else { return false }
        let producer = node.inputs[0]
        return producer != inputNode && consumers[producer] == [node.index]
    }

    static func consumerLists(_ nodes: [NodeSpec]) -> [[Int]] {
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for node in nodes {
            for input in node.inputs where !consumers[input].contains(node.index) {
                consumers[input].append(node.index)
            }
        }
        return consumers
    }

    // MARK: Fusion and channels

    static func fuse(
        nodes: [NodeSpec],
        inputNode: Int,
        outputNode: Int,
        nodeWorker: [Int?],
        fuseChains: Bool
    )
        -> ([ExecutionPlan.Segment], [ExecutionPlan.Channel], Int, Int)
    {
        let consumers = consumerLists(nodes)
        var segments: [ExecutionPlan.Segment] = []
        var segmentOf = [Int](repeating: -1, count: nodes.count)
        for node in nodes where node.index != inputNode {
            if fuseChains, isFusable(node, consumers: consumers, inputNode: inputNode),
                nodeWorker[node.inputs[0]] == nodeWorker[node.index]
            {
                let s = segmentOf[node.inputs[0]]
                segments[s].nodes.append(node.index)
                segmentOf[node.index] = s
            } else {
                segmentOf[node.index] = segments.count
                segments.append(
                    ExecutionPlan.Segment(id: segments.count, nodes: [node.index], worker: nodeWorker[node.index]!)
                )
            }
        }
        var channels = [ExecutionPlan.Channel(id: 0, node: inputNode, layout: nodes[inputNode].layout)]
        var channelOfNode: [Int: Int] = [inputNode: 0]
        var outputChannel = -1
        for s in segments.indices {
            let tail = segments[s].nodes.last!
            let id = channels.count
            channels.append(ExecutionPlan.Channel(id: id, node: tail, layout: nodes[tail].layout))
            channelOfNode[tail] = id
            segments[s].outputChannel = id
            if tail == outputNode { outputChannel = id }
        }
        for s in segments.indices {
            segments[s].inputChannels = nodes[segments[s].nodes[0]].inputs.map { channelOfNode[$0]! }
        }
        return (segments, channels, 0, outputChannel)
    }
}

/// Disjoint sets over node indices (path halving).
struct UnionFind {
    private var parent: [Int]
    init(count: Int) { parent = Array(0..<count) }
    mutating func find(_ x: Int) -> Int {
        var x = x
        while parent[x] != x {
            parent[x] = parent[parent[x]]
            x = parent[x]
        }
        return x
    }
    mutating func union(_ a: Int, _ b: Int) {
        let ra = find(a)
        let rb = find(b)
        if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
    }
}
