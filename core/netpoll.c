/*
 * netpoll.c — waiting for descriptors without blocking an OS thread.
 *
 * One epoll instance per process (made on first use, made anew in a fork
 * child), edge-triggered, each descriptor registered once for both
 * directions.  A poll descriptor (struct pd) per fd number holds two
 * readiness flags.  The protocol, for a G whose non-blocking attempt failed
 * with EAGAIN:
 *
 *   vt_wait_fd:  park on &pd->rready with a validate that, under the
 *                bucket lock, consumes the flag if set (then the G retries
 *                its call at once) or queues the G if not.
 *   poller:      for each epoll event set the flag(s), then unpark every
 *                waiter of that direction.
 *
 * An edge that arrives between the failed attempt and the park sets the
 * flag first, so validate sees it: no lost wake-up.  A G woken by an edge
 * clears the flag before it retries (its retry sees the data); a flag left
 * set by an edge whose data was already consumed otherwise costs one
 * extra attempt.
 *
 * Who polls: an M with nothing to run blocks in epoll_wait until the next
 * timer (only one M at a time; an eventfd breaks it when an earlier timer
 * appears); findrunnable polls without blocking before stealing; sysmon
 * polls when nobody did for 1 ms.  An M that polled (blocking or not)
 * collects the Gs it readied and runs them itself, as Go's findrunnable
 * does: it takes an idle P (if it had none), runs the first and queues
 * the rest on that P with one spinning M woken to share them (sched.c:
 * inject), so a descriptor becoming ready costs one wake-up (the
 * kernel's, of the polling M), not a second one of another M.  sysmon's
 * Gs go to the global queue with a wake-up each.
 *
 * Stale events: epoll data carries the fd and the pd's sequence number,
 * which vt_fd_close bumps; an event for an older sequence is ignored.
 *
 * Closing a descriptor Gs wait on.  In the kernel a blocked read holds a
 * reference to the open file: close() in another thread does not wake it,
 * it goes on waiting on the old file (and a new file that reuses the
 * number is not its business).  So vt_fd_close duplicates the descriptor
 * first when Gs are inside vt_wait_fd for it (the "alias", a descriptor
 * number the program never sees), records the move for the old sequence,
 * and wakes them: each comes back with *fd = the alias, retries and waits
 * on it, and hands it back (vt_fd_alias_put) when its call ends; the last
 * one closes it.  Counting who moves: pd->st packs (sequence << 32 |
 * number of Gs inside vt_wait_fd in that sequence); a waiter adds itself
 * with one fetch-add (so it is counted in exactly the sequence it saw)
 * and leaves with a compare-and-swap that fails once the sequence moved;
 * vt_fd_close swaps in (sequence + 1, 0) and gives the alias the count.
 * If the duplicate cannot be made (no descriptor left) the waiters get
 * EBADF instead.  One move record per pd: a waiter of an older close
 * whose record was overwritten (the number reused and closed again
 * before it ran) gets EBADF, and its share of that alias is never put.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt.h"

struct pd {
    _Atomic int rready, wready;   /* an edge since the last consume */
    _Atomic uint64_t st;          /* seq << 32 | Gs inside vt_wait_fd */
    _Atomic uint32_t reg_seq;     /* seq registered with epoll, +1; 0 none */
    vt_lock lock;                 /* registration, the move record */
    /* The last close with waiters: Gs of sequence moved_seq continue on
     * moved_to (-1: none could be made).  Written under lock before the
     * sequence is bumped. */
    _Atomic int moved_to;
    _Atomic uint32_t moved_seq;
    _Atomic int alias_refs;       /* this fd is an alias: users left */
    /* What the waits learned about the open file behind the number, so
     * that the next waits need not ask again (vt_fd_prop_get): per
     * VT_FD_PROP, (sequence << 32 | generation << 1 | value), 0 = not
     * known.  Valid while the number is not closed (every close path
     * bumps the sequence) and the program changed no descriptor's flags
     * or socket timeouts (vt_fd_props_changed bumps the generation). */
    _Atomic uint64_t prop[VT_FD_NPROPS];
};

static inline uint32_t pd_seq(struct pd *pd)
{
    return (uint32_t)(ld_acquire(&pd->st) >> 32);
}

#define CHUNK 1024
#define MAXCHUNKS 1024            /* fds up to 1,048,576 */
static _Atomic(struct pd *) chunks[MAXCHUNKS];
static vt_lock init_lock = VT_LOCK_INIT;
static _Atomic int epfd = -1;
static int breakfd = -1;
static _Atomic int waiters;       /* Gs parked in vt_wait_fd */
static _Atomic int blocked;       /* an M is blocked in epoll_wait */
static _Atomic uint64_t polls;     /* polls made: sysmon sees progress */

/* ------------------------------------------------ the runtime's own fds
 *
 * The epoll instance and its eventfd are descriptors NPTL does not have
 * (sysmon's per-M stat files live in another table: sysmon.c, "the
 * prober").  They are moved up out of the program's
 * way (just below min(RLIMIT_NOFILE, 1024)), so the program's open() gets
 * the numbers it gets natively, and they are recorded here so that the
 * program's close(), close_range() and closefrom() treat them as not open
 * (EBADF, skipped) instead of pulling the netpoller away (preload/io.c).
 * Registry: fd + 1 per slot, 0 = free; internal_min only goes down, so a
 * close() of a lower number costs one load. */
#define NINTERNAL 256
static _Atomic int internal[NINTERNAL];
static _Atomic int internal_min = INT32_MAX;

int vt_fd_hide(int fd)
{
    if (fd < 0)
        return fd;
    struct rlimit rl;
    if (vt_sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0) {
        rlim_t top = rl.rlim_cur > 1024 ? 1024 : rl.rlim_cur;
        if (top >= 256 && (rlim_t)fd < top - 64) {
            long r = vt_sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, (long)(top - 64));
            if (r >= 0) {
                vt_sys1(SYS_close, fd);
                fd = (int)r;
            }
        }
    }
    for (int i = 0; i < NINTERNAL; i++) {
        int z = 0;
        if (cas(&internal[i], &z, fd + 1))
            break;
    }
    int m = ld_relaxed(&internal_min);
    while (fd < m && !cas(&internal_min, &m, fd))
        ;
    return fd;
}

bool vt_fd_is_internal(int fd)
{
    if (fd < ld_acquire(&internal_min))
        return false;
    for (int i = 0; i < NINTERNAL; i++)
        if (ld_acquire(&internal[i]) == fd + 1)
            return true;
    return false;
}

int vt_fd_internal_list(int *out, int max)
{
    int n = 0;
    for (int i = 0; i < NINTERNAL && n < max; i++) {
        int v = ld_acquire(&internal[i]);
        if (v)
            out[n++] = v - 1;
    }
    return n;
}

/* The pd of fd if its chunk exists, without allocating: for paths that
 * only act on what a wait registered (close, the remembered properties).
 * They may run inside a malloc's own initialisation (jemalloc closes a
 * descriptor with syscall(SYS_close) holding its init lock), where
 * calloc would deadlock. */
static struct pd *pd_peek(int fd)
{
    if (fd < 0 || fd >= CHUNK * MAXCHUNKS)
        return NULL;
    struct pd *c = ld_acquire(&chunks[fd / CHUNK]);
    return c ? &c[fd % CHUNK] : NULL;
}

static struct pd *pd_get(int fd)
{
    if (fd < 0 || fd >= CHUNK * MAXCHUNKS)
        return NULL;
    _Atomic(struct pd *) *slot = &chunks[fd / CHUNK];
    struct pd *c = ld_acquire(slot);
    if (!c) {
        struct pd *n = calloc(CHUNK, sizeof *n);
        if (!n)
            return NULL;
        struct pd *z = NULL;
        if (!cas(slot, &z, n)) {
            free(n);
            c = z;
        } else {
            c = n;
        }
    }
    return &c[fd % CHUNK];
}

static int ensure_epoll(void)
{
    int e = ld_acquire(&epfd);
    if (e >= 0)
        return e;
    vt_lock_acquire(&init_lock);
    e = ld_relaxed(&epfd);
    if (e < 0) {
        e = vt_fd_hide((int)vt_sys1(SYS_epoll_create1, EPOLL_CLOEXEC));
        int b = vt_fd_hide(
            (int)vt_sys2(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (e < 0 || b < 0)
            vt_fatal("cannot create the netpoller's epoll instance: %s",
                     strerror(e < 0 ? -e : -b));
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET,
                                 .data.u64 = UINT64_MAX};
        vt_sys4(SYS_epoll_ctl, e, EPOLL_CTL_ADD, b, &ev);
        breakfd = b;
        st_release(&epfd, e);
    }
    vt_lock_release(&init_lock);
    return e;
}

/* At start-up, while the process has one thread: moving the runtime's
 * descriptors up grows the kernel's descriptor table past its first 64
 * slots, and in a multi-threaded process that waits for an RCU grace
 * period (milliseconds, on whichever G first waits for a descriptor). */
void vt_netpoll_init(void) { ensure_epoll(); }

/* Registers fd once (per sequence).  Returns 0 or a positive errno:
 * EPERM means the file cannot be polled (regular file, directory). */
static int ensure_registered(int fd, struct pd *pd)
{
    uint32_t seq = pd_seq(pd);
    if (ld_acquire(&pd->reg_seq) == seq + 1)
        return 0;
    int e = ensure_epoll();
    vt_lock_acquire(&pd->lock);
    int err = 0;
    if (ld_relaxed(&pd->reg_seq) != seq + 1) {
        struct epoll_event ev = {
            .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
            .data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)seq << 32)};
        long r = vt_sys4(SYS_epoll_ctl, e, EPOLL_CTL_ADD, fd, &ev);
        if (r == -EEXIST) /* left over from a close we did not see */
            r = vt_sys4(SYS_epoll_ctl, e, EPOLL_CTL_MOD, fd, &ev);
        if (r == 0) {
            /* Report "maybe ready" once: readiness from before the
             * registration produces no edge. */
            st_release(&pd->rready, 1);
            st_release(&pd->wready, 1);
            st_release(&pd->reg_seq, seq + 1);
        } else {
            err = (int)-r;
        }
    }
    vt_lock_release(&pd->lock);
    return err;
}

struct wait_ctx {
    _Atomic int *flag;
};

static bool consume_or_wait(void *arg)
{
    struct wait_ctx *c = arg;
    /* Ready since the caller's attempt: take the edge, do not park. */
    return atomic_exchange(c->flag, 0) == 0;
}

int vt_wait_fd(int *fdp, short events, int64_t deadline)
{
    int fd = *fdp;
    struct pd *pd = pd_get(fd);
    if (!pd)
        return EPERM;
    int err = ensure_registered(fd, pd);
    if (err)
        return err == EBADF ? EBADF : EPERM;
    uint32_t seq = (uint32_t)(xadd(&pd->st, 1) >> 32);
    struct wait_ctx c = {(events & POLLOUT) ? &pd->wready : &pd->rready};
    xadd(&waiters, 1);
    vt_set_wait_reason((events & POLLOUT) ? "descriptor writable"
                                          : "descriptor readable");
    int r = vt_park(c.flag, consume_or_wait, NULL, &c, deadline,
                    VT_PARK_INTERRUPTIBLE, 0, NULL);
    xsub(&waiters, 1);
    for (uint64_t cur = ld_acquire(&pd->st);;) {
        if ((uint32_t)(cur >> 32) != seq) {
            /* closed while we waited: our count went to the alias */
            int to = -1;
            vt_lock_acquire(&pd->lock);
            if (ld_relaxed(&pd->moved_seq) == seq)
                to = ld_relaxed(&pd->moved_to);
            vt_lock_release(&pd->lock);
            if (to < 0)
                return EBADF;
            *fdp = to;
            return 0; /* retry on the alias, whatever r was */
        }
        if (cas(&pd->st, &cur, cur - 1))
            break;
    }
    switch (r) {
    case VT_PARK_TIMEOUT:
        return ETIMEDOUT;
    case VT_PARK_INTERRUPTED:
        return EINTR;
    default:
        /* Woken by an edge: the caller retries its call now, which sees
         * everything that edge (and any later one) brought, so the flag
         * is spent.  Left set it would make the next would-block attempt
         * try a second time for nothing (two EAGAINs per message on an
         * echo connection). */
        st_release(c.flag, 0);
        return 0;
    }
}

void vt_fd_close(int fd)
{
    struct pd *pd = pd_peek(fd);
    if (!pd || (ld_acquire(&pd->reg_seq) == 0 &&
                (uint32_t)ld_acquire(&pd->st) == 0))
        return;
    vt_lock_acquire(&pd->lock);
    if (ld_relaxed(&pd->reg_seq) != 0) {
        vt_sys4(SYS_epoll_ctl, ld_relaxed(&epfd), EPOLL_CTL_DEL, fd, NULL);
        st_release(&pd->reg_seq, 0);
    }
    uint64_t cur = ld_acquire(&pd->st);
    uint32_t seq;
    for (;;) {
        seq = (uint32_t)(cur >> 32);
        uint32_t inside = (uint32_t)cur;
        int to = -1;
        if (inside) {
            long a = vt_sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0);
            if (a >= 0) {
                to = (int)a;
                st_release(&pd_get(to)->alias_refs, (int)inside);
            }
        }
        st_release(&pd->moved_to, to);
        st_release(&pd->moved_seq, seq);
        if (cas(&pd->st, &cur, (uint64_t)(seq + 1) << 32))
            break;
        /* a waiter came or left meanwhile: undo and count again */
        if (to >= 0) {
            st_release(&pd_get(to)->alias_refs, 0);
            vt_sys1(SYS_close, to);
        }
    }
    st_release(&pd->rready, 1);
    st_release(&pd->wready, 1);
    vt_lock_release(&pd->lock);
    vt_unpark_all(&pd->rready);
    vt_unpark_all(&pd->wready);
}

void vt_fd_close_range(unsigned first, unsigned last)
{
    if (last >= CHUNK * MAXCHUNKS)
        last = CHUNK * MAXCHUNKS - 1;
    for (unsigned fd = first; fd <= last;) {
        struct pd *c = ld_acquire(&chunks[fd / CHUNK]);
        if (!c) { /* never used: skip the whole chunk */
            fd = (fd / CHUNK + 1) * CHUNK;
            continue;
        }
        vt_fd_close((int)fd);
        fd++;
    }
}

void vt_fd_alias_put(int alias)
{
    struct pd *pd = pd_peek(alias);
    if (!pd || xsub(&pd->alias_refs, 1) != 1)
        return;
    vt_fd_close(alias);
    vt_sys1(SYS_close, alias);
}

/* Generation of descriptor properties: 31 bits, never 0. */
static _Atomic uint32_t props_gen = 1;

void vt_fd_props_changed(void)
{
    uint32_t g = xadd(&props_gen, 1) + 1;
    if ((g & 0x7fffffff) == 0)
        xadd(&props_gen, 1);
}

static inline uint64_t prop_key(struct pd *pd)
{
    return (uint64_t)pd_seq(pd) << 32 |
           (uint64_t)(ld_acquire(&props_gen) & 0x7fffffff) << 1;
}

int vt_fd_prop_get(int fd, int prop, uint64_t *key)
{
    struct pd *pd = pd_peek(fd); /* known only for descriptors waited on */
    *key = 0;
    if (!pd)
        return -1;
    /* The key is taken before the caller asks the kernel: an answer that
     * a concurrent change (or close) made stale is stored under a key
     * that change has already retired. */
    *key = prop_key(pd);
    uint64_t v = ld_acquire(&pd->prop[prop]);
    return v && (v & ~(uint64_t)1) == *key ? (int)(v & 1) : -1;
}

void vt_fd_prop_set(int fd, int prop, uint64_t key, int value)
{
    struct pd *pd = pd_peek(fd);
    if (pd && key)
        st_release(&pd->prop[prop], key | (value != 0));
}

bool vt_netpoll_has_waiters(void) { return ld_acquire(&waiters) > 0; }

/* Polls once; deadline 0 = do not block, else block until then (absolute
 * monotonic ns; INT64_MAX = until an event).  Returns the number of
 * descriptors that became ready.  Runs on g0 or sysmon (no G). */
int vt_netpoll(int64_t deadline, vt_glist *out)
{
    int e = ld_acquire(&epfd);
    if (e < 0)
        return 0;
    struct epoll_event evs[128];
    struct timespec ts, *tsp = &ts;
    if (deadline == 0) {
        ts.tv_sec = ts.tv_nsec = 0;
    } else if (deadline == INT64_MAX) {
        tsp = NULL;
    } else {
        int64_t left = deadline - vt_now();
        if (left < 0)
            left = 0;
        ts.tv_sec = left / 1000000000;
        ts.tv_nsec = left % 1000000000;
    }
    long n = vt_sys6(SYS_epoll_pwait2, e, (long)evs, 128, (long)tsp, 0, 8);
    if (n == -ENOSYS) { /* kernel < 5.11: millisecond timeout */
        long ms = !tsp ? -1 : ts.tv_sec * 1000 + (ts.tv_nsec + 999999) / 1000000;
        n = vt_sys6(SYS_epoll_pwait, e, (long)evs, 128, ms, 0, 8);
    }
    st_relaxed(&polls, ld_relaxed(&polls) + 1); /* any change will do */
    int ready = 0;
    for (long i = 0; i < n; i++) {
        uint64_t d = evs[i].data.u64;
        if (d == UINT64_MAX) {
            uint64_t v;
            vt_sys3(SYS_read, breakfd, &v, sizeof v);
            continue;
        }
        struct pd *pd = pd_peek((int)(uint32_t)d);
        if (!pd || pd_seq(pd) != (uint32_t)(d >> 32))
            continue; /* stale: the fd was closed since */
        uint32_t ev = evs[i].events;
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            st_release(&pd->rready, 1);
            vt_unpark_all_to(&pd->rready, out);
        }
        if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
            st_release(&pd->wready, 1);
            vt_unpark_all_to(&pd->wready, out);
        }
        ready++;
    }
    return ready;
}

/* An idle M blocks in epoll_wait instead of on its futex, if it is the
 * first to do so and Gs wait for descriptors.  Returns false when it did
 * not poll (the caller sleeps on its futex). */
bool vt_netpoll_block(int64_t deadline, vt_glist *out)
{
    if (!vt_netpoll_has_waiters())
        return false;
    int z = 0;
    if (!cas(&blocked, &z, 1))
        return false;
    st_release(&vt_sched.poll_until, deadline);
    vt_netpoll(deadline == INT64_MAX ? INT64_MAX : deadline, out);
    st_release(&vt_sched.poll_until, INT64_MAX);
    st_release(&blocked, 0);
    return true;
}

/* Wakes the M blocked in epoll_wait (an earlier timer, or work for it). */
void vt_netpoll_break(void)
{
    if (ld_acquire(&blocked) && breakfd >= 0) {
        uint64_t one = 1;
        vt_sys3(SYS_write, breakfd, &one, sizeof one);
    }
}

uint64_t vt_netpoll_count(void) { return ld_relaxed(&polls); }
bool vt_netpoll_blocked(void) { return ld_acquire(&blocked); }

/* Fork child: the epoll instance is shared with the parent; make a new one
 * on first use, and forget every registration. */
void vt_netpoll_fork_child(void)
{
    /* Every descriptor of the runtime: the epoll instance is shared with
     * the parent, and the stat files were for the parent's threads. */
    for (int i = 0; i < NINTERNAL; i++) {
        int v = ld_relaxed(&internal[i]);
        if (v)
            vt_sys1(SYS_close, v - 1);
        st_relaxed(&internal[i], 0);
    }
    st_relaxed(&epfd, -1);
    breakfd = -1;
    init_lock = (vt_lock)VT_LOCK_INIT;
    st_relaxed(&waiters, 0);
    st_relaxed(&blocked, 0);
    for (int i = 0; i < MAXCHUNKS; i++) {
        struct pd *c = ld_relaxed(&chunks[i]);
        if (c)
            memset(c, 0, CHUNK * sizeof *c);
    }
}
