extension Node {
    /// Declares the most bytes this node's value may take encoded, where it crosses a process
    /// boundary (``Isolation/processes``) and is not trivially copyable (``WireEncodable``):
    /// its edge's slots are sized for it (4096 bytes unless declared). A value that needs more fails
    /// its own execution with ``ExecutionError/valueTooLarge(node:bytes:limit:)``; other executions go
    /// on. No effect on trivially copyable values, in thread mode, or inside a fused chain.
    ///
    /// Every slot of the edge is preallocated at this size (`capacity` slots per edge), so declare
    /// what the values need, not more. `compile()` refuses a limit outside `1...(1 << 30)`.
    @discardableResult
    public func maxEncodedBytes(_ limit: Int) -> Node<Value> {
        builder.setMaxEncodedBytes(index, to: limit)
        return self
    }
}
