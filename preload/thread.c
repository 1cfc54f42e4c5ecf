/*
 * thread.c — creating, ending, joining and describing threads.
 *
 * A pthread_t is a glibc thread descriptor address.  For a G it is the G's
 * own descriptor (core), so pthread_self() — glibc's, which reads
 * %fs:0x10 and needs no interposing — returns what pthread_create gave the
 * creator.  A pthread_t that is not a G's (vt_g_from_descriptor == NULL:
 * the main thread before the runtime started, libc's helper threads, the
 * runtime's own threads) is passed to glibc (vt_real), as is everything
 * under VTHREAD_DISABLE=1.
 *
 * Per-G attributes that the kernel keeps per task under NPTL (name,
 * scheduling policy and priority, CPU affinity) are recorded in the G's
 * pl_gext and reported back; they do not change how the G is scheduled
 * (NOTES.md).  Other threads may set them, so pl_gext.lock guards them.
 *
 * pthread_self, pthread_equal, pthread_getconcurrency and
 * pthread_setconcurrency are not interposed: glibc's are pure (a register
 * read, a compare, a global int) and right for Gs.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pl.h"

/* ------------------------------------------------------------- creation */

static bool valid_policy(int p)
{
    return p == SCHED_OTHER || p == SCHED_FIFO || p == SCHED_RR ||
           p == SCHED_BATCH || p == SCHED_IDLE;
}

static bool prio_in_range(int policy, int prio)
{
    int lo = sched_get_priority_min(policy);
    int hi = sched_get_priority_max(policy);
    return lo >= 0 && hi >= 0 && prio >= lo && prio <= hi;
}

/* The real-time priority core orders waiters by (vt_g_set_rt_prio). */
static int rt_prio_of(int policy, int prio)
{
    return policy == SCHED_FIFO || policy == SCHED_RR ? prio : 0;
}

static bool all_ones(const cpu_set_t *s)
{
    const unsigned char *b = (const unsigned char *)s;
    for (size_t i = 0; i < sizeof *s; i++)
        if (b[i] != 0xff)
            return false;
    return true;
}

PL_PUBLIC int pthread_create(pthread_t *th, const pthread_attr_t *attr,
                             void *(*fn)(void *), void *arg)
{
    if (!pl_on())
        return vt_real.pthread_create(th, attr, fn, arg);
    struct vt_spawn_attr sa = {0};
    /* Initial per-G state, copied into the G's vt_g_ext by core before the
     * G can run (vt_spawn_attr.ext_init). */
    struct pl_gext st;
    memset(&st, 0, sizeof st);
    sigset_t mask;
    bool detached = false;
    /* glibc's default attribute: one page of guard (0 now means none). */
    sa.guard_size = (size_t)sysconf(_SC_PAGESIZE);
    if (attr) {
        /* glibc's getters hide whether a stack size was set at all: read
         * its struct (pl.h). */
        const struct pl_glibc_attr *ia = (const void *)attr;
        int ds = PTHREAD_CREATE_JOINABLE;
        pthread_attr_getdetachstate(attr, &ds);
        detached = ds == PTHREAD_CREATE_DETACHED;
        pthread_attr_getguardsize(attr, &sa.guard_size);
        sa.stack_size = ia->stacksize;
        if (ia->flags & PL_ATTR_FLAG_STACKADDR) {
            size_t ss = 0;
            pthread_attr_getstacksize(attr, &ss); /* default if unset */
            if (ss > (uintptr_t)ia->stackaddr)
                return EINVAL;
            sa.stack_addr = (char *)ia->stackaddr - ss;
            sa.stack_size = ss;
        }
        if (pthread_attr_getsigmask_np(attr, &mask) == 0) {
            sa.sigmask = &mask;
            st.flags |= PL_G_SIGMASK;
            memcpy(&st.sigmask, &mask, sizeof st.sigmask);
        }
        int inh = PTHREAD_INHERIT_SCHED;
        pthread_attr_getinheritsched(attr, &inh);
        if (inh == PTHREAD_EXPLICIT_SCHED) {
            int pol = SCHED_OTHER;
            struct sched_param sp = {0};
            pthread_attr_getschedpolicy(attr, &pol);
            pthread_attr_getschedparam(attr, &sp);
            int err = pl_sched_check(pol, sp.sched_priority);
            if (err)
                return err;
            st.flags |= PL_G_SCHED;
            st.policy = pol;
            st.prio = sp.sched_priority;
        }
        /* No affinity in the attribute reads back as "all CPUs". */
        if (pthread_attr_getaffinity_np(attr, sizeof st.affinity,
                                        &st.affinity) == 0 &&
            !all_ones(&st.affinity))
            st.flags |= PL_G_AFFINITY;
    }
    /* A new thread inherits its creator's scheduling (PTHREAD_INHERIT_SCHED)
     * and affinity, as NPTL threads inherit them from the kernel task. */
    vt_g *self = vt_self();
    /* The creator's mask: its recorded one, or — a thread that is not a G
     * yet (the first pthread_create starts the runtime) — its OS thread's,
     * read here while it still runs on its own thread. */
    uint64_t creator_mask = self && (atomic_load(&pl_gext(self)->flags) &
                                     PL_G_SIGMASK)
                                ? pl_gext(self)->sigmask
                                : pl_signals_thread_mask();
    bool creator_unrecorded = !self || !(atomic_load(&pl_gext(self)->flags) &
                                         PL_G_SIGMASK);
    if (!sa.sigmask) {
        /* a new thread inherits its creator's mask; core installs it on
         * the OS thread before the start routine (g_main) */
        st.flags |= PL_G_SIGMASK;
        st.sigmask = creator_mask;
        sigemptyset(&mask);
        memcpy(&mask, &st.sigmask, sizeof st.sigmask);
        sa.sigmask = &mask;
    }
    if (self && (atomic_load(&pl_gext(self)->flags) &
                 (PL_G_SCHED | PL_G_AFFINITY | PL_G_NICE))) {
        struct pl_gext *x = pl_gext(self);
        pl_gext_lock(x);
        unsigned f = atomic_load(&x->flags);
        if ((f & PL_G_SCHED) && !(st.flags & PL_G_SCHED)) {
            st.flags |= PL_G_SCHED;
            st.policy = x->policy;
            st.prio = x->prio;
        }
        if ((f & PL_G_AFFINITY) && !(st.flags & PL_G_AFFINITY)) {
            st.flags |= PL_G_AFFINITY;
            st.affinity = x->affinity;
        }
        if (f & PL_G_NICE) {
            st.flags |= PL_G_NICE;
            st.nice = x->nice;
        }
        pl_gext_unlock(x);
    }
    if (st.flags & PL_G_SCHED)
        sa.rt_prio = rt_prio_of(st.policy, st.prio);
    if (st.flags) {
        sa.ext_init = &st;
        sa.ext_init_size = sizeof st;
    }
    /* *th is written by core before the G can run, as NPTL does.  Always
     * created joinable, detached below once we have its G: a detached G
     * may exit and be freed at any moment. */
    sa.out_descriptor = (void **)th;
    vt_g *g;
    int err = vt_spawn(&g, fn, arg, &sa);
    if (err)
        return err;
    /* The caller may have just become the first G: its mask is now its
     * own, not whatever M it runs on later. */
    if (creator_unrecorded && vt_self())
        pl_signals_adopt(vt_self(), creator_mask);
    if (detached) {
        atomic_fetch_or(&pl_gext(g)->flags, PL_G_DETACHED);
        vt_detach(g);
    }
    /* The new thread may run before its creator goes on (fuzzing). */
    vt_sched_point();
    return 0;
}

/* ----------------------------------------------------------------- exit */

/* The first G: the process's original thread, on its original stack.
 * glibc's pthread_exit unwinds it (cleanup handlers, C++ destructors)
 * down to the unwind buffer __libc_start_call_main set up around main(),
 * and longjmps there; glibc then ends the OS thread — under the runtime,
 * an M.  So before unwinding, that bottom buffer's resume address is
 * pointed at first_g_landing, which ends the G instead.  The buffer is
 * glibc's jmp_buf, its resume address mangled as glibc's PTR_MANGLE does:
 *  - x86_64: rip at index 7, xor with the thread's pointer guard (a
 *    descriptor field), then rotate left 0x11;
 *  - aarch64: x30 (where longjmp returns) at index 11, xor with the
 *    process's pointer guard (ld.so's __pointer_chk_guard).
 * The stack pointer stays that of __libc_start_call_main's frame, which
 * is live and which nothing returns to. */
static void *first_retval;

#ifdef __x86_64__
#define LANDING_ALIGN force_align_arg_pointer, /* rsp may be 8 mod 16 */
#else
#define LANDING_ALIGN
#endif
__attribute__((noreturn, LANDING_ALIGN used)) static void
first_g_landing(void)
{
    vt_exit(first_retval);
}

/* glibc's PTR_MANGLE of a code address, as setjmp stores it. */
static bool mangle_pc(void *pd, uintptr_t pc, long *out, int *index)
{
#if defined(__x86_64__)
    pc ^= PD_FIELD(pd, PD_POINTER_GUARD, uintptr_t);
    *out = (long)((pc << 0x11) | (pc >> (64 - 0x11)));
    *index = 7;
    return true;
#elif defined(__aarch64__)
    (void)pd;
    const uintptr_t *guard =
        dlvsym(RTLD_DEFAULT, "__pointer_chk_guard", "GLIBC_PRIVATE");
    if (!guard)
        return false;
    *out = (long)(pc ^ *guard);
    *index = 11;
    return true;
#endif
}

static bool first_g_redirect_unwind(void)
{
    void *pd = pl_self_pd();
    __pthread_unwind_buf_t *b =
        PD_FIELD(pd, PD_CLEANUP_JMP_BUF, __pthread_unwind_buf_t *);
    if (!b) /* pthread_exit before main() (a constructor): no buffer */
        return false;
    while (b->__pad[0]) /* priv.data.prev: pthread_cleanup_push's buffers */
        b = b->__pad[0];
    long pc;
    int i;
    if (!mangle_pc(pd, (uintptr_t)first_g_landing, &pc, &i))
        return false;
    b->__cancel_jmp_buf[0].__cancel_jmp_buf[i] = pc;
    return true;
}

PL_PUBLIC void pthread_exit(void *retval)
{
    vt_g *g = pl_on() ? vt_self() : NULL;
    if (g && vt_g_id(g) == 1) {
        first_retval = retval;
        /* without a buffer: end it without unwinding (our exit hook still
         * runs old-style cleanup handlers and key destructors) */
        if (!first_g_redirect_unwind())
            vt_exit(retval);
    }
    /* Any other G: glibc's own unwinding (cleanup handlers, destructors)
     * ends at the G's entry frame, which calls vt_exit. */
    vt_real.pthread_exit(retval);
    __builtin_unreachable();
}

/* ----------------------------------------------------------------- join */

/* Joins G g.  deadline: vt_now() based, 0 = none. */
static int join_g(vt_g *g, void **ret, int64_t deadline, bool poll)
{
    vt_g *self = vt_self();
    if (g == self)
        return EDEADLK;
    struct pl_gext *tx = pl_gext(g);
    if (atomic_load(&tx->flags) & PL_G_DETACHED)
        return EINVAL;
    /* Two threads joining each other: glibc's "may" EDEADLK, as racy as
     * glibc's own check. */
    if (self) {
        if (atomic_load(&tx->joining) == self)
            return EDEADLK;
        if (!poll)
            pl_testcancel(); /* pthread_join is a cancellation point */
        atomic_store(&pl_gext(self)->joining, g);
    }
    int r;
    while ((r = vt_join(g, ret, deadline, poll)) == EINTR) {
        /* a cancellation unwinds from here; signal handlers resume */
        atomic_store(&pl_gext(self)->joining, NULL);
        (void)pl_interrupted();
        atomic_store(&pl_gext(self)->joining, g);
    }
    if (self)
        atomic_store(&pl_gext(self)->joining, NULL);
    return r;
}

static vt_g *g_of(pthread_t th)
{
    return pl_on() ? vt_g_from_descriptor((void *)th) : NULL;
}

/* A G's descriptor that was joined
 * and not reused yet: glibc's answer to joining or detaching it again
 * (a detached one that exited has tid 0: EINVAL, from vt_join). */
static bool freed_g(pthread_t th)
{
    return pl_on() && vt_g_from_descriptor((void *)th) &&
           PD_FIELD((void *)th, PD_TID, int) < 0;
}

PL_PUBLIC int pthread_join(pthread_t th, void **ret)
{
    vt_sched_point();
    if (freed_g(th))
        return ESRCH;
    vt_g *g = g_of(th);
    if (!g) {
        vt_syscall_enter_block();
        int r = vt_real.pthread_join(th, ret);
        vt_syscall_exit();
        return r;
    }
    return join_g(g, ret, 0, false);
}

PL_PUBLIC int pthread_tryjoin_np(pthread_t th, void **ret)
{
    vt_sched_point();
    if (freed_g(th))
        return ESRCH;
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_tryjoin_np(th, ret);
    /* glibc checks "still running" first: EBUSY even for a detached
     * thread, before the EINVAL a join would give. */
    if (!vt_g_exited(g))
        return EBUSY;
    return join_g(g, ret, 0, true);
}

static int timed_join(vt_g *g, void **ret, clockid_t clk,
                      const struct timespec *abstime)
{
    if (!abstime)
        return join_g(g, ret, 0, false);
    if (!pl_ts_valid(abstime)) {
        /* glibc looks at the time only when it has to wait. */
        if (!vt_g_exited(g))
            return EINVAL;
        return join_g(g, ret, 0, true);
    }
    return join_g(g, ret, pl_deadline_abs(clk, abstime), false);
}

PL_PUBLIC int pthread_timedjoin_np(pthread_t th, void **ret,
                                   const struct timespec *abstime)
{
    vt_sched_point();
    if (freed_g(th))
        return ESRCH;
    vt_g *g = g_of(th);
    if (!g) {
        vt_syscall_enter_block();
        int r = vt_real.pthread_timedjoin_np(th, ret, abstime);
        vt_syscall_exit();
        return r;
    }
    return timed_join(g, ret, CLOCK_REALTIME, abstime);
}

PL_PUBLIC int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clk,
                                   const struct timespec *abstime)
{
    vt_sched_point();
    if (freed_g(th))
        return ESRCH;
    vt_g *g = g_of(th);
    if (!g) {
        vt_syscall_enter_block();
        int r = vt_real.pthread_clockjoin_np(th, ret, clk, abstime);
        vt_syscall_exit();
        return r;
    }
    if (!pl_futex_clock_ok(clk))
        return EINVAL;
    return timed_join(g, ret, clk, abstime);
}

PL_PUBLIC int pthread_detach(pthread_t th)
{
    if (freed_g(th))
        return ESRCH;
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_detach(th);
    unsigned old = atomic_fetch_or(&pl_gext(g)->flags, PL_G_DETACHED);
    if (old & PL_G_DETACHED)
        return EINVAL;
    /* EINVAL from core now means "being joined": glibc then returns 0 and
     * leaves the thread to its joiner. */
    int r = vt_detach(g);
    return r == EINVAL ? 0 : r;
}

/* ---------------------------------------------------------------- yield */

/* A G goes to the back of the global run queue; any other thread makes the
 * real system call (vt_yield does that for a non-G, which is also every
 * thread under VTHREAD_DISABLE=1). */
PL_PUBLIC int sched_yield(void)
{
    vt_yield();
    return 0;
}
PL_ALIAS(sched_yield, __sched_yield);
/* pthread_yield: glibc >= 2.34 headers redirect it to sched_yield (so it
 * cannot be declared here under its own name); older binaries still call
 * it by name. */
__asm__(".globl pthread_yield\n"
        ".type pthread_yield, @function\n"
        ".set pthread_yield, sched_yield\n");

/* -------------------------------------------------------- attributes */

PL_PUBLIC int pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
    vt_g *g = g_of(th);
    /* The first G runs on the process's original stack and descriptor:
     * glibc finds its bounds (/proc/self/maps) as for any main thread. */
    if (!g || vt_g_id(g) == 1)
        return vt_real.pthread_getattr_np(th, attr);
    int err = pthread_attr_init(attr);
    if (err)
        return err;
    struct pl_glibc_attr *ia = (void *)attr;
    /* The usable stack above the guard, TLS and descriptor included at
     * the top (NPTL's report). */
    void *lo;
    size_t size, guard;
    vt_g_stack(g, &lo, &size, &guard);
    ia->stackaddr = (char *)lo + size;
    ia->stacksize = size;
    ia->guardsize = guard;
    ia->flags |= PL_ATTR_FLAG_STACKADDR;

    struct pl_gext *x = pl_gext(g);
    if (atomic_load(&x->flags) & PL_G_DETACHED)
        pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
    /* Written directly, as glibc's getattr_np does: the public setters
     * refuse SCHED_BATCH and SCHED_IDLE. */
    int policy;
    struct sched_param sp;
    if (pthread_getschedparam(th, &policy, &sp) == 0) {
        ia->schedpolicy = policy;
        ia->schedparam = sp;
    }
    cpu_set_t set;
    if (pthread_getaffinity_np(th, sizeof set, &set) == 0) {
        err = pthread_attr_setaffinity_np(attr, sizeof set, &set);
        if (err) {
            pthread_attr_destroy(attr);
            return err;
        }
    }
    return 0;
}

/* ----------------------------------------------------------------- names */

#define NAME_MAX_LEN 16 /* TASK_COMM_LEN, with the NUL */

PL_PUBLIC int pthread_setname_np(pthread_t th, const char *name)
{
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_setname_np(th, name);
    size_t n = strlen(name);
    if (n >= NAME_MAX_LEN)
        return ERANGE;
    struct pl_gext *x = pl_gext(g);
    pl_gext_lock(x);
    memcpy(x->name, name, n + 1);
    atomic_fetch_or(&x->flags, PL_G_NAMED);
    pl_gext_unlock(x);
    vt_trace_name(g, name);
    if (vt_g_id(g) == 1) {
        /* The original thread is the process's name in ps/top: rename the
         * main task itself (not whichever M runs us now). */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)getpid());
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t w = write(fd, name, n);
            (void)w;
            close(fd);
        }
    }
    return 0;
}

PL_PUBLIC int pthread_getname_np(pthread_t th, char *buf, size_t len)
{
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_getname_np(th, buf, len);
    if (len < NAME_MAX_LEN)
        return ERANGE;
    struct pl_gext *x = pl_gext(g);
    pl_gext_lock(x);
    bool named = atomic_load(&x->flags) & PL_G_NAMED;
    if (named)
        memcpy(buf, x->name, NAME_MAX_LEN);
    pl_gext_unlock(x);
    if (named)
        return 0;
    /* Unnamed: a new NPTL thread carries its creator's name, normally the
     * program's; report the main task's current name. */
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return e;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    return 0;
}

/* ------------------------------------------------------------ scheduling */

int pl_sched_check(int policy, int prio)
{
    if (!valid_policy(policy) || !prio_in_range(policy, prio))
        return EINVAL;
    /* the kernel's rule for a real-time policy: CAP_SYS_NICE, or a
     * priority within RLIMIT_RTPRIO */
    struct rlimit rl;
    if ((policy == SCHED_FIFO || policy == SCHED_RR) && geteuid() != 0 &&
        (getrlimit(RLIMIT_RTPRIO, &rl) != 0 || (rlim_t)prio > rl.rlim_cur))
        return EPERM;
    return 0;
}

PL_PUBLIC int pthread_setschedparam(pthread_t th, int policy,
                                    const struct sched_param *param)
{
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_setschedparam(th, policy, param);
    int err = pl_sched_check(policy, param->sched_priority);
    if (err)
        return err;
    struct pl_gext *x = pl_gext(g);
    pl_gext_lock(x);
    x->policy = policy;
    x->prio = param->sched_priority;
    atomic_fetch_or(&x->flags, PL_G_SCHED);
    pl_gext_unlock(x);
    vt_g_set_rt_prio(g, rt_prio_of(policy, param->sched_priority));
    return 0;
}

PL_PUBLIC int pthread_getschedparam(pthread_t th, int *policy,
                                    struct sched_param *param)
{
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_getschedparam(th, policy, param);
    struct pl_gext *x = pl_gext(g);
    pl_gext_lock(x);
    bool rec = atomic_load(&x->flags) & PL_G_SCHED;
    int pol = x->policy, prio = x->prio;
    pl_gext_unlock(x);
    if (!rec) {
        /* Never set: what the Ms (and so the G) really run with. */
        pol = (int)syscall(SYS_sched_getscheduler, 0);
        struct sched_param sp;
        if (pol < 0 || syscall(SYS_sched_getparam, 0, &sp) != 0)
            return errno;
        prio = sp.sched_priority;
    }
    *policy = pol;
    memset(param, 0, sizeof *param);
    param->sched_priority = prio;
    return 0;
}

PL_PUBLIC int pthread_setschedprio(pthread_t th, int prio)
{
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_setschedprio(th, prio);
    int policy;
    struct sched_param sp;
    int err = pthread_getschedparam(th, &policy, &sp);
    if (err)
        return err;
    if (!prio_in_range(policy, prio))
        return EINVAL;
    struct pl_gext *x = pl_gext(g);
    pl_gext_lock(x);
    x->policy = policy;
    x->prio = prio;
    atomic_fetch_or(&x->flags, PL_G_SCHED);
    pl_gext_unlock(x);
    vt_g_set_rt_prio(g, rt_prio_of(policy, prio));
    return 0;
}

/* -------------------------------------------------------------- affinity */

/* The calling OS thread's affinity (the process's CPUs), as glibc's
 * sched_getaffinity gives it; not the interposed one (tid.c), which
 * answers for the calling G. */
static int kernel_affinity(size_t size, cpu_set_t *set)
{
    long n = syscall(SYS_sched_getaffinity, 0, size, set);
    if (n < 0)
        return -1;
    memset((char *)set + n, 0, size - (size_t)n);
    return 0;
}

PL_PUBLIC int pthread_setaffinity_np(pthread_t th, size_t size,
                                     const cpu_set_t *set)
{
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_setaffinity_np(th, size, set);
    /* The kernel's check: at least one CPU we may run on. */
    cpu_set_t allowed, want;
    if (kernel_affinity(sizeof allowed, &allowed) != 0)
        return errno;
    CPU_ZERO(&want);
    memcpy(&want, set, size < sizeof want ? size : sizeof want);
    cpu_set_t both;
    CPU_AND(&both, &want, &allowed);
    if (CPU_COUNT(&both) == 0)
        return EINVAL;
    struct pl_gext *x = pl_gext(g);
    pl_gext_lock(x);
    x->affinity = want;
    atomic_fetch_or(&x->flags, PL_G_AFFINITY);
    pl_gext_unlock(x);
    return 0;
}

PL_PUBLIC int pthread_getaffinity_np(pthread_t th, size_t size,
                                     cpu_set_t *set)
{
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_getaffinity_np(th, size, set);
    /* The kernel decides which sizes are too small (EINVAL). */
    if (kernel_affinity(size, set) != 0)
        return errno;
    struct pl_gext *x = pl_gext(g);
    pl_gext_lock(x);
    if (atomic_load(&x->flags) & PL_G_AFFINITY) {
        memset(set, 0, size);
        memcpy(set, &x->affinity,
               size < sizeof x->affinity ? size : sizeof x->affinity);
    }
    pl_gext_unlock(x);
    return 0;
}

/* ------------------------------------------------------------ CPU clock */

PL_PUBLIC int pthread_getcpuclockid(pthread_t th, clockid_t *clk)
{
    vt_g *g = g_of(th);
    if (!g)
        return vt_real.pthread_getcpuclockid(th, clk);
    return pl_g_cpuclock(g, clk); /* tid.c */
}
