/// The compiled form of one node: reads its inputs through `inputs` (one pointer per input, each to
/// an initialized value) and initializes the value at `output`. Throws the stage's error.
///
/// Kernels are built by `@inlinable` DSL code, so they are specialized for the user's concrete
/// types in the user's module: no generic dispatch on the hot path.
@usableFromInline
typealias KernelFunction = (_ inputs: UnsafePointer<UnsafeRawPointer>, _ output: UnsafeMutableRawPointer) throws -> Void

/// Builds a fresh kernel (with fresh stage state) for one compiled instance.
@usableFromInline
typealias KernelFactory = () -> KernelFunction

/// Holds a stage's state for one compiled instance; only the worker that owns the node touches it.
@usableFromInline
final class StageBox<S: Stage> {
    /// No dynamic exclusivity check: one worker thread calls `process` at a time, never re-entrantly.
    @usableFromInline @exclusivity(unchecked) var stage: S
    @inlinable init(_ stage: S) { self.stage = stage }
}
