/*
 * sysmon.c — the monitor thread: one real thread, no P, never a G.
 *
 * Each tick it looks at every P (Go's retake, extended to blocking we
 * cannot see):
 *  - P_SYSCALL whose syscall tick has not moved for VT_SYSCALL_RETAKE_NS:
 *    the intercepted call is slow; take the P and hand it to another M.
 *  - P_USER whose schedule tick has not moved for VT_BLOCKED_RETAKE_NS and
 *    whose M used less than 1/8 of the elapsed time on a CPU since the last
 *    look: the G is blocked in the kernel somewhere vthread cannot see (a
 *    libc-internal read, a futex, a raw syscall).  Take the P likewise.
 *    An M that is busy computing keeps its P (preemption is another job).
 * It also wakes an M when a timer is due on an idle P and no M watches, and
 * prints schedtrace lines.
 *
 * Tick: 20 µs while it finds work, doubling after 50 quiet ticks up to
 * 10 ms; when every P is idle it sleeps until kicked (vt_sysmon_kick).
 * Sysmon may take only sched.lock and the per-P timer locks (and, under
 * the seeded scheduler, glock to look at every G: vt_fuzz_watch); it
 * never parks and never runs user code.
 */
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "probes.h"
#include "real.h"
#include "rt.h"

static _Atomic int sysmon_idle; /* sleeping until kicked */

void vt_sysmon_kick(void)
{
    if (ld_acquire(&sysmon_idle)) {
        xadd(&vt_sched.sysmon_wake, 1);
        vt_futex_wake(&vt_sched.sysmon_wake, 1);
    }
}

/* ------------------------------------------------------------- the prober
 *
 * Whether an M's thread is blocked in the kernel is in
 * /proc/self/task/TID/stat, one descriptor per M.  Opened in the
 * program's descriptor table, such a descriptor takes the lowest free
 * number, if only until it is moved up, and an open() the program makes
 * in that moment gets another number than under NPTL, which has no
 * descriptors of its own.  So the stat files are opened in a table no
 * program descriptor ever enters: that of the prober, a thread of ours
 * that gives itself a new, empty one first thing (close_range with
 * CLOSE_RANGE_UNSHARE: the kernel copies none of the program's
 * descriptors into it, not even for a moment).  It is started the first
 * time sysmon asks, so a program that never needs it has no such thread.
 * Without close_range (Linux < 5.9) it gives up, and sysmon trusts the
 * CPU clock alone, as when /proc is not mounted.  (The prober cannot
 * write to the program's stderr: its fd 2 is not the program's.)
 *
 * sysmon is the only client and asks one question at a time: it stores
 * probe.m, bumps probe.req and wakes the prober, which stores the answer
 * and then sets probe.done to the request's number.  m->statfd is a number
 * in the prober's table: only the prober touches it, and it closes those
 * of retired Ms.  Nothing here survives fork() (the child's table is a
 * copy of the forking thread's); vt_sysmon_start resets it. */
static struct {
    vt_m *_Atomic m;    /* the M asked about */
    _Atomic int preempt; /* and preempt it if its thread is running */
    _Atomic int req;    /* futex: number of the last question */
    _Atomic int done;   /* futex: number of the last one answered */
    _Atomic int answer; /* the state letter, or 0: cannot tell */
    _Atomic int state;  /* 0 not started, 2 starting, 1 running,
                           -1 unavailable */
} probe;

/* Closes the descriptors kept for Ms that retired (pinned Gs that
 * exited: sched.c, retire).  On the prober. */
static void sweep_retired(void)
{
    static uint64_t seen;
    uint64_t n = ld_acquire(&vt_stats.ms_retired);
    if (n == seen)
        return;
    seen = n;
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        if (ld_acquire(&m->dead) && m->statfd >= 0) {
            vt_sys1(SYS_close, m->statfd);
            m->statfd = -1;
        }
}

/* On the prober: the state letter of m's thread in its stat file, or 0
 * if it cannot say. */
static char probe_state(vt_m *m)
{
    if (m->statfd < 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)m->tid);
        m->statfd = (int)vt_sys4(SYS_openat, AT_FDCWD, path,
                                 O_RDONLY | O_CLOEXEC, 0);
        if (m->statfd < 0)
            return 0;
    }
    char buf[512];
    long n = vt_sys4(SYS_pread64, m->statfd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may contain anything */
    return p && p[1] == ' ' ? p[2] : 0;
}

static void *prober_main(void *arg)
{
    if (vt_sys3(SYS_close_range, 0, ~0u, CLOSE_RANGE_UNSHARE) != 0) {
        st_release(&probe.state, -1);
        return arg;
    }
    st_release(&probe.state, 1);
    for (int seen = 0;;) {
        int r = ld_acquire(&probe.req);
        if (r == seen) {
            vt_futex_wait(&probe.req, r, NULL);
            continue;
        }
        seen = r;
        sweep_retired();
        vt_m *m = ld_acquire(&probe.m);
        char k = ld_acquire(&m->dead) ? 'X' : probe_state(m);
        /* Signalled here, right after the read: a thread that went on
         * into a system call since would have it interrupted (EINTR from
         * a call the program never saw a signal in), so the time between
         * the two is kept as short as it can be: not a round trip to
         * sysmon, which may wait for a CPU to wake. */
        if (k == 'R' && ld_acquire(&probe.preempt))
            vt_preempt_request(m);
        st_release(&probe.answer, k);
        st_release(&probe.done, seen);
        vt_futex_wake(&probe.done, 1);
    }
}

/* Starts one of the runtime's own threads (sysmon, the prober): real,
 * detached, every signal blocked from its first instruction (it runs no
 * program code; sysmon_main then unblocks the synchronous ones).  0 or
 * an error number. */
static int start_thread(pthread_t *t, size_t stack, void *(*fn)(void *))
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, stack);
    sigset_t all;
    sigfillset(&all);
    pthread_attr_setsigmask_np(&a, &all);
    int err = vt_real.pthread_create(t, &a, fn, NULL);
    pthread_attr_destroy(&a);
    return err;
}

/* The kernel's state letter for m's thread ('R' runnable, 'S' asleep,
 * 'D' in an uninterruptible wait, ...), or 0 when it cannot say: no
 * prober (yet), no /proc, or no answer within 10 ms (sysmon waits that
 * long at most).  preempt: the prober also asks m to preempt its G if,
 * and only if, the kernel has its thread runnable (never a sleeping one:
 * the signal would interrupt its system call). */
static char m_kstate(vt_m *m, bool preempt)
{
    if (ld_acquire(&m->dead))
        return 'X'; /* retired since its P's owner was read */
    if (ld_relaxed(&probe.state) == 0) {
        pthread_t t;
        st_relaxed(&probe.state, 2);
        if (start_thread(&t, 64 * 1024, prober_main) != 0)
            st_release(&probe.state, -1);
    }
    if (ld_acquire(&probe.state) != 1)
        return 0;
    /* One question at a time: after a timeout, none until the prober has
     * answered the last (it reads m and preempt of the question it
     * takes; a new one written meanwhile could pair this m with that
     * preempt). */
    if (ld_acquire(&probe.done) != ld_relaxed(&probe.req))
        return 0;
    st_release(&probe.m, m);
    st_release(&probe.preempt, preempt);
    int q = ld_relaxed(&probe.req) + 1;
    st_release(&probe.req, q);
    vt_futex_wake(&probe.req, 1);
    int64_t until = vt_now() + 10000000;
    for (;;) {
        int d = ld_acquire(&probe.done);
        if (d == q)
            return (char)ld_acquire(&probe.answer);
        int64_t left = until - vt_now();
        if (left <= 0)
            return 0; /* a late answer is ignored: done != q then */
        struct timespec ts = {0, left};
        vt_futex_wait(&probe.done, d, &ts);
    }
}

/* Whether p's M, which has made almost no CPU progress lately, is blocked
 * in the kernel, so that its P should go to another M.
 *  - Not if the kernel has it runnable ('R'): on an oversubscribed
 *    machine, taking its P would only add OS threads.
 *  - An uninterruptible wait ('D') counts once it has lasted
 *    VT_UNINTERRUPTIBLE_RETAKE_NS.  Most are short kernel-internal waits
 *    that every M would meet as well: the descriptor table growing
 *    (expand_files waits for an RCU grace period, milliseconds, while
 *    every thread opening a descriptor waits for it), the address-space
 *    lock.  Taking the P at once then only makes a new M that blocks on
 *    the same thing, and the next, and the next (a server opening its
 *    1,025th socket grew to 80 OS threads that way).  Disk I/O that
 *    lasts longer is taken as any blocking is.
 *  - Interruptible sleep ('S': a read, a futex, a poll) counts at once.
 *  - Cannot tell: only if that is for good (no /proc, old kernel), when
 *    the CPU clock decides alone; not while the prober is starting. */
#define VT_UNINTERRUPTIBLE_RETAKE_NS 20000000
static bool blocked_now(vt_p *p, vt_m *m, int64_t now)
{
    char k = m_kstate(m, false);
    if (k == 0)
        return ld_acquire(&probe.state) == -1;
    if (k == 'R')
        return false;
    if (k != 'D') {
        p->sm_d_since = 0;
        return true;
    }
    if (!p->sm_d_since)
        p->sm_d_since = now;
    return now - p->sm_d_since >= VT_UNINTERRUPTIBLE_RETAKE_NS;
}

static vt_m *m_by_id(int id)
{
    for (vt_m *m = vt_sched.allm; m; m = m->allnext)
        if (m->id == id)
            return m;
    return NULL;
}

/* Gs wait for this P: its queues, the global queue, or a due timer. */
static bool others_waiting(vt_p *p, int64_t now)
{
    return ld_relaxed(&vt_sched.runq_size) > 0 || vt_runq_len(&p->runq) > 0 ||
           ld_relaxed(&p->runnext) != NULL || ld_relaxed(&p->timer0) <= now;
}

/* A P's timers are run by its M at its next switch; a G that computes
 * without one leaves them late until it is preempted (VT_PREEMPT_NS).
 * Overdue by VT_TIMER_LATE_NS on a P whose M runs user code, sysmon runs
 * them: the Gs they ready wait in the global queue, where the shorter
 * slice applies (VT_PREEMPT_GLOBAL_NS), and a real-time one preempts a
 * lower-priority G at once (sched.c, ready_rt).  The heap is the P's
 * tlock's; the timer functions may run without a P. */
static bool run_late_timers(int64_t now)
{
    bool any = false;
    for (int i = 0; i < vt_sched.nprocs; i++) {
        vt_p *p = vt_sched.allp[i];
        if (P_STATE(ld_acquire(&p->status)) == P_USER &&
            ld_acquire(&p->timer0) <= now - VT_TIMER_LATE_NS &&
            vt_timers_run(p, NULL, now) > 0)
            any = true;
    }
    return any;
}

/* Some runnable G waits for a P (global queue or any P's). */
static bool gs_queued(void)
{
    if (ld_relaxed(&vt_sched.runq_size))
        return true;
    for (int i = 0; i < vt_sched.nprocs; i++) {
        vt_p *p = vt_sched.allp[i];
        if (vt_runq_len(&p->runq) || ld_relaxed(&p->runnext))
            return true;
    }
    return false;
}

/* The thresholds below, lengthened by the seeded scheduler (fuzz.c):
 * each retake or preemption is a decision made by the clock, which a
 * replay cannot repeat, so it only steps in when a G would otherwise
 * hold everyone up for long.  Written once, before sysmon's loop. */
static int64_t syscall_retake_ns = VT_SYSCALL_RETAKE_NS;
static int64_t blocked_retake_ns = VT_BLOCKED_RETAKE_NS;
static int64_t preempt_ns = VT_PREEMPT_NS;
static int64_t preempt_global_ns = VT_PREEMPT_GLOBAL_NS;
static int64_t unpolled_ns = 1000000;

static bool retake(int64_t now)
{
    bool acted = false;
    for (int i = 0; i < vt_sched.nprocs; i++) {
        vt_p *p = vt_sched.allp[i];
        uint64_t s = ld_acquire(&p->status);
        int st = P_STATE(s);
        uint32_t tick = ld_acquire(&p->schedtick);
        uint32_t stick = ld_acquire(&p->syscalltick);
        if (st != P_USER && st != P_SYSCALL) {
            p->sm_when = 0;
            continue;
        }
        if (p->sm_when == 0 || tick != p->sm_schedtick ||
            stick != p->sm_syscalltick) {
            p->sm_schedtick = tick;
            p->sm_syscalltick = stick;
            p->sm_when = now;
            p->sm_cpu = -1;
            p->sm_d_since = 0;
            continue;
        }
        int64_t age = now - p->sm_when;
        bool take = false, hog = false;
        if (st == P_SYSCALL) {
            take = age >= syscall_retake_ns;
        } else if (age >= blocked_retake_ns) {
            vt_m *m = m_by_id(P_OWNER(s));
            int64_t cpu = m ? vt_cpu_clock_ns(m->cpuclock) : -1;
            if (cpu >= 0) {
                if (p->sm_cpu < 0) { /* first look in this tick */
                    p->sm_cpu0 = cpu;
                    p->sm_cpu0_when = now;
                }
                if (p->sm_cpu >= 0) {
                    int64_t dc = cpu - p->sm_cpu, dw = now - p->sm_cpu_when;
                    if (dw > 0 && dc * 8 < dw)
                        take = blocked_now(p, m, now);
                }
                p->sm_cpu = cpu;
                p->sm_cpu_when = now;
            }
            /* Busy for too long while others wait: preempt, if its
             * thread is on a CPU (never signal a sleeping one: EINTR).
             * Sooner when a G waits in the global queue (rt.h). */
            int64_t slice = ld_relaxed(&vt_sched.runq_size) > 0
                                ? preempt_global_ns
                                : preempt_ns;
            bool waiting = !take && m && age >= slice && others_waiting(p, now);
            if (waiting && now - p->sm_preempt_when >= slice / 2 &&
                m_kstate(m, true) == 'R')
                p->sm_preempt_when = now; /* (the prober asked it) */
            /* Still running after several requests: the handler keeps
             * refusing (the G loops inside libc, e.g. on syscall(), where
             * every signal lands).  Take the P anyway, as from a blocked
             * M: the G runs on without one, its M over VTHREAD_PROCS,
             * until it next enters the runtime and queues itself for a P;
             * the Gs waiting for this P run meanwhile.  Only if its M
             * really ran (half the time at least): one the kernel keeps
             * off the CPU on a loaded machine is no hog. */
            if (waiting && age >= 4 * slice && cpu >= 0 &&
                (cpu - p->sm_cpu0) * 2 >= now - p->sm_cpu0_when &&
                now - p->sm_cpu0_when >= 2 * slice) {
                take = true;
                hog = true;
            }
        }
        if (!take)
            continue;
        uint64_t exp = s;
        if (!cas(&p->status, &exp, P_STATUS(0, P_RT)))
            continue; /* its M came back */
        xadd(st == P_SYSCALL ? &vt_stats.retakes_syscall
             : hog           ? &vt_stats.retakes_busy
                             : &vt_stats.retakes_blocked, 1);
        p->sm_when = 0;
        VT_PROBE2(retake, p->id, st == P_SYSCALL ? 0 : hog ? 2 : 1);
        vt_trace_p(VT_TR_RETAKE, p, NULL,
                   (uint64_t)(st == P_SYSCALL ? 0 : hog ? 2 : 1) |
                       (uint64_t)P_OWNER(s) << 8);
        vt_handoffp(p);
        /* A P taken from a blocked M hints at more blocking to come:
         * tick fast again.  A hog's is routine time slicing. */
        if (!hog)
            acted = true;
    }
    return acted;
}

static void schedtrace(int64_t now, int64_t start)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "vthread: schedtrace: %lldms: procs=%d idleprocs=%d "
                     "threads=%d spinningthreads=%d idlethreads=%d "
                     "runqueue=%d gs=%lld [",
                     (long long)((now - start) / 1000000), vt_sched.nprocs,
                     ld_relaxed(&vt_sched.npidle), vt_sched.mcount,
                     ld_relaxed(&vt_sched.nmspinning), vt_sched.nmidle,
                     ld_relaxed(&vt_sched.runq_size),
                     (long long)ld_relaxed(&vt_sched.live));
    for (int i = 0; i < vt_sched.nprocs && n < (int)sizeof buf - 16; i++) {
        vt_p *p = vt_sched.allp[i];
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%u", i ? " " : "",
                      vt_runq_len(&p->runq) + (ld_relaxed(&p->runnext) != 0));
    }
    if (n < (int)sizeof buf - 2)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "]\n");
    vt_sys3(SYS_write, 2, buf, (size_t)n);
}

static void *sysmon_main(void *arg)
{
    /* sysmon runs no program code: it takes no asynchronous signal (the
     * kernel then picks a thread that runs Gs; preload/signal.c) */
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGTRAP);
    vt_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
    int64_t delay = 20000;
    int quiet = 0;
    int64_t start = vt_now(), last_trace = start;
    uint64_t polls_seen = 0;   /* vt_netpoll_count when it last changed */
    int64_t polled_at = start; /* and when sysmon saw that */
    int64_t trace_ns = (int64_t)vt_cfg.schedtrace_ms * 1000000;
    if (vt_fuzz_mode) {
        syscall_retake_ns = blocked_retake_ns = 10000000;
        preempt_ns = preempt_global_ns = unpolled_ns = 50000000;
    }
    for (;;) {
        int w = ld_acquire(&vt_sched.sysmon_wake);
        bool all_idle = ld_acquire(&vt_sched.npidle) == vt_sched.nprocs;
        int64_t sleep_ns = delay;
        if (all_idle && !trace_ns) {
            st_release(&sysmon_idle, 1);
            /* Re-check after announcing: a P may have just started. */
            if (ld_acquire(&vt_sched.npidle) == vt_sched.nprocs)
                sleep_ns = vt_fuzz_mode ? 100000000 : 1000000000;
        } else if (trace_ns && all_idle) {
            sleep_ns = trace_ns;
        }
        /* Signals to route (vt_signal_defer stores route_req before it
         * bumps sysmon_wake, so a request w already counts is seen here):
         * at once; a retry (vt_signal_retry): within a millisecond. */
        if (ld_acquire(&vt_sched.route_req) ||
            ld_acquire(&vt_sched.mspawn_req))
            sleep_ns = 0;
        else if (ld_relaxed(&vt_sched.route_again) && sleep_ns > 1000000)
            sleep_ns = 1000000;
        struct timespec ts = {sleep_ns / 1000000000, sleep_ns % 1000000000};
        if (sleep_ns)
            vt_futex_wait(&vt_sched.sysmon_wake, w, &ts);
        st_release(&sysmon_idle, 0);

        vt_spawn_pending_ms();
        bool route = ld_relaxed(&vt_sched.route_again) &&
                     xchg(&vt_sched.route_again, 0);
        if (ld_relaxed(&vt_sched.route_req) && xchg(&vt_sched.route_req, 0))
            route = true;
        if (route && vt_hooks_set.route_signals)
            vt_hooks_set.route_signals();
        int64_t now = vt_now();
        if (unlikely(vt_fuzz_mode) && all_idle)
            vt_fuzz_watch(now);
        bool acted = retake(now);
        if (run_late_timers(now))
            acted = true;
        /* A due timer with an idle P and nobody watching: wake an M. */
        int64_t next = vt_sched_next_timer();
        if (next <= now && ld_acquire(&vt_sched.npidle) > 0 &&
            ld_acquire(&vt_sched.watch_until) > now + 1000000)
            vt_wakep();
        /* Nobody polled descriptors for 1 ms (every P busy): readied Gs then
         * queue globally, and the 1 ms preemption slice lets them run. */
        uint64_t polls = vt_netpoll_count();
        if (polls != polls_seen) {
            polls_seen = polls;
            polled_at = now;
        }
        if (vt_netpoll_has_waiters() && !vt_netpoll_blocked() &&
            now - polled_at > unpolled_ns && vt_netpoll(0, NULL) > 0)
            acted = true;
        if (trace_ns && now - last_trace >= trace_ns) {
            schedtrace(now, start);
            last_trace = now;
        }
        if (acted) {
            quiet = 0;
            delay = 20000;
        } else if (++quiet > 50 && delay < 10000000) {
            delay *= 2;
            if (delay > 10000000)
                delay = 10000000;
        }
        /* Cap the tick while some P runs user code and Gs wait for one:
         * blocking we cannot see must be noticed within about a
         * millisecond, since it holds them up.  With nothing queued a P
         * stuck in the kernel delays nobody, and the tick backs off to
         * 10 ms as Go's does: each tick on a busy machine costs sysmon a
         * context switch and preempts a running M for it. */
        if (!all_idle && delay > 1000000 && gs_queued())
            delay = 1000000;
    }
    return arg;
}

void vt_sysmon_start(void)
{
    /* after fork, the child has no prober: m_kstate starts one */
    st_relaxed(&probe.req, 0);
    st_relaxed(&probe.done, 0);
    st_relaxed(&probe.state, 0);
    int err = start_thread(&vt_sched.sysmon, 256 * 1024, sysmon_main);
    if (err)
        vt_fatal("cannot start the monitor thread: %s", strerror(err));
}

void vt_stats_print(void)
{
    vt_stats_fold();
    char buf[1024];
    int n = snprintf(
        buf, sizeof buf,
        "vthread: stats: gs_created=%llu gs_exited=%llu peak_live_gs=%lld "
        "ms_created=%llu procs=%d steals=%llu handoffs=%llu "
        "retakes_syscall=%llu retakes_blocked=%llu retakes_busy=%llu "
        "parks=%llu wakeups=%llu "
        "timers_fired=%llu units_made=%llu units_reused=%llu "
        "units_freed=%llu preemptions=%llu pinned=%llu ms_retired=%llu\n",
        (unsigned long long)vt_stats.gs_created,
        (unsigned long long)vt_stats.gs_exited,
        (long long)vt_stats.peak_live,
        (unsigned long long)vt_stats.ms_created + 1, vt_sched.nprocs,
        (unsigned long long)vt_stats.steals,
        (unsigned long long)vt_stats.handoffs,
        (unsigned long long)vt_stats.retakes_syscall,
        (unsigned long long)vt_stats.retakes_blocked,
        (unsigned long long)vt_stats.retakes_busy,
        (unsigned long long)vt_stats.parks,
        (unsigned long long)vt_stats.wakeups,
        (unsigned long long)vt_stats.timers_fired,
        (unsigned long long)vt_stats.units_made,
        (unsigned long long)vt_stats.units_reused,
        (unsigned long long)vt_stats.units_freed,
        (unsigned long long)vt_stats.preemptions,
        (unsigned long long)vt_stats.pinned,
        (unsigned long long)vt_stats.ms_retired);
    vt_sys3(SYS_write, 2, buf, (size_t)n);
}
