/// How the engine stores values of one Swift type in preallocated memory: size, alignment and,
/// for types that hold references, how to destroy a stored value.
@usableFromInline
struct ValueLayout: Sendable {
    @usableFromInline let size: Int
    @usableFromInline let alignment: Int
    /// True for trivially copyable (POD) types: nothing to retain, release or destroy.
    @usableFromInline let isTrivial: Bool
    /// Deinitializes a stored value (a no-op for trivial types).
    @usableFromInline let destroy: @Sendable (UnsafeMutableRawPointer) -> Void
    /// The type's name, for `dot()` and error messages.
    @usableFromInline let typeName: String
    /// How the value becomes bytes and back (``WireCodec``): `nil` when it can be neither copied as
    /// bytes nor encoded. Trivial types have a bytes codec, but cross processes in place.
    @usableFromInline var wire: WireCodec?
    /// Set on the layout of a channel whose values cross processes encoded (``EncodedSlot``): the
    /// slot holds a byte count and the bytes, not the value.
    var encoded: EncodedSlot?

    @usableFromInline
    init(
        size: Int,
        alignment: Int,
        isTrivial: Bool,
        destroy: @escaping @Sendable (UnsafeMutableRawPointer) -> Void,
        typeName: String,
        wire: WireCodec? = nil
    ) {
        self.size = size
        self.alignment = alignment
        self.isTrivial = isTrivial
        self.destroy = destroy
        self.typeName = typeName
        self.wire = wire
    }

    /// The layout of `T`.
    @inlinable
    static func of<T>(_: T.Type) -> ValueLayout {
        ValueLayout(
            size: MemoryLayout<T>.size,
            alignment: MemoryLayout<T>.alignment,
            isTrivial: _isPOD(T.self),
            destroy: { $0.assumingMemoryBound(to: T.self).deinitialize(count: 1) },
            typeName: String(describing: T.self),
            wire: WireCodec.of(T.self)
        )
    }

    /// The layout of a zip's tuple: a tuple conforms to no protocol, so its codec is made of its
    /// components' codecs.
    @inlinable
    static func of<A, B>(zipOf _: A.Type, _: B.Type) -> ValueLayout {
        typealias T = (A, B)
        var layout = of(T.self)
        if !layout.isTrivial {
            layout.wire = WireCodec.tuple([
                (WireCodec.of(A.self), MemoryLayout<T>.offset(of: \T.0)!),
                (WireCodec.of(B.self), MemoryLayout<T>.offset(of: \T.1)!),
            ])
        }
        return layout
    }

    /// The layout of a zip's tuple of three.
    @inlinable
    static func of<A, B, C>(zipOf _: A.Type, _: B.Type, _: C.Type) -> ValueLayout {
        typealias T = (A, B, C)
        var layout = of(T.self)
        if !layout.isTrivial {
            layout.wire = WireCodec.tuple([
                (WireCodec.of(A.self), MemoryLayout<T>.offset(of: \T.0)!),
                (WireCodec.of(B.self), MemoryLayout<T>.offset(of: \T.1)!),
                (WireCodec.of(C.self), MemoryLayout<T>.offset(of: \T.2)!),
            ])
        }
        return layout
    }

    /// The layout of a zip's tuple of four.
    @inlinable
    static func of<A, B, C, D>(zipOf _: A.Type, _: B.Type, _: C.Type, _: D.Type) -> ValueLayout {
        typealias T = (A, B, C, D)
        var layout = of(T.self)
        if !layout.isTrivial {
            layout.wire = WireCodec.tuple([
                (WireCodec.of(A.self), MemoryLayout<T>.offset(of: \T.0)!),
                (WireCodec.of(B.self), MemoryLayout<T>.offset(of: \T.1)!),
                (WireCodec.of(C.self), MemoryLayout<T>.offset(of: \T.2)!),
                (WireCodec.of(D.self), MemoryLayout<T>.offset(of: \T.3)!),
            ])
        }
        return layout
    }
}
