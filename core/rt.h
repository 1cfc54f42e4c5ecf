/*
 * rt.h — the runtime's shared structures: G, M, P and the scheduler.
 *
 * Model (Go's, adapted to C threads; see docs/architecture.md):
 *  - A G is a thread as the program sees it: a stack, saved registers, and
 *    its own glibc thread descriptor + static TLS block, so errno, __thread
 *    and malloc's per-thread caches belong to the G and follow it from M to
 *    M.  The thread pointer (fs base) is switched with the stack.
 *  - An M is an OS thread (made with the real pthread_create).  Each M has a
 *    g0: its own stack and own descriptor, where it idles and runs the
 *    scheduler's slow paths.  Runtime code that runs on a G's stack uses the
 *    G's TLS; the runtime therefore keeps NO state in __thread variables and
 *    makes raw syscalls so the G's errno is never disturbed.
 *  - A P is the right to run Gs; VTHREAD_PROCS of them.  Each P has a local
 *    run queue (owner pushes, anyone steals half), a runnext slot, a timer
 *    heap and a cache of free G units.
 *
 * Who owns a P.  p->status packs (owner M id, state) into one word so that
 * every change of ownership is one CAS:
 *    P_IDLE     on the idle list; no owner.  Changed under sched.lock.
 *    P_RT       its M runs runtime code (scheduling, readying, timers):
 *               only that M touches runq tail, runnext, timers as owner.
 *    P_USER     its M runs a G's user code.  sysmon may retake it (CAS to
 *               P_IDLE) when the M makes no CPU progress: the G blocked in
 *               a call vthread cannot see.  The G notices at its next
 *               runtime entry (vt_rt_enter's CAS fails) and finds a P anew.
 *    P_SYSCALL  its M is in an intercepted system call; sysmon retakes it
 *               once the call outlives VT_SYSCALL_RETAKE_NS.
 * An M moves its own P between P_RT, P_USER and P_SYSCALL with a CAS on
 * (its id, old state), so a retake by sysmon is never overwritten.
 *
 * G states (g->status) and who moves them:
 *    G_RUNNABLE  in a run queue (local, runnext or global); whoever pops it
 *                runs it (after waiting for on_cpu to clear).
 *    G_RUNNING   on an M (g->m).  Only the G itself leaves this state.
 *    G_WAITING   parked (parking lot, sleep, join); exactly one waker moves
 *                it to G_RUNNABLE (vt_ready), the one that dequeued it.
 *    G_DEAD      exited: a zombie until joined, or being recycled.
 *
 * The park/ready race (a G readied before its M finished switching off its
 * stack) is closed by g->on_cpu: set by the M that switches to the G,
 * cleared by the arch switch after the G's context is saved and its stack
 * and TLS are no longer in use.  An M about to run a G waits for on_cpu==0.
 *
 * Lock order: p->tlock (timer heap) -> parking-lot bucket -> sched.lock
 *             -> sched.glock (all-G list).
 */
#ifndef VTHREAD_RT_H
#define VTHREAD_RT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>

#include "arch.h"
#include "atomic.h"
#include "lock.h"
#include "runq.h"
#include "vthread_core.h"

typedef struct vt_m vt_m;
typedef struct vt_p vt_p;

/* ------------------------------------------------------- glibc descriptor */
/* Offsets in glibc 2.36's struct pthread, per architecture: pd.h. */
#include "pd.h"

/* ------------------------------------------------------------------ timer */
typedef struct vt_timer vt_timer;
/* Runs with the owning P's tlock held; p is the P of the M running it, or
 * NULL when sysmon runs it (no P).  Must not block or park. */
typedef void (*vt_timer_fn)(vt_timer *t, vt_p *p);
struct vt_timer {
    int64_t when;       /* guarded by owner->tlock */
    vt_timer_fn fn;
    _Atomic(vt_p *) owner; /* heap it is in; NULL once fired/deleted */
    int index;          /* position in owner's heap, -1 when not queued */
};

/* --------------------------------------------------------------- waiter */
/* One parked thread in the parking lot.  A G's lives in its vt_g; a non-G
 * caller's on its stack.  Fields other than addr are guarded by the lock
 * of the bucket of addr; addr changes only under both buckets' locks
 * (requeue), so a reader locks bucket(addr) and re-checks addr. */
struct vt_waiter {
    _Atomic(const void *) addr;
    struct vt_waiter *next, *prev;
    vt_g *g;                 /* NULL for a non-G (futex) waiter */
    _Atomic int futex_word;  /* non-G: 0 asleep, 1 woken */
    uintptr_t token_in, token_out;
    int result;              /* enum vt_park_result */
    bool queued;
    bool interruptible;
    int prio;                /* the G's rt_prio when it queued, else 0 */
};

/* -------------------------------------------------------------------- G */
enum { G_IDLE, G_RUNNABLE, G_RUNNING, G_WAITING, G_DEAD };

/* join/detach state bits (g->jstate) */
#define J_DETACHED 1u
#define J_EXITED 2u
#define J_JOINING 4u

/* Where a G's memory came from. */
enum { GU_UNIT, GU_USER_STACK, GU_MAIN, GU_G0 };

struct vt_g {
    /* Runtime locks (vt_lock) this G holds; first field: lock.h bumps it
     * through the thread pointer.  G-private.  The preemption handler
     * refuses while it is non-zero. */
    int nlocks;
    /* The interrupted pc of a preempted G, for the trampoline (second
     * field: the assembly reads it at VT_G_PREEMPT_PC_OFFSET). */
    uintptr_t preempt_pc;
    /* Set by the handler when it redirects the G, cleared by
     * vt_preempt_park once preempt_pc is consumed; G-private. */
    _Atomic int preempting;
    /* vt_signal_notify: signals are pending on the G for the preload
     * layer to deliver (vt_hooks.deliver_signals) the next time the G
     * leaves the runtime with nothing held.  Set by any thread or signal
     * handler; cleared only by the G itself.  At a fixed offset: lock.h
     * reads it when the G releases its last runtime lock. */
    _Atomic int sig_notify;
    /* Set by the preemption handler when it could not preempt (the G was
     * inside the runtime or libc); the G yields at its next outermost
     * vt_rt_leave.  Cleared by the G when it yields or parks. */
    _Atomic int preempt_defer;

    /* --- context: owned by the M that runs or switches to the G */
    void *sp;                /* saved stack pointer while off CPU */
    volatile int on_cpu;     /* see the park/ready race above */
    _Atomic int status;      /* G_* */
    vt_m *m;                 /* M running it; valid while G_RUNNING */
    vt_g *schedlink;         /* run-queue link (global queue, free lists) */
    /* Pinning (vt_pin_self): the M this G is pinned to for the rest of
     * its life, NULL if none.  Written by the G itself inside the runtime
     * (pin; cleared as it exits); read by the M that pops the G, which
     * then hands its P to this M instead of running the G itself. */
    vt_m *lockedm;
    bool rt_queued;          /* counted in rt_waiting; under sched.lock */
    /* VTHREAD_SCHED=pct: the G's priority (higher runs first); written
     * at creation and at a change point, read under sched.lock. */
    uint64_t fuzz_prio;
    uint64_t fuzz_enq;       /* pct: picks made when it was queued */

    /* --- identity: immutable while the G lives */
    uint64_t id;
    int tid;                 /* synthetic; written into the descriptor */
    void *pd;                /* glibc descriptor = thread pointer */
    int kind;                /* GU_* */
    bool is_g0;

    /* --- memory: immutable while the G lives */
    void *map;               /* GU_UNIT: the mapping (guard at the bottom) */
    size_t map_size;
    size_t guard;
    void *stack_lo, *stack_hi;  /* usable stack */
    size_t stack_size;       /* requested size (for the free-unit cache) */

    /* --- start */
    void *(*fn)(void *);
    void *arg;
    sigset_t start_mask;
    bool has_start_mask;

    /* --- parking: waiter guarded by the bucket lock; timer by its P */
    struct vt_waiter waiter;
    vt_timer timer;
    _Atomic int interrupt;   /* vt_interrupt pending */
    _Atomic int rt_prio;     /* vt_g_set_rt_prio; any thread writes */
    /* G-private: an interruptible vt_park returned VT_PARK_INTERRUPTED
     * and its caller has not yet called vt_clear_interrupt (in
     * pl_interrupted, which delivers the signals and learns from them
     * whether the wait ends with EINTR).  vt_sig_check leaves the
     * delivery to that caller meanwhile. */
    bool intr_wait;
    char sleep_key;          /* private park address for vt_sleep_until */

    /* --- exit / join */
    _Atomic unsigned jstate; /* J_* */
    void *retval;            /* written before J_EXITED is set */

    /* --- syscalls */
    int syscall_depth;       /* nesting of vt_syscall_enter (G-private) */
    /* Program handlers the preload layer runs right inside the kernel's
     * signal frame on this G (vt_signal_frame; G-private).  While > 0
     * the G is not switched away but to park: the frame's sigreturn
     * restores the kernel mask, altstack state and registers of this M,
     * and must run on it. */
    int sig_frames;
    int rt_depth;            /* nesting of vt_rt_enter (G-private); a G
                                switched to while its P is in P_RT has 1.
                                A signal handler that finds it (or nlocks)
                                non-zero runs no program code: the G is
                                half-way through runtime state. */

    /* --- CPU time (vt_g_cputime), kept only once a program asked
     * (vt_sched.cpu_acct): written by the M that switches the G in or
     * out, inside cpu_seq (odd while writing); readers retry. */
    int64_t cpu_ns;          /* CPU time of finished stretches on Ms */
    int64_t cpu_in;          /* its M's thread CPU clock at switch-in; 0 =
                                not counted (off CPU, or not stamped) */
    _Atomic unsigned cpu_seq;

    /* --- observability: written by the G, read racily by dumps */
    const char *wait_reason;
    int64_t wait_since;

    /* --- all-G list, guarded by sched.glock */
    vt_g *allnext, *allprev;
    uint64_t tls_gen;        /* vt_tls_gen this G's static TLS matches */

    _Alignas(16) unsigned char ext[VT_G_EXT_SIZE];
};

/* -------------------------------------------------------------------- M */
struct vt_m {
    int id;
    pid_t tid;               /* kernel TID */
    pthread_t thread;        /* real pthread handle */
    clockid_t cpuclock;      /* this thread's CPU-time clock, for sysmon */
    int statfd;              /* /proc/self/task/TID/stat in the prober's own
                                descriptor table (sysmon.c), or -1 */
    vt_g *g0;                /* the M's own context (stack, descriptor) */
    vt_g *curg;              /* G running on this M (NULL on g0) */
    vt_g *g0next;            /* G for g0 to run once it is off its CPU */
    vt_p *p;                 /* P held (ownership is in p->status) */
    vt_p *nextp;             /* P handed over by startm before waking */
    _Atomic int park;        /* futex note: 0 asleep, 1 woken */
    bool spinning;           /* looking for work without having found it */
    bool watching;           /* idle M sleeping until the next timer */
    _Atomic int preempt_req; /* sysmon asked this M to preempt its G */
    vt_m *schedlink;         /* idle-M list, guarded by sched.lock */
    vt_m *allnext;           /* all Ms, append-only */
    uint32_t fastrand;
    /* The kernel signal mask vthread last set on this thread; owned by
     * code running on this M (vt_set_thread_sigmask, g_main). */
    sigset_t kmask;
    bool kmask_known;
    unsigned routed_gen;     /* vt_sched.routed_gen its mask reflects */
    /* Pinning (vt_pin_self).  lockedg: the only G this M runs, for good;
     * written by that G (pin) and by this M's g0 (retire).  A locked M
     * never looks for work: when its G parks it hands its P away and
     * sleeps on `park` until an M that popped the G hands it a P in
     * nextp (startlockedm).  retiring: set by the pinned G as it exits;
     * its g0 then retires the M (the OS thread carries the G's per-task
     * state, which no other G may inherit).  made_g0: the g0 has no OS
     * stack of its own to return to (M0, a fork child's M): a retired
     * such M sleeps for good instead of ending its thread. */
    vt_g *lockedg;
    bool retiring;
    bool made_g0;
    _Atomic int dead;        /* retired: sysmon and routing skip it */
    /* The execution trace (trace.c; VTHREAD_TRACE).  Written only by code
     * running on this M's OS thread: its Gs, its g0, and a signal handler
     * interrupting them (tr_busy makes a nested record a drop).  tr_n is
     * published with release after the record is complete; the exit
     * writer, on another thread, reads the first tr_n records. */
    struct vt_trace_rec *tr_buf; /* mmap'd at this M's first record */
    _Atomic uint32_t tr_n;       /* records written */
    _Atomic uint64_t tr_dropped; /* records lost: buffer full, no memory,
                                    or nested in a signal handler */
    int tr_busy;
};

/* -------------------------------------------------------------------- P */
enum { P_IDLE = 0, P_RT = 1, P_USER = 2, P_SYSCALL = 3 };
#define P_STATUS(mid, st) (((uint64_t)(uint32_t)(mid) << 8) | (st))
#define P_STATE(s) ((int)((s)&0xff))
#define P_OWNER(s) ((int)((s) >> 8))

struct vt_p {
    int id;
    _Atomic uint64_t status; /* P_STATUS(owner M id, state) */
    vt_m *m;                 /* owner M (informational; status decides) */
    vt_p *link;              /* idle-P list, guarded by sched.lock */

    struct vt_runq runq;     /* owner pushes; anyone steals */
    _Atomic(vt_g *) runnext; /* owner sets; thieves may take it */

    _Atomic uint32_t schedtick;   /* +1 per G switch (read by sysmon) */
    _Atomic uint32_t syscalltick; /* +1 per syscall entry */
    uint32_t globtick;            /* owner: when to poll the global queue */

    /* timers, guarded by tlock */
    vt_lock tlock;
    vt_timer **timers;
    int ntimers, cap_timers;
    _Atomic int64_t timer0;  /* earliest when, INT64_MAX when none */

    /* free G units of the default size, owner only (in P_RT) */
    vt_g *gfree;
    int ngfree;

    /* sysmon's private observations */
    uint32_t sm_schedtick, sm_syscalltick;
    int64_t sm_when;         /* when the current tick was first seen */
    int64_t sm_cpu;          /* owner M's CPU time at the last look */
    int64_t sm_cpu_when;     /* when sm_cpu was read */
    int64_t sm_cpu0, sm_cpu0_when; /* the first such reading this tick */
    int64_t sm_preempt_when; /* last preemption request */
    int64_t sm_d_since;      /* its M first seen in state D this tick, or 0 */
};

/* ------------------------------------------------------------- scheduler */
struct vt_config {
    int procs;               /* VTHREAD_PROCS */
    size_t stack_size;       /* VTHREAD_STACK_SIZE or RLIMIT_STACK */
    int max_ms;              /* VTHREAD_MAX_THREADS */
    bool stats;              /* VTHREAD_DEBUG=stats */
    bool sched_report;       /* VTHREAD_DEBUG=sched */
    /* VTHREAD_SCHED_REPORT=FILE: where the seeded scheduler appends its
     * summary at exit (vthread-fuzz's channel; not the program's stderr,
     * which tests compare).  NULL when unset, and in secure-execution
     * mode, where no variable may make vthread write files. */
    const char *sched_report_file;
    int schedtrace_ms;       /* VTHREAD_DEBUG=schedtrace=MS */
    bool disabled;           /* VTHREAD_DISABLE=1 */
    int fsbase;              /* VTHREAD_FSBASE: 0 auto, 1 wrfsbase, 2 syscall */
    bool guard_mprotect;     /* VTHREAD_GUARD=mprotect */
    int preempt_signal;      /* VTHREAD_PREEMPT_SIGNAL; 0 = no preemption */
    int traceback;           /* VTHREAD_TRACEBACK: bit 0 crash, bit 1 sigquit */
    int sched;               /* VTHREAD_SCHED: VT_FUZZ_* */
    uint64_t sched_seed;     /* its SEED */
    int pct_depth;           /* pct: DEPTH (default 3) */
    uint64_t pct_steps;      /* pct: STEPS (0: the default, 200) */
    /* VTHREAD_TRACE=FILE: the execution trace written at exit (trace.c),
     * an absolute path; NULL when unset and in secure-execution mode. */
    const char *trace_file;
    uint32_t trace_events;   /* VTHREAD_TRACE_EVENTS: records per M */
};

struct vt_stats {
    _Atomic uint64_t gs_created, gs_exited, ms_created, steals, handoffs,
        retakes_syscall, retakes_blocked, retakes_busy, parks, wakeups, timers_fired,
        units_reused, units_made, units_freed, preemptions, pinned, ms_retired;
    _Atomic int64_t peak_live;
};

/* The counters bumped on every park, wake-up, creation and exit, kept per
 * M (sharded by M id) so that Ms do not fight over one cache line; summed
 * into vt_stats when printed (vt_stats_fold). */
enum { VT_ST_PARKS, VT_ST_WAKEUPS, VT_ST_GS_CREATED, VT_ST_GS_EXITED,
       VT_ST_UNITS_REUSED, VT_ST_STEALS, VT_ST_N };
#define VT_STAT_SHARDS 16
struct vt_stat_shard {
    _Alignas(64) _Atomic uint64_t c[VT_ST_N];
};
VT_HIDDEN extern struct vt_stat_shard vt_stat_shards[VT_STAT_SHARDS];
VT_HIDDEN void vt_stats_fold(void);

struct vt_sched {
    _Atomic int started;     /* 0 no, 1 starting, 2 running */
    vt_lock lock;            /* guards: global runq, pidle, midle, counts */
    vt_g *runq_head, *runq_tail;
    _Atomic int runq_size;
    vt_p *pidle;
    _Atomic int npidle;
    vt_m *midle;
    int nmidle;
    _Atomic int nmspinning;
    int mcount;
    vt_m *watcher;           /* idle M sleeping until watch_until */
    _Atomic int64_t watch_until;
    vt_m *allm;

    int nprocs;
    vt_p **allp;

    vt_lock glock;           /* guards allg list and the global unit cache */
    vt_g *allg;
    vt_g *gfree;             /* global cache of free default-size units */
    vt_g *graveyard;         /* exited detached Gs to destroy when off CPU */
    int ngfree;
    /* Written by every creation and exit: on a line of their own, away
     * from the run queue and idle counts every switch reads. */
    _Alignas(64) _Atomic int64_t live; /* Gs that have not exited */
    /* Written by creators only (an exit writes live): a thread creating
     * in a loop keeps this line. */
    _Alignas(64) _Atomic uint64_t next_id;
    _Atomic int next_tid;
    _Alignas(64) char pad_after_ids;

    _Atomic int64_t poll_until; /* deadline of the M blocked in epoll */

    /* Pinning (sched.c): Ms with a pinned G, and the Ms whose OS threads
     * sysmon is to make because newm ran on such an M (on_locked_m);
     * mspawn is guarded by lock. */
    _Atomic int nlocked;
    vt_m *mspawn;
    _Atomic int mspawn_req;

    pthread_t sysmon;
    _Atomic int sysmon_wake; /* futex: sysmon sleeps on it */
    /* vt_signal_defer asked sysmon to route.  On a line of its own: every
     * G reads it as it leaves the runtime (vt_sig_check), and the fields
     * around it are written on every scheduling decision. */
    _Alignas(64) _Atomic int route_req;
    /* Real-time Gs at the head of the global queue (globrunqput_rt): Ms
     * look there first while non-zero.  On route_req's line: read at every
     * switch (find_local), written only by real-time wake-ups, so it costs
     * programs without real-time threads no cache miss. */
    _Atomic int rt_waiting;
    _Alignas(64) _Atomic int route_again; /* vt_signal_retry: route at
                                           * the next tick */

    /* Signals no M blocks in the kernel (vt_signal_set_routed); bumping
     * routed_gen makes every M re-strip its mask at its next switch. */
    _Atomic uint64_t routed;
    _Atomic unsigned routed_gen;
    /* The mask a G last asked for (m_set_mask), or the first thread's:
     * what a new M starts with, so that it blocks what the program's
     * threads block (a new M is often made by sysmon, which blocks
     * everything). */
    _Atomic uint64_t mask_hint;

    /* Per-G CPU time is kept (switches read the M's CPU clock) from the
     * first vt_g_cputime on: 0 until then, then 1 for good. */
    _Atomic int cpu_acct;
};

VT_HIDDEN extern struct vt_sched vt_sched;
VT_HIDDEN extern struct vt_config vt_cfg;
VT_HIDDEN extern struct vt_stats vt_stats;
VT_HIDDEN extern struct vt_hooks vt_hooks_set;

#define VT_SYSCALL_RETAKE_NS 20000  /* hand off a P stuck in a syscall */
#define VT_BLOCKED_RETAKE_NS 50000  /* ... or in code we cannot see */
/* A G may run this long while others wait: the kernel's own slice for a
 * few threads per CPU (EEVDF base slice 0.75 ms x (1 + log2 CPUs), ~3 ms).
 * Spinning programs (redis' I/O threads wait for work in a busy loop)
 * make the others wait a whole slice: 10 ms, Go's, cost redis a quarter
 * of its throughput. */
#define VT_PREEMPT_NS 3000000
/* ... or this long while a G waits in the global queue: where a G lands
 * when it comes back from a system call and finds every P busy (and after
 * a yield).  The kernel would have preempted a CPU hog for a thread waking
 * from its system call at once; 1 ms is its minimum slice, roughly. */
#define VT_PREEMPT_GLOBAL_NS 1000000
/* A timer this late on a P whose M runs user code: sysmon runs it. */
#define VT_TIMER_LATE_NS 200000
#define VT_P_GFREE_MAX 64
#define VT_GLOBAL_GFREE_MAX 1024

/* ------------------------------------------------------ internal calls */
/* sched.c */
VT_HIDDEN vt_m *vt_rt_enter(vt_g *g);     /* take our P into P_RT */
VT_HIDDEN void vt_rt_leave(vt_m *m);      /* P_RT -> P_USER (outermost) */
/* vt_rt_leave without delivering notified signals: for a caller that
 * still uses per-G state a handler could reuse (the waiter, the timer);
 * it calls vt_sig_check(g) once done. */
VT_HIDDEN void vt_rt_leave_nodeliver(vt_m *m);
/* Runs vt_hooks.deliver_signals if g was notified and holds nothing of
 * the runtime.  On g. */
VT_HIDDEN void vt_sig_check(vt_g *g);
/* G_WAITING -> runnable.  next: run it next on p (a wake-up by a running
 * G: ping-pong stays on one P); else FIFO (timer batches keep order). */
VT_HIDDEN void vt_ready(vt_g *g, vt_p *p, bool next);
/* A list of runnable Gs linked through schedlink, in readying order: what
 * a poller collects for the M that polled to run itself (Go's gList). */
typedef struct vt_glist {
    vt_g *head, *tail;
    int n;
} vt_glist;
/* G_WAITING -> runnable like vt_ready, but appended to *l instead of a
 * run queue, and nobody is woken: the caller runs or injects the list
 * (vt_inject).  A real-time G still goes through ready_rt. */
VT_HIDDEN void vt_ready_to(vt_g *g, vt_glist *l);
VT_HIDDEN void vt_rearm_watcher(int64_t when);
VT_HIDDEN void vt_park_self(vt_g *g);     /* g is G_WAITING: switch away */
VT_HIDDEN void vt_wakep(void);
VT_HIDDEN void vt_handoffp(vt_p *p);
VT_HIDDEN void vt_start(void);
VT_HIDDEN int64_t vt_sched_next_timer(void);
VT_HIDDEN void vt_spawn_pending_ms(void); /* on sysmon */

/* tls.c */
VT_HIDDEN void vt_tls_init(void);
VT_HIDDEN int vt_tls_setup(vt_g *g, void *pd, bool fresh);
VT_HIDDEN void vt_tls_release(vt_g *g);
VT_HIDDEN void vt_tls_start_g(vt_g *g);
VT_HIDDEN size_t vt_tls_static_size(void);
VT_HIDDEN size_t vt_tls_static_align(void);
VT_HIDDEN void *vt_tls_creator_pd(void);

/* stack.c */
VT_HIDDEN void vt_stack_init(void);
VT_HIDDEN void vt_stack_fork_child(void);
VT_HIDDEN int vt_unit_alloc(size_t stack_size, size_t guard, vt_g **out);
VT_HIDDEN int vt_unit_on_user_stack(void *addr, size_t size, vt_g **out);
VT_HIDDEN void vt_unit_destroy(vt_g *g);
VT_HIDDEN size_t vt_page_size(void);

/* timer.c */
VT_HIDDEN void vt_timer_add(vt_p *p, vt_timer *t, int64_t when,
                            vt_timer_fn fn);
VT_HIDDEN bool vt_timer_del(vt_timer *t);
VT_HIDDEN int vt_timers_run(vt_p *on, vt_p *runner, int64_t now);

/* parklot.c */
VT_HIDDEN void vt_waiter_interrupt(vt_g *g);
/* vt_unpark_all for a caller without a G (the poller on g0): readied Gs
 * go to *out (vt_ready_to); futex waiters are woken as usual.  out NULL:
 * exactly vt_unpark_all. */
VT_HIDDEN unsigned vt_unpark_all_to(const void *addr, vt_glist *out);

/* netpoll.c */
VT_HIDDEN void vt_netpoll_init(void); /* vt_start, single-threaded */
VT_HIDDEN bool vt_netpoll_has_waiters(void);
/* Readied Gs are appended to *out when out is given (on g0: the M runs
 * them itself), else queued globally with a wake-up each (sysmon). */
VT_HIDDEN int vt_netpoll(int64_t deadline, vt_glist *out);
VT_HIDDEN bool vt_netpoll_block(int64_t deadline, vt_glist *out);
VT_HIDDEN void vt_netpoll_break(void);
VT_HIDDEN uint64_t vt_netpoll_count(void); /* changes with every poll */
VT_HIDDEN bool vt_netpoll_blocked(void);
VT_HIDDEN void vt_netpoll_fork_child(void);

/* preempt.c */
VT_HIDDEN void vt_preempt_init(void);
VT_HIDDEN void vt_preempt_refresh(void);
VT_HIDDEN void vt_preempt_request(vt_m *m);
VT_HIDDEN void vt_preempt_fork_child(void);

/* traceback.c */
VT_HIDDEN void vt_traceback_init(void);
VT_HIDDEN bool vt_traceback_on_crash(void);
VT_HIDDEN void vt_traceback_dump(const char *why, vt_g *self, void *uc);
VT_HIDDEN bool vt_traceback_answer(void *uc);
/* From a fatal-signal handler: if the faulting thread was reading a G's
 * stack for a dump, jumps back into the dump (never returns); else
 * returns false. */
VT_HIDDEN bool vt_traceback_fault(void);
/* At exit: waits (bounded) for a dump in progress on another thread. */
VT_HIDDEN void vt_traceback_wait(void);
/* True on the thread printing a traceback, while it does.  Any context. */
VT_HIDDEN bool vt_traceback_dumping_here(void);

/* fuzz.c: the seeded scheduler (VTHREAD_SCHED; docs/fuzzing.md).  With
 * it on, every runnable G waits in the global queue (runqput), so that
 * one list holds every choice, and vt_fuzz_pick makes it. */
enum { VT_FUZZ_OFF = 0, VT_FUZZ_RANDOM = 1, VT_FUZZ_PCT = 2 };
VT_HIDDEN void vt_fuzz_init(vt_g *first);  /* vt_start, one thread */
VT_HIDDEN void vt_fuzz_g_init(vt_g *g);     /* vt_spawn, before g runs */
/* A schedule point passed by cur: counts it (PCT lowers cur's priority
 * at a change point).  Inside the runtime, on cur. */
VT_HIDDEN void vt_fuzz_step(vt_g *cur);
/* The next seeded number below n (n > 0).  Any context. */
VT_HIDDEN uint64_t vt_fuzz_below(uint64_t n);
/* sched.lock held: takes the G to run next out of the global queue and
 * returns it; with cur (a G at a schedule point, not queued) it may
 * return NULL: cur goes on.  NULL also when the queue is empty. */
VT_HIDDEN vt_g *vt_fuzz_pick(vt_g *cur);
/* sched.lock held: g was appended to the global queue (pct's bound). */
VT_HIDDEN void vt_fuzz_queued(vt_g *g);
/* pct: g waits for another G by choice (yield, sleep): it drops below
 * every other, else a polling loop would starve the G it waits for. */
VT_HIDDEN void vt_fuzz_demote(vt_g *g);
/* Sysmon, every tick while every P is idle: a run in which every G
 * waits for another for good ends with a report (VTHREAD_SCHED only). */
VT_HIDDEN void vt_fuzz_watch(int64_t now);
VT_HIDDEN void vt_fuzz_print(void);         /* the stats line's part */

/* crash.c */
VT_HIDDEN void vt_crash_init(void);
VT_HIDDEN void vt_crash_thread_init(void);

/* sysmon.c */
VT_HIDDEN void vt_sysmon_start(void);
VT_HIDDEN void vt_sysmon_kick(void);
VT_HIDDEN void vt_stats_print(void);

/* env.c */
VT_HIDDEN void vt_config_load(void);

/* log.c */
VT_HIDDEN void vt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
VT_HIDDEN void vt_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
VT_HIDDEN void vt_config_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

_Static_assert(offsetof(struct vt_g, nlocks) == VT_G_NLOCKS_OFFSET,
               "lock.h relies on nlocks being first");
_Static_assert(offsetof(struct vt_g, sig_notify) == VT_G_SIG_NOTIFY_OFFSET,
               "lock.h reads sig_notify");
_Static_assert(offsetof(struct vt_g, preempt_pc) == 8,
               "the arch preemption trampolines read preempt_pc at 8");

/* A CPU-time clock (an M's cpuclock, CLOCK_THREAD_CPUTIME_ID) in ns, or
 * -1 if the kernel refuses it.  A raw system call: errno untouched. */
static inline int64_t vt_cpu_clock_ns(clockid_t c)
{
    struct timespec ts;
    if (vt_sys2(SYS_clock_gettime, c, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The G pointer stored in the running thread's descriptor (NULL on g0,
 * sysmon and foreign threads). */
static inline vt_g *vt_tp_g(void)
{
    return (vt_g *)vt_arch_tp_load(VT_TP_G_SLOT);
}

/* One more of counter i, on the shard of the M running the caller (shard
 * 0 for g0, sysmon and foreign threads).  Relaxed and unlocked: a shard
 * is written by one M at a time, except in the rare moment a G moves. */
static inline void vt_stat_inc(int i)
{
    vt_g *g = vt_tp_g();
    vt_m *m = g ? g->m : NULL;
    _Atomic uint64_t *c =
        &vt_stat_shards[m ? (unsigned)m->id % VT_STAT_SHARDS : 0].c[i];
    st_relaxed(c, ld_relaxed(c) + 1);
}

/* ---------------------------------------------------------------- trace */
/* trace.c: the execution trace (VTHREAD_TRACE, Chrome trace-event JSON
 * written at exit).  Each hook below is one relaxed load and a branch
 * predicted not taken while tracing is off; when on, it appends a
 * 32-byte record to the buffer of the M running the caller (no lock, no
 * allocation but the M's first mmap), or, from a thread without an M
 * (sysmon, a foreign thread), to a shared buffer where a slot is claimed
 * with one atomic add.  Any context, a signal handler included. */
enum {
    VT_TR_RUN = 1,  /* the M switches to G g (0: its own g0, i.e. no G);
                       a: P id + 1 (0: none), b: g's start routine */
    VT_TR_CREATE,   /* G g created by G b (0: not by a G) */
    VT_TR_PARK,     /* G g parks; b: its wait_reason (a static string) */
    VT_TR_UNPARK,   /* G g made runnable by G b (0: runtime, timer) */
    VT_TR_STEAL,    /* a: victim P; b: thief P << 32 | Gs taken */
    VT_TR_HANDOFF,  /* P a given away (g: the G whose M gives it, or 0) */
    VT_TR_RETAKE,   /* sysmon took P a; b: kind (0 syscall, 1 blocked,
                       2 busy) | owner M id << 8 */
    VT_TR_PREEMPT,  /* G g preempted (it yields next) */
    VT_TR_SYSCALL,  /* G g enters a system call; a: 1 if it hands off
                       its P first (a call known to block) */
    VT_TR_SYSRET,   /* G g is back; a: 1 if it had lost its P */
    VT_TR_EXIT,     /* G g exits */
    VT_TR_NAME,     /* G g is named: name[] replaces ts and b */
    VT_TR_FULL,     /* the buffer is full: nothing after this */
};
struct vt_trace_rec {
    union {
        struct {
            int64_t ts;      /* vt_now() */
            uint64_t b;      /* wide argument, by kind */
        };
        char name[16];       /* VT_TR_NAME: NUL-padded, as TASK_COMM_LEN */
    };
    uint64_t g;              /* the G the event is about; 0: none */
    uint32_t a;              /* narrow argument, by kind */
    _Atomic uint32_t kind;   /* VT_TR_*; stored last (release) in the
                                shared buffer: 0 = slot not yet filled */
};
_Static_assert(sizeof(struct vt_trace_rec) == 32, "a record is 32 bytes");

VT_HIDDEN extern _Atomic int vt_trace_on;
/* m: the M whose thread runs the caller, when the caller knows it; else
 * vt_trace_here (below) finds it, or the shared buffer takes the record. */
VT_HIDDEN void vt_trace_rec(vt_m *m, unsigned kind, uint64_t g, uint32_t a,
                            uint64_t b);
/* The M running the caller: a G's own M; on a g0, that g0's M (cand, if
 * it is the one: the caller's P's M, typically; else found in the list
 * of Ms); NULL on sysmon and foreign threads.  Any context. */
VT_HIDDEN vt_m *vt_trace_here(vt_m *cand);
VT_HIDDEN void vt_trace_start(vt_m *m, vt_g *g); /* vt_start */
VT_HIDDEN void vt_trace_at_exit(void);          /* at_exit_stats */
VT_HIDDEN void vt_trace_fork_child(void);       /* fork_child */

/* m switches to g (NULL: to its g0).  Before the switch, on m. */
static inline void vt_trace_run(vt_m *m, vt_g *g)
{
    if (unlikely(ld_relaxed(&vt_trace_on)))
        vt_trace_rec(m, VT_TR_RUN, g ? g->id : 0,
                     m->p ? (uint32_t)m->p->id + 1 : 0,
                     g ? (uintptr_t)g->fn : 0);
}
static inline void vt_trace_g(vt_m *m, unsigned kind, vt_g *g, uint32_t a,
                              uint64_t b)
{
    if (unlikely(ld_relaxed(&vt_trace_on)))
        vt_trace_rec(m, kind, g->id, a, b);
}
static inline void vt_trace_park(vt_m *m, vt_g *g)
{
    if (unlikely(ld_relaxed(&vt_trace_on)))
        vt_trace_rec(m, VT_TR_PARK, g->id, 0, (uintptr_t)g->wait_reason);
}
/* g made runnable; p: the caller's P, if it holds one. */
static inline void vt_trace_unpark(vt_g *g, vt_p *p)
{
    if (unlikely(ld_relaxed(&vt_trace_on))) {
        vt_g *by = vt_tp_g();
        vt_trace_rec(vt_trace_here(p ? p->m : NULL), VT_TR_UNPARK, g->id, 0,
                     by ? by->id : 0);
    }
}
/* Events about P p from a caller that may be on a G, a g0 or sysmon;
 * cand: the M the caller probably runs on (vt_trace_here). */
static inline void vt_trace_p(unsigned kind, vt_p *p, vt_m *cand, uint64_t b)
{
    if (unlikely(ld_relaxed(&vt_trace_on))) {
        vt_g *g = vt_tp_g();
        vt_trace_rec(vt_trace_here(cand), kind, g ? g->id : 0,
                     (uint32_t)p->id, b);
    }
}

#ifdef VT_DEBUG
#define VT_ASSERT(c)                                                          \
    do {                                                                      \
        if (unlikely(!(c)))                                                   \
            vt_fatal("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__); \
    } while (0)
#else
#define VT_ASSERT(c) ((void)0)
#endif

#endif /* VTHREAD_RT_H */
