/*
 * pl.h — what the preload layer's files share (private; never installed).
 *
 * preload/ translates the POSIX thread API into core calls.  It includes
 * only core/vthread_core.h, core/real.h and core/pd.h (the thread
 * descriptor's offsets, shared with core); everything else it must know
 * about glibc 2.36's object layouts is written down here, once, and
 * checked with _Static_assert where the public headers allow it.
 *
 * Mode.  Every public wrapper first asks pl_on():
 *   PL_ACTIVE   vthread's implementation (also before the runtime started:
 *               every primitive here works for non-G callers, because the
 *               parking lot falls back to futexes);
 *   PL_DISABLED VTHREAD_DISABLE=1: pass straight through to vt_real.
 * The mode is decided lazily by the first wrapper called (our constructor
 * may run after other libraries' constructors that already lock mutexes or
 * create threads: the preload library is initialised late, see init.c).
 *
 * Identity.  "tid" below is the descriptor's tid field (PD_TID): the
 * synthetic per-G tid for a G, the kernel TID for any other thread.  glibc
 * uses the same value as a mutex owner, so the two agree.
 */
#ifndef VTHREAD_PL_H
#define VTHREAD_PL_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pd.h"
#include "real.h"
#include "vthread_core.h"

#define PL_PUBLIC __attribute__((visibility("default")))
/* syscall() is interposed (tid.c: a G's tid means that G); the preload
 * layer's own system calls mean exactly what they say. */
__attribute__((visibility("hidden"))) long pl_syscall(long nr, ...);
#define syscall pl_syscall
/* Another exported name for a public function: glibc also exports the
 * __pthread_* spellings (some binaries link them, e.g. __pthread_key_create,
 * which is the default version GLIBC_2.34), and they must reach the same
 * implementation as the plain names or keys and locks would be split
 * between glibc and us. */
#define PL_ALIAS(fn, name)                                                    \
    extern __typeof(fn) name                                                  \
        __attribute__((alias(#fn), copy(fn), visibility("default")))
#define PL_HIDDEN __attribute__((visibility("hidden")))
/* glibc exports these wrappers without declaring them (libcap's
 * <sys/capability.h> does); pertask.c interposes them. */
int capget(void *hdrp, void *datap);
int capset(void *hdrp, const void *datap);
#define pl_likely(x) __builtin_expect(!!(x), 1)
#define pl_unlikely(x) __builtin_expect(!!(x), 0)

/* ------------------------------------------------------------------ mode */
enum { PL_UNKNOWN = 0, PL_INITIALISING = 1, PL_ACTIVE = 2, PL_DISABLED = 3 };
PL_HIDDEN extern _Atomic int pl_mode;
PL_HIDDEN bool pl_init_slow(void);

/* True when vthread's own implementation is to be used.  Any caller, any
 * time (not from a signal handler: see NOTES.md).  False in a vfork
 * child until it execs. */
static inline bool pl_on(void)
{
    int m = atomic_load_explicit(&pl_mode, memory_order_acquire);
    if (pl_likely(m == PL_ACTIVE))
        /* a vfork child borrows its parent's memory and thread pointer:
         * plain libc for it, never the parent's runtime */
        return pl_likely(!vt_pd_self_load32(PD_VFORK)); /* arch vfork .S */
    if (m == PL_DISABLED)
        return false;
    return pl_init_slow();
}

/* ---------------------------------------------- glibc thread descriptor */
/* glibc 2.36's struct pthread: core/pd.h has the offsets (PD_*), for this
 * architecture; the descriptor is what pthread_t points to. */

/* The caller's descriptor tid (see "Identity" above).  One load. */
static inline int pl_tid(void) { return vt_pd_self_load32(PD_TID); }
/* What pthread_self() returns for the caller. */
static inline void *pl_self_pd(void) { return vt_pd_self(); }

/* cancelhandling bits (glibc 2.36 nptl/descr.h). */
#define PL_CANCELSTATE_BITMASK 0x01   /* 1 = PTHREAD_CANCEL_DISABLE */
#define PL_CANCELTYPE_BITMASK 0x02    /* 1 = PTHREAD_CANCEL_ASYNCHRONOUS */
#define PL_CANCELING_BITMASK 0x04
#define PL_CANCELED_BITMASK 0x08
#define PL_EXITING_BITMASK 0x10
#define PL_TERMINATED_BITMASK 0x20
/* glibc's cancel_enabled_and_canceled(). */
static inline bool pl_cancel_acts(int ch)
{
    return (ch & (PL_CANCELSTATE_BITMASK | PL_CANCELED_BITMASK |
                  PL_EXITING_BITMASK | PL_TERMINATED_BITMASK)) ==
           PL_CANCELED_BITMASK;
}
/* The caller's cancelhandling (one load through %fs). */
static inline int pl_self_cancelhandling(void)
{
    return vt_pd_self_load32(PD_CANCELHANDLING);
}

static inline void pl_relax(void) { vt_arch_relax(); }

/* --------------------------------------------------- glibc object layouts */
/* pthread_mutex_t.__data (struct __pthread_mutex_s) */
#if defined(__x86_64__)
_Static_assert(sizeof(pthread_mutex_t) == 40, "glibc mutex size");
#else /* the generic layout: the same fields, padded to 48 bytes */
_Static_assert(sizeof(pthread_mutex_t) == 48, "glibc mutex size");
#endif
_Static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "mutex lock");
_Static_assert(offsetof(pthread_mutex_t, __data.__count) == 4, "mutex count");
_Static_assert(offsetof(pthread_mutex_t, __data.__owner) == 8, "mutex owner");
_Static_assert(offsetof(pthread_mutex_t, __data.__nusers) == 12, "nusers");
_Static_assert(offsetof(pthread_mutex_t, __data.__kind) == 16, "mutex kind");
/* __kind bits (glibc pthreadP.h) */
#define PL_MUTEX_KIND_MASK 3          /* normal, recursive, errorcheck, adaptive */
#define PL_MUTEX_ROBUST 16
#define PL_MUTEX_PI 32
#define PL_MUTEX_PP 64
#define PL_MUTEX_PSHARED 128
#define PL_MUTEX_ELISION_FLAGS (256 | 512)

_Static_assert(sizeof(pthread_cond_t) == 48, "glibc condvar size");
_Static_assert(offsetof(pthread_cond_t, __data.__wrefs) == 36, "cond wrefs");
/* __wrefs bits (glibc pthreadP.h) */
#define PL_COND_SHARED_MASK 1u
#define PL_COND_CLOCK_MONOTONIC_MASK 2u

_Static_assert(sizeof(pthread_rwlock_t) == 56, "glibc rwlock size");
_Static_assert(offsetof(pthread_rwlock_t, __data.__cur_writer) == 24, "cw");
_Static_assert(offsetof(pthread_rwlock_t, __data.__shared) == 28, "shared");
_Static_assert(offsetof(pthread_rwlock_t, __data.__flags) == 48, "flags");

_Static_assert(sizeof(pthread_barrier_t) == 32, "glibc barrier size");
#if defined(__x86_64__)
_Static_assert(sizeof(pthread_attr_t) == 56, "glibc attr size");
#else
_Static_assert(sizeof(pthread_attr_t) == 64, "glibc attr size");
#endif

/* glibc's internal struct pthread_attr (nptl/internaltypes.h, 2.32+).  Read
 * only where the public getters hide what we need (whether a stack size
 * was set at all: pthread_attr_getstacksize reports the default instead of
 * 0) and written only by pthread_getattr_np, as glibc's own does. */
struct pl_glibc_attr {
    struct sched_param schedparam;
    int schedpolicy;
    int flags;
    size_t guardsize;
    void *stackaddr;                   /* top of the stack, if FLAG_STACKADDR */
    size_t stacksize;                  /* 0 = default */
    void *extension;
    void *unused;
};
#define PL_ATTR_FLAG_STACKADDR 0x0008
_Static_assert(sizeof(struct pl_glibc_attr) <= sizeof(pthread_attr_t),
               "attr layout"); /* 56 of 64 bytes on aarch64 */

/* ---------------------------------------------------------------- time */
#define PL_NS 1000000000LL

static inline bool pl_ts_valid(const struct timespec *ts)
{
    return ts->tv_nsec >= 0 && ts->tv_nsec < PL_NS;
}

/* Converts an absolute time on `clock` to a vt_now() deadline.  Returns 1
 * (already past) for times before now, 0 (= no deadline) when the time is
 * too far away to represent.  The clock must be one of REALTIME,
 * MONOTONIC, BOOTTIME (caller checked); a later change of the realtime
 * clock is not followed (NOTES.md). */
PL_HIDDEN int64_t pl_deadline_abs(clockid_t clock, const struct timespec *ts);
/* now + ts (a relative interval, valid). 0 when too far away. */
PL_HIDDEN int64_t pl_deadline_rel(const struct timespec *ts);
/* The clocks glibc's futex-based waits accept (REALTIME, MONOTONIC). */
static inline bool pl_futex_clock_ok(clockid_t c)
{
    return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC;
}

/* ------------------------------------------------------------ park tokens */
/* A park token 0 means "never hand a lock to me" (condvar waiters, which a
 * broadcast may requeue onto a mutex); a mutex waiter's token is the time
 * its wait began, never 0.  An unpark returns PL_TOKEN_HANDOFF when it
 * passed the lock itself to the woken waiter. */
#define PL_TOKEN_HANDOFF ((uintptr_t)1)

/* An interruptible wait returned VT_PARK_INTERRUPTED / EINTR (or is about
 * to be entered): consume the interrupt, run the signal handlers pending on
 * the calling G (signal.c: pthread_kill/pthread_sigqueue to a G that was
 * not running), then act on a pending cancellation if it is enabled
 * (does not return then: the G unwinds with PTHREAD_CANCELED).
 * Returns what the wait should do:
 *   PL_INTR_NONE     no handler ran: resume the wait (spurious interrupt,
 *                    or a cancellation that is disabled)
 *   PL_INTR_RESTART  handlers ran, all installed with SA_RESTART
 *   PL_INTR_EINTR    a handler without SA_RESTART ran
 * Condvar waits and mutex locks always resume; sleeps and sem_wait return
 * EINTR whenever a handler ran (as the kernel does for nanosleep and
 * futex waits); I/O restarts only for PL_INTR_RESTART.
 * A condvar wait calls it after re-acquiring the mutex (POSIX: cleanup
 * handlers run with the mutex held).  Must be called by a G (no-op
 * otherwise). */
enum { PL_INTR_NONE = 0, PL_INTR_RESTART = 1, PL_INTR_EINTR = 2 };
PL_HIDDEN int pl_interrupted(void);
/* The same for waits POSIX does not let a handler interrupt (mutex and
 * rwlock locks, barrier waits): runs the handlers, acts on an enabled
 * asynchronous cancellation only (these are no cancellation points); the
 * caller then waits on. */
PL_HIDDEN void pl_wait_interrupted(void);
/* A cancellation point's entry check: unwinds with PTHREAD_CANCELED when
 * the caller has a pending, enabled cancellation (glibc's
 * pthread_testcancel). */
static inline void pl_testcancel(void)
{
    if (pl_unlikely(pl_cancel_acts(pl_self_cancelhandling())))
        (void)pl_interrupted();
}
/* signal.c: runs the handlers pending on g that its current mask does not
 * block (on the calling M, in g's context).  Returns PL_INTR_*. */
PL_HIDDEN int pl_signals_deliver(vt_g *g);
/* The calling OS thread's blocked set, and recording a mask as a G's own
 * when it has none (signal.c). */
PL_HIDDEN uint64_t pl_signals_thread_mask(void);
PL_HIDDEN void pl_signals_adopt(vt_g *g, uint64_t m);

/* ------------------------------------------------------- per-G state */
/* Lives in vt_g_ext(g) (VT_G_EXT_SIZE bytes, zeroed at G creation).
 * Owned by the G itself, except: `flags` is atomic; `lock` guards name,
 * policy, prio and affinity, which other threads may set
 * (pthread_setname_np(other), pthread_setschedparam(other), ...);
 * `sigpend`/`sigqueued` are atomic and `sigval` is written by senders
 * (pthread_sigqueue) before they set the pending bit. */
#define PL_G_DETACHED 1u   /* pthread_detach ran (or created detached) */
#define PL_G_NAMED 2u      /* name[] is set */
#define PL_G_SCHED 4u      /* policy/prio recorded */
#define PL_G_AFFINITY 8u   /* affinity recorded */
#define PL_G_SIGMASK 16u   /* sigmask recorded (signal.c) */
#define PL_G_NICE 32u      /* nice recorded (tid.c) */
struct pl_gext {
    _Atomic unsigned flags;
    _Atomic int lock;               /* tiny spin lock, see pl_gext_lock */
    int policy, prio;
    _Atomic(vt_g *) joining;        /* the G this one is joining, or NULL */
    /* Signals sent to this G (pthread_kill, pthread_sigqueue) while it was
     * not running: bit (sig - 1); delivered by pl_interrupted (signal.c).
     * sigval[] holds the value of a queued real-time signal (SIGRTMIN-2 ..
     * 64 indexed from 32; one value per signal, not a queue). */
    _Atomic uint64_t sigpend;
    _Atomic uint64_t sigqueued;     /* bit set: sent with pthread_sigqueue */
    uint64_t sigmask;               /* the G's own mask, if PL_G_SIGMASK */
    union sigval sigval[33];
    /* The part of sigpend that is a process-directed signal sysmon routed
     * here (sigroute.c): delivered from the process slot, not sigval. */
    _Atomic uint64_t sigrouted;
    /* While the G waits in sigwait & co: the set it waits for and the
     * kernel tid of the M it blocks (router's last resort). */
    _Atomic uint64_t sigwaitset;
    _Atomic int sigwaittid;
    /* sigsuspend, pause, ppoll/epoll_pwait/pselect with a mask: bit 0 while
     * the G is inside one; bit 1 once a handler ran in it directly (the
     * kernel delivered to its M: sigroute.c's entry), so the call returns
     * EINTR as the kernel's would (pl_interrupted reports it). */
    _Atomic unsigned sigcall;
    /* G-private: inside pl_signals_deliver (core's deliver hook must not
     * nest into it: the outer call's result decides EINTR). */
    bool delivering;
    char name[16];
    cpu_set_t affinity;
    int nice;                       /* under `lock`, if PL_G_NICE */
};
_Static_assert(sizeof(struct pl_gext) <= VT_G_EXT_SIZE, "ext too big");

static inline struct pl_gext *pl_gext(vt_g *g)
{
    return (struct pl_gext *)vt_g_ext(g);
}
PL_HIDDEN void pl_gext_lock(struct pl_gext *x);
PL_HIDDEN void pl_gext_unlock(struct pl_gext *x);

/* ------------------------------------------- process-directed signals */
/* sigroute.c: the program's signal actions, and process-directed signals
 * for the handlers it installed (see the comment at its top). */
static inline uint64_t pl_sigbit(int sig) { return (uint64_t)1 << (sig - 1); }
/* A signal number glibc lets a program use: 1..64 but its own 32, 33. */
static inline bool pl_sig_valid(int sig)
{
    return sig >= 1 && sig <= 64 && sig != 32 && sig != 33;
}
/* A mask as the kernel's 64-bit word, and back (signals 1..64). */
static inline uint64_t pl_sigword(const sigset_t *s)
{
    uint64_t w;
    memcpy(&w, s, sizeof w);
    return w;
}
static inline sigset_t pl_sigset(uint64_t w)
{
    sigset_t s;
    sigemptyset(&s);
    memcpy(&s, &w, sizeof w);
    return s;
}
/* The siginfo this process's kill/sigqueue would carry: sig, code, our pid
 * and uid, value. */
static inline siginfo_t pl_siginfo(int sig, int code, union sigval v)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = code;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value = v;
    return si;
}
/* Signals in vthread's hands: arrived, not yet taken by some G. */
PL_HIDDEN uint64_t pl_sig_process_pending(void);
/* The kernel's set pending on the whole process (ShdPnd in /proc), which
 * holds a process-directed signal until the thread the kernel chose has
 * taken it.  False if /proc cannot tell.  signal.c. */
PL_HIDDEN bool pl_sig_kernel_shared(uint64_t *out);
/* Takes a process-pending signal in `want` that no G has been given yet;
 * returns its number or 0.  With info: its siginfo is copied out and the
 * signal is consumed (sigwait); without: the caller must mark it routed
 * and pending on itself, and deliver it (pl_signals_deliver does). */
PL_HIDDEN int pl_sig_take_held(uint64_t want, siginfo_t *info);
/* The calling G got a tagged instance from the kernel (sigwaitinfo):
 * replaces *info with the original one; true if it was tagged. */
PL_HIDDEN bool pl_sig_untag(int sig, siginfo_t *info);
/* g no longer takes the routed signals in `set` (it blocked them or is
 * exiting): they go back to sysmon to find another G. */
PL_HIDDEN void pl_sig_give_back(vt_g *g, uint64_t set);
/* signal.c: the calling G's mask is *m for the length of one call
 * (ppoll, epoll_pwait, pselect).  enter returns true when a pending
 * signal's handler ran at once (the call then fails with EINTR). */
PL_HIDDEN bool pl_sigmask_enter(const sigset_t *m, uint64_t *old);
PL_HIDDEN void pl_sigmask_leave(uint64_t old);
/* sysmon's routing pass (vt_hooks.route_signals). */
PL_HIDDEN void pl_sig_route(void);
/* The program's action for sig says "a handler runs" (not SIG_DFL/IGN). */
PL_HIDDEN bool pl_sig_handled(int sig, bool *restart);
/* Takes the slot of a process-directed signal routed to a G (copies its
 * siginfo and frees the slot).  sigroute.c. */
PL_HIDDEN void pl_sig_slot_take(int sig, siginfo_t *info);

/* ---------------------------------------------------- one delivery path */
/* signal.c.  Every sender to a G (pthread_kill, pthread_sigqueue, tgkill
 * with the G's tid, sysmon's routing of a process-directed signal) first
 * records the signal pending on the G (sigpend, and sigrouted or
 * sigqueued/sigval), then calls pl_sig_kick: core notes it on the G
 * (vt_signal_notify) and, if the G is running, the M that runs it gets
 * the signal itself as a "kick": SI_QUEUE from our pid with si_value =
 * &pl_kick_token (an address no program sends; not si_errno, which
 * qemu-user's signal emulation drops).  The kick runs the
 * program's handler at once if it lands in the target's own code
 * (pl_sig_claim decides who delivers: whoever clears the pending bit);
 * else the target delivers itself when it leaves the runtime or resumes
 * (core's deliver_signals hook: pl_signals_deliver).  A G that is not
 * running is vt_interrupt()ed: its interruptible wait delivers. */
PL_HIDDEN extern const char pl_kick_token;
PL_HIDDEN void pl_sig_kick(vt_g *g, int sig);
/* A thread-directed signal to G g (not the caller): recorded and kicked,
 * or, when the program neither handles nor blocks it, left to the kernel
 * (default action or ignore). */
PL_HIDDEN void pl_sig_to_g(vt_g *g, int sig, bool queued, union sigval v);
/* pthread_kill / pthread_sigqueue to G g (any G, the caller too), with
 * glibc's checks: 0 or EINVAL.  sig 0 only checks. */
PL_HIDDEN int pl_sig_send_g(vt_g *g, int sig, bool queued, union sigval v);
/* thread.c: may a G be given this policy and priority?  0, EINVAL (bad
 * policy or priority) or EPERM (a real-time policy without the
 * privilege the kernel would ask for). */
PL_HIDDEN int pl_sched_check(int policy, int prio);
/* tid.c: the CPU-time clock of G g (pthread_getcpuclockid). */
PL_HIDDEN int pl_g_cpuclock(vt_g *g, clockid_t *clk);
/* g's recorded mask, for any caller; a G that has none yet (the first,
 * until its first pthread_create: pl_signals_adopt) is taken as blocking
 * nothing. */
PL_HIDDEN uint64_t pl_g_mask_now(vt_g *g);
/* True when info is a kick for g (g may be NULL). */
static inline bool pl_sig_is_kick(const siginfo_t *info)
{
    return info->si_code == SI_QUEUE &&
           info->si_value.sival_ptr == (void *)&pl_kick_token;
}
/* Clears sig from g's pending set; if it was set, fills *info with what
 * the handler must see and returns true.  Any context. */
PL_HIDDEN bool pl_sig_claim(vt_g *g, int sig, siginfo_t *info);
/* core's deliver_signals hook. */
PL_HIDDEN void pl_signals_deliver_hook(vt_g *g);

/* ----------------------------------------------------- cross-file calls */
/* init.c: the exit hook's pieces */
PL_HIDDEN void pl_keys_on_exit(void);       /* key.c */
PL_HIDDEN void pl_mutex_robust_exit(void);  /* mutex.c */
PL_HIDDEN void pl_keys_thread_exit(void *); /* key.c, non-G threads */

/* mutex.c, for cond.c.  "cond" variants neither change __nusers (glibc's
 * condvar keeps the waiter counted as a mutex user) nor check anything
 * but what glibc's __pthread_mutex_unlock_usercnt(m, 0) checks. */
PL_HIDDEN bool pl_mutex_is_ours(const pthread_mutex_t *m);
/* vt_hooks.wait_owner: for a G parked on a mutex of ours (the park
 * address is the mutex), the tid in its __owner; else 0.  Racy, no
 * locks (deadlock reports). */
PL_HIDDEN int pl_mutex_wait_owner(const void *addr, const char *reason);
PL_HIDDEN int pl_mutex_cond_unlock(pthread_mutex_t *m);
PL_HIDDEN int pl_mutex_cond_lock(pthread_mutex_t *m);
/* Marks the mutex as having parked waiters after a condvar requeued some
 * onto it (see cond.c, "broadcast"). */
PL_HIDDEN void pl_mutex_after_requeue(pthread_mutex_t *m);

#endif /* VTHREAD_PL_H */
