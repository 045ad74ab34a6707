import CLibNUMA

/// libnuma, with Swift names. On a machine without NUMA support every query answers as one node.
package enum NUMA {
    /// Whether the kernel and libnuma support NUMA policy calls (`numa_available() >= 0`).
    package static let isAvailable: Bool = numa_available() >= 0

    /// The number of configured NUMA nodes (1 when NUMA is unavailable).
    package static var nodeCount: Int {
        isAvailable ? Int(numa_max_node()) + 1 : 1
    }

    /// The CPUs of `node`, ascending; empty when the node does not exist.
    package static func cpus(ofNode node: Int) -> [Int] {
        guard isAvailable else { return node == 0 ? CPU.allowedCPUs() : [] }
        guard let mask = numa_allocate_cpumask() else { return [] }
        defer { numa_free_cpumask(mask) }
        guard numa_node_to_cpus(Int32(node), mask) == 0 else { return [] }
        let bits = Int(mask.pointee.size)
        return (0..<bits).filter { numa_bitmask_isbitset(mask, UInt32($0)) != 0 }
    }

    /// The node `cpu` belongs to, or `nil`.
    package static func node(ofCPU cpu: Int) -> Int? {
        guard isAvailable else { return 0 }
        let n = numa_node_of_cpu(Int32(cpu))
        return n < 0 ? nil : Int(n)
    }

    /// Binds the pages of `[address, address+byteCount)` to `node` (`numa_tonode_memory`).
    /// Call before the pages are first touched.
    package static func bind(_ address: UnsafeMutableRawPointer, byteCount: Int, toNode node: Int) {
        guard isAvailable else { return }
        numa_tonode_memory(address, byteCount, Int32(node))
    }

    /// Restricts the calling thread to the CPUs of `node` (`numa_run_on_node`). Returns false on failure.
    @discardableResult
    package static func runOnNode(_ node: Int) -> Bool {
        guard isAvailable else { return node == 0 }
        return numa_run_on_node(Int32(node)) == 0
    }

    /// The node holding the page at `address` (`get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR)`), or `nil`.
    package static func node(ofAddress address: UnsafeMutableRawPointer) -> Int? {
        guard isAvailable else { return 0 }
        var node: Int32 = -1
        let r = get_mempolicy(&node, nil, 0, address, UInt32(MPOL_F_NODE | MPOL_F_ADDR))
        return r == 0 ? Int(node) : nil
    }
}
