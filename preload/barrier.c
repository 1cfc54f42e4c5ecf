/*
 * barrier.c — pthread_barrier_{init,destroy,wait} on glibc's 32-byte
 * pthread_barrier_t.
 *
 * A barrier has no static initialiser, so ours are exactly those our
 * pthread_barrier_init made; it marks them in the word where glibc keeps
 * its futex "private" flag (offset 12: 0 or 128 under glibc) with MAGIC.
 * Process-shared barriers are created by glibc (vt_real) and never carry
 * the mark, so every later call on them goes to glibc too.
 *
 * Our layout:
 *    word  (offset 0, 64 bits): generation << 32 | threads arrived in it
 *    count (offset 8)
 *    magic (offset 12)
 * wait: the thread that makes `arrived` reach `count` starts the next
 * generation (arrived = 0) with one CAS, wakes everybody parked on the
 * barrier and returns PTHREAD_BARRIER_SERIAL_THREAD: exactly one per
 * round.  The others park while the generation is unchanged (validate).
 * Woken or refused by validate, a waiter returns without touching the
 * barrier again, so it may be destroyed and reused at once.
 *
 * Any caller; not interruptible (no cancellation point, as glibc).
 */
#include <string.h>

#include "pl.h"

#define MAGIC 0x76746272u /* "vtbr" */

struct bar {
    _Atomic uint64_t word;
    unsigned count;
    unsigned magic;
};
_Static_assert(sizeof(struct bar) <= sizeof(pthread_barrier_t), "barrier");

static inline struct bar *B(pthread_barrier_t *b) { return (struct bar *)b; }
static inline bool ours(pthread_barrier_t *b)
{
    return __atomic_load_n(&B(b)->magic, __ATOMIC_RELAXED) == MAGIC &&
           pl_on();
}

PL_PUBLIC int pthread_barrier_init(pthread_barrier_t *b,
                                   const pthread_barrierattr_t *attr,
                                   unsigned count)
{
    int ps = PTHREAD_PROCESS_PRIVATE;
    if (attr)
        pthread_barrierattr_getpshared(attr, &ps);
    if (!pl_on() || ps != PTHREAD_PROCESS_PRIVATE)
        return vt_real.pthread_barrier_init(b, attr, count);
    if (count == 0 || count >= UINT_MAX / 2) /* glibc's limits */
        return EINVAL;
    memset(b, 0, sizeof *b);
    B(b)->count = count;
    atomic_store_explicit(&B(b)->word, 0, memory_order_release);
    __atomic_store_n(&B(b)->magic, MAGIC, __ATOMIC_RELEASE);
    return 0;
}

PL_PUBLIC int pthread_barrier_destroy(pthread_barrier_t *b)
{
    if (!ours(b))
        return vt_real.pthread_barrier_destroy(b);
    /* Threads still waiting in this round: POSIX's optional EBUSY (glibc
     * would wait for them). */
    if ((uint32_t)atomic_load(&B(b)->word) != 0)
        return EBUSY;
    __atomic_store_n(&B(b)->magic, 0, __ATOMIC_RELAXED);
    return 0;
}

struct wait_ctx {
    _Atomic uint64_t *word;
    uint32_t gen;
};

static bool wait_validate(void *p)
{
    struct wait_ctx *x = p;
    return (uint32_t)(atomic_load(x->word) >> 32) == x->gen;
}

PL_PUBLIC int pthread_barrier_wait(pthread_barrier_t *b)
{
    vt_sched_point();
    if (!ours(b)) {
        vt_syscall_enter();
        int r = vt_real.pthread_barrier_wait(b);
        vt_syscall_exit();
        return r;
    }
    struct bar *br = B(b);
    unsigned count = br->count;
    uint64_t w = atomic_load(&br->word);
    uint32_t gen;
    for (;;) {
        gen = (uint32_t)(w >> 32);
        uint32_t n = (uint32_t)w + 1;
        if (n == count) {
            if (atomic_compare_exchange_weak(&br->word, &w,
                                             (uint64_t)(gen + 1) << 32)) {
                vt_unpark_all(b);
                return PTHREAD_BARRIER_SERIAL_THREAD;
            }
            continue;
        }
        if (atomic_compare_exchange_weak(&br->word, &w, w + 1))
            break;
    }
    struct wait_ctx x = {&br->word, gen};
    /* Only the last arrival unparks this address, after it changed the
     * generation; VT_PARK_INVALID means it did so before we queued.  A
     * wake-up may also be late, from the previous round's last arrival
     * (it unparks after publishing the new generation, and a fast thread
     * may already wait in the next round): wait until our generation
     * really ended. */
    while (wait_validate(&x)) {
        vt_set_wait_reason("barrier");
        if (vt_park(b, wait_validate, NULL, &x, 0, VT_PARK_INTERRUPTIBLE, 0,
                    NULL) == VT_PARK_INTERRUPTED)
            pl_wait_interrupted(); /* handlers run; the wait goes on */
    }
    return 0;
}
