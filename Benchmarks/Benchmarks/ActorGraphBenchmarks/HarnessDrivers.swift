import ActorGraph
import BasicContainers
import Glibc
import Synchronization

/// The two loops of this harness that are not one `execute` per iteration, written against the public
/// API only (so this package needs no product of ActorGraph beyond `ActorGraph` itself). They mirror
/// `BenchDrivers.pipelined` and `BenchDrivers.pingPong` of the CLI's suite (Benchmarks/Suite/Drivers.swift).
enum HarnessDrivers {
    /// The pending executions of a pipelined run, allocated once: a noncopyable `UniqueArray` ring.
    final class Window {
        @exclusivity(unchecked) var pending: UniqueArray<PendingExecution<UInt64>>
        let count: Int
        init(_ count: Int) {
            self.count = max(1, count)
            pending = UniqueArray(minimumCapacity: self.count)
        }
    }

    /// `executions` executions with up to `window.count` in flight (submit ahead, wait behind, in
    /// order). Returns a checksum. Allocates nothing.
    static func pipelined(
        _ graph: CompiledGraph<UInt64, UInt64>,
        executions: Int,
        window: Window
    ) throws(ExecutionError) -> UInt64 {
        let size = min(window.count, graph.capacity)
        var sum: UInt64 = 0
        window.pending.removeAll(keepingCapacity: true)
        for i in 0..<executions {
            if i < size {
                window.pending.append(try graph.submit(UInt64(i)))
            } else {
                let slot = i % size
                sum &+= try window.pending[slot].wait()
                window.pending[slot] = try graph.submit(UInt64(i))
            }
        }
        for i in max(0, executions - size)..<executions { sum &+= try window.pending[i % size].wait() }
        window.pending.removeAll(keepingCapacity: true)
        return sum
    }

    /// `roundTrips` round trips of one cache line between two spinning threads (plain spin). Not
    /// pinned (the sched affinity calls need `_GNU_SOURCE`, which Swift's Glibc module lacks): with
    /// two threads spinning, the scheduler keeps them on two CPUs. `actorgraph bench` pins them.
    /// Returns the number of round trips.
    static func pingPong(roundTrips: Int) -> Int {
        let line = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 16)  // 128 bytes: its own line
        line.initialize(to: Atomic(0))
        defer { line.deallocate() }
        let address = UInt(bitPattern: line)
        let total = UInt64(roundTrips)
        let responder = startThread {
            let flag = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: address)!
            var expected: UInt64 = 1
            for _ in 0..<total {
                while flag.pointee.load(ordering: .acquiring) != expected {}
                flag.pointee.store(expected &+ 1, ordering: .releasing)
                expected &+= 2
            }
        }
        var value: UInt64 = 1
        for _ in 0..<total {
            line.pointee.store(value, ordering: .releasing)
            while line.pointee.load(ordering: .acquiring) != value &+ 1 {}
            value &+= 2
        }
        pthread_join(responder, nil)
        return roundTrips
    }

    // MARK: Threads (Glibc)

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private static func startThread(_ body: @escaping () -> Void) -> pthread_t {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let r = pthread_create(
            &thread,
            nil,
            { raw in
                Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            },
            context
        )
        precondition(r == 0, "pthread_create failed: \(r)")
        return thread
    }
}
