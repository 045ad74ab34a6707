/// Renders an ``ExecutionPlan`` as Graphviz DOT.
enum DOTWriter {
    static func write(_ plan: ExecutionPlan, cpus: [Int?], statistics: GraphStatistics? = nil) -> String {
        var figures: [Int: String] = [:]
        var waits: [String: String] = [:]
        for node in statistics?.nodes ?? [] {
            var text = "\\nn=\(node.executions) failed=\(node.failures)"
            if !node.stageTime.isEmpty {
                text +=
                    "\\nstage p50 \(GraphStatistics.time(node.stageTime, 50)) p99 \(GraphStatistics.time(node.stageTime, 99))"
            }
            figures[node.index] = text
        }
        for channel in statistics?.channels ?? [] where !channel.wait.isEmpty {
            waits[channel.producer + "→" + channel.consumer] =
                "\\nwait p50 \(GraphStatistics.time(channel.wait, 50)) p99 \(GraphStatistics.time(channel.wait, 99))"
        }
        var lines = ["digraph ActorGraph {", "  rankdir=LR;", "  node [shape=box, fontname=\"Helvetica\"];"]
        func id(_ node: Int) -> String { "n\(node)" }
        func escape(_ s: String) -> String {
            s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\\\"")
        }
        lines.append(
            "  \(id(plan.inputNode)) [label=\"input\\n\(escape(plan.nodes[plan.inputNode].layout.typeName))\", shape=ellipse];"
        )
        for worker in 0..<plan.workerCount {
            let cpu = cpus[worker].map { "CPU \($0)" } ?? "unpinned"
            lines.append("  subgraph cluster_w\(worker) {")
            lines.append("    label=\"worker \(worker) (\(cpu))\";")
            for node in plan.nodes where plan.nodeWorker[node.index] == worker {
                let output = node.index == plan.outputNode ? ", peripheries=2" : ""
                lines.append(
                    "    \(id(node.index)) [label=\"\(escape(node.name))\\n→ \(escape(node.layout.typeName))\\nworker \(worker)\(figures[node.index] ?? "")\"\(output)];"
                )
            }
            lines.append("  }")
        }
        var segmentOf: [Int: Int] = [:]
        for segment in plan.segments { for n in segment.nodes { segmentOf[n] = segment.id } }
        for node in plan.nodes {
            for input in node.inputs {
                if let s = segmentOf[node.index], let t = segmentOf[input], s == t {
                    lines.append("  \(id(input)) -> \(id(node.index)) [label=\"fused\", style=bold];")
                } else {
                    let producer = input == plan.inputNode ? "input" : plan.nodes[input].name
                    let wait = waits[producer + "→" + plan.nodes[node.index].name] ?? ""
                    lines.append("  \(id(input)) -> \(id(node.index)) [label=\"ring cap \(plan.capacity)\(wait)\"];")
                }
            }
        }
        lines.append("  result [label=\"result ring\\ncap \(plan.capacity)\", shape=ellipse];")
        lines.append("  \(id(plan.outputNode)) -> result;")
        lines.append("}")
        return lines.joined(separator: "\n")
    }
}
