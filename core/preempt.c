/*
 * preempt.c — asynchronous preemption of Gs that hog a P.
 *
 * sysmon asks (vt_preempt_request) when a G has run for more than
 * VT_PREEMPT_NS without a switch while other Gs wait, and its M is on a
 * CPU (its thread is runnable: a signal to a thread asleep in the kernel
 * would make poll, nanosleep & co. fail with EINTR, Go 1.14's lesson).  It
 * sets m->preempt_req and sends the preemption signal (SIGURG unless
 * VTHREAD_PREEMPT_SIGNAL says otherwise) to that M with tgkill.
 *
 * The handler runs on the M, on the running G's stack, with the G's TLS.
 * It preempts only when it is safe to switch away from the interrupted
 * code:
 *  - the request flag is ours (else the signal is the program's: chain to
 *    the program's own handler, or to the default action);
 *  - the G is not inside vthread (rt_depth, syscall_depth, nlocks: any
 *    runtime lock held) and the PC is
 *    not inside libc, the dynamic loader, libvthread, libgcc_s or
 *    libstdc++ (they may hold locks or run with signal-unsafe state);
 * then it rewrites the context so that, after sigreturn, the G "calls"
 * vt_arch_preempt_tramp, which saves every register and the extended
 * state, yields (vt_preempt_park), and returns into the interrupted code.
 * Otherwise the G yields when it next leaves the runtime (preempt_defer:
 * a G that spends most of its time in runtime calls is preempted there),
 * and sysmon asks again on a later tick; a G that keeps refusing because
 * it loops inside libc loses its P (sysmon.c, retakes_busy).
 *
 * Everything the handler touches is async-signal-safe: atomics, the
 * read-only range table (replaced, never edited, on dlopen) and errno,
 * which it saves and restores.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "probes.h"
#include "real.h"
#include "rt.h"

struct range {
    uintptr_t lo, hi;
};
struct ranges {
    int n;
    struct range r[];
};

static _Atomic(struct ranges *) unsafe;
static struct sigaction prog_action; /* what the program had installed */
static int sig;
static bool enabled;
static pid_t pid;

static const char *const unsafe_libs[] = {
    "libc.so", "ld-linux", "libvthread.so", "libgcc_s.so", "libstdc++.so",
};

static int count_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    *(int *)data += info->dlpi_phnum;
    return 0;
}

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct ranges *rs = data;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    bool bad = false;
    for (size_t i = 0; i < sizeof unsafe_libs / sizeof *unsafe_libs; i++)
        bad |= strncmp(base, unsafe_libs[i], strlen(unsafe_libs[i])) == 0;
    if (!bad)
        return 0;
    /* In a static build the runtime is part of the program, whose code
     * must stay preemptible: there rt_depth and nlocks guard it. */
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        rs->r[rs->n++] = (struct range){lo, lo + ph->p_memsz};
    }
    return 0;
}

/* Rebuilds the table of code ranges where preemption is refused.  The old
 * table is leaked on purpose: a handler on another M may still read it. */
void vt_preempt_refresh(void)
{
    if (!enabled)
        return;
    int n = 0;
    dl_iterate_phdr(count_cb, &n);
    struct ranges *rs = malloc(sizeof *rs + (size_t)n * sizeof rs->r[0]);
    if (!rs)
        return;
    rs->n = 0;
    dl_iterate_phdr(collect_cb, rs);
    st_release(&unsafe, rs);
}

static bool pc_unsafe(uintptr_t pc)
{
    struct ranges *rs = ld_acquire(&unsafe);
    if (!rs)
        return true;
    for (int i = 0; i < rs->n; i++)
        if (pc >= rs->r[i].lo && pc < rs->r[i].hi)
            return true;
    return false;
}

/* Called by the trampoline on the preempted G, all registers saved. */
VT_HIDDEN void vt_preempt_park(void);
void vt_preempt_park(void)
{
    int e = errno;
    vt_g *g = vt_tp_g();
    st_release(&g->preempting, 0); /* the trampoline consumed preempt_pc */
    xadd(&vt_stats.preemptions, 1);
    VT_PROBE1(preempt, g->id);
    vt_trace_g(g->m, VT_TR_PREEMPT, g, 0, 0);
    vt_yield();
    errno = e;
}

static void chain(int s, siginfo_t *info, void *uc)
{
    struct sigaction *a = &prog_action;
    if (a->sa_flags & SA_SIGINFO) {
        if (a->sa_sigaction)
            a->sa_sigaction(s, info, uc);
    } else if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN) {
        a->sa_handler(s);
    }
    /* SIG_DFL of SIGURG is "ignore"; for another configured signal whose
     * default would kill, a signal we did not send is still the
     * program's: re-raise it with the default action. */
    else if (a->sa_handler == SIG_DFL && s != SIGURG && s != SIGCHLD &&
             s != SIGWINCH) {
        signal(s, SIG_DFL);
        vt_sys2(SYS_tkill, vt_sys0(SYS_gettid), s);
    }
}

/* The interrupted code runs on the M's alternate signal stack: inside
 * a signal handler (a traceback dump, the program's SA_ONSTACK handler).
 * Switching the G away there would leave its frames on a stack that
 * belongs to the M, which the next signal on this M reuses, and resume
 * them on another M.  The kernel records it in the context it saved. */
static bool on_signal_stack(void *uc)
{
    return (((ucontext_t *)uc)->uc_stack.ss_flags & SS_ONSTACK) != 0;
}

static void handler(int s, siginfo_t *info, void *uc)
{
    int e = errno;
    if (vt_traceback_answer(uc)) { /* a dump asked for this M's stack */
        errno = e;
        return;
    }
    vt_g *g = vt_tp_g();
    vt_m *m = g ? g->m : NULL;
    bool requested = m && xchg(&m->preempt_req, 0);
    bool from_us = info->si_code == SI_TKILL && info->si_pid == pid;
    if (!requested) {
        if (!from_us)
            chain(s, info, uc);
    } else if (g->rt_depth == 0 && g->syscall_depth == 0 && g->nlocks == 0 &&
               !ld_relaxed(&g->preempting) &&
               ld_relaxed(&g->status) == G_RUNNING &&
               !on_signal_stack(uc) && !vt_traceback_dumping_here() &&
               g->sig_frames == 0 &&
               !pc_unsafe(vt_arch_context_pc(uc))) {
        if (vt_arch_redirect_to_preempt(uc, &g->preempt_pc))
            st_relaxed(&g->preempting, 1);
    } else if (ld_relaxed(&g->status) == G_RUNNING) {
        /* not here: at its next exit from the runtime (vt_rt_leave) */
        st_relaxed(&g->preempt_defer, 1);
    }
    errno = e;
}

void vt_preempt_init(void)
{
    if (!vt_cfg.preempt_signal)
        return;
    sig = vt_cfg.preempt_signal;
    pid = getpid();
    enabled = true;
    vt_preempt_refresh();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (vt_real.sigaction(sig, &sa, &prog_action) != 0)
        vt_fatal("cannot install the preemption signal handler (%d)", sig);
}

/* The preemption signal and what the program installed for it, for the
 * preload layer's sigaction (the program's handler is chained). */
int vt_preempt_signal(void) { return enabled ? sig : 0; }
void vt_preempt_set_program_action(const struct sigaction *a,
                                   struct sigaction *old)
{
    if (old)
        *old = prog_action;
    if (a)
        prog_action = *a;
}

void vt_preempt_fork_child(void) { pid = getpid(); }

/* sysmon: ask m to preempt its G.  m's thread is runnable. */
void vt_preempt_request(vt_m *m)
{
    if (!enabled)
        return;
    st_release(&m->preempt_req, 1);
    vt_sys3(SYS_tgkill, pid, m->tid, sig);
}
