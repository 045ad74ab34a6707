#ifndef ACTORGRAPH_MALLOC_COUNTER_H
#define ACTORGRAPH_MALLOC_COUNTER_H
#include <stdint.h>

/// Calls into the C allocator (malloc, calloc, realloc, memalign, aligned_alloc, posix_memalign)
/// counted since counting was enabled. Whole process, all threads.
uint64_t actorgraph_malloc_calls(void);

/// Turns counting on (1) or off (0). Off, each call costs one relaxed load.
void actorgraph_malloc_counting(int enabled);

#endif
