/*
 * sem.c — unnamed semaphores (sem_init, sem_destroy, sem_wait,
 * sem_trywait, sem_timedwait, sem_clockwait, sem_post, sem_getvalue) on
 * glibc's 32-byte sem_t.
 *
 * Which semaphores are ours: glibc's struct new_sem keeps, at offset 8, the
 * "private" word it passes to its futex calls, in glibc's own encoding
 * (LLL_PRIVATE = 0, LLL_SHARED = 128 = FUTEX_PRIVATE_FLAG: the lll_futex
 * macros flip the bit).  sem_init(s, 0, v) writes 0; sem_init(s, 1, v) and
 * every named semaphore from sem_open (written into the shared file) have
 * 128.  So 0 means private, ours (also for a zeroed sem_t, as in glibc),
 * and anything else is process-shared and goes to glibc (vt_real): its
 * waiters may sleep in another process, on a shared futex, where only
 * glibc's protocol wakes them.  The value word keeps glibc's encoding too:
 *    data (offset 0, 64 bits) = nwaiters << 32 | value

 * post: CAS value+1 (EOVERFLOW at SEM_VALUE_MAX); if the same atomic
 *       snapshot showed waiters, unpark one.
 * wait: CAS value-1 while value > 0.  Else count ourselves in nwaiters and
 *       park while value == 0 (validate under the bucket lock).  A waiter
 *       counted before a post's CAS is either queued (the post's unpark
 *       finds it) or not yet validated (its validate sees value > 0): no
 *       lost wake-up.  Woken waiters compete with newcomers; a loser parks
 *       again.
 * Waits are interruptible (EINTR, and cancellation points under glibc).
 *
 * Any caller.  sem_post is async-signal-safe as POSIX wants: a handler
 * runs program code only where the interrupted G holds no runtime lock
 * (docs/architecture.md, "Signals").
 */
#include <string.h>

#include "pl.h"

#define PRIVATE_MARK 0 /* glibc's LLL_PRIVATE: a private sem_t */
#define ONE_WAITER ((uint64_t)1 << 32)

struct psem {
    _Atomic uint64_t data;
    int private_;
    int pad;
};
_Static_assert(sizeof(struct psem) <= sizeof(sem_t), "sem_t size");

static inline struct psem *S(sem_t *s) { return (struct psem *)s; }
static inline bool ours(sem_t *s)
{
    return __atomic_load_n(&S(s)->private_, __ATOMIC_RELAXED) ==
               PRIVATE_MARK &&
           pl_on();
}

PL_PUBLIC int sem_init(sem_t *s, int pshared, unsigned value)
{
    if (!pl_on() || pshared)
        return vt_real.sem_init(s, pshared, value);
    if (value > SEM_VALUE_MAX) {
        errno = EINVAL;
        return -1;
    }
    memset(s, 0, sizeof *s);
    atomic_store_explicit(&S(s)->data, value, memory_order_relaxed);
    __atomic_store_n(&S(s)->private_, PRIVATE_MARK, __ATOMIC_RELEASE);
    return 0;
}

PL_PUBLIC int sem_destroy(sem_t *s)
{
    if (!ours(s))
        return vt_real.sem_destroy(s);
    return 0; /* glibc does nothing either */
}

static inline int sem_post_body(sem_t *s)
{
    if (!ours(s))
        return vt_real.sem_post(s);
    _Atomic uint64_t *d = &S(s)->data;
    uint64_t v = atomic_load_explicit(d, memory_order_relaxed);
    do {
        if ((uint32_t)v >= SEM_VALUE_MAX) {
            errno = EOVERFLOW;
            return -1;
        }
    } while (!atomic_compare_exchange_weak_explicit(
        d, &v, v + 1, memory_order_release, memory_order_relaxed));
    if (v >> 32)
        vt_unpark_one(s, NULL, NULL);
    return 0;
}

/* A schedule point after the call: a thread it woke may run first. */
PL_PUBLIC int sem_post(sem_t *s)
{
    int r = sem_post_body(s);
    vt_sched_point();
    return r;
}

static inline bool try_take(_Atomic uint64_t *d)
{
    uint64_t v = atomic_load_explicit(d, memory_order_relaxed);
    while ((uint32_t)v > 0)
        if (atomic_compare_exchange_weak_explicit(
                d, &v, v - 1, memory_order_acquire, memory_order_relaxed))
            return true;
    return false;
}

static bool wait_validate(void *p)
{
    return (uint32_t)atomic_load(&S(p)->data) == 0;
}

/* Returns 0 or an errno value. */
static int wait_slow(sem_t *s, int64_t deadline)
{
    _Atomic uint64_t *d = &S(s)->data;
    pl_testcancel(); /* the blocking path is a cancellation point (glibc) */
    atomic_fetch_add(d, ONE_WAITER);
    int err = 0;
    while (!try_take(d)) {
        vt_set_wait_reason("semaphore");
        int r = vt_park(s, wait_validate, NULL, s, deadline,
                        VT_PARK_INTERRUPTIBLE, 0, NULL);
        if (r == VT_PARK_TIMEOUT) {
            err = ETIMEDOUT;
            break;
        }
        /* A signal handler that ran ends the wait with EINTR, as glibc's
         * futex waits do: an untimed one goes on under SA_RESTART (the
         * kernel restarts it), a timed one never does; nothing ran: wait
         * on. */
        if (r == VT_PARK_INTERRUPTED) {
            /* not counted as a waiter while a cancellation may unwind */
            atomic_fetch_sub(d, ONE_WAITER);
            int ir = pl_interrupted();
            atomic_fetch_add(d, ONE_WAITER);
            if (ir == PL_INTR_EINTR || (ir == PL_INTR_RESTART && deadline)) {
                err = EINTR;
                break;
            }
        }
    }
    atomic_fetch_sub(d, ONE_WAITER);
    return err;
}

static int ret_err(int err)
{
    if (!err)
        return 0;
    errno = err;
    return -1;
}

PL_PUBLIC int sem_wait(sem_t *s)
{
    vt_sched_point();
    if (!ours(s)) {
        vt_syscall_enter();
        int r = vt_real.sem_wait(s);
        vt_syscall_exit();
        return r;
    }
    if (try_take(&S(s)->data))
        return 0;
    return ret_err(wait_slow(s, 0));
}

PL_PUBLIC int sem_trywait(sem_t *s)
{
    vt_sched_point();
    if (!ours(s))
        return vt_real.sem_trywait(s);
    return try_take(&S(s)->data) ? 0 : ret_err(EAGAIN);
}

static int timed(sem_t *s, clockid_t clk, const struct timespec *abstime)
{
    /* glibc checks the clock and the timeout before trying. */
    if (!pl_futex_clock_ok(clk) || !pl_ts_valid(abstime))
        return ret_err(EINVAL);
    if (try_take(&S(s)->data))
        return 0;
    return ret_err(wait_slow(s, pl_deadline_abs(clk, abstime)));
}

PL_PUBLIC int sem_timedwait(sem_t *s, const struct timespec *abstime)
{
    vt_sched_point();
    if (!ours(s)) {
        vt_syscall_enter();
        int r = vt_real.sem_timedwait(s, abstime);
        vt_syscall_exit();
        return r;
    }
    return timed(s, CLOCK_REALTIME, abstime);
}

PL_PUBLIC int sem_clockwait(sem_t *s, clockid_t clk,
                            const struct timespec *abstime)
{
    vt_sched_point();
    if (!ours(s)) {
        vt_syscall_enter();
        int r = vt_real.sem_clockwait(s, clk, abstime);
        vt_syscall_exit();
        return r;
    }
    return timed(s, clk, abstime);
}

PL_PUBLIC int sem_getvalue(sem_t *s, int *value)
{
    if (!ours(s))
        return vt_real.sem_getvalue(s, value);
    *value = (int)(uint32_t)atomic_load(&S(s)->data);
    return 0;
}
