/*
 * traceback.c — a dump of every G, like Go's crash traceback.
 *
 * VTHREAD_TRACEBACK=crash    on a fatal signal (crash.c), before dying;
 * VTHREAD_TRACEBACK=sigquit  on SIGQUIT, without dying (the program's own
 *                            SIGQUIT handler, if any, wins);
 * VTHREAD_TRACEBACK=all      both.
 *
 * For each G: its id, state, how long it has been waiting, and a
 * symbolised backtrace.  A G that is off CPU is unwound from the frame
 * vt_arch_switch saved on its stack (see arch.h VT_FRAME_*); the G that
 * took the signal from the signal context; a G running on another M is
 * shown as running, without a stack.
 *
 * libunwind is loaded at start-up, only when a traceback is configured,
 * with dlopen(RTLD_LOCAL): linking it would put Debian's libunwind.so.8
 * _Unwind_* symbols in front of libgcc's for every C++ program, and dlopen
 * is not safe inside a signal handler.  Without libunwind the dump still
 * lists every G and says why there are no stacks.
 *
 * Runs in a signal handler: no locks (the G list is read racily: the dump
 * is best effort on a process that is dying), no malloc, raw writes.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "real.h"
#include "rt.h"

static int (*p_init)(unw_cursor_t *, unw_context_t *);
static int (*p_step)(unw_cursor_t *);
static int (*p_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
static int (*p_name)(unw_cursor_t *, char *, size_t, unw_word_t *);
static const char *unwind_missing = "not configured";

/* A live dump (SIGQUIT, a deadlock report) reads the stacks of Gs that
 * may run meanwhile on other Ms: a saved frame can go stale under the
 * unwinder, which then follows garbage.  The thread dumping records
 * itself here; a fault it takes while reading a stack comes back through
 * crash.c's handler to vt_traceback_fault (below), which jumps back to the
 * dump, and the G is shown as "stack changed while being read".
 * libunwind runs without its cache (no lock held across the jump). */
static _Atomic pid_t dumping_tid;
static sigjmp_buf dump_jmp;

/* The thread running a dump, for its whole length: the preemption
 * handler must not switch it away (it would leave a half-written dump,
 * and the signal frame on its M's alternate stack, behind), and a second
 * dump asked for meanwhile is not started. */
static _Atomic pid_t dump_owner;

bool vt_traceback_dumping_here(void)
{
    pid_t o = ld_acquire(&dump_owner);
    return o && o == (pid_t)vt_sys0(SYS_gettid);
}

/* At exit (the last atexit handler): a dump another thread is printing
 * is let finish, for at most 5 s, so that exit does not cut it off
 * half-way (a SIGQUIT just before the end of a program).  Not when this
 * thread is the one printing (exit from inside a dump's handler). */
void vt_traceback_wait(void)
{
    pid_t me = (pid_t)vt_sys0(SYS_gettid);
    for (int i = 0; i < 5000; i++) {
        pid_t o = ld_acquire(&dump_owner);
        if (!o || o == me)
            return;
        struct timespec ms = {0, 1000000};
        vt_sys2(SYS_nanosleep, &ms, NULL);
    }
}

bool vt_traceback_fault(void)
{
    pid_t me = (pid_t)vt_sys0(SYS_gettid);
    if (!me || ld_acquire(&dumping_tid) != me)
        return false;
    siglongjmp(dump_jmp, 1);
}
static int mode; /* bit 0: crash, bit 1: sigquit */

static void out(const char *s, size_t n)
{
    while (n > 0) {
        long w = vt_sys3(SYS_write, 2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        out(buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void backtrace_from(unw_context_t *uc)
{
    unw_cursor_t c;
    if (!p_init || p_init(&c, uc) < 0) {
        outf("    (no backtrace: libunwind %s)\n", unwind_missing);
        return;
    }
    for (int depth = 0; depth < 48; depth++) {
        unw_word_t ip = 0, off = 0;
        char name[128];
        p_reg(&c, UNW_REG_IP, &ip);
        if (ip == 0)
            break;
        if (p_name(&c, name, sizeof name, &off) == 0)
            outf("    #%-2d %#lx %s+%#lx\n", depth, (unsigned long)ip, name,
                 (unsigned long)off);
        else
            outf("    #%-2d %#lx ?\n", depth, (unsigned long)ip);
        if (p_step(&c) <= 0)
            break;
    }
}

/* A context for a G parked by vt_arch_switch: registers from its frame. */
static void backtrace_parked(vt_g *g)
{
    uintptr_t sp = (uintptr_t)g->sp;
    if (!sp) {
        outf("    (never ran)\n");
        return;
    }
    if (g->kind != GU_MAIN && (sp < (uintptr_t)g->stack_lo ||
                               sp >= (uintptr_t)g->stack_hi)) {
        outf("    (saved stack pointer %#lx is off its stack: switching)\n",
             (unsigned long)sp);
        return;
    }
    ucontext_t uc;
    memset(&uc, 0, sizeof uc);
    vt_arch_parked_context(&uc, sp);
    backtrace_from((unw_context_t *)&uc);
}

/* A G running on another M: that M prints its own G's stack from its
 * signal context, asked through the preemption signal (preempt.c calls
 * vt_traceback_answer first thing).  One M at a time, 200 ms each. */
static _Atomic(vt_m *) dump_m;
static _Atomic int dump_done;

bool vt_traceback_answer(void *uc)
{
    vt_g *g = vt_tp_g();
    vt_m *m = g ? g->m : NULL;
    if (!m || ld_acquire(&dump_m) != m)
        return false;
    outf("    (sampled on M%d, running G%llu)\n", m->id,
         (unsigned long long)g->id);
    backtrace_from((unw_context_t *)uc);
    st_release(&dump_done, 1);
    return true;
}

static void backtrace_running(vt_g *g)
{
    vt_m *m = g->m;
    int sig = vt_preempt_signal();
    if (!m || !sig) {
        outf("    (on a CPU: no stack without a preemption signal)\n");
        return;
    }
    st_release(&dump_done, 0);
    st_release(&dump_m, m);
    vt_sys3(SYS_tgkill, vt_sys0(SYS_getpid), m->tid, sig);
    int64_t until = vt_now() + 200000000;
    while (!ld_acquire(&dump_done) && vt_now() < until)
        vt_arch_relax();
    st_release(&dump_m, NULL);
    if (!ld_acquire(&dump_done))
        outf("    (on a CPU: its M did not answer)\n");
}

static const char *state_name(int s)
{
    switch (s) {
    case G_RUNNABLE: return "runnable";
    case G_RUNNING: return "running";
    case G_WAITING: return "waiting";
    case G_DEAD: return "exited";
    default: return "idle";
    }
}

/* The G g waits for: the owner of the mutex it waits on (the preload's
 * wait_owner hook), the G it joins; NULL if none or unknown.  Racy, as
 * the whole dump. */
static vt_g *waits_for(vt_g *g, const char **what)
{
    if (ld_relaxed(&g->status) != G_WAITING)
        return NULL;
    const char *r = g->wait_reason;
    const void *a = ld_relaxed(&g->waiter.addr);
    if (!r || !a)
        return NULL;
    *what = r;
    if (!strcmp(r, "thread join"))
        return (vt_g *)((char *)a - offsetof(vt_g, jstate));
    if (!vt_hooks_set.wait_owner)
        return NULL;
    int tid = vt_hooks_set.wait_owner(a, r);
    if (!tid)
        return NULL;
    int n = 0;
    for (vt_g *x = vt_sched.allg; x && n < 100000; x = x->allnext, n++)
        if (x->tid == tid && ld_relaxed(&x->status) != G_DEAD)
            return x;
    return NULL;
}

/* The cycles of Gs each waiting for the next: for a mutex its owner
 * holds, or to join it (waits_for).  Each cycle once,
 * from its G with the lowest id.  Quadratic: skipped for crowds. */
static void print_cycles(void)
{
    if (ld_relaxed(&vt_sched.live) > 2000)
        return;
    int shown = 0;
    for (vt_g *g = vt_sched.allg; g && shown < 2000; g = g->allnext, shown++) {
        const char *what;
        vt_g *x = g;
        int len = 0;
        bool lowest = true;
        do {
            x = waits_for(x, &what);
            if (x && x->id < g->id)
                lowest = false;
        } while (x && x != g && ++len < 64);
        if (x != g || !lowest)
            continue;
        outf("\nvthread: deadlock cycle:");
        x = g;
        do {
            vt_g *y = waits_for(x, &what);
            if (!y)
                break;
            if (!strcmp(what, "thread join"))
                outf("\n    G%llu waits to join G%llu",
                     (unsigned long long)x->id, (unsigned long long)y->id);
            else
                outf("\n    G%llu waits for %s %p, held by G%llu",
                     (unsigned long long)x->id, what,
                     (void *)ld_relaxed(&x->waiter.addr),
                     (unsigned long long)y->id);
            x = y;
        } while (x != g);
        outf("\n");
    }
}

/* Dumps every G.  self/uc: the G that took the signal and its context,
 * or NULL. */
void vt_traceback_dump(const char *why, vt_g *self, void *uc)
{
    int64_t now = vt_now_coarse(); /* the clock of wait_since */
    pid_t me = (pid_t)vt_sys0(SYS_gettid), none = 0;
    if (!cas(&dump_owner, &none, me)) {
        outf("vthread: traceback (%s): another thread is printing one\n", why);
        return;
    }
    /* libunwind reads object files (open, read, close: the preload's
     * wrappers) to name functions; on a G they must not enter the
     * scheduler from here, which may have interrupted it: held like a
     * runtime lock (vt_inside_runtime, vt_sched_point). */
    vt_lock_count(1);
    outf("vthread: traceback (%s): %lld live threads, %d OS threads\n", why,
         (long long)ld_relaxed(&vt_sched.live), vt_sched.mcount);
    int shown = 0;
    for (vt_g *g = vt_sched.allg; g && shown < 10000; g = g->allnext, shown++) {
        int st = ld_relaxed(&g->status);
        if (g == self) {
            outf("\nG%llu [%s, this thread]:\n", (unsigned long long)g->id,
                 state_name(st));
            if (uc)
                backtrace_from((unw_context_t *)uc);
            continue;
        }
        const char *why = g->wait_reason;
        /* no %f: glibc's float formatting is not async-signal-safe (it
         * reads the locale through TLS and may allocate) */
        int64_t ms = now > g->wait_since ? (now - g->wait_since) / 1000000 : 0;
        if (st == G_WAITING && g->wait_since)
            outf("\nG%llu [%s, %lld.%03lld s, on %p]:\n",
                 (unsigned long long)g->id, why ? why : "waiting",
                 (long long)(ms / 1000), (long long)(ms % 1000),
                 (void *)ld_relaxed(&g->waiter.addr));
        else if (st == G_RUNNING && g->m)
            outf("\nG%llu [running on M%d]:\n", (unsigned long long)g->id,
                 g->m->id);
        else
            outf("\nG%llu [%s]:\n", (unsigned long long)g->id,
                 state_name(st));
        if (st == G_RUNNING || g->on_cpu) {
            backtrace_running(g);
        } else if (g->kind == GU_MAIN && !g->sp) {
            outf("    (no saved context)\n");
        } else if (sigsetjmp(dump_jmp, 0) == 0) {
            st_release(&dumping_tid, me);
            backtrace_parked(g);
            st_release(&dumping_tid, 0);
        } else {
            st_release(&dumping_tid, 0);
            outf("    (its stack changed while being read: it ran)\n");
        }
    }
    print_cycles();
    outf("vthread: end of traceback\n");
    vt_lock_count(-1);
    st_release(&dump_owner, 0);
}

bool vt_traceback_on_crash(void) { return mode & 1; }

static void sigquit_handler(int sig, siginfo_t *si, void *uc)
{
    vt_traceback_dump("SIGQUIT", vt_tp_g(), uc);
}

void vt_traceback_init(void)
{
    mode = vt_cfg.traceback;
    if (!mode && !vt_fuzz_mode) /* fuzz.c dumps a deadlock */
        return;
    void *h = dlopen("libunwind.so.8", RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        unwind_missing = "not found (apt-get install libunwind8)";
    } else {
        p_init = dlsym(h, VT_ARCH_UNW_PREFIX "init_local");
        p_step = dlsym(h, VT_ARCH_UNW_PREFIX "step");
        p_reg = dlsym(h, VT_ARCH_UNW_PREFIX "get_reg");
        p_name = dlsym(h, VT_ARCH_UNW_PREFIX "get_proc_name");
        if (!p_init || !p_step || !p_reg || !p_name) {
            p_init = NULL;
            unwind_missing = "lacks the expected symbols";
        }
        /* no cache: its lock must not be held when a fault jumps out */
        int (*set_caching)(void *, int) =
            (int (*)(void *, int))dlsym(h, VT_ARCH_UNW_PREFIX "set_caching_policy");
        void **as = dlsym(h, VT_ARCH_UNW_PREFIX "local_addr_space");
        if (set_caching && as)
            set_caching(*as, 0 /* UNW_CACHE_NONE */);
    }
    if (mode & 2) {
        struct sigaction old, sa;
        if (vt_real.sigaction(SIGQUIT, NULL, &old) == 0 &&
            !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
            memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = sigquit_handler;
            sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
            vt_real.sigaction(SIGQUIT, &sa, NULL);
        }
    }
}
