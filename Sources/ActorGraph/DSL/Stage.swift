/// A typed step of a graph: turns one `Input` into one `Output`.
///
/// A stage may keep state in its stored properties: `process(_:)` is `mutating`, and the compiled
/// engine gives every compiled node its own copy, owned by exactly one worker thread, so state is
/// never touched by two threads. Throwing fails only the execution being processed.
public protocol Stage {
    /// The value the stage consumes.
    associatedtype Input
    /// The value the stage produces.
    associatedtype Output
    /// Processes one value of one execution.
    mutating func process(_ input: Input) throws -> Output
}
