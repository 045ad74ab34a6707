// Domain logic for the EmbeddingQuery example graph: the online query path of a small
// retrieval service (sanitize → tokenize → embed → normalize → brute-force top-k).
//
// Everything here is plain, deterministic Swift with no dependency on the engine, so each
// stage can be unit-tested on its own and wrapped by a graph node unchanged.

#if canImport(Glibc)
import Glibc  // links libm, which `squareRoot()` calls in unoptimized builds on Linux
#elseif canImport(Musl)
import Musl
#endif

// MARK: - Deterministic primitives

/// SplitMix64 pseudo-random generator (Steele, Lea & Flood; Vigna's reference constants).
///
/// Tiny, fast and fully deterministic for a given seed, unlike `SystemRandomNumberGenerator`.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's internal state; advanced by the golden-ratio increment on every draw.
    public private(set) var state: UInt64

    /// Creates a generator whose sequence is fully determined by `seed`.
    public init(seed: UInt64) {
        self.state = seed
    }

    /// Returns the next 64 pseudo-random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Returns a uniformly distributed value in `[0, 1)` built from the top 53 bits of `next()`.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Returns a uniformly distributed value in `[-1, 1)`.
    public mutating func nextSigned() -> Double {
        nextUnit() * 2 - 1
    }
}

/// 64-bit FNV-1a hash: stable across processes and platforms (Swift's `Hasher` is randomly seeded).
public enum FNV1a64 {
    /// The FNV-1a 64-bit offset basis (hash of the empty input).
    public static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    /// The FNV-1a 64-bit prime.
    public static let prime: UInt64 = 0x0000_0100_0000_01B3

    /// Hashes a byte sequence, continuing from `seed` (the offset basis by default).
    public static func hash<Bytes: Sequence>(_ bytes: Bytes, seed: UInt64 = offsetBasis) -> UInt64
    where Bytes.Element == UInt8 {
        var h = seed
        for byte in bytes {
            h ^= UInt64(byte)
            h &*= prime
        }
        return h
    }

    /// Hashes the UTF-8 encoding of `string`.
    public static func hash(_ string: String) -> UInt64 {
        hash(string.utf8)
    }
}

// MARK: - Text preprocessing

/// Normalizes raw query or document text into lowercase words separated by single spaces.
public struct TextSanitizer: Sendable {
    /// Creates a sanitizer; it has no configuration.
    public init() {}

    /// Lowercases `s`, maps every character that is not a letter or digit to a space,
    /// collapses runs of spaces and trims both ends: `"  Hello, World!! "` → `"hello world"`.
    public func sanitize(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        var pendingSpace = false
        for ch in s.lowercased() {
            if ch.isLetter || ch.isNumber {
                if pendingSpace && !out.isEmpty { out.append(" ") }
                pendingSpace = false
                out.append(ch)
            } else {
                pendingSpace = true
            }
        }
        return out
    }
}

/// Splits sanitized text into tokens and removes a small fixed set of English stop words.
public struct Tokenizer: Sendable {
    /// The stop words that `tokenize` drops.
    public static let stopWords: Set<String> = [
        "the", "a", "an", "of", "to", "and", "in", "is", "for", "on", "with",
    ]

    /// Creates a tokenizer; it has no configuration.
    public init() {}

    /// Splits `s` on spaces (empty pieces are skipped) and drops stop words, keeping order.
    public func tokenize(_ s: String) -> [String] {
        s.split(separator: " ", omittingEmptySubsequences: true)
            .map(String.init)
            .filter { !Tokenizer.stopWords.contains($0) }
    }
}

// MARK: - Embedding

/// Feature-hashing embedder: word and character-trigram features hashed into a sparse
/// vector, then reduced to `dimensions` by a fixed pseudo-random projection.
///
/// Each token `t` contributes the feature `"w:" + t`, and each character trigram `g` of
/// `"#" + t + "#"` contributes `"g:" + g`. A feature's FNV-1a 64 hash picks one of
/// `featureBuckets` buckets (low bits) and a sign (top bit). The projection matrix has
/// entries uniform in `[-1, 1)` drawn from `SplitMix64(seed:)` once in `init`, so two
/// embedders with the same `dimensions` and `seed` produce bit-identical output in any process.
public struct HashedNGramEmbedder: Sendable {
    /// Width of the intermediate sparse feature vector.
    public static let featureBuckets = 1024

    /// Length of every vector returned by `embed`.
    public let dimensions: Int
    /// Seed the projection matrix was generated from.
    public let seed: UInt64

    /// Row-major `featureBuckets × dimensions`: row `b` is bucket `b`'s contribution.
    private let projection: [Float]

    /// Builds the projection matrix for `dimensions` outputs from `seed`.
    public init(dimensions: Int = 64, seed: UInt64 = 0x5EED) {
        precondition(dimensions > 0, "dimensions must be positive")
        self.dimensions = dimensions
        self.seed = seed
        var rng = SplitMix64(seed: seed)
        let count = Self.featureBuckets * dimensions
        var matrix = [Float]()
        matrix.reserveCapacity(count)
        for _ in 0..<count {
            matrix.append(Float(rng.nextSigned()))
        }
        self.projection = matrix
    }

    /// Returns the signed bucket counts (length `featureBuckets`) for `tokens` before projection.
    public func featureVector(_ tokens: [String]) -> [Float] {
        var features = [Float](repeating: 0, count: Self.featureBuckets)
        for token in tokens where !token.isEmpty {
            Self.add(FNV1a64.hash("w:" + token), to: &features)
            let chars = Array("#" + token + "#")
            for start in 0...(chars.count - 3) {
                let trigram = String(chars[start..<(start + 3)])
                Self.add(FNV1a64.hash("g:" + trigram), to: &features)
            }
        }
        return features
    }

    /// Embeds `tokens` into a `dimensions`-long vector (not normalized; empty input gives zeros).
    public func embed(_ tokens: [String]) -> [Float] {
        let features = featureVector(tokens)
        var out = [Float](repeating: 0, count: dimensions)
        for bucket in 0..<Self.featureBuckets {
            let weight = features[bucket]
            if weight == 0 { continue }
            let row = bucket * dimensions
            for d in 0..<dimensions {
                out[d] += weight * projection[row + d]
            }
        }
        return out
    }

    private static func add(_ hash: UInt64, to features: inout [Float]) {
        let bucket = Int(hash & UInt64(featureBuckets - 1))
        features[bucket] += (hash >> 63) == 0 ? 1 : -1
    }
}

/// Returns `v` scaled to unit Euclidean length; a zero (or non-finite-norm) vector is returned unchanged.
public func l2Normalize(_ v: [Float]) -> [Float] {
    var sumSquares: Double = 0
    for x in v { sumSquares += Double(x) * Double(x) }
    guard sumSquares > 0, sumSquares.isFinite else { return v }
    let inverse = Float(1 / sumSquares.squareRoot())
    return v.map { $0 * inverse }
}

// MARK: - Search

/// One ranked search result.
public struct SearchHit: Equatable, Sendable {
    /// The matched document's identifier.
    public let id: String
    /// Cosine similarity between the query and the document, in `[-1, 1]`.
    public let score: Float

    /// Creates a hit.
    public init(id: String, score: Float) {
        self.id = id
        self.score = score
    }
}

/// The answer to one query: the original query text and its ranked hits.
public struct QueryAnswer: Sendable, Equatable {
    /// The query text as submitted (before sanitizing).
    public let query: String
    /// Hits sorted by score descending, then id ascending.
    public let hits: [SearchHit]

    /// Creates an answer.
    public init(query: String, hits: [SearchHit]) {
        self.query = query
        self.hits = hits
    }
}

/// Immutable in-memory index of L2-normalized document embeddings with brute-force cosine search.
public struct VectorIndex: Sendable {
    /// The embedder used for documents; queries must be embedded with the same one.
    public let embedder: HashedNGramEmbedder
    /// Document identifiers, in insertion order.
    public let documentIDs: [String]
    /// Row-major `count × dimensions` normalized embeddings.
    private let vectors: [Float]

    /// Embeds every document via sanitize → tokenize → embed → normalize and stores the result.
    public init(documents: [(id: String, text: String)], embedder: HashedNGramEmbedder) {
        self.embedder = embedder
        self.documentIDs = documents.map(\.id)
        var flat = [Float]()
        flat.reserveCapacity(documents.count * embedder.dimensions)
        let sanitizer = TextSanitizer()
        let tokenizer = Tokenizer()
        for document in documents {
            let tokens = tokenizer.tokenize(sanitizer.sanitize(document.text))
            flat.append(contentsOf: l2Normalize(embedder.embed(tokens)))
        }
        self.vectors = flat
    }

    /// Number of indexed documents.
    public var count: Int { documentIDs.count }

    /// Runs the whole query-side pipeline (sanitize → tokenize → embed → normalize) on `text`.
    public func embedQuery(_ text: String) -> [Float] {
        let tokens = Tokenizer().tokenize(TextSanitizer().sanitize(text))
        return l2Normalize(embedder.embed(tokens))
    }

    /// Returns the `k` best documents for `query` (length `embedder.dimensions`; it is
    /// normalized here, so scores are cosine similarities), sorted by score descending then
    /// id ascending. `k` is clamped to `0...count`.
    public func topK(_ query: [Float], k: Int) -> [SearchHit] {
        let dims = embedder.dimensions
        precondition(query.count == dims, "query has \(query.count) dimensions, index has \(dims)")
        let limit = min(max(k, 0), count)
        if limit == 0 { return [] }
        let q = l2Normalize(query)
        var hits = [SearchHit]()
        hits.reserveCapacity(count)
        for doc in 0..<count {
            let row = doc * dims
            var dot: Float = 0
            for d in 0..<dims { dot += q[d] * vectors[row + d] }
            hits.append(SearchHit(id: documentIDs[doc], score: dot))
        }
        hits.sort { a, b in a.score != b.score ? a.score > b.score : a.id < b.id }
        return Array(hits.prefix(limit))
    }

    /// Convenience: `embedQuery` then `topK`, wrapped in a `QueryAnswer`.
    public func search(_ text: String, k: Int) -> QueryAnswer {
        QueryAnswer(query: text, hits: topK(embedQuery(text), k: k))
    }
}

// MARK: - Sample data

/// A small fixed corpus of short documents on deliberately unrelated topics.
public enum SampleCorpus {
    /// Twenty `(id, text)` pairs with unique ids.
    public static let documents: [(id: String, text: String)] = [
        ("rust-borrow", "The Rust borrow checker enforces ownership and lifetimes at compile time."),
        ("swift-actors", "Swift actors isolate mutable state and serialize access through async messages."),
        (
            "io-uring",
            "Linux io_uring submits disk and network requests through shared submission and completion rings."
        ),
        ("numa", "NUMA machines attach memory to each socket, so remote memory access costs extra latency."),
        ("gc-pauses", "Garbage collectors pause threads to trace reachable objects and reclaim the heap."),
        ("sql-index", "A B-tree index lets the database find rows by key without scanning the whole table."),
        ("tcp-congestion", "TCP congestion control shrinks the sending window when packets are dropped."),
        ("gpu-kernels", "GPU kernels launch thousands of threads that run the same instructions over large arrays."),
        ("sourdough", "Sourdough bread rises slowly from a wild yeast starter fed with flour and water."),
        ("risotto", "Stir risotto rice with warm broth, butter and parmesan until creamy."),
        ("espresso", "Espresso forces hot water through finely ground coffee beans under high pressure."),
        ("hurricanes", "Hurricanes form over warm ocean water and bring torrential rain and storm surge."),
        ("weather-fog", "Morning fog appears when humid air cools overnight near the ground."),
        (
            "football-offside",
            "In football a player is offside when nearer the goal line than the second last defender."
        ),
        ("marathon", "Marathon runners train for months to finish forty two kilometres of road racing."),
        ("chess-openings", "Chess openings such as the Sicilian defence fight for control of the centre squares."),
        ("photosynthesis", "Plants use photosynthesis to turn sunlight, carbon dioxide and water into sugar."),
        ("volcanoes", "Volcanoes erupt when molten magma and gas escape through cracks in the crust."),
        ("jazz", "Jazz musicians improvise solos over swinging rhythms and extended chord changes."),
        ("bees", "Honey bees dance to tell their hive where fields of flowers with nectar are found."),
    ]
}
