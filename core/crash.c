/*
 * crash.c — a clear last word when a G dies of a fatal signal.
 *
 * For SIGSEGV, SIGBUS, SIGILL and SIGFPE whose disposition is still the
 * default when the runtime starts, vthread installs a handler that runs
 * on a per-M alternate signal stack (a G that overflowed its stack has
 * none left), prints one line naming the G and the fault — and, when the
 * faulting address lies in the G's guard page, that the G overflowed its
 * stack and how big the stack was — then restores the default action and
 * returns, so the faulting instruction runs again and the process dies of
 * the original signal (core dump and exit status as without vthread).
 * A handler the program installs later replaces ours, as it should.
 *
 * Async-signal-safe: raw writes, snprintf into a stack buffer (no malloc
 * for these formats in glibc), no locks.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "real.h"
#include "rt.h"

#define ALTSTACK_SIZE (64 * 1024)

static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
static bool installed[sizeof fatal_sigs / sizeof *fatal_sigs];

static _Atomic pid_t crashing; /* the thread in crash_handler, if any */

static void crash_handler(int sig, siginfo_t *si, void *uc)
{
    /* a fault while a live dump read a stale stack: back to the dump */
    vt_traceback_fault();
    vt_g *g = vt_tp_g();
    /* A second fault in this handler (the dump itself): die at once. */
    pid_t me = (pid_t)vt_sys0(SYS_gettid), none = 0;
    bool first = cas(&crashing, &none, me);
    uintptr_t addr = (uintptr_t)si->si_addr;
    uintptr_t pc = vt_arch_context_pc(uc);
    char buf[512];
    int n;
    if (g && g->guard && addr >= (uintptr_t)g->stack_lo - g->guard &&
        addr < (uintptr_t)g->stack_lo) {
        n = snprintf(buf, sizeof buf,
                     "vthread: fatal: thread G%llu overflowed its stack "
                     "(%zu bytes; fault at %#lx in its guard page, pc %#lx); "
                     "raise the stack size with pthread_attr_setstacksize or "
                     "VTHREAD_STACK_SIZE\n",
                     (unsigned long long)g->id,
                     (size_t)((char *)g->stack_hi - (char *)g->stack_lo),
                     (unsigned long)addr, (unsigned long)pc);
    } else {
        n = snprintf(buf, sizeof buf,
                     "vthread: fatal: signal %d (%s) in %s%llu at pc %#lx, "
                     "address %#lx\n",
                     sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                     g ? "thread G" : "runtime thread ",
                     g ? (unsigned long long)g->id : 0ull,
                     (unsigned long)pc, (unsigned long)addr);
    }
    if (n > 0)
        vt_sys3(SYS_write, 2, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
    if (first && vt_traceback_on_crash())
        vt_traceback_dump(sigabbrev_np(sig) ? sigabbrev_np(sig) : "fatal signal",
                          g, uc);
    /* Die of the original signal: default action, and fault again. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    vt_real.sigaction(sig, &dfl, NULL);
    if (si->si_code <= 0) /* sent, not a fault: send it again */
        vt_sys2(SYS_tkill, vt_sys0(SYS_gettid), sig);
}

/* Gives the calling OS thread (an M) its alternate signal stack. */
void vt_crash_thread_init(void)
{
    void *s = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED)
        return; /* no report on overflow; everything else works */
    stack_t ss = {.ss_sp = s, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    stack_t old;
    /* Keep a stack the program installed on this thread. */
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) {
        munmap(s, ALTSTACK_SIZE);
        return;
    }
    sigaltstack(&ss, NULL);
}

void vt_crash_init(void)
{
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof *fatal_sigs; i++) {
        struct sigaction old;
        if (vt_real.sigaction(fatal_sigs[i], NULL, &old) != 0 ||
            (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue; /* the program handles it */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = crash_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        installed[i] = vt_real.sigaction(fatal_sigs[i], &sa, NULL) == 0;
    }
    vt_crash_thread_init();
}
