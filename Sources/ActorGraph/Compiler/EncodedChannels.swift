/// Process mode: which channels carry their values encoded (``EncodedSlot``).
extension ExecutionPlan {
    /// Gives every channel whose value is not trivially copyable an encoded slot of its node's
    /// limit (``Node/maxEncodedBytes(_:)``, else ``EncodedSlot/defaultLimit``). Trivially copyable
    /// values keep their slots (they cross in place); values that stay in a worker's fused chain
    /// never cross, so they need no codec. Throws ``CompileError/notIsolatable(node:type:)`` for a
    /// crossing value that has none.
    ///
    /// The parent applies it in `Compiler.plan` and a worker child to the plan it rebuilds, before
    /// either computes the fingerprint: both lay out the same slots.
    mutating func encodeValuesCrossingProcesses() throws(CompileError) {
        try encodeValues(of: Array(channels.indices)) { node in
            .notIsolatable(node: node.name, type: node.layout.typeName)
        }
    }

    /// A graph spanning hosts: the same for the channels whose values cross hosts (a value that
    /// stays on one host keeps its slot); ``CompileError/notRemotable(node:type:)`` for one with no codec.
    mutating func encodeValuesCrossingHosts() throws(CompileError) {
        let crossing = channels.indices.filter { c in
            let producer = producerHost(of: c)
            return consumerHosts(of: c).contains { $0 != producer } || (c == outputChannel && producer != 0)
        }
        try encodeValues(of: crossing) { node in .notRemotable(node: node.name, type: node.layout.typeName) }
    }

    private mutating func encodeValues(of selected: [Int], refusal: (NodeSpec) -> CompileError) throws(CompileError) {
        for c in selected {
            let node = nodes[channels[c].node]
            guard !node.layout.isTrivial else { continue }
            guard let codec = node.layout.wire else { throw refusal(node) }
            channels[c].layout = EncodedSlot.channelLayout(
                for: node.layout,
                codec: codec,
                limit: node.maxEncodedBytes ?? EncodedSlot.defaultLimit,
                node: node.index
            )
        }
    }
}

extension Compiler {
    /// Every declared ``Node/maxEncodedBytes(_:)`` is within `1...EncodedSlot.maxLimit` (checked in
    /// every mode, so a graph does not compile in one mode and fail in the other).
    static func validateEncodedLimits(nodes: [NodeSpec]) throws(CompileError) {
        for node in nodes {
            if let limit = node.maxEncodedBytes, !(1...EncodedSlot.maxLimit).contains(limit) {
                throw .invalidOption(
                    "maxEncodedBytes(\(limit)) on node '\(node.name)': must be 1...\(EncodedSlot.maxLimit)"
                )
            }
        }
    }
}
