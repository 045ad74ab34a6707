/// A 64-bit FNV-1a hash of everything a worker child must agree on with its parent: every node's
/// name, kind, inputs, value layout (size, alignment, type name, triviality) and worker, the
/// segments, the channels (with their slot sizes: encoded slots follow their limits), the capacity
/// and the worker count.
///
/// Deterministic across processes (unlike `Hasher`, which is seeded per process).
enum PlanFingerprint {
    static func of(_ plan: ExecutionPlan) -> UInt64 {
        var h = FNV1a()
        h.add(1)  // format version
        h.add(plan.nodes.count)
        h.add(plan.workerCount)
        h.add(plan.capacity)
        h.add(plan.inputNode)
        h.add(plan.outputNode)
        for node in plan.nodes {
            h.add(node.name)
            h.add(node.kind == .input ? 0 : node.kind == .stage ? 1 : 2)
            h.add(node.inputs.count)
            for i in node.inputs { h.add(i) }
            h.add(node.layout.size)
            h.add(node.layout.alignment)
            h.add(node.layout.isTrivial ? 1 : 0)
            h.add(node.layout.typeName)
            h.add(plan.nodeWorker[node.index] ?? -1)
        }
        for segment in plan.segments {
            h.add(segment.id)
            h.add(segment.worker)
            h.add(segment.outputChannel)
            h.add(segment.nodes.count)
            for n in segment.nodes { h.add(n) }
            h.add(segment.inputChannels.count)
            for c in segment.inputChannels { h.add(c) }
        }
        for channel in plan.channels {
            h.add(channel.id)
            h.add(channel.node)
            h.add(channel.layout.size)
            h.add(channel.layout.encoded == nil ? 0 : 1)
            h.add(channel.consumers.count)
            for c in channel.consumers { h.add(c) }
        }
        if let hosts = plan.hosts {
            h.add(hosts.count)
            for name in hosts.names { h.add(name) }
            for host in hosts.nodeHost { h.add(host) }
            h.add(hosts.ownerWorkers)
            h.add(hosts.workersPerPiece)
        }
        return h.value
    }
}

struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ byte: UInt8) {
        value ^= UInt64(byte)
        value = value &* 0x0000_0100_0000_01B3
    }

    mutating func add(_ x: Int) {
        var v = UInt64(bitPattern: Int64(x))
        for _ in 0..<8 {
            add(UInt8(truncatingIfNeeded: v))
            v >>= 8
        }
    }

    mutating func add(_ s: String) {
        add(s.utf8.count)
        for b in s.utf8 { add(b) }
    }
}
