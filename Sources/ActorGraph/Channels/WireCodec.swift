/// How values of one Swift type become bytes and back, behind raw pointers: the pair the engine
/// calls where a value crosses a process boundary (an encoded ring slot, ``EncodedSlot``), and that a
/// network edge between hosts can call the same way (``encode(_:into:)``, ``decode(from:into:)``).
///
/// Built once per node when the graph is declared (``ValueLayout/of(_:)`` keeps it in
/// ``ValueLayout/wire``): trivially copyable types copy their bytes; ``WireEncodable`` types call
/// their conformance; arrays of trivially copyable elements copy their elements' bytes; zips
/// (tuples) compose their components' codecs. Types that are none of these have no codec (`nil`).
///
/// Decoding checks bounds, counts and tags (malformed bytes throw, never read past the buffer), but
/// bytes codecs copy a trivially copyable value's bytes as they come: the two ends must be the same
/// program (the plan fingerprint checks it between processes; a host-to-host edge must check it too).
@usableFromInline
struct WireCodec: Sendable {
    /// Writes the value at the pointer (a value of the codec's type). A writer past its capacity
    /// only counts.
    let write: @Sendable (UnsafeRawPointer, inout WireWriter) -> Void
    /// Reads one value into the uninitialized memory at the pointer; on a throw nothing is left
    /// initialized.
    let read: @Sendable (inout WireReader, UnsafeMutableRawPointer) throws -> Void
    /// Deinitializes a value the codec read (a no-op for trivial types).
    let destroy: @Sendable (UnsafeMutableRawPointer) -> Void
    /// How the type crosses (for `dot()` and messages).
    let kind: Kind

    enum Kind: String, Sendable {
        /// A trivially copyable type: its bytes.
        case bytes
        /// A ``WireEncodable`` conformance.
        case encodable
        /// An array of trivially copyable elements: a count and the elements' bytes.
        case arrayOfBytes
        /// A tuple (a zip's value), component by component.
        case tuple
    }

    /// Encodes the value at `value` into `buffer`. Returns the bytes written, or `nil` when the
    /// value needs more than `buffer.count` (nothing usable is written then).
    func encode(_ value: UnsafeRawPointer, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let n = encodedCount(value, into: buffer)
        return n <= buffer.count ? n : nil
    }

    /// Encodes the value at `value` into `buffer`; returns the bytes it needs: written when at most
    /// `buffer.count`, otherwise only counted.
    func encodedCount(_ value: UnsafeRawPointer, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var writer = WireWriter(buffer)
        write(value, &writer)
        return writer.count
    }

    /// Decodes `bytes` (exactly one value, as ``encode(_:into:)`` wrote it) into the uninitialized
    /// memory at `destination`. Throws ``WireDecodingError`` for truncated, malformed or trailing
    /// bytes; `destination` is then left uninitialized.
    func decode(from bytes: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer) throws {
        var reader = WireReader(bytes)
        try read(&reader, destination)
        if reader.remaining != 0 {
            destroy(destination)
            throw WireDecodingError("\(reader.remaining) bytes left after the value")
        }
    }

    // MARK: Making codecs

    /// The codec of `T`, or `nil` when `T` is neither trivially copyable, nor ``WireEncodable``,
    /// nor an array of trivially copyable elements.
    @usableFromInline
    static func of<T>(_: T.Type) -> WireCodec? {
        if _isPOD(T.self) { return bytes(T.self) }
        if let type = T.self as? any WireEncodable.Type { return encodable(type) }
        if let type = T.self as? any ArrayOfBytesCodable.Type { return type.arrayOfBytesCodec }
        return nil
    }

    static func bytes<T>(_: T.Type) -> WireCodec {
        let size = MemoryLayout<T>.size
        return WireCodec(
            write: { value, writer in writer.writeBytes(UnsafeRawBufferPointer(start: value, count: size)) },
            read: { reader, destination in
                let bytes = try reader.readBytes(size)
                if size > 0 { destination.copyMemory(from: bytes.baseAddress!, byteCount: size) }
            },
            destroy: { _ in },
            kind: .bytes
        )
    }

    static func encodable<W: WireEncodable>(_: W.Type) -> WireCodec {
        WireCodec(
            write: { value, writer in value.assumingMemoryBound(to: W.self).pointee.encode(to: &writer) },
            read: { reader, destination in
                destination.assumingMemoryBound(to: W.self).initialize(to: try W(from: &reader))
            },
            destroy: { $0.assumingMemoryBound(to: W.self).deinitialize(count: 1) },
            kind: .encodable
        )
    }

    /// A tuple's codec from its components' codecs and offsets; `nil` when a component has none.
    @usableFromInline
    static func tuple(_ parts: [(codec: WireCodec?, offset: Int)]) -> WireCodec? {
        var codecs: [(codec: WireCodec, offset: Int)] = []
        for part in parts {
            guard let codec = part.codec else { return nil }
            codecs.append((codec, part.offset))
        }
        let components = codecs
        return WireCodec(
            write: { value, writer in
                for part in components { part.codec.write(value + part.offset, &writer) }
            },
            read: { reader, destination in
                var done = 0
                do {
                    for part in components {
                        try part.codec.read(&reader, destination + part.offset)
                        done += 1
                    }
                } catch {
                    for part in components[..<done] { part.codec.destroy(destination + part.offset) }
                    throw error
                }
            },
            destroy: { value in
                for part in components { part.codec.destroy(value + part.offset) }
            },
            kind: .tuple
        )
    }
}

/// Arrays, whatever their element: the codec of an array of trivially copyable elements (a count
/// and one copy of the elements' bytes, the format `Array: WireEncodable` writes too), or `nil`.
protocol ArrayOfBytesCodable {
    static var arrayOfBytesCodec: WireCodec? { get }
}

extension Array: ArrayOfBytesCodable {
    static var arrayOfBytesCodec: WireCodec? {
        guard _isPOD(Element.self) else { return nil }
        return WireCodec(
            write: { value, writer in
                let array = value.assumingMemoryBound(to: [Element].self)
                writer.writeCount(array.pointee.count)
                array.pointee.withUnsafeBytes { writer.writeBytes($0) }
            },
            read: { reader, destination in
                let n = try reader.readCount()
                destination.assumingMemoryBound(to: [Element].self)
                    .initialize(to: try WireArrays.readTrivial(Element.self, count: n, from: &reader))
            },
            destroy: { $0.assumingMemoryBound(to: [Element].self).deinitialize(count: 1) },
            kind: .arrayOfBytes
        )
    }
}
