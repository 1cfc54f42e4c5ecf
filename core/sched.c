/*
 * sched.c — Gs, Ms and Ps: spawning, switching, readying, stealing, idling.
 *
 * The shape is Go's scheduler (runtime/proc.go); rt.h states the ownership
 * rules.  What differs, and why:
 *
 *  - No scheduler context on the fast path.  A G that blocks looks for the
 *    next G itself, on its own stack, and switches straight to it: one fs
 *    write per switch (arch_prctl costs microseconds where FSGSBASE is
 *    missing).  Only when nothing is runnable does it switch to its M's g0,
 *    which spins, steals, and finally sleeps on a futex.
 *  - The park/ready race is closed by g->on_cpu instead of Go's "unlock on
 *    g0 after the switch": the G queues itself as a waiter while still on
 *    its stack; whoever picks it up waits for on_cpu to clear.
 *  - Blocking we cannot see: user code runs with its P in P_USER, which
 *    sysmon may take back when the M stops making CPU progress.  Runtime
 *    entry points therefore begin with vt_rt_enter (one CAS) and end with
 *    vt_rt_leave (one store).
 *  - The runtime starts lazily, at the first vt_spawn: a program that never
 *    creates a thread pays nothing, and a fork before that needs nothing.
 *
 * Spinning Ms (Go's rule): an M out of work spins (steals) only while
 * spinning Ms are fewer than half the busy Ps; a readied G wakes an idle P
 * only when no M spins (vt_wakep).  A spinning M that stops spinning
 * re-checks every run queue after decrementing nmspinning, because a G
 * readied just before the decrement woke nobody.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "probes.h"
#include "real.h"
#include "rt.h"

struct vt_sched vt_sched;
struct vt_stats vt_stats;
struct vt_stat_shard vt_stat_shards[VT_STAT_SHARDS];

void vt_stats_fold(void)
{
    _Atomic uint64_t *to[VT_ST_N] = {
        [VT_ST_PARKS] = &vt_stats.parks,
        [VT_ST_WAKEUPS] = &vt_stats.wakeups,
        [VT_ST_GS_CREATED] = &vt_stats.gs_created,
        [VT_ST_GS_EXITED] = &vt_stats.gs_exited,
        [VT_ST_UNITS_REUSED] = &vt_stats.units_reused,
        [VT_ST_STEALS] = &vt_stats.steals};
    for (int i = 0; i < VT_ST_N; i++) {
        uint64_t sum = 0;
        for (int s = 0; s < VT_STAT_SHARDS; s++)
            sum += ld_relaxed(&vt_stat_shards[s].c[i]);
        st_relaxed(to[i], sum);
    }
}
struct vt_hooks vt_hooks_set;

VT_HIDDEN void vt_tls_run_dtors(void);
VT_HIDDEN extern _Atomic uint64_t vt_tls_gen;

static vt_g main_g;
static vt_m *m0;
static _Atomic int next_mid = 1;

#define M_G0_STACK (1u << 20)

/* --------------------------------------------------------------- helpers */

int64_t vt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC at the kernel tick's resolution (1-4 ms), a few ns
 * instead of a full vDSO read: for figures only people read (how long a
 * G has waited). */
int64_t vt_now_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t fastrand(vt_m *m)
{
    uint32_t x = m->fastrand;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return m->fastrand = x ? x : 0x9e3779b9u;
}

static void notesleep(vt_m *m, int64_t deadline)
{
    while (!ld_acquire(&m->park)) {
        struct timespec ts, *tsp = NULL;
        if (deadline) {
            int64_t left = deadline - vt_now();
            if (left <= 0)
                return;
            ts.tv_sec = left / 1000000000;
            ts.tv_nsec = left % 1000000000;
            tsp = &ts;
        }
        vt_futex_wait(&m->park, 0, tsp);
    }
}

static void notewakeup(vt_m *m)
{
    st_release(&m->park, 1);
    vt_futex_wake(&m->park, 1);
}

/* ------------------------------------------------------- P and M lists */
/* All with sched.lock held. */

static vt_p *pidleget(void)
{
    vt_p *p = vt_sched.pidle;
    if (p) {
        vt_sched.pidle = p->link;
        p->link = NULL;
        xsub(&vt_sched.npidle, 1);
    }
    return p;
}

static void pidleput(vt_p *p)
{
    st_release(&p->status, P_STATUS(0, P_IDLE));
    p->m = NULL;
    p->link = vt_sched.pidle;
    vt_sched.pidle = p;
    xadd(&vt_sched.npidle, 1);
}

static vt_m *mget(void)
{
    vt_m *m = vt_sched.midle;
    if (m) {
        vt_sched.midle = m->schedlink;
        m->schedlink = NULL;
        vt_sched.nmidle--;
    }
    return m;
}

static void acquirep(vt_m *m, vt_p *p)
{
    m->p = p;
    p->m = m;
    st_release(&p->status, P_STATUS(m->id, P_RT));
    /* A P runs again: sysmon, asleep for a second while every P was idle,
     * must watch it (a G of it may block in a system call with others
     * queued behind it).  One load unless sysmon sleeps. */
    vt_sysmon_kick();
}

/* -------------------------------------------------------- run queues */

static void globrunqput_locked(vt_g *g)
{
    if (unlikely(vt_fuzz_mode == VT_FUZZ_PCT))
        vt_fuzz_queued(g);
    g->schedlink = NULL;
    if (vt_sched.runq_tail)
        vt_sched.runq_tail->schedlink = g;
    else
        vt_sched.runq_head = g;
    vt_sched.runq_tail = g;
    xadd(&vt_sched.runq_size, 1);
}

static void globrunqput(vt_g *g)
{
    vt_lock_acquire(&vt_sched.lock);
    globrunqput_locked(g);
    vt_lock_release(&vt_sched.lock);
}

/* A real-time G that could not run next where it was readied: at the
 * head of the global queue, behind the ones of its priority or higher
 * already there, and counted in rt_waiting, which makes every M look at
 * the global queue first (find_local, findrunnable). */
static void globrunqput_rt(vt_g *g)
{
    int prio = ld_relaxed(&g->rt_prio);
    vt_lock_acquire(&vt_sched.lock);
    vt_g **pp = &vt_sched.runq_head;
    while (*pp && (*pp)->rt_queued && ld_relaxed(&(*pp)->rt_prio) >= prio) {
        pp = &(*pp)->schedlink;
    }
    g->schedlink = *pp;
    *pp = g;
    if (!g->schedlink)
        vt_sched.runq_tail = g;
    g->rt_queued = true;
    xadd(&vt_sched.runq_size, 1);
    xadd(&vt_sched.rt_waiting, 1);
    vt_lock_release(&vt_sched.lock);
}

/* Takes one G from the global queue and moves a fair share more into p's
 * local queue.  max = 0: no limit but the fair share. */
static vt_g *globrunqget(vt_p *p, int max)
{
    if (ld_relaxed(&vt_sched.runq_size) == 0)
        return NULL;
    if (unlikely(vt_fuzz_mode)) {
        /* the seeded scheduler chooses, one G at a time (fuzz.c) */
        vt_lock_acquire(&vt_sched.lock);
        vt_g *g = vt_fuzz_pick(NULL);
        vt_lock_release(&vt_sched.lock);
        return g;
    }
    vt_lock_acquire(&vt_sched.lock);
    int size = ld_relaxed(&vt_sched.runq_size);
    if (size == 0) {
        vt_lock_release(&vt_sched.lock);
        return NULL;
    }
    int n = size / vt_sched.nprocs + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > VT_RUNQ_SIZE / 2)
        n = VT_RUNQ_SIZE / 2;
    vt_g *first = vt_sched.runq_head;
    vt_g *g = first;
    for (int i = 0; i < n; i++) {
        vt_g *next = g->schedlink;
        if (unlikely(g->rt_queued)) {
            g->rt_queued = false;
            xsub(&vt_sched.rt_waiting, 1);
        }
        if (i > 0)
            vt_runq_put(&p->runq, g); /* room: n <= half the ring */
        g = next;
    }
    vt_sched.runq_head = g;
    if (!g)
        vt_sched.runq_tail = NULL;
    xsub(&vt_sched.runq_size, n);
    vt_lock_release(&vt_sched.lock);
    return first;
}

/* Owner only.  next: put g in runnext (it runs next, inheriting the time
 * slice: a ping-pong pair stays on one P); the G it displaces goes to the
 * ring. */
static void runqput(vt_p *p, vt_g *g, bool next)
{
    if (unlikely(vt_fuzz_mode)) {
        globrunqput(g); /* one list for the seeded scheduler to pick from */
        return;
    }
    if (next) {
        g = xchg(&p->runnext, g);
        if (!g)
            return;
    }
    while (!vt_runq_put(&p->runq, g)) {
        void *batch[VT_RUNQ_SIZE / 2 + 1];
        uint32_t n = vt_runq_spill(&p->runq, g, batch);
        if (n == 0)
            continue; /* thieves made room */
        vt_lock_acquire(&vt_sched.lock);
        for (uint32_t i = 0; i < n; i++)
            globrunqput_locked(batch[i]);
        vt_lock_release(&vt_sched.lock);
        return;
    }
}

static vt_g *runqget(vt_p *p)
{
    vt_g *g = ld_relaxed(&p->runnext);
    if (g && cas(&p->runnext, &g, NULL))
        return g;
    return vt_runq_get(&p->runq);
}

/* Steals half of victim's queue into p's; returns one G to run. */
static vt_g *runqsteal(vt_p *p, vt_p *victim, bool take_next)
{
    void *batch[VT_RUNQ_SIZE / 2 + 1];
    uint32_t n = vt_runq_grab(&victim->runq, batch, VT_RUNQ_SIZE / 2);
    if (n == 0) {
        if (!take_next)
            return NULL;
        /* The victim's owner is running user code (or is stuck in it):
         * its runnext would otherwise wait for it. */
        uint64_t s = ld_acquire(&victim->status);
        if (P_STATE(s) != P_USER && P_STATE(s) != P_SYSCALL)
            return NULL;
        vt_g *g = ld_relaxed(&victim->runnext);
        if (!g)
            return NULL;
        /* A G that readies another and then blocks (a ping-pong) leaves
         * it in runnext for a moment: give the owner a few us to run it
         * before taking it, and sleep meanwhile rather than spin on the
         * owner's cache lines (Go does the same, usleep(3)). */
        struct timespec ts = {0, 3000};
        vt_sys2(SYS_nanosleep, &ts, NULL);
        s = ld_acquire(&victim->status);
        if ((P_STATE(s) != P_USER && P_STATE(s) != P_SYSCALL) ||
            ld_relaxed(&victim->runnext) != g)
            return NULL;
        if (cas(&victim->runnext, &g, NULL)) {
            vt_stat_inc(VT_ST_STEALS);
            vt_trace_p(VT_TR_STEAL, victim, p->m, (uint64_t)p->id << 32 | 1);
            return g;
        }
        return NULL;
    }
    vt_stat_inc(VT_ST_STEALS);
    VT_PROBE3(steal, p->id, victim->id, n);
    vt_trace_p(VT_TR_STEAL, victim, p->m, (uint64_t)p->id << 32 | n);
    for (uint32_t i = 0; i + 1 < n; i++)
        vt_runq_put(&p->runq, batch[i]); /* p's ring is empty: room */
    return batch[n - 1];
}

/* ----------------------------------------------------------- switching */

/* Switches from `from` (on this M, P in P_RT) to `to` (popped from a run
 * queue).  Returns when `from` runs again, possibly on another M. */
static void switch_to_g0(vt_m *m, vt_g *from);
static inline void m_sync_routed(vt_m *m);

/* ------------------------------------------------------------- CPU time */

/* On the switching M, once accounting is on: the stretch of `from` on
 * this M ends, that of `to` begins (either may be NULL or a g0). */
static void cpu_switch(vt_g *from, vt_g *to)
{
    int64_t now = vt_cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (from && !from->is_g0) {
        xadd(&from->cpu_seq, 1);
        if (from->cpu_in)
            from->cpu_ns += now - from->cpu_in;
        from->cpu_in = 0;
        xadd(&from->cpu_seq, 1);
    }
    if (to && !to->is_g0) {
        xadd(&to->cpu_seq, 1);
        to->cpu_in = now;
        xadd(&to->cpu_seq, 1);
    }
}

static inline void cpu_account(vt_g *from, vt_g *to)
{
    if (unlikely(ld_relaxed(&vt_sched.cpu_acct)))
        cpu_switch(from, to);
}

int64_t vt_g_cputime(vt_g *g)
{
    vt_g *self = vt_tp_g();
    if (!ld_acquire(&vt_sched.cpu_acct))
        st_release(&vt_sched.cpu_acct, 1);
    if (g == self) {
        /* on its M for now (switches happen in the runtime, not here) */
        int64_t now = vt_cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
        if (!g->cpu_in) {
            xadd(&g->cpu_seq, 1);
            g->cpu_in = now;
            xadd(&g->cpu_seq, 1);
        }
        return g->cpu_ns + (now - g->cpu_in);
    }
    for (;;) {
        unsigned s0 = ld_acquire(&g->cpu_seq);
        if (s0 & 1) {
            vt_arch_relax();
            continue;
        }
        int64_t ns = g->cpu_ns, in = g->cpu_in;
        vt_m *m = g->m;
        int64_t now = in && m ? vt_cpu_clock_ns(m->cpuclock) : -1;
        if (ld_acquire(&g->cpu_seq) == s0)
            return ns + (in && now > in ? now - in : 0);
    }
}

/* G_RUNNING, as a full barrier: vt_signal_notify stores the G's
 * sig_notify and then loads its status, the G (once running) stores its
 * status and later loads sig_notify in sig_check.  Either the notifier
 * sees G_RUNNING (and interrupts the M), or the G sees the notification;
 * with weaker orders both could read the old value (store buffering). */
static inline void set_running(vt_g *g)
{
    atomic_store_explicit(&g->status, G_RUNNING, memory_order_seq_cst);
}

static void switch_g(vt_m *m, vt_g *from, vt_g *to)
{
    if (to == from) {
        set_running(from);
        return;
    }
    if (unlikely(to->lockedm != NULL) ||
        ld_acquire((_Atomic int *)&to->on_cpu)) {
        /* `to` is pinned to another M (m_loop hands it our P), or still
         * leaving another M.  Never wait while holding `from` on this
         * CPU: that M may be waiting for `from` in turn (two Ms swapping
         * yielded Gs).  Wait on g0, which holds nothing. */
        m->g0next = to;
        switch_to_g0(m, from);
        return;
    }
    m_sync_routed(m);
    cpu_account(from, to);
    to->on_cpu = 1;
    to->m = m;
    m->curg = to;
    set_running(to);
    vt_trace_run(m, to); /* from's slice ends, to's begins */
    vt_arch_switch(&from->sp, to->sp, vt_pd_tp(to->pd), &from->on_cpu);
}

static void switch_to_g0(vt_m *m, vt_g *from)
{
    cpu_account(from, NULL);
    vt_trace_run(m, NULL);
    m->curg = NULL;
    m->g0->on_cpu = 1;
    vt_arch_switch(&from->sp, m->g0->sp, vt_pd_tp(m->g0->pd), &from->on_cpu);
}

/* g0 -> g, then back on g0 when some G of this M has nothing to run. */
static void execute(vt_m *m, vt_g *g)
{
    VT_ASSERT(m->p && ld_relaxed(&g->status) == G_RUNNABLE);
    while (ld_acquire((_Atomic int *)&g->on_cpu))
        vt_arch_relax();
    m_sync_routed(m);
    cpu_account(NULL, g);
    g->on_cpu = 1;
    g->m = m;
    m->curg = g;
    xadd(&m->p->schedtick, 1);
    set_running(g);
    vt_trace_run(m, g);
    vt_arch_switch(&m->g0->sp, g->sp, vt_pd_tp(g->pd), &m->g0->on_cpu);
}

/* ----------------------------------------------------------- M control */

static void m_loop(void *arg);
static vt_g *inject(vt_p *p, vt_glist *l);
static void *mstart(void *arg);

static void spawn_m(vt_m *m);

/* True when the calling OS thread is the M of a pinned G (on the G or
 * its g0): what it changed for itself (namespaces, credentials, no new
 * privileges, affinity ...) must not reach threads made from it.  Cheap
 * when no G is pinned; else a system call, on the rare path of making
 * an M. */
static bool on_locked_m(void)
{
    if (likely(!ld_acquire(&vt_sched.nlocked)))
        return false;
    pid_t tid = (pid_t)vt_sys0(SYS_gettid);
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        if (m->tid == tid && !ld_acquire(&m->dead))
            return ld_relaxed((vt_g *_Atomic *)&m->lockedg) != NULL;
    return false;
}

/* On sysmon: makes the OS threads newm left to it (on_locked_m). */
void vt_spawn_pending_ms(void)
{
    if (!ld_acquire(&vt_sched.mspawn_req) || !xchg(&vt_sched.mspawn_req, 0))
        return;
    vt_lock_acquire(&vt_sched.lock);
    vt_m *list = vt_sched.mspawn;
    vt_sched.mspawn = NULL;
    vt_lock_release(&vt_sched.lock);
    while (list) {
        vt_m *m = list;
        list = m->schedlink;
        m->schedlink = NULL;
        spawn_m(m);
    }
}

static void newm(vt_p *p, bool spinning)
{
    vt_m *m = calloc(1, sizeof *m);
    vt_g *g0 = calloc(1, sizeof *g0);
    if (!m || !g0)
        vt_fatal("out of memory creating an OS thread");
    m->id = xadd(&next_mid, 1);
    m->statfd = -1;
    m->g0 = g0;
    g0->is_g0 = true;
    g0->kind = GU_G0;
    g0->m = m;
    m->nextp = p;
    m->spinning = spinning;
    m->fastrand = (uint32_t)m->id * 0x9e3779b9u;
    vt_lock_acquire(&vt_sched.lock);
    if (vt_sched.mcount >= vt_cfg.max_ms) {
        vt_lock_release(&vt_sched.lock);
        vt_fatal("program needs more than %d OS threads (VTHREAD_MAX_THREADS):"
                 " too many threads blocked in system calls at once",
                 vt_cfg.max_ms);
    }
    vt_sched.mcount++;
    m->allnext = vt_sched.allm;
    vt_sched.allm = m;
    vt_lock_release(&vt_sched.lock);
    xadd(&vt_stats.ms_created, 1);
    if (unlikely(on_locked_m())) {
        /* A thread made here would inherit this one's per-task state:
         * sysmon, which has none, makes it (vt_spawn_pending_ms). */
        vt_lock_acquire(&vt_sched.lock);
        m->schedlink = vt_sched.mspawn;
        vt_sched.mspawn = m;
        vt_lock_release(&vt_sched.lock);
        st_release(&vt_sched.mspawn_req, 1);
        xadd(&vt_sched.sysmon_wake, 1);
        vt_futex_wake(&vt_sched.sysmon_wake, 1);
        return;
    }
    spawn_m(m);
}

/* Makes the OS thread of m (newm). */
static void spawn_m(vt_m *m)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* Born with every signal blocked: until mstart has recorded its tid
     * and set its mask, a signal landing on it would look like one for a
     * thread vthread does not run (vt_signal_context). */
    sigset_t all;
    sigfillset(&all);
    pthread_attr_setsigmask_np(&a, &all);
    int err = vt_real.pthread_create(&m->thread, &a, mstart, m);
    pthread_attr_destroy(&a);
    if (err)
        vt_fatal("cannot create an OS thread (M %d): %s", m->id,
                 strerror(err));
}

static clockid_t thread_cpuclock(pid_t tid)
{
    /* Linux: MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED). */
    return (clockid_t)((~(unsigned)tid << 3) | 6);
}

static void *mstart(void *arg)
{
    vt_m *m = arg;
    m->tid = (pid_t)vt_sys0(SYS_gettid);
    m->cpuclock = thread_cpuclock(m->tid);
    m->g0->pd = vt_pd_self();
    m->g0->on_cpu = 1;
    m->g0->status = G_RUNNING;
    /* not the creator's mask (sysmon's blocks everything): see mask_hint */
    uint64_t k = ld_relaxed(&vt_sched.mask_hint) & ~ld_acquire(&vt_sched.routed);
    vt_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &k, NULL, 8);
    m->routed_gen = ld_acquire(&vt_sched.routed_gen);
    vt_crash_thread_init();
    vt_p *p = m->nextp;
    m->nextp = NULL;
    if (p)
        acquirep(m, p);
    m_loop(m);
    return NULL;
}

/* Gives p and, if needed, a fresh M to run it. */
static void startm(vt_p *p, bool spinning)
{
    vt_lock_acquire(&vt_sched.lock);
    if (!p) {
        p = pidleget();
        if (!p) {
            vt_lock_release(&vt_sched.lock);
            if (spinning)
                xsub(&vt_sched.nmspinning, 1);
            return;
        }
    }
    vt_m *m = mget();
    if (m && vt_sched.watcher == m) {
        vt_sched.watcher = NULL;
        st_release(&vt_sched.watch_until, INT64_MAX);
    }
    vt_lock_release(&vt_sched.lock);
    /* The P belongs to the chosen M from here: mark it so sysmon leaves
     * it alone until that M runs. */
    /* (sysmon is woken when the M takes it: acquirep) */
    st_release(&p->status, P_STATUS(0, P_RT));
    if (!m) {
        newm(p, spinning);
        return;
    }
    m->spinning = spinning;
    m->nextp = p;
    notewakeup(m);
}

void vt_wakep(void)
{
    if (ld_acquire(&vt_sched.npidle) == 0)
        return;
    int z = 0;
    if (ld_acquire(&vt_sched.nmspinning) != 0 ||
        !cas(&vt_sched.nmspinning, &z, 1))
        return;
    startm(NULL, true);
}

void vt_handoffp(vt_p *p)
{
    xadd(&vt_stats.handoffs, 1);
    VT_PROBE1(handoff, p->id);
    vt_trace_p(VT_TR_HANDOFF, p, p->m, 0);
    if (vt_runq_len(&p->runq) || ld_relaxed(&p->runnext) ||
        ld_relaxed(&vt_sched.runq_size)) {
        startm(p, false);
        return;
    }
    int z = 0;
    if (ld_acquire(&vt_sched.nmspinning) + ld_acquire(&vt_sched.npidle) == 0 &&
        cas(&vt_sched.nmspinning, &z, 1)) {
        startm(p, true);
        return;
    }
    vt_lock_acquire(&vt_sched.lock);
    pidleput(p);
    vt_lock_release(&vt_sched.lock);
    if (ld_relaxed(&p->timer0) != INT64_MAX)
        vt_sysmon_kick();
}

int64_t vt_sched_next_timer(void)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < vt_sched.nprocs; i++) {
        int64_t w = ld_acquire(&vt_sched.allp[i]->timer0);
        if (w < next)
            next = w;
    }
    return next;
}

/* Parks the M (no P) until startm hands it one, or until `deadline` when it
 * is the timer watcher.  Returns with m->p set, or NULL after a timeout. */
static void stopm(vt_m *m, int64_t deadline)
{
    st_relaxed(&m->park, 0);
    vt_lock_acquire(&vt_sched.lock);
    m->watching = false;
    if (deadline != INT64_MAX &&
        (!vt_sched.watcher || deadline < ld_relaxed(&vt_sched.watch_until))) {
        vt_sched.watcher = m;
        st_release(&vt_sched.watch_until, deadline);
        m->watching = true;
    }
    m->schedlink = vt_sched.midle;
    vt_sched.midle = m;
    vt_sched.nmidle++;
    vt_lock_release(&vt_sched.lock);

    notesleep(m, m->watching ? deadline : 0);
    if (!ld_acquire(&m->park)) {
        /* Timed out as the watcher: leave the idle list unless a startm
         * already picked us (then its wake-up is on its way). */
        vt_lock_acquire(&vt_sched.lock);
        vt_m **pp = &vt_sched.midle;
        while (*pp && *pp != m)
            pp = &(*pp)->schedlink;
        if (*pp) {
            *pp = m->schedlink;
            m->schedlink = NULL;
            vt_sched.nmidle--;
            if (vt_sched.watcher == m) {
                vt_sched.watcher = NULL;
                st_release(&vt_sched.watch_until, INT64_MAX);
            }
            vt_p *p = pidleget();
            vt_lock_release(&vt_sched.lock);
            if (p)
                acquirep(m, p);
            return;
        }
        vt_lock_release(&vt_sched.lock);
        notesleep(m, 0);
    }
    vt_p *p = m->nextp;
    m->nextp = NULL;
    if (p)
        acquirep(m, p);
}

/* An M without a P sleeps; the first such M watches the earliest timer,
 * but only while an idle P exists to run it (busy Ps run their own).
 * When Gs wait for descriptors, one idle M sleeps in epoll_wait instead,
 * and runs what it readies itself (inject).  Returns a G to run, with a
 * P acquired, or NULL (the caller looks again, with or without a P). */
static vt_g *idle(vt_m *m)
{
    int64_t dl = INT64_MAX;
    if (ld_acquire(&vt_sched.npidle) > 0) {
        dl = vt_sched_next_timer();
        if (dl != INT64_MAX && dl <= vt_now()) {
            vt_lock_acquire(&vt_sched.lock);
            vt_p *p = pidleget();
            vt_lock_release(&vt_sched.lock);
            if (p) {
                acquirep(m, p);
                return NULL;
            }
            dl = INT64_MAX;
        }
    }
    vt_glist ready = {0};
    /* Fuzzing: while the P runs, descriptors are polled at its schedule
     * points only (vt_fuzz_point_slow), so that when a G sees a readied
     * reader depends on the program, not on this M's timing. */
    if ((!vt_fuzz_mode || ld_acquire(&vt_sched.npidle) > 0) &&
        vt_netpoll_block(dl, &ready)) {
        vt_lock_acquire(&vt_sched.lock);
        vt_p *p = ready.n || ld_relaxed(&vt_sched.runq_size) ||
                          vt_sched_next_timer() <= vt_now()
                      ? pidleget()
                      : NULL;
        if (!p) {
            /* Every P is busy: they find these on the global queue. */
            for (vt_g *g = ready.head; g;) {
                vt_g *next = g->schedlink;
                globrunqput_locked(g);
                g = next;
            }
            ready.n = 0;
        }
        vt_lock_release(&vt_sched.lock);
        if (p) {
            acquirep(m, p);
            if (ready.n)
                return inject(p, &ready);
        }
        return NULL;
    }
    stopm(m, dl);
    return NULL;
}

static void resetspinning(vt_m *m)
{
    m->spinning = false;
    if (xsub(&vt_sched.nmspinning, 1) == 1)
        vt_wakep(); /* we were the last spinner and found work */
}

/* Runs the expired timers of every P (an idle P's timers have nobody
 * else).  p: the P of the M doing it (readied Gs go to its queue). */
static void run_all_timers(vt_p *p)
{
    int64_t now = 0; /* read the clock only if some P has a timer */
    for (int i = 0; i < vt_sched.nprocs; i++) {
        vt_p *on = vt_sched.allp[i];
        if (ld_relaxed(&on->timer0) == INT64_MAX)
            continue;
        if (!now)
            now = vt_now();
        vt_timers_run(on, p, now);
    }
}

/* On g0: finds a G to run; returns with m->p held in P_RT. */
static vt_g *findrunnable(vt_m *m)
{
    for (;;) {
        vt_p *p = m->p;
        if (!p) {
            vt_g *g = idle(m);
            if (g)
                return g;
            continue;
        }
        run_all_timers(p);
        vt_g *g = unlikely(ld_relaxed(&vt_sched.rt_waiting)) ? globrunqget(p, 1)
                                                             : NULL;
        if (!g)
            g = runqget(p);
        if (!g)
            g = globrunqget(p, 0);
        if (g)
            return g;
        /* Descriptors that became ready, before taking work from other
         * Ps: this M runs the first G it readied. */
        if (vt_netpoll_has_waiters() && !vt_netpoll_blocked()) {
            vt_glist ready = {0};
            vt_netpoll(0, &ready);
            if (ready.n)
                return inject(p, &ready);
        }
        int busy = vt_sched.nprocs - ld_acquire(&vt_sched.npidle);
        if (m->spinning || 2 * ld_acquire(&vt_sched.nmspinning) < busy) {
            if (!m->spinning) {
                m->spinning = true;
                xadd(&vt_sched.nmspinning, 1);
            }
            for (int round = 0; round < 4 && !g; round++) {
                int n = vt_sched.nprocs;
                int start = (int)(fastrand(m) % (uint32_t)n);
                for (int i = 0; i < n && !g; i++) {
                    vt_p *v = vt_sched.allp[(start + i) % n];
                    if (v != p)
                        g = runqsteal(p, v, round == 3);
                }
            }
            if (g)
                return g;
        }
        /* Nothing: give up the P. */
        vt_lock_acquire(&vt_sched.lock);
        if (ld_relaxed(&vt_sched.runq_size)) {
            vt_lock_release(&vt_sched.lock);
            continue;
        }
        pidleput(p);
        m->p = NULL;
        vt_lock_release(&vt_sched.lock);
        if (m->spinning) {
            m->spinning = false;
            xsub(&vt_sched.nmspinning, 1);
            /* Re-check: a G readied before our decrement woke nobody. */
            for (int i = 0; i < vt_sched.nprocs; i++) {
                vt_p *v = vt_sched.allp[i];
                if (vt_runq_len(&v->runq) || ld_relaxed(&v->runnext)) {
                    vt_lock_acquire(&vt_sched.lock);
                    vt_p *np = pidleget();
                    vt_lock_release(&vt_sched.lock);
                    if (np) {
                        acquirep(m, np);
                        m->spinning = true;
                        xadd(&vt_sched.nmspinning, 1);
                    }
                    break;
                }
            }
            if (m->p)
                continue;
        }
        if (ld_relaxed(&vt_sched.runq_size)) {
            vt_lock_acquire(&vt_sched.lock);
            vt_p *np = pidleget();
            vt_lock_release(&vt_sched.lock);
            if (np) {
                acquirep(m, np);
                continue;
            }
        }
        if ((g = idle(m)))
            return g;
    }
}

/* ------------------------------------------------------------- pinning */
/*
 * A pinned G (vt_pin_self) runs only on its M (g->lockedm), and that M
 * only runs it (m->lockedg): Go's LockOSThread.  The G goes through the
 * run queues like any other; whichever M pops it hands its own P to the
 * locked M and goes idle (startlockedm).  When the pinned G parks, yields
 * or loses its P, its M does not look for other work: it gives its P away
 * and sleeps until it is handed one with its G (stoplockedm).  The only
 * cost to unpinned Gs is the lockedm test in switch_g and m_loop.
 */

/* On g0 of an M without a locked G: g, popped from a run queue, is pinned
 * to another M.  Hands that M our P (as startm would) and the right to
 * run g; we go idle.  g stays G_RUNNABLE until its M executes it. */
static void startlockedm(vt_m *m, vt_g *g)
{
    vt_p *p = m->p;
    vt_m *lm = g->lockedm;
    m->p = NULL;
    st_release(&p->status, P_STATUS(0, P_RT)); /* in transit: see startm */
    lm->nextp = p;
    notewakeup(lm);
}

/* On g0 of a locked M whose G parked, yielded or lost its P: gives the P
 * away, sleeps until startlockedm hands one over, and returns the G to
 * run.  The note is consumed here (not reset before sleeping, as stopm
 * does): the G may have been readied and handed over before this M got
 * off its stack, and that wake-up must not be lost. */
static vt_g *stoplockedm(vt_m *m)
{
    vt_p *p = m->p;
    if (p) {
        m->p = NULL;
        st_release(&p->status, P_STATUS(0, P_RT));
        vt_handoffp(p);
    }
    notesleep(m, 0);
    st_relaxed(&m->park, 0);
    p = m->nextp;
    m->nextp = NULL;
    acquirep(m, p);
    return m->lockedg;
}

/* On g0 of a locked M whose G has exited: the OS thread carries the G's
 * per-task state (namespaces, credentials, affinity ...), which no other
 * G may inherit, so the M leaves the scheduler for good.  Returns true
 * when the caller may end the OS thread (m_loop returns to mstart); an M
 * whose g0 has no OS stack to return to (M0, a fork child's) sleeps
 * forever instead. */
static bool retire(vt_m *m)
{
    vt_p *p = m->p;
    if (p) {
        /* (still locked: an M this makes is made by sysmon) */
        m->p = NULL;
        st_release(&p->status, P_STATUS(0, P_RT));
        vt_handoffp(p);
    }
    m->lockedg = NULL;
    m->retiring = false;
    xsub(&vt_sched.nlocked, 1);
    /* Nothing lands here any more: process-directed signals go to
     * threads that run Gs, and vt_signal_context may forget this tid
     * (the kernel may give it to another thread). */
    uint64_t all = ~0ull;
    vt_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
    vt_lock_acquire(&vt_sched.lock);
    vt_sched.mcount--;
    vt_lock_release(&vt_sched.lock);
    st_release(&m->dead, 1);
    xadd(&vt_stats.ms_retired, 1);
    if (!m->made_g0)
        return true;
    _Atomic int never = 0;
    for (;;)
        vt_futex_wait(&never, 0, NULL);
}

static _Atomic int pin_first_g; /* vt_pin_self before vt_start */

void vt_pin_self(void)
{
    vt_g *g = vt_tp_g();
    if (!g || g->is_g0) {
        /* Before the runtime starts, the caller is the thread that will
         * become the first G (vt_start pins it then). */
        if (!g && !ld_acquire(&vt_sched.started))
            st_release(&pin_first_g, 1);
        return;
    }
    if (g->lockedm)
        return;
    /* Inside the runtime: no preemption or migration between reading
     * our M and pinning to it. */
    vt_m *m = vt_rt_enter(g);
    st_relaxed(&m->park, 0); /* startlockedm's note from now on */
    xadd(&vt_sched.nlocked, 1);
    m->lockedg = g;
    g->lockedm = m;
    xadd(&vt_stats.pinned, 1);
    vt_rt_leave(m);
}

static void m_loop(void *arg)
{
    vt_m *m = arg;
    for (;;) {
        vt_g *g = m->g0next;
        m->g0next = NULL;
        if (unlikely(m->lockedg != NULL) && !g) {
            if (m->retiring) {
                if (retire(m))
                    return;
                continue;
            }
            g = stoplockedm(m);
        }
        if (!g)
            g = findrunnable(m);
        if (m->spinning)
            resetspinning(m);
        if (unlikely(g->lockedm != NULL) && g->lockedm != m) {
            startlockedm(m, g);
            continue;
        }
        execute(m, g);
    }
}

/* ------------------------------------------------- the G side of things */

/* The G lost its P (sysmon took it while it was blocked) or gave it away:
 * get one, or queue ourselves and let this M idle. */
static vt_m *reacquire(vt_g *g)
{
    vt_m *m = g->m;
    m->p = NULL;
    vt_lock_acquire(&vt_sched.lock);
    vt_p *p = pidleget();
    if (p) {
        vt_lock_release(&vt_sched.lock);
        acquirep(m, p);
        return m;
    }
    st_release(&g->status, G_RUNNABLE);
    globrunqput_locked(g);
    vt_lock_release(&vt_sched.lock);
    switch_to_g0(m, g);
    return g->m; /* resumed by an M holding a P in P_RT */
}

vt_m *vt_rt_enter(vt_g *g)
{
    if (g->rt_depth++)
        return g->m; /* nested: the P is already ours in P_RT */
    vt_m *m = g->m;
    vt_p *p = m->p;
    if (likely(p != NULL)) {
        uint64_t exp = P_STATUS(m->id, P_USER);
        if (likely(cas(&p->status, &exp, P_STATUS(m->id, P_RT))))
            return m;
        exp = P_STATUS(m->id, P_SYSCALL);
        if (cas(&p->status, &exp, P_STATUS(m->id, P_RT)))
            return m;
    }
    return reacquire(g);
}

/* Delivers the signals notified to g (vt_signal_notify) if g holds
 * nothing of the runtime.  On g. */
void vt_sig_check(vt_g *g)
{
    /* Notified, or process-directed signals wait for sysmon to route them
     * (route_req): the kernel would give one to the first thread that
     * returns to user mode not blocking it; this G may be that one. */
    if (likely(!ld_relaxed(&g->sig_notify) &&
               !ld_relaxed(&vt_sched.route_req)) ||
        g->rt_depth || g->nlocks || g->intr_wait || g->is_g0)
        return;
    xchg(&g->sig_notify, 0);
    if (vt_hooks_set.deliver_signals)
        vt_hooks_set.deliver_signals(g);
}

/* Leaving the runtime, in this order, because a signal handler may run
 * between any two steps and enter the runtime itself (sem_post in a
 * handler):
 *  1. the P goes back to P_USER while rt_depth is still 1: a handler
 *     here sees "inside the runtime" and defers (if rt_depth were 0
 *     first, the handler's vt_rt_enter would find the P in P_RT, take it
 *     for lost, and reacquire a second P over the first);
 *  2. rt_depth drops to 0: from here a handler may run program code;
 *  3. what was deferred meanwhile (notified) is delivered (sig_check).
 * The compiler must keep that order too: signal fences. */
void vt_rt_leave_nodeliver(vt_m *m)
{
    vt_g *g = m->curg;
    VT_ASSERT(g->rt_depth > 0);
    VT_ASSERT(ld_relaxed(&m->p->status) == P_STATUS(m->id, P_RT));
    if (g->rt_depth == 1)
        st_release(&m->p->status, P_STATUS(m->id, P_USER));
    atomic_signal_fence(memory_order_seq_cst);
    g->rt_depth--;
    atomic_signal_fence(memory_order_seq_cst);
}

void vt_rt_leave(vt_m *m)
{
    vt_g *g = m->curg;
    vt_rt_leave_nodeliver(m);
    vt_sig_check(g);
    /* a preemption the handler had to refuse (preempt.c) */
    if (unlikely(ld_relaxed(&g->preempt_defer)) && !g->rt_depth &&
        !g->nlocks && !g->syscall_depth && !g->sig_frames)
        vt_yield();
}

pid_t vt_signal_notify(vt_g *g)
{
    atomic_store_explicit(&g->sig_notify, 1, memory_order_seq_cst);
    int st = atomic_load_explicit(&g->status, memory_order_seq_cst);
    if (st == G_WAITING)
        return 0;
    vt_m *m = g->m;
    return st == G_RUNNING && m ? m->tid : -1;
}

void vt_lock_sig_check(void)
{
    vt_g *g = vt_tp_g();
    if (g)
        vt_sig_check(g);
}

/* Counted as a runtime lock: no preemption either, meanwhile. */
void vt_signals_hold(void) { vt_lock_count(1); }
void vt_signals_release(void) { vt_lock_count(-1); }

/* Asks the M running the lowest-priority G below prio in user code to
 * preempt it, when no P is idle: the readied real-time G waits at the
 * head of the global queue, where that M looks first. */
static void preempt_for_rt(int prio)
{
    if (ld_acquire(&vt_sched.npidle) > 0)
        return; /* vt_wakep's M takes it */
    vt_m *victim = NULL;
    int low = prio;
    for (int i = 0; i < vt_sched.nprocs; i++) {
        vt_p *q = vt_sched.allp[i];
        uint64_t s = ld_acquire(&q->status);
        if (P_STATE(s) != P_USER)
            continue;
        vt_m *m = q->m;
        vt_g *cur = m ? m->curg : NULL; /* racy: a hint */
        int cp = cur ? ld_relaxed(&cur->rt_prio) : 0;
        if (cur && cp < low) {
            low = cp;
            victim = m;
        }
    }
    if (victim)
        vt_preempt_request(victim);
}

/* A real-time G became runnable (vt_ready).  As the kernel would: it runs
 * at once on the readier's P if the readier has a lower priority (the
 * readier yields as it leaves the runtime); else it waits first in line
 * for any P, and a P running a lower-priority G is preempted for it. */
static void ready_rt(vt_g *g, vt_p *p)
{
    int prio = ld_relaxed(&g->rt_prio);
    vt_g *self = vt_tp_g();
    if (p && self && !self->is_g0 && self->m && self->m->p == p &&
        ld_relaxed(&self->rt_prio) < prio) {
        runqput(p, g, true);
        st_relaxed(&self->preempt_defer, 1); /* vt_rt_leave yields */
        vt_wakep();
        return;
    }
    globrunqput_rt(g);
    vt_wakep();
    preempt_for_rt(prio);
}

/* G_WAITING -> G_RUNNABLE for vt_ready and vt_ready_to; a real-time G
 * is queued by ready_rt at once (false: nothing left for the caller). */
static bool make_runnable(vt_g *g, vt_p *p)
{
    int exp = G_WAITING;
    if (unlikely(!cas(&g->status, &exp, G_RUNNABLE)))
        vt_fatal("readying G %llu that is not waiting (state %d)",
                 (unsigned long long)g->id, exp);
    VT_PROBE1(unpark, g->id);
    vt_trace_unpark(g, p);
    if (unlikely(ld_relaxed(&g->rt_prio) > 0)) {
        ready_rt(g, p); /* vt_g_set_rt_prio */
        return false;
    }
    return true;
}

void vt_ready_to(vt_g *g, vt_glist *l)
{
    if (!make_runnable(g, NULL))
        return;
    g->schedlink = NULL;
    if (l->tail)
        l->tail->schedlink = g;
    else
        l->head = g;
    l->tail = g;
    l->n++;
}

/* On g0, holding p: the Gs a poll of this M readied.  The first runs
 * next here; the rest queue on p, and one spinning M is woken to steal
 * them if a P is idle (it wakes another in turn if it finds work:
 * resetspinning).  Unlike Go's injectglist, no M is started per G: that
 * made extra OS threads while the idle Ms were still on their way back
 * to the idle list. */
static vt_g *inject(vt_p *p, vt_glist *l)
{
    vt_g *first = l->head;
    vt_g *g = first->schedlink;
    if (!g)
        return first;
    for (; g;) {
        vt_g *next = g->schedlink;
        runqput(p, g, false);
        g = next;
    }
    vt_wakep();
    return first;
}

void vt_ready(vt_g *g, vt_p *p, bool next)
{
    if (!make_runnable(g, p))
        return;
    if (p)
        runqput(p, g, next);
    else
        globrunqput(g);
    vt_wakep();
}

/* A timer due before the idle watcher M's deadline was added: wake the
 * watcher so it sleeps again with the new deadline (it finds no P handed
 * over and goes back to idle()). */
void vt_rearm_watcher(int64_t when)
{
    if (when < ld_acquire(&vt_sched.poll_until))
        vt_netpoll_break();
    if (when >= ld_acquire(&vt_sched.watch_until))
        return;
    vt_lock_acquire(&vt_sched.lock);
    vt_m *m = vt_sched.watcher;
    if (m && when < ld_relaxed(&vt_sched.watch_until)) {
        /* The watcher is on the idle list: startm and its own time-out
         * both clear sched.watcher under this lock when they take it. */
        vt_m **pp = &vt_sched.midle;
        while (*pp != m)
            pp = &(*pp)->schedlink;
        *pp = m->schedlink;
        m->schedlink = NULL;
        vt_sched.nmidle--;
        vt_sched.watcher = NULL;
        st_release(&vt_sched.watch_until, INT64_MAX);
        m->nextp = NULL;
        vt_lock_release(&vt_sched.lock);
        notewakeup(m);
        return;
    }
    vt_lock_release(&vt_sched.lock);
}

/* Finds the next G on this P without leaving the G's stack.  Due timers
 * first (their Gs queue behind the runnable ones, FIFO), so busy or
 * yielding Gs cannot starve sleepers. */
static vt_g *find_local(vt_p *p)
{
    uint32_t tick = ld_relaxed(&p->schedtick);
    vt_g *g;
    if (ld_relaxed(&p->timer0) != INT64_MAX)
        vt_timers_run(p, p, vt_now());
    /* Fairness: now and then the global queue goes first; always when a
     * real-time G waits there (globrunqput_rt). */
    if ((tick % 61 == 0 || unlikely(ld_relaxed(&vt_sched.rt_waiting))) &&
        ld_relaxed(&vt_sched.runq_size) && (g = globrunqget(p, 1)))
        return g;
    if ((g = runqget(p)))
        return g;
    return globrunqget(p, 0);
}

void vt_park_self(vt_g *g)
{
    st_relaxed(&g->preempt_defer, 0); /* it leaves its P now anyway */
    vt_m *m = g->m;
    vt_p *p = m->p;
    VT_ASSERT(p && ld_relaxed(&p->status) == P_STATUS(m->id, P_RT));
    VT_ASSERT(g->nlocks == 0); /* never switch away holding a runtime lock */
    xadd(&p->schedtick, 1);
    if (unlikely(m->lockedg != NULL)) {
        switch_to_g0(m, g); /* a locked M runs nothing else: stoplockedm */
        return;
    }
    vt_g *next = find_local(p);
    if (next)
        switch_g(m, g, next);
    else
        switch_to_g0(m, g);
}

/* A schedule point with the seeded scheduler on (vthread_core.h,
 * fuzz.c): due timers and ready descriptors first, so that the Gs they
 * ready are among the choices at a place the program decides; then the
 * scheduler picks who runs on.  The caller, if switched away, waits in
 * the global queue like a yielder. */
void vt_fuzz_point_slow(void)
{
    vt_g *g = vt_tp_g();
    if (!g || g->is_g0 || g->rt_depth || g->nlocks || g->syscall_depth ||
        g->sig_frames || g->lockedm || !vt_fuzz_mode)
        return;
    int saved = errno;
    vt_m *m = vt_rt_enter(g);
    vt_p *p = m->p;
    vt_fuzz_step(g);
    if (ld_relaxed(&p->timer0) != INT64_MAX)
        vt_timers_run(p, p, vt_now());
    if (vt_netpoll_has_waiters() && !vt_netpoll_blocked()) {
        vt_glist l = {0};
        vt_netpoll(0, &l);
        for (vt_g *x = l.head; x;) {
            vt_g *nx = x->schedlink;
            globrunqput(x);
            x = nx;
        }
    }
    vt_lock_acquire(&vt_sched.lock);
    vt_g *next = vt_fuzz_pick(g);
    if (next) {
        st_release(&g->status, G_RUNNABLE);
        globrunqput_locked(g);
    }
    vt_lock_release(&vt_sched.lock);
    if (next) {
        st_relaxed(&g->preempt_defer, 0);
        xadd(&p->schedtick, 1);
        switch_g(m, g, next);
    }
    vt_rt_leave(g->m);
    errno = saved;
}

/* ------------------------------------------------------------ G entry */

/* Sets m's kernel mask to *set unless vthread already did (see
 * vt_set_thread_sigmask).  Runs on m. */
static void m_set_mask(vt_m *m, const sigset_t *set)
{
    unsigned gen = ld_acquire(&vt_sched.routed_gen);
    if (m->kmask_known && m->routed_gen == gen &&
        !memcmp(&m->kmask, set, sizeof *set))
        return;
    /* kmask is what was asked; the kernel gets it without the routed
     * signals (vthread_core.h, "signals") */
    uint64_t k;
    memcpy(&k, set, sizeof k);
    st_relaxed(&vt_sched.mask_hint, k);
    k &= ~ld_acquire(&vt_sched.routed);
    vt_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &k, NULL, 8);
    m->kmask = *set;
    m->kmask_known = true;
    m->routed_gen = gen;
}

/* Re-strips m's kernel mask after the routed set grew.  On m, at a
 * switch; one load when nothing changed. */
static inline void m_sync_routed(vt_m *m)
{
    if (likely(m->routed_gen == ld_relaxed(&vt_sched.routed_gen)))
        return;
    m->routed_gen = ld_acquire(&vt_sched.routed_gen);
    uint64_t cur = 0, r = ld_acquire(&vt_sched.routed);
    vt_sys4(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &cur, 8);
    if (cur & r) {
        cur &= ~r;
        vt_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &cur, NULL, 8);
    }
}

void vt_signal_set_routed(uint64_t set)
{
    if (ld_acquire(&vt_sched.routed) == set)
        return;
    st_release(&vt_sched.routed, set);
    xadd(&vt_sched.routed_gen, 1);
    vt_g *g = vt_tp_g();
    if (g && !g->is_g0 && g->m) /* this M at once */
        m_sync_routed(g->m);
}

uint64_t vt_signal_routed(void) { return ld_acquire(&vt_sched.routed); }

int vt_signal_context(vt_g **gp)
{
    *gp = NULL;
    if (ld_acquire(&vt_sched.started) != 2)
        return VT_SIGCTX_FOREIGN;
    vt_g *g = vt_tp_g();
    if (g && !g->is_g0) {
        *gp = g;
        if (g->rt_depth || g->nlocks || ld_relaxed(&g->preempting) ||
            ld_relaxed(&g->status) != G_RUNNING)
            return VT_SIGCTX_RUNTIME;
        return VT_SIGCTX_G;
    }
    if (g)
        return VT_SIGCTX_RUNTIME;
    /* No G: an M on its own stack, or a foreign thread.  (sysmon, and an
     * M until mstart has recorded its tid, block every signal.) */
    pid_t tid = (pid_t)vt_sys0(SYS_gettid);
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        if (m->tid == tid && !ld_acquire(&m->dead))
            return VT_SIGCTX_RUNTIME;
    return VT_SIGCTX_FOREIGN;
}

void vt_signal_defer(void)
{
    st_release(&vt_sched.route_req, 1);
    xadd(&vt_sched.sysmon_wake, 1);
    vt_futex_wake(&vt_sched.sysmon_wake, 1);
}

void vt_signal_retry(void) { st_release(&vt_sched.route_again, 1); }

void vt_g_foreach(bool (*fn)(vt_g *g, void *arg), void *arg)
{
    vt_lock_acquire(&vt_sched.glock);
    for (vt_g *g = vt_sched.allg; g; g = g->allnext) {
        if (g->is_g0 || ld_acquire(&g->status) == G_DEAD ||
            (ld_acquire(&g->jstate) & J_EXITED))
            continue;
        if (!fn(g, arg))
            break;
    }
    vt_lock_release(&vt_sched.glock);
}

int vt_g_where(vt_g *g, pid_t *tid)
{
    if (ld_acquire(&g->status) != G_RUNNING)
        return VT_GW_OTHER;
    vt_m *m = g->m;
    if (!m)
        return VT_GW_OTHER;
    *tid = m->tid;
    if (g->syscall_depth)
        return VT_GW_SYSCALL;
    return g->rt_depth ? VT_GW_OTHER : VT_GW_USER;
}

void vt_set_thread_sigmask(const sigset_t *set)
{
    vt_g *g = vt_tp_g();
    if (!g) {
        vt_sys4(SYS_rt_sigprocmask, SIG_SETMASK, set, NULL, 8);
        return;
    }
    g->m->kmask_known = false; /* force: the caller wants it set now */
    m_set_mask(g->m, set);
}

static void g_main(void *arg)
{
    vt_g *g = arg;
    /* (signals notified this early wait until on_start has run, below) */
    vt_rt_leave_nodeliver(g->m);
    /* The mask the creator asked for, on the OS thread before any of the
     * G's code runs (masks follow the M: docs/compatibility.md). */
    if (g->has_start_mask)
        m_set_mask(g->m, &g->start_mask);
    vt_tls_start_g(g);
    /* An unwind buffer like NPTL's start_thread installs: glibc's own
     * pthread_exit (and cancellation) unwinds the G's frames, running
     * cleanup handlers and C++ destructors, then longjmps here. */
    __pthread_unwind_buf_t ub;
    /* With savemask 0 __sigsetjmp writes only the registers and the
     * mask_was_saved flag, which this buffer has (NPTL does the same). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
    int again = __sigsetjmp((struct __jmp_buf_tag *)(void *)ub.__cancel_jmp_buf, 0);
#pragma GCC diagnostic pop
    if (!again) {
        ub.__pad[0] = NULL; /* prev */
        ub.__pad[1] = NULL; /* cleanup */
        ub.__pad[2] = NULL; /* canceltype */
        vt_g *self = vt_tp_g();
        PD_FIELD(self->pd, PD_CLEANUP_JMP_BUF, void *) = &ub;
        if (vt_hooks_set.on_start)
            vt_hooks_set.on_start(self);
        vt_sig_check(self);
        void *ret = self->fn(self->arg);
        PD_FIELD(self->pd, PD_RESULT, void *) = ret;
    }
    vt_g *self = vt_tp_g();
    vt_exit(PD_FIELD(self->pd, PD_RESULT, void *));
}

/* -------------------------------------------------------- unit caching */

static bool default_unit(vt_g *g)
{
    return g->kind == GU_UNIT && g->stack_size == vt_cfg.stack_size &&
           g->guard == vt_page_size();
}

static void wait_off_cpu(vt_g *g)
{
    while (ld_acquire((_Atomic int *)&g->on_cpu))
        vt_arch_relax();
}

/* Puts an exited G's unit up for reuse.  p: the caller's P if it holds one
 * in P_RT, else NULL.  The G may still be on CPU (it is the caller, or it
 * is finishing its last switch): reuse waits for on_cpu to clear. */
static void g_destroy(vt_g *g)
{
    wait_off_cpu(g);
    if (g->kind == GU_USER_STACK)
        vt_tls_release(g);
    else
        vt_unit_destroy(g);
}

/* g_destroy of a schedlink list. */
static void destroy_all(vt_g *list)
{
    while (list) {
        vt_g *x = list;
        list = x->schedlink;
        g_destroy(x);
    }
}

/* Units of other sizes (a stack size or guard set by the program) are
 * cached too, up to VT_SIZED_CACHE_BYTES in all, as glibc caches stacks
 * of any size: a program that creates threads with its own stack size
 * reuses them, and a descriptor just joined stays readable (joining it
 * again is ESRCH, as under glibc).  Oldest first out.  sched.glock. */
#define VT_SIZED_CACHE_BYTES ((size_t)40 << 20)
static vt_g *sized_head; /* newest first */
static size_t sized_bytes;

static void sized_put(vt_g *g)
{
    vt_g *destroy = NULL;
    vt_lock_acquire(&vt_sched.glock);
    g->schedlink = sized_head;
    sized_head = g;
    sized_bytes += g->map_size;
    while (sized_bytes > VT_SIZED_CACHE_BYTES && sized_head->schedlink) {
        vt_g **pp = &sized_head;
        while ((*pp)->schedlink)
            pp = &(*pp)->schedlink;
        vt_g *x = *pp; /* the oldest (never g: it is the newest) */
        *pp = NULL;
        sized_bytes -= x->map_size;
        x->schedlink = destroy;
        destroy = x;
    }
    vt_lock_release(&vt_sched.glock);
    destroy_all(destroy);
}

static vt_g *sized_get(size_t stack_size, size_t guard)
{
    if (!ld_relaxed((_Atomic(vt_g *) *)&sized_head))
        return NULL;
    vt_lock_acquire(&vt_sched.glock);
    vt_g **pp = &sized_head;
    while (*pp && ((*pp)->stack_size != stack_size || (*pp)->guard != guard))
        pp = &(*pp)->schedlink;
    vt_g *g = *pp;
    if (g) {
        *pp = g->schedlink;
        sized_bytes -= g->map_size;
    }
    vt_lock_release(&vt_sched.glock);
    if (g) {
        wait_off_cpu(g);
        vt_stat_inc(VT_ST_UNITS_REUSED);
    }
    return g;
}

/* Destroys the detached Gs that could not destroy themselves. */
static void graveyard_sweep(void)
{
    if (!ld_relaxed((_Atomic(vt_g *) *)&vt_sched.graveyard))
        return;
    vt_lock_acquire(&vt_sched.glock);
    vt_g *list = vt_sched.graveyard;
    vt_sched.graveyard = NULL;
    vt_lock_release(&vt_sched.glock);
    while (list) {
        vt_g *g = list;
        list = g->schedlink;
        if (g->kind == GU_UNIT)
            sized_put(g);
        else
            g_destroy(g);
    }
}

static void unit_free(vt_g *g, vt_p *p)
{
    if (g->kind == GU_MAIN)
        return; /* the original thread's descriptor is glibc's */
    /* As glibc leaves a freed descriptor in its stack cache: a joined
     * one is marked -1, so pthread_join or pthread_detach of it again is
     * ESRCH; a detached one that exited has tid 0 (the kernel cleared it)
     * and stays detached, so they are EINVAL.  Until it is reused. */
    PD_FIELD(g->pd, PD_TID, int) =
        (ld_relaxed(&g->jstate) & J_DETACHED) ? 0 : -1;
    if (!default_unit(g)) {
        if (g == vt_tp_g()) {
            /* A detached G freeing itself: it is on this CPU.  Someone
             * else destroys it once it is off (graveyard_sweep). */
            vt_lock_acquire(&vt_sched.glock);
            g->schedlink = vt_sched.graveyard;
            vt_sched.graveyard = g;
            vt_lock_release(&vt_sched.glock);
            return;
        }
        if (g->kind == GU_UNIT)
            sized_put(g);
        else
            g_destroy(g);
        return;
    }
    if (p && p->ngfree < VT_P_GFREE_MAX) {
        g->schedlink = p->gfree;
        p->gfree = g;
        p->ngfree++;
        return;
    }
    vt_g *destroy = NULL;
    vt_lock_acquire(&vt_sched.glock);
    if (p) { /* move half the local cache to the global one */
        while (p->ngfree > VT_P_GFREE_MAX / 2) {
            vt_g *x = p->gfree;
            p->gfree = x->schedlink;
            p->ngfree--;
            x->schedlink = vt_sched.gfree;
            vt_sched.gfree = x;
            vt_sched.ngfree++;
        }
    }
    g->schedlink = vt_sched.gfree;
    vt_sched.gfree = g;
    vt_sched.ngfree++;
    /* Beyond the bound, give memory back (not g itself: it may be us). */
    while (vt_sched.ngfree > VT_GLOBAL_GFREE_MAX) {
        vt_g *x = g->schedlink;
        g->schedlink = x->schedlink;
        vt_sched.ngfree--;
        x->schedlink = destroy;
        destroy = x;
    }
    vt_lock_release(&vt_sched.glock);
    destroy_all(destroy);
}

static vt_g *unit_get(vt_p *p)
{
    vt_g *g = NULL;
    if (p && p->gfree) {
        g = p->gfree;
        p->gfree = g->schedlink;
        p->ngfree--;
    } else if (vt_sched.gfree) {
        vt_lock_acquire(&vt_sched.glock);
        g = vt_sched.gfree;
        if (g) {
            vt_sched.gfree = g->schedlink;
            vt_sched.ngfree--;
        }
        vt_lock_release(&vt_sched.glock);
    }
    if (g) {
        wait_off_cpu(g);
        vt_stat_inc(VT_ST_UNITS_REUSED);
    }
    return g;
}

/* Clears a G for a new life, keeping its memory and identity fields. */
static void g_reset(vt_g *g)
{
    /* only the memory fields survive (not a copy of the whole G) */
    void *pd = g->pd, *map = g->map;
    char *stack_lo = g->stack_lo, *stack_hi = g->stack_hi;
    size_t map_size = g->map_size, guard = g->guard,
           stack_size = g->stack_size;
    int kind = g->kind, tid = g->tid;
    memset(g, 0, offsetof(vt_g, ext) + VT_G_EXT_SIZE); /* nlocks too */
    g->pd = pd;
    g->kind = kind;
    g->map = map;
    g->map_size = map_size;
    g->guard = guard;
    g->stack_lo = stack_lo;
    g->stack_hi = stack_hi;
    g->stack_size = stack_size;
    g->tid = tid;
}

/* ------------------------------------------------------------- spawning */

static void allg_add(vt_g *g)
{
    vt_lock_acquire(&vt_sched.glock);
    g->allprev = NULL;
    g->allnext = vt_sched.allg;
    if (vt_sched.allg)
        vt_sched.allg->allprev = g;
    vt_sched.allg = g;
    /* A dlopen fix-up ran between our TLS set-up and now: redo it. */
    if (g->kind != GU_MAIN && ld_acquire(&vt_tls_gen) != g->tls_gen)
        vt_tls_setup(g, g->pd, false);
    vt_lock_release(&vt_sched.glock);
}

static void allg_remove(vt_g *g)
{
    vt_lock_acquire(&vt_sched.glock);
    if (g->allprev)
        g->allprev->allnext = g->allnext;
    else
        vt_sched.allg = g->allnext;
    if (g->allnext)
        g->allnext->allprev = g->allprev;
    g->allnext = g->allprev = NULL;
    vt_lock_release(&vt_sched.glock);
}

static int new_tid(void)
{
    /* Synthetic tids sit above any real one (PID_MAX_LIMIT is 2^22) and
     * below glibc's FUTEX_TID_MASK (2^30); 2^27 of them, so that the
     * preload layer can name a G's CPU clock in the kernel's encoding
     * (preload/tid.c). */
    int t = xadd(&vt_sched.next_tid, 1);
    return 0x10000000 + (t & 0x07ffffff);
}

/* Where this process's synthetic tids start.  glibc writes a thread's tid
 * into process-shared mutexes and compares it with the caller's: tids must
 * differ between processes too, as kernel TIDs do.  So each process (and
 * each fork child, which would otherwise go on from its parent's counter)
 * starts at a point of the 2^27 range picked from its pid and the time:
 * two processes collide only if their runs of tids overlap. */
static void seed_tids(void)
{
    uint64_t x = (uint64_t)vt_sys0(SYS_getpid) * 0x9e3779b97f4a7c15ull ^
                 (uint64_t)vt_now();
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    st_relaxed(&vt_sched.next_tid, (int)(x & 0x07ffffff));
}

int vt_spawn(vt_g **out, void *(*fn)(void *), void *arg,
             const struct vt_spawn_attr *attr)
{
    if (unlikely(ld_acquire(&vt_sched.started) != 2))
        vt_start();
    size_t page = vt_page_size();
    struct vt_spawn_attr dflt = {.guard_size = page};
    if (!attr)
        attr = &dflt;
    if (attr->ext_init_size > VT_G_EXT_SIZE)
        return EINVAL;
    size_t ss = attr->stack_size ? attr->stack_size : vt_cfg.stack_size;
    size_t guard = attr->stack_addr ? 0 : attr->guard_size;

    graveyard_sweep();
    vt_g *self = vt_tp_g();
    vt_m *m = self ? vt_rt_enter(self) : NULL;
    vt_g *g = NULL;
    bool fresh = true;
    int err = 0;
    if (attr->stack_addr) {
        err = vt_unit_on_user_stack(attr->stack_addr, ss, &g);
    } else {
        if (ss == vt_cfg.stack_size && guard == page)
            g = unit_get(m ? m->p : NULL);
        else
            g = sized_get(ss, guard);
        if (g) {
            fresh = false;
            g_reset(g);
        } else {
            err = vt_unit_alloc(ss, guard, &g);
        }
    }
    if (!err) {
        /* a new tid also for a recycled unit: kernel TIDs are not reused
         * at once either, and programs keep them as thread ids */
        g->tid = new_tid();
        err = vt_tls_setup(g, g->pd, fresh);
        if (err)
            vt_unit_destroy(g);
    }
    if (err) {
        if (m)
            vt_rt_leave(m);
        return err;
    }
    g->id = xadd(&vt_sched.next_id, 1);
    g->fn = fn;
    g->arg = arg;
    if (attr->sigmask) {
        g->start_mask = *attr->sigmask;
        g->has_start_mask = true;
    }
    st_relaxed(&g->rt_prio, attr->rt_prio);
    if (attr->ext_init)
        memcpy(g->ext, attr->ext_init, attr->ext_init_size);
    if (attr->out_descriptor)
        *attr->out_descriptor = g->pd;
    g->sp = vt_arch_init_stack(g->stack_hi, g_main, g);
    g->jstate = attr->detached ? J_DETACHED : 0;
    g->rt_depth = 1; /* g_main starts with its P in P_RT */
    g->status = G_RUNNABLE;
    allg_add(g);
    int64_t live = xadd(&vt_sched.live, 1) + 1;
    int64_t peak = ld_relaxed(&vt_stats.peak_live);
    while (live > peak && !cas(&vt_stats.peak_live, &peak, live))
        ;
    vt_stat_inc(VT_ST_GS_CREATED);
    if (unlikely(vt_fuzz_mode))
        vt_fuzz_g_init(g);
    VT_PROBE2(g_create, g->id, self ? self->id : 0);
    vt_trace_g(m, VT_TR_CREATE, g, 0, self ? self->id : 0);
    *out = g; /* before it can run, exit and be freed */
    if (m) {
        runqput(m->p, g, true);
        vt_rt_leave(m);
    } else {
        globrunqput(g);
    }
    vt_wakep();
    return 0;
}

/* --------------------------------------------------------- exit & join */

void vt_exit(void *retval)
{
    vt_sched_point(); /* also for a G returning from its start routine */
    vt_g *g = vt_tp_g();
    if (!g)
        vt_fatal("vt_exit called outside a G");
    /* glibc's order: C++ thread_local destructors, then key destructors. */
    vt_tls_run_dtors();
    if (vt_hooks_set.on_exit)
        vt_hooks_set.on_exit(g);
    g = vt_tp_g();
    g->retval = retval;
    vt_stat_inc(VT_ST_GS_EXITED);
    VT_PROBE1(g_exit, g->id);
    vt_trace_g(g->m, VT_TR_EXIT, g, 0, 0);
    if (xsub(&vt_sched.live, 1) == 1) {
        /* The last thread: the process ends as under NPTL. */
        exit(0);
    }
    allg_remove(g);
    /* Take our P before publishing the exit: once J_EXITED is set a joiner
     * may free us, so nothing may queue us any more (reacquire would). */
    vt_m *m = vt_rt_enter(g);
    if (unlikely(g->lockedm != NULL)) {
        /* The M goes with us (retire); the unit may be reused at once. */
        g->lockedm = NULL;
        m->retiring = true;
    }
    st_release(&g->status, G_DEAD);
    unsigned prev = atomic_fetch_or(&g->jstate, J_EXITED);
    if (!(prev & J_DETACHED))
        vt_unpark_all((const void *)&g->jstate); /* nests in our P_RT */
    else
        unit_free(g, m->p);
    vt_park_self(g);
    vt_fatal("an exited G was resumed");
}

static bool join_validate(void *ctx)
{
    vt_g *g = ctx;
    return !(ld_acquire(&g->jstate) & J_EXITED);
}

static void release_zombie(vt_g *g)
{
    vt_g *self = vt_tp_g();
    vt_m *m = self ? vt_rt_enter(self) : NULL;
    unit_free(g, m ? m->p : NULL);
    if (m)
        vt_rt_leave(m);
}

int vt_join(vt_g *g, void **retval, int64_t deadline, bool poll_only)
{
    if (g == vt_tp_g())
        return EDEADLK;
    unsigned s = ld_acquire(&g->jstate);
    do {
        if (s & (J_DETACHED | J_JOINING))
            return EINVAL;
    } while (!atomic_compare_exchange_weak(&g->jstate, &s, s | J_JOINING));
    while (!(ld_acquire(&g->jstate) & J_EXITED)) {
        if (!poll_only)
            vt_set_wait_reason("thread join");
        int r = poll_only ? VT_PARK_TIMEOUT
                          : vt_park(&g->jstate, join_validate, NULL, g,
                                    deadline, VT_PARK_INTERRUPTIBLE, 0, NULL);
        if (r == VT_PARK_TIMEOUT || r == VT_PARK_INTERRUPTED) {
            if (ld_acquire(&g->jstate) & J_EXITED)
                break;
            atomic_fetch_and(&g->jstate, ~J_JOINING);
            return r == VT_PARK_TIMEOUT ? (poll_only ? EBUSY : ETIMEDOUT)
                                        : EINTR;
        }
    }
    if (retval)
        *retval = g->retval;
    if (g->kind == GU_USER_STACK)
        wait_off_cpu(g); /* the caller may free the stack when we return */
    release_zombie(g);
    return 0;
}

int vt_detach(vt_g *g)
{
    unsigned s = ld_acquire(&g->jstate);
    do {
        if (s & (J_DETACHED | J_JOINING))
            return EINVAL;
    } while (!atomic_compare_exchange_weak(&g->jstate, &s, s | J_DETACHED));
    if (s & J_EXITED)
        release_zombie(g);
    return 0;
}

bool vt_g_exited(vt_g *g) { return ld_acquire(&g->jstate) & J_EXITED; }

/* ------------------------------------------------------ other G calls */

void vt_yield(void)
{
    vt_g *g = vt_tp_g();
    if (!g) {
        vt_sys0(SYS_sched_yield);
        return;
    }
    vt_m *m = vt_rt_enter(g);
    vt_p *p = m->p;
    if (unlikely(g->lockedm != NULL) && !vt_runq_len(&p->runq) &&
        !ld_relaxed(&p->runnext) && !ld_relaxed(&vt_sched.runq_size)) {
        /* pinned, and nobody waits here: giving the P away and taking it
         * back through another M would only cost two wake-ups */
        st_relaxed(&g->preempt_defer, 0);
        vt_rt_leave(m);
        return;
    }
    if (unlikely(vt_fuzz_mode))
        vt_fuzz_demote(g);
    st_release(&g->status, G_RUNNABLE);
    globrunqput(g);
    vt_park_self(g);
    vt_rt_leave(g->m);
}

int vt_sleep_until(int64_t deadline)
{
    vt_g *g = vt_tp_g();
    if (!g) {
        struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
        long r;
        do
            r = vt_sys4(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME,
                        &ts, NULL);
        while (r == -EINTR);
        return 0;
    }
    if (unlikely(vt_fuzz_mode))
        vt_fuzz_demote(g);
    g->wait_reason = "sleep";
    int r = vt_park(&g->sleep_key, NULL, NULL, NULL, deadline,
                    VT_PARK_INTERRUPTIBLE, 0, NULL);
    return r == VT_PARK_INTERRUPTED ? EINTR : 0;
}

void vt_interrupt(vt_g *g)
{
    st_release(&g->interrupt, 1);
    vt_waiter_interrupt(g);
}
void vt_clear_interrupt(vt_g *g)
{
    st_release(&g->interrupt, 0);
    if (g == vt_tp_g())
        g->intr_wait = false;
}
void vt_interrupt_self_async(vt_g *g) { st_release(&g->interrupt, 1); }
bool vt_interrupt_pending(vt_g *g) { return ld_acquire(&g->interrupt); }

vt_g *vt_self(void) { return vt_tp_g(); }
void vt_signal_frame(int d)
{
    vt_g *g = vt_tp_g();
    if (g && !g->is_g0)
        g->sig_frames += d;
}

bool vt_inside_runtime(void)
{
    vt_g *g = vt_tp_g();
    return !g || g->is_g0 || g->rt_depth || g->nlocks;
}
vt_g *vt_g_from_descriptor(void *pd)
{
    return pd ? PD_FIELD(pd, PD_VTHREAD_G, vt_g *) : NULL;
}
void *vt_g_descriptor(vt_g *g) { return g->pd; }
void vt_g_stack(vt_g *g, void **lo, size_t *size, size_t *guard)
{
    if (g->kind == GU_MAIN) {
        *lo = NULL;
        *size = 0;
        *guard = 0;
        return;
    }
    char *block = PD_FIELD(g->pd, PD_STACKBLOCK, char *);
    size_t bsize = PD_FIELD(g->pd, PD_STACKBLOCK_SIZE, size_t);
    *guard = PD_FIELD(g->pd, PD_GUARDSIZE, size_t);
    *lo = block + *guard;
    *size = bsize - *guard;
}
uint64_t vt_g_id(vt_g *g) { return g->id; }
void vt_g_set_rt_prio(vt_g *g, int prio) { st_relaxed(&g->rt_prio, prio); }
int vt_g_tid(vt_g *g) { return g->tid; }
void *vt_g_ext(vt_g *g) { return g->ext; }
void vt_set_hooks(const struct vt_hooks *h) { vt_hooks_set = *h; }

/* --------------------------------------------------------- system calls */

void vt_syscall_enter(void)
{
    vt_g *g = vt_tp_g();
    if (!g || g->syscall_depth++)
        return;
    vt_m *m = g->m;
    vt_p *p = m->p;
    vt_trace_g(m, VT_TR_SYSCALL, g, 0, 0);
    uint64_t exp = P_STATUS(m->id, P_USER);
    if (p && cas(&p->status, &exp, P_STATUS(m->id, P_SYSCALL)))
        xadd(&p->syscalltick, 1);
}

void vt_syscall_enter_block(void)
{
    vt_g *g = vt_tp_g();
    if (!g || g->syscall_depth++)
        return;
    int saved = errno;
    /* Held like a runtime lock: a handler that ran between the CAS and
     * m->p = NULL and entered the runtime would find a P it does not
     * own, reacquire another, and have it overwritten below. */
    vt_lock_count(1);
    vt_m *m = g->m;
    vt_p *p = m->p;
    vt_trace_g(m, VT_TR_SYSCALL, g, 1, 0);
    uint64_t exp = P_STATUS(m->id, P_USER);
    if (p && cas(&p->status, &exp, P_STATUS(0, P_RT))) {
        m->p = NULL;
        vt_handoffp(p);
    }
    vt_lock_count(-1); /* one deferred meanwhile runs before the call */
    errno = saved;
}

void vt_syscall_exit(void)
{
    vt_g *g = vt_tp_g();
    if (!g || --g->syscall_depth)
        return;
    int saved = errno;
    vt_m *m = g->m;
    vt_p *p = m->p;
    uint64_t exp = P_STATUS(m->id, P_SYSCALL);
    bool lost = !p || !cas(&p->status, &exp, P_STATUS(m->id, P_USER));
    vt_trace_g(m, VT_TR_SYSRET, g, lost, 0);
    if (lost) {
        m = vt_rt_enter(g);
        vt_rt_leave(m);
    }
    errno = saved;
}

/* ------------------------------------------------------------ start-up */

bool vt_runtime_active(void)
{
    return !vt_cfg.disabled;
}

static _Atomic int init_done;

bool vt_runtime_init(void)
{
    if (ld_acquire(&init_done))
        return !vt_cfg.disabled;
    vt_real_init();
    vt_config_load();
    vt_arch_init();
#ifdef __x86_64__
    if (vt_cfg.fsbase == 2)
        vt_arch_have_fsgsbase = 0;
    else if (vt_cfg.fsbase == 1 && !vt_arch_have_fsgsbase)
        vt_config_error("VTHREAD_FSBASE=wrfsbase: this CPU or kernel does "
                        "not allow wrfsbase (no HWCAP2_FSGSBASE)");
#else
    if (vt_cfg.fsbase != 0)
        vt_config_error("VTHREAD_FSBASE: only x86_64 has a choice (this "
                        "CPU's thread pointer is always written directly)");
#endif
    vt_stack_init();
    vt_tls_init();
    st_release(&init_done, 1);
    return !vt_cfg.disabled;
}

/* A g0 with its own stack unit and descriptor, for an M whose OS thread's
 * own stack and descriptor are not available to the scheduler: M0 (they
 * belong to the first G) and the M of a fork child (glibc recycles them).
 * Its first run starts m_loop. */
static void make_g0(vt_m *m)
{
    vt_g *g0;
    if (vt_unit_alloc(M_G0_STACK, vt_page_size(), &g0) != 0)
        vt_fatal("cannot allocate a scheduler stack");
    g0->is_g0 = true;
    g0->kind = GU_G0;
    g0->tid = new_tid();
    if (vt_tls_setup(g0, g0->pd, true) != 0)
        vt_fatal("cannot allocate a scheduler's TLS");
    g0->m = m;
    g0->sp = vt_arch_init_stack(g0->stack_hi, m_loop, m);
    m->g0 = g0;
    m->made_g0 = true; /* m_loop must never return here */
}

/* ------------------------------------------------------------------ fork */
/*
 * In the child only the forking thread exists: the G that called fork, on
 * this OS thread.  Every other G, M and sysmon are gone, and any runtime
 * lock may have been held by one of them at the moment of the fork.  The
 * child therefore rebuilds the runtime around the forking G:
 *  - locks, run queues, timers, the parking lot and the unit caches are
 *    reset (what they held belonged to Gs that no longer exist; their
 *    memory is abandoned, as glibc abandons other threads' stacks);
 *  - the M gets a fresh g0: glibc's fork put the M's own pthread stack into
 *    its stack cache, so the old g0 context must never run again;
 *  - one P, owned by this M; the others idle; a new sysmon.
 * Runs as the first child handler registered by the runtime, on the
 * forking G, before any other runtime call in the child.
 */
VT_HIDDEN void vt_parklot_reset(void);

static void fork_child(void)
{
    vt_g *g = vt_tp_g();
    if (!g || ld_acquire(&vt_sched.started) != 2)
        return;
    vt_m *m = g->m;
    vt_lock l0 = VT_LOCK_INIT;
    vt_sched.lock = l0;
    vt_sched.glock = l0;
    vt_sched.runq_head = vt_sched.runq_tail = NULL;
    st_relaxed(&vt_sched.runq_size, 0);
    vt_sched.pidle = NULL;
    st_relaxed(&vt_sched.npidle, 0);
    vt_sched.midle = NULL;
    vt_sched.nmidle = 0;
    st_relaxed(&vt_sched.nmspinning, 0);
    vt_sched.watcher = NULL;
    st_relaxed(&vt_sched.watch_until, INT64_MAX);
    vt_sched.gfree = NULL;
    vt_sched.ngfree = 0;
    vt_sched.graveyard = NULL;
    vt_sched.mspawn = NULL;
    st_relaxed(&vt_sched.mspawn_req, 0);
    st_relaxed(&vt_sched.rt_waiting, 0);
    /* a pinned forking G stays pinned to this M, the child's only one */
    st_relaxed(&vt_sched.nlocked, g->lockedm ? 1 : 0);
    for (int i = 0; i < vt_sched.nprocs; i++) {
        vt_p *p = vt_sched.allp[i];
        p->tlock = l0;
        p->ntimers = 0;
        st_relaxed(&p->timer0, INT64_MAX);
        st_relaxed(&p->runq.head, 0);
        st_relaxed(&p->runq.tail, 0);
        st_relaxed(&p->runnext, NULL);
        p->gfree = NULL;
        p->ngfree = 0;
        p->sm_when = 0;
    }
    vt_parklot_reset();
    vt_trace_fork_child(); /* (before this M records anything) */
    seed_tids();
    vt_netpoll_fork_child();
    vt_preempt_fork_child();
    vt_stack_fork_child();
    st_relaxed(&vt_sched.poll_until, INT64_MAX);

    /* This thread is the only M. */
    m->tid = (pid_t)vt_sys0(SYS_gettid);
    m->cpuclock = thread_cpuclock(m->tid);
    m->statfd = -1; /* the parent's was for another task */
    m->spinning = false;
    m->nextp = NULL;
    m->allnext = NULL;
    m->schedlink = NULL;
    vt_sched.allm = m;
    vt_sched.mcount = 1;
    make_g0(m); /* never the old one: see above */

    /* glibc gave the forking G's descriptor the child's real TID, and put
     * it on its list of running threads (dl_stack_used), which must never
     * point into a unit we recycle: take it off again. */
    g->tid = PD_FIELD(g->pd, PD_TID, int);
    if (g->kind != GU_MAIN) {
        char *pd = g->pd;
        void **link = (void **)(pd + PD_LIST); /* {next, prev} */
        void **next = link[0], **prev = link[1];
        next[1] = prev;
        prev[0] = next;
        link[0] = link[1] = link;
    }
    g->allnext = g->allprev = NULL;
    vt_sched.allg = g;
    st_relaxed(&vt_sched.live, 1);
    g->syscall_depth = 0;

    vt_p *own = vt_sched.allp[0];
    for (int i = vt_sched.nprocs - 1; i >= 1; i--)
        pidleput(vt_sched.allp[i]);
    m->p = own;
    own->m = m;
    st_release(&own->status,
               P_STATUS(m->id, g->rt_depth ? P_RT : P_USER));
    st_relaxed(&vt_sched.sysmon_wake, 0);
    vt_sysmon_start();
}

static void at_exit_stats(void)
{
    if (vt_cfg.stats)
        vt_stats_print();
    vt_fuzz_print(); /* (it decides: VTHREAD_SCHED, _DEBUG, _REPORT) */
    vt_trace_at_exit(); /* (VTHREAD_TRACE) */
    vt_traceback_wait();
}

/* Turns the calling thread into the first G, creates the Ps, the g0 of
 * this thread's M, and sysmon. */
void vt_start(void)
{
    int z = 0;
    if (!cas(&vt_sched.started, &z, 1)) {
        while (ld_acquire(&vt_sched.started) != 2)
            vt_sys0(SYS_sched_yield);
        return;
    }
    vt_runtime_init();
    vt_netpoll_init();
    seed_tids();
    uint64_t k0 = 0;
    vt_sys4(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &k0, 8);
    st_relaxed(&vt_sched.mask_hint, k0);
    int n = vt_cfg.procs;
    vt_sched.nprocs = n;
    vt_sched.allp = calloc((size_t)n, sizeof(vt_p *));
    if (!vt_sched.allp)
        vt_fatal("out of memory at start-up");
    for (int i = 0; i < n; i++) {
        vt_p *p = aligned_alloc(64, (sizeof(vt_p) + 63) & ~(size_t)63);
        if (!p)
            vt_fatal("out of memory at start-up");
        memset(p, 0, sizeof *p);
        p->id = i;
        st_relaxed(&p->timer0, INT64_MAX);
        vt_sched.allp[i] = p;
    }
    st_relaxed(&vt_sched.watch_until, INT64_MAX);
    st_relaxed(&vt_sched.poll_until, INT64_MAX);
    st_relaxed(&vt_sched.next_id, 2);

    /* M0: this OS thread.  Its g0 needs its own stack and descriptor,
     * because the thread's original ones now belong to the first G. */
    m0 = calloc(1, sizeof *m0);
    if (!m0)
        vt_fatal("out of memory at start-up");
    m0->id = xadd(&next_mid, 1);
    m0->statfd = -1;
    m0->tid = (pid_t)vt_sys0(SYS_gettid);
    m0->cpuclock = thread_cpuclock(m0->tid);
    m0->thread = (pthread_t)vt_pd_self();
    m0->fastrand = 0x12345679u;
    make_g0(m0);
    vt_sched.mcount = 1;
    vt_sched.allm = m0;

    /* The first G: this thread as it is. */
    vt_g *g = &main_g;
    g->kind = GU_MAIN;
    g->pd = vt_pd_self();
    g->tid = PD_FIELD(g->pd, PD_TID, int);
    g->id = 1;
    g->stack_lo = PD_FIELD(g->pd, PD_STACKBLOCK, void *);
    g->on_cpu = 1;
    g->m = m0;
    g->rt_depth = 1; /* left below, once start-up is done */
    g->status = G_RUNNING;
    m0->curg = g;
    if (ld_acquire(&pin_first_g)) {
        /* per-task state was set before the first thread (vt_pin_self) */
        xadd(&vt_sched.nlocked, 1);
        g->lockedm = m0;
        m0->lockedg = g;
        xadd(&vt_stats.pinned, 1);
    }
    allg_add(g);
    vt_fuzz_init(g);
    st_relaxed(&vt_sched.live, 1);
    st_relaxed(&vt_stats.peak_live, 1);
    vt_stat_inc(VT_ST_GS_CREATED);

    acquirep(m0, vt_sched.allp[0]);
    vt_lock_acquire(&vt_sched.lock);
    for (int i = n - 1; i >= 1; i--)
        pidleput(vt_sched.allp[i]);
    vt_lock_release(&vt_sched.lock);
    if (vt_cfg.trace_file)
        vt_trace_start(m0, g); /* g runs on M0 from now, for the trace */

    PD_FIELD(g->pd, PD_VTHREAD_G, vt_g *) = g; /* now we are a G */
    atexit(at_exit_stats);
    pthread_atfork(NULL, NULL, fork_child);
    vt_preempt_init();
    vt_traceback_init();
    vt_crash_init();
    /* A real thread exists before a second G runs: glibc turns off its
     * single-thread shortcuts (__libc_single_threaded) at that point. */
    vt_sysmon_start();
    st_release(&vt_sched.started, 2);
    vt_rt_leave(m0);
}
