/*
 * fuzz.c — the seeded scheduler: VTHREAD_SCHED=random:SEED and
 * pct:SEED[:DEPTH[:STEPS]] (docs/fuzzing.md is the user's side).
 *
 * What the seed decides.  With the fuzzer on, every runnable G waits in
 * the global run queue (sched.c, runqput), one list, and every choice of
 * the next G to run is vt_fuzz_pick's:
 *   - at a schedule point (vt_sched_point: the preload layer's lock,
 *     unlock, wait, signal, post, create, join, exit, sleep and I/O
 *     calls), whether the running G goes on or another runnable G runs;
 *   - when a G blocks, yields or exits, which runnable G runs next;
 *   - the order of waiters on one address (parklot.c, enqueue: a new
 *     waiter goes to a random place among those of its priority), so
 *     which thread a signal, post or unlock wakes.
 * The numbers come from one generator, splitmix64 over (SEED, how many
 * numbers were drawn), so the same sequence of requests gets the same
 * answers.  With one P (the default in this mode: env.c) every request
 * is made by the G holding that P, in an order that only the program and
 * these answers decide — so the same input and seed replay the same
 * interleaving — except where the outside world steps in: the clock
 * (which timers are due at a point), descriptors that other processes
 * make ready, signals, system calls slow enough for sysmon to take the P
 * away (10 ms in this mode) and Gs that run 50 ms without a schedule
 * point (preempted).  schedule= in the stats line (VTHREAD_DEBUG=stats)
 * is a hash of every choice: equal hashes, equal schedules.
 *
 * Strategies.
 *   random  a random walk: at each point the next G is drawn uniformly
 *           from the runnable ones and the running one.  Many switches;
 *           finds bugs that need one or two badly placed switches in
 *           small programs within tens of runs.
 *   pct     probabilistic concurrency testing (Burckhardt et al., ASPLOS
 *           2010): each G gets a random priority at creation, the
 *           highest-priority runnable G always runs, and at DEPTH-1
 *           random points among the first STEPS the running G drops
 *           below every other.  A bug that needs d ordering constraints
 *           among n threads and k steps is found with probability at
 *           least 1/(n k^(d-1)) per run.  A G that sleeps or yields drops
 *           to the bottom too, and one that waited STARVE picks runs
 *           (else polling loops would starve the G they wait for).  Fewer switches: it reaches
 *           states a walk rarely does (one G running far ahead).
 * vthread-fuzz measures both on its test programs (tests/fuzz) and uses
 * the one that finds the most (docs/fuzzing.md has the numbers).
 *
 * Deadlock.  Only in these modes: when every G has been waiting for a
 * lock, condition, semaphore, barrier, once or join for 200 ms, with no
 * timer armed, no descriptor watched and nothing parked or woken
 * meanwhile, nothing inside the process can ever wake one (a thread
 * vthread did not create could, which is why fifo mode hangs as NPTL
 * does).  sysmon then prints the traceback with the cycle of waits and
 * aborts, so that a fuzzing run ends at once rather than at its timeout.
 *
 * Locking: the generator and the step counter are atomics; vt_fuzz_pick
 * runs under sched.lock (it owns the global queue); fuzz_prio is written
 * by its G or at creation, and read under sched.lock.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "real.h"
#include "rt.h"

int vt_fuzz_mode;

static uint64_t seed;
static _Atomic uint64_t draws;   /* numbers drawn so far */
static _Atomic uint64_t steps;   /* schedule points passed */
static _Atomic uint64_t switches; /* points at which another G ran */
static uint64_t sched_hash;      /* under sched.lock */
static int depth;                /* pct */
static uint64_t change_at[16];   /* pct: steps at which cur drops */

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The next number of the seeded sequence.  Any context. */
static uint64_t draw(void)
{
    uint64_t i = xadd(&draws, 1);
    return mix(seed + 0x9e3779b97f4a7c15ull * (i + 1));
}

/* A uniform-enough number in [0, n), n > 0 (the bias of a 64-bit modulo
 * is below 2^-40 for the counts here). */
uint64_t vt_fuzz_below(uint64_t n) { return draw() % n; }

void vt_fuzz_init(vt_g *first)
{
    vt_fuzz_mode = vt_cfg.sched;
    if (!vt_fuzz_mode)
        return;
    seed = mix(vt_cfg.sched_seed ^ 0x5eed5eed5eed5eedull);
    sched_hash = 0xcbf29ce484222325ull;
    if (vt_fuzz_mode == VT_FUZZ_PCT) {
        depth = vt_cfg.pct_depth;
        uint64_t k = vt_cfg.pct_steps ? vt_cfg.pct_steps : 200;
        for (int i = 0; i < depth - 1; i++)
            change_at[i] = 1 + draw() % k;
    }
    vt_fuzz_g_init(first);
}

void vt_fuzz_g_init(vt_g *g)
{
    /* Above every priority a change point gives (1 .. depth-1). */
    if (vt_fuzz_mode == VT_FUZZ_PCT)
        g->fuzz_prio = (uint64_t)depth + 1 + (draw() >> 8);
}

void vt_fuzz_step(vt_g *cur)
{
    uint64_t k = xadd(&steps, 1) + 1;
    if (vt_fuzz_mode != VT_FUZZ_PCT)
        return;
    for (int i = 0; i < depth - 1; i++)
        if (change_at[i] == k)
            cur->fuzz_prio = (uint64_t)i + 1; /* below all, later ones higher */
}

void vt_fuzz_demote(vt_g *g)
{
    if (vt_fuzz_mode == VT_FUZZ_PCT)
        g->fuzz_prio = 0;
}

static const char *mode_name(void)
{
    return vt_fuzz_mode == VT_FUZZ_PCT ? "pct" : "random";
}

static void hash_in(uint64_t v) { sched_hash = mix(sched_hash ^ v); }

/* pct: the highest priority in the global queue, when known (q_max_ok),
 * so that a point at which the running G stays on costs no walk of the
 * queue (a program with a thousand runnable threads passes a schedule
 * point every few microseconds).  Under sched.lock. */
static uint64_t q_max;
static bool q_max_ok = true; /* the queue starts empty: max 0 */

/* pct's fairness bound: strict priorities starve a low G for as long as
 * higher ones stay runnable, and a program whose threads poll with sleeps
 * (wait until a flag is set) then never gets to set the flag.  A G that
 * has waited in the queue for STARVE picks runs next, whatever its
 * priority; the queue is in arrival order, so its head is the one that
 * waited longest.  Counted in picks, not time: replays stay exact. */
#define STARVE 2048
static uint64_t picks;

void vt_fuzz_queued(vt_g *g)
{
    g->fuzz_enq = picks;
    if (g->fuzz_prio > q_max)
        q_max = g->fuzz_prio;
}

vt_g *vt_fuzz_pick(vt_g *cur)
{
    picks++;
    vt_g *head = vt_sched.runq_head;
    if (!head) {
        if (cur)
            hash_in(cur->id);
        return NULL;
    }
    vt_g **pp = &vt_sched.runq_head, **best = NULL;
    if (head->rt_queued) {
        /* real-time Gs keep their order (POSIX: the highest first) */
        best = pp;
        q_max_ok = false;
    } else if (vt_fuzz_mode == VT_FUZZ_PCT && picks - head->fuzz_enq > STARVE) {
        best = pp; /* it waited too long (STARVE) */
        q_max_ok = false;
    } else if (vt_fuzz_mode == VT_FUZZ_PCT) {
        if (cur && q_max_ok && cur->fuzz_prio >= q_max) {
            hash_in(cur->id);
            return NULL;
        }
        uint64_t second = 0;
        for (; *pp; pp = &(*pp)->schedlink) {
            uint64_t pr = (*pp)->fuzz_prio;
            if (!best || pr > (*best)->fuzz_prio) {
                if (best)
                    second = (*best)->fuzz_prio;
                best = pp;
            } else if (pr > second) {
                second = pr;
            }
        }
        q_max = (*best)->fuzz_prio;
        q_max_ok = true;
        if (cur && cur->fuzz_prio >= q_max) {
            hash_in(cur->id);
            return NULL;
        }
        q_max = second; /* once best leaves the queue, below */
    } else {
        q_max_ok = false; /* (pct only) */
        uint64_t n = (uint64_t)ld_relaxed(&vt_sched.runq_size);
        uint64_t r = vt_fuzz_below(n + (cur != NULL));
        if (r == n) {
            hash_in(cur->id);
            return NULL;
        }
        best = pp;
        while (r-- && (*best)->schedlink)
            best = &(*best)->schedlink;
    }
    vt_g *g = *best;
    *best = g->schedlink;
    if (vt_sched.runq_tail == g)
        vt_sched.runq_tail =
            best == &vt_sched.runq_head
                ? NULL
                : (vt_g *)((char *)best - offsetof(vt_g, schedlink));
    g->schedlink = NULL;
    xsub(&vt_sched.runq_size, 1);
    if (g->rt_queued) {
        g->rt_queued = false;
        xsub(&vt_sched.rt_waiting, 1);
    }
    if (cur)
        xadd(&switches, 1);
    hash_in(g->id);
    return g;
}

/* ------------------------------------------------------------ deadlock */

/* The waits only another thread of the process can end. */
static bool sync_wait(const char *r)
{
    static const char *const kinds[] = {
        "mutex", "condition variable", "thread join", "semaphore",
        "barrier", "rwlock (read)", "rwlock (write)", "pthread_once"};
    if (!r)
        return false;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(r, kinds[i]))
            return true;
    return false;
}

void vt_fuzz_watch(int64_t now)
{
    static int64_t since;
    static uint64_t last;
    if (ld_acquire(&vt_sched.npidle) != vt_sched.nprocs ||
        vt_sched_next_timer() != INT64_MAX || vt_netpoll_has_waiters() ||
        ld_acquire(&vt_sched.live) <= 0) {
        since = 0;
        return;
    }
    bool all = true;
    vt_lock_acquire(&vt_sched.glock);
    for (vt_g *g = vt_sched.allg; g && all; g = g->allnext)
        if (ld_acquire(&g->status) != G_WAITING || !sync_wait(g->wait_reason))
            all = false;
    vt_lock_release(&vt_sched.glock);
    vt_stats_fold();
    uint64_t sig = ld_relaxed(&vt_stats.parks) + ld_relaxed(&vt_stats.wakeups) +
                   ld_relaxed(&vt_stats.gs_created);
    if (!all || !since || sig != last) {
        since = all ? now : 0;
        last = sig;
        return;
    }
    if (now - since < 200000000)
        return;
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "vthread: deadlock: all %lld threads wait for one "
                     "another for good (VTHREAD_SCHED=%s:%llu)\n",
                     (long long)ld_relaxed(&vt_sched.live), mode_name(),
                     (unsigned long long)vt_cfg.sched_seed);
    vt_sys3(SYS_write, 2, buf, (size_t)n);
    vt_traceback_dump("deadlock", NULL, NULL);
    /* as abort() ends it: SIGABRT with its default action (sysmon does
     * not block it) */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    vt_real.sigaction(SIGABRT, &dfl, NULL);
    vt_sys3(SYS_tgkill, vt_sys0(SYS_getpid), vt_sys0(SYS_gettid), SIGABRT);
    vt_sys1(SYS_exit_group, 134);
}

void vt_fuzz_print(void)
{
    if (!vt_fuzz_mode ||
        !(vt_cfg.stats || vt_cfg.sched_report || vt_cfg.sched_report_file))
        return;
    char buf[256];
    vt_lock_acquire(&vt_sched.lock);
    uint64_t h = sched_hash;
    vt_lock_release(&vt_sched.lock);
    int n = snprintf(buf, sizeof buf,
                     "vthread: sched: %s:%llu points=%llu switches=%llu "
                     "draws=%llu schedule=%016llx\n", mode_name(),
                     (unsigned long long)vt_cfg.sched_seed,
                     (unsigned long long)ld_relaxed(&steps),
                     (unsigned long long)ld_relaxed(&switches),
                     (unsigned long long)ld_relaxed(&draws),
                     (unsigned long long)h);
    if (vt_cfg.stats || vt_cfg.sched_report)
        vt_sys3(SYS_write, 2, buf, (size_t)n);
    if (vt_cfg.sched_report_file) {
        /* one write of one line with O_APPEND: the lines of the processes
         * of one run do not mix */
        long fd = vt_sys4(SYS_openat, AT_FDCWD, vt_cfg.sched_report_file,
                          O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            vt_sys3(SYS_write, fd, buf, (size_t)n);
            vt_sys1(SYS_close, fd);
        }
    }
}
