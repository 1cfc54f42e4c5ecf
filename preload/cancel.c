/*
 * cancel.c — pthread_cancel.
 *
 * State.  The request lives where glibc keeps it, in the target's
 * descriptor (`cancelhandling`, 0x308, glibc 2.36 bits in pl.h), so glibc's
 * own code sees it: pthread_testcancel, pthread_setcancelstate and
 * pthread_setcanceltype are glibc's (not interposed; they only touch
 * THREAD_SELF->cancelhandling and unwind with __do_cancel, which works on a
 * G because core's G entry installs the unwind buffer like start_thread),
 * and so are libc's internal cancellation points that test the word.
 *
 * Deferred cancellation of a G: pthread_cancel sets CANCELING|CANCELED and
 * vt_interrupt()s the G.  Every interruptible wait of this layer (condvar
 * waits — after re-acquiring the mutex —, join, sleeps, sem_wait) is a
 * cancellation point: it checks on entry (pl_testcancel) and when woken by
 * the interrupt (pl_interrupted, init.c), and then unwinds through
 * pthread_exit(PTHREAD_CANCELED): cleanup handlers and C++ destructors run,
 * join returns PTHREAD_CANCELED.
 *
 * Asynchronous cancellation (PTHREAD_CANCEL_ASYNCHRONOUS enabled when the
 * request arrives): a parked G is woken as above.  A G that is running (or
 * runnable) must be stopped where it is.  It is notified like a signal
 * (vt_signal_notify): it acts as it next leaves the runtime (core's deliver
 * hook, pl_signals_deliver_hook), and if it runs now, its OS thread gets
 * the cancel signal (SIGCANCEL, glibc's reserved 32, with our own
 * handler); the handler acts only on the thread whose own descriptor says
 * "CANCELING, enabled, asynchronous, not exiting" — i.e. only in the
 * target — and only when the interrupted pc is outside libvthread.so (a G
 * inside the runtime, e.g. being preempted, must not unwind: it may hold
 * runtime locks).  Then it unwinds from the handler with glibc's
 * pthread_exit, as glibc's own sigcancel_handler does.  Because the target
 * may have left that OS thread, or be inside libvthread, the canceller
 * signals the OS thread that runs it again every millisecond — with its P
 * handed off (vt_syscall_enter_block), so the target can run even with one
 * P — until the target is exiting, has turned asynchronous cancellation
 * off, or one second has passed (then the request stays pending and acts
 * at the next cancellation point).  The handler runs with SIGCANCEL
 * blocked (no instance nests before it claims the exit) and an otherwise
 * empty mask; it unblocks SIGCANCEL once the exit is claimed, so an M's
 * mask is unchanged when a G unwinds out of it.  The first G (the process's main thread) unwinds
 * through our pthread_exit, which ends it as a G (thread.c).
 *
 * Threads that are not Gs are cancelled the same way, with a single
 * directed SIGCANCEL when asynchronous (glibc's protocol; we cannot let
 * glibc's pthread_cancel run, it would install its own SIGCANCEL handler
 * over ours, and glibc's handler would cancel whichever G an M happens to
 * run).
 */
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "pl.h"

#define PL_SIGCANCEL 32 /* __SIGRTMIN: glibc's SIGCANCEL */

static uintptr_t lib_lo, lib_hi; /* our own mapping */
static _Atomic int setup_state;  /* 0 not yet, 1 busy, 2 ok, 3 unavailable */

/* The kernel's struct sigaction (x86_64; aarch64's is the same). */
struct ksigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};
#define K_SA_RESTORER 0x04000000UL

static long ksigaction(int sig, const struct ksigaction *a,
                       struct ksigaction *o)
{
    return syscall(SYS_rt_sigaction, sig, a, o, 8);
}

static void cancel_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    int e = errno;
    if (si->si_code != SI_TKILL || si->si_pid != getpid())
        goto out;
    int ch = pl_self_cancelhandling();
    if ((ch & (PL_CANCELSTATE_BITMASK | PL_CANCELTYPE_BITMASK |
               PL_CANCELING_BITMASK | PL_EXITING_BITMASK |
               PL_TERMINATED_BITMASK)) !=
        (PL_CANCELTYPE_BITMASK | PL_CANCELING_BITMASK))
        goto out;
    uintptr_t pc = vt_arch_context_pc(uc);
    if (pc >= lib_lo && pc < lib_hi)
        goto out; /* inside the runtime: the canceller retries */
    /* From here on no other SIGCANCEL may act: pthread_cancel re-sends it
     * every millisecond until the target exits.  glibc's own pthread_exit
     * sets EXITING too, but only after code that may be slow the first
     * time (lazy binding, TLS set-up; far slower under an emulator),
     * during which a nested instance would unwind out of it, leaving
     * ld.so's locks held.  So the instance that acts claims the exit at
     * once (the kernel blocks SIGCANCEL while the handler runs, so none
     * nests before this), then unblocks SIGCANCEL: the handler leaves by
     * unwinding, and the M, which outlives the G, must not keep it
     * blocked; later instances see EXITING and return. */
    _Atomic int *chp = &PD_FIELD(pl_self_pd(), PD_CANCELHANDLING, _Atomic int);
    if (atomic_fetch_or(chp, PL_EXITING_BITMASK) & PL_EXITING_BITMASK)
        goto out;
    uint64_t cancel_bit = 1ULL << (PL_SIGCANCEL - 1);
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &cancel_bit, NULL, 8);
    PD_FIELD(pl_self_pd(), PD_RESULT, void *) = PTHREAD_CANCELED;
    pthread_exit(PTHREAD_CANCELED); /* ours: the first G's case too */
out:
    errno = e;
}

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t base = (uintptr_t)data;
    if (info->dlpi_addr != base)
        return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    lib_lo = lo;
    lib_hi = hi;
    return 1;
}

static void dummy_handler(int sig) { (void)sig; }

/* glibc's signal-return trampoline (__restore_rt, not exported): a
 * handler we install must return (and be unwound) through it.  On
 * aarch64 glibc sets none: the kernel returns through the vDSO's
 * __kernel_rt_sigreturn, which unwinders know, and so do we. */
#ifdef __x86_64__
#define NEED_RESTORER K_SA_RESTORER
#else
#define NEED_RESTORER 0UL
#endif
static void *glibc_restorer(void)
{
    if (!NEED_RESTORER)
        return NULL;
    struct ksigaction o;
    for (int s = 1; s <= 64; s++) {
        if (s == PL_SIGCANCEL || s == PL_SIGCANCEL + 1)
            continue;
        if (ksigaction(s, NULL, &o) == 0 && (o.flags & K_SA_RESTORER) &&
            o.handler != SIG_DFL && o.handler != SIG_IGN && o.restorer)
            return o.restorer;
    }
    /* No handler installed anywhere: install one through glibc for a
     * moment on SIGSYS, read the trampoline back, restore the action. */
    struct ksigaction saved;
    if (ksigaction(SIGSYS, NULL, &saved) != 0)
        return NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dummy_handler;
    if (vt_real.sigaction(SIGSYS, &sa, NULL) != 0)
        return NULL;
    void *r = NULL;
    if (ksigaction(SIGSYS, NULL, &o) == 0 && (o.flags & K_SA_RESTORER))
        r = o.restorer;
    ksigaction(SIGSYS, &saved, NULL);
    return r;
}

static bool setup(void)
{
    int st = atomic_load(&setup_state);
    while (st < 2) {
        int z = 0;
        if (st == 0 && atomic_compare_exchange_strong(&setup_state, &z, 1)) {
            Dl_info di;
            bool ok = false;
            if (dladdr((void *)cancel_handler, &di) && di.dli_fbase) {
                dl_iterate_phdr(find_self, di.dli_fbase);
                void *rest = glibc_restorer();
                if (lib_hi && (rest || !NEED_RESTORER)) {
                    struct ksigaction a = {
                        .handler = (void *)cancel_handler,
                        .flags = SA_SIGINFO | SA_RESTART | NEED_RESTORER,
                        .restorer = rest,
                        .mask = 0,
                    };
                    ok = ksigaction(PL_SIGCANCEL, &a, NULL) == 0;
                }
            }
            atomic_store(&setup_state, ok ? 2 : 3);
            return ok;
        }
        vt_yield();
        st = atomic_load(&setup_state);
    }
    return st == 2;
}

static bool async_wanted(int ch)
{
    return (ch & (PL_CANCELSTATE_BITMASK | PL_CANCELTYPE_BITMASK |
                  PL_EXITING_BITMASK | PL_TERMINATED_BITMASK)) ==
           PL_CANCELTYPE_BITMASK;
}

PL_PUBLIC int pthread_cancel(pthread_t th)
{
    if (!pl_on())
        return vt_real.pthread_cancel(th);
    void *pd = (void *)th;
    vt_g *g = vt_g_from_descriptor(pd);
    if (g ? vt_g_exited(g) : PD_FIELD(pd, PD_TID, volatile int) == 0)
        return 0; /* ended, not joined: its result is kept (glibc) */
    _Atomic int *chp = &PD_FIELD(pd, PD_CANCELHANDLING, _Atomic int);
    int old = atomic_load(chp), nw;
    do {
        nw = old | PL_CANCELING_BITMASK | PL_CANCELED_BITMASK;
        if (nw == old)
            return 0; /* already requested */
    } while (!atomic_compare_exchange_weak(chp, &old, nw));

    bool self = pd == pl_self_pd();
    if (self) {
        /* Deferred: acts at the next cancellation point; asynchronous: now
         * (glibc's __do_cancel). */
        if (async_wanted(nw))
            pthread_exit(PTHREAD_CANCELED);
        return 0;
    }
    if (!g) {
        if (async_wanted(nw) && setup())
            syscall(SYS_tgkill, getpid(), PD_FIELD(pd, PD_TID, int),
                    PL_SIGCANCEL);
        return 0;
    }
    if (!async_wanted(nw) || !setup()) {
        vt_interrupt(g); /* a parked G wakes and acts (pl_interrupted) */
        return 0;
    }
    /* Asynchronous: the target acts as it next leaves the runtime (core's
     * deliver hook, pl_signals_deliver_hook), and a running one at once
     * through SIGCANCEL to its OS thread; the handler refuses inside
     * libvthread, so until the target acts, its OS thread (whichever it
     * is then) is signalled again every millisecond, for at most a
     * second.  Off our P meanwhile (handed off at once): the target may be
     * runnable and waiting for a P, e.g. ours with VTHREAD_PROCS=1. */
    pid_t tid = vt_signal_notify(g);
    if (tid == 0)
        vt_interrupt(g);
    /* Parked: its wait ends and it acts (pl_interrupted); runnable: it
     * acts as it resumes, which is always through a runtime exit.  Return
     * at once, as NPTL's pthread_cancel does after its one signal (a
     * higher-priority canceller runs on before the target's cleanup). */
    if (tid <= 0)
        return 0;
    vt_syscall_enter_block();
    int64_t end = vt_now() + PL_NS;
    for (;;) {
        int ch = atomic_load(chp);
        if (!async_wanted(ch) || vt_g_exited(g) || vt_now() > end)
            break;
        if (tid > 0)
            syscall(SYS_tgkill, getpid(), tid, PL_SIGCANCEL);
        struct timespec ms = {0, 1000000};
        syscall(SYS_nanosleep, &ms, NULL);
        tid = vt_signal_notify(g);
    }
    vt_syscall_exit();
    return 0;
}
