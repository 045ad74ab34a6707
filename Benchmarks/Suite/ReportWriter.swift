import FoundationEssentials
import Glibc

/// The table, `results.json`, `results.csv` and `latency.svg`.
enum ReportWriter {
    // MARK: Table

    static func table(_ r: BenchReport) -> String {
        var out: [String] = []
        let pp = r.pingPong.stats
        out.append(
            "LATENCY, one execution at a time, pinned caller in a tight loop (ns; each sample one round trip to the workers — caller take-over off —, clock read \(r.clockReadNanoseconds) ns included)"
        )
        out.append(
            row(
                ["case", "bytes", "path", "p50", "p99", "p99.9", "max", "exec/s", "allocs/exec"],
                [16, 6, 10, 9, 9, 9, 10, 10, 11]
            )
        )
        var previous = ""
        for p in r.latency.sorted(by: { order($0) < order($1) }) {
            if !previous.isEmpty && previous != p.name { out.append("") }
            previous = p.name
            out.append(
                row(
                    [
                        p.name, "\(p.payloadBytes)", p.path, fmtNs(p.stats.p50), fmtNs(p.stats.p99),
                        fmtNs(p.stats.p999),
                        fmtNs(p.stats.max), fmtRate(p.stats.throughputPerSecond),
                        p.allocationsPerExecution.map { fmt($0, 2) } ?? "-",
                    ],
                    [16, 6, 10, 9, 9, 9, 10, 10, 11]
                )
            )
        }
        out.append("")
        out.append("PHYSICAL LIMIT, cache-line ping-pong between two pinned threads (round trip, ns)")
        for p in [r.pingPong, r.pingPongPause] {
            out.append(
                row(
                    [
                        p.name, p.name == "pingpong" ? "plain spin (used for ratios)" : "spin with pause hint",
                        fmtNs(p.stats.p50), fmtNs(p.stats.p99), fmtNs(p.stats.p999), fmtNs(p.stats.max),
                    ],
                    [16, 30, 9, 9, 9, 10]
                )
            )
        }
        out.append("")
        out.append("RATIOS (p50 unless noted; comp/dyn < 1 means compiled is faster, dyn/comp is the speed-up)")
        out.append(
            row(
                [
                    "case", "compiled", "dynamic", "sequential", "comp/dyn", "dyn/comp", "comp/pp", "comp/pp p99",
                    "comp/seq",
                ],
                [16, 10, 10, 10, 9, 9, 9, 11, 9]
            )
        )
        var names: [String] = []
        for p in r.latency where !names.contains(p.name) { names.append(p.name) }
        for name in names {
            let c = r.latency.first { $0.name == name && $0.path == "compiled" }
            let d = r.latency.first { $0.name == name && $0.path == "dynamic" }
            let s = r.latency.first { $0.name == name && $0.path == "sequential" }
            func ratio(_ a: UInt64?, _ b: UInt64?, _ digits: Int) -> String {
                guard let a, let b, b > 0 else { return "-" }
                return fmt(Double(a) / Double(b), digits)
            }
            out.append(
                row(
                    [
                        name, c.map { fmtNs($0.stats.p50) } ?? "-", d.map { fmtNs($0.stats.p50) } ?? "-",
                        s.map { fmtNs($0.stats.p50) } ?? "-",
                        ratio(c?.stats.p50, d?.stats.p50, 4), ratio(d?.stats.p50, c?.stats.p50, 1) + "x",
                        ratio(c?.stats.p50, pp.p50, 2) + "x", ratio(c?.stats.p99, pp.p99, 2) + "x",
                        ratio(c?.stats.p50, s?.stats.p50, 1) + "x",
                    ],
                    [16, 10, 10, 10, 9, 9, 9, 11, 9]
                )
            )
        }
        if !r.throughput.isEmpty {
            out.append("")
            out.append("PIPELINED THROUGHPUT (executions in flight, submit ahead / wait behind)")
            for t in r.throughput {
                out.append(
                    row(
                        [
                            t.name, t.path, "window \(t.window)", fmtRate(t.perSecond) + " exec/s (median)",
                            "allocs/exec " + (t.allocationsPerExecution.map { fmt($0, 3) } ?? "-"),
                        ],
                        [18, 10, 12, 26, 20]
                    )
                )
            }
        }
        if !r.paced.isEmpty {
            out.append("")
            out.append("PACED LOAD, one execution every period, latency from the intended start (ns)")
            out.append(row(["case", "path", "p50", "p99", "p99.9", "max"], [20, 10, 9, 9, 9, 10]))
            for p in r.paced {
                out.append(
                    row(
                        [
                            p.name, p.path, fmtNs(p.stats.p50), fmtNs(p.stats.p99), fmtNs(p.stats.p999),
                            fmtNs(p.stats.max),
                        ],
                        [20, 10, 9, 9, 9, 10]
                    )
                )
            }
        }
        if let rec = r.recovery {
            out.append("")
            out.append(
                "RECOVERY of an isolated worker (SIGKILL to the next successful execution, \(rec.stats.count) kills): "
                    + "p50 \(fmtNs(rec.stats.p50))  max \(fmtNs(rec.stats.max))"
                    + (r.recoveryStandby.map {
                        "; activating a standby process: p50 \(fmtNs($0.stats.p50))  max \(fmtNs($0.stats.max))"
                    } ?? "")
            )
        }
        if let c = r.contended {
            out.append("")
            out.append("CONTENDED (effective CPUs: \(c.effectiveCPUs))")
            out.append(
                row(["case", "p50", "p99", "p99.9", "max", "exec/s", "target / note"], [32, 9, 9, 9, 10, 10, 40])
            )
            func add(_ p: PathResult?, _ note: String) {
                guard let p else { return }
                out.append(
                    row(
                        [
                            p.name, fmtNs(p.stats.p50), fmtNs(p.stats.p99), fmtNs(p.stats.p999), fmtNs(p.stats.max),
                            fmtRate(p.stats.throughputPerSecond), "  " + note,
                        ],
                        [32, 9, 9, 9, 10, 10, 40]
                    )
                )
            }
            add(c.oversubscribedDiamond, "p50 <= 20 µs, >= 200 k/s")
            if let t = c.oversubscribedChain3PerSecond {
                out.append(
                    row(
                        ["oversubscribed.chain3.pipelined", "-", "-", "-", "-", fmtRate(t), "  >= 5 M/s (window 512)"],
                        [32, 9, 9, 9, 10, 10, 40]
                    )
                )
            }
            if let skipped = c.quotaSkipped {
                out.append("quota.echo skipped: \(skipped)")
            } else {
                let throttled =
                    c.quotaThrottledPeriods.map { "throttled \($0)/\(c.quotaPeriods ?? 0) periods" }
                    ?? "throttling unread"
                add(c.quotaEcho, "max <= 2 ms, p99.9 <= 20 µs; \(throttled)")
            }
            add(c.quietEcho, "alone")
            add(c.competingEcho, "one busy process per CPU")
        }
        if let service = r.service, !service.results.isEmpty {
            out.append("")
            out.append(
                "HOW A SERVICE CALLS IT: unpinned caller sleeping between requests (ns from the call; Poisson and serve also from the intended start)"
            )
            let widths = [30, 14, 9, 9, 9, 10, 10, 10, 10, 10, 9]
            out.append(
                row(
                    [
                        "case", "path", "p50", "p99", "p99.9", "max", "int. p50", "int. p99", "int. p99.9", "int. max",
                        "per s",
                    ],
                    widths
                )
            )
            var previous = ""
            for p in service.results {
                if !previous.isEmpty && previous != p.name { out.append("") }
                previous = p.name
                let i = p.fromIntended
                out.append(
                    row(
                        [
                            p.name, p.path, fmtNs(p.stats.p50), fmtNs(p.stats.p99), fmtNs(p.stats.p999),
                            fmtNs(p.stats.max),
                            i.map { fmtNs($0.p50) } ?? "-", i.map { fmtNs($0.p99) } ?? "-",
                            i.map { fmtNs($0.p999) } ?? "-",
                            i.map { fmtNs($0.max) } ?? "-", fmtRate(p.stats.throughputPerSecond),
                        ],
                        widths
                    )
                )
            }
            for note in service.notes { out.append(note) }
        }
        if let remote = r.remote, !(remote.results.isEmpty && remote.notes.isEmpty) {
            out.append("")
            out.append(
                "ACROSS HOSTS: raw TCP ping-pong (32 B each way, TCP_NODELAY, blocking send/recv) beside a graph spanning two hosts (round trip, ns; pipelined: executions/s)"
            )
            let widths = [24, 11, 9, 9, 9, 10, 8]
            out.append(row(["case", "path", "p50", "p99", "p99.9", "max", "count"], widths) + "  route")
            for p in remote.results {
                if let perSecond = p.perSecond {
                    out.append(
                        row([p.name, p.path, fmtRate(perSecond), "", "", "", "\(p.count)"], widths) + "  \(p.route)"
                    )
                } else {
                    out.append(
                        row(
                            [p.name, p.path, fmtNs(p.p50), fmtNs(p.p99), fmtNs(p.p999), fmtNs(p.max), "\(p.count)"],
                            widths
                        ) + "  \(p.route)"
                    )
                }
            }
            for note in remote.notes { out.append(note) }
        }
        out.append("")
        out.append(
            "MEMORY: peak RSS \(fmtBytes(r.peakRSSBytesAfterCompiled)) after the compiled cases, \(fmtBytes(r.peakRSSBytes)) at the end"
        )
        out.append("ALLOCATIONS: \(r.allocationMethod)")
        out.append(
            "OTHER LOAD: \(fmt(r.busyCPUsBeforeRun, 2)) of \(r.machine.onlineCPUs) CPUs busy just before the run (anything else running inflates the numbers)"
        )
        return out.joined(separator: "\n")
    }

    static func order(_ p: PathResult) -> Int {
        (LatencyCase.all.firstIndex { $0.name == p.name } ?? 99) * 4
            + (["compiled": 0, "dynamic": 1, "sequential": 2][p.path] ?? 3)
    }

    static func row(_ cells: [String], _ widths: [Int]) -> String {
        var line = ""
        for (i, cell) in cells.enumerated() {
            let w = i < widths.count ? widths[i] : 10
            line += i == 0 ? pad(cell, w) : " " + padLeft(cell, w)
        }
        return line
    }

    // MARK: Files

    static func write(_ report: BenchReport, to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf",
            negativeInfinity: "-inf",
            nan: "nan"
        )
        let json = directory + "/results.json"
        try encoder.encode(report).write(to: URL(fileURLWithPath: json))
        let csv = directory + "/results.csv"
        try Data(csvText(report).utf8).write(to: URL(fileURLWithPath: csv))
        let svg = directory + "/latency.svg"
        try Data(svgText(report).utf8).write(to: URL(fileURLWithPath: svg))
        let table = directory + "/table.txt"
        try Data((self.table(report) + "\n" + report.summary.line + "\n").utf8).write(to: URL(fileURLWithPath: table))
        return [json, csv, svg, table]
    }

    static func csvText(_ r: BenchReport) -> String {
        var lines = [
            "kind,case,path,payload_bytes,count,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,mean_ns,throughput_per_s,allocs_per_execution"
        ]
        func add(_ kind: String, _ p: PathResult) {
            let s = p.stats
            lines.append(
                "\(kind),\(p.name),\(p.path),\(p.payloadBytes),\(s.count),\(s.p50),\(s.p90),\(s.p99),\(s.p999),\(s.max),"
                    + "\(fmt(s.mean, 1)),\(fmt(s.throughputPerSecond, 0)),\(p.allocationsPerExecution.map { fmt($0, 4) } ?? "")"
            )
        }
        add("baseline", r.pingPong)
        add("baseline", r.pingPongPause)
        r.latency.forEach { add("latency", $0) }
        r.paced.forEach { add("paced", $0) }
        // Service cases: one row from the call, one from the intended start where there is one.
        for p in r.service?.results ?? [] {
            add("service", PathResult(name: p.name, path: p.path, payloadBytes: p.payloadBytes, stats: p.stats))
            if let i = p.fromIntended {
                add(
                    "service.from_intended",
                    PathResult(name: p.name, path: p.path, payloadBytes: p.payloadBytes, stats: i)
                )
            }
        }
        // Remote cases: percentiles only (the client prints no distribution); empty cells for the rest.
        for p in r.remote?.results ?? [] {
            lines.append(
                "remote,\(p.name),\(p.path),\(p.payloadBytes),\(p.count),\(p.p50),,\(p.p99),\(p.p999),\(p.max),,\(p.perSecond.map { fmt($0, 0) } ?? ""),"
            )
        }
        for t in r.throughput {
            lines.append(
                "throughput,\(t.name),\(t.path),8,\(t.rounds.count),,,,,,,\(fmt(t.perSecond, 0)),\(t.allocationsPerExecution.map { fmt($0, 4) } ?? "")"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Plot

    /// Latency distributions (HdrHistogram style): x is the percentile on a log scale of 1/(1-p),
    /// y the latency on a log scale. Compiled solid, dynamic dashed, ping-pong dotted.
    static func svgText(_ r: BenchReport) -> String {
        struct Series {
            var label: String
            var color: String
            var dash: String
            var points: [[Double]]
        }
        let palette = [
            "echo": "#1f77b4", "chain3": "#d62728", "diamond": "#2ca02c", "fanout4": "#9467bd",
            "chain8.fused": "#ff7f0e",
        ]
        var series: [Series] = [
            Series(
                label: "ping-pong (physical limit)",
                color: "#000000",
                dash: "2,3",
                points: r.pingPong.stats.distribution
            )
        ]
        for name in ["echo", "chain3", "diamond", "fanout4", "chain8.fused"] {
            for (path, dash) in [("compiled", ""), ("dynamic", "8,4")] {
                if let p = r.latency.first(where: { $0.name == name && $0.path == path }) {
                    series.append(
                        Series(
                            label: "\(name) \(path)",
                            color: palette[name]!,
                            dash: dash,
                            points: p.stats.distribution
                        )
                    )
                }
            }
        }
        let width = 900.0
        let height = 560.0
        let left = 80.0
        let right = 230.0
        let top = 50.0
        let bottom = 60.0
        let plotW = width - left - right
        let plotH = height - top - bottom
        let xMax = 5.0  // 99.999th percentile
        var yMinLog = 1.0
        var yMaxLog = 2.0
        let all = series.flatMap { $0.points }.map { Swift.max(1, $0[1]) }
        if let lo = all.min(), let hi = all.max() {
            yMinLog = (log10(lo)).rounded(.down)
            yMaxLog = Swift.max(yMinLog + 1, (log10(hi)).rounded(.up))
        }
        func x(_ percentile: Double) -> Double {
            let p = Swift.min(percentile, 99.999)
            return left + Swift.min(xMax, -log10(1 - p / 100)) / xMax * plotW
        }
        func y(_ ns: Double) -> Double {
            top + plotH - (log10(Swift.max(1, ns)) - yMinLog) / (yMaxLog - yMinLog) * plotH
        }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="Helvetica,Arial,sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15" font-weight="bold">ActorGraph latency distribution: compiled (solid) vs dynamic (dashed)</text>
            <text x="\(left)" y="38" fill="#555">\(escape(r.machine.cpuModel)), \(r.machine.allowedCPUs.count) CPUs, \(r.mode) run; one execution at a time</text>

            """
        for decade in Int(yMinLog)...Int(yMaxLog) {
            let yy = y(pow(10, Double(decade)))
            s += "<line x1=\"\(left)\" y1=\"\(f1(yy))\" x2=\"\(left + plotW)\" y2=\"\(f1(yy))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(left - 8)\" y=\"\(f1(yy + 4))\" text-anchor=\"end\">\(decadeLabel(decade))</text>\n"
        }
        for (tick, label) in [
            (0.0, "0%"), (50.0, "50%"), (90.0, "90%"), (99.0, "99%"), (99.9, "99.9%"), (99.99, "99.99%"),
            (99.999, "99.999%"),
        ] {
            let xx = x(tick)
            s += "<line x1=\"\(f1(xx))\" y1=\"\(top)\" x2=\"\(f1(xx))\" y2=\"\(top + plotH)\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f1(xx))\" y=\"\(top + plotH + 18)\" text-anchor=\"middle\">\(label)</text>\n"
        }
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotW)\" height=\"\(plotH)\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 15)\" text-anchor=\"middle\">percentile</text>\n"
        s +=
            "<text transform=\"translate(20,\(top + plotH / 2)) rotate(-90)\" text-anchor=\"middle\">round-trip latency (log scale)</text>\n"
        for (i, serie) in series.enumerated() {
            let points = serie.points.map { "\(f1(x($0[0]))),\(f1(y($0[1])))" }.joined(separator: " ")
            let dash = serie.dash.isEmpty ? "" : " stroke-dasharray=\"\(serie.dash)\""
            s += "<polyline fill=\"none\" stroke=\"\(serie.color)\" stroke-width=\"2\"\(dash) points=\"\(points)\"/>\n"
            let ly = top + 10 + Double(i) * 20
            s +=
                "<line x1=\"\(left + plotW + 15)\" y1=\"\(ly)\" x2=\"\(left + plotW + 45)\" y2=\"\(ly)\" stroke=\"\(serie.color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\"\(left + plotW + 52)\" y=\"\(ly + 4)\">\(escape(serie.label))</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    static func f1(_ v: Double) -> String { fmt(v, 1) }

    static func decadeLabel(_ decade: Int) -> String {
        let units = ["ns", "µs", "ms", "s"]
        let unit = Swift.min(Swift.max(decade, 0) / 3, units.count - 1)
        var value = 1
        for _ in 0..<(Swift.max(decade, 0) - unit * 3) { value *= 10 }
        return "\(value)\(units[unit])"
    }

    static func escape(_ text: String) -> String {
        text.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
    }
}

// MARK: Formatting (no Foundation `String(format:)` needed)

/// `value` with `digits` decimals; "nan" for NaN.
func fmt(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    let negative = value < 0 && rounded > 0
    guard rounded < 9e18 else { return "\(value)" }
    let whole = UInt64(rounded) / UInt64(scale)
    let fraction = UInt64(rounded) % UInt64(scale)
    var text = (negative ? "-" : "") + "\(whole)"
    if digits > 0 {
        let f = "\(fraction)"
        text += "." + String(repeating: "0", count: digits - f.count) + f
    }
    return text
}

/// Nanoseconds, scaled to ns / µs / ms / s.
func fmtNs(_ ns: UInt64) -> String {
    switch ns {
    case ..<10_000: return "\(ns)ns"
    case ..<10_000_000: return fmt(Double(ns) / 1e3, 1) + "µs"
    case ..<10_000_000_000: return fmt(Double(ns) / 1e6, 1) + "ms"
    default: return fmt(Double(ns) / 1e9, 1) + "s"
    }
}

func fmtRate(_ perSecond: Double) -> String {
    guard perSecond.isFinite else { return "nan" }
    if perSecond >= 1e6 { return fmt(perSecond / 1e6, 2) + "M" }
    if perSecond >= 1e3 { return fmt(perSecond / 1e3, 1) + "k" }
    return fmt(perSecond, 0)
}

func fmtBytes(_ bytes: Int) -> String {
    if bytes >= 1 << 20 { return fmt(Double(bytes) / Double(1 << 20), 1) + " MiB" }
    if bytes >= 1 << 10 { return fmt(Double(bytes) / Double(1 << 10), 1) + " KiB" }
    return "\(bytes) B"
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func padLeft(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}
