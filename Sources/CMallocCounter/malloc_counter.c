// Counts every call into the C allocator made by this process (the Swift runtime's swift_slowAlloc,
// the concurrency runtime, Foundation, libdispatch...). The executable defines the malloc family;
// with the symbols exported (see Package.swift) the dynamic linker binds every library's calls to
// these definitions ahead of glibc's, and each forwards to glibc's own entry points (__libc_*).
#include "malloc_counter.h"
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static uint64_t calls;
static int enabled;

static inline void count_call(void) {
    if (__atomic_load_n(&enabled, __ATOMIC_RELAXED)) __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
}

uint64_t actorgraph_malloc_calls(void) { return __atomic_load_n(&calls, __ATOMIC_RELAXED); }
void actorgraph_malloc_counting(int on) { __atomic_store_n(&enabled, on, __ATOMIC_RELAXED); }

#ifndef ACTORGRAPH_NO_MALLOC_INTERPOSER
// Sanitizer builds (ACTORGRAPH_SANITIZE, see Package.swift) leave the allocator to the sanitizer:
// its runtime owns malloc, and a second definition makes the executable abort at start.
void *malloc(size_t size) { count_call(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { count_call(); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { count_call(); return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { count_call(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count_call(); return __libc_memalign(alignment, size); }
int posix_memalign(void **result, size_t alignment, size_t size) {
    count_call();
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *result = p;
    return 0;
}
#endif
