/// A typed step of a graph: turns one `Input` into one `Output`.
///
/// A stage may keep state in its stored properties: `process(_:)` is `mutating`, and the compiled
/// engine gives every compiled node its own copy, owned by exactly one worker thread, so state is
/// never touched by two threads. Throwing fails only the execution being processed.
///
/// A stage is `Sendable`: its value is copied into each compiled instance and moves to a worker
/// thread, so a stage holding a non-`Sendable` class reference (which two copies would share) is
/// rejected by the compiler.
public protocol Stage: Sendable {
    /// The value the stage consumes.
    associatedtype Input: Sendable
    /// The value the stage produces.
    associatedtype Output: Sendable
    /// Processes one value of one execution.
    mutating func process(_ input: Input) throws -> Output
}
