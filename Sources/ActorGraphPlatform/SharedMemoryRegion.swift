import CPlatformShims
import Glibc
import Synchronization

/// One anonymous shared-memory region: `memfd_create` + `ftruncate` + `mmap(MAP_SHARED)`.
///
/// The region is zero-filled, page-aligned, optionally bound to a NUMA node, and pre-faulted so that
/// no page fault happens on the hot path. It is unmapped and its descriptor closed by ``close()`` or `deinit`.
/// The memfd has no name in any file system (never under `/dev/shm`): only this process and the
/// children it hands the descriptor to can map it.
///
/// `package`, not `public`: only the engine and this package's tests map regions.
/// `@unchecked Sendable` only because `base` is a raw pointer: every stored property is a constant
/// and the closed flag is atomic. The memory behind `base` is shared on purpose (with the workers and
/// worker processes); every access to it follows the engine's layout and its atomics (`RegionLayout`,
/// `SlotRing`); the engine unmaps it in its `deinit`, which no worker thread outlives (each holds the
/// engine).
package final class SharedMemoryRegion: @unchecked Sendable {
    /// The first byte of the mapping.
    package let base: UnsafeMutableRawPointer
    /// The mapping's size in bytes (a multiple of the page size).
    package let size: Int
    /// The memfd backing the mapping (close-on-exec; a child inherits it only when spawned with it kept).
    package let fileDescriptor: Int32
    /// The NUMA node the pages were bound to, if any.
    package let numaNode: Int?
    private let isClosed = Atomic(false)

    /// Maps a new region of at least `byteCount` bytes named `name` (visible in `/proc/self/maps`).
    /// - Parameters:
    ///   - numaNode: binds the pages to this node with libnuma before they are touched.
    ///   - sealed: seals the memfd against growing and shrinking (`F_SEAL_GROW | F_SEAL_SHRINK |
    ///     F_SEAL_SEAL`), so a process it is shared with cannot truncate it under the others.
    package init(name: String, byteCount: Int, numaNode: Int? = nil, sealed: Bool = false) throws(Errno) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = max(page, (byteCount + page - 1) / page * page)
        let fd = cplatform_memfd_create(name, CPLATFORM_MFD_CLOEXEC | (sealed ? CPLATFORM_MFD_ALLOW_SEALING : 0))
        guard fd >= 0 else { throw Errno(rawValue: -fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = Errno(rawValue: errno)
            Glibc.close(fd)
            throw e
        }
        if sealed {
            let r = cplatform_memfd_seal_size(fd)
            guard r == 0 else {
                Glibc.close(fd)
                throw Errno(rawValue: -r)
            }
        }
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
            mapped != MAP_FAILED
        else {
            let e = Errno(rawValue: errno)
            Glibc.close(fd)
            throw e
        }
        if let node = numaNode, NUMA.isAvailable {
            NUMA.bind(mapped, byteCount: size, toNode: node)
        }
        // Pre-fault every page now, so the hot path never takes a page fault.
        SharedMemoryRegion.prefault(mapped, size: size, page: page)
        self.base = mapped
        self.size = size
        self.fileDescriptor = fd
        self.numaNode = numaNode
    }

    /// Maps the whole of an existing memfd `fd` (inherited from a parent process) and takes
    /// ownership of the descriptor. Pre-faults it like a new region (reads only: the contents stay).
    package init(mapping fd: Int32) throws(Errno) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Errno(rawValue: errno) }
        let size = Int(st.st_size)
        guard size > 0 else { throw Errno.invalidArgument }
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
            mapped != MAP_FAILED
        else {
            throw Errno(rawValue: errno)
        }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var offset = 0
        var sink: UInt8 = 0
        while offset < size {
            sink &+= mapped.load(fromByteOffset: offset, as: UInt8.self)
            offset += page
        }
        withExtendedLifetime(sink) {}
        self.base = mapped
        self.size = size
        self.fileDescriptor = fd
        self.numaNode = nil
    }

    private static func prefault(_ mapped: UnsafeMutableRawPointer, size: Int, page: Int) {
        var offset = 0
        while offset < size {
            mapped.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
            offset += page
        }
    }

    /// The seals on the memfd (`F_GET_SEALS` bits), or `nil` when it cannot be read.
    package var seals: Int32? {
        let r = cplatform_memfd_seals(fileDescriptor)
        return r < 0 ? nil : r
    }

    /// Unmaps the region and closes the memfd. Idempotent.
    package func close() {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        munmap(base, size)
        Glibc.close(fileDescriptor)
    }

    deinit { close() }
}
