/*
 * signal.c — thread-directed signals for Gs, and signal waits.
 *
 * A G has a synthetic tid, so glibc's pthread_kill would tgkill a task that
 * does not exist (ESRCH).  pthread_kill / pthread_sigqueue to a G:
 *  - the caller itself: tgkill / rt_tgsigqueueinfo to the calling M (the
 *    kernel delivers before the call returns, in the G's context since the
 *    handler runs on the G's stack with its thread pointer) — like raise(),
 *    which is glibc's and already right (it uses gettid);
 *  - another G: the signal is recorded pending in the target's pl_gext
 *    (sigpend) and the target is vt_interrupt()ed.  A parked G wakes in its
 *    wait, runs the handler in its own context from pl_interrupted (by
 *    sending the signal to its current M, where the kernel applies the
 *    handler's sa_mask, SA_SIGINFO, SA_RESETHAND ...) and then resumes the
 *    wait or returns EINTR (see PL_INTR_* in pl.h).  A G that is running or
 *    runnable runs it at its next interruptible wait (core cannot tell us
 *    which M runs it: NOTES-for-core 12) — a G busy in user code without
 *    ever waiting does not see the signal.
 *  - a G that has exited but is not joined: 0, the signal is dropped
 *    (glibc >= 2.34).
 * Signal numbers are checked like glibc (EINVAL outside 1..64 and for
 * glibc's internal SIGCANCEL/SIGSETXID); signal 0 checks existence only.
 *
 * Masks.  pthread_sigmask/sigprocmask stay glibc's: they change the mask of
 * the OS thread (M) that runs the G at that moment.  The mask follows the
 * M, not the G (a G that migrates leaves its mask behind and adopts the new
 * M's; NOTES.md).  A signal pending on a G that its current M blocks stays
 * pending on the G; pthread_sigmask (interposed for that reason) delivers
 * it when the G unblocks it, and sigpending reports it.
 *
 * sigwait, sigwaitinfo, sigtimedwait block the M in the kernel: the P is
 * handed off first (vt_syscall_enter_block).
 */
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pl.h"

static bool sig_valid(int sig)
{
    return sig >= 1 && sig <= 64 && sig != 32 && sig != 33;
}

static uint64_t bit(int sig) { return (uint64_t)1 << (sig - 1); }

/* Sends sig (with value v when queued) to the calling M. */
static void send_here(int sig, bool queued, union sigval v)
{
    pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
    if (!queued) {
        syscall(SYS_tgkill, pid, tid, sig);
        return;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = pid;
    si.si_uid = getuid();
    si.si_value = v;
    syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si);
}

static uint64_t m_blocked(void)
{
    uint64_t cur = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &cur, 8);
    return cur;
}

/* The G's own mask when it set one (or inherited one), else its M's. */
static uint64_t g_mask(vt_g *g)
{
    struct pl_gext *x = pl_gext(g);
    return (atomic_load(&x->flags) & PL_G_SIGMASK) ? x->sigmask : m_blocked();
}

uint64_t pl_signals_thread_mask(void) { return m_blocked(); }

/* Records mask m as g's own if g has none yet: the first G, whose mask was
 * set before it was a G, adopts its OS thread's mask when it becomes one
 * (afterwards the M it runs on may carry another G's mask). */
void pl_signals_adopt(vt_g *g, uint64_t m)
{
    struct pl_gext *x = pl_gext(g);
    if (atomic_load(&x->flags) & PL_G_SIGMASK)
        return;
    x->sigmask = m;
    atomic_fetch_or(&x->flags, PL_G_SIGMASK);
}

int pl_signals_deliver(vt_g *g)
{
    struct pl_gext *x = pl_gext(g);
    uint64_t p = atomic_load(&x->sigpend);
    if (!p)
        return PL_INTR_NONE;
    uint64_t deliverable = p & ~g_mask(g);
    if (deliverable && (atomic_load(&x->flags) & PL_G_SIGMASK)) {
        /* this M now runs the G: give it the G's mask, so the kernel does
         * not hold the signal for the M's */
        sigset_t m;
        sigemptyset(&m);
        memcpy(&m, &x->sigmask, sizeof x->sigmask);
        vt_set_thread_sigmask(&m);
    }
    int r = PL_INTR_NONE;
    while (deliverable) {
        int sig = __builtin_ctzll(deliverable) + 1;
        deliverable &= deliverable - 1;
        uint64_t old = atomic_fetch_and(&x->sigpend, ~bit(sig));
        if (!(old & bit(sig)))
            continue;
        bool queued = atomic_fetch_and(&x->sigqueued, ~bit(sig)) & bit(sig);
        union sigval v = {0};
        if (queued && sig >= 32)
            v = x->sigval[sig - 32];
        struct sigaction sa;
        bool handled = vt_real.sigaction(sig, NULL, &sa) == 0 &&
                       sa.sa_handler != SIG_IGN &&
                       (sa.sa_handler != SIG_DFL || sa.sa_flags & SA_SIGINFO);
        send_here(sig, queued, v);
        if (handled)
            r = (sa.sa_flags & SA_RESTART) && r != PL_INTR_EINTR
                    ? PL_INTR_RESTART
                    : PL_INTR_EINTR;
    }
    return r;
}

static int send_to(pthread_t th, int sig, bool queued, union sigval v)
{
    vt_g *g = pl_on() ? vt_g_from_descriptor((void *)th) : NULL;
    if (!g && !queued)
        return vt_real.pthread_kill(th, sig);
    if (!g) {
        /* glibc's pthread_sigqueue (not in vt_real): same checks, then
         * rt_tgsigqueueinfo to the thread's kernel tid. */
        if (!sig_valid(sig) && sig != 0)
            return EINVAL;
        pid_t tid = PL_PD_FIELD((void *)th, PL_PD_TID, volatile int);
        if (tid <= 0)
            return ESRCH;
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_signo = sig;
        si.si_code = SI_QUEUE;
        si.si_pid = getpid();
        si.si_uid = getuid();
        si.si_value = v;
        return syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si) == 0
                   ? 0
                   : errno;
    }
    if (sig == 0)
        return 0;
    if (!sig_valid(sig))
        return EINVAL;
    if (g == vt_self()) {
        send_here(sig, queued, v);
        return 0;
    }
    if (vt_g_exited(g))
        return 0;
    struct pl_gext *x = pl_gext(g);
    if (queued && sig >= 32)
        x->sigval[sig - 32] = v;
    if (queued)
        atomic_fetch_or(&x->sigqueued, bit(sig));
    else
        atomic_fetch_and(&x->sigqueued, ~bit(sig));
    atomic_fetch_or(&x->sigpend, bit(sig));
    vt_interrupt(g);
    return 0;
}

PL_PUBLIC int pthread_kill(pthread_t th, int sig)
{
    union sigval v = {0};
    return send_to(th, sig, false, v);
}

PL_PUBLIC int pthread_sigqueue(pthread_t th, int sig, const union sigval v)
{
    return send_to(th, sig, true, v);
}

/* Delivers what the caller's G has pending and no longer blocks. */
static void after_mask_change(void)
{
    vt_g *g = vt_self();
    if (g && atomic_load(&pl_gext(g)->sigpend))
        (void)pl_signals_deliver(g);
}

/* pthread_sigmask for a G: the G's mask is recorded (pl_gext.sigmask)
 * and applied to the M running it now.  Returns 0 or EINVAL. */
static int g_sigmask(vt_g *g, int how, const sigset_t *set, sigset_t *old)
{
    if (set && how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK)
        return EINVAL;
    struct pl_gext *x = pl_gext(g);
    uint64_t cur = g_mask(g);
    if (old) {
        sigemptyset(old);
        memcpy(old, &cur, sizeof cur);
    }
    if (!set)
        return 0;
    uint64_t s;
    memcpy(&s, set, sizeof s);
    /* never blocked: glibc's internal signals; SIGKILL, SIGSTOP */
    s &= ~(bit(32) | bit(33) | bit(SIGKILL) | bit(SIGSTOP));
    uint64_t nw = how == SIG_BLOCK ? cur | s : how == SIG_UNBLOCK ? cur & ~s : s;
    x->sigmask = nw;
    atomic_fetch_or(&x->flags, PL_G_SIGMASK);
    sigset_t k;
    sigemptyset(&k);
    memcpy(&k, &nw, sizeof nw);
    vt_set_thread_sigmask(&k);
    after_mask_change();
    return 0;
}

PL_PUBLIC int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (!g)
        return vt_real.pthread_sigmask(how, set, old);
    return g_sigmask(g, how, set, old);
}

PL_PUBLIC int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (!g)
        return vt_real.sigprocmask(how, set, old);
    int e = g_sigmask(g, how, set, old);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

PL_PUBLIC int sigpending(sigset_t *set)
{
    /* the system call (glibc's sigpending is just that) */
    sigemptyset(set);
    if (syscall(SYS_rt_sigpending, set, 8) != 0)
        return -1;
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (g) {
        uint64_t p = atomic_load(&pl_gext(g)->sigpend);
        for (int s = 1; s <= 64; s++)
            if (p & bit(s))
                sigaddset(set, s);
    }
    return 0;
}

/* ------------------------------------------------------- signal waits */

/* glibc's sigtimedwait: never waits for its internal signals, and reports
 * SI_TKILL from our own process as SI_USER (glibc does the same). */
static int timedwait(const sigset_t *set, siginfo_t *info,
                     const struct timespec *ts)
{
    sigset_t s = *set;
    sigdelset(&s, 32);
    sigdelset(&s, 33);
    pl_testcancel();
    vt_syscall_enter_block();
    int r = (int)syscall(SYS_rt_sigtimedwait, &s, info, ts, 8);
    vt_syscall_exit();
    return r;
}

PL_PUBLIC int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
    return timedwait(set, info, NULL);
}

PL_PUBLIC int sigtimedwait(const sigset_t *set, siginfo_t *info,
                           const struct timespec *ts)
{
    return timedwait(set, info, ts);
}

PL_PUBLIC int sigwait(const sigset_t *set, int *sig)
{
    int r;
    do
        r = timedwait(set, NULL, NULL);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno;
    *sig = r;
    return 0;
}
