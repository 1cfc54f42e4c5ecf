/*
 * init.c — start-up of the preload layer, the G exit hook, shared helpers.
 *
 * When does initialisation run?  ld.so runs constructors dependencies
 * first, and a preloaded library comes early in the search list, so our
 * constructor runs AFTER the constructors of the program's other libraries
 * (those that do not depend on us).  Those may already lock mutexes, create
 * keys or even threads.  So nothing here may rely on the constructor having
 * run: every public wrapper calls pl_on(), which initialises on first use
 * (pl_init_slow), and the constructor merely makes sure it happened.
 *
 * Initialisation resolves the real libc functions (vt_real_init), reads the
 * configuration (vt_runtime_init: no thread is created; the runtime starts
 * at the first pthread_create) and installs our hooks.  Re-entrancy: if
 * something in there calls back into a wrapper on the same thread, that
 * wrapper uses vthread's own implementation (which needs no vt_real); other
 * threads wait until the mode is known.
 */
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pl.h"

_Atomic int pl_mode = PL_UNKNOWN;
static _Atomic int init_tid;

static void pl_on_exit(vt_g *g);

static const struct vt_hooks pl_hooks = {
    .on_exit = pl_on_exit,
    /* Nothing to do at G start: the G's TLS (our key table pointer among
     * it) and its vt_g_ext are fresh; the initial per-G state set by
     * pthread_create attributes is copied in by core (ext_init). */
    .on_start = NULL,
    .route_signals = pl_sig_route,
    .deliver_signals = pl_signals_deliver_hook,
    .wait_owner = pl_mutex_wait_owner,
};

static void do_init(void)
{
    vt_real_init();
    bool active = vt_runtime_init();
    vt_set_hooks(&pl_hooks);
    vt_debug_set_name_offset(offsetof(struct pl_gext, name));
    atomic_store_explicit(&pl_mode, active ? PL_ACTIVE : PL_DISABLED,
                          memory_order_release);
}

bool pl_init_slow(void)
{
    for (;;) {
        int m = atomic_load_explicit(&pl_mode, memory_order_acquire);
        if (m == PL_ACTIVE)
            return true;
        if (m == PL_DISABLED)
            return false;
        if (m == PL_INITIALISING) {
            if (atomic_load_explicit(&init_tid, memory_order_relaxed) ==
                pl_tid())
                return true; /* re-entered from our own initialisation */
            syscall(SYS_sched_yield);
            continue;
        }
        int exp = PL_UNKNOWN;
        if (atomic_compare_exchange_strong(&pl_mode, &exp, PL_INITIALISING)) {
            atomic_store_explicit(&init_tid, pl_tid(), memory_order_relaxed);
            do_init();
        }
    }
}

__attribute__((constructor)) static void pl_ctor(void)
{
    (void)pl_on();
}

/* -------------------------------------------------------------- G exit */

/* Runs on every exiting G, from vt_exit, after C++ thread_local
 * destructors (glibc's order: __call_tls_dtors, then key destructors).
 *  1. Old-style cleanup handlers (_pthread_cleanup_push, kept in the
 *     descriptor's `cleanup` chain).  For a G that ended through glibc's
 *     pthread_exit the unwinder already ran and popped them; the chain is
 *     non-empty only for a first G that ended without unwinding
 *     (pthread_exit before main(): thread.c).
 *  2. pthread key destructors, PTHREAD_DESTRUCTOR_ITERATIONS rounds;
 *  3. robust mutexes still held: marked owner-died (mutex.c);
 *  4. process-directed signals routed here: given back (sigroute.c). */
static void pl_on_exit(vt_g *g)
{
    void *pd = pl_self_pd();
    struct _pthread_cleanup_buffer *b;
    while ((b = PD_FIELD(pd, PD_CLEANUP,
                            struct _pthread_cleanup_buffer *)) != NULL) {
        PD_FIELD(pd, PD_CLEANUP, struct _pthread_cleanup_buffer *) =
            b->__prev;
        b->__routine(b->__arg);
    }
    pl_keys_on_exit();
    pl_mutex_robust_exit(); /* last, as the kernel does it at task exit */
    /* process-directed signals routed here and not yet run: another G
     * takes them (sigroute.c) */
    pl_sig_give_back(g, ~(uint64_t)0);
}

/* ---------------------------------------------------------------- time */

static int64_t ts_ns(const struct timespec *ts, bool *ovf)
{
    int64_t s;
    if (__builtin_mul_overflow((int64_t)ts->tv_sec, PL_NS, &s) ||
        __builtin_add_overflow(s, (int64_t)ts->tv_nsec, &s))
        *ovf = true;
    return s;
}

int64_t pl_deadline_abs(clockid_t clock, const struct timespec *ts)
{
    if (ts->tv_sec < 0)
        return 1;
    bool ovf = false;
    int64_t t = ts_ns(ts, &ovf);
    if (ovf)
        return 0;
    int64_t target;
    if (clock == CLOCK_MONOTONIC) {
        target = t;
    } else {
        struct timespec now;
        clock_gettime(clock, &now);
        int64_t mono = vt_now();
        int64_t c = ts_ns(&now, &ovf);
        if (__builtin_add_overflow(mono, t - c, &target))
            return 0;
    }
    return target < 1 ? 1 : target;
}

int64_t pl_deadline_rel(const struct timespec *ts)
{
    bool ovf = false;
    int64_t d = ts_ns(ts, &ovf), r;
    if (ovf || __builtin_add_overflow(vt_now(), d, &r))
        return 0;
    return r < 1 ? 1 : r;
}

/* ------------------------------------------------------------ misc */

int pl_interrupted(void)
{
    vt_g *g = vt_self();
    if (!g) /* its futex wait ended with EINTR: the kernel ran a handler
             * and chose not to restart (core's park_futex) */
        return PL_INTR_EINTR;
    /* Clear first, then look: a pthread_kill/pthread_cancel that comes
     * after this sets its state before interrupting again. */
    vt_clear_interrupt(g);
    int r = pl_signals_deliver(g);
    /* a handler that ran directly inside sigsuspend & co. (pl.h) */
    if (atomic_fetch_and(&pl_gext(g)->sigcall, ~2u) & 2)
        r = PL_INTR_EINTR;
    if (pl_cancel_acts(pl_self_cancelhandling()))
        pthread_exit(PTHREAD_CANCELED); /* ours: the first G's case too */
    return r;
}

void pl_wait_interrupted(void)
{
    vt_g *g = vt_self();
    if (!g)
        return;
    vt_clear_interrupt(g);
    (void)pl_signals_deliver(g);
    (void)(atomic_fetch_and(&pl_gext(g)->sigcall, ~2u));
    int ch = pl_self_cancelhandling();
    if (pl_cancel_acts(ch) && (ch & PL_CANCELTYPE_BITMASK))
        pthread_exit(PTHREAD_CANCELED); /* asynchronous: acts anywhere */
}

void pl_gext_lock(struct pl_gext *x)
{
    for (int n = 0;; n++) {
        int z = 0;
        if (atomic_compare_exchange_weak(&x->lock, &z, 1))
            return;
        if (n < 64)
            pl_relax();
        else
            vt_yield();
    }
}

void pl_gext_unlock(struct pl_gext *x)
{
    atomic_store_explicit(&x->lock, 0, memory_order_release);
}
