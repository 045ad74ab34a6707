// Process helpers for isolated workers: posix_spawn with inherited descriptors, pidfds, memfd
// seals, eventfds, parent-death signal, timed join. Header-only: every function is static inline.
// Constants glibc only declares under _GNU_SOURCE are spelled out here (the module must not
// define feature macros, see the clean-build trap in shared/platform-notes.md).
#include <features.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <pthread.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/types.h>

#define CPLATFORM_F_ADD_SEALS 1033
#define CPLATFORM_F_GET_SEALS 1034
#define CPLATFORM_F_SEAL_SEAL 0x0001
#define CPLATFORM_F_SEAL_SHRINK 0x0002
#define CPLATFORM_F_SEAL_GROW 0x0004
#define CPLATFORM_P_PIDFD 3

extern int fcntl(int fd, int cmd, ...);
extern int pthread_timedjoin_np(pthread_t thread, void **retval, const struct timespec *abstime);

/// Seals a memfd against growing, shrinking and further sealing. Returns 0 or -errno.
static inline int cplatform_memfd_seal_size(int fd) {
    int r = fcntl(fd, CPLATFORM_F_ADD_SEALS, CPLATFORM_F_SEAL_GROW | CPLATFORM_F_SEAL_SHRINK | CPLATFORM_F_SEAL_SEAL);
    return r == -1 ? -errno : 0;
}

/// The seals of a memfd, or -errno.
static inline int cplatform_memfd_seals(int fd) {
    int r = fcntl(fd, CPLATFORM_F_GET_SEALS);
    return r == -1 ? -errno : r;
}

/// Whether `fd` is open in this process (F_GETFD).
static inline int cplatform_fd_is_open(int fd) { return fcntl(fd, 1 /* F_GETFD */) != -1; }

/// pidfd_open(2). Returns the pidfd (close-on-exec) or -errno.
static inline int cplatform_pidfd_open(pid_t pid) {
    long r = syscall(SYS_pidfd_open, pid, 0);
    return r == -1 ? -errno : (int)r;
}

/// pidfd_send_signal(2). Returns 0 or -errno.
static inline int cplatform_pidfd_send_signal(int pidfd, int sig) {
    long r = syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
    return r == -1 ? -errno : 0;
}

/// waitid(P_PIDFD, pidfd, WEXITED [| WNOHANG]): reaps the child. Returns its pid, 0 when it is still
/// running (nohang), or -errno. `code` gets si_code (CLD_EXITED, CLD_KILLED, CLD_DUMPED), `status` si_status.
static inline int cplatform_waitid_pidfd(int pidfd, int nohang, int *code, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int r = waitid((idtype_t)CPLATFORM_P_PIDFD, (id_t)pidfd, &info, WEXITED | (nohang ? WNOHANG : 0));
    if (r == -1) return -errno;
    *code = info.si_code;
    *status = info.si_status;
    return (int)info.si_pid;
}

/// waitid(P_PIDFD, pidfd, WSTOPPED | WNOHANG | WNOWAIT): whether the child is stopped now (by a
/// job-control signal), without consuming the report. Returns the pid (and the stopping signal in
/// *signal) when stopped, 0 when not, or -errno.
static inline int cplatform_waitid_pidfd_stopped(int pidfd, int *signal) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int r = waitid((idtype_t)CPLATFORM_P_PIDFD, (id_t)pidfd, &info, WSTOPPED | WNOHANG | WNOWAIT);
    if (r == -1) return -errno;
    if (info.si_pid == 0 || info.si_code != CLD_STOPPED) return 0;
    *signal = info.si_status;
    return (int)info.si_pid;
}

/// eventfd2(0, EFD_CLOEXEC | EFD_NONBLOCK). Returns the fd or -errno.
static inline int cplatform_eventfd(void) {
    long r = syscall(SYS_eventfd2, 0, 02000000 /* EFD_CLOEXEC */ | 04000 /* EFD_NONBLOCK */);
    return r == -1 ? -errno : (int)r;
}

/// prctl(PR_SET_PDEATHSIG, sig). Returns 0 or -errno.
static inline int cplatform_set_parent_death_signal(int sig) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0) == -1 ? -errno : 0;
}

/// posix_spawn of `path` with `argv`/`envp`; each descriptor in `keep` is inherited even though it is
/// close-on-exec here (posix_spawn_file_actions_adddup2(fd, fd) clears FD_CLOEXEC in the child only).
/// The child starts with an empty signal mask and default dispositions. Returns 0 or an errno.
static inline int cplatform_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                                  const int *keep, int nkeep) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int r = posix_spawn_file_actions_init(&actions);
    if (r != 0) return r;
    for (int i = 0; i < nkeep && r == 0; i++) r = posix_spawn_file_actions_adddup2(&actions, keep[i], keep[i]);
    if (r != 0) { posix_spawn_file_actions_destroy(&actions); return r; }
    r = posix_spawnattr_init(&attr);
    if (r != 0) { posix_spawn_file_actions_destroy(&actions); return r; }
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    r = posix_spawn(pid, path, &actions, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    return r;
}

/// pthread_join with a deadline `timeout_ns` from now (CLOCK_REALTIME, as the call requires).
/// Returns 0 when joined, ETIMEDOUT when the thread is still running, or another errno.
static inline int cplatform_timed_join(pthread_t thread, int64_t timeout_ns) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + timeout_ns % 1000000000LL;
    ts.tv_sec += timeout_ns / 1000000000LL + ns / 1000000000LL;
    ts.tv_nsec = ns % 1000000000LL;
    return pthread_timedjoin_np(thread, NULL, &ts);
}
