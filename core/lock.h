/*
 * lock.h — the runtime's own locks and futex helpers.
 *
 * vt_lock is a small futex mutex (0 free, 1 locked, 2 locked with sleepers)
 * that blocks the OS thread, never the G: it guards short runtime critical
 * sections (the scheduler, a parking-lot bucket, a timer heap) that never
 * park.  Usable by any thread, with or without a P.  Raw syscalls only, so
 * errno is never touched.
 */
#ifndef VTHREAD_LOCK_H
#define VTHREAD_LOCK_H

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

#include "arch.h"
#include "atomic.h"

typedef struct { _Atomic int v; } vt_lock;
#define VT_LOCK_INIT {0}

/* While a G holds a runtime lock it must not be preempted (another G on
 * its P would spin on the lock).  The count lives in the first word of
 * the G (rt.h checks both constants); 0 in the slot means not a G (g0,
 * sysmon, foreign threads), which are never preempted. */
#define VT_G_NLOCKS_OFFSET 0
#define VT_G_SIG_NOTIFY_OFFSET 20
/* A signal handler that interrupts the G while the count is non-zero
 * defers the program's handler (vt_signal_context); when the count drops
 * back to 0, what was deferred meanwhile is delivered. */
VT_HIDDEN void vt_lock_sig_check(void);
static inline void vt_lock_count(int d)
{
    int *g = (int *)vt_arch_tp_load(VT_TP_G_SLOT);
    if (!g)
        return;
    atomic_signal_fence(memory_order_seq_cst);
    int n = g[VT_G_NLOCKS_OFFSET] += d;
    atomic_signal_fence(memory_order_seq_cst);
    if (n == 0 && unlikely(ld_relaxed((_Atomic int *)
                                      &g[VT_G_SIG_NOTIFY_OFFSET / 4])))
        vt_lock_sig_check();
}

static inline long vt_futex_wait(_Atomic int *addr, int val,
                                 const struct timespec *rel)
{
    return vt_sys4(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, rel);
}
static inline long vt_futex_wake(_Atomic int *addr, int n)
{
    return vt_sys3(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n);
}

VT_HIDDEN void vt_lock_slow(vt_lock *l);

static inline void vt_lock_acquire(vt_lock *l)
{
    vt_lock_count(1);
    int z = 0;
    if (likely(cas(&l->v, &z, 1)))
        return;
    vt_lock_slow(l);
}
static inline int vt_lock_try(vt_lock *l)
{
    int z = 0;
    if (!cas(&l->v, &z, 1))
        return 0;
    vt_lock_count(1);
    return 1;
}
/* The lock is free before the count drops: a handler that runs once the
 * count is 0 may take the same lock (sem_post in a handler). */
static inline void vt_lock_release(vt_lock *l)
{
    if (unlikely(xchg(&l->v, 0) == 2))
        vt_futex_wake(&l->v, 1);
    vt_lock_count(-1);
}

#endif
