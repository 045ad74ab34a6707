import CPlatformShims
import Glibc

/// One anonymous shared-memory region: `memfd_create` + `ftruncate` + `mmap(MAP_SHARED)`.
///
/// The region is zero-filled, page-aligned, optionally bound to a NUMA node, and pre-faulted so that
/// no page fault happens on the hot path. It is unmapped and its descriptor closed by ``close()`` or `deinit`.
public final class SharedMemoryRegion: @unchecked Sendable {
    /// The first byte of the mapping.
    public let base: UnsafeMutableRawPointer
    /// The mapping's size in bytes (a multiple of the page size).
    public let size: Int
    /// The memfd backing the mapping (other processes could map it through `/proc/self/fd`).
    public let fileDescriptor: Int32
    /// The NUMA node the pages were bound to, if any.
    public let numaNode: Int?
    private var isClosed = false

    /// Maps a new region of at least `byteCount` bytes named `name` (visible in `/proc/self/maps`).
    /// - Parameter numaNode: binds the pages to this node with libnuma before they are touched.
    public init(name: String, byteCount: Int, numaNode: Int? = nil) throws(Errno) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = max(page, (byteCount + page - 1) / page * page)
        let fd = cplatform_memfd_create(name, CPLATFORM_MFD_CLOEXEC)
        guard fd >= 0 else { throw Errno(rawValue: -fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = Errno(rawValue: errno)
            Glibc.close(fd)
            throw e
        }
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
              mapped != MAP_FAILED else {
            let e = Errno(rawValue: errno)
            Glibc.close(fd)
            throw e
        }
        if let node = numaNode, NUMA.isAvailable {
            NUMA.bind(mapped, byteCount: size, toNode: node)
        }
        // Pre-fault every page now, so the hot path never takes a page fault.
        var offset = 0
        while offset < size {
            mapped.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
            offset += page
        }
        self.base = mapped
        self.size = size
        self.fileDescriptor = fd
        self.numaNode = numaNode
    }

    /// Unmaps the region and closes the memfd. Idempotent.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        munmap(base, size)
        Glibc.close(fileDescriptor)
    }

    deinit { close() }
}
