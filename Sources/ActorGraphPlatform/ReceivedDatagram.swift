import CLibURing
import Glibc

/// One UDP datagram as a multishot `recvmsg` lays it out in a provided buffer
/// (``ProvidedBufferRing``): `io_uring_recvmsg_out`, the sender's IPv4 address, the payload.
/// A view: it points into the buffer, valid until the buffer is recycled.
package struct ReceivedDatagram {
    /// The room the sender's address takes in each buffer: the `msg_namelen` of the receive's template.
    package static var addressLength: socklen_t { socklen_t(MemoryLayout<sockaddr_in>.size) }
    /// Where the payload starts in a buffer.
    package static var payloadOffset: Int { MemoryLayout<io_uring_recvmsg_out>.size + Int(addressLength) }

    /// The sender.
    package let peer: sockaddr_in
    /// The payload bytes the buffer holds (at most the buffer's room).
    package let payload: UnsafeRawBufferPointer
    /// The datagram's own length, which exceeds `payload.count` when it was truncated.
    package let datagramLength: Int
    /// Whether the datagram was longer than the buffer's room (`MSG_TRUNC`).
    package let truncated: Bool

    /// Reads the datagram in `buffer`, of which the completion filled `length` bytes; nil when
    /// `length` is shorter than the header.
    package init?(buffer: UnsafeMutableRawPointer, length: Int) {
        guard length >= Self.payloadOffset else { return nil }
        let header = buffer.load(as: io_uring_recvmsg_out.self)
        peer = buffer.loadUnaligned(fromByteOffset: MemoryLayout<io_uring_recvmsg_out>.size, as: sockaddr_in.self)
        payload = UnsafeRawBufferPointer(start: buffer + Self.payloadOffset, count: length - Self.payloadOffset)
        datagramLength = Int(header.payloadlen)
        truncated = header.flags & UInt32(MSG_TRUNC) != 0
    }
}
