import ActorGraph

// The `embedding-query` graph: the online query path of a retrieval service, one named stage per
// step, each wrapping the domain logic of EmbeddingModel.swift unchanged.

/// Lowercases and strips punctuation: `"  Borrow-Checker!"` → `"borrow checker"`.
public struct SanitizeStage: Stage, Sendable {
    /// The sanitizer applied.
    public let sanitizer = TextSanitizer()
    /// A stage with a `TextSanitizer`.
    public init() {}
    /// Returns `text` sanitized.
    public func process(_ text: String) -> String { sanitizer.sanitize(text) }
}

/// Splits into tokens and drops stop words.
public struct TokenizeStage: Stage, Sendable {
    /// The tokenizer applied.
    public let tokenizer = Tokenizer()
    /// A stage with a `Tokenizer`.
    public init() {}
    /// Returns the tokens of `text`, stop words dropped.
    public func process(_ text: String) -> [String] { tokenizer.tokenize(text) }
}

/// Hashed word + character-trigram features projected by a fixed matrix (no model download).
public struct EmbedStage: Stage, Sendable {
    /// The embedder applied.
    public let embedder: HashedNGramEmbedder
    /// Embeds with `embedder`.
    public init(_ embedder: HashedNGramEmbedder) { self.embedder = embedder }
    /// Returns the embedding of `tokens`.
    public func process(_ tokens: [String]) -> [Float] { embedder.embed(tokens) }
}

/// Scales to unit length, so a dot product is a cosine similarity.
public struct NormalizeStage: Stage, Sendable {
    /// Creates the stage.
    public init() {}
    /// Returns `vector` scaled to unit length.
    public func process(_ vector: [Float]) -> [Float] { l2Normalize(vector) }
}

/// Brute-force top-k cosine search over the in-memory index.
public struct SearchStage: Stage, Sendable {
    /// The index searched.
    public let index: VectorIndex
    /// Hits returned per query.
    public let k: Int
    /// Searches `index` for the `k` best hits.
    public init(index: VectorIndex, k: Int) {
        self.index = index
        self.k = k
    }
    /// Returns the `k` best hits for `query`, best first.
    public func process(_ query: [Float]) -> [SearchHit] { index.topK(query, k: k) }
}

// Both cross worker processes encoded under `--isolated` (the search hits go from the search stage
// to the answer, the answer back to the caller): id and score, query and hits, in order.
extension SearchHit: WireEncodable {
    /// Writes the id, then the score.
    public func encode(to writer: inout WireWriter) {
        writer.write(id)
        writer.write(score)
    }

    /// Reads what `encode(to:)` wrote.
    public init(from reader: inout WireReader) throws {
        self.init(id: try reader.read(), score: try reader.read())
    }
}

extension QueryAnswer: WireEncodable {
    /// Writes the query, then the hits.
    public func encode(to writer: inout WireWriter) {
        writer.write(query)
        writer.write(hits)
    }

    /// Reads what `encode(to:)` wrote.
    public init(from reader: inout WireReader) throws {
        self.init(query: try reader.read(), hits: try reader.read())
    }
}

/// `embedding-query`: sanitize → tokenize → embed → normalize → search, joined with the raw query
/// text into a `QueryAnswer`.
///
/// ```text
/// input ─┬─ sanitize → tokenize → embed → normalize → search ─┐
///        └────────────────────────────────────────────────────zip → answer
/// ```
public enum EmbeddingQueryExample {
    /// Hits returned per query unless told otherwise.
    public static let defaultK = 3

    /// The index the example searches: `SampleCorpus` embedded at start-up.
    public static func makeIndex(embedder: HashedNGramEmbedder = HashedNGramEmbedder()) -> VectorIndex {
        VectorIndex(documents: SampleCorpus.documents, embedder: embedder)
    }

    /// The query graph over `index`, answering the `k` best documents.
    public static func graph(index: VectorIndex, k: Int = defaultK) -> Graph<String, QueryAnswer> {
        Graph(input: String.self) { query in
            let hits =
                query
                .then(SanitizeStage(), name: "sanitize")
                .then(TokenizeStage(), name: "tokenize")
                .then(EmbedStage(index.embedder), name: "embed")
                .then(NormalizeStage(), name: "normalize")
                .then(SearchStage(index: index, k: k), name: "search")
            return zip(query, hits, name: "zip").then(name: "answer") { pair in
                QueryAnswer(query: pair.0, hits: pair.1)
            }
        }
    }

    /// The default query.
    public static let defaultQueries = ["borrow checker ownership"]

    /// Splits `--input` into queries: `;` separates several, cycled over the executions.
    public static func parseQueries(_ input: String?) throws -> [String] {
        guard let input else { return defaultQueries }
        let queries = input.split(separator: ";").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        guard !queries.isEmpty else {
            throw ExampleInputError(
                example: "embedding-query",
                input: input,
                reason: "expected query text, e.g. --input \"borrow checker ownership\" (';' separates several)"
            )
        }
        return queries
    }

    /// `"borrow checker ownership" → rust-borrow 0.612, swift-actors 0.180, ...`.
    public static func format(_ answer: QueryAnswer) -> [String] {
        var lines = ["\"\(answer.query)\":"]
        for (rank, hit) in answer.hits.enumerated() {
            lines.append("  \(rank + 1). \(hit.id)  cosine \(LatencySummary.fixed(Double(hit.score), decimals: 3))")
        }
        if answer.hits.isEmpty { lines.append("  (no hits)") }
        return lines
    }

    /// The catalog entry: execution `i` sends query `i mod n` of `--input`.
    public static let example = ExampleGraph(
        name: "embedding-query",
        summary: "sanitize → tokenize → embed → normalize → top-k cosine search over an in-memory index",
        inputHelp:
            "query text (default \"borrow checker ownership\"); ';' separates several, cycled over the executions",
        defaultCount: 1_000,
        run: { options in
            let queries = try parseQueries(options.input)
            let index = makeIndex()
            var options = options
            options.resultLimit = min(options.resultLimit, queries.count)  // the queries repeat
            return try await ExampleDriver.run(
                graph(index: index),
                example: "embedding-query",
                options: options,
                input: { queries[$0 % queries.count] },
                format: { _, answer in format(answer) },
                finally: {
                    [
                        "index: \(index.count) documents of SampleCorpus, \(index.embedder.dimensions) dimensions, top \(defaultK)"
                    ]
                }
            )
        },
        describe: { options in
            let compiled = try graph(index: makeIndex()).compile(options)
            defer { compiled.shutdown() }
            return compiled.dot()
        }
    )
}
