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

    @usableFromInline
    init(size: Int, alignment: Int, isTrivial: Bool, destroy: @escaping @Sendable (UnsafeMutableRawPointer) -> Void, typeName: String) {
        self.size = size
        self.alignment = alignment
        self.isTrivial = isTrivial
        self.destroy = destroy
        self.typeName = typeName
    }

    /// The layout of `T`.
    @inlinable
    static func of<T>(_: T.Type) -> ValueLayout {
        ValueLayout(
            size: MemoryLayout<T>.size,
            alignment: MemoryLayout<T>.alignment,
            isTrivial: _isPOD(T.self),
            destroy: { $0.assumingMemoryBound(to: T.self).deinitialize(count: 1) },
            typeName: String(describing: T.self)
        )
    }
}
