import Synchronization

/// A stateful actor shared by several nodes (Ray's `actor.method.bind`).
///
/// Every node that uses the same `ActorRef` is placed on one worker, so `state` is only ever touched
/// by one thread. From `compile()` until that worker has stopped, the actor is *bound* to the graph:
/// compiling a second graph that uses it, or ``withState(_:)``, throws
/// ``CompileError/actorAlreadyBound(actor:)``. After `shutdown()` returns the actor is free again —
/// or, if one of its stages outlived the shutdown grace period, as soon as that stage returns.
///
/// The state is handed over with `sending` and never leaves except through `sending` results, so
/// the compiler rejects a caller that keeps a reference into it while a worker mutates it.
public final class ActorRef<State>: Sendable {
    /// The actor's name in errors and `dot()` output.
    public let name: String
    @usableFromInline let cell: ActorStateCell<State>
    /// ``ActorAccess`` raw values: who may touch the state now.
    let access = Atomic<UInt8>(ActorAccess.free.rawValue)

    /// Creates an actor holding `state`, which the actor owns from now on.
    public init(_ state: sending State, name: String? = nil) {
        self.cell = ActorStateCell(state)
        self.name = name ?? String(describing: State.self)
    }

    /// Reads or updates the state while no compiled graph holds this actor. Calls from several
    /// threads take turns.
    ///
    /// A graph holds the actor from `compile()` until its worker has stopped: until `shutdown()`
    /// (or the graph's release) returns, or, when a stage outlived the shutdown grace period, until
    /// that stage has returned. Meanwhile this throws ``CompileError/actorAlreadyBound(actor:)``
    /// instead of touching state a worker may be using; afterwards the state is the worker's final one.
    /// - Throws: ``CompileError/actorAlreadyBound(actor:)``, or what `body` throws.
    public func withState<R>(_ body: (inout State) throws -> sending R) throws -> sending R {
        while true {
            let (exchanged, current) = access.compareExchange(
                expected: ActorAccess.free.rawValue,
                desired: ActorAccess.caller.rawValue,
                ordering: .acquiring
            )
            if exchanged { break }
            if current == ActorAccess.graph.rawValue { throw CompileError.actorAlreadyBound(actor: name) }
            sched_yield()
        }
        defer { access.store(ActorAccess.free.rawValue, ordering: .releasing) }
        return try body(&cell.state)
    }

    /// Whether a running compiled graph currently owns this actor.
    public var isBound: Bool { access.load(ordering: .acquiring) == ActorAccess.graph.rawValue }
}

/// Who owns an actor's state at a moment: nobody, a running compiled graph (its one worker), or a
/// caller inside ``ActorRef/withState(_:)``.
enum ActorAccess: UInt8 {
    case free = 0
    case graph = 1
    case caller = 2
}

/// The storage of an actor's state.
///
/// `@unchecked Sendable` is safe because every access is exclusive by protocol: while
/// ``ActorRef/access`` is `graph`, only the one worker the compiler placed every node of the actor
/// on touches `state` (acquire/release on bind and unbind order it against callers); while it is
/// `caller`, only the thread inside `withState`. Exclusivity is therefore not checked dynamically.
@usableFromInline
final class ActorStateCell<State>: @unchecked Sendable {
    @usableFromInline @exclusivity(unchecked) var state: State
    init(_ state: sending State) { self.state = state }
}

/// The type-erased view of an ``ActorRef`` the compiler needs: identity, name and binding.
@usableFromInline
struct ActorBinding: Sendable {
    @usableFromInline let id: ObjectIdentifier
    @usableFromInline let name: String
    @usableFromInline let tryBind: @Sendable () -> Bool
    @usableFromInline let unbind: @Sendable () -> Void

    @inlinable
    init<State>(_ actor: ActorRef<State>) {
        id = ObjectIdentifier(actor)
        name = actor.name
        tryBind = { actor.tryBind() }
        unbind = { actor.unbind() }
    }
}

extension ActorRef {
    /// Binds the actor to a compiled graph; false when a graph or a `withState` caller has it.
    @usableFromInline
    func tryBind() -> Bool {
        access.compareExchange(
            expected: ActorAccess.free.rawValue,
            desired: ActorAccess.graph.rawValue,
            ordering: .acquiringAndReleasing
        ).exchanged
    }

    @usableFromInline
    func unbind() { access.store(ActorAccess.free.rawValue, ordering: .releasing) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
