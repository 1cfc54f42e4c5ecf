/*
 * rwlock.c — pthread_rwlock_* on glibc's 56-byte pthread_rwlock_t.
 *
 * Which rwlocks are ours: pthread_rwlock_init and _destroy are glibc's
 * (pure data: zero the object, __flags = the kind, __shared = 1 for a
 * process-shared lock).  A process-shared rwlock (__shared != 0) is glibc's
 * entirely; every other one, including PTHREAD_RWLOCK_INITIALIZER and
 * PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP, is ours.  Of glibc's
 * layout we keep __flags (offset 48, the kind), __shared (28) and
 * __cur_writer (24: the tid of the writer, for glibc's EDEADLK checks);
 * the first word (__readers) is our state:
 *
 *    WLOCK (1)   a writer holds the lock.
 *    RPARK (2)   readers may be parked on key R (the rwlock's address).
 *    WPARK (4)   writers may be parked on key W (the address of __writers).
 *    bits 3..30  the number of readers holding the lock (bit 31 stays 0:
 *                EAGAIN beyond, as glibc's reader overflow).
 *
 * Kinds (pthread_rwlockattr_setkind_np): PREFER_READER_NP (default) and
 * PREFER_WRITER_NP — which glibc treats as PREFER_READER — let a reader in
 * whenever no writer holds the lock; PREFER_WRITER_NONRECURSIVE_NP also
 * blocks new readers while a writer waits (WPARK), so a reader that already
 * holds a read lock and asks again may deadlock, as under glibc.
 *
 * Invariants, as in mutex.c: a reader parks only if its validate (under
 * R's bucket lock) sees itself blocked and RPARK set; a writer only if it
 * sees itself blocked and WPARK set.  RPARK is cleared just before waking
 * all readers (so a reader validating after the clear retries instead of
 * sleeping); WPARK is cleared by the unpark callback of a writer wake-up
 * when no writer is left queued.  Stale bits (timeouts) cost a slow path.
 *
 * When the lock becomes free (last reader or the writer leaves) with
 * waiters, wake_after_free applies the kind's preference: wake one writer,
 * or all readers; if the preferred side had nobody queued, the other.
 *
 * A writer that times out may leave WPARK set with no writer left, which
 * in writer-preference mode would hold new readers back for as long as
 * the current readers keep the lock: writer_gave_up cleans it up.
 *
 * Any caller; not interruptible (glibc's rwlock waits are no cancellation
 * points).
 */
#include "pl.h"

#define WLOCK 1u
#define RPARK 2u
#define WPARK 4u
#define ONE_READER 8u
#define READERS(s) (((s) >> 3) & 0x0fffffffu)
#define MAX_READERS 0x0fffffffu

static inline _Atomic unsigned *st(pthread_rwlock_t *rw)
{
    return (_Atomic unsigned *)&rw->__data.__readers;
}
static inline const void *rkey(pthread_rwlock_t *rw) { return rw; }
static inline const void *wkey(pthread_rwlock_t *rw)
{
    return &rw->__data.__writers;
}
static inline bool ours(pthread_rwlock_t *rw)
{
    return __atomic_load_n(&rw->__data.__shared, __ATOMIC_RELAXED) == 0 &&
           pl_on();
}
static inline bool prefer_writer(pthread_rwlock_t *rw)
{
    return __atomic_load_n(&rw->__data.__flags, __ATOMIC_RELAXED) ==
           PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}
static inline int cur_writer(pthread_rwlock_t *rw)
{
    return __atomic_load_n(&rw->__data.__cur_writer, __ATOMIC_RELAXED);
}

static inline bool rd_blocked(unsigned s, bool pw)
{
    return (s & WLOCK) || (pw && (s & WPARK));
}
static inline bool wr_blocked(unsigned s)
{
    return (s & WLOCK) || READERS(s);
}

static bool rd_validate(void *p)
{
    pthread_rwlock_t *rw = p;
    unsigned s = atomic_load_explicit(st(rw), memory_order_relaxed);
    return rd_blocked(s, prefer_writer(rw)) && (s & RPARK);
}

static bool wr_validate(void *p)
{
    pthread_rwlock_t *rw = p;
    unsigned s = atomic_load_explicit(st(rw), memory_order_relaxed);
    return wr_blocked(s) && (s & WPARK);
}

/* ---------------------------------------------------------------- wakes */

static bool wake_readers(pthread_rwlock_t *rw)
{
    unsigned prev = atomic_fetch_and(st(rw), ~RPARK);
    if (!(prev & RPARK))
        return false;
    return vt_unpark_all(rkey(rw)) > 0;
}

/* Bucket of W locked: clear WPARK if no writer stays queued. */
static uintptr_t wpark_cb(void *p, struct vt_unpark_info *info)
{
    if (!info->more_waiters)
        atomic_fetch_and(st(p), ~WPARK);
    return 0;
}

static bool wake_writer(pthread_rwlock_t *rw)
{
    if (!(atomic_load(st(rw)) & WPARK))
        return false;
    return vt_unpark_one(wkey(rw), wpark_cb, rw) > 0;
}

static void wake_after_free(pthread_rwlock_t *rw)
{
    if (prefer_writer(rw)) {
        if (!wake_writer(rw))
            wake_readers(rw);
    } else {
        if (!wake_readers(rw))
            wake_writer(rw);
    }
}

static void writer_gave_up(pthread_rwlock_t *rw)
{
    /* Wakes another queued writer (it re-parks if still blocked, setting
     * WPARK again), or clears WPARK when none is left; then readers that a
     * stale WPARK held back may go. */
    if (vt_unpark_one(wkey(rw), wpark_cb, rw) == 0 &&
        !(atomic_load(st(rw)) & WLOCK))
        wake_readers(rw);
}

/* ---------------------------------------------------------------- locks */

static void spin_a_little(void)
{
    for (int i = 0; i < 30; i++)
        pl_relax();
}

static int rdlock(pthread_rwlock_t *rw, int64_t deadline, bool try)
{
    bool pw = prefer_writer(rw);
    int spins = 0;
    for (;;) {
        unsigned s = atomic_load_explicit(st(rw), memory_order_relaxed);
        if (!rd_blocked(s, pw)) {
            if (READERS(s) >= MAX_READERS)
                return EAGAIN;
            if (atomic_compare_exchange_weak_explicit(
                    st(rw), &s, s + ONE_READER, memory_order_acquire,
                    memory_order_relaxed))
                return 0;
            continue;
        }
        if (try)
            return EBUSY;
        if (!(s & RPARK)) {
            if (spins++ < 4) {
                spin_a_little();
                continue;
            }
            if (!atomic_compare_exchange_weak(st(rw), &s, s | RPARK))
                continue;
        }
        vt_set_wait_reason("rwlock (read)");
        int r = vt_park(rkey(rw), rd_validate, NULL, rw, deadline,
                        VT_PARK_INTERRUPTIBLE, 0, NULL);
        if (r == VT_PARK_TIMEOUT)
            return ETIMEDOUT;
        if (r == VT_PARK_INTERRUPTED)
            pl_wait_interrupted(); /* handlers run; the wait goes on */
        spins = 0;
    }
}

static int wrlock(pthread_rwlock_t *rw, int64_t deadline, bool try)
{
    int spins = 0;
    for (;;) {
        unsigned s = atomic_load_explicit(st(rw), memory_order_relaxed);
        if (!wr_blocked(s)) {
            if (atomic_compare_exchange_weak_explicit(
                    st(rw), &s, s | WLOCK, memory_order_acquire,
                    memory_order_relaxed)) {
                __atomic_store_n(&rw->__data.__cur_writer, pl_tid(),
                                 __ATOMIC_RELAXED);
                return 0;
            }
            continue;
        }
        if (try)
            return EBUSY;
        if (!(s & WPARK)) {
            if (spins++ < 4) {
                spin_a_little();
                continue;
            }
            if (!atomic_compare_exchange_weak(st(rw), &s, s | WPARK))
                continue;
        }
        vt_set_wait_reason("rwlock (write)");
        int r = vt_park(wkey(rw), wr_validate, NULL, rw, deadline,
                        VT_PARK_INTERRUPTIBLE, 0, NULL);
        if (r == VT_PARK_TIMEOUT) {
            writer_gave_up(rw);
            return ETIMEDOUT;
        }
        if (r == VT_PARK_INTERRUPTED)
            pl_wait_interrupted(); /* handlers run; the wait goes on */
        spins = 0;
    }
}

/* The checks glibc makes before anything else: the timeout (if any), then
 * "the caller holds the write lock" (EDEADLK). */
static int pre_checks(pthread_rwlock_t *rw, clockid_t clk,
                      const struct timespec *abstime, int64_t *deadline)
{
    *deadline = 0;
    if (abstime) {
        if (!pl_futex_clock_ok(clk) || !pl_ts_valid(abstime))
            return EINVAL;
    }
    if (cur_writer(rw) == pl_tid())
        return EDEADLK;
    if (abstime)
        *deadline = pl_deadline_abs(clk, abstime);
    return 0;
}

/* ------------------------------------------------------------- public */

PL_PUBLIC int pthread_rwlock_init(pthread_rwlock_t *rw,
                                  const pthread_rwlockattr_t *attr)
{
    return vt_real.pthread_rwlock_init(rw, attr);
}

PL_PUBLIC int pthread_rwlock_destroy(pthread_rwlock_t *rw)
{
    return vt_real.pthread_rwlock_destroy(rw);
}

PL_PUBLIC int pthread_rwlock_rdlock(pthread_rwlock_t *rw)
{
    vt_sched_point();
    if (!ours(rw)) {
        vt_syscall_enter();
        int r = vt_real.pthread_rwlock_rdlock(rw);
        vt_syscall_exit();
        return r;
    }
    int64_t d;
    int err = pre_checks(rw, CLOCK_REALTIME, NULL, &d);
    return err ? err : rdlock(rw, 0, false);
}

PL_PUBLIC int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw)
{
    vt_sched_point();
    if (!ours(rw))
        return vt_real.pthread_rwlock_tryrdlock(rw);
    return rdlock(rw, 0, true);
}

PL_PUBLIC int pthread_rwlock_timedrdlock(pthread_rwlock_t *rw,
                                         const struct timespec *abstime)
{
    vt_sched_point();
    if (!ours(rw)) {
        vt_syscall_enter();
        int r = vt_real.pthread_rwlock_timedrdlock(rw, abstime);
        vt_syscall_exit();
        return r;
    }
    int64_t d;
    int err = pre_checks(rw, CLOCK_REALTIME, abstime, &d);
    return err ? err : rdlock(rw, d, false);
}

PL_PUBLIC int pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clk,
                                         const struct timespec *abstime)
{
    vt_sched_point();
    if (!ours(rw)) {
        vt_syscall_enter();
        int r = vt_real.pthread_rwlock_clockrdlock(rw, clk, abstime);
        vt_syscall_exit();
        return r;
    }
    int64_t d;
    int err = pre_checks(rw, clk, abstime, &d);
    return err ? err : rdlock(rw, d, false);
}

PL_PUBLIC int pthread_rwlock_wrlock(pthread_rwlock_t *rw)
{
    vt_sched_point();
    if (!ours(rw)) {
        vt_syscall_enter();
        int r = vt_real.pthread_rwlock_wrlock(rw);
        vt_syscall_exit();
        return r;
    }
    int64_t d;
    int err = pre_checks(rw, CLOCK_REALTIME, NULL, &d);
    return err ? err : wrlock(rw, 0, false);
}

PL_PUBLIC int pthread_rwlock_trywrlock(pthread_rwlock_t *rw)
{
    vt_sched_point();
    if (!ours(rw))
        return vt_real.pthread_rwlock_trywrlock(rw);
    return wrlock(rw, 0, true);
}

PL_PUBLIC int pthread_rwlock_timedwrlock(pthread_rwlock_t *rw,
                                         const struct timespec *abstime)
{
    vt_sched_point();
    if (!ours(rw)) {
        vt_syscall_enter();
        int r = vt_real.pthread_rwlock_timedwrlock(rw, abstime);
        vt_syscall_exit();
        return r;
    }
    int64_t d;
    int err = pre_checks(rw, CLOCK_REALTIME, abstime, &d);
    return err ? err : wrlock(rw, d, false);
}

PL_PUBLIC int pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clk,
                                         const struct timespec *abstime)
{
    vt_sched_point();
    if (!ours(rw)) {
        vt_syscall_enter();
        int r = vt_real.pthread_rwlock_clockwrlock(rw, clk, abstime);
        vt_syscall_exit();
        return r;
    }
    int64_t d;
    int err = pre_checks(rw, clk, abstime, &d);
    return err ? err : wrlock(rw, d, false);
}

static inline int pthread_rwlock_unlock_body(pthread_rwlock_t *rw)
{
    if (!ours(rw))
        return vt_real.pthread_rwlock_unlock(rw);
    unsigned s = atomic_load_explicit(st(rw), memory_order_relaxed);
    if (s & WLOCK) {
        __atomic_store_n(&rw->__data.__cur_writer, 0, __ATOMIC_RELAXED);
        while (!atomic_compare_exchange_weak_explicit(
            st(rw), &s, s & ~WLOCK, memory_order_release,
            memory_order_relaxed))
            ;
        if (s & (RPARK | WPARK))
            wake_after_free(rw);
        return 0;
    }
    if (READERS(s) == 0)
        return 0; /* not locked: undefined; glibc returns 0 too */
    unsigned prev = atomic_fetch_sub_explicit(st(rw), ONE_READER,
                                              memory_order_release);
    unsigned now = prev - ONE_READER;
    if (READERS(now) == 0 && !(now & WLOCK) && (now & (RPARK | WPARK)))
        wake_after_free(rw);
    return 0;
}

/* A schedule point after the call: a thread it woke may run first. */
PL_PUBLIC int pthread_rwlock_unlock(pthread_rwlock_t *rw)
{
    int r = pthread_rwlock_unlock_body(rw);
    vt_sched_point();
    return r;
}

PL_ALIAS(pthread_rwlock_init, __pthread_rwlock_init);
PL_ALIAS(pthread_rwlock_destroy, __pthread_rwlock_destroy);
PL_ALIAS(pthread_rwlock_rdlock, __pthread_rwlock_rdlock);
PL_ALIAS(pthread_rwlock_tryrdlock, __pthread_rwlock_tryrdlock);
PL_ALIAS(pthread_rwlock_wrlock, __pthread_rwlock_wrlock);
PL_ALIAS(pthread_rwlock_trywrlock, __pthread_rwlock_trywrlock);
PL_ALIAS(pthread_rwlock_unlock, __pthread_rwlock_unlock);
