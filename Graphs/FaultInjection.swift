import ActorGraph
import Glibc

/// The graph `actorgraph faults` drives: one stage that normally returns `2 * value + 1`, or, on
/// request, traps, aborts or never returns — the faults a worker process must survive.
public enum FaultInjection {
    /// What the `fault` stage does with one execution.
    public enum Action: Int32, Sendable {
        /// Return `2 * value + 1`.
        case none = 0
        /// Index an array out of bounds (a Swift runtime trap).
        case trap = 1
        /// Call `abort()`.
        case abort = 2
        /// Never return (stands in for a stuck call).
        case hang = 3
    }

    /// One execution's input (trivially copyable, so it can cross into a worker process).
    public struct Request: Sendable, Equatable, BitwiseCopyable {
        /// A unique id: the result is `2 * id + 1`.
        public var id: Int
        /// The ``Action`` raw value.
        public var action: Int32

        /// A request.
        public init(id: Int, action: Action = .none) {
            self.id = id
            self.action = action.rawValue
        }
    }

    /// input → fault → output.
    public static func graph() -> Graph<Request, Int> {
        Graph(input: Request.self) { x in
            x.then(name: "fault") { request -> Int in
                switch Action(rawValue: request.action) ?? .none {
                case .none: return 2 &* request.id &+ 1
                case .trap:
                    let two = [1, 2]
                    return two[Int(request.action) + 4]
                case .abort: Glibc.abort()
                case .hang:
                    while true { sleep(1_000) }
                }
            }
        }
    }
}
