import ActorGraph
import ActorGraphCluster
import Foundation
import Synchronization
import XCTest

/// `PlacerFeed` without Ray: this test writes the placer's events file itself, and the pieces are
/// threads of this process on loopback (`Piece.serve`, port 0). The feed must hand each new
/// incarnation to the graph it follows, which connects it with a higher epoch once the current one
/// is lost. (With Ray and the real placer: `RayClusterTests`.)
final class PlacerFeedTests: XCTestCase {
    static func graph() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in
            x.then(name: "inc") { $0 &+ 1 }
                .then(name: "double") { $0 &* 2 }.on("b")
                .then(name: "dec") { $0 &- 3 }
        }
    }

    /// A piece of host b on 127.0.0.1, any free port, until `stop` is set.
    final class LoopbackPiece: Sendable {
        let port = Atomic<Int>(0)
        let stopFlag = Atomic<Bool>(false)
        let done = Atomic<Bool>(false)

        init() {
            Thread.detachNewThread { [self] in
                try? Piece.serve(
                    listen: PieceAddress("127.0.0.1", port: 0),
                    host: "b",
                    graphs: { [PlacerFeedTests.graph()] },
                    announce: { self.port.store(Int($0), ordering: .releasing) },
                    shouldStop: { self.stopFlag.load(ordering: .acquiring) }
                )
                self.done.store(true, ordering: .releasing)
            }
        }

        func waitForPort() throws -> UInt16 {
            for _ in 0..<500 {
                let p = port.load(ordering: .acquiring)
                if p > 0 { return UInt16(p) }
                usleep(10_000)
            }
            throw XCTSkip("a loopback piece did not start listening")
        }

        func stop() {
            stopFlag.store(true, ordering: .releasing)
            for _ in 0..<300 where !done.load(ordering: .acquiring) { usleep(10_000) }
        }
    }

    static func incarnationLine(port: UInt16, pid: Int, pieceIncarnation: Int) -> String {
        #"{"event":"incarnation","host":"b","ip":"127.0.0.1","port":\#(port),"pid":\#(pid),"piece_incarnation":\#(pieceIncarnation),"keeper":"k1","keeper_pid":42,"raylet_pid":null,"t":\#(Date().timeIntervalSince1970)}"#
    }

    func testFollowedGraphConnectsEachNewIncarnationWithAHigherEpoch() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "placer-feed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let events = directory.appendingPathComponent("events.jsonl").path
        let file = try XCTUnwrap(
            { () -> FileHandle? in
                _ = FileManager.default.createFile(atPath: events, contents: nil)
                return FileHandle(forWritingAtPath: events)
            }()
        )
        defer { try? file.close() }
        func append(_ line: String) { file.write(Data((line + "\n").utf8)) }

        let first = LoopbackPiece()
        let firstPort = try first.waitForPort()
        append(#"{"event":"placer","pid":1,"address":"none","t":0}"#)
        // A partial line must wait for its newline.
        file.write(Data(Self.incarnationLine(port: firstPort, pid: 100, pieceIncarnation: 1).utf8))
        let feed = PlacerFeed(eventsPath: events)
        XCTAssertNil(feed.current("b"))
        append("")
        append(#"{"event":"ready","t":0}"#)
        let placed = try feed.waitForPieces(["b"], timeout: .seconds(5))
        XCTAssertEqual(placed["b"]?.address, PieceAddress("127.0.0.1", port: firstPort))
        XCTAssertEqual(placed["b"]?.number, 1)
        XCTAssertEqual(placed["b"]?.keeperPID, 42)
        XCTAssertNil(placed["b"]?.rayletPID)
        XCTAssertEqual(feed.placerPID, 1)

        var options = CompileOptions()
        options.remote.hosts = placed.mapValues { [$0.address] }
        options.remote.whileHostLost = .waitForReplacement(upTo: .seconds(5))
        let compiled = try Self.graph().compile(options)
        defer { compiled.shutdown() }
        try feed.follow(compiled)
        defer { feed.stop() }
        XCTAssertEqual(try compiled.execute(4), 7)
        XCTAssertEqual(feed.pieces.first?.epoch, 1)
        XCTAssertEqual(feed.pieces.first?.connected, true)

        // The piece dies; its keeper starts another one (another port) and reports it.
        let second = LoopbackPiece()
        let secondPort = try second.waitForPort()
        defer { second.stop() }
        first.stop()
        append(#"{"event":"exit","host":"b","pid":100,"status":"signal 9","t":0}"#)
        append(Self.incarnationLine(port: secondPort, pid: 101, pieceIncarnation: 2))

        var answered: Int? = nil
        for _ in 0..<50 {
            if let y = try? compiled.execute(5) {
                answered = y
                break
            }
            usleep(20_000)
        }
        XCTAssertEqual(answered, 9, "no success on the new incarnation")
        let status = try XCTUnwrap(feed.pieces.first)
        XCTAssertEqual(status.host, "b")
        XCTAssertEqual(status.current.address, PieceAddress("127.0.0.1", port: secondPort))
        XCTAssertEqual(status.current.number, 2)
        XCTAssertEqual(status.current.pid, 101)
        XCTAssertEqual(status.pieceRestarts, 1)
        XCTAssertEqual(status.keeperRestarts, 0)
        XCTAssertGreaterThan(status.epoch ?? 0, 1)
        XCTAssertEqual(status.connected, true)
        XCTAssertEqual(feed.incarnations.map(\.number), [1, 2])

        // A keeper restarted by Ray counts as such (its first piece is incarnation 1 of that keeper).
        append(#"{"event":"keeper_restarted","host":"b","keeper":"k2","t":0}"#)
        for _ in 0..<200 where feed.pieces.first?.keeperRestarts != 1 { usleep(5_000) }
        XCTAssertEqual(feed.pieces.first?.keeperRestarts, 1)
        // No placer was started by this feed, and pid 1 is not one: nothing to stop.
        XCTAssertTrue(feed.stop(placer: true))
    }

    /// A placer that cannot start (here: no such script) is a typed error carrying its output.
    func testAPlacerThatExitsIsReportedWithItsOutput() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("placer-feed-bad-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        XCTAssertThrowsError(
            try PlacerFeed.start(
                PlacerFeed.Placer(
                    script: directory.appendingPathComponent("no-such-placer.py").path,
                    python: "python3",
                    rayAddress: "127.0.0.1:1",
                    nodeIP: "127.0.0.1",
                    binary: "/bin/true",
                    pieces: [PlacerFeed.Placement(host: "b")],
                    eventsPath: directory.appendingPathComponent("events.jsonl").path
                ),
                timeout: .seconds(20)
            )
        ) { error in
            guard case .placerDidNotStart(let why) = error as? PlacerFeed.Failure else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("no-such-placer.py"), why)
        }
    }

    func testWaitForPiecesNamesTheMissingHost() {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("placer-feed-empty-\(getpid()).jsonl")
            .path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let feed = PlacerFeed(eventsPath: path)
        XCTAssertThrowsError(try feed.waitForPieces(["gpu-box"], timeout: .milliseconds(50))) { error in
            XCTAssertTrue("\(error)".contains("gpu-box"), "\(error)")
        }
        XCTAssertTrue(feed.pieces.isEmpty)
    }
}
