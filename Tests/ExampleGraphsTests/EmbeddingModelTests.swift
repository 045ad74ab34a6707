import ActorGraphExamples
import XCTest

final class EmbeddingModelTests: XCTestCase {
    // MARK: Primitives

    func testSplitMix64MatchesReferenceVector() {
        // Published SplitMix64 outputs for seed 1234567.
        var rng = SplitMix64(seed: 1_234_567)
        XCTAssertEqual(rng.next(), 6_457_827_717_110_365_317)
        XCTAssertEqual(rng.next(), 3_203_168_211_198_807_973)
        XCTAssertEqual(rng.next(), 9_817_491_932_198_370_423)
        for _ in 0..<1000 {
            let u = rng.nextUnit()
            XCTAssert(u >= 0 && u < 1)
            let s = rng.nextSigned()
            XCTAssert(s >= -1 && s < 1)
        }
    }

    func testFNV1a64MatchesReferenceVectors() {
        XCTAssertEqual(FNV1a64.hash(""), 0xCBF2_9CE4_8422_2325)
        XCTAssertEqual(FNV1a64.hash("a"), 0xAF63_DC4C_8601_EC8C)
        XCTAssertEqual(FNV1a64.hash("foobar"), 0x8594_4171_F739_67E8)
        XCTAssertEqual(FNV1a64.hash(Array("foobar".utf8)), FNV1a64.hash("foobar"))
    }

    // MARK: Text

    func testSanitizeExactOutputs() {
        let s = TextSanitizer()
        XCTAssertEqual(s.sanitize("  Hello, World!!  It's   42°C  "), "hello world it s 42 c")
        XCTAssertEqual(
            s.sanitize("The Rust borrow-checker: ownership & lifetimes."),
            "the rust borrow checker ownership lifetimes"
        )
        XCTAssertEqual(s.sanitize("io_uring\tand\nNUMA"), "io uring and numa")
        XCTAssertEqual(s.sanitize("Café DÉJÀ-vu"), "café déjà vu")
        XCTAssertEqual(s.sanitize(""), "")
        XCTAssertEqual(s.sanitize(" ?!... "), "")
        XCTAssertEqual(s.sanitize("already clean"), "already clean")
    }

    func testTokenizeDropsStopWordsAndKeepsOrder() {
        let t = Tokenizer()
        XCTAssertEqual(
            t.tokenize("the rust borrow checker is a tool for ownership"),
            ["rust", "borrow", "checker", "tool", "ownership"]
        )
        XCTAssertEqual(
            t.tokenize("an ode to the art of war and peace in time on with"),
            ["ode", "art", "war", "peace", "time"]
        )
        XCTAssertEqual(t.tokenize("  spaced   out  "), ["spaced", "out"])
        XCTAssertEqual(t.tokenize("the a an of to and in is for on with"), [])
        XCTAssertEqual(t.tokenize(""), [])
        XCTAssertEqual(Tokenizer.stopWords.count, 11)
    }

    // MARK: Embedding

    func testEmbeddingIsDeterministicWithRequestedDimension() {
        let tokens = ["rust", "borrow", "checker"]
        let a = HashedNGramEmbedder()
        let b = HashedNGramEmbedder()
        XCTAssertEqual(a.dimensions, 64)
        let va = a.embed(tokens)
        XCTAssertEqual(va.count, 64)
        XCTAssertEqual(va, b.embed(tokens))
        XCTAssertEqual(va, a.embed(tokens))
        XCTAssert(va.contains { $0 != 0 })

        let wide = HashedNGramEmbedder(dimensions: 16)
        XCTAssertEqual(wide.embed(tokens).count, 16)

        let otherSeed = HashedNGramEmbedder(seed: 1)
        XCTAssertNotEqual(otherSeed.embed(tokens), va)
        XCTAssertNotEqual(a.embed(["rust", "borrow"]), va)
    }

    func testEmbeddingIsStableAcrossProcesses() {
        // Pins the exact output, so a change to hashing, feature layout or the projection
        // (or an accidental use of the randomly seeded `Hasher`) is caught.
        let v = HashedNGramEmbedder().embed(["rust", "borrow", "checker"])
        var checksum = FNV1a64.offsetBasis
        for x in v {
            checksum = FNV1a64.hash(withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) }, seed: checksum)
        }
        XCTAssertEqual(checksum, Self.pinnedChecksum, "checksum \(String(checksum, radix: 16))")
    }

    static let pinnedChecksum: UInt64 = 0x4A0F_9D74_06EB_7B11

    func testFeatureVectorCountsWordsAndTrigrams() {
        let e = HashedNGramEmbedder()
        let features = e.featureVector(["cat"])
        XCTAssertEqual(features.count, HashedNGramEmbedder.featureBuckets)
        // "cat" → 1 word feature + trigrams of "#cat#": "#ca", "cat", "at#".
        XCTAssertEqual(features.reduce(0) { $0 + abs($1) }, 4)
        XCTAssertEqual(e.featureVector([]).reduce(0) { $0 + abs($1) }, 0)
        XCTAssertEqual(e.embed([]), [Float](repeating: 0, count: 64))
        // A one-letter token still yields one trigram ("#a#").
        XCTAssertEqual(e.featureVector(["x"]).reduce(0) { $0 + abs($1) }, 2)
    }

    func testL2Normalize() {
        let n = l2Normalize([3, 4])
        XCTAssertEqual(n[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(n[1], 0.8, accuracy: 1e-6)
        XCTAssertEqual(l2Normalize([0, 0, 0]), [0, 0, 0])
        XCTAssertEqual(l2Normalize([]), [])
        let v = l2Normalize(HashedNGramEmbedder().embed(["swift", "actors"]))
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertEqual(norm, 1, accuracy: 1e-5)
    }

    // MARK: Index

    func testBorrowCheckerQueryRanksRustFirst() {
        let index = VectorIndex(documents: SampleCorpus.documents, embedder: HashedNGramEmbedder())
        let hits = index.topK(index.embedQuery("borrow checker ownership"), k: 3)
        XCTAssertEqual(hits.count, 3)
        XCTAssertEqual(hits.first?.id, "rust-borrow")
        XCTAssertGreaterThan(hits[0].score, hits[1].score)
        XCTAssertLessThanOrEqual(hits[0].score, 1.0001)
    }

    func testOtherQueriesFindTheirDocuments() {
        let index = VectorIndex(documents: SampleCorpus.documents, embedder: HashedNGramEmbedder())
        let expectations = [
            "actors isolate mutable state": "swift-actors",
            "io_uring submission rings": "io-uring",
            "remote memory access latency per socket": "numa",
            "sourdough starter yeast": "sourdough",
            "offside defender": "football-offside",
            "hurricane storm surge": "hurricanes",
        ]
        for (query, expected) in expectations {
            let answer = index.search(query, k: 1)
            XCTAssertEqual(answer.query, query)
            XCTAssertEqual(answer.hits.map(\.id), [expected], query)
        }
    }

    func testTopKSortingAndClamping() {
        let index = VectorIndex(documents: SampleCorpus.documents, embedder: HashedNGramEmbedder())
        XCTAssertEqual(index.count, 20)
        let q = index.embedQuery("espresso coffee")
        let all = index.topK(q, k: 1000)
        XCTAssertEqual(all.count, 20)
        XCTAssertEqual(Set(all.map(\.id)), Set(SampleCorpus.documents.map(\.id)))
        for (a, b) in zip(all, all.dropFirst()) {
            XCTAssert(a.score > b.score || (a.score == b.score && a.id < b.id))
        }
        XCTAssertEqual(index.topK(q, k: 0), [])
        XCTAssertEqual(index.topK(q, k: -5), [])
        XCTAssertEqual(index.topK(q, k: 4), Array(all.prefix(4)))
        // The query is normalized inside topK, so scaling it changes nothing.
        XCTAssertEqual(index.topK(q.map { $0 * 7 }, k: 4).map(\.id), all.prefix(4).map(\.id))
    }

    func testTiesBreakByIDAndZeroQueryScoresZero() {
        let docs: [(id: String, text: String)] = [("b", "same words"), ("a", "same words"), ("c", "other text")]
        let index = VectorIndex(documents: docs, embedder: HashedNGramEmbedder())
        let hits = index.topK(index.embedQuery("same words"), k: 3)
        XCTAssertEqual(hits.map(\.id), ["a", "b", "c"])
        XCTAssertEqual(hits[0].score, hits[1].score)
        XCTAssertEqual(hits[0].score, 1, accuracy: 1e-5)

        // A query of only stop words embeds to zero: every score is 0, order is by id.
        let zero = index.topK(index.embedQuery("the of and"), k: 3)
        XCTAssertEqual(
            zero,
            [SearchHit(id: "a", score: 0), SearchHit(id: "b", score: 0), SearchHit(id: "c", score: 0)]
        )
    }

    func testSampleCorpusShape() {
        let docs = SampleCorpus.documents
        XCTAssertEqual(docs.count, 20)
        XCTAssertEqual(Set(docs.map(\.id)).count, docs.count)
        XCTAssert(docs.allSatisfy { !$0.text.isEmpty })
        XCTAssertEqual(
            docs.first { $0.id == "rust-borrow" }?.text,
            "The Rust borrow checker enforces ownership and lifetimes at compile time."
        )
    }
}
