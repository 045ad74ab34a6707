import ActorGraph
import BasicContainers
import Foundation
import GraphTestSupport
import Synchronization
import XCTest

/// Graphs spanning hosts (issue 16), with the pieces served in this process over loopback TCP:
/// the owner and the piece speak the real protocol over real sockets on real io_uring rings, only
/// the process boundary is missing (ReliabilityTests kill real piece processes and use the
/// namespace rig). Nothing here asserts a time.
final class RemoteGraphTests: XCTestCase {
    /// Serves pieces on 127.0.0.1 on a background thread until stopped.
    final class InProcessPiece: Sendable {
        let port: UInt16
        private let stopped = Atomic<Bool>(false)

        init(port: UInt16 = 0, host: String? = nil, graphs: @escaping @Sendable () -> [any IsolatableGraph]) throws {
            let stopper = Stopper()
            Thread.detachNewThread {
                do {
                    try Piece.serve(
                        listen: PieceAddress("127.0.0.1", port: port),
                        host: host,
                        graphs: graphs,
                        announce: { p in stopper.bound.store(Int(p), ordering: .releasing) },
                        shouldStop: { stopper.stop.load(ordering: .acquiring) }
                    )
                } catch {
                    stopper.bound.store(-2, ordering: .releasing)
                }
                stopper.finished.store(true, ordering: .releasing)
            }
            var p = -1
            for _ in 0..<5000 {
                p = stopper.bound.load(ordering: .acquiring)
                if p != -1 { break }
                usleep(1000)
            }
            guard p > 0 else { throw XCTSkip("cannot listen on 127.0.0.1:\(port)") }
            self.port = UInt16(p)
            self.stopper = stopper
        }

        let stopper: Stopper
        final class Stopper: Sendable {
            let stop = Atomic<Bool>(false)
            let bound = Atomic<Int>(-1)
            let finished = Atomic<Bool>(false)
        }

        var address: PieceAddress { PieceAddress("127.0.0.1", port: port) }

        /// Stops serving: the running incarnation shuts down cleanly (the owner sees "the piece shut down").
        func stop() {
            guard !stopped.exchange(true, ordering: .relaxed) else { return }
            stopper.stop.store(true, ordering: .releasing)
            // An atomic, not a semaphore: ThreadSanitizer sees the hand-over.
            while !stopper.finished.load(ordering: .acquiring) { usleep(1000) }
        }
    }

    static func options(_ hosts: [String: [PieceAddress]], capacity: Int = 64) -> CompileOptions {
        var o = testOptions(workers: 1, capacity: capacity)
        o.remote.hosts = hosts
        o.remote.connectTimeout = .seconds(5)
        // Generous: under the sanitizers on a loaded 2-CPU machine a thread can go unscheduled for
        // tens of ms, and the default 50 ms silence limit then loses hosts that are alive. The
        // losses these tests cause close the connection (detected at once, whatever this says).
        o.remote.heartbeat = .milliseconds(100)
        return o
    }

    static func remoteChain() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(name: "add1") { $0 + 1 }
                .then(name: "times2") { $0 * 2 }.on("b")
                .then(name: "minus3") { $0 - 3 }
        }
    }

    /// The diamond with one branch on `b`, the other on `c`, and the join on `b`: values cross
    /// owner → b, owner → c, c → (owner) → b, b → owner.
    static func remoteDiamond() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            let a = x.then(Scale(factor: 2), name: "scale")
            let b = a.then(name: "plus1") { $0 + 1 }.on("b")
            let c = a.then(name: "square") { $0 * $0 }.on("c")
            return zip(b, c, name: "join").on("b").then(name: "sum") { $0 + $1 }
        }
    }

    static func remoteEcho() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in x.then(name: "echo") { $0 }.on("b") }
    }

    func testAChainWithItsMiddleStageOnAnotherHostComputesEveryResult() throws {
        let piece = try InProcessPiece(graphs: { [Self.remoteChain()] })
        defer { piece.stop() }
        let compiled = try Self.remoteChain().compile(Self.options(["b": [piece.address]]))
        defer { compiled.shutdown() }
        for i in 0..<2000 { XCTAssertEqual(try compiled.execute(i), (i + 1) * 2 - 3) }
        // Pipelined: many in flight, each answered once, in order.
        for batch in 0..<100 {
            var pending = UniqueArray<PendingExecution<Int>>(minimumCapacity: 50)
            for j in 0..<50 { pending.append(try compiled.submit(batch * 50 + j)) }
            for j in 0..<50 { XCTAssertEqual(try pending[j].wait(), (batch * 50 + j + 1) * 2 - 3) }
        }
        let host = try XCTUnwrap(compiled.diagnostics.hosts.first)
        XCTAssertEqual(host.name, "b")
        XCTAssertTrue(host.connected)
        XCTAssertEqual(host.epoch, 1)
        XCTAssertEqual(host.framesApplied, 7000)
        XCTAssertEqual(host.staleFramesDropped, 0)
    }

    func testADiamondAcrossTwoPiecesRelaysThroughTheOwner() throws {
        let b = try InProcessPiece(host: "b", graphs: { [Self.remoteDiamond()] })
        defer { b.stop() }
        let c = try InProcessPiece(host: "c", graphs: { [Self.remoteDiamond()] })
        defer { c.stop() }
        let compiled = try Self.remoteDiamond().compile(Self.options(["b": [b.address], "c": [c.address]]))
        defer { compiled.shutdown() }
        for i in 0..<3000 { XCTAssertEqual(try compiled.execute(i), (2 * i + 1) + (2 * i) * (2 * i)) }
        XCTAssertEqual(compiled.diagnostics.hosts.map(\.name), ["b", "c"])
    }

    func testAStageFailingOnAPieceFailsThatExecutionOnlyWithItsNameAndMessage() throws {
        @Sendable func graph() -> Graph<Int, Int> {
            Graph(input: Int.self) { x in
                x.then(FailOnMultiples(every: 5), name: "picky").on("b").then(name: "after") { $0 + 1 }
            }
        }
        let piece = try InProcessPiece(graphs: { [graph()] })
        defer { piece.stop() }
        let compiled = try graph().compile(Self.options(["b": [piece.address]]))
        defer { compiled.shutdown() }
        for i in 1...50 {
            if i % 5 == 0 {
                assertExecutionError(try compiled.execute(i)) {
                    if case .stageFailed(let node, let error) = $0 {
                        return node == "picky" && "\(error)".contains("Boom(value: \(i))")
                    }
                    return false
                }
            } else {
                XCTAssertEqual(try compiled.execute(i), i + 1)
            }
        }
    }

    func testMalformedPlacementsAreRejectedAtCompileNamingTheNode() throws {
        // A host no address is given for.
        assertCompileError(try Self.remoteChain().compile(Self.options([:]))) {
            if case .unknownHost(let node, let host) = $0 { return node == "times2" && host == "b" }
            return false
        }
        // A value that can neither be copied nor encoded crossing hosts.
        let boxes = Graph(input: Int.self) { x in
            x.then(name: "box") { RemoteBox(value: $0) }.on("b").then(name: "unbox") { $0.value }
        }
        assertCompileError(try boxes.compile(Self.options(["b": [PieceAddress("127.0.0.1", port: 9)]]))) {
            if case .notRemotable(let node, _) = $0 { return node == "box" }
            return false
        }
        // One actor's nodes on two hosts.
        let counter = ActorRef(0, name: "counter")
        let split = Graph(input: Int.self) { x in
            x.then(counter, name: "first") { s, v in
                s += v
                return s
            }
            .then(counter, name: "second") { s, v in
                s += v
                return s
            }.on("b")
        }
        assertCompileError(try split.compile(Self.options(["b": [PieceAddress("127.0.0.1", port: 9)]]))) {
            if case .actorSplitAcrossHosts(let actor) = $0 { return actor == "counter" }
            return false
        }
    }

    func testAPieceNobodyServesOrThatBuildsAnotherPlanIsATypedError() throws {
        // Nothing listens: unreachable, naming the host and the address.
        let closed = try InProcessPiece(graphs: { [] })
        let port = closed.port
        closed.stop()
        assertCompileError(try Self.remoteChain().compile(Self.options(["b": [PieceAddress("127.0.0.1", port: port)]])))
        {
            if case .hostUnreachable(let host, let reason) = $0 {
                return host == "b" && reason.contains("127.0.0.1:\(port)")
            }
            return false
        }
        // A piece whose program has other graphs refuses: plan mismatch.
        let other = try InProcessPiece(graphs: { [Self.remoteEcho()] })
        defer { other.stop() }
        assertCompileError(try Self.remoteChain().compile(Self.options(["b": [other.address]]))) {
            if case .pieceRefused(let host, let reason) = $0 { return host == "b" && reason.contains("planMismatch") }
            return false
        }
    }

    /// A piece that goes away answers every execution that needed it exactly once, with
    /// `hostLost`; a replacement gets the next epoch and later executions succeed.
    func testALostPieceAnswersEveryExecutionOnceAndAReplacementTakesOver() throws {
        let first = try InProcessPiece(graphs: { [Self.remoteChain()] })
        let options = Self.options(["b": [first.address]], capacity: 256)
        let compiled = try Self.remoteChain().compile(options)
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(1), 1)
        // Submit a window, take the piece away mid-stream, then collect: each answered once.
        var pending = UniqueArray<PendingExecution<Int>>(minimumCapacity: 200)
        for i in 0..<200 { pending.append(try compiled.submit(i)) }
        first.stop()
        var values = 0
        var lost = 0
        for i in 0..<200 {
            do {
                let value = try pending[i].wait()
                XCTAssertEqual(value, (i + 1) * 2 - 3)
                values += 1
            } catch {
                guard case .hostLost(let host, _) = error else { return XCTFail("unexpected \(error)") }
                XCTAssertEqual(host, "b")
                lost += 1
            }
        }
        XCTAssertEqual(values + lost, 200)
        // With the piece gone, new executions fail fast.
        assertExecutionError(try compiled.execute(7)) {
            if case .hostLost = $0 { return true }
            return false
        }
        // A replacement on the same address: the connector brings it in with epoch 2.
        let second = try InProcessPiece(port: first.port, graphs: { [Self.remoteChain()] })
        defer { second.stop() }
        var recovered = false
        for _ in 0..<500 {
            if let v = try? compiled.execute(10) {
                XCTAssertEqual(v, 19)
                recovered = true
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertTrue(recovered, "no replacement within 5 s: \(compiled.diagnostics.hosts)")
        for i in 0..<500 { XCTAssertEqual(try compiled.execute(i), (i + 1) * 2 - 3) }
        let host = try XCTUnwrap(compiled.diagnostics.hosts.first)
        XCTAssertGreaterThan(host.epoch, 1, "a replacement gets a higher epoch (failed attempts use some up)")
        XCTAssertEqual(host.incarnations, 2)
        XCTAssertGreaterThanOrEqual(host.losses, 1)
        XCTAssertEqual(host.staleFramesDropped, 0)
    }

    /// `.waitForReplacement`: an execution submitted while the host is lost waits for the
    /// replacement instead of failing.
    func testWaitForReplacementHoldsNewExecutionsUntilThePieceIsBack() throws {
        let first = try InProcessPiece(graphs: { [Self.remoteChain()] })
        var options = Self.options(["b": [first.address]])
        options.remote.whileHostLost = .waitForReplacement(upTo: .seconds(20))
        let compiled = try Self.remoteChain().compile(options)
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(1), 1)
        first.stop()
        // Wait until the owner noticed.
        for _ in 0..<500 where compiled.diagnostics.hosts.first?.connected == true {
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertEqual(compiled.diagnostics.hosts.first?.connected, false)
        let pending = try compiled.submit(20)
        Thread.sleep(forTimeInterval: 0.05)
        let second = try InProcessPiece(port: first.port, graphs: { [Self.remoteChain()] })
        defer { second.stop() }
        XCTAssertEqual(try pending.wait(), 39)
    }
}

extension RemoteGraphTests {
    /// A placer moved the piece: after the loss, the owner connects to the address it was told.
    func testARelocatedPieceIsFoundAtTheAddressTheOwnerIsGiven() throws {
        let first = try InProcessPiece(graphs: { [Self.remoteChain()] })
        let options = Self.options(["b": [first.address]])
        let compiled = try Self.remoteChain().compile(options)
        defer { compiled.shutdown() }
        XCTAssertEqual(try compiled.execute(2), 3)
        let moved = try InProcessPiece(graphs: { [Self.remoteChain()] })
        defer { moved.stop() }
        try compiled.setPieceAddresses([moved.address], forHost: "b")
        assertCompileError(try compiled.setPieceAddresses([moved.address], forHost: "nowhere")) {
            if case .unknownHost(_, let host) = $0 { return host == "nowhere" }
            return false
        }
        first.stop()
        var recovered = false
        for _ in 0..<500 {
            if let v = try? compiled.execute(3) {
                XCTAssertEqual(v, 5)
                recovered = true
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertTrue(recovered, "\(compiled.diagnostics.hosts)")
        XCTAssertEqual(compiled.diagnostics.hosts.first?.incarnations, 2)
    }
}

/// A reference type with no wire encoding: it cannot cross hosts.
final class RemoteBox: Sendable {
    let value: Int
    init(value: Int) { self.value = value }
}

extension RemoteGraphTests {
    static func remoteStrings() -> Graph<String, [String]> {
        Graph(input: String.self) { x in
            x.then(name: "words") { $0.split(separator: " ").map(String.init) }.on("b")
                .then(name: "shout") { $0.map { $0.uppercased() } }
        }
    }

    /// Values holding references (`String`, `[String]`) cross hosts encoded; an oversized one fails
    /// that execution only, with the node and the limit.
    func testStringsAndArraysCrossHostsEncoded() throws {
        let piece = try InProcessPiece(graphs: { [Self.remoteStrings()] })
        defer { piece.stop() }
        let compiled = try Self.remoteStrings().compile(Self.options(["b": [piece.address]]))
        defer { compiled.shutdown() }
        for i in 0..<500 {
            XCTAssertEqual(try compiled.execute("hello remote world \(i)"), ["HELLO", "REMOTE", "WORLD", "\(i)"])
        }
        let huge = String(repeating: "x ", count: 5000)
        assertExecutionError(try compiled.execute(huge)) {
            if case .valueTooLarge = $0 { return true }
            return false
        }
        XCTAssertEqual(try compiled.execute("still fine"), ["STILL", "FINE"])
    }
}
