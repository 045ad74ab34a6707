import Synchronization

/// A stateful actor shared by several nodes (Ray's `actor.method.bind`).
///
/// Every node that uses the same `ActorRef` is placed on one worker, so `state` is only ever touched
/// by one thread. While a compiled graph using it is running the actor is *bound* to that graph:
/// compiling a second graph that uses it throws ``GraphError/actorAlreadyBound(actor:)``, and
/// ``withState(_:)`` is only allowed once the graph has shut down.
public final class ActorRef<State>: @unchecked Sendable {
    /// The actor's name in errors and `dot()` output.
    public let name: String
    @usableFromInline var state: State
    let binding = Atomic<Bool>(false)

    /// Creates an actor holding `state`.
    public init(_ state: State, name: String? = nil) {
        self.state = state
        self.name = name ?? String(describing: State.self)
    }

    /// Reads or updates the state while no compiled graph is running with this actor.
    /// - Precondition: the actor is not bound to a running compiled graph.
    public func withState<R>(_ body: (inout State) throws -> R) rethrows -> R {
        precondition(!binding.load(ordering: .acquiring), "ActorRef '\(name)' is bound to a running compiled graph")
        return try body(&state)
    }

    /// Whether a running compiled graph currently owns this actor.
    public var isBound: Bool { binding.load(ordering: .acquiring) }
}

/// The type-erased view of an ``ActorRef`` the compiler needs: identity, name and binding.
@usableFromInline
struct ActorBinding: @unchecked Sendable {
    @usableFromInline let id: ObjectIdentifier
    @usableFromInline let name: String
    @usableFromInline let tryBind: () -> Bool
    @usableFromInline let unbind: () -> Void

    @inlinable
    init<State>(_ actor: ActorRef<State>) {
        id = ObjectIdentifier(actor)
        name = actor.name
        tryBind = { actor.tryBind() }
        unbind = { actor.unbind() }
    }
}

extension ActorRef {
    @usableFromInline
    func tryBind() -> Bool {
        binding.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    @usableFromInline
    func unbind() { binding.store(false, ordering: .releasing) }
}
