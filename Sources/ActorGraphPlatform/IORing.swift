import CLibURing
import Glibc

/// One io_uring instance (liburing), owned by one thread.
///
/// A worker uses its ring for everything it waits on: its park doorbell (a futex-wait SQE) and the
/// I/O of source and sink stages. Not thread-safe: only the owning thread prepares, submits and reaps.
package final class IORing {
    @usableFromInline var ring = io_uring()
    private var isClosed = false

    /// One reaped completion.
    package struct Completion: Sendable {
        /// The `userData` given when the request was prepared.
        package var userData: UInt64
        /// The result: a byte count, 0, or `-errno`.
        package var result: Int32
        /// The CQE flags.
        package var flags: UInt32

        /// Whether a multishot request stays armed after this completion.
        package var hasMore: Bool { flags & UInt32(IORING_CQE_F_MORE) != 0 }
        /// The provided buffer this completion filled (``ProvidedBufferRing``), if any.
        package var bufferID: Int? {
            flags & UInt32(IORING_CQE_F_BUFFER) != 0 ? Int(flags >> UInt32(IORING_CQE_BUFFER_SHIFT)) : nil
        }
    }

    /// Creates a ring with `entries` submission slots. Throws the kernel's refusal
    /// (`EPERM`/`ENOSYS` under seccomp) so callers can fall back to plain futexes.
    package init(entries: UInt32 = 64, flags: UInt32 = 0) throws(Errno) {
        let r = io_uring_queue_init(entries, &ring, flags)
        guard r == 0 else { throw Errno(rawValue: -r) }
    }

    /// Whether io_uring can be used on this host, and the kernel's error when it cannot.
    package static func probe() -> Result<Void, Errno> {
        do {
            let ring = try IORing(entries: 2)
            ring.close()
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// Whether the kernel supports `IORING_OP_FUTEX_WAIT` (opcode 51) on this host.
    package static func supportsFutexWait() -> Bool {
        guard let probe = io_uring_get_probe() else { return false }
        defer { io_uring_free_probe(probe) }
        return io_uring_opcode_supported(probe, Int32(CLIBURING_OP_FUTEX_WAIT)) != 0
    }

    /// Whether the kernel lets a ring register provided-buffer rings (``ProvidedBufferRing``, 5.19+).
    package static func supportsBufferRings() -> Result<Void, Errno> {
        do {
            let ring = try IORing(entries: 2)
            defer { ring.close() }
            let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { page.deallocate() }
            page.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
            try ring.registerBufferRing(page, entries: 1, groupID: 0)
            ring.unregisterBufferRing(groupID: 0)
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    private func nextSQE() -> UnsafeMutablePointer<io_uring_sqe>? {
        if let sqe = io_uring_get_sqe(&ring) { return sqe }
        // The submission queue is full: hand what is queued to the kernel, then retry.
        _ = io_uring_submit(&ring)
        return io_uring_get_sqe(&ring)
    }

    /// Queues `IORING_OP_FUTEX_WAIT`: completes when `word` is woken, or at once (`-EAGAIN`) if `*word != expected`.
    /// `shared`: the word is mapped by several processes (no `FUTEX2_PRIVATE`), as ``Futex`` with `shared: true`.
    @discardableResult
    package func prepareFutexWait(
        on word: UnsafeMutablePointer<UInt32>,
        expected: UInt32,
        userData: UInt64,
        shared: Bool = false
    ) -> Bool {
        guard let sqe = nextSQE() else { return false }
        clib_io_uring_prep_futex_wait(sqe, word, UInt64(expected), shared ? 1 : 0)
        io_uring_sqe_set_data64(sqe, userData)
        return true
    }

    /// Queues a `sendmsg` of `message` on socket `fd` (its `msg_name` addresses a UDP datagram).
    @discardableResult
    package func prepareSendMessage(fd: Int32, message: UnsafeMutablePointer<msghdr>, userData: UInt64) -> Bool {
        guard let sqe = nextSQE() else { return false }
        io_uring_prep_sendmsg(sqe, fd, message, 0)
        io_uring_sqe_set_data64(sqe, userData)
        return true
    }

    /// Queues a `recvmsg` on socket `fd` (UDP: fills the sender's address).
    @discardableResult
    package func prepareReceiveMessage(fd: Int32, message: UnsafeMutablePointer<msghdr>, userData: UInt64) -> Bool {
        guard let sqe = nextSQE() else { return false }
        io_uring_prep_recvmsg(sqe, fd, message, 0)
        io_uring_sqe_set_data64(sqe, userData)
        return true
    }

    /// Queues a multishot `recvmsg` on socket `fd`: one completion per datagram, each in a buffer
    /// of group `bufferGroup` (``ProvidedBufferRing``) laid out as `io_uring_recvmsg_out`, the
    /// sender's address (`message.msg_namelen` bytes) and the payload. The request stays armed while
    /// its completions carry ``Completion/hasMore``.
    @discardableResult
    package func prepareReceiveMessageMultishot(
        fd: Int32,
        message: UnsafeMutablePointer<msghdr>,
        bufferGroup: UInt16,
        userData: UInt64
    ) -> Bool {
        guard let sqe = nextSQE() else { return false }
        io_uring_prep_recvmsg_multishot(sqe, fd, message, 0)
        sqe.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        sqe.pointee.buf_group = bufferGroup
        io_uring_sqe_set_data64(sqe, userData)
        return true
    }

    /// Queues the cancellation of the request queued with `userData` (its completion then carries `-ECANCELED`).
    @discardableResult
    package func prepareCancel(userData target: UInt64, userData: UInt64) -> Bool {
        guard let sqe = nextSQE() else { return false }
        io_uring_prep_cancel64(sqe, target, 0)
        io_uring_sqe_set_data64(sqe, userData)
        return true
    }

    /// Registers a buffer ring (`IORING_REGISTER_PBUF_RING`, kernel 5.19+) at page-aligned `address`.
    package func registerBufferRing(_ address: UnsafeMutableRawPointer, entries: UInt32, groupID: UInt16) throws(Errno)
    {
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: address))
        registration.ring_entries = entries
        registration.bgid = groupID
        let r = io_uring_register_buf_ring(&ring, &registration, 0)
        guard r == 0 else { throw Errno(rawValue: -r) }
    }

    /// Unregisters buffer group `groupID`.
    package func unregisterBufferRing(groupID: UInt16) {
        guard !isClosed else { return }
        _ = io_uring_unregister_buf_ring(&ring, Int32(groupID))
    }

    /// Queues a `send` of `buffer` on connected socket `fd` (`MSG_NOSIGNAL`: a closed peer is an error, not SIGPIPE).
    @discardableResult
    package func prepareSend(fd: Int32, from buffer: UnsafeRawBufferPointer, userData: UInt64) -> Bool {
        guard let sqe = nextSQE() else { return false }
        io_uring_prep_send(sqe, fd, buffer.baseAddress, buffer.count, TCPSocket.noSignal)
        io_uring_sqe_set_data64(sqe, userData)
        return true
    }

    /// Queues a `recv` into `buffer` on connected socket `fd` (completes with 0 once the peer closed).
    @discardableResult
    package func prepareReceive(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, userData: UInt64) -> Bool {
        guard let sqe = nextSQE() else { return false }
        io_uring_prep_recv(sqe, fd, buffer.baseAddress, buffer.count, 0)
        io_uring_sqe_set_data64(sqe, userData)
        return true
    }

    /// Queues a `read` of `buffer.count` bytes at `offset` of file `fd`.
    @discardableResult
    package func prepareRead(
        fd: Int32,
        into buffer: UnsafeMutableRawBufferPointer,
        offset: UInt64,
        userData: UInt64
    ) -> Bool {
        guard let sqe = nextSQE() else { return false }
        io_uring_prep_read(sqe, fd, buffer.baseAddress, UInt32(buffer.count), offset)
        io_uring_sqe_set_data64(sqe, userData)
        return true
    }

    /// Flags for a ring polled by a spinning owner: completions' task work waits for the owner
    /// (no inter-processor interrupt), which learns of it through ``taskWorkPending``.
    package static let cooperativeFlags = UInt32(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG)

    /// Whether the kernel has completions waiting for this thread to enter it (rings created with
    /// ``cooperativeFlags``): a read of the shared submission-ring flags, no system call.
    @inline(__always)
    package var taskWorkPending: Bool {
        guard let flags = ring.sq.kflags else { return false }
        return UnsafeRawPointer(flags).assumingMemoryBound(to: UInt32.self).pointee & UInt32(IORING_SQ_TASKRUN) != 0
    }

    /// Enters the kernel just to run pending task work, posting its completions (`io_uring_get_events`).
    package func runTaskWork() { _ = io_uring_get_events(&ring) }

    /// Submits queued requests without waiting. Returns how many were submitted.
    @discardableResult
    package func submit() throws(Errno) -> Int {
        let r = io_uring_submit(&ring)
        guard r >= 0 else { throw Errno(rawValue: -r) }
        return Int(r)
    }

    /// Submits queued requests and sleeps until at least one completion is ready or `timeoutNanoseconds` pass.
    /// Returns false on timeout.
    @discardableResult
    package func submitAndWait(timeoutNanoseconds: Int64) throws(Errno) -> Bool {
        var ts = __kernel_timespec(
            tv_sec: timeoutNanoseconds / 1_000_000_000,
            tv_nsec: timeoutNanoseconds % 1_000_000_000
        )
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        let r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nil)
        if r == -ETIME || r == -EINTR { return false }
        guard r >= 0 else { throw Errno(rawValue: -r) }
        return true
    }

    /// Reaps every ready completion, calling `body` for each, without entering the kernel.
    /// Returns how many were reaped.
    @discardableResult
    package func reapCompletions(_ body: (Completion) -> Void) -> Int {
        var count = 0
        while let cqe = clib_io_uring_peek_cqe(&ring) {
            let c = Completion(userData: cqe.pointee.user_data, result: cqe.pointee.res, flags: cqe.pointee.flags)
            io_uring_cqe_seen(&ring, cqe)
            body(c)
            count += 1
        }
        return count
    }

    /// Tears the ring down. Idempotent.
    package func close() {
        guard !isClosed else { return }
        isClosed = true
        io_uring_queue_exit(&ring)
    }

    deinit { close() }
}
