/// A value that crosses a process boundary as bytes when it is not trivially copyable: `String`,
/// arrays, dictionaries, and your own types made of them.
///
/// Under ``Isolation/processes`` a trivially copyable value crosses as its own bytes, in place (zero
/// copy, no encoding). Any other value that crosses from one worker process to another (or between
/// a worker and the caller) is written into the ring slot with ``encode(to:)`` and rebuilt on the
/// other side with ``init(from:)``, within the edge's ``Node/maxEncodedBytes(_:)`` (4 KiB unless
/// declared). A value that stays inside one worker's fused chain is never encoded.
///
/// Ready conformances: the integer and floating-point types, `Bool`, `String`, `Array`, `Optional`,
/// `Dictionary` and `Set` of conforming types, and every `BitwiseCopyable` type that declares the
/// conformance (its bytes are copied). Arrays of trivially copyable elements cross as one copy of
/// their bytes, conformance or not; zips (tuples) of crossable values cross component by component.
///
/// ```swift
/// struct Hit: Sendable, WireEncodable {
///     var id: String
///     var score: Float
///     func encode(to writer: inout WireWriter) { writer.write(id); writer.write(score) }
///     init(from reader: inout WireReader) throws { id = try reader.read(); score = try reader.read() }
/// }
/// ```
///
/// `encode` and `init(from:)` must agree field by field: `init(from:)` reads exactly what `encode`
/// wrote. The bytes are in the machine's own byte order and layout: both ends run the same program.
public protocol WireEncodable {
    /// Writes the value. Never fails: a writer past its capacity only counts (the engine then fails
    /// the execution with ``ExecutionError/valueTooLarge(node:bytes:limit:)``).
    func encode(to writer: inout WireWriter)
    /// Reads a value written by ``encode(to:)``; throws ``WireDecodingError`` (from the reader) for
    /// truncated or malformed bytes.
    init(from reader: inout WireReader) throws
}

extension WireEncodable where Self: BitwiseCopyable {
    /// Copies the value's bytes.
    @inlinable
    public func encode(to writer: inout WireWriter) { writer.writeRaw(self) }

    /// Copies the value's bytes back.
    @inlinable
    public init(from reader: inout WireReader) throws { self = try reader.readRaw(Self.self) }
}

/// Bytes that do not decode: truncated, or not what ``WireEncodable/encode(to:)`` writes.
public struct WireDecodingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was wrong.
    public let description: String

    /// An error saying what was wrong.
    public init(_ description: String) { self.description = description }
}

/// Where ``WireEncodable/encode(to:)`` writes: a fixed buffer (a ring slot). Writes past its
/// capacity are counted, not stored, so the engine learns the size the value needed.
public struct WireWriter {
    @usableFromInline let base: UnsafeMutableRawPointer?
    @usableFromInline let capacity: Int
    @usableFromInline var written: Int
    /// Bytes written so far; once ``fits`` is false, the bytes the value would need.
    @inlinable public var count: Int { written }

    /// A writer into `buffer`.
    @inlinable
    public init(_ buffer: UnsafeMutableRawBufferPointer) {
        base = buffer.baseAddress
        capacity = buffer.count
        written = 0
    }

    /// Whether everything written so far fits in the buffer.
    @inlinable public var fits: Bool { written <= capacity }

    /// Writes `value` (its ``WireEncodable/encode(to:)``).
    @inlinable
    public mutating func write<T: WireEncodable>(_ value: T) { value.encode(to: &self) }

    /// Writes the bytes of a trivially copyable value (unaligned; machine byte order).
    @inlinable
    public mutating func writeRaw<T: BitwiseCopyable>(_ value: T) {
        let n = MemoryLayout<T>.size
        if written &+ n <= capacity, let base { base.storeBytes(of: value, toByteOffset: written, as: T.self) }
        written &+= n
    }

    /// Writes `bytes` as they are (no length: write one first, e.g. with ``writeCount(_:)``).
    @inlinable
    public mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        if n > 0, written &+ n <= capacity, let base, let source = bytes.baseAddress {
            (base + written).copyMemory(from: source, byteCount: n)
        }
        written &+= n
    }

    /// Writes a count or length (32 bits; ``WireReader/readCount()`` reads it back).
    @inlinable
    public mutating func writeCount(_ n: Int) { writeRaw(UInt32(truncatingIfNeeded: n)) }
}

/// Where ``WireEncodable/init(from:)`` reads: a bounds-checked cursor over received bytes.
public struct WireReader {
    @usableFromInline let base: UnsafeRawPointer?
    @usableFromInline let count: Int
    /// Bytes read so far.
    @inlinable public var offset: Int { position }
    @usableFromInline var position: Int

    /// A reader of `bytes`.
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer) {
        base = bytes.baseAddress
        count = bytes.count
        position = 0
    }

    /// Bytes not read yet.
    @inlinable public var remaining: Int { count &- position }

    /// Reads a value (its ``WireEncodable/init(from:)``).
    @inlinable
    public mutating func read<T: WireEncodable>(_: T.Type = T.self) throws -> T { try T(from: &self) }

    /// Reads the bytes of a trivially copyable value written by ``WireWriter/writeRaw(_:)``.
    @inlinable
    public mutating func readRaw<T: BitwiseCopyable>(_: T.Type = T.self) throws -> T {
        let n = MemoryLayout<T>.size
        guard n <= remaining else { throw WireDecodingError("truncated: \(n) bytes wanted, \(remaining) left") }
        // An empty buffer has no base address; only a zero-size type fits in it.
        guard n > 0, let base else { return unsafeBitCast((), to: T.self) }
        let value = base.loadUnaligned(fromByteOffset: position, as: T.self)
        position &+= n
        return value
    }

    /// The next `n` bytes (valid while the buffer the reader reads is).
    @inlinable
    public mutating func readBytes(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw WireDecodingError("truncated: \(n) bytes wanted, \(remaining) left") }
        let bytes = UnsafeRawBufferPointer(start: base.map { $0 + position }, count: n)
        position &+= n
        return bytes
    }

    /// Reads a count written by ``WireWriter/writeCount(_:)``.
    @inlinable
    public mutating func readCount() throws -> Int { Int(try readRaw(UInt32.self)) }
}

// MARK: - Conformances

extension Int: WireEncodable {}
extension Int8: WireEncodable {}
extension Int16: WireEncodable {}
extension Int32: WireEncodable {}
extension Int64: WireEncodable {}
extension UInt: WireEncodable {}
extension UInt8: WireEncodable {}
extension UInt16: WireEncodable {}
extension UInt32: WireEncodable {}
extension UInt64: WireEncodable {}
extension Float: WireEncodable {}
extension Double: WireEncodable {}

extension Bool: WireEncodable {
    /// One byte, 0 or 1.
    @inlinable
    public func encode(to writer: inout WireWriter) { writer.writeRaw(self ? 1 as UInt8 : 0) }

    /// Reads one byte; anything but 0 or 1 is malformed.
    @inlinable
    public init(from reader: inout WireReader) throws {
        switch try reader.readRaw(UInt8.self) {
        case 0: self = false
        case 1: self = true
        case let b: throw WireDecodingError("\(b) is not a Bool")
        }
    }
}

extension String: WireEncodable {
    /// The UTF-8 byte count, then the bytes.
    public func encode(to writer: inout WireWriter) {
        let done: Void? = utf8.withContiguousStorageIfAvailable { bytes in
            writer.writeCount(bytes.count)
            writer.writeBytes(UnsafeRawBufferPointer(bytes))
        }
        if done == nil {
            var copy = self
            copy.withUTF8 { bytes in
                writer.writeCount(bytes.count)
                writer.writeBytes(UnsafeRawBufferPointer(bytes))
            }
        }
    }

    /// Reads the count and the bytes (invalid UTF-8 is repaired, as `String(decoding:as:)` does).
    public init(from reader: inout WireReader) throws {
        let n = try reader.readCount()
        self = String(decoding: try reader.readBytes(n), as: UTF8.self)
    }
}

extension Optional: WireEncodable where Wrapped: WireEncodable {
    /// A byte (0: `nil`, 1: a value follows), then the value.
    @inlinable
    public func encode(to writer: inout WireWriter) {
        switch self {
        case .none: writer.writeRaw(0 as UInt8)
        case .some(let value):
            writer.writeRaw(1 as UInt8)
            value.encode(to: &writer)
        }
    }

    @inlinable
    public init(from reader: inout WireReader) throws {
        switch try reader.readRaw(UInt8.self) {
        case 0: self = .none
        case 1: self = .some(try Wrapped(from: &reader))
        case let b: throw WireDecodingError("\(b) is not an Optional tag")
        }
    }
}

extension Array: WireEncodable where Element: WireEncodable {
    /// The count, then the elements (trivially copyable elements: one copy of their bytes).
    @inlinable
    public func encode(to writer: inout WireWriter) {
        writer.writeCount(count)
        if _isPOD(Element.self) {
            withUnsafeBytes { writer.writeBytes($0) }
        } else {
            for element in self { element.encode(to: &writer) }
        }
    }

    @inlinable
    public init(from reader: inout WireReader) throws {
        let n = try reader.readCount()
        if _isPOD(Element.self) {
            self = try WireArrays.readTrivial(Element.self, count: n, from: &reader)
            return
        }
        // Every element takes at least a byte: a larger count is malformed (and must not allocate).
        guard n <= reader.remaining else {
            throw WireDecodingError("array of \(n) elements in \(reader.remaining) bytes")
        }
        self = try Array(unsafeUninitializedCapacity: n) { buffer, initialized in
            while initialized < n {
                (buffer.baseAddress! + initialized).initialize(to: try Element(from: &reader))
                initialized += 1
            }
        }
    }
}

extension Set: WireEncodable where Element: WireEncodable {
    /// The count, then the elements.
    @inlinable
    public func encode(to writer: inout WireWriter) {
        writer.writeCount(count)
        for element in self { element.encode(to: &writer) }
    }

    @inlinable
    public init(from reader: inout WireReader) throws {
        let n = try reader.readCount()
        guard n <= reader.remaining else {
            throw WireDecodingError("set of \(n) elements in \(reader.remaining) bytes")
        }
        self.init(minimumCapacity: n)
        for _ in 0..<n { insert(try Element(from: &reader)) }
    }
}

extension Dictionary: WireEncodable where Key: WireEncodable, Value: WireEncodable {
    /// The count, then key and value of each entry.
    @inlinable
    public func encode(to writer: inout WireWriter) {
        writer.writeCount(count)
        for (key, value) in self {
            key.encode(to: &writer)
            value.encode(to: &writer)
        }
    }

    @inlinable
    public init(from reader: inout WireReader) throws {
        let n = try reader.readCount()
        guard n <= reader.remaining else {
            throw WireDecodingError("dictionary of \(n) entries in \(reader.remaining) bytes")
        }
        self.init(minimumCapacity: n)
        for _ in 0..<n {
            let key = try Key(from: &reader)
            self[key] = try Value(from: &reader)
        }
    }
}

/// Arrays of trivially copyable elements: a count and one copy of the bytes.
@usableFromInline
enum WireArrays {
    @inlinable
    static func readTrivial<Element>(_: Element.Type, count n: Int, from reader: inout WireReader) throws -> [Element] {
        let stride = MemoryLayout<Element>.stride
        guard stride == 0 || n <= reader.remaining / stride else {
            throw WireDecodingError("array of \(n) × \(stride) bytes in \(reader.remaining) bytes")
        }
        let bytes = try reader.readBytes(n &* stride)
        return Array(unsafeUninitializedCapacity: n) { buffer, initialized in
            if let to = buffer.baseAddress, let from = bytes.baseAddress, n > 0 {
                UnsafeMutableRawPointer(to).copyMemory(from: from, byteCount: n &* stride)
            }
            initialized = n
        }
    }
}
