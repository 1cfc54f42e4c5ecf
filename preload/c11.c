/*
 * c11.c — C11 threads (<threads.h>) over our pthread_* implementations.
 *
 * glibc implements thrd_*, mtx_*, cnd_*, tss_* and call_once by calling
 * its internal __pthread_* functions directly, which LD_PRELOAD does not
 * see: without these wrappers a C11 thread would be a real thread using
 * glibc's primitives (and a mtx_t locked by thrd code could not be mixed
 * with ours).  Each wrapper is glibc 2.36's own, with the same object
 * layouts (mtx_t is a pthread_mutex_t, cnd_t a pthread_cond_t, tss_t a
 * pthread_key_t, once_flag a pthread_once_t) and glibc's error mapping
 * (thrd_err_map: 0 success, ENOMEM nomem, ETIMEDOUT timedout, EBUSY busy,
 * anything else thrd_error).  Under VTHREAD_DISABLE=1 the pthread_*
 * functions called here pass through to glibc themselves.
 *
 * The start routine returns int; like glibc before its c11 start path,
 * it is called through a void *(*)(void *) (the int arrives in %eax) and
 * thrd_join keeps the low 32 bits of the result, thrd_exit stores the int
 * widened; so a C11 thread's result is exactly its int.
 */
#include <threads.h>

#include "pl.h"

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t");
_Static_assert(sizeof(tss_t) == sizeof(pthread_key_t), "tss_t");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag");

static int err_map(int e)
{
    switch (e) {
    case 0:
        return thrd_success;
    case ENOMEM:
        return thrd_nomem;
    case ETIMEDOUT:
        return thrd_timedout;
    case EBUSY:
        return thrd_busy;
    default:
        return thrd_error;
    }
}

/* ---------------------------------------------------------------- thrd */

PL_PUBLIC int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    return err_map(pthread_create((pthread_t *)thr, NULL,
                                  (void *(*)(void *))(void (*)(void))func,
                                  arg));
}

PL_PUBLIC int thrd_join(thrd_t thr, int *res)
{
    void *r;
    int e = pthread_join((pthread_t)thr, &r);
    if (e == 0 && res)
        *res = (int)(intptr_t)r;
    return e == 0 ? thrd_success : thrd_error;
}

PL_PUBLIC int thrd_detach(thrd_t thr)
{
    return pthread_detach((pthread_t)thr) == 0 ? thrd_success : thrd_error;
}

PL_PUBLIC _Noreturn void thrd_exit(int res)
{
    pthread_exit((void *)(intptr_t)res);
}

PL_PUBLIC thrd_t thrd_current(void) { return (thrd_t)pthread_self(); }

PL_PUBLIC int thrd_equal(thrd_t a, thrd_t b) { return a == b; }

PL_PUBLIC int thrd_sleep(const struct timespec *d, struct timespec *rem)
{
    int e = clock_nanosleep(CLOCK_REALTIME, 0, d, rem);
    return e == 0 ? 0 : e == EINTR ? -1 : -2;
}

PL_PUBLIC void thrd_yield(void) { sched_yield(); }

/* ----------------------------------------------------------------- mtx */

PL_PUBLIC int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    switch (type) {
    case mtx_plain:
    case mtx_timed:
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
        break;
    case mtx_plain | mtx_recursive:
    case mtx_timed | mtx_recursive:
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        break;
    default:
        return thrd_error;
    }
    return err_map(pthread_mutex_init((pthread_mutex_t *)m, &a));
}

PL_PUBLIC int mtx_lock(mtx_t *m)
{
    return err_map(pthread_mutex_lock((pthread_mutex_t *)m));
}

PL_PUBLIC int mtx_timedlock(mtx_t *restrict m,
                            const struct timespec *restrict ts)
{
    return err_map(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

PL_PUBLIC int mtx_trylock(mtx_t *m)
{
    return err_map(pthread_mutex_trylock((pthread_mutex_t *)m));
}

PL_PUBLIC int mtx_unlock(mtx_t *m)
{
    return err_map(pthread_mutex_unlock((pthread_mutex_t *)m));
}

PL_PUBLIC void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

/* ----------------------------------------------------------------- cnd */

PL_PUBLIC int cnd_init(cnd_t *c)
{
    return err_map(pthread_cond_init((pthread_cond_t *)c, NULL));
}

PL_PUBLIC int cnd_signal(cnd_t *c)
{
    return err_map(pthread_cond_signal((pthread_cond_t *)c));
}

PL_PUBLIC int cnd_broadcast(cnd_t *c)
{
    return err_map(pthread_cond_broadcast((pthread_cond_t *)c));
}

PL_PUBLIC int cnd_wait(cnd_t *c, mtx_t *m)
{
    return err_map(
        pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

PL_PUBLIC int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m,
                            const struct timespec *restrict ts)
{
    return err_map(pthread_cond_timedwait((pthread_cond_t *)c,
                                          (pthread_mutex_t *)m, ts));
}

PL_PUBLIC void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}

/* ----------------------------------------------------------------- tss */

PL_PUBLIC int tss_create(tss_t *k, tss_dtor_t dtor)
{
    return err_map(pthread_key_create((pthread_key_t *)k, dtor));
}

PL_PUBLIC void *tss_get(tss_t k)
{
    return pthread_getspecific((pthread_key_t)k);
}

PL_PUBLIC int tss_set(tss_t k, void *v)
{
    return err_map(pthread_setspecific((pthread_key_t)k, v));
}

PL_PUBLIC void tss_delete(tss_t k) { pthread_key_delete((pthread_key_t)k); }

/* ---------------------------------------------------------------- once */

PL_PUBLIC void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}
