/*
 * tid.c — thread identity: gettid, and the interfaces that take a tid.
 *
 * A G's tid is the synthetic one in its descriptor (core: unique among
 * live Gs, above any kernel TID, the first G keeps the process's real
 * one).  NPTL programs learn tids from gettid() or syscall(SYS_gettid) and
 * hand them to the kernel; under vthread the kernel does not know them,
 * and the OS thread that would answer for "the calling thread" (pid 0) is
 * an M that runs other Gs too.  So, for a G's tid, or 0 from a G:
 *  - gettid, syscall(SYS_gettid): the G's tid;
 *  - tgkill(getpid(), tid, sig), syscall(SYS_tgkill / SYS_tkill): the
 *    signal goes to that G (signal.c's pl_sig_to_g), as pthread_kill;
 *  - sched_{set,get}affinity, sched_{set,get}scheduler, sched_{set,get}param:
 *    what pthread_{set,get}affinity_np and pthread_{set,get}schedparam do
 *    for that G (recorded per G, thread.c);
 *  - setpriority/getpriority(PRIO_PROCESS, tid): the G's own nice value,
 *    recorded in pl_gext (new Gs inherit their creator's, as NPTL threads
 *    inherit their creator task's).  Recorded, not applied: an M runs
 *    many Gs;
 *  - CLOCK_THREAD_CPUTIME_ID, pthread_getcpuclockid's clock,
 *    getrusage(RUSAGE_THREAD): the G's own CPU time (below).
 * Any other tid, and callers that are not Gs, get the kernel's answer.
 * syscall() itself is interposed for those numbers; everything else
 * passes through unchanged.  The preload layer's own syscall() calls use
 * pl_syscall (pl.h renames them), which never reinterprets.
 */
#include <errno.h>
#include <stdarg.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pl.h"

#undef syscall

#include <signal.h>
int pidfd_send_signal(int, int, siginfo_t *, unsigned); /* sigroute.c */

long pl_syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    long r = vt_sys6(nr, a, b, c, d, e, f);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static long fail(int e)
{
    errno = e;
    return -1;
}

/* ------------------------------------------------------- tid -> G */

struct find {
    pid_t tid;
    bool (*fn)(vt_g *g, void *arg);
    void *arg;
    bool found;
};

static bool find_cb(vt_g *g, void *arg)
{
    struct find *f = arg;
    if (vt_g_tid(g) != f->tid)
        return true;
    f->found = true;
    if (f->fn)
        f->fn(g, f->arg);
    return false;
}

/* Calls fn(g, arg) (if fn) for the live G whose tid is tid (0: the
 * calling G), under the all-G lock so that g cannot be freed meanwhile;
 * fn must not block.  False when no G has that tid (or pid 0 from a
 * non-G). */
static bool with_g(pid_t tid, bool (*fn)(vt_g *g, void *arg), void *arg)
{
    if (!pl_on())
        return false;
    vt_g *self = vt_self();
    if (tid == 0 || (self && vt_g_tid(self) == tid)) {
        if (!self)
            return false;
        if (fn)
            fn(self, arg);
        return true;
    }
    if (tid < 0 || !vt_runtime_active())
        return false;
    struct find f = {.tid = tid, .fn = fn, .arg = arg};
    vt_g_foreach(find_cb, &f);
    return f.found;
}

/* ------------------------------------------------------------ gettid */

PL_PUBLIC pid_t gettid(void)
{
    vt_g *g = pl_on() ? vt_self() : NULL;
    return g ? vt_g_tid(g) : (pid_t)vt_sys0(SYS_gettid);
}

/* ---------------------------------------------------- tgkill, tkill */

struct kill_req {
    int sig;
    int err;
};

static bool kill_cb(vt_g *g, void *arg)
{
    struct kill_req *k = arg;
    k->err = pl_sig_send_g(g, k->sig, false, (union sigval){0});
    return false;
}

static long do_tgkill(pid_t tgid, pid_t tid, int sig, bool tkill)
{
    if (tkill ? tid > 0 : (tgid > 0 && tid > 0 && tgid == getpid())) {
        struct kill_req k = {.sig = sig};
        if (with_g(tid, kill_cb, &k))
            return k.err ? fail(k.err) : 0;
    }
    return tkill ? pl_syscall(SYS_tkill, tid, sig)
                 : pl_syscall(SYS_tgkill, tgid, tid, sig);
}

PL_PUBLIC int tgkill(pid_t tgid, pid_t tid, int sig)
{
    return (int)do_tgkill(tgid, tid, sig, false);
}

/* ------------------------------------------- scheduling by tid */

struct sched_req {
    int op;
    int policy;
    struct sched_param param;
    size_t size;
    const cpu_set_t *in;
    cpu_set_t *out;
    int err;
};
enum { SR_GETAFF, SR_SETAFF, SR_GETSCHED, SR_SETSCHED, SR_SETPARAM };

static bool sched_cb(vt_g *g, void *arg)
{
    struct sched_req *r = arg;
    pthread_t th = (pthread_t)vt_g_descriptor(g);
    switch (r->op) {
    case SR_GETAFF:
        r->err = pthread_getaffinity_np(th, r->size, r->out);
        break;
    case SR_SETAFF:
        r->err = pthread_setaffinity_np(th, r->size, r->in);
        break;
    case SR_GETSCHED:
        r->err = pthread_getschedparam(th, &r->policy, &r->param);
        break;
    case SR_SETSCHED:
        r->err = pl_sched_check(r->policy, r->param.sched_priority);
        if (!r->err)
            r->err = pthread_setschedparam(th, r->policy, &r->param);
        break;
    case SR_SETPARAM: {
        struct sched_param cur;
        r->err = pthread_getschedparam(th, &r->policy, &cur);
        if (!r->err)
            r->err = pl_sched_check(r->policy, r->param.sched_priority);
        if (!r->err)
            r->err = pthread_setschedparam(th, r->policy, &r->param);
        break;
    }
    }
    return false;
}

/* Runs r on the G with tid pid; *handled = false when pid is not a G's. */
static long sched_g(pid_t pid, struct sched_req *r, bool *handled)
{
    *handled = pid >= 0 && with_g(pid, sched_cb, r);
    if (!*handled)
        return 0;
    return r->err ? fail(r->err) : 0;
}

PL_PUBLIC int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set)
{
    struct sched_req r = {.op = SR_GETAFF, .size = size, .out = set};
    bool h;
    long v = sched_g(pid, &r, &h);
    if (h)
        return (int)v;
    long n = pl_syscall(SYS_sched_getaffinity, pid, size, set);
    if (n < 0)
        return -1;
    /* glibc's wrapper: clear what the kernel did not write */
    memset((char *)set + n, 0, size - (size_t)n);
    return 0;
}

PL_PUBLIC int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t *set)
{
    struct sched_req r = {.op = SR_SETAFF, .size = size, .in = set};
    bool h;
    if (pid == 0 && pl_on()) {
        /* The calling task's own affinity: pin the G to its M, which
         * then really runs where it asked (pertask.c), and record it for
         * pthread_getaffinity_np & co. */
        vt_pin_self();
        if (pl_syscall(SYS_sched_setaffinity, 0, size, set) < 0)
            return -1;
        return (int)sched_g(0, &r, &h);
    }
    long v = sched_g(pid, &r, &h);
    return h ? (int)v : (int)pl_syscall(SYS_sched_setaffinity, pid, size, set);
}

PL_PUBLIC int sched_getscheduler(pid_t pid)
{
    struct sched_req r = {.op = SR_GETSCHED};
    bool h;
    long v = sched_g(pid, &r, &h);
    if (h)
        return v < 0 ? -1 : r.policy;
    return (int)pl_syscall(SYS_sched_getscheduler, pid);
}

PL_PUBLIC int sched_getparam(pid_t pid, struct sched_param *param)
{
    struct sched_req r = {.op = SR_GETSCHED};
    bool h;
    long v = sched_g(pid, &r, &h);
    if (h) {
        if (v == 0)
            *param = r.param;
        return (int)v;
    }
    return (int)pl_syscall(SYS_sched_getparam, pid, param);
}

PL_PUBLIC int sched_setscheduler(pid_t pid, int policy,
                                 const struct sched_param *param)
{
    if (!param || pid < 0)
        return (int)fail(EINVAL);
    struct sched_req r = {.op = SR_SETSCHED,
                          .policy = policy & ~SCHED_RESET_ON_FORK,
                          .param = *param};
    bool h;
    long v = sched_g(pid, &r, &h);
    return h ? (int)v
             : (int)pl_syscall(SYS_sched_setscheduler, pid, policy, param);
}

PL_PUBLIC int sched_setparam(pid_t pid, const struct sched_param *param)
{
    if (!param || pid < 0)
        return (int)fail(EINVAL);
    struct sched_req r = {.op = SR_SETPARAM, .param = *param};
    bool h;
    long v = sched_g(pid, &r, &h);
    return h ? (int)v : (int)pl_syscall(SYS_sched_setparam, pid, param);
}

/* ------------------------------------------------------ nice values */

struct nice_req {
    bool set;
    int value;
    int err;
};

/* The kernel's nice of the calling OS thread: what a G that never set its
 * own inherited (every M runs with the process's). */
static int kernel_nice(void)
{
    long r = vt_sys2(SYS_getpriority, PRIO_PROCESS, 0);
    return r < 0 ? 0 : 20 - (int)r;
}

static bool nice_cb(vt_g *g, void *arg)
{
    struct nice_req *n = arg;
    struct pl_gext *x = pl_gext(g);
    pl_gext_lock(x);
    int cur = (atomic_load(&x->flags) & PL_G_NICE) ? x->nice : kernel_nice();
    if (!n->set) {
        n->value = cur;
    } else {
        int v = n->value < -20 ? -20 : n->value > 19 ? 19 : n->value;
        /* the kernel's rule: lowering the nice value needs CAP_SYS_NICE
         * or room under RLIMIT_NICE */
        struct rlimit rl;
        if (v < cur && geteuid() != 0 &&
            (getrlimit(RLIMIT_NICE, &rl) != 0 ||
             (rlim_t)(20 - v) > rl.rlim_cur)) {
            n->err = EACCES;
        } else {
            x->nice = v;
            atomic_fetch_or(&x->flags, PL_G_NICE);
        }
    }
    pl_gext_unlock(x);
    return false;
}

static bool nice_g(int which, id_t who, struct nice_req *n)
{
    return which == PRIO_PROCESS && (int)who >= 0 &&
           with_g((pid_t)who, nice_cb, n);
}

PL_PUBLIC int getpriority(__priority_which_t which, id_t who)
{
    struct nice_req n = {.set = false};
    if (nice_g(which, who, &n))
        return n.value;
    long r = pl_syscall(SYS_getpriority, which, who);
    return r < 0 ? -1 : 20 - (int)r; /* the kernel's is 20 - nice */
}

PL_PUBLIC int setpriority(__priority_which_t which, id_t who, int prio)
{
    struct nice_req n = {.set = true, .value = prio};
    if (which == PRIO_PROCESS && who == 0 && pl_on()) {
        /* the calling task's own nice value: pin, apply, record (as
         * sched_setaffinity(0, ...) above) */
        vt_pin_self();
        if (pl_syscall(SYS_setpriority, which, 0, prio) < 0)
            return -1;
        nice_g(which, 0, &n);
        return 0;
    }
    if (nice_g(which, who, &n))
        return n.err ? (int)fail(n.err) : 0;
    return (int)pl_syscall(SYS_setpriority, which, who, prio);
}

/* --------------------------------------------------- CPU-time clocks */
/*
 * A G's CPU time is core's (vt_g_cputime: counted from the process's
 * first request).  CLOCK_THREAD_CPUTIME_ID from a G, and the clock
 * pthread_getcpuclockid gives for a G — the kernel's encoding of a
 * thread CPU clock, MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED), with the
 * G's tid, which only we can read — answer with it; every other clock
 * is glibc's.
 */
#define SYN_TID0 0x10000000 /* core's synthetic tids: 2^27 from here */
#define TID_LIMIT 0x400000  /* PID_MAX_LIMIT: real tids are below */

/* The encoding leaves 28 bits for the tid (a negative 32-bit clockid):
 * a synthetic tid is named by TID_LIMIT + its offset, which no real tid
 * can be. */
static clockid_t g_clock(pid_t tid)
{
    unsigned k = tid >= SYN_TID0 ? (unsigned)(tid - SYN_TID0) + TID_LIMIT
                                 : (unsigned)tid;
    return (clockid_t)((~k << 3) | 6);
}

/* The tid a per-thread CPU clock names, or 0 for any other clock. */
static pid_t clock_tid(clockid_t c)
{
    if (c >= 0 || (c & 7) != 6)
        return 0;
    pid_t k = (pid_t)~(c >> 3);
    return k >= TID_LIMIT ? k - TID_LIMIT + SYN_TID0 : k;
}

struct cpu_req {
    int64_t ns;
};

static bool cpu_cb(vt_g *g, void *arg)
{
    ((struct cpu_req *)arg)->ns = vt_g_cputime(g);
    return false;
}

/* True if c is a G's CPU clock (CLOCK_THREAD_CPUTIME_ID from a G); *ns is
 * its time. */
static bool g_cputime(clockid_t c, int64_t *ns)
{
    pid_t tid;
    if (c == CLOCK_THREAD_CPUTIME_ID)
        tid = 0;
    else if (!(tid = clock_tid(c)))
        return false;
    struct cpu_req r;
    if (!pl_on() || !with_g(tid, cpu_cb, &r))
        return false;
    *ns = r.ns;
    return true;
}

PL_PUBLIC int clock_gettime(clockid_t c, struct timespec *ts)
{
    int64_t ns;
    if (pl_unlikely(c == CLOCK_THREAD_CPUTIME_ID || c < 0) &&
        g_cputime(c, &ns)) {
        ts->tv_sec = ns / PL_NS;
        ts->tv_nsec = ns % PL_NS;
        return 0;
    }
    if (pl_unlikely(!vt_real.clock_gettime)) /* before our constructor */
        return (int)pl_syscall(SYS_clock_gettime, c, ts);
    return vt_real.clock_gettime(c, ts);
}
PL_ALIAS(clock_gettime, __clock_gettime);

PL_PUBLIC int clock_getres(clockid_t c, struct timespec *ts)
{
    int64_t ns;
    if (pl_unlikely(c == CLOCK_THREAD_CPUTIME_ID || c < 0) &&
        g_cputime(c, &ns)) {
        if (ts) {
            ts->tv_sec = 0;
            ts->tv_nsec = 1;
        }
        return 0;
    }
    if (pl_unlikely(!vt_real.clock_getres))
        return (int)pl_syscall(SYS_clock_getres, c, ts);
    return vt_real.clock_getres(c, ts);
}

/* RUSAGE_THREAD for a G: its CPU time, split into user and system time
 * in the proportion its M's show; the other fields are the M's. */
PL_PUBLIC int getrusage(__rusage_who_t who, struct rusage *ru)
{
    int r = vt_real.getrusage ? vt_real.getrusage(who, ru)
                              : (int)pl_syscall(SYS_getrusage, who, ru);
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (r != 0 || who != RUSAGE_THREAD || !g)
        return r;
    int64_t ns = vt_g_cputime(g);
    int64_t u = (int64_t)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec;
    int64_t s = (int64_t)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec;
    int64_t us = ns / 1000;
    int64_t uu = u + s > 0 ? (int64_t)((double)us * u / (u + s)) : us;
    ru->ru_utime.tv_sec = uu / 1000000;
    ru->ru_utime.tv_usec = uu % 1000000;
    ru->ru_stime.tv_sec = (us - uu) / 1000000;
    ru->ru_stime.tv_usec = (us - uu) % 1000000;
    return 0;
}

int pl_g_cpuclock(vt_g *g, clockid_t *clk)
{
    *clk = g_clock(vt_g_tid(g));
    return 0;
}

/* ----------------------------------------------------------- syscall */

PL_PUBLIC long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    if (pl_on()) {
        switch (nr) {
        case SYS_gettid:
            return gettid();
        case SYS_tgkill:
            return do_tgkill((pid_t)a, (pid_t)b, (int)c, false);
        case SYS_tkill:
            return do_tgkill(0, (pid_t)a, (int)b, true);
        case SYS_sched_getaffinity: {
            /* the system call returns the size of the kernel's mask: ask
             * it for the caller's OS thread, then answer for the G */
            struct sched_req r = {.op = SR_GETAFF, .size = (size_t)b,
                                  .out = (cpu_set_t *)c};
            if ((pid_t)a < 0 || !with_g((pid_t)a, NULL, NULL))
                break;
            long n = pl_syscall(SYS_sched_getaffinity, 0, b, c);
            bool h;
            if (n < 0 || sched_g((pid_t)a, &r, &h) != 0)
                return -1;
            return n;
        }
        case SYS_sched_setaffinity:
            return sched_setaffinity((pid_t)a, (size_t)b, (const cpu_set_t *)c);
        case SYS_sched_getscheduler:
            return sched_getscheduler((pid_t)a);
        case SYS_sched_getparam:
            return sched_getparam((pid_t)a, (struct sched_param *)b);
        case SYS_sched_setscheduler:
            return sched_setscheduler((pid_t)a, (int)b,
                                      (const struct sched_param *)c);
        case SYS_sched_setparam:
            return sched_setparam((pid_t)a, (const struct sched_param *)b);
        case SYS_getpriority: {
            struct nice_req n = {.set = false};
            if (nice_g((int)a, (id_t)b, &n))
                return 20 - n.value;
            break;
        }
        case SYS_setpriority:
            return setpriority((int)a, (id_t)b, (int)c);
        case SYS_clock_gettime:
            return clock_gettime((clockid_t)a, (struct timespec *)b);
        case SYS_getrusage:
            return getrusage((int)a, (struct rusage *)b);
        /* per-task state: pertask.c pins the G first */
        case SYS_prctl:
            return prctl((int)a, b, c, d, e);
        case SYS_unshare:
            return unshare((int)a);
        case SYS_setns:
            return setns((int)a, (int)b);
        case SYS_capget:
            return capget((void *)a, (void *)b);
        case SYS_capset:
            return capset((void *)a, (const void *)b);
        case SYS_seccomp:
            /* SECCOMP_FILTER_FLAG_TSYNC (1) sets every thread's filter
             * (every M's): nothing per task then */
            if (!(b & 1))
                vt_pin_self();
            break;
        case SYS_kill:
            return kill((pid_t)a, (int)b);
        /* descriptor flags and socket timeouts the waits remember:
         * retired after the call (see io.c, fcntl) */
        case SYS_fcntl:
        case SYS_ioctl:
        case SYS_setsockopt: {
            long r = pl_syscall(nr, a, b, c, d, e, f);
            vt_fd_props_changed();
            return r;
        }
        /* the netpoller must see descriptors go (io.c) */
        case SYS_close:
            return close((int)a);
        case SYS_close_range:
            return close_range((unsigned)a, (unsigned)b, (int)c);
#ifdef SYS_dup2 /* not on aarch64 */
        case SYS_dup2:
            return dup2((int)a, (int)b);
#endif
        case SYS_dup3:
            return dup3((int)a, (int)b, (int)c);
        case SYS_pidfd_send_signal:
            return pidfd_send_signal((int)a, (int)b, (siginfo_t *)c,
                                     (unsigned)d);
        }
    }
    return pl_syscall(nr, a, b, c, d, e, f);
}
