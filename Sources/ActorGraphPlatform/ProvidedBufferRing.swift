import CLibURing
import Glibc

/// Receive buffers the kernel picks from: an io_uring buffer ring registered under a group id.
///
/// Data flow: ``register(on:)`` hands every buffer to the kernel; a receive armed with the group
/// (a multishot `recvmsg`, ``IORing/prepareReceiveMessageMultishot(fd:message:bufferGroup:userData:)``)
/// fills one buffer per datagram and names it in its completion (``IORing/Completion/bufferID``);
/// the owner reads the bytes and gives the buffer back with ``recycle(_:)``, a store into shared
/// memory (no system call). A receive that finds no buffer ends with `-ENOBUFS`.
///
/// Owned by the thread that owns the ring: only it registers, reads and recycles.
package final class ProvidedBufferRing {
    /// The buffer group id receives name.
    package let groupID: UInt16
    /// How many buffers (a power of two).
    package let count: Int
    /// The size of each buffer.
    package let bufferSize: Int
    /// `count - 1`: where a buffer added at the ring's tail goes.
    private let mask: Int32
    /// The ring of buffer descriptors the kernel reads (page aligned, as registration requires).
    private let descriptors: UnsafeMutableRawPointer
    private let buffers: UnsafeMutableRawPointer
    private var registeredRing: IORing?

    /// Allocates `count` (a power of two, at most 32 768) buffers of `bufferSize` bytes.
    package init(count: Int, bufferSize: Int, groupID: UInt16) {
        precondition(count > 0 && count <= 32_768 && count & (count - 1) == 0, "buffer count: a power of two")
        self.groupID = groupID
        self.count = count
        self.bufferSize = bufferSize
        mask = io_uring_buf_ring_mask(UInt32(count))
        descriptors = .allocate(byteCount: max(4096, count * MemoryLayout<io_uring_buf>.stride), alignment: 4096)
        descriptors.initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<io_uring_buf>.stride)
        buffers = .allocate(byteCount: count * bufferSize, alignment: 64)
    }

    deinit {
        unregister()
        descriptors.deallocate()
        buffers.deallocate()
    }

    private var ring: UnsafeMutablePointer<io_uring_buf_ring> {
        descriptors.assumingMemoryBound(to: io_uring_buf_ring.self)
    }

    /// Registers the ring with `ioRing` and gives the kernel every buffer.
    package func register(on ioRing: IORing) throws(Errno) {
        try ioRing.registerBufferRing(descriptors, entries: UInt32(count), groupID: groupID)
        registeredRing = ioRing
        io_uring_buf_ring_init(ring)
        for id in 0..<count {
            io_uring_buf_ring_add(ring, buffer(id), UInt32(bufferSize), UInt16(id), mask, Int32(id))
        }
        io_uring_buf_ring_advance(ring, Int32(count))
    }

    /// Takes the ring back from the kernel (before the io_uring closes). Idempotent.
    package func unregister() {
        guard let ioRing = registeredRing else { return }
        registeredRing = nil
        ioRing.unregisterBufferRing(groupID: groupID)
    }

    /// The memory of buffer `id`.
    @inline(__always)
    package func buffer(_ id: Int) -> UnsafeMutableRawPointer { buffers + id * bufferSize }

    /// Gives buffer `id` back to the kernel.
    @inline(__always)
    package func recycle(_ id: Int) {
        io_uring_buf_ring_add(ring, buffer(id), UInt32(bufferSize), UInt16(id), mask, 0)
        io_uring_buf_ring_advance(ring, 1)
    }
}
