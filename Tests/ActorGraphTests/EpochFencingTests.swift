import ActorGraphPlatform
import Foundation
import Synchronization
import XCTest

@testable import ActorGraph

/// Epoch fencing at the protocol level: a hand-written piece speaks to a real owner over loopback
/// and sends frames of a stale epoch, a duplicate and a jump. Only the current epoch's frames are
/// applied; a stale one is dropped and counted, never answered to a caller.
final class EpochFencingTests: XCTestCase {
    static func graph() -> Graph<Int, Int> {
        Graph(input: Int.self) { x in x.then(name: "double") { $0 * 2 }.on("b") }
    }

    /// Accepts one owner, answers the handshake, and returns the socket and the START frame.
    private func fakePiece(_ listener: TCPSocket) throws -> (TCPSocket, EdgeFrame) {
        guard let socket = try listener.accept(timeoutMilliseconds: 5000) else { throw XCTSkip("no owner connected") }
        let (hello, _) = try socket.receiveFrame(timeoutMilliseconds: 5000)
        XCTAssertEqual(hello.kind, .hello)
        try socket.sendFrame(EdgeFrame(kind: .accept, epoch: hello.epoch))
        let (start, _) = try socket.receiveFrame(timeoutMilliseconds: 5000)
        XCTAssertEqual(start.kind, .start)
        return (socket, start)
    }

    private func reply(_ socket: TCPSocket, channel: Int, sequence: Int, value: Int, epoch: UInt32) throws {
        try socket.sendFrame(
            EdgeFrame(kind: .data, channel: channel, epoch: epoch, sequence: sequence),
            payload: withUnsafeBytes(of: value) { Array($0) }
        )
    }

    func testFramesOfAnotherEpochAreDroppedAndCountedNeverApplied() throws {
        let listener = try TCPSocket.listen(host: "127.0.0.1", port: 0)
        var o = testOptions()
        o.remote.hosts = ["b": [PieceAddress("127.0.0.1", port: listener.localPort)]]
        o.remote.heartbeat = .seconds(1)  // this fake piece sends no heartbeats
        let options = o
        // Compiling waits for the handshake this test answers: on another thread, joined after it.
        let box = CompiledBox()
        let compiling = try PinnedThread(name: "compile", cpu: nil) { @Sendable in
            box.compiled = try? EpochFencingTests.graph().compile(options)
        }
        let (socket, start) = try fakePiece(listener)
        compiling.join()
        let compiled = try XCTUnwrap(box.compiled)
        defer { compiled.shutdown() }
        XCTAssertEqual(start.sequence, 0)
        let result = compiled.core.plan.outputChannel

        let pending = try compiled.submit(21)
        // The owner sends the input (channel 0, sequence 0) to the piece.
        let (input, payload) = try socket.receiveFrame(timeoutMilliseconds: 5000)
        XCTAssertEqual(input.kind, .data)
        XCTAssertEqual(input.epoch, start.epoch)
        XCTAssertEqual(payload.withUnsafeBytes { $0.loadUnaligned(as: Int.self) }, 21)
        // A stale incarnation's answer (wrong value, older epoch): dropped, counted, not applied.
        try reply(socket, channel: result, sequence: 0, value: -1, epoch: start.epoch &- 1)
        for _ in 0..<500 where compiled.diagnostics.hosts.first?.staleFramesDropped == 0 { usleep(2_000) }
        XCTAssertEqual(compiled.diagnostics.hosts.first?.staleFramesDropped, 1)
        XCTAssertFalse(
            compiled.core.board.ring.isPublished(pending.sequence),
            "a stale frame must not answer the execution"
        )
        // The current epoch's answer is applied.
        try reply(socket, channel: result, sequence: 0, value: 42, epoch: start.epoch)
        XCTAssertEqual(try pending.wait(), 42)
        // A duplicate of an applied slot: dropped, counted.
        try reply(socket, channel: result, sequence: 0, value: 43, epoch: start.epoch)
        for _ in 0..<500 where compiled.diagnostics.hosts.first?.duplicatesDropped == 0 { usleep(2_000) }
        XCTAssertEqual(compiled.diagnostics.hosts.first?.duplicatesDropped, 1)
        // A sequence that jumps ahead is a protocol error: the host is lost, the execution answered hostLost.
        let next = try compiled.submit(5)
        _ = try socket.receiveFrame(timeoutMilliseconds: 5000)
        try reply(socket, channel: result, sequence: 7, value: 10, epoch: start.epoch)
        XCTAssertThrowsError(try next.wait()) { error in
            guard case ExecutionError.hostLost(let host, let reason) = error else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(host, "b")
            XCTAssertTrue(reason.contains("jumped"), reason)
        }
        XCTAssertEqual(compiled.diagnostics.hosts.first?.framesApplied, 1)
        socket.close()
        listener.close()
    }
}

/// `@unchecked Sendable`: written by the compiling thread before `join()`, read after it.
private final class CompiledBox: @unchecked Sendable { var compiled: CompiledGraph<Int, Int>? }
