// The measurement behind the choice of WireEncodable (scripts/wire-measure/run.sh).
import Foundation

struct SearchHit: Equatable, Sendable, Codable, WireEncodable {
    let id: String
    let score: Float
    init(id: String, score: Float) { self.id = id; self.score = score }
    func encode(to w: inout WireWriter) { w.write(id); w.write(score) }
    init(from r: inout WireReader) throws { id = try r.read(); score = try r.read() }
}
struct QueryAnswer: Equatable, Sendable, Codable, WireEncodable {
    let query: String
    let hits: [SearchHit]
    init(query: String, hits: [SearchHit]) { self.query = query; self.hits = hits }
    func encode(to w: inout WireWriter) { w.write(query); w.write(hits) }
    init(from r: inout WireReader) throws { query = try r.read(); hits = try r.read() }
}

@inline(never) func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
let iterations = 200_000

func measure<T: WireEncodable & Codable & Equatable>(_ name: String, _ value: T) {
    // WireEncodable through the engine's codec (closures behind raw pointers).
    let codec = WireCodec.of(T.self)!
    var v = value
    var n = 0
    var best = [Double](repeating: .infinity, count: 5)
    for _ in 0..<3 {
        var t0 = now()
        for _ in 0..<iterations { n = withUnsafePointer(to: &v) { codec.encode(UnsafeRawPointer($0), into: buffer)! } }
        best[0] = min(best[0], Double(now() - t0) / Double(iterations))
        let out = UnsafeMutablePointer<T>.allocate(capacity: 1)
        t0 = now()
        for _ in 0..<iterations { try! codec.decode(from: UnsafeRawBufferPointer(rebasing: buffer[0..<n]), into: out); out.deinitialize(count: 1) }
        best[1] = min(best[1], Double(now() - t0) / Double(iterations))
        try! codec.decode(from: UnsafeRawBufferPointer(rebasing: buffer[0..<n]), into: out); precondition(out.pointee == value); out.deinitialize(count: 1)
        // Keyless binary Codable.
        var m = 0
        t0 = now()
        for _ in 0..<iterations { let e = BinEncoder(buffer); try! e.enc(value); m = e.writer.count }
        best[2] = min(best[2], Double(now() - t0) / Double(iterations))
        t0 = now()
        for _ in 0..<iterations { let d = BinDecoder(UnsafeRawBufferPointer(rebasing: buffer[0..<m])); _ = try! d.dec(T.self) }
        best[3] = min(best[3], Double(now() - t0) / Double(iterations))
        precondition(try! BinDecoder(UnsafeRawBufferPointer(rebasing: buffer[0..<m])).dec(T.self) == value)
        // Foundation JSON (a tenth of the iterations).
        let enc = JSONEncoder(), dec = JSONDecoder()
        t0 = now()
        for _ in 0..<iterations / 10 { let d = try! enc.encode(value); _ = try! dec.decode(T.self, from: d) }
        best[4] = min(best[4], Double(now() - t0) / Double(iterations / 10))
    }
    let json = try! JSONEncoder().encode(value).count
    print("\(name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(String(format: "%4d", n)) B  wire enc \(String(format: "%6.0f", best[0])) dec \(String(format: "%6.0f", best[1])) ns | binary Codable enc \(String(format: "%6.0f", best[2])) dec \(String(format: "%6.0f", best[3])) ns | JSON \(json) B enc+dec \(String(format: "%7.0f", best[4])) ns")
}

var rng = SystemRandomNumberGenerator()
let query = "borrow checker ownership"
let tokens = ["borrow", "checker", "ownership"]
let vector = (0..<64).map { _ in Float.random(in: -1...1, using: &rng) }
let hits = [SearchHit(id: "rust-borrow", score: 0.612), SearchHit(id: "swift-actors", score: 0.180), SearchHit(id: "gpu-kernels", score: 0.05)]
measure("String (24 B query)", query)
measure("[String] (3 tokens)", tokens)
measure("[Float] (64 dims)", vector)
measure("[SearchHit] (top 3)", hits)
measure("QueryAnswer", QueryAnswer(query: query, hits: hits))
