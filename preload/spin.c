/*
 * spin.c — pthread_spin_lock.
 *
 * glibc's x86_64 spin lock is an int with an inverted encoding (checked on
 * 2.36: pthread_spin_init stores 1): > 0 free, <= 0 held (aarch64 uses
 * glibc's generic one instead: 0 free, see try_take below).  Lock is
 * "lock decl" — acquired when the result is 0 —, and a failed attempt
 * waits until the value is positive again before the next decrement;
 * unlock stores 1.  trylock, unlock, init and destroy stay glibc's (pure);
 * only lock is interposed, keeping exactly that protocol: a G spinning
 * for a lock whose holder was descheduled on the same P would otherwise
 * spin until preempted.  So we spin a bounded while (a few microseconds
 * of PAUSE), then give the processor away with vt_yield and retry.  Works
 * for process-shared spin locks too (no futex, no parking).  Any caller; a
 * non-G yields in the kernel; under VTHREAD_DISABLE=1 we never yield, like
 * glibc.
 */
#include "pl.h"

#if defined(__x86_64__)
/* x86_64's own spin lock (sysdeps/x86_64/nptl): "lock decl". */
static inline bool try_take(_Atomic int *w)
{
    return atomic_fetch_sub_explicit(w, 1, memory_order_acquire) == 1;
}
static inline bool looks_free(_Atomic int *w)
{
    return atomic_load_explicit(w, memory_order_relaxed) > 0;
}
#else
/* glibc's generic spin lock (nptl/pthread_spin_lock.c, aarch64 among
 * others): 0 free, 1 held; init and unlock store 0, unlock with release
 * order; lock exchanges in 1 with acquire order. */
static inline bool try_take(_Atomic int *w)
{
    return atomic_exchange_explicit(w, 1, memory_order_acquire) == 0;
}
static inline bool looks_free(_Atomic int *w)
{
    return atomic_load_explicit(w, memory_order_relaxed) == 0;
}
#endif

PL_PUBLIC int pthread_spin_lock(pthread_spinlock_t *lock)
{
    vt_sched_point();
    _Atomic int *w = (_Atomic int *)lock;
    if (pl_likely(try_take(w)))
        return 0;
    bool yield = pl_on();
    for (;;) {
        for (int i = 0; i < 1000; i++) {
            if (looks_free(w) && try_take(w))
                return 0;
            pl_relax();
        }
        if (yield)
            vt_yield();
    }
}
