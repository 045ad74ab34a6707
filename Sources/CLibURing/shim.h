// Umbrella header for liburing.
// <features.h> must come first: liburing.h defines _XOPEN_SOURCE/_GNU_SOURCE and
// would otherwise compile glibc's headers a second, incompatible way
// (see shared/platform-notes.md, "clean-build trap").
#include <features.h>
#include <liburing.h>
#include <linux/futex.h>

/// IORING_OP_FUTEX_WAIT (kernel 6.7+). liburing 2.3 predates its prep helper.
#define CLIBURING_OP_FUTEX_WAIT 51
/// futex2 flags: 32-bit word, process-private.
#define CLIBURING_FUTEX2_SIZE_U32 0x02
#define CLIBURING_FUTEX2_PRIVATE 128

/// Fills `sqe` as IORING_OP_FUTEX_WAIT on a 32-bit futex word, private unless `shared`
/// (a word mapped by several processes), the same encoding as liburing 2.5's io_uring_prep_futex_wait.
static inline void clib_io_uring_prep_futex_wait(struct io_uring_sqe *sqe,
                                                 unsigned int *word,
                                                 unsigned long long expected,
                                                 int shared) {
    io_uring_prep_rw(CLIBURING_OP_FUTEX_WAIT, sqe,
                     CLIBURING_FUTEX2_SIZE_U32 | (shared ? 0 : CLIBURING_FUTEX2_PRIVATE),
                     word, 0, expected);
    sqe->addr3 = 0xffffffffULL; /* FUTEX_BITSET_MATCH_ANY */
}

/// Number of completions ready to be reaped without entering the kernel.
static inline unsigned clib_io_uring_cq_ready(const struct io_uring *ring) {
    return io_uring_cq_ready(ring);
}

/// Returns the next ready completion or NULL (the body of io_uring_for_each_cqe).
static inline struct io_uring_cqe *clib_io_uring_peek_cqe(struct io_uring *ring) {
    struct io_uring_cqe *cqe = NULL;
    if (io_uring_peek_cqe(ring, &cqe) != 0) return NULL;
    return cqe;
}
