/*
 * once.c — pthread_once.
 *
 * The once word (pthread_once_t, an int; PTHREAD_ONCE_INIT = 0) uses
 * glibc's two low bits, so a finished object reads the same to both:
 *    0                 not run yet (or the init routine was cancelled);
 *    IN_PROGRESS | pid<<2  some thread of process `pid` runs the init;
 *    DONE              finished; from here on a single load.
 * glibc keeps a fork generation in the upper bits so that a fork during
 * an init does not leave the child waiting forever; we keep the pid of the
 * process whose thread started the init instead: a waiter in another
 * process (a fork child) takes an abandoned init over.
 *
 * Racing callers: one CAS wins and runs init; the others park on the word
 * (validate: the word is unchanged) and are woken by unpark_all when the
 * winner stores DONE — or 0, when init was cancelled or left by a C++
 * exception: the cleanup handler below runs during that unwinding (this
 * file is compiled with -fexceptions so that pthread_cleanup_push uses a
 * cleanup attribute that C++ exceptions run too, like glibc's), and one of
 * the waiters then runs init.
 *
 * Any caller; waits are not interruptible (glibc's are not cancellation
 * points either).
 */
#include <unistd.h>

#include "pl.h"

#define IN_PROGRESS 1
#define DONE 2

static void once_cancelled(void *w)
{
    atomic_store_explicit((_Atomic int *)w, 0, memory_order_release);
    vt_unpark_all(w);
}

static bool once_validate(void *ctx)
{
    struct { _Atomic int *w; int seen; } *x = ctx;
    return atomic_load_explicit(x->w, memory_order_relaxed) == x->seen;
}

static int once_slow(_Atomic int *w, void (*init)(void))
{
    int me = IN_PROGRESS | (int)((unsigned)getpid() << 2);
    for (;;) {
        int s = atomic_load_explicit(w, memory_order_acquire);
        if (s & DONE)
            return 0;
        bool abandoned = (s & IN_PROGRESS) && s != me; /* fork child */
        if (!(s & IN_PROGRESS) || abandoned) {
            if (!atomic_compare_exchange_strong(w, &s, me))
                continue;
            pthread_cleanup_push(once_cancelled, (void *)w);
            init();
            pthread_cleanup_pop(0);
            atomic_store_explicit(w, DONE, memory_order_release);
            vt_unpark_all(w);
            return 0;
        }
        struct { _Atomic int *w; int seen; } x = {w, s};
        vt_set_wait_reason("pthread_once");
        vt_park(w, once_validate, NULL, &x, 0, 0, 0, NULL);
    }
}

PL_PUBLIC int pthread_once(pthread_once_t *once, void (*init)(void))
{
    vt_sched_point();
    _Atomic int *w = (_Atomic int *)once;
    if (pl_likely(atomic_load_explicit(w, memory_order_acquire) & DONE))
        return 0;
    return once_slow(w, init);
}

PL_ALIAS(pthread_once, __pthread_once);
