import ActorGraph
import Glibc
import Synchronization

/// The harness's own baseline loop (the CLI suite's pinned one, `BenchDrivers.pingPong`, needs the
/// platform layer, which is not public).
enum HarnessDrivers {
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
