/*
 * sigroute.c — the program's signal actions, and process-directed signals
 * delivered by per-G masks.
 *
 * The problem.  The kernel delivers a process-directed signal (kill,
 * sigqueue, a terminal's ^C, a timer) to some OS thread whose kernel mask
 * lets it through.  Under vthread an OS thread is an M that runs many Gs,
 * each with its own mask (signal.c): the M's kernel mask says nothing about
 * which G would take the signal under NPTL.
 *
 * The scheme.  For every signal the program handles with a function
 * ("routed" signals: installed through sigaction/signal here), the kernel
 * action is our entry() with the program's sa_mask and flags, and no M
 * blocks it in the kernel (core strips routed signals from every M's mask:
 * vt_signal_set_routed).  entry() runs on whatever M the kernel chose:
 *  - on a thread vthread does not run (runtime not started, a foreign
 *    thread): the program's handler runs, as under NPTL;
 *  - in a G whose mask lets the signal through: the handler runs there
 *    (the kernel already applied sa_mask; SA_RESTART acts on the G's
 *    system call as usual);
 *  - in a G that blocks it, when it is directed at that G (raise, tgkill
 *    from our process; SIGPIPE/SIGXFSZ the kernel raises on the writer):
 *    pending on that G (signal.c delivers it when the G unblocks it);
 *  - otherwise (a G that blocks it, or vthread's own code on the M): the
 *    signal is recorded in its process slot and sysmon is woken
 *    (vt_signal_defer): entry() does nothing else, because it may have
 *    interrupted the runtime.
 * sysmon then runs route() (vt_hooks.route_signals), an ordinary context:
 *  1. the first G (main) if its mask lets the signal through (the kernel
 *     prefers the main thread too), else the newest G that does: the
 *     signal is marked pending-routed on that G and kicked (pl.h, "one
 *     delivery path"): run at once if the G runs its own code, when it
 *     resumes if runnable, by its wait if parked (pl_interrupted ->
 *     pl_signals_deliver -> a kick to its own M -> entry(), which takes
 *     the routed slot: pl_sig_claim);
 *  2. else a G in sigwait/sigwaitinfo/sigtimedwait for it: re-sent, tagged,
 *     to the M that G blocks in (which blocks the signal meanwhile, so the
 *     kernel keeps it for the wait);
 *  3. else it stays "held": pending on the process, taken by the first G
 *     that unblocks it (pthread_sigmask, sigsuspend) or waits for it, and
 *     reported by sigpending.
 * A re-sent signal that finds its G gone from that M comes back to entry(),
 * which records it again: routing retries until some G takes it.
 *
 * Slots.  One instance per signal number is in vthread's hands at a time
 * (like the kernel's process-pending set for standard signals; a second
 * real-time instance that arrives meanwhile is dropped): slot[sig] holds
 * its siginfo from arrival until a G takes it.  `busy` bit = slot in use
 * (set by entry, which alone writes the siginfo; cleared by whoever takes
 * it, after copying); `arrived` = to route; `held` = nobody took it.
 * `arrived` and `busy` are atomics written from signal handlers; `held`
 * and routing decisions are guarded by route_lock (a G holding it runs
 * no handler meanwhile: rlock).
 *
 * Tags.  A re-sent signal must carry the original siginfo (si_pid of the
 * sender, SI_USER ...), but rt_tgsigqueueinfo only lets a thread forge
 * si_code >= 0 when its tid is the process id.  So the re-sent instance
 * is SI_QUEUE with si_value = &slot[sig] and our pid: entry() and
 * sigwaitinfo (pl_sig_untag) recognise it and substitute the slot's
 * siginfo.
 *
 * Not routed: SIG_DFL and SIG_IGN (the kernel's process-wide default
 * actions and sigwait need no routing), the synchronous fault signals
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS: always for the
 * faulting thread; installed as given), SIGKILL, SIGSTOP and glibc's
 * internal 32 and 33 (glibc refuses them).  The preemption signal (core,
 * SIGURG by default) keeps core's handler, which chains to entry() for
 * instances core did not send.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pl.h"

#define NSIGS 64

/* The program's action per signal, as it installed it.  `ours`: the
 * kernel action is entry() (else the kernel holds the program's action
 * itself and is the authority).  Written by sigaction (not serialised
 * against itself: concurrent sigaction calls for one signal race under
 * glibc too); read by entry() in signal handlers, field by field. */
struct act {
    _Atomic(void *) handler;
    _Atomic int flags;
    _Atomic bool ours;
    sigset_t mask;
};
static struct act acts[NSIGS + 1];

static siginfo_t slot[NSIGS + 1];
static _Atomic uint64_t busy, arrived;
static uint64_t held;              /* guarded by route_lock */
static _Atomic int route_lock;
static _Atomic pid_t cached_pid;
static uint64_t sigintr;           /* siginterrupt's set; under nothing */

/* A G holding route_lock runs no handler meanwhile (a handler's
 * pthread_sigmask would take it again); sysmon blocks every signal. */
static void rlock(void)
{
    vt_signals_hold();
    int z;
    while (z = 0, !atomic_compare_exchange_weak(&route_lock, &z, 1))
        pl_relax();
}
static void runlock(void)
{
    atomic_store(&route_lock, 0);
    vt_signals_release();
}

static pid_t my_pid(void)
{
    pid_t p = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    return p ? p : (pid_t)syscall(SYS_getpid);
}

static bool is_fault(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
           sig == SIGTRAP || sig == SIGSYS;
}

static bool routable(int sig)
{
    return sig >= 1 && sig <= NSIGS && sig != SIGKILL && sig != SIGSTOP &&
           sig != 32 && sig != 33 && !is_fault(sig);
}

/* ------------------------------------------------------ entry (handler) */

/* The default action of sig, for an instance entry() must act on while
 * the program's action is SIG_DFL (SA_RESETHAND, or a race with
 * sigaction): ignore, or let the kernel carry it out. */
static void act_default(int sig)
{
    if (sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT)
        return;
    struct sigaction d;
    memset(&d, 0, sizeof d);
    d.sa_handler = SIG_DFL;
    vt_real.sigaction(sig, &d, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &s, NULL, 8);
    syscall(SYS_tgkill, my_pid(), (pid_t)syscall(SYS_gettid), sig);
}

/* Runs the program's action for sig here. */
static void run_program(int sig, siginfo_t *info, void *uc)
{
    struct act *a = &acts[sig];
    void *h = atomic_load(&a->handler);
    int flags = atomic_load(&a->flags);
    if (h == (void *)SIG_IGN)
        return;
    if (h == (void *)SIG_DFL) {
        act_default(sig);
        return;
    }
    if (flags & SA_RESETHAND) {
        /* one-shot: the action is SIG_DFL from now on */
        void *exp = h;
        if (atomic_compare_exchange_strong(&a->handler, &exp, (void *)SIG_DFL)) {
            struct sigaction d;
            memset(&d, 0, sizeof d);
            d.sa_handler = SIG_DFL;
            atomic_store(&a->ours, false);
            vt_real.sigaction(sig, &d, NULL);
            vt_signal_set_routed(vt_signal_routed() & ~pl_sigbit(sig));
        }
    }
    if (flags & SA_SIGINFO)
        ((void (*)(int, siginfo_t *, void *))h)(sig, info, uc);
    else
        ((void (*)(int))h)(sig);
}

static bool tagged(int sig, const siginfo_t *info)
{
    return info->si_code == SI_QUEUE && info->si_pid == my_pid() &&
           info->si_value.sival_ptr == (void *)&slot[sig];
}

/* Records sig for sysmon.  Async-signal-safe. */
static void arrive(int sig, const siginfo_t *info)
{
    uint64_t b = pl_sigbit(sig);
    if (atomic_fetch_or(&busy, b) & b)
        return; /* one instance in our hands already: coalesced */
    slot[sig] = *info;
    atomic_fetch_or(&arrived, b);
    vt_signal_defer();
}

/* The program's handler ran in G g (entry, ctx G): inside sigsuspend &
 * co. that ends the call (pl.h, sigcall). */
static void ran_in(vt_g *g)
{
    struct pl_gext *x = pl_gext(g);
    if (atomic_load(&x->sigcall) & 1) {
        atomic_fetch_or(&x->sigcall, 2);
        vt_interrupt_self_async(g);
    }
}

/* entry() instances running now, on any thread (drain). */
static _Atomic int in_entry;

static void entry_body(int sig, siginfo_t *info, void *uc);
static void entry(int sig, siginfo_t *info, void *uc)
{
    atomic_fetch_add(&in_entry, 1);
    /* a program handler run from here runs in the kernel's frame: its G
     * stays on this M until it returns (vt_signal_frame) */
    vt_signal_frame(1);
    entry_body(sig, info, uc);
    vt_signal_frame(-1);
    atomic_fetch_sub(&in_entry, 1);
}

static void entry_body(int sig, siginfo_t *info, void *uc)
{
    int saved = errno;
    uint64_t b = pl_sigbit(sig);
    vt_g *g;
    int ctx = vt_signal_context(&g);
    if (pl_sig_is_kick(info) && info->si_pid == my_pid()) {
        /* A kick (pl.h): the handler runs here if this is a G in its own
         * code that has sig pending, does not block it, and nobody
         * delivered it meanwhile.  Otherwise nothing: the target delivers
         * itself when it leaves the runtime or runs again (core's
         * notify). */
        /* The kernel keeps one instance of a standard signal per thread:
         * a kick that lands stands for every kick of that number sent to
         * this M, whichever G it named.  So it delivers sig to the G it
         * finds, if that G has it pending. */
        siginfo_t si;
        if (ctx == VT_SIGCTX_G && !(pl_g_mask_now(g) & b) &&
            pl_sig_claim(g, sig, &si)) {
            run_program(sig, &si, uc);
            ran_in(g);
        }
        errno = saved;
        return;
    }
    bool tag = tagged(sig, info);
    if (ctx == VT_SIGCTX_FOREIGN) {
        if (tag) { /* a re-sent instance on a thread that left vthread */
            siginfo_t orig = slot[sig];
            atomic_fetch_and(&busy, ~b);
            run_program(sig, &orig, uc);
        } else {
            run_program(sig, info, uc);
        }
        errno = saved;
        return;
    }
    if (ctx == VT_SIGCTX_G) {
        if (!(pl_g_mask_now(g) & b)) {
            if (tag) {
                siginfo_t orig = slot[sig];
                atomic_fetch_and(&busy, ~b);
                run_program(sig, &orig, uc);
            } else {
                run_program(sig, info, uc);
            }
            ran_in(g);
            errno = saved;
            return;
        }
        bool to_this_g =
            !tag && info->si_pid == my_pid() &&
            (info->si_code == SI_TKILL ||
             ((sig == SIGPIPE || sig == SIGXFSZ) && info->si_code == SI_USER));
        if (to_this_g) { /* raise() while blocked: pending on the G */
            struct pl_gext *x = pl_gext(g);
            atomic_fetch_and(&x->sigqueued, ~b);
            atomic_fetch_or(&x->sigpend, b);
            errno = saved;
            return;
        }
    }
    if (tag) /* bounced: its slot still holds the original */
        atomic_fetch_or(&arrived, b), vt_signal_defer();
    else
        arrive(sig, info);
    errno = saved;
}

/* ------------------------------------------------------ routing (sysmon) */

struct pick {
    uint64_t b;
    bool main_ok;  /* pass 1: the first G takes it */
    vt_g *first;   /* pass 1: the first G seen (it is listed last) */
    bool done;
    int sig;
};

static bool takes(vt_g *g, uint64_t b)
{
    struct pl_gext *x = pl_gext(g);
    return !(pl_g_mask_now(g) & b) && !(atomic_load(&x->sigpend) & b);
}

static bool pass1(vt_g *g, void *arg)
{
    struct pick *pk = arg;
    pk->first = g; /* ends as the oldest G */
    return true;
}

static void resend_tagged(pid_t tid, int sig)
{
    siginfo_t si = pl_siginfo(sig, SI_QUEUE, (union sigval){.sival_ptr = &slot[sig]});
    if (syscall(SYS_rt_tgsigqueueinfo, my_pid(), tid, sig, &si) != 0) {
        /* the M is gone (cannot happen: Ms never exit) or the queue is
         * full: try again later */
        atomic_fetch_or(&arrived, pl_sigbit(sig));
        vt_signal_defer();
    }
}

/* Gives sig to g (under the all-G lock, so g stays alive): pending on
 * it as routed, and kicked (pl.h, "one delivery path"). */
static void give(vt_g *g, int sig)
{
    struct pl_gext *x = pl_gext(g);
    uint64_t b = pl_sigbit(sig);
    atomic_fetch_or(&x->sigrouted, b);
    atomic_fetch_or(&x->sigpend, b);
    pl_sig_kick(g, sig);
}

static bool pass2(vt_g *g, void *arg)
{
    struct pick *pk = arg;
    if (pk->main_ok ? g != pk->first : !takes(g, pk->b))
        return true;
    give(g, pk->sig);
    pk->done = true;
    return false;
}

/* Last resort before holding it: a G that does not block sig but has it
 * pending already (every one did, in a storm).  The kernel would keep the
 * process's instance apart from the thread's and deliver both; here they
 * merge into one delivery, but it is delivered: held, nobody would look
 * at it again (a lost wake-up). */
static bool pass_merge(vt_g *g, void *arg)
{
    struct pick *pk = arg;
    if (pl_g_mask_now(g) & pk->b)
        return true;
    give(g, pk->sig);
    pk->done = true;
    return false;
}

static bool pass_waiter(vt_g *g, void *arg)
{
    struct pick *pk = arg;
    struct pl_gext *x = pl_gext(g);
    if (!(atomic_load(&x->sigwaitset) & pk->b))
        return true;
    int tid = atomic_load(&x->sigwaittid);
    if (!tid)
        return true;
    resend_tagged(tid, pk->sig);
    pk->done = true;
    return false;
}

static void route_one(int sig)
{
    struct pick pk = {.b = pl_sigbit(sig), .sig = sig};
    vt_g_foreach(pass1, &pk);
    /* (pass 1 and 2 each hold the all-G lock; between them `first` may
     * exit: pass 2 then just does not meet it) */
    pk.main_ok = pk.first && takes(pk.first, pk.b);
    vt_g_foreach(pass2, &pk);
    if (!pk.done && pk.main_ok) { /* the first G changed its mind */
        pk.main_ok = false;
        vt_g_foreach(pass2, &pk);
    }
    if (!pk.done)
        vt_g_foreach(pass_waiter, &pk);
    if (!pk.done)
        vt_g_foreach(pass_merge, &pk);
    if (!pk.done)
        held |= pk.b;
}

void pl_sig_route(void)
{
    rlock();
    uint64_t a = atomic_exchange(&arrived, 0);
    while (a) {
        int sig = __builtin_ctzll(a) + 1;
        a &= a - 1;
        held &= ~pl_sigbit(sig);
        route_one(sig);
    }
    runlock();
}

/* ------------------------------------------------- what signal.c calls */

uint64_t pl_sig_process_pending(void) { return atomic_load(&busy); }

int pl_sig_take_held(uint64_t want, siginfo_t *info)
{
    if (!(atomic_load(&busy) & want))
        return 0;
    rlock();
    /* not routed yet (sysmon is on its way): as good as held */
    uint64_t a = atomic_fetch_and(&arrived, ~want) & want;
    held |= a;
    uint64_t h = held & want;
    int sig = 0;
    if (h) {
        sig = __builtin_ctzll(h) + 1;
        held &= ~pl_sigbit(sig);
        if (info) { /* taken: the slot is free again */
            *info = slot[sig];
            atomic_fetch_and(&busy, ~pl_sigbit(sig));
        } /* else claimed: routed to the caller, whose pl_sig_claim
           * frees it */
    }
    runlock();
    return sig;
}

void pl_sig_slot_take(int sig, siginfo_t *info)
{
    *info = slot[sig];
    atomic_fetch_and(&busy, ~pl_sigbit(sig));
}

bool pl_sig_untag(int sig, siginfo_t *info)
{
    if (!tagged(sig, info))
        return false;
    *info = slot[sig];
    atomic_fetch_and(&busy, ~pl_sigbit(sig));
    return true;
}

void pl_sig_give_back(vt_g *g, uint64_t set)
{
    struct pl_gext *x = pl_gext(g);
    uint64_t r = atomic_load(&x->sigrouted) & set, back = 0;
    while (r) {
        uint64_t b = r & -r;
        r &= r - 1;
        /* the pending bit first, as every taker does (pl_sig_claim) */
        if (atomic_fetch_and(&x->sigpend, ~b) & b) {
            atomic_fetch_and(&x->sigrouted, ~b);
            back |= b;
        }
    }
    if (!back)
        return;
    atomic_fetch_or(&arrived, back);
    vt_signal_defer();
}

bool pl_sig_handled(int sig, bool *restart)
{
    struct sigaction k;
    if (sig < 1 || sig > NSIGS)
        return false;
    if (atomic_load(&acts[sig].ours)) {
        void *h = atomic_load(&acts[sig].handler);
        *restart = atomic_load(&acts[sig].flags) & SA_RESTART;
        return h != (void *)SIG_DFL && h != (void *)SIG_IGN;
    }
    if (vt_real.sigaction(sig, NULL, &k) != 0)
        return false;
    *restart = k.sa_flags & SA_RESTART;
    return k.sa_handler != SIG_IGN &&
           (k.sa_handler != SIG_DFL || (k.sa_flags & SA_SIGINFO));
}

/* ------------------------------------------------ kill, sigqueue to self */

/* The kernel gives a process-directed signal to the main thread when that
 * thread does not block it, and when the main thread sent it to its own
 * process, the handler has run before kill() returns.  Under vthread the
 * kernel would pick the original OS thread, whatever G it runs; so this
 * one case is done here: the main G, taking the signal, sends it to itself
 * (tagged, with the siginfo kill or sigqueue would give).  Every other
 * case is the kernel's, then entry()'s routing. */
static bool main_g_takes(int sig)
{
    if (!pl_on() || sig < 1 || sig > NSIGS || !atomic_load(&acts[sig].ours))
        return false;
    vt_g *g = vt_self();
    return g && vt_g_id(g) == 1 && !(pl_g_mask_now(g) & pl_sigbit(sig));
}

static void to_self(int sig, int code, union sigval v)
{
    uint64_t b = pl_sigbit(sig);
    if (atomic_fetch_or(&busy, b) & b) {
        /* one already pending in our hands: coalesced, and handled here
         * if nobody took it yet, as the kernel would */
        (void)pl_signals_deliver(vt_self());
        return;
    }
    slot[sig] = pl_siginfo(sig, code, v);
    give(vt_self(), sig); /* a kick to our own M: handled before we return */
}

/* True if pidfd refers to this process: a pidfd whose fdinfo says so, or
 * a /proc/PID directory (pidfd_send_signal takes those too). */
static bool pidfd_is_us(int pidfd)
{
    struct stat a, b;
    if (fstat(pidfd, &a) == 0 && S_ISDIR(a.st_mode))
        return stat("/proc/self", &b) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nPid:");
    return p && (pid_t)strtol(p + 5, NULL, 10) == my_pid();
}

/* pidfd_send_signal to our own process from the main thread, which takes
 * the signal: handled before it returns, as kill() (above). */
PL_PUBLIC int pidfd_send_signal(int pidfd, int sig, siginfo_t *info,
                                unsigned flags)
{
    if (!info && flags == 0 && main_g_takes(sig) && pidfd_is_us(pidfd)) {
        to_self(sig, SI_USER, (union sigval){0});
        return 0;
    }
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags);
}

PL_PUBLIC int kill(pid_t pid, int sig)
{
    if (pid == my_pid() && main_g_takes(sig)) {
        to_self(sig, SI_USER, (union sigval){0});
        return 0;
    }
    return (int)syscall(SYS_kill, pid, sig);
}

PL_PUBLIC int sigqueue(pid_t pid, int sig, const union sigval v)
{
    if (pid == my_pid() && main_g_takes(sig)) {
        to_self(sig, SI_QUEUE, v);
        return 0;
    }
    /* glibc's: rt_sigqueueinfo with SI_QUEUE, our pid and uid */
    siginfo_t si = pl_siginfo(sig, SI_QUEUE, v);
    return (int)syscall(SYS_rt_sigqueueinfo, pid, sig, &si);
}

/* ------------------------------------------------------------ sigaction */

static void sig_fork_child(void)
{
    /* POSIX: the child starts with no pending signals */
    atomic_store(&cached_pid, (pid_t)syscall(SYS_getpid));
    atomic_store(&busy, 0);
    atomic_store(&arrived, 0);
    held = 0;
    atomic_store(&route_lock, 0);
    vt_g *g = vt_self();
    if (g) {
        struct pl_gext *x = pl_gext(g);
        atomic_store(&x->sigpend, 0);
        atomic_store(&x->sigrouted, 0);
        atomic_store(&x->sigwaitset, 0);
        atomic_store(&x->sigwaittid, 0);
    }
}

static _Atomic int setup_done;
static void setup(void)
{
    if (atomic_load(&setup_done))
        return;
    int z = 0;
    if (!atomic_compare_exchange_strong(&setup_done, &z, 1))
        return;
    atomic_store(&cached_pid, (pid_t)syscall(SYS_getpid));
    pthread_atfork(NULL, NULL, sig_fork_child);
}

/* The program's current action for a routable sig. */
static void current(int sig, struct sigaction *old)
{
    struct act *a = &acts[sig];
    int ps = vt_preempt_signal();
    if (atomic_load(&a->ours) || (sig == ps && ps)) {
        memset(old, 0, sizeof *old);
        void *h = atomic_load(&a->handler);
        int flags = atomic_load(&a->flags);
        if (flags & SA_SIGINFO)
            old->sa_sigaction = (void (*)(int, siginfo_t *, void *))h;
        else
            old->sa_handler = (void (*)(int))h;
        old->sa_flags = flags;
        old->sa_mask = a->mask;
        return;
    }
    vt_real.sigaction(sig, NULL, old);
}

/* Before the program's function for sig gives way to SIG_DFL or SIG_IGN,
 * on a G: an instance already sent to the process is handled by the
 * function first.  Under NPTL the kernel gives a process-directed signal
 * to the main thread when it does not block it, which runs the handler
 * before it returns to its own code: a program whose child signals it,
 * and which reads the child's output, reaps it and then resets the
 * action, has had every handler run.  Here the kernel may pick another
 * OS thread, which may not have run yet, or the instance may be on its way
 * to a G; reset at that moment, it would be lost, or kill the process
 * (SIG_DFL), or meet the next instance in its slot and merge with it.  So
 * wait, a little at a time (each sleep returns through the runtime, which
 * delivers what was routed to the caller), while the kernel holds it for
 * the process (ShdPnd), a thread is inside entry(), or it is in our hands
 * on its way to a G (not held: nobody takes it then, and the new action is
 * for it, as under NPTL).  At most 100 ms.
 *
 * Left open: a thread the kernel gave it to that is between taking it off
 * the process's set and entering entry() (seen preempted there for 80 us,
 * 1 round in ~4,000 of e2e signals_from_child).  A barrier instance of sig
 * sent to the idle Ms closes it (the kernel defers it until the handler it
 * owes has run), but one that lands after the action became SIG_DFL takes
 * the default action: the process dies (seen in CPython's test_threading).
 * Safe only with a harmless signal in every routed handler's sa_mask. */
static void drain(int sig)
{
    uint64_t b = pl_sigbit(sig);
    for (int i = 0; i < 400; i++) {
        uint64_t k = 0;
        bool kernel = pl_sig_kernel_shared(&k) && (k & b);
        bool ours = atomic_load(&busy) & b;
        if (ours) {
            rlock();
            ours = !(held & b);
            runlock();
        }
        if (!kernel && !ours && atomic_load(&in_entry) == 0)
            return;
        struct timespec ts = {0, 250000};
        nanosleep(&ts, NULL);
    }
}

static int set_action(int sig, const struct sigaction *act,
                      struct sigaction *old)
{
    struct act *a = &acts[sig];
    struct sigaction tmp;
    if (old)
        current(sig, &tmp);
    void *h = (act->sa_flags & SA_SIGINFO) ? (void *)act->sa_sigaction
                                           : (void *)act->sa_handler;
    bool fn = h != (void *)SIG_DFL && h != (void *)SIG_IGN;
    if (!fn && atomic_load(&a->ours) && vt_self())
        drain(sig);
    int ps = vt_preempt_signal();
    uint64_t b = pl_sigbit(sig);
    struct sigaction k = *act;
    if (fn) {
        k.sa_sigaction = entry;
        k.sa_flags = (act->sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
    }
    /* the program's view first: entry() may run as soon as the kernel
     * has the new action */
    atomic_store(&a->handler, h);
    atomic_store(&a->flags, act->sa_flags);
    a->mask = act->sa_mask;
    if (sig == ps && ps) {
        /* core's preemption handler stays; it chains to k */
        atomic_store(&a->ours, false);
        vt_preempt_set_program_action(&k, NULL);
    } else {
        if (!fn)
            vt_signal_set_routed(vt_signal_routed() & ~b);
        if (vt_real.sigaction(sig, &k, NULL) != 0)
            return -1;
        atomic_store(&a->ours, fn);
    }
    if (fn)
        vt_signal_set_routed(vt_signal_routed() | b);
    if (old)
        *old = tmp;
    return 0;
}

PL_PUBLIC int sigaction(int sig, const struct sigaction *act,
                        struct sigaction *old)
{
    if (!pl_on() || !routable(sig))
        return vt_real.sigaction(sig, act, old);
    setup();
    if (!act) {
        current(sig, old ? old : &(struct sigaction){0});
        return 0;
    }
    return set_action(sig, act, old);
}
PL_ALIAS(sigaction, __sigaction);

/* --------------------------------------------- the older interfaces */

/* The simple installers: handler h with the given mask and flags;
 * returns the previous handler, or SIG_ERR with EINVAL like glibc's. */
static __sighandler_t install(int sig, __sighandler_t h, bool mask_self,
                              int flags)
{
    if (h == SIG_ERR || !pl_sig_valid(sig)) {
        errno = EINVAL;
        return SIG_ERR;
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    if (mask_self)
        sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = flags;
    if (sigaction(sig, &sa, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}

/* signal(), bsd_signal(), ssignal(): BSD semantics, like glibc's:
 * the signal itself blocked during its handler, SA_RESTART unless
 * siginterrupt(sig, 1) was called. */
PL_PUBLIC __sighandler_t signal(int sig, __sighandler_t h)
{
    bool intr = pl_sig_valid(sig) && (sigintr & pl_sigbit(sig));
    return install(sig, h, true, intr ? 0 : SA_RESTART);
}
PL_ALIAS(signal, bsd_signal);
PL_ALIAS(signal, ssignal);

/* System V semantics: one-shot, not blocked during its handler, no
 * restart. */
PL_PUBLIC __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
    return install(sig, h, false, SA_RESETHAND | SA_NODEFER);
}
PL_ALIAS(sysv_signal, __sysv_signal);

PL_PUBLIC int siginterrupt(int sig, int flag)
{
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) < 0)
        return -1;
    if (flag) {
        sigintr |= pl_sigbit(sig);
        sa.sa_flags &= ~SA_RESTART;
    } else {
        sigintr &= ~pl_sigbit(sig);
        sa.sa_flags |= SA_RESTART;
    }
    return sigaction(sig, &sa, NULL) < 0 ? -1 : 0;
}

PL_PUBLIC int sigignore(int sig)
{
    return install(sig, SIG_IGN, false, 0) == SIG_ERR ? -1 : 0;
}

static int one_sig_mask(int how, int sig)
{
    sigset_t s;
    sigemptyset(&s);
    if (sigaddset(&s, sig) < 0)
        return -1;
    return sigprocmask(how, &s, NULL);
}
PL_PUBLIC int sighold(int sig) { return one_sig_mask(SIG_BLOCK, sig); }
PL_PUBLIC int sigrelse(int sig) { return one_sig_mask(SIG_UNBLOCK, sig); }

/* System V sigset: SIG_HOLD blocks the signal; any other disposition is
 * installed and unblocks it.  Returns the previous disposition, SIG_HOLD
 * if the signal was blocked. */
PL_PUBLIC __sighandler_t sigset(int sig, __sighandler_t disp)
{
    sigset_t s, old_mask;
    sigemptyset(&s);
    if (sigaddset(&s, sig) < 0 || !pl_sig_valid(sig) || disp == SIG_ERR) {
        errno = EINVAL;
        return SIG_ERR;
    }
    __sighandler_t prev;
    if (disp == SIG_HOLD) {
        struct sigaction old;
        if (sigprocmask(SIG_BLOCK, &s, &old_mask) < 0 ||
            sigaction(sig, NULL, &old) < 0)
            return SIG_ERR;
        prev = old.sa_handler;
    } else {
        prev = install(sig, disp, false, 0);
        if (prev == SIG_ERR || sigprocmask(SIG_UNBLOCK, &s, &old_mask) < 0)
            return SIG_ERR;
    }
    return sigismember(&old_mask, sig) ? SIG_HOLD : prev;
}
