/// Trivially copyable payloads, so the compiled path moves bytes through its rings and never
/// allocates: 8 B (`UInt64`), 1 KiB and 64 KiB (fixed-size inline arrays, no heap storage).

/// 1 KiB of inline words.
public struct Payload1KiB: Sendable, BitwiseCopyable {
    /// 128 words of 8 bytes.
    public var words: InlineArray<128, UInt64>
    /// Every word set to `seed`.
    @inlinable public init(seed: UInt64) { words = InlineArray(repeating: seed) }
}

/// 64 KiB of inline words.
public struct Payload64KiB: Sendable, BitwiseCopyable {
    /// 8192 words of 8 bytes.
    public var words: InlineArray<8192, UInt64>
    /// Every word set to `seed`.
    @inlinable public init(seed: UInt64) { words = InlineArray(repeating: seed) }
}

/// What a benchmark stage does to a payload: touch it, so the copy cannot be elided.
public protocol BenchPayload: Sendable, BitwiseCopyable {
    static var byteCount: Int { get }
    static var label: String { get }
    init(seed: UInt64)
    /// Returns the payload with its first word bumped by `delta`.
    func bumped(_ delta: UInt64) -> Self
    /// Folds two payloads into one (the join of a fan-in).
    static func combine(_ a: Self, _ b: Self) -> Self
    var checksum: UInt64 { get }
}

extension UInt64: BenchPayload {
    /// 8 bytes.
    public static var byteCount: Int { 8 }
    /// `8B`.
    public static var label: String { "8B" }
    /// The seed itself.
    @inlinable public init(seed: UInt64) { self = seed }
    /// Adds `delta` (wrapping).
    @inlinable public func bumped(_ delta: UInt64) -> UInt64 { self &+ delta }
    /// The wrapping sum.
    @inlinable public static func combine(_ a: UInt64, _ b: UInt64) -> UInt64 { a &+ b }
    /// The value itself.
    @inlinable public var checksum: UInt64 { self }
}

extension Payload1KiB: BenchPayload {
    /// Its inline size: 1 KiB.
    public static var byteCount: Int { MemoryLayout<Payload1KiB>.size }
    /// `1KiB`.
    public static var label: String { "1KiB" }
    /// A copy with the first word bumped by `delta` (wrapping).
    @inlinable public func bumped(_ delta: UInt64) -> Payload1KiB {
        var p = self
        p.words[0] &+= delta
        return p
    }
    /// `a` with `b`'s first word added to its first word.
    @inlinable public static func combine(_ a: Payload1KiB, _ b: Payload1KiB) -> Payload1KiB {
        var p = a
        p.words[0] &+= b.words[0]
        return p
    }
    /// The first word.
    @inlinable public var checksum: UInt64 { words[0] }
}

extension Payload64KiB: BenchPayload {
    /// Its inline size: 64 KiB.
    public static var byteCount: Int { MemoryLayout<Payload64KiB>.size }
    /// `64KiB`.
    public static var label: String { "64KiB" }
    /// A copy with the first word bumped by `delta` (wrapping).
    @inlinable public func bumped(_ delta: UInt64) -> Payload64KiB {
        var p = self
        p.words[0] &+= delta
        return p
    }
    /// `a` with `b`'s first word added to its first word.
    @inlinable public static func combine(_ a: Payload64KiB, _ b: Payload64KiB) -> Payload64KiB {
        var p = a
        p.words[0] &+= b.words[0]
        return p
    }
    /// The first word.
    @inlinable public var checksum: UInt64 { words[0] }
}
