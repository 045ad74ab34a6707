// Small helpers Swift cannot express directly. Header-only: every function is static inline.
#include <features.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <time.h>
#include <errno.h>

/// The spin-loop hint (x86 `pause`): lets the sibling hyper-thread run and saves power while spinning.
static inline void cplatform_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// futex(FUTEX_WAIT[_PRIVATE]). Returns 0 or -errno. `timeout_ns` < 0 waits forever.
/// `shared` != 0 uses a shared futex (the word is in memory mapped by several processes).
static inline int cplatform_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns, int shared) {
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, word, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    return r == -1 ? -errno : 0;
}

/// futex(FUTEX_WAKE[_PRIVATE]). Returns the number of woken threads or -errno.
static inline int cplatform_futex_wake(uint32_t *word, int count, int shared) {
    long r = syscall(SYS_futex, word, shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
    return r == -1 ? -errno : (int)r;
}

/// Monotonic clock in nanoseconds (vDSO, no syscall).
static inline uint64_t cplatform_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}


/// memfd_create(2) through syscall(2): glibc declares it only under _GNU_SOURCE. Returns fd or -errno.
static inline int cplatform_memfd_create(const char *name, unsigned int flags) {
    long r = syscall(SYS_memfd_create, name, flags);
    return r == -1 ? -errno : (int)r;
}
#define CPLATFORM_MFD_CLOEXEC 0x0001U
#define CPLATFORM_MFD_ALLOW_SEALING 0x0002U


/// Lets the calling thread run on any of `cpus` (sched_setaffinity on tid 0). Returns 0 or -errno.
static inline int cplatform_set_current_thread_affinity(const int *cpus, int count) {
    unsigned long mask[16] = {0};
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= 1024) return -EINVAL;
        mask[cpus[i] / 64] |= 1UL << (cpus[i] % 64);
    }
    long r = syscall(SYS_sched_setaffinity, 0, sizeof(mask), mask);
    return r == -1 ? -errno : 0;
}

/// Pins thread `tid` (of any process this one may schedule; 0: the calling thread) to one CPU.
/// Returns 0 or -errno.
static inline int cplatform_pin_thread(int tid, int cpu) {
    unsigned long mask[16] = {0};
    if (tid < 0 || cpu < 0 || cpu >= 1024) return -EINVAL;
    mask[cpu / 64] |= 1UL << (cpu % 64);
    long r = syscall(SYS_sched_setaffinity, tid, sizeof(mask), mask);
    return r == -1 ? -errno : 0;
}

/// Pins the calling thread to one CPU. Returns 0 or -errno.
static inline int cplatform_pin_current_thread(int cpu) {
    return cplatform_pin_thread(0, cpu);
}

/// The calling thread's id (gettid(2)).
static inline int cplatform_current_thread_id(void) {
    return (int)syscall(SYS_gettid);
}

/// The CPU the calling thread runs on (getcpu(2)), or -1.
int sched_getcpu(void); // glibc; declared here so that no _GNU_SOURCE is needed
static inline int cplatform_current_cpu(void) {
    // glibc reads it from the thread's rseq area (or the vDSO): no system call, a few ns.
    return sched_getcpu();
}

/// Names the calling thread (prctl PR_SET_NAME, at most 15 bytes kept).
#include <sys/prctl.h>
static inline void cplatform_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

/// Writes the CPUs in the calling thread's affinity mask to `out` (ascending), returns how many, or -errno.
static inline int cplatform_allowed_cpus(int *out, int max) {
    unsigned long mask[16] = {0};
    long r = syscall(SYS_sched_getaffinity, 0, sizeof(mask), mask);
    if (r == -1) return -errno;
    int n = 0;
    for (int cpu = 0; cpu < 1024 && n < max; cpu++) {
        if (mask[cpu / 64] & (1UL << (cpu % 64))) out[n++] = cpu;
    }
    return n;
}

/// Sets the calling thread's timer slack (prctl PR_SET_TIMERSLACK): 1 makes nanosleep precise.
static inline void cplatform_set_timer_slack(unsigned long nanoseconds) {
    prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}
