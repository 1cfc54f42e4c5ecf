/*
 * mutex.c — pthread_mutex_{init,destroy,lock,trylock,timedlock,clocklock,
 * unlock} on glibc's pthread_mutex_t (40 bytes; 48 on aarch64).
 *
 * Which mutexes are ours.  __kind (offset 16) is read at every call, as
 * glibc does.  Kinds 0..3 (normal/timed, recursive, errorcheck, adaptive),
 * with or without glibc's elision hint bits, are implemented here; every
 * other __kind — robust (16), priority protect (64), process-shared (128),
 * or -1 after pthread_mutex_destroy — goes to glibc (vt_real): those live
 * in shared memory or need the kernel.  Priority inherit (32) is dropped
 * from private mutexes at init (see pthread_mutex_init), and robust
 * mutexes a G still holds when it exits are marked owner-died here, as
 * the kernel would (pl_mutex_robust_exit).  The static
 * initialisers (all zero; recursive/errorcheck/adaptive ones with their
 * __kind) need no init call.  pthread_mutex_init and _destroy are glibc's
 * own (pure data: attribute checks, __kind; destroy returns EBUSY when
 * __nusers != 0 for a non-robust mutex and stores __kind = -1), which is
 * why __owner, __count and __nusers are kept exactly as glibc keeps them.
 *
 * The lock word (__lock, offset 0), private to this file and cond.c:
 *    LOCKED (1)  somebody owns the mutex.
 *    PARKED (2)  a waiter may be parked on the mutex's address; unlock
 *                must take the slow path.
 * Invariant (parking_lot's): while any waiter is queued on the mutex
 * address, PARKED is set.  It holds because a waiter queues only if its
 * validate callback, run under the bucket lock, sees LOCKED|PARKED, and
 * PARKED is cleared only by unpark callbacks, which run under the same
 * bucket lock and know whether waiters remain.  A waiter that times out
 * leaves PARKED behind: harmless, the next unlock takes the slow path and
 * its callback clears it.  (cond.c's requeue is the one other way onto the
 * queue; see pl_mutex_after_requeue.)
 *
 * Lock: one CAS 0 -> LOCKED, no runtime call.  Else spin a little (Go's 4
 * rounds of 30 PAUSE) while nobody is parked, then set PARKED and park with
 * token = the time the wait began.
 * Unlock: one CAS LOCKED -> 0.  Else unpark the oldest waiter; its callback
 * (bucket locked) decides, like Go's starvation mode: if that waiter has
 * waited more than 1 ms the lock is handed to it directly (the word stays
 * LOCKED, the waiter gets PL_TOKEN_HANDOFF), so barging newcomers cannot
 * starve it; otherwise the word is released and the woken waiter competes.
 *
 * Any caller: Gs park, other threads block on a futex inside vt_park.
 * Not async-signal-safe (neither is glibc's).
 */
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pl.h"

#define M_LOCKED 1
#define M_PARKED 2
#define HANDOFF_NS 1000000 /* Go's starvationThresholdNs */

#define F_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define F_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static inline _Atomic int *mword(pthread_mutex_t *m)
{
    return (_Atomic int *)&m->__data.__lock;
}
static inline int mkind(const pthread_mutex_t *m)
{
    return F_LOAD(&m->__data.__kind);
}
static inline bool kind_ours(int kind)
{
    return (kind & ~(PL_MUTEX_KIND_MASK | PL_MUTEX_ELISION_FLAGS)) == 0;
}

bool pl_mutex_is_ours(const pthread_mutex_t *m)
{
    return kind_ours(mkind(m));
}

/* ------------------------------------------------------------ lock word */

/* Takes the word if it is not LOCKED, keeping PARKED. */
static inline bool word_trylock(_Atomic int *w)
{
    int s = atomic_load_explicit(w, memory_order_relaxed);
    while (!(s & M_LOCKED))
        if (atomic_compare_exchange_weak_explicit(w, &s, s | M_LOCKED,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* vt_park validate: still worth sleeping?  Bucket locked. */
static bool lock_validate(void *ctx)
{
    _Atomic int *w = ctx;
    return atomic_load_explicit(w, memory_order_relaxed) ==
           (M_LOCKED | M_PARKED);
}

/* The contended lock.  Returns 0 (we own the word) or ETIMEDOUT. */
static int word_lock_slow(_Atomic int *w, int64_t deadline)
{
    uintptr_t start = 0;
    int spins = 0;
    for (;;) {
        int s = atomic_load_explicit(w, memory_order_relaxed);
        if (!(s & M_LOCKED)) {
            if (atomic_compare_exchange_weak_explicit(
                    w, &s, s | M_LOCKED, memory_order_acquire,
                    memory_order_relaxed))
                return 0;
            continue;
        }
        if (!(s & M_PARKED)) {
            if (spins < 4) {
                spins++;
                for (int i = 0; i < 30; i++)
                    pl_relax();
                continue;
            }
            if (!atomic_compare_exchange_weak_explicit(
                    w, &s, s | M_PARKED, memory_order_relaxed,
                    memory_order_relaxed))
                continue;
        }
        if (!start)
            start = (uintptr_t)vt_now() | 1; /* never 0: see PL_TOKEN_* */
        uintptr_t tok = 0;
        vt_set_wait_reason("mutex");
        int r = vt_park(w, lock_validate, NULL, w, deadline,
                        VT_PARK_INTERRUPTIBLE, start, &tok);
        if (r == VT_PARK_WOKEN && tok == PL_TOKEN_HANDOFF) {
            atomic_thread_fence(memory_order_acquire);
            return 0; /* the unlocker kept LOCKED set for us */
        }
        if (r == VT_PARK_TIMEOUT)
            return ETIMEDOUT;
        if (r == VT_PARK_INTERRUPTED) /* (never handed the lock then) */
            pl_wait_interrupted(); /* handlers run; the wait goes on */
        spins = 0;
    }
}

/* vt_unpark_one callback of unlock: runs with the bucket locked, after the
 * oldest waiter (if any) was dequeued.  We still own the word; lockers can
 * only add PARKED to it, and must then pass lock_validate under this same
 * bucket lock, so a plain store here cannot lose their update. */
static uintptr_t unlock_cb(void *ctx, struct vt_unpark_info *info)
{
    _Atomic int *w = ctx;
    int rest = info->more_waiters ? M_PARKED : 0;
    if (info->woken && info->token && !vt_fuzz_mode &&
        vt_now() - (int64_t)info->token > HANDOFF_NS) {
        atomic_store_explicit(w, M_LOCKED | rest, memory_order_relaxed);
        return PL_TOKEN_HANDOFF;
    }
    atomic_store_explicit(w, rest, memory_order_release);
    return 0;
}

static inline void word_unlock(_Atomic int *w)
{
    int s = M_LOCKED;
    if (pl_likely(atomic_compare_exchange_strong_explicit(
            w, &s, 0, memory_order_release, memory_order_relaxed)))
        return;
    vt_unpark_one(w, unlock_cb, w);
}

/* After cond.c moved waiters from a condvar onto this mutex's queue
 * without validating the word: restore the invariant.  Set PARKED first;
 * if the mutex is locked now, its owner's unlock will see PARKED and wake
 * a waiter.  If it is free, nobody may ever unlock it again: wake the
 * oldest waiter ourselves (it competes for the lock like any locker), and
 * clear PARKED under the bucket lock if it was the last one. */
static uintptr_t kick_cb(void *ctx, struct vt_unpark_info *info)
{
    _Atomic int *w = ctx;
    if (!info->more_waiters)
        atomic_fetch_and(w, ~M_PARKED);
    return 0;
}

void pl_mutex_after_requeue(pthread_mutex_t *m)
{
    _Atomic int *w = mword(m);
    atomic_fetch_or(w, M_PARKED);
    if (!(atomic_load(w) & M_LOCKED))
        vt_unpark_one(w, kick_cb, w);
}

int pl_mutex_wait_owner(const void *addr, const char *reason)
{
    /* word_lock_slow parks on mword(m), the mutex's first word */
    if (strcmp(reason, "mutex"))
        return 0;
    const pthread_mutex_t *m = addr;
    return F_LOAD(&m->__data.__owner);
}

/* -------------------------------------------------------- mutex kinds */

/* Lock a mutex of ours.  abstime != NULL: timed (clock already checked).
 * incr_users: false for a condvar's relock (see pl.h). */
static int lock_ours(pthread_mutex_t *m, int kind, clockid_t clock,
                     const struct timespec *abstime, bool incr_users)
{
    int type = kind & PL_MUTEX_KIND_MASK;
    int me = pl_tid();
    if (type == PTHREAD_MUTEX_RECURSIVE_NP) {
        if (F_LOAD(&m->__data.__owner) == me) {
            if (m->__data.__count + 1 == 0)
                return EAGAIN;
            m->__data.__count++;
            return 0;
        }
    } else if (type == PTHREAD_MUTEX_ERRORCHECK_NP) {
        if (F_LOAD(&m->__data.__owner) == me)
            return EDEADLK;
    }
    _Atomic int *w = mword(m);
    if (!word_trylock(w)) {
        int64_t deadline = 0;
        if (abstime) {
            /* glibc checks the timeout only when it has to wait. */
            if (!pl_ts_valid(abstime))
                return EINVAL;
            deadline = pl_deadline_abs(clock, abstime);
        }
        int r = word_lock_slow(w, deadline);
        if (r)
            return r;
    }
    F_STORE(&m->__data.__owner, me);
    if (type == PTHREAD_MUTEX_RECURSIVE_NP)
        m->__data.__count = 1;
    if (incr_users)
        m->__data.__nusers++;
    return 0;
}

static int unlock_ours(pthread_mutex_t *m, int kind, bool decr_users)
{
    int type = kind & PL_MUTEX_KIND_MASK;
    if (type == PTHREAD_MUTEX_RECURSIVE_NP) {
        if (F_LOAD(&m->__data.__owner) != pl_tid())
            return EPERM;
        if (--m->__data.__count != 0)
            return 0;
    } else if (type == PTHREAD_MUTEX_ERRORCHECK_NP) {
        if (F_LOAD(&m->__data.__owner) != pl_tid() ||
            !(atomic_load_explicit(mword(m), memory_order_relaxed) &
              M_LOCKED))
            return EPERM;
    }
    F_STORE(&m->__data.__owner, 0);
    if (decr_users)
        m->__data.__nusers--;
    word_unlock(mword(m));
    return 0;
}

/* Process-shared, robust and PI/PP mutexes are glibc's: their lock blocks
 * the OS thread in a futex.  A G first tries and yields for a while (the
 * holder is often a G waiting for a P: with one P, always), then blocks
 * as a system call, so sysmon hands its P away after ~20 µs. */
static int delegated_lock(pthread_mutex_t *m, int (*timed)(void *ctx),
                          void *ctx)
{
    if (!vt_self())
        return timed ? timed(ctx) : vt_real.pthread_mutex_lock(m);
    for (int i = 0; i < 64; i++) {
        int r = vt_real.pthread_mutex_trylock(m);
        if (r != EBUSY)
            return r; /* 0, EOWNERDEAD, ENOTRECOVERABLE, EAGAIN ... */
        vt_yield();
    }
    vt_syscall_enter();
    int r = timed ? timed(ctx) : vt_real.pthread_mutex_lock(m);
    vt_syscall_exit();
    return r;
}

struct timed_ctx {
    pthread_mutex_t *m;
    clockid_t clock;
    const struct timespec *abstime;
    bool has_clock;
};
static int timed_real(void *p)
{
    struct timed_ctx *c = p;
    return c->has_clock
               ? vt_real.pthread_mutex_clocklock(c->m, c->clock, c->abstime)
               : vt_real.pthread_mutex_timedlock(c->m, c->abstime);
}

int pl_mutex_cond_lock(pthread_mutex_t *m)
{
    int kind = mkind(m);
    if (!kind_ours(kind))
        return vt_real.pthread_mutex_lock(m);
    return lock_ours(m, kind, CLOCK_REALTIME, NULL, false);
}

int pl_mutex_cond_unlock(pthread_mutex_t *m)
{
    int kind = mkind(m);
    if (!kind_ours(kind))
        return vt_real.pthread_mutex_unlock(m);
    return unlock_ours(m, kind, false);
}

/* ------------------------------------------------------ public symbols */

PL_PUBLIC int pthread_mutex_init(pthread_mutex_t *m,
                                 const pthread_mutexattr_t *attr)
{
    /* glibc's: validates the attributes, zeroes the object, sets __kind
     * (and the ceiling of a PP mutex in __lock). */
    int r = vt_real.pthread_mutex_init(m, attr);
    /* Priority inheritance: the kernel's PI futexes name the owner by
     * kernel TID and refuse a G's synthetic one (a contended lock would
     * wait forever in glibc), and a G has no kernel priority to boost.
     * A private PI mutex therefore drops the PI bit: it is one of ours,
     * or glibc's robust kind if robust.  A process-shared one stays
     * glibc's (docs/compatibility.md). */
    int kind = mkind(m), ps = PTHREAD_PROCESS_PRIVATE;
    if (attr) /* (glibc sets PL_MUTEX_PSHARED for every robust mutex) */
        pthread_mutexattr_getpshared(attr, &ps);
    if (r == 0 && (kind & PL_MUTEX_PI) && ps == PTHREAD_PROCESS_PRIVATE)
        F_STORE(&m->__data.__kind, kind & ~PL_MUTEX_PI);
    return r;
}

PL_PUBLIC int pthread_mutex_destroy(pthread_mutex_t *m)
{
    return vt_real.pthread_mutex_destroy(m);
}

PL_PUBLIC int pthread_mutex_lock(pthread_mutex_t *m)
{
    vt_sched_point();
    int kind = mkind(m);
    if (pl_likely((kind & ~PL_MUTEX_ELISION_FLAGS) == 0) &&
        pl_likely(pl_on())) {
        int z = 0;
        if (pl_likely(atomic_compare_exchange_weak_explicit(
                mword(m), &z, M_LOCKED, memory_order_acquire,
                memory_order_relaxed))) {
            F_STORE(&m->__data.__owner, pl_tid());
            m->__data.__nusers++;
            return 0;
        }
        return lock_ours(m, kind, CLOCK_REALTIME, NULL, true);
    }
    if (!pl_on())
        return vt_real.pthread_mutex_lock(m);
    if (!kind_ours(kind))
        return delegated_lock(m, NULL, NULL);
    return lock_ours(m, kind, CLOCK_REALTIME, NULL, true);
}

PL_PUBLIC int pthread_mutex_trylock(pthread_mutex_t *m)
{
    vt_sched_point();
    int kind = mkind(m);
    if (!kind_ours(kind) || !pl_on())
        return vt_real.pthread_mutex_trylock(m);
    int type = kind & PL_MUTEX_KIND_MASK;
    int me = pl_tid();
    if (type == PTHREAD_MUTEX_RECURSIVE_NP &&
        F_LOAD(&m->__data.__owner) == me) {
        if (m->__data.__count + 1 == 0)
            return EAGAIN;
        m->__data.__count++;
        return 0;
    }
    /* An errorcheck mutex the caller owns: EBUSY, as glibc. */
    if (!word_trylock(mword(m)))
        return EBUSY;
    F_STORE(&m->__data.__owner, me);
    if (type == PTHREAD_MUTEX_RECURSIVE_NP)
        m->__data.__count = 1;
    m->__data.__nusers++;
    return 0;
}

PL_PUBLIC int pthread_mutex_timedlock(pthread_mutex_t *m,
                                      const struct timespec *abstime)
{
    vt_sched_point();
    int kind = mkind(m);
    if (!pl_on())
        return vt_real.pthread_mutex_timedlock(m, abstime);
    if (!kind_ours(kind)) {
        struct timed_ctx c = {m, CLOCK_REALTIME, abstime, false};
        return delegated_lock(m, timed_real, &c);
    }
    return lock_ours(m, kind, CLOCK_REALTIME, abstime, true);
}

PL_PUBLIC int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock,
                                      const struct timespec *abstime)
{
    vt_sched_point();
    int kind = mkind(m);
    if (!pl_on())
        return vt_real.pthread_mutex_clocklock(m, clock, abstime);
    if (!kind_ours(kind)) {
        struct timed_ctx c = {m, clock, abstime, true};
        return delegated_lock(m, timed_real, &c);
    }
    if (!pl_futex_clock_ok(clock))
        return EINVAL;
    return lock_ours(m, kind, clock, abstime, true);
}

static inline int pthread_mutex_unlock_body(pthread_mutex_t *m)
{
    int kind = mkind(m);
    if (pl_likely((kind & ~PL_MUTEX_ELISION_FLAGS) == 0) &&
        pl_likely(pl_on())) {
        F_STORE(&m->__data.__owner, 0);
        m->__data.__nusers--;
        word_unlock(mword(m));
        return 0;
    }
    if (!kind_ours(kind) || !pl_on())
        return vt_real.pthread_mutex_unlock(m);
    return unlock_ours(m, kind, true);
}

/* A schedule point after the call: a thread it woke may run first. */
PL_PUBLIC int pthread_mutex_unlock(pthread_mutex_t *m)
{
    int r = pthread_mutex_unlock_body(m);
    vt_sched_point();
    return r;
}

PL_ALIAS(pthread_mutex_init, __pthread_mutex_init);
PL_ALIAS(pthread_mutex_destroy, __pthread_mutex_destroy);
PL_ALIAS(pthread_mutex_lock, __pthread_mutex_lock);
PL_ALIAS(pthread_mutex_trylock, __pthread_mutex_trylock);
PL_ALIAS(pthread_mutex_unlock, __pthread_mutex_unlock);

/* ------------------------------------- robust mutexes of an exiting G */

/* What the kernel does for a thread that exits holding robust mutexes
 * (exit_robust_list, handle_futex_death), which it cannot do for a G: it
 * knows neither the G's robust list (glibc keeps it in the descriptor,
 * registered with the kernel only for OS threads) nor its synthetic tid.
 * Every mutex on the list still owned by this G gets FUTEX_OWNER_DIED,
 * keeping FUTEX_WAITERS, and one waiter is woken: its lock returns
 * EOWNERDEAD.  Runs on the exiting G (init.c's exit hook). */
#define ROBUST_LIST_LIMIT 2048 /* the kernel's */
#define FUTEX_WAITERS_BIT 0x80000000u
#define FUTEX_OWNER_DIED_BIT 0x40000000u
#define FUTEX_TID_BITS 0x3fffffffu

static void owner_died(_Atomic unsigned *w, unsigned tid, bool pi, bool pending)
{
    unsigned v = atomic_load(w);
    for (;;) {
        if (pending && !pi && v == 0) { /* released, a waiter may be due */
            syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
            return;
        }
        if ((v & FUTEX_TID_BITS) != tid)
            return;
        unsigned nv = (v & FUTEX_WAITERS_BIT) | FUTEX_OWNER_DIED_BIT;
        if (atomic_compare_exchange_weak(w, &v, nv))
            break;
    }
    if (!pi && (v & FUTEX_WAITERS_BIT))
        syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void pl_mutex_robust_exit(void)
{
    char *pd = pl_self_pd();
    char *head = pd + PD_ROBUST_HEAD;
    long off = PD_FIELD(pd, PD_ROBUST_HEAD + 8, long);
    uintptr_t pending = PD_FIELD(pd, PD_ROBUST_HEAD + 16, uintptr_t);
    unsigned tid = (unsigned)PD_FIELD(pd, PD_TID, int) & FUTEX_TID_BITS;
    uintptr_t e = PD_FIELD(pd, PD_ROBUST_HEAD, uintptr_t);
    for (int n = 0; (char *)(e & ~(uintptr_t)1) != head && n < ROBUST_LIST_LIMIT;
         n++) {
        char *ent = (char *)(e & ~(uintptr_t)1);
        if (!ent)
            break;
        uintptr_t next = *(uintptr_t *)ent; /* before the mutex is touched */
        if ((uintptr_t)ent != (pending & ~(uintptr_t)1))
            owner_died((_Atomic unsigned *)(ent + off), tid, e & 1, false);
        e = next;
    }
    if (pending & ~(uintptr_t)1)
        owner_died((_Atomic unsigned *)((char *)(pending & ~(uintptr_t)1) + off),
                   tid, pending & 1, true);
    /* the list is the G's no more (a recycled descriptor starts empty) */
    PD_FIELD(pd, PD_ROBUST_HEAD, void *) = head;
    PD_FIELD(pd, PD_ROBUST_HEAD + 16, void *) = NULL;
}
