import ActorGraphPlatform

/// The compiler's result before memory is allocated: which node runs where, which chains are fused,
/// and which edges are channels.
struct ExecutionPlan {
    /// A maximal run of nodes on one worker executed as direct calls, with no channel between them.
    struct Segment {
        let id: Int
        /// Node indices, head first; each node reads only the previous one (the head reads channels).
        var nodes: [Int]
        let worker: Int
        /// Channels the head reads, one per head input, in argument order.
        var inputChannels: [Int] = []
        /// The channel the tail writes.
        var outputChannel: Int = -1
    }

    /// A preallocated ring carrying one node's values to every segment that reads them.
    struct Channel {
        let id: Int
        /// The node whose values the channel carries (the graph input for channel 0).
        let node: Int
        var layout: ValueLayout
        /// Segments reading the channel (a segment reading it twice, as in `zip(a, a)`, appears once).
        var consumers: [Int] = []
    }

    let nodes: [NodeSpec]
    let inputNode: Int
    let outputNode: Int
    let workerCount: Int
    /// Capacity of every channel: a power of two, also the limit of executions in flight.
    let capacity: Int
    /// The worker of each node (`nil` for the input node).
    let nodeWorker: [Int?]
    let segments: [Segment]
    var channels: [Channel]
    let inputChannel: Int
    let outputChannel: Int
    /// The CPU of each worker (`nil` when not pinned).
    let workerCPUs: [Int?]
    /// The CPUs workers are pinned to (the others are where callers run).
    var pinnedWorkerCPUs: Set<Int> { Set(workerCPUs.compactMap { $0 }) }
    let numaNode: Int?
    /// The CPUs the process could really use at compile time (affinity mask and cgroup quota).
    var effectiveCPUs = EffectiveCPUs(affinity: 1, quota: nil)
    /// The `cpu.stat` of the cgroup setting the quota, watched for throttling (`nil` without a quota).
    var cpuStatPath: String?
    /// Hosts, when the graph spans several (`Node.on(_:)`); `nil` on one machine.
    var hosts: HostTable?
}
