/*
 * signal.c — thread-directed signals for Gs, and signal waits.
 *
 * A G has a synthetic tid, so glibc's pthread_kill would tgkill a task that
 * does not exist (ESRCH).  pthread_kill / pthread_sigqueue to a G:
 *  - the caller itself: tgkill / rt_tgsigqueueinfo to the calling M (the
 *    kernel delivers before the call returns, in the G's context since the
 *    handler runs on the G's stack with its thread pointer) — like raise(),
 *    which is glibc's and already right (it uses gettid);
 *  - another G: the one delivery path (pl.h): pending on the target's
 *    pl_gext (sigpend, sigqueued/sigval), then pl_sig_kick.  A running G
 *    gets it at once through a kick to its M (even in a loop that never
 *    calls anything); a runnable one when it resumes; a parked one is
 *    vt_interrupt()ed: its wait runs the handler (pl_interrupted ->
 *    pl_signals_deliver) and then resumes or returns EINTR (PL_INTR_* in
 *    pl.h).  A signal the program neither handles nor blocks (default
 *    action, ignored) goes straight to the kernel;
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
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pl.h"


static uint64_t bit(int sig) { return (uint64_t)1 << (sig - 1); }

/* Sends sig (with value v when queued) to the calling M. */
static void send_here(int sig, bool queued, union sigval v)
{
    pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
    if (!queued) {
        syscall(SYS_tgkill, pid, tid, sig);
        return;
    }
    siginfo_t si = pl_siginfo(sig, SI_QUEUE, v);
    syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si);
}

static uint64_t never_blocked(void)
{
    return bit(32) | bit(33) | bit(SIGKILL) | bit(SIGSTOP);
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

uint64_t pl_g_mask_now(vt_g *g)
{
    struct pl_gext *x = pl_gext(g);
    return (atomic_load(&x->flags) & PL_G_SIGMASK) ? x->sigmask : 0;
}

/* The calling OS thread's kernel mask, through core, which leaves the
 * routed signals out (sigroute.c) and remembers it. */
static void apply_mask(uint64_t m)
{
    sigset_t k = pl_sigset(m);
    vt_set_thread_sigmask(&k);
}

/* Records nw as g's mask (g is the caller) and applies it to its M. */
static void set_g_mask(vt_g *g, uint64_t nw)
{
    struct pl_gext *x = pl_gext(g);
    x->sigmask = nw;
    atomic_fetch_or(&x->flags, PL_G_SIGMASK);
    apply_mask(nw);
    /* process-directed signals routed here that it now blocks: another G
     * may take them */
    if (atomic_load(&x->sigrouted) & nw)
        pl_sig_give_back(g, nw);
}

/* Records mask m as g's own if g has none yet: the first G, whose mask was
 * set before it was a G, adopts its OS thread's mask when it becomes one
 * (afterwards the M it runs on may carry another G's mask). */
void pl_signals_adopt(vt_g *g, uint64_t m)
{
    struct pl_gext *x = pl_gext(g);
    if (!(atomic_load(&x->flags) & PL_G_SIGMASK))
        set_g_mask(g, m);
}

const char pl_kick_token;

/* Sends a kick (pl.h) for sig to the OS thread tid (it stands for every
 * G of that M: sigroute.c entry).  False only if the kernel refused (its
 * queue of real-time signals full). */
static bool send_kick(pid_t tid, int sig)
{
    siginfo_t k = pl_siginfo(
        sig, SI_QUEUE, (union sigval){.sival_ptr = (void *)&pl_kick_token});
    return syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &k) == 0;
}

void pl_sig_kick(vt_g *g, int sig)
{
    pid_t tid = vt_signal_notify(g);
    if (tid < 0)
        return; /* runnable: delivers when it resumes */
    /* (a refused kick: the G delivers when it next leaves the runtime) */
    if (tid > 0 && send_kick(tid, sig))
        return;
    vt_interrupt(g);
}

bool pl_sig_claim(vt_g *g, int sig, siginfo_t *info)
{
    struct pl_gext *x = pl_gext(g);
    uint64_t b = bit(sig);
    if (!(atomic_fetch_and(&x->sigpend, ~b) & b))
        return false;
    if (atomic_fetch_and(&x->sigrouted, ~b) & b) {
        pl_sig_slot_take(sig, info);
        return true;
    }
    bool queued = atomic_fetch_and(&x->sigqueued, ~b) & b;
    union sigval v = {0};
    if (queued && sig >= 32)
        v = x->sigval[sig - 32];
    *info = pl_siginfo(sig, queued ? SI_QUEUE : SI_TKILL, v);
    return true;
}

void pl_signals_deliver_hook(vt_g *g)
{
    struct pl_gext *x = pl_gext(g);
    if (x->delivering) {
        /* a runtime exit inside pl_signals_deliver itself (a lock it
         * released): the outer call delivers; keep the note */
        vt_signal_notify(g);
        return;
    }
    int e = errno;
    (void)pl_signals_deliver(g);
    /* an asynchronous cancellation acts here too (cancel.c) */
    int ch = pl_self_cancelhandling();
    if (pl_cancel_acts(ch) && (ch & PL_CANCELTYPE_BITMASK))
        pthread_exit(PTHREAD_CANCELED);
    errno = e;
}

/* Delivers what is pending on g (the caller) and not blocked by its mask.
 * A signal the program handles is not claimed here: a kick goes to this
 * M and entry() claims it when the kernel runs it, at once, or when the
 * handler that blocks it now returns.  (Claiming first and then sending
 * would lose it: the kernel keeps one instance of a standard signal per
 * thread, and a second sent while one is pending vanishes.)  Any kick of
 * that number landing in this G delivers it (sigroute.c, entry). */
static int deliver(vt_g *g);
int pl_signals_deliver(vt_g *g)
{
    struct pl_gext *x = pl_gext(g);
    bool outer = !x->delivering;
    x->delivering = true;
    int r = deliver(g);
    if (outer)
        x->delivering = false;
    return r;
}

static int deliver(vt_g *g)
{
    struct pl_gext *x = pl_gext(g);
    uint64_t mask = g_mask(g);
    /* process-directed signals no G took that this one now takes
     * (sigroute.c): routed to it, delivered below */
    int hs;
    while ((hs = pl_sig_take_held(~mask, NULL)) != 0) {
        atomic_fetch_or(&x->sigrouted, bit(hs));
        atomic_fetch_or(&x->sigpend, bit(hs));
    }
    uint64_t deliverable = atomic_load(&x->sigpend) & ~mask;
    if (!deliverable)
        return PL_INTR_NONE;
    if (atomic_load(&x->flags) & PL_G_SIGMASK) {
        /* this M now runs the G: give it the G's mask, so the kernel does
         * not hold the signal for the M's */
        apply_mask(x->sigmask);
    }
    int r = PL_INTR_NONE;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    while (deliverable) {
        int sig = __builtin_ctzll(deliverable) + 1;
        deliverable &= deliverable - 1;
        bool restart = false;
        if (!pl_sig_handled(sig, &restart)) {
            /* default or ignore: the kernel acts on the process */
            siginfo_t si;
            if (pl_sig_claim(g, sig, &si))
                send_here(sig, si.si_code == SI_QUEUE, si.si_value);
            continue;
        }
        send_kick(tid, sig);
        if (atomic_load(&x->sigpend) & bit(sig)) {
            /* held by the kernel for now (we are inside a handler that
             * blocks it): look again at the next runtime exit */
            vt_signal_notify(g);
            continue;
        }
        r = restart && r != PL_INTR_EINTR ? PL_INTR_RESTART : PL_INTR_EINTR;
    }
    return r;
}

void pl_sig_to_g(vt_g *g, int sig, bool queued, union sigval v)
{
    struct pl_gext *x = pl_gext(g);
    bool restart;
    if (!pl_sig_handled(sig, &restart) && !(pl_g_mask_now(g) & bit(sig))) {
        /* default action or ignored: the kernel's business, process-wide
         * (terminate, stop, continue, nothing); any of our Ms will do */
        send_here(sig, queued, v);
        return;
    }
    if (queued && sig >= 32)
        x->sigval[sig - 32] = v;
    if (queued)
        atomic_fetch_or(&x->sigqueued, bit(sig));
    else
        atomic_fetch_and(&x->sigqueued, ~bit(sig));
    /* (a locked RMW: the target's mask change, which also ends in one,
     * and then reads sigpend, cannot miss this bit) */
    atomic_fetch_or(&x->sigpend, bit(sig));
    if (!(pl_g_mask_now(g) & bit(sig))) {
        pl_sig_kick(g, sig);
        return;
    }
    /* else: delivered when g unblocks it (after_mask_change), or taken by
     * its sigwait: one waiting now gets a kick on the M it blocks in (it
     * published the set before looking at sigpend: timedwait) */
    int wtid = atomic_load(&x->sigwaittid);
    if (wtid && (atomic_load(&x->sigwaitset) & bit(sig)))
        send_kick(wtid, sig);
}

static int send_to(pthread_t th, int sig, bool queued, union sigval v)
{
    vt_g *g = pl_on() ? vt_g_from_descriptor((void *)th) : NULL;
    if (!g && !queued)
        return vt_real.pthread_kill(th, sig);
    if (!g) {
        /* glibc's pthread_sigqueue (not in vt_real): same checks, then
         * rt_tgsigqueueinfo to the thread's kernel tid. */
        if (!pl_sig_valid(sig) && sig != 0)
            return EINVAL;
        pid_t tid = PD_FIELD((void *)th, PD_TID, volatile int);
        if (tid <= 0)
            return ESRCH;
        siginfo_t si = pl_siginfo(sig, SI_QUEUE, v);
        return syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si) == 0
                   ? 0
                   : errno;
    }
    return pl_sig_send_g(g, sig, queued, v);
}

int pl_sig_send_g(vt_g *g, int sig, bool queued, union sigval v)
{
    if (sig == 0)
        return 0;
    if (!pl_sig_valid(sig))
        return EINVAL;
    if (g == vt_self() && !(pl_g_mask_now(g) & bit(sig))) {
        send_here(sig, queued, v); /* handled before we return */
        return 0;
    }
    if (vt_g_exited(g))
        return 0;
    /* another G; or this one, blocking sig: pending on it, as the kernel
     * keeps a thread-directed signal pending on its thread */
    pl_sig_to_g(g, sig, queued, v);
    return 0;
}

/* raise: pthread_kill to the caller (glibc's would tgkill its OS thread,
 * where a blocked signal stays pending for whichever G runs there next). */
PL_PUBLIC int raise(int sig)
{
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (!g)
        return (int)syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
    int e = pl_sig_send_g(g, sig, false, (union sigval){0});
    if (e) {
        errno = e;
        return -1;
    }
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

/* Delivers what the caller's G has pending (its own, or the process's)
 * and no longer blocks. */
static void after_mask_change(vt_g *g)
{
    uint64_t m = g_mask(g);
    if ((atomic_load(&pl_gext(g)->sigpend) | pl_sig_process_pending()) & ~m)
        (void)pl_signals_deliver(g);
}

/* pthread_sigmask for a G: the G's mask is recorded (pl_gext.sigmask)
 * and applied to the M running it now.  Returns 0 or EINVAL. */
static int g_sigmask(vt_g *g, int how, const sigset_t *set, sigset_t *old)
{
    if (set && how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK)
        return EINVAL;
    uint64_t cur = g_mask(g);
    if (old)
        *old = pl_sigset(cur);
    if (!set)
        return 0;
    /* never blocked: glibc's internal signals; SIGKILL, SIGSTOP */
    uint64_t s = pl_sigword(set) & ~never_blocked();
    uint64_t nw = how == SIG_BLOCK ? cur | s : how == SIG_UNBLOCK ? cur & ~s : s;
    set_g_mask(g, nw);
    after_mask_change(g);
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

/* The kernel's set pending on the whole process (ShdPnd), without what is
 * pending on the calling OS thread alone: that may be another G's.  False
 * if /proc cannot tell. */
bool pl_sig_kernel_shared(uint64_t *out)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/status",
                          O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[4096];
    ssize_t n = 0, r;
    while (n < (ssize_t)sizeof buf - 1 &&
           (r = syscall(SYS_read, fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    syscall(SYS_close, fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = strstr(buf, "\nShdPnd:");
    if (!p)
        return false;
    *out = strtoull(p + 8, NULL, 16);
    return true;
}

PL_PUBLIC int sigpending(sigset_t *set)
{
    sigemptyset(set);
    vt_g *g = pl_on() ? vt_self() : NULL;
    uint64_t k = 0;
    if (!g || !pl_sig_kernel_shared(&k)) {
        /* the system call (glibc's sigpending is just that) */
        if (syscall(SYS_rt_sigpending, set, 8) != 0)
            return -1;
        if (!g)
            return 0;
        k = pl_sigword(set);
    }
    uint64_t p = k | atomic_load(&pl_gext(g)->sigpend) |
                 (pl_sig_process_pending() & g_mask(g));
    *set = pl_sigset(p);
    return 0;
}

/* ------------------------------------------------------- signal waits */

/* Takes a signal in `want` pending on g itself (sent to it, or a
 * process-directed one routed to it); 0 if none. */
static int take_own(vt_g *g, uint64_t want, siginfo_t *info)
{
    uint64_t mine = atomic_load(&pl_gext(g)->sigpend) & want;
    while (mine) {
        int sig = __builtin_ctzll(mine) + 1;
        mine &= mine - 1;
        if (pl_sig_claim(g, sig, info))
            return sig;
    }
    return 0;
}

/* sigwait & co.  For a G: first what is pending on the G itself, then on
 * the process in vthread's hands (sigroute.c); else the M blocks in
 * rt_sigtimedwait with the P handed off, the set blocked on the M (routed
 * signals otherwise are not) and published, so that sysmon's routing can
 * send it a signal nobody else takes.  Never waits for glibc's internal
 * signals. */
static int timedwait1(const sigset_t *set, siginfo_t *info,
                     const struct timespec *ts)
{
    sigset_t s = *set;
    sigdelset(&s, 32);
    sigdelset(&s, 33);
    uint64_t want = pl_sigword(&s);
    pl_testcancel();
    siginfo_t local;
    if (!info)
        info = &local;
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (!g) {
        vt_syscall_enter_block();
        int r = (int)syscall(SYS_rt_sigtimedwait, &s, info, ts, 8);
        vt_syscall_exit();
        return r;
    }
    struct pl_gext *x = pl_gext(g);
    int r = take_own(g, want, info);
    if (!r)
        r = pl_sig_take_held(want, info);
    if (r)
        return r;
    vt_set_wait_reason("sigwait");
    vt_syscall_enter_block();
    /* from here the G stays on this M until vt_syscall_exit */
    uint64_t cur = 0, k;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &cur, 8);
    k = cur | want;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &k, NULL, 8);
    atomic_store(&x->sigwaittid, (int)syscall(SYS_gettid));
    atomic_store(&x->sigwaitset, want);
    r = pl_sig_take_held(want, info); /* routed just before we published */
    if (!r)
        r = take_own(g, want, info); /* sent just before we blocked it */
    while (!r) {
        r = (int)syscall(SYS_rt_sigtimedwait, &s, info, ts, 8);
        /* a kick (pl.h): what it stands for is pending on the G (see
         * entry() in sigroute.c), or was taken some other way */
        if (r > 0 && pl_sig_is_kick(info) && info->si_pid == getpid() &&
            !pl_sig_claim(g, r, info)) {
            r = 0;
            if (ts) { /* (rare: the G got the signal some other way) */
                r = -1;
                errno = EINTR;
            }
        }
    }
    int e = errno;
    atomic_store(&x->sigwaitset, 0);
    atomic_store(&x->sigwaittid, 0);
    apply_mask(g_mask(g));
    if (r > 0)
        (void)pl_sig_untag(r, info); /* sysmon's re-sent instance */
    vt_syscall_exit();
    vt_set_wait_reason(NULL);
    errno = e;
    return r;
}

/* As glibc's: SI_TKILL (tgkill, raise) is reported as SI_USER. */
static int timedwait(const sigset_t *set, siginfo_t *info,
                     const struct timespec *ts)
{
    siginfo_t local;
    if (!info)
        info = &local;
    int r = timedwait1(set, info, ts);
    if (r > 0 && info->si_code == SI_TKILL)
        info->si_code = SI_USER;
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

/* ------------------------------- a mask for the length of one call */

/* ppoll, epoll_pwait, pselect: the calling G's mask is *m while the call
 * waits.  Returns true when a signal the new mask lets through was
 * pending and its handler ran: the call must then fail with EINTR (the
 * kernel does the same).  Always pair with pl_sigmask_leave(*old). */
bool pl_sigmask_enter(const sigset_t *m, uint64_t *old)
{
    vt_g *g = vt_self();
    atomic_store(&pl_gext(g)->sigcall, 1);
    *old = g_mask(g);
    uint64_t nw = pl_sigword(m);
    set_g_mask(g, nw & ~never_blocked());
    if ((atomic_load(&pl_gext(g)->sigpend) | pl_sig_process_pending()) & ~nw)
        return pl_signals_deliver(g) != PL_INTR_NONE;
    return false;
}

void pl_sigmask_leave(uint64_t old)
{
    vt_g *g = vt_self();
    int e = errno;
    atomic_store(&pl_gext(g)->sigcall, 0);
    set_g_mask(g, old);
    after_mask_change(g);
    errno = e;
}

/* ------------------------------------------------ sigsuspend, pause */

/* A G suspends by parking with mask m until a handler has run: signals
 * reach it as signals reach any parked G (pthread_kill, or sysmon's
 * routing of process-directed ones: its mask is m meanwhile).  The P and
 * the M go on running other Gs.  A cancellation point. */
static bool no_handler_ran(void *ctx)
{
    return !(atomic_load(&((struct pl_gext *)ctx)->sigcall) & 2);
}

static int g_suspend(vt_g *g, uint64_t m)
{
    struct pl_gext *x = pl_gext(g);
    pl_testcancel();
    uint64_t old = g_mask(g);
    /* from here a handler run on this G by the kernel's choice of our M
     * (not through our own delivery) ends the call too: sigcall */
    atomic_store(&x->sigcall, 1);
    set_g_mask(g, m & ~never_blocked());
    for (;;) {
        if (pl_interrupted() != PL_INTR_NONE) /* handlers ran, or cancel */
            break;
        vt_set_wait_reason("sigsuspend");
        /* validate, under the queue lock: no handler ran since the check
         * above (one that runs later finds us in the runtime: deferred,
         * routed to us, and the park is interrupted) */
        (void)vt_park(&x->sigwaitset, no_handler_ran, NULL, x, 0,
                      VT_PARK_INTERRUPTIBLE, 0, NULL);
    }
    atomic_store(&x->sigcall, 0);
    set_g_mask(g, old);
    after_mask_change(g);
    errno = EINTR;
    return -1;
}

PL_PUBLIC int sigsuspend(const sigset_t *set)
{
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (!g)
        return (int)syscall(SYS_rt_sigsuspend, set, 8);
    return g_suspend(g, pl_sigword(set));
}
PL_ALIAS(sigsuspend, __sigsuspend);

PL_PUBLIC int pause(void)
{
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (!g)
#ifdef SYS_pause
        return (int)syscall(SYS_pause);
#else /* aarch64 */
        return (int)syscall(SYS_ppoll, NULL, 0, NULL, NULL, 8);
#endif
    return g_suspend(g, g_mask(g));
}

/* glibc's __sigpause: X/Open (is_sig: the current mask without sig) or
 * BSD (an old-style mask of signals 1..32). */
PL_PUBLIC int __sigpause(int sig_or_mask, int is_sig)
{
    sigset_t set;
    sigemptyset(&set);
    if (is_sig) {
        if (pthread_sigmask(SIG_BLOCK, NULL, &set) != 0)
            return -1;
        if (sigdelset(&set, sig_or_mask) < 0)
            return -1; /* EINVAL, as glibc's */
    } else {
        for (int s = 1; s <= 32; s++)
            if ((unsigned)sig_or_mask & (1u << (s - 1)))
                sigaddset(&set, s);
    }
    return sigsuspend(&set);
}
/* <signal.h> renames sigpause to __xpg_sigpause: name both explicitly */
PL_PUBLIC int pl_bsd_sigpause(int mask) __asm__("sigpause");
PL_PUBLIC int pl_bsd_sigpause(int mask) { return __sigpause(mask, 0); }
PL_PUBLIC int pl_xpg_sigpause(int sig) __asm__("__xpg_sigpause");
PL_PUBLIC int pl_xpg_sigpause(int sig) { return __sigpause(sig, 1); }
