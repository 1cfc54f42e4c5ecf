/*
 * cond.c — pthread_cond_* on glibc's 48-byte pthread_cond_t.
 *
 * Which condvars are ours.  pthread_cond_init is glibc's own (pure data:
 * it zeroes the object and sets two bits of __wrefs, offset 36: bit 0 =
 * process-shared, bit 1 = CLOCK_MONOTONIC).  A process-shared condvar is
 * glibc's and every operation on it goes to glibc; all others, including
 * PTHREAD_COND_INITIALIZER (all zero: private, CLOCK_REALTIME), are ours.
 * Of glibc's layout we keep only those two bits; the first 8 bytes hold
 *
 *    waiters  the mutex of the current waiters, tagged with bit 0 when that
 *             mutex is not one of ours (delegated to glibc), or 0 when no
 *             waiter is queued.  Set by every waiter's validate callback
 *             and cleared by an unpark callback when the queue empties,
 *             both under the condvar address's bucket lock; after a
 *             timeout or a broadcast it may be left set with nobody queued
 *             (then the next signal's callback clears it).
 *
 * The protocol (no sequence number is needed: the parking lot's queue,
 * guarded by its bucket lock, is the state):
 *   wait:    1. park on the condvar address; validate (bucket locked)
 *               records `waiters` and always agrees to sleep;
 *            2. before_sleep, i.e. once queued: unlock the mutex.  So a
 *               signaller that took the mutex after we released it finds
 *               us queued: no lost wake-up;
 *            3. when woken (or timed out, or interrupted): relock the
 *               mutex, unless step 2 never ran (an expired deadline or a
 *               pending interrupt returns before queueing, mutex held).
 *   signal:  if `waiters` is 0, nobody waits: return.  Else unpark the
 *            oldest waiter; the callback clears `waiters` if it was the
 *            last.
 *   broadcast: wake one waiter and move all others onto the mutex's queue
 *            (vt_unpark_requeue): they will be woken one by one by unlocks
 *            instead of all stampeding for the mutex.  Then restore the
 *            mutex's "PARKED" invariant (pl_mutex_after_requeue).  With a
 *            mutex we do not own (delegated to glibc) waiters cannot wait
 *            on its queue: wake them all instead.
 * Condvar waiters park with token 0, which tells the mutex's unlock never
 * to hand the lock directly to a requeued condvar waiter: it competes.
 *
 * A process-shared condvar used with one of OUR mutexes cannot be given to
 * glibc as is (glibc's wait would unlock and relock our mutex word with its
 * own protocol).  Such a wait holds a glibc "interlock" mutex, chosen by
 * hashing the condvar, across "unlock our mutex; enter glibc's wait", and
 * signal/broadcast of a process-shared condvar pass through that interlock
 * before calling glibc: a signaller that saw our mutex released therefore
 * finds the waiter inside glibc's wait.  (Signallers in other processes do
 * not know the interlock; they must use a process-shared mutex anyway.)
 *
 * Any caller (Gs park; others block on a futex in the parking lot).
 * Waits are interruptible (cancellation, signals): an interrupted wait is a
 * spurious wake-up, which POSIX allows.
 */
#include <string.h>

#include "pl.h"

#define TAG_FOREIGN 1u

static inline _Atomic uintptr_t *waiters_of(pthread_cond_t *c)
{
    return (_Atomic uintptr_t *)(void *)c;
}
static inline unsigned wrefs(const pthread_cond_t *c)
{
    return __atomic_load_n(&c->__data.__wrefs, __ATOMIC_RELAXED);
}
static inline bool cond_shared(const pthread_cond_t *c)
{
    return wrefs(c) & PL_COND_SHARED_MASK;
}

/* ------------------------------------------------- interlock (pshared) */
#define NINTERLOCK 64
static pthread_mutex_t interlock[NINTERLOCK] = {
    [0 ... NINTERLOCK - 1] = PTHREAD_MUTEX_INITIALIZER};
static pthread_mutex_t *interlock_of(const void *c)
{
    uintptr_t a = (uintptr_t)c;
    return &interlock[((a >> 4) ^ (a >> 12)) % NINTERLOCK];
}

/* glibc may block the M in the kernel: tell the scheduler. */
static int shared_wait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                       const struct timespec *abstime, bool timed)
{
    if (!pl_mutex_is_ours(m)) {
        vt_syscall_enter();
        int r = !timed ? vt_real.pthread_cond_wait(c, m)
                       : vt_real.pthread_cond_clockwait(c, m, clk, abstime);
        vt_syscall_exit();
        return r;
    }
    pthread_mutex_t *il = interlock_of(c);
    vt_syscall_enter();
    vt_real.pthread_mutex_lock(il);
    vt_syscall_exit();
    int r = pl_mutex_cond_unlock(m);
    if (r) {
        vt_real.pthread_mutex_unlock(il);
        return r;
    }
    vt_syscall_enter();
    r = !timed ? vt_real.pthread_cond_wait(c, il)
               : vt_real.pthread_cond_clockwait(c, il, clk, abstime);
    vt_real.pthread_mutex_unlock(il);
    vt_syscall_exit();
    int r2 = pl_mutex_cond_lock(m);
    return r2 ? r2 : r;
}

static void shared_interlock_pass(pthread_cond_t *c)
{
    pthread_mutex_t *il = interlock_of(c);
    vt_syscall_enter();
    vt_real.pthread_mutex_lock(il);
    vt_real.pthread_mutex_unlock(il);
    vt_syscall_exit();
}

/* ----------------------------------------------------------------- wait */

struct wait_ctx {
    pthread_cond_t *c;
    pthread_mutex_t *m;
    uintptr_t tag;       /* m | TAG_FOREIGN if not ours */
    int err;             /* unlock's result */
    bool unlocked;       /* before_sleep released the mutex */
};

static bool wait_validate(void *p)
{
    struct wait_ctx *x = p;
    atomic_store(waiters_of(x->c), x->tag);
    return true;
}

static void wait_before_sleep(void *p)
{
    struct wait_ctx *x = p;
    x->err = pl_mutex_cond_unlock(x->m);
    x->unlocked = x->err == 0;
}

/* glibc returns EPERM from a wait whose mutex unlock fails.  We must know
 * before queueing (a failed unlock in before_sleep would leave us asleep
 * holding the mutex): for the kinds whose unlock checks ownership
 * (errorcheck, recursive, and every robust mutex), the caller must be the
 * owner. */
static int check_owner(pthread_mutex_t *m)
{
    int kind = __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
    if (kind == -1)
        return EINVAL; /* destroyed: what glibc's unlock would report */
    int type = kind & PL_MUTEX_KIND_MASK;
    if (type != PTHREAD_MUTEX_RECURSIVE_NP &&
        type != PTHREAD_MUTEX_ERRORCHECK_NP && !(kind & PL_MUTEX_ROBUST))
        return 0;
    int owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
    return (owner & 0x3fffffff) == pl_tid() ? 0 : EPERM;
}

static int wait_ours(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                     const struct timespec *abstime)
{
    int err = check_owner(m);
    if (err)
        return err;
    pl_testcancel(); /* a cancellation point; the mutex is held */
    struct wait_ctx x = {
        .c = c,
        .m = m,
        .tag = (uintptr_t)m | (pl_mutex_is_ours(m) ? 0 : TAG_FOREIGN),
    };
    int64_t deadline = abstime ? pl_deadline_abs(clk, abstime) : 0;
    vt_set_wait_reason("condition variable");
    int r = vt_park(c, wait_validate, wait_before_sleep, &x, deadline,
                    VT_PARK_INTERRUPTIBLE, 0, NULL);
    if (x.err)
        return x.err;
    if (x.unlocked) {
        err = pl_mutex_cond_lock(m);
        if (err)
            return err; /* e.g. EOWNERDEAD from a robust mutex */
    }
    /* Cancellation and signal handlers act with the mutex held (POSIX);
     * a handler that ran makes this a spurious wake-up. */
    if (r == VT_PARK_INTERRUPTED)
        (void)pl_interrupted();
    return r == VT_PARK_TIMEOUT ? ETIMEDOUT : 0;
}

/* --------------------------------------------------------------- public */

PL_PUBLIC int pthread_cond_init(pthread_cond_t *c,
                                const pthread_condattr_t *attr)
{
    return vt_real.pthread_cond_init(c, attr);
}

PL_PUBLIC int pthread_cond_destroy(pthread_cond_t *c)
{
    if (cond_shared(c) || !pl_on())
        return vt_real.pthread_cond_destroy(c);
    /* Woken waiters never touch the condvar again (only the mutex), so
     * there is nothing to wait for, unlike glibc's destroy. */
    return 0;
}

PL_PUBLIC int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    vt_sched_point();
    if (!pl_on())
        return vt_real.pthread_cond_wait(c, m);
    if (cond_shared(c))
        return shared_wait(c, m, CLOCK_REALTIME, NULL, false);
    return wait_ours(c, m, CLOCK_REALTIME, NULL);
}

PL_PUBLIC int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                     const struct timespec *abstime)
{
    vt_sched_point();
    if (!pl_on())
        return vt_real.pthread_cond_timedwait(c, m, abstime);
    if (!pl_ts_valid(abstime))
        return EINVAL;
    clockid_t clk = (wrefs(c) & PL_COND_CLOCK_MONOTONIC_MASK)
                        ? CLOCK_MONOTONIC
                        : CLOCK_REALTIME;
    if (cond_shared(c))
        return shared_wait(c, m, clk, abstime, true);
    return wait_ours(c, m, clk, abstime);
}

PL_PUBLIC int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m,
                                     clockid_t clk,
                                     const struct timespec *abstime)
{
    vt_sched_point();
    if (!pl_on())
        return vt_real.pthread_cond_clockwait(c, m, clk, abstime);
    if (!pl_futex_clock_ok(clk) || !pl_ts_valid(abstime))
        return EINVAL;
    if (cond_shared(c))
        return shared_wait(c, m, clk, abstime, true);
    return wait_ours(c, m, clk, abstime);
}

/* Callback of signal: clear `waiters` if the queue is now empty (bucket
 * locked, so no waiter can be validating concurrently). */
static uintptr_t signal_cb(void *p, struct vt_unpark_info *info)
{
    if (!info->more_waiters)
        atomic_store(waiters_of(p), 0);
    return 0;
}

static inline int pthread_cond_signal_body(pthread_cond_t *c)
{
    if (!pl_on())
        return vt_real.pthread_cond_signal(c);
    if (cond_shared(c)) {
        shared_interlock_pass(c);
        return vt_real.pthread_cond_signal(c);
    }
    if (!atomic_load(waiters_of(c)))
        return 0;
    vt_unpark_one(c, signal_cb, c);
    return 0;
}

/* A schedule point after the call: a thread it woke may run first. */
PL_PUBLIC int pthread_cond_signal(pthread_cond_t *c)
{
    int r = pthread_cond_signal_body(c);
    vt_sched_point();
    return r;
}

static inline int pthread_cond_broadcast_body(pthread_cond_t *c)
{
    if (!pl_on())
        return vt_real.pthread_cond_broadcast(c);
    if (cond_shared(c)) {
        shared_interlock_pass(c);
        return vt_real.pthread_cond_broadcast(c);
    }
    uintptr_t tag = atomic_load(waiters_of(c));
    if (!tag)
        return 0;
    if (tag & TAG_FOREIGN) {
        vt_unpark_all(c);
        return 0;
    }
    pthread_mutex_t *m = (pthread_mutex_t *)tag;
    /* m may be stale (its waiters timed out and it was freed): touch it
     * only if waiters were moved onto it, which then still need it. */
    unsigned n = vt_unpark_requeue(c, m, 1, UINT_MAX);
    if (n > 1)
        pl_mutex_after_requeue(m);
    else if (n == 0)
        vt_unpark_one(c, signal_cb, c); /* clear a stale `waiters` */
    return 0;
}

PL_PUBLIC int pthread_cond_broadcast(pthread_cond_t *c)
{
    int r = pthread_cond_broadcast_body(c);
    vt_sched_point();
    return r;
}
