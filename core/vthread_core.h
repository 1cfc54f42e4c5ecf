/*
 * vthread_core.h — the runtime's internal API, the only core/ header that
 * preload/ includes.
 *
 * core/ knows nothing of pthread_* names.  It offers lightweight threads (Gs)
 * scheduled M:N on OS threads (Ms) holding processors (Ps), an address-keyed
 * parking lot that every synchronisation primitive is built on, timers, and
 * hooks around blocking system calls.  preload/ translates POSIX semantics
 * (error codes, object layouts, attributes, cancellation) into these calls.
 *
 * Conventions
 *  - Functions returning int return 0 or a positive errno value; they never
 *    touch errno.  (The caller's errno is the G's own and user visible.)
 *  - Times are absolute CLOCK_MONOTONIC nanoseconds (vt_now()); 0 = none.
 *  - "Caller may be a non-G" means the function also works from threads the
 *    runtime did not create (libc helper threads, sysmon, foreign clones)
 *    and before the runtime started: it then falls back to futexes.
 *  - No function here may be called from a signal handler unless it says so.
 */
#ifndef VTHREAD_CORE_H
#define VTHREAD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef VT_HIDDEN
#define VT_HIDDEN __attribute__((visibility("hidden")))
#endif

/* Raw system calls (vt_sys0..vt_sys6: return -errno, never touch errno),
 * from arch/, for wrappers that must not disturb the G's errno before
 * they set it themselves. */
#include "arch.h"

typedef struct vt_g vt_g;

/* ---------------------------------------------------------------- process */

/* Starts the runtime if it has not started: reads the configuration
 * (VTHREAD_*), creates the Ps and sysmon, and turns the calling thread into
 * the first G.  Idempotent and thread-safe; called by the preload
 * constructor.  A bad configuration ends the process with a one-line error
 * naming the variable.  Returns false if the runtime is disabled
 * (VTHREAD_DISABLE=1), in which case every wrapper passes through. */
VT_HIDDEN bool vt_runtime_init(void);
VT_HIDDEN bool vt_runtime_active(void);

/* Monotonic clock in ns (vDSO; no syscall on x86_64).  Any context. */
VT_HIDDEN int64_t vt_now(void);
VT_HIDDEN int64_t vt_now_coarse(void); /* tick resolution, cheaper */

/* ---------------------------------------------------------------- threads */

/* The calling G, or NULL when the caller is not a G.  Cheap: one load
 * through %fs.  Any context, including signal handlers. */
VT_HIDDEN vt_g *vt_self(void);

/* G of a glibc thread descriptor (a pthread_t), or NULL when that
 * descriptor is not a G's (a foreign thread).  Any context. */
VT_HIDDEN vt_g *vt_g_from_descriptor(void *pd);
/* The G's glibc thread descriptor: what pthread_self() returns for it. */
VT_HIDDEN void *vt_g_descriptor(vt_g *g);
/* The G's stack as NPTL reports it in pthread_getattr_np: *lo and *size
 * are the usable stack (above the guard; like NPTL, the size includes the
 * TLS and descriptor at the top), *guard the guard below it.  The
 * descriptor's stackblock/stackblock_size/guardsize follow NPTL's
 * convention too (the block starts at the guard).  The first G reports
 * *lo = NULL: ask the kernel (/proc/self/maps) as glibc does. */
VT_HIDDEN void vt_g_stack(vt_g *g, void **lo, size_t *size, size_t *guard);
/* A unique id, never reused while the process lives (the first G is 1). */
VT_HIDDEN uint64_t vt_g_id(vt_g *g);
/* The synthetic tid stored in the G's descriptor (a new one for every G,
 * unique among live Gs, never a real kernel TID).  The first G keeps the
 * process's real TID. */
VT_HIDDEN int vt_g_tid(vt_g *g);

struct vt_spawn_attr {
    size_t stack_size;   /* 0 = default (VTHREAD_STACK_SIZE or RLIMIT_STACK) */
    void *stack_addr;    /* caller-provided stack (lowest address), or NULL */
    size_t guard_size;   /* bytes of guard below the stack (0 = none);
                            ignored when stack_addr is given, as glibc does */
    bool detached;       /* start detached: no join, freed at exit */
    const sigset_t *sigmask; /* initial signal mask, or NULL = creator's */
    int rt_prio;             /* real-time priority (vt_g_set_rt_prio) */
    /* Written before the G can run (NPTL stores *newthread before the
     * clone; programs read it from the new thread): */
    void **out_descriptor;   /* if non-NULL: the G's descriptor */
    const void *ext_init;    /* if non-NULL: copied into vt_g_ext() */
    size_t ext_init_size;    /* <= VT_G_EXT_SIZE */
};
/* A NULL attr means: default stack size, one guard page, joinable. */

/* Creates a G that runs fn(arg) and then vt_exit(its return value).
 * The new G is runnable at once (it may run before vt_spawn returns).
 * Errors: EAGAIN (no memory for a stack or TLS, or the G limit),
 * EINVAL (impossible stack size or address).  Caller may be a non-G. */
VT_HIDDEN int vt_spawn(vt_g **out, void *(*fn)(void *), void *arg,
                       const struct vt_spawn_attr *attr);

/* Ends the calling G.  Runs, in order: the preload layer's exit hook
 * (vt_hooks.on_exit: cleanup handlers, key destructors), C++ thread_local
 * destructors (__call_tls_dtors), then the G is a zombie until joined (or
 * freed at once when detached).  The last G to exit ends the process with
 * exit(0), as NPTL does.  Must be called by a G. */
VT_HIDDEN _Noreturn void vt_exit(void *retval);

/* Waits until g has exited and takes its return value; g is freed.
 * deadline: 0 = forever; else ETIMEDOUT when it passes.
 * poll_only: return EBUSY at once if g has not exited.
 * Errors: EINVAL (g detached or already being joined by someone else),
 * EDEADLK (g is the caller), ETIMEDOUT, EBUSY, EINTR (interrupted by
 * vt_interrupt: the preload layer acts on cancellation and retries).
 * Caller may be a non-G. */
VT_HIDDEN int vt_join(vt_g *g, void **retval, int64_t deadline, bool poll_only);
/* Marks g detached; frees it if it already exited.  EINVAL if already
 * detached. */
VT_HIDDEN int vt_detach(vt_g *g);
/* True once g has called vt_exit (a zombie or exiting). */
VT_HIDDEN bool vt_g_exited(vt_g *g);

/* Sets the calling OS thread's kernel signal mask (raw system call, errno
 * untouched).  For a G, the M remembers it, so that a G starting on this
 * M with the same mask (vt_spawn_attr.sigmask, applied by core before the
 * G's start routine) costs no system call.  Every change of an M's mask
 * by the preload layer must go through here, or the memory goes stale. */
VT_HIDDEN void vt_set_thread_sigmask(const sigset_t *set);

/* ------------------------------------------------------------- signals */
/*
 * Process-directed signals and per-G masks (preload/signal.c routes them).
 * The kernel picks the OS thread for a process-directed signal by that
 * thread's mask, which says nothing about the G it runs.  So for the
 * signals the program handles itself ("routed": it installed a handler
 * through the preload layer), no M blocks them in the kernel: every M
 * strips them from the mask it sets, and re-strips (at its next switch)
 * when the routed set grows.  The preload layer's handler then decides in
 * which G the program's handler runs.
 */
VT_HIDDEN void vt_signal_set_routed(uint64_t set); /* bit (sig - 1) */
VT_HIDDEN uint64_t vt_signal_routed(void);

/* The preemption signal (0 when preemption is off).  Its kernel action
 * stays core's handler; for instances core did not send, that handler
 * runs the action set here (the preload layer's, for the program's
 * sigaction); *old gets the previous one.  Either pointer may be NULL. */
VT_HIDDEN int vt_preempt_signal(void);
VT_HIDDEN void vt_preempt_set_program_action(const struct sigaction *a,
                                             struct sigaction *old);

/* Where a signal handler runs (async-signal-safe):
 *  VT_SIGCTX_FOREIGN  not a vthread thread (runtime not started, or a
 *                     thread vthread did not create): act as NPTL would;
 *  VT_SIGCTX_G        in G *g, in its own code or in a system call: the
 *                     program's handler may run here;
 *  VT_SIGCTX_RUNTIME  inside vthread (an M's scheduler, or a G
 *                     holding runtime state; *g is that G or NULL): run no
 *                     program code; defer. */
enum { VT_SIGCTX_FOREIGN = 0, VT_SIGCTX_G = 1, VT_SIGCTX_RUNTIME = 2 };
VT_HIDDEN int vt_signal_context(vt_g **g);
/* Async-signal-safe: asks sysmon to run vt_hooks.route_signals soon (it
 * is woken at once). */
VT_HIDDEN void vt_signal_defer(void);
/* From route_signals: run it again at sysmon's next tick (at most ~1 ms
 * while Gs run, 10 ms otherwise). */
VT_HIDDEN void vt_signal_retry(void);

/* Signals for one G: the preload layer keeps the per-G pending set; core
 * makes sure the G looks at it.  After a sender has recorded a signal as
 * pending on g, vt_signal_notify(g) guarantees that g calls
 * vt_hooks.deliver_signals(g) on its own stack, with nothing of the
 * runtime held (rt_depth 0, no lock, vt_signals_hold released), before it
 * runs any more of its own code after it next leaves the runtime.
 * Returns what else the sender must do:
 *   > 0  the kernel tid of the M that runs g right now: interrupt that M
 *        with a signal (its handler runs the program's handler if g is
 *        still there in its own code; if g is inside the runtime, the
 *        runtime's exit delivers; if g has left the M, its next
 *        resumption does);
 *     0  g waits: vt_interrupt(g), so that an interruptible wait ends and
 *        its caller delivers (a non-interruptible one delivers when it
 *        ends);
 *    -1  g is runnable: nothing (it delivers when it resumes).
 * Any context, async-signal-safe. */
VT_HIDDEN pid_t vt_signal_notify(vt_g *g);
/* Between these, a signal handler on the calling G runs no program code
 * (vt_signal_context says VT_SIGCTX_RUNTIME): for preload code that holds
 * a spin lock a handler may want too.  They nest; the outermost release
 * delivers what was notified meanwhile.  No-ops for a non-G. */
VT_HIDDEN void vt_signals_hold(void);
VT_HIDDEN void vt_signals_release(void);

/* +1 when the preload layer runs a program handler inside the kernel's
 * signal frame on the calling G, -1 after it.  Meanwhile the G is not
 * switched away by a schedule point, a deferred or asynchronous
 * preemption: the kernel blocked the signal (and the handler's sa_mask)
 * on this M for the handler's length, and its sigreturn must run on this
 * M.  (A handler that blocks still parks.)  Async-signal-safe; no-op for
 * a non-G. */
VT_HIDDEN void vt_signal_frame(int d);

/* Calls fn(g, arg) for every G that has not exited, newest first, the
 * first G last, under the all-G lock (fn must not block, create or free
 * Gs; it may vt_interrupt).  Stops when fn returns false.  Caller may be
 * a non-G. */
VT_HIDDEN void vt_g_foreach(bool (*fn)(vt_g *g, void *arg), void *arg);
/* A racy snapshot of what g is doing: VT_GW_USER (running its own code),
 * VT_GW_SYSCALL (inside vt_syscall_enter .. exit), else VT_GW_OTHER
 * (parked, runnable, inside the runtime).  *tid: the M's kernel tid for
 * the first two. */
enum { VT_GW_OTHER = 0, VT_GW_USER = 1, VT_GW_SYSCALL = 2 };
VT_HIDDEN int vt_g_where(vt_g *g, pid_t *tid);

/* CPU time of g in ns: the CPU time of its M while g ran there.  The
 * switch path pays nothing until the first call (any G): from then on
 * every switch reads the M's CPU clock (a system call).  So it counts
 * from the first call in the process for the caller, and from its next
 * switch onto an M for the other Gs then running (their current stretch
 * is lost).  Any caller; g must be live. */
VT_HIDDEN int64_t vt_g_cputime(vt_g *g);

/* A G's real-time priority: 1..99 for SCHED_FIFO/SCHED_RR (the preload
 * layer's pthread_setschedparam & co.), 0 for the other policies.  Among
 * the waiters on one address, a G with a higher one is woken first (FIFO
 * among equals, and for everyone at 0: a program that never sets a
 * real-time policy pays nothing); a readied one runs next on its P.
 * Caller may be a non-G. */
VT_HIDDEN void vt_g_set_rt_prio(vt_g *g, int prio);

/* Pins the calling G to the OS thread it runs on, for the rest of its
 * life (Go's LockOSThread, done for good): from now on it runs only on
 * that thread and the thread runs nothing else.  For a G about to change
 * per-task kernel state (prctl, unshare, setns, capset ...), so that the
 * state stays with the thread that asked for it.  When the G exits, the
 * thread exits too (no other G may inherit that state).  Called before
 * the runtime starts, it pins the first G to the thread that starts it.
 * A G already pinned, and a thread that is not a G once the runtime
 * runs, are left alone.  Unpinned Gs pay one test per switch.  On a G. */
VT_HIDDEN void vt_pin_self(void);

/* True when the calling thread may not enter the scheduler: it is not a
 * G, or it is a G running inside the runtime (rt_depth) or holding a
 * runtime lock or vt_signals_hold — as when a handler vthread installed
 * raw (a traceback dump) interrupted it there and calls a wrapper.  A
 * blocking wrapper then makes the plain system call.  Async-signal-safe. */
VT_HIDDEN bool vt_inside_runtime(void);

/* Gives up the processor: the caller goes to the back of the global run
 * queue so every runnable G runs before it.  No-op for a non-G. */
VT_HIDDEN void vt_yield(void);

/* Sleeps until the deadline (CLOCK_MONOTONIC ns).  Returns 0, or EINTR when
 * woken early by vt_interrupt.  A non-G caller sleeps in the kernel. */
VT_HIDDEN int vt_sleep_until(int64_t deadline);

/* Per-G storage reserved for the preload layer (cancel state, keys, signal
 * mask, name ...).  Zeroed when the G is created.  Owned by the G itself
 * except where the preload layer documents otherwise. */
#define VT_G_EXT_SIZE 512
VT_HIDDEN void *vt_g_ext(vt_g *g);
/* Where in that area the preload layer keeps the thread's name (a
 * NUL-terminated char[16]), for debuggers (core/debug.c).  Once, at
 * start-up. */
VT_HIDDEN void vt_debug_set_name_offset(size_t off);
/* g was named (pthread_setname_np): recorded for the execution trace
 * (core/trace.c), which names g's slices after it.  A no-op unless
 * VTHREAD_TRACE is set.  Any thread. */
VT_HIDDEN void vt_trace_name(vt_g *g, const char *name);

/* Hooks the preload layer installs once, before any G exists besides the
 * first.  Each runs on the G it concerns. */
struct vt_hooks {
    /* Runs at the start of every vt_exit, on the exiting G, before TLS
     * destructors: cleanup handlers and pthread key destructors. */
    void (*on_exit)(vt_g *g);
    /* Runs after a G's TLS block was reinitialised and before fn: the
     * preload layer's per-G setup (e.g. signal mask). */
    void (*on_start)(vt_g *g);
    /* Runs on sysmon (no G, no P) after vt_signal_defer: the preload
     * layer routes the signals its handler could not deliver. */
    void (*route_signals)(void);
    /* Runs on g after vt_signal_notify(g) (see there), with rt_depth 0:
     * delivers the signals pending on g that it does not block.  Also
     * runs at such a point while process-directed signals wait for
     * route_signals (vt_signal_defer): g may take them first.  Must
     * preserve errno. */
    void (*deliver_signals)(vt_g *g);
    /* For deadlock reports (may be NULL): the tid of the thread that owns
     * the object at addr, which a G waits on for `reason` (the string it
     * gave vt_set_wait_reason), or 0 if unknown.  Reads racily; runs in
     * dumps, possibly in a signal handler: no locks, no allocation. */
    int (*wait_owner)(const void *addr, const char *reason);
};
VT_HIDDEN void vt_set_hooks(const struct vt_hooks *hooks);

/* Wakes g from an interruptible wait (vt_park with VT_PARK_INTERRUPTIBLE,
 * vt_sleep_until, vt_join): the wait returns EINTR / VT_PARK_INTERRUPTED.
 * If g is not waiting, the next interruptible wait returns at once unless
 * vt_clear_interrupt ran first.  Used for cancellation and for signals
 * directed at a parked G.  Caller may be a non-G. */
VT_HIDDEN void vt_interrupt(vt_g *g);
VT_HIDDEN void vt_clear_interrupt(vt_g *g);
/* vt_interrupt for the calling G itself, from a signal handler running on
 * it (async-signal-safe): its next interruptible wait returns at once. */
VT_HIDDEN void vt_interrupt_self_async(vt_g *g);
VT_HIDDEN bool vt_interrupt_pending(vt_g *g);

/* ------------------------------------------------------ schedule fuzzing */
/*
 * VTHREAD_SCHED=random:SEED or pct:SEED (core/fuzz.c, docs/fuzzing.md):
 * every scheduling choice comes from a generator seeded by SEED, and at
 * each schedule point the running G may be switched for another runnable
 * one.  The preload layer calls vt_sched_point where POSIX threads
 * interact: before a lock, trylock, wait, join, sleep or I/O call; after
 * an unlock, signal, post, thread creation.  Off (fifo, the default), a
 * point costs one load and a branch.
 */
VT_HIDDEN extern int vt_fuzz_mode; /* VT_FUZZ_*; set before any G but the
                                      first exists, never changed */
VT_HIDDEN void vt_fuzz_point_slow(void);
/* Any caller (a no-op for non-Gs, inside the runtime or a signal
 * handler's hold, and for pinned Gs).  Preserves errno. */
static inline void vt_sched_point(void)
{
    if (__builtin_expect(vt_fuzz_mode != 0, 0))
        vt_fuzz_point_slow();
}

/* ---------------------------------------------------------- parking lot */
/*
 * One process-wide table of wait queues keyed by address (like the kernel's
 * futex hash).  A waiter is queued only if validate() holds under the
 * queue's lock, so "check the word, then sleep" cannot lose a wake-up.
 * Waiters on one address are woken in FIFO order.  Every call may be made by
 * a non-G (it then blocks on a futex in the kernel).
 */
enum vt_park_result {
    VT_PARK_WOKEN = 0,       /* an unpark took us off the queue */
    VT_PARK_INVALID = 1,     /* validate() returned false; never queued */
    VT_PARK_TIMEOUT = 2,     /* the deadline passed */
    VT_PARK_INTERRUPTED = 3, /* vt_interrupt (only with VT_PARK_INTERRUPTIBLE) */
};
#define VT_PARK_INTERRUPTIBLE 1u

/* Parks the caller on addr.
 *  validate(ctx): runs with the queue locked; return false to not park.
 *    Must not block or park; may be NULL (always park).
 *  before_sleep(ctx): runs after the caller is queued and the queue is
 *    unlocked, just before it sleeps (e.g. to unlock a mutex); may be NULL.
 *  deadline: absolute monotonic ns, 0 = none.
 *  token: a value stored with the waiter, visible to unpark callbacks.
 *  *out_token (if non-NULL): the value an unpark handed over (see
 *    vt_unpark_one's callback), else 0. */
VT_HIDDEN int vt_park(const void *addr, bool (*validate)(void *ctx),
                      void (*before_sleep)(void *ctx), void *ctx,
                      int64_t deadline, unsigned flags, uintptr_t token,
                      uintptr_t *out_token);

struct vt_unpark_info {
    unsigned woken;        /* 0 or 1 */
    bool more_waiters;     /* waiters remain on the address after this one */
    uintptr_t token;       /* the woken waiter's park token */
};
/* Names what the calling G is about to wait for ("mutex", "condition
 * variable", ...), shown by VTHREAD_TRACEBACK dumps; a static string.
 * Cleared when the park returns.  No-op for a non-G. */
VT_HIDDEN void vt_set_wait_reason(const char *reason);

/* Wakes the oldest waiter on addr, if any.  callback(ctx, info) runs with
 * the queue locked, after the waiter was dequeued (or with woken = 0 when
 * there was none), and returns the token handed to the woken waiter.
 * callback may be NULL.  Returns the number woken (0 or 1). */
VT_HIDDEN unsigned vt_unpark_one(const void *addr,
                                 uintptr_t (*callback)(void *ctx,
                                                       struct vt_unpark_info *),
                                 void *ctx);
/* Wakes every waiter on addr (oldest first).  Returns how many. */
VT_HIDDEN unsigned vt_unpark_all(const void *addr);
/* Wakes up to nwake waiters on from and moves the rest (up to nrequeue) to
 * the queue of to, without waking them: condvar broadcast without a
 * thundering herd.  Moved waiters later return VT_PARK_WOKEN when woken on
 * `to`.  Returns the number woken + moved. */
VT_HIDDEN unsigned vt_unpark_requeue(const void *from, const void *to,
                                     unsigned nwake, unsigned nrequeue);
/* True if some waiter is queued on addr (a snapshot). */
VT_HIDDEN bool vt_park_has_waiters(const void *addr);

/* -------------------------------------------------------- blocking calls */
/*
 * Around a system call that may block in the kernel.  vt_syscall_enter()
 * marks the caller's P as "in a syscall": sysmon hands the P to another M
 * if the call outlives ~20 µs.  vt_syscall_enter_block() hands the P away at
 * once (for calls known to block long: waitpid, sigwait, flock ...).
 * vt_syscall_exit() takes a P back (its own if still free, else any idle
 * one, else the G queues itself and its M parks) before returning.
 * Both preserve errno.  No-ops for a non-G.  Calls nest: only the outermost
 * pair acts.
 */
VT_HIDDEN void vt_syscall_enter(void);
VT_HIDDEN void vt_syscall_enter_block(void);
VT_HIDDEN void vt_syscall_exit(void);

/* Waits until *fd may be ready for `events` (POLLIN or POLLOUT) — the
 * caller's non-blocking attempt failed with EAGAIN — without blocking the
 * OS thread.  Returns 0 (retry the call; readiness may be spurious),
 * ETIMEDOUT (deadline), EINTR (vt_interrupt), EBADF (the descriptor was
 * closed before the wait, or closed meanwhile and could not be kept), or
 * EPERM: the file cannot be polled (a regular file); the caller must then
 * block in the kernel (vt_syscall_enter).
 * If the program closed (or dup2'ed over) the descriptor while we waited,
 * the wait goes on as in the kernel, on the same open file: *fd is changed
 * to a private duplicate ("alias") and 0 returned; the caller retries on
 * *fd and must call vt_fd_alias_put(*fd) when its call is over.  Must be
 * called by a G. */
VT_HIDDEN int vt_wait_fd(int *fd, short events, int64_t deadline);
/* Hands back an alias vt_wait_fd gave; the last user closes it. */
VT_HIDDEN void vt_fd_alias_put(int alias);
/* Before fd is closed or replaced (close, dup2, dup3): drops its
 * registration; Gs waiting on it move to an alias (above).  Caller may be
 * a non-G. */
VT_HIDDEN void vt_fd_close(int fd);
/* vt_fd_close for every descriptor in [first, last] the netpoller knows
 * (close_range, closefrom).  Caller may be a non-G. */
VT_HIDDEN void vt_fd_close_range(unsigned first, unsigned last);
/* The runtime's own descriptors (netpoll.c): vt_fd_hide moves fd up out
 * of the program's numbers and records it; the program's close family
 * must treat a recorded one as not open.  Any caller. */
/* What the waits of a descriptor learned about its open file, so that
 * later waits skip the system calls that asked (netpoll.c, struct pd):
 * whether the program made it non-blocking, whether it has socket
 * receive / send timeouts (0 also for "not a socket").  vt_fd_prop_get
 * gives -1 when not known: after a close of the number, or after
 * vt_fd_props_changed, which the program's F_SETFL, FIONBIO and timeout
 * setsockopt calls must call.  A change made by another process sharing
 * the open file is not seen (docs/compatibility.md).  Any caller. */
enum { VT_FD_NONBLOCK, VT_FD_RCVTIMEO, VT_FD_SNDTIMEO, VT_FD_NPROPS };
VT_HIDDEN int vt_fd_prop_get(int fd, int prop, uint64_t *key);
/* key: from the vt_fd_prop_get made before asking the kernel. */
VT_HIDDEN void vt_fd_prop_set(int fd, int prop, uint64_t key, int value);
VT_HIDDEN void vt_fd_props_changed(void);
VT_HIDDEN int vt_fd_hide(int fd);
VT_HIDDEN bool vt_fd_is_internal(int fd);
VT_HIDDEN int vt_fd_internal_list(int *out, int max);

/* After a dlopen: gives every existing G the initial TLS image of modules
 * that were loaded into static TLS, which glibc only does for its own
 * threads.  Caller may be a non-G. */
VT_HIDDEN void vt_tls_after_dlopen(void);

/* Calls fn(a, b, c) so that fn sees `caller` (a return address in some
 * loaded object) as where it was called from: for glibc's dlopen and
 * dlmopen, which search from their caller's RUNPATH (core/dl.c).  Caller
 * may be a non-G. */
VT_HIDDEN void *vt_call_as(void *(*fn)(long, long, long), long a, long b,
                           long c, const void *caller);

/* ------------------------------------------------------------- failures */
/* Prints "vthread: fatal: <msg>" to stderr with a raw write and aborts.
 * For broken invariants only; bad input gets an errno instead. */
VT_HIDDEN _Noreturn void vt_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif
#endif /* VTHREAD_CORE_H */
