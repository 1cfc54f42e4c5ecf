/*
 * real.h — the real libc/libpthread entry points, resolved in one place.
 *
 * Both builds find them with dlsym(RTLD_NEXT): the preload library and a
 * program linking libvthread.a (whole-archive, its own definitions first:
 * docs/static-linking.md) both come before libc.  Nothing else in vthread
 * may call dlsym for a libc symbol or reach an interposed symbol by its
 * plain name.
 *
 * vt_real is filled once by vt_real_init(), before the runtime starts, and
 * only read afterwards (no lock needed).
 */
#ifndef VTHREAD_REAL_H
#define VTHREAD_REAL_H

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "vthread_core.h"

/* X(return type, name, (parameters)).  Keep alphabetical within groups. */
#define VT_REAL_FUNCS(X)                                                      \
    /* threads */                                                             \
    X(int, pthread_create, (pthread_t *, const pthread_attr_t *,              \
                            void *(*)(void *), void *))                       \
    X(int, pthread_detach, (pthread_t))                                       \
    X(void, pthread_exit, (void *))                                           \
    X(int, pthread_getattr_np, (pthread_t, pthread_attr_t *))                 \
    X(int, pthread_join, (pthread_t, void **))                                \
    X(int, pthread_tryjoin_np, (pthread_t, void **))                          \
    X(int, pthread_timedjoin_np, (pthread_t, void **,                         \
                                  const struct timespec *))                   \
    X(int, pthread_clockjoin_np, (pthread_t, void **, clockid_t,              \
                                  const struct timespec *))                   \
    X(int, pthread_cancel, (pthread_t))                                       \
    X(int, pthread_kill, (pthread_t, int))                                    \
    X(int, pthread_sigmask, (int, const sigset_t *, sigset_t *))              \
    X(int, sigprocmask, (int, const sigset_t *, sigset_t *))                  \
    X(int, pthread_setname_np, (pthread_t, const char *))                     \
    X(int, pthread_getname_np, (pthread_t, char *, size_t))                   \
    X(int, pthread_setschedparam, (pthread_t, int,                            \
                                   const struct sched_param *))               \
    X(int, pthread_getschedparam, (pthread_t, int *, struct sched_param *))   \
    X(int, pthread_setschedprio, (pthread_t, int))                            \
    X(int, pthread_setaffinity_np, (pthread_t, size_t, const cpu_set_t *))    \
    X(int, pthread_getaffinity_np, (pthread_t, size_t, cpu_set_t *))          \
    X(int, pthread_getcpuclockid, (pthread_t, clockid_t *))                   \
    /* sleeping */                                                            \
    X(int, nanosleep, (const struct timespec *, struct timespec *))           \
    X(int, clock_nanosleep, (clockid_t, int, const struct timespec *,         \
                             struct timespec *))                              \
    X(unsigned, sleep, (unsigned))                                            \
    X(int, usleep, (useconds_t))                                              \
    /* mutexes (process-shared / robust ones are delegated here) */           \
    X(int, pthread_mutex_init, (pthread_mutex_t *,                            \
                                const pthread_mutexattr_t *))                 \
    X(int, pthread_mutex_destroy, (pthread_mutex_t *))                        \
    X(int, pthread_mutex_lock, (pthread_mutex_t *))                           \
    X(int, pthread_mutex_trylock, (pthread_mutex_t *))                        \
    X(int, pthread_mutex_timedlock, (pthread_mutex_t *,                       \
                                     const struct timespec *))                \
    X(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t,            \
                                     const struct timespec *))                \
    X(int, pthread_mutex_unlock, (pthread_mutex_t *))                         \
    X(int, pthread_mutex_consistent, (pthread_mutex_t *))                     \
    /* condition variables (pshared ones are delegated) */                    \
    X(int, pthread_cond_init, (pthread_cond_t *, const pthread_condattr_t *)) \
    X(int, pthread_cond_destroy, (pthread_cond_t *))                          \
    X(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *))          \
    X(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *,      \
                                    const struct timespec *))                 \
    X(int, pthread_cond_clockwait, (pthread_cond_t *, pthread_mutex_t *,      \
                                    clockid_t, const struct timespec *))      \
    X(int, pthread_cond_signal, (pthread_cond_t *))                           \
    X(int, pthread_cond_broadcast, (pthread_cond_t *))                        \
    /* rwlocks, barriers, spinlocks (pshared ones are delegated) */           \
    X(int, pthread_rwlock_init, (pthread_rwlock_t *,                          \
                                 const pthread_rwlockattr_t *))               \
    X(int, pthread_rwlock_destroy, (pthread_rwlock_t *))                      \
    X(int, pthread_rwlock_rdlock, (pthread_rwlock_t *))                       \
    X(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t *))                    \
    X(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t *,                   \
                                        const struct timespec *))             \
    X(int, pthread_rwlock_clockrdlock, (pthread_rwlock_t *, clockid_t,        \
                                        const struct timespec *))             \
    X(int, pthread_rwlock_wrlock, (pthread_rwlock_t *))                       \
    X(int, pthread_rwlock_trywrlock, (pthread_rwlock_t *))                    \
    X(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t *,                   \
                                        const struct timespec *))             \
    X(int, pthread_rwlock_clockwrlock, (pthread_rwlock_t *, clockid_t,        \
                                        const struct timespec *))             \
    X(int, pthread_rwlock_unlock, (pthread_rwlock_t *))                       \
    X(int, pthread_barrier_init, (pthread_barrier_t *,                        \
                                  const pthread_barrierattr_t *, unsigned))   \
    X(int, pthread_barrier_destroy, (pthread_barrier_t *))                    \
    X(int, pthread_barrier_wait, (pthread_barrier_t *))                       \
    /* semaphores (pshared and named ones are delegated) */                   \
    X(int, sem_init, (sem_t *, int, unsigned))                                \
    X(int, sem_destroy, (sem_t *))                                            \
    X(int, sem_wait, (sem_t *))                                               \
    X(int, sem_trywait, (sem_t *))                                            \
    X(int, sem_timedwait, (sem_t *, const struct timespec *))                 \
    X(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *))      \
    X(int, sem_post, (sem_t *))                                               \
    X(int, sem_getvalue, (sem_t *, int *))                                    \
    /* I/O (non-G callers and VTHREAD_DISABLE: glibc's are cancellation     \
     * points, raw system calls would not be) */                              \
    X(ssize_t, read, (int, void *, size_t))                                   \
    X(ssize_t, write, (int, const void *, size_t))                            \
    X(ssize_t, readv, (int, const struct iovec *, int))                       \
    X(ssize_t, writev, (int, const struct iovec *, int))                      \
    X(ssize_t, pread64, (int, void *, size_t, off_t))                         \
    X(ssize_t, pwrite64, (int, const void *, size_t, off_t))                  \
    X(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *,        \
                          socklen_t *))                                       \
    X(ssize_t, recvmsg, (int, struct msghdr *, int))                          \
    X(ssize_t, sendto, (int, const void *, size_t, int,                       \
                        const struct sockaddr *, socklen_t))                  \
    X(ssize_t, sendmsg, (int, const struct msghdr *, int))                    \
    X(int, accept4, (int, struct sockaddr *, socklen_t *, int))               \
    X(int, connect, (int, const struct sockaddr *, socklen_t))                \
    X(int, poll, (struct pollfd *, nfds_t, int))                              \
    X(int, select, (int, fd_set *, fd_set *, fd_set *, struct timeval *))     \
    X(int, epoll_wait, (int, struct epoll_event *, int, int))                 \
    X(int, close, (int))                                                      \
    X(int, fclose, (FILE *))                                                  \
    X(int, pclose, (FILE *))                                                  \
    X(FILE *, freopen, (const char *, const char *, FILE *))                  \
    X(FILE *, freopen64, (const char *, const char *, FILE *))                \
    X(pid_t, wait4, (pid_t, int *, int, struct rusage *))                     \
    X(int, fcntl, (int, int, ...))                                            \
    X(int, ioctl, (int, unsigned long, ...))                                  \
    X(ssize_t, msgrcv, (int, void *, size_t, long, int))                      \
    X(int, msgsnd, (int, const void *, size_t, int))                          \
    X(int, semtimedop, (int, struct sembuf *, size_t,                         \
                        const struct timespec *))                             \
    /* signals */                                                             \
    X(int, sigaction, (int, const struct sigaction *, struct sigaction *))   \
    /* clocks (per-thread CPU clocks of Gs are vthread's) */                  \
    X(int, clock_gettime, (clockid_t, struct timespec *))                     \
    X(int, clock_getres, (clockid_t, struct timespec *))                      \
    X(int, getrusage, (int, struct rusage *))                                 \
    /* process */                                                             \
    X(pid_t, fork, (void))                                                    \
    X(void *, dlopen, (const char *, int))                                    \
    X(void *, dlmopen, (long, const char *, int))

#define VT_REAL_FIELD(ret, name, params) ret(*name) params;
struct vt_real_table {
    VT_REAL_FUNCS(VT_REAL_FIELD)
};
#undef VT_REAL_FIELD

VT_HIDDEN extern struct vt_real_table vt_real;

/* Fills vt_real; a missing symbol is fatal.  Idempotent; called from the
 * runtime's initialisation before anything else. */
VT_HIDDEN void vt_real_init(void);

#endif /* VTHREAD_REAL_H */
