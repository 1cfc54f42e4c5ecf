/*
 * io.c — blocking I/O calls that park the G instead of the OS thread.
 *
 * The rule (DESIGN.md, "Blocking without blocking"): never change a
 * descriptor's O_NONBLOCK flag (the open file description is shared with
 * other processes).  For a descriptor the program left blocking, a G
 *  1. tries the call without blocking, per call: RWF_NOWAIT for
 *     read/write/readv/writev (preadv2/pwritev2 at the current offset),
 *     MSG_DONTWAIT for the socket calls;
 *  2. on EAGAIN asks fcntl(F_GETFL) whether the program itself made the
 *     descriptor non-blocking: then EAGAIN is the answer it expects;
 *  3. else parks on the netpoller (vt_wait_fd) until the descriptor may be
 *     ready, honouring SO_RCVTIMEO/SO_SNDTIMEO, and tries again;
 *  4. descriptors that cannot be polled (regular files: vt_wait_fd says
 *     EPERM) or that refuse the per-call flag (ttys: EOPNOTSUPP) make the
 *     plain blocking call inside vt_syscall_enter/exit, so sysmon hands
 *     the P to another M if it outlives ~20 µs.
 * Blocking writes write everything, as the kernel's do: a partial
 * non-blocking write continues after waiting.  Calls known to block for
 * long (wait family) hand the P away at once (vt_syscall_enter_block).
 *
 * Non-G callers (threads the runtime did not create, or before it starts)
 * make the plain call.  The real calls are raw system calls, which touch no
 * errno; errno is set once, at the end, as libc would.
 *
 * close/dup2/dup3 first tell the netpoller (vt_fd_close): Gs parked on the
 * old descriptor go on waiting on the same open file, as a blocked call
 * does in the kernel (struct fdref below).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/select.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pl.h"
#include "real.h"

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

/* Raw system calls (arch's, re-exported by core): -errno, never errno. */
#define sys6 vt_sys6
#define SYS(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* The raw calls that aarch64 (like every newer Linux port) lacks, done as
 * glibc does them there: poll as ppoll, select as pselect6 (which writes
 * back the time left, as select does), epoll_wait as epoll_pwait, dup2 as
 * dup3 (dup3 refuses old == new: dup2 then only checks old). */
static long sys_poll(struct pollfd *fds, nfds_t n, int timeout)
{
#ifdef SYS_poll
    return SYS(SYS_poll, fds, n, timeout);
#else
    struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000};
    return sys6(SYS_ppoll, (long)fds, (long)n, timeout < 0 ? 0 : (long)&ts,
                0, 8, 0);
#endif
}

static long sys_select(int n, fd_set *r, fd_set *w, fd_set *e,
                       struct timeval *tv)
{
#ifdef SYS_select
    return sys6(SYS_select, n, (long)r, (long)w, (long)e, (long)tv, 0);
#else
    struct timespec ts;
    if (tv) {
        if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)
            return -EINVAL;
        ts.tv_sec = tv->tv_sec;
        ts.tv_nsec = tv->tv_usec * 1000;
    }
    long res = sys6(SYS_pselect6, n, (long)r, (long)w, (long)e,
                    tv ? (long)&ts : 0, 0);
    if (tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return res;
#endif
}

static long sys_epoll_wait(int ep, struct epoll_event *ev, int max,
                           int timeout)
{
#ifdef SYS_epoll_wait
    return sys6(SYS_epoll_wait, ep, (long)ev, max, timeout, 0, 0);
#else
    return sys6(SYS_epoll_pwait, ep, (long)ev, max, timeout, 0, 8);
#endif
}

static long sys_dup2(int old, int newfd)
{
#ifdef SYS_dup2
    return SYS(SYS_dup2, old, newfd, 0);
#else
    if (old == newfd) {
        long r = SYS(SYS_fcntl, old, F_GETFD, 0);
        return r < 0 ? r : newfd;
    }
    return SYS(SYS_dup3, old, newfd, 0);
#endif
}

/* Skips r written bytes in the vector; true when all of it was written. */
static bool advance_iov(struct iovec **iov, size_t *n, size_t r)
{
    while (*n > 0 && r >= (*iov)->iov_len) {
        r -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n == 0)
        return true;
    (*iov)->iov_base = (char *)(*iov)->iov_base + r;
    (*iov)->iov_len -= r;
    return false;
}

static inline long ret_errno(long r)
{
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* A G with the runtime on, outside it: the only callers that park.  A
 * call from a handler that interrupted the runtime (vt_inside_runtime)
 * is a plain system call, as from a thread vthread does not run. */
static inline bool parkable(void)
{
    return pl_on() && !vt_inside_runtime();
}

/* The descriptor a blocking call works on.  It starts as the program's;
 * if the program closes that one while we wait, vt_wait_fd moves us to a
 * private duplicate of the same open file (the kernel too keeps waiting on
 * the old file), which is handed back when the call ends, by any return or
 * by cancellation's unwinding (the cleanup attribute; preload/ is built
 * with -fexceptions). */
struct fdref {
    int fd, orig;
};
static void fdref_done(struct fdref *f)
{
    if (f->fd != f->orig)
        vt_fd_alias_put(f->fd);
}
#define FD_FOLLOW(name, fd0)                                                  \
    struct fdref name __attribute__((cleanup(fdref_done))) = {(fd0), (fd0)}

/* Whether the program made fd non-blocking: asked once per open file
 * and remembered (vt_fd_prop_get) until the number is closed or the
 * program changes some descriptor's flags. */
static bool user_nonblocking(int fd)
{
    uint64_t key;
    int c = vt_fd_prop_get(fd, VT_FD_NONBLOCK, &key);
    if (c >= 0)
        return c;
    long fl = SYS(SYS_fcntl, fd, F_GETFL, 0);
    if (fl < 0)
        return false;
    vt_fd_prop_set(fd, VT_FD_NONBLOCK, key, (fl & O_NONBLOCK) != 0);
    return (fl & O_NONBLOCK) != 0;
}

/* SO_RCVTIMEO / SO_SNDTIMEO as an absolute deadline (0: none). */
static int64_t sock_deadline(int fd, int opt)
{
    struct timeval tv;
    socklen_t len = sizeof tv;
    int prop = opt == SO_RCVTIMEO ? VT_FD_RCVTIMEO : VT_FD_SNDTIMEO;
    uint64_t key;
    if (vt_fd_prop_get(fd, prop, &key) == 0)
        return 0; /* known: no timeout, or not a socket */
    long r = sys6(SYS_getsockopt, fd, SOL_SOCKET, opt, (long)&tv, (long)&len, 0);
    if (r == -ENOTSOCK || (r == 0 && tv.tv_sec == 0 && tv.tv_usec == 0))
        vt_fd_prop_set(fd, prop, key, 0);
    if (r != 0)
        return 0;
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        return 0;
    return vt_now() + (int64_t)tv.tv_sec * 1000000000 + tv.tv_usec * 1000;
}

/* After a would-block: 0 to retry, or -errno to return.  *deadline is
 * computed on first use (socket timeout option `opt`, 0 for none). */
static long wait_ready(int *fd, short ev, int opt, int64_t *deadline,
                       bool *blocking_fallback)
{
    if (user_nonblocking(*fd))
        return -EAGAIN;
    if (*deadline == 0 && opt)
        *deadline = sock_deadline(*fd, opt);
    if (*deadline < 0)
        *deadline = 0;
    int e = vt_wait_fd(fd, ev, *deadline > 0 ? *deadline : 0);
    switch (e) {
    case 0:
        return 0;
    case EINTR:
        /* pthread_kill / pthread_cancel: run handlers, act on a cancel;
         * the call restarts unless a handler lacked SA_RESTART. */
        return pl_interrupted() == PL_INTR_EINTR ? -EINTR : 0;
    case ETIMEDOUT:
        return -EAGAIN; /* what SO_RCVTIMEO / SO_SNDTIMEO give */
    case EPERM:
        *blocking_fallback = true;
        return 0;
    default:
        return -e; /* EBADF (closed meanwhile), EINTR */
    }
}

/* --------------------------------------------------------- read, write */

/* A blocking write that fails after writing some bytes reports the bytes,
 * as the kernel does; with none written, the error. */
static long written_or(size_t total, long err)
{
    return total ? (long)total : err;
}

/* Where preadv2/pwritev2 do not exist (qemu-user 7.2, a seccomp filter
 * that refuses them: ENOSYS), the non-blocking try is a zero-timeout poll
 * instead: not ready, the G parks as usual; ready, it makes the blocking
 * call inside vt_syscall_enter/exit (usually immediate; if another reader
 * took the data meanwhile, sysmon hands the P away as for any blocking
 * call).  Learned once per process. */
static _Atomic bool no_rw2;

static long try_nowait(int fd, const struct iovec *iov, int n, bool out)
{
    if (!atomic_load_explicit(&no_rw2, memory_order_relaxed)) {
        long r = sys6(out ? SYS_pwritev2 : SYS_preadv2, fd, (long)iov, n, -1,
                      -1, RWF_NOWAIT);
        if (r != -ENOSYS)
            return r;
        atomic_store_explicit(&no_rw2, true, memory_order_relaxed);
    }
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    /* nothing to transfer never blocks (and a pipe never polls ready
     * for it) */
    struct pollfd p = {fd, out ? POLLOUT : POLLIN, 0};
    long ready = len == 0 ? 1 : sys_poll(&p, 1, 0);
    if (ready == 0)
        return -EAGAIN;
    if (ready < 0 || (p.revents & POLLNVAL))
        return ready < 0 ? ready : -EBADF;
    vt_syscall_enter();
    long r = SYS(out ? SYS_writev : SYS_readv, fd, iov, n);
    vt_syscall_exit();
    return r;
}

static long do_readv(int fd0, const struct iovec *iov, int n)
{
    FD_FOLLOW(F, fd0);
    if (!parkable())
        return SYS(SYS_readv, F.fd, iov, n);
    int64_t dl = 0;
    bool blocking = false;
    for (;;) {
        long r;
        if (!blocking) {
            r = try_nowait(F.fd, iov, n, false);
            if (r != -EAGAIN && r != -EOPNOTSUPP && r != -EINVAL)
                return r;
            if (r != -EAGAIN)
                blocking = true; /* no per-call flag here (tty, ...) */
        }
        if (blocking) {
            if (user_nonblocking(F.fd))
                return SYS(SYS_readv, F.fd, iov, n);
            vt_syscall_enter();
            r = SYS(SYS_readv, F.fd, iov, n);
            vt_syscall_exit();
            return r;
        }
        r = wait_ready(&F.fd, POLLIN, SO_RCVTIMEO, &dl, &blocking);
        if (r < 0)
            return r;
    }
}

/* Writes everything unless the program made fd non-blocking, as a
 * blocking write does; returns what was written before an error, if any. */
static long do_writev(int fd0, const struct iovec *iov0, int n0)
{
    FD_FOLLOW(F, fd0);
    if (!parkable())
        return SYS(SYS_writev, F.fd, iov0, n0);
    struct iovec local[8], *iov = local;
    if (n0 > 8 || n0 < 0)
        return SYS(SYS_writev, F.fd, iov0, n0); /* rare: write it plainly */
    size_t n = (size_t)n0;
    memcpy(local, iov0, sizeof(struct iovec) * n);
    size_t total = 0;
    int64_t dl = 0;
    bool blocking = false;
    for (;;) {
        long r;
        if (!blocking) {
            r = try_nowait(F.fd, iov, (int)n, true);
            if (r == -EOPNOTSUPP || r == -EINVAL)
                blocking = true;
        }
        if (blocking) {
            vt_syscall_enter();
            r = SYS(SYS_writev, F.fd, iov, n);
            vt_syscall_exit();
            return r < 0 ? written_or(total, r) : (long)(total + r);
        }
        if (r > 0) {
            total += (size_t)r;
            if (advance_iov(&iov, &n, (size_t)r))
                return (long)total;
            continue;
        }
        if (r != -EAGAIN)
            return written_or(total, r);
        r = wait_ready(&F.fd, POLLOUT, SO_SNDTIMEO, &dl, &blocking);
        if (r < 0)
            return written_or(total, r);
    }
}

/* Every public wrapper below that POSIX makes a cancellation point: a
 * thread that is not a G (or with vthread disabled) gets glibc's own
 * function, which is one; a G checks on entry (pl_testcancel) and on every
 * interrupted wait (wait_ready). */
#define NOT_G_USE_REAL(call)                                                  \
    do {                                                                      \
        vt_sched_point();                                                     \
        if (!parkable())                                                      \
            return call;                                                      \
        pl_testcancel();                                                      \
    } while (0)

PL_PUBLIC ssize_t read(int fd, void *buf, size_t count)
{
    NOT_G_USE_REAL(vt_real.read(fd, buf, count));
    struct iovec v = {buf, count};
    return ret_errno(do_readv(fd, &v, 1));
}

PL_PUBLIC ssize_t write(int fd, const void *buf, size_t count)
{
    NOT_G_USE_REAL(vt_real.write(fd, buf, count));
    struct iovec v = {(void *)buf, count};
    return ret_errno(do_writev(fd, &v, 1));
}

PL_PUBLIC ssize_t readv(int fd, const struct iovec *iov, int n)
{
    NOT_G_USE_REAL(vt_real.readv(fd, iov, n));
    return ret_errno(do_readv(fd, iov, n));
}

PL_PUBLIC ssize_t writev(int fd, const struct iovec *iov, int n)
{
    NOT_G_USE_REAL(vt_real.writev(fd, iov, n));
    return ret_errno(do_writev(fd, iov, n));
}

/* Fortified variants that glibc's headers emit with _FORTIFY_SOURCE. */
extern void __chk_fail(void) __attribute__((noreturn));
PL_PUBLIC ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return read(fd, buf, n);
}

/* pread/pwrite: regular files mostly; they may block on the disk. */
PL_PUBLIC ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    NOT_G_USE_REAL(vt_real.pread64(fd, buf, n, off));
    vt_syscall_enter();
    long r = sys6(SYS_pread64, fd, (long)buf, (long)n, off, 0, 0);
    vt_syscall_exit();
    return ret_errno(r);
}
PL_PUBLIC ssize_t pread64(int fd, void *buf, size_t n, off_t off)
    __attribute__((alias("pread")));

PL_PUBLIC ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    NOT_G_USE_REAL(vt_real.pwrite64(fd, buf, n, off));
    vt_syscall_enter();
    long r = sys6(SYS_pwrite64, fd, (long)buf, (long)n, off, 0, 0);
    vt_syscall_exit();
    return ret_errno(r);
}
PL_PUBLIC ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
    __attribute__((alias("pwrite")));

/* ------------------------------------------------------------- sockets */

static long do_recvmsg(int fd0, struct msghdr *msg, int flags)
{
    FD_FOLLOW(F, fd0);
    if (!parkable() || (flags & MSG_DONTWAIT))
        return SYS(SYS_recvmsg, F.fd, msg, flags);
    int64_t dl = 0;
    bool blocking = false;
    for (;;) {
        long r;
        if (blocking) {
            vt_syscall_enter();
            r = SYS(SYS_recvmsg, F.fd, msg, flags);
            vt_syscall_exit();
            return r;
        }
        r = SYS(SYS_recvmsg, F.fd, msg, flags | MSG_DONTWAIT);
        if (r != -EAGAIN)
            return r;
        r = wait_ready(&F.fd, POLLIN, SO_RCVTIMEO, &dl, &blocking);
        if (r < 0)
            return r;
    }
}

PL_PUBLIC ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    NOT_G_USE_REAL(vt_real.recvmsg(fd, msg, flags));
    return ret_errno(do_recvmsg(fd, msg, flags));
}

PL_PUBLIC ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                           struct sockaddr *addr, socklen_t *alen)
{
    NOT_G_USE_REAL(vt_real.recvfrom(fd, buf, n, flags, addr, alen));
    struct iovec v = {buf, n};
    struct msghdr m = {.msg_name = addr, .msg_namelen = alen ? *alen : 0,
                       .msg_iov = &v, .msg_iovlen = 1};
    long r = do_recvmsg(fd, &m, flags);
    if (r >= 0 && alen)
        *alen = m.msg_namelen;
    return ret_errno(r);
}

PL_PUBLIC ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return recvfrom(fd, buf, n, flags, NULL, NULL);
}

PL_PUBLIC ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen,
                             int flags)
{
    if (n > buflen)
        __chk_fail();
    return recv(fd, buf, n, flags);
}

PL_PUBLIC ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
                                 int flags, struct sockaddr *addr,
                                 socklen_t *alen)
{
    if (n > buflen)
        __chk_fail();
    return recvfrom(fd, buf, n, flags, addr, alen);
}

/* A blocking send on a stream socket sends everything (or fails). */
static long do_sendmsg(int fd0, const struct msghdr *msg0, int flags)
{
    FD_FOLLOW(F, fd0);
    if (!parkable() || (flags & MSG_DONTWAIT))
        return SYS(SYS_sendmsg, F.fd, msg0, flags);
    struct msghdr msg = *msg0;
    struct iovec local[8];
    if (msg.msg_iovlen > 8)
        return SYS(SYS_sendmsg, F.fd, msg0, flags);
    memcpy(local, msg0->msg_iov, sizeof(struct iovec) * msg.msg_iovlen);
    msg.msg_iov = local;
    size_t total = 0;
    int64_t dl = 0;
    bool blocking = false;
    for (;;) {
        long r;
        if (blocking) {
            vt_syscall_enter();
            r = SYS(SYS_sendmsg, F.fd, &msg, flags);
            vt_syscall_exit();
            return r < 0 ? written_or(total, r) : (long)(total + r);
        }
        r = SYS(SYS_sendmsg, F.fd, &msg, flags | MSG_DONTWAIT);
        if (r >= 0) {
            total += (size_t)r;
            if (advance_iov(&msg.msg_iov, &msg.msg_iovlen, (size_t)r))
                return (long)total;
            /* the address and control data went with the first bytes */
            msg.msg_control = NULL;
            msg.msg_controllen = 0;
            continue;
        }
        if (r != -EAGAIN)
            return written_or(total, r);
        r = wait_ready(&F.fd, POLLOUT, SO_SNDTIMEO, &dl, &blocking);
        if (r < 0)
            return written_or(total, r);
    }
}

PL_PUBLIC ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    NOT_G_USE_REAL(vt_real.sendmsg(fd, msg, flags));
    return ret_errno(do_sendmsg(fd, msg, flags));
}

PL_PUBLIC ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                         const struct sockaddr *addr, socklen_t alen)
{
    NOT_G_USE_REAL(vt_real.sendto(fd, buf, n, flags, addr, alen));
    struct iovec v = {(void *)buf, n};
    struct msghdr m = {.msg_name = (void *)addr, .msg_namelen = alen,
                       .msg_iov = &v, .msg_iovlen = 1};
    return ret_errno(do_sendmsg(fd, &m, flags));
}

PL_PUBLIC ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return sendto(fd, buf, n, flags, NULL, 0);
}

/* accept has no per-call flag: ask poll first, then accept.  Another G
 * may take the connection in between: that accept then blocks its M,
 * inside vt_syscall_enter, so sysmon hands the P away. */
PL_PUBLIC int accept4(int fd0, struct sockaddr *addr, socklen_t *alen,
                      int flags)
{
    vt_sched_point();
    FD_FOLLOW(F, fd0);
    NOT_G_USE_REAL(vt_real.accept4(F.fd, addr, alen, flags));
    if (user_nonblocking(F.fd))
        return (int)ret_errno(
            sys6(SYS_accept4, F.fd, (long)addr, (long)alen, flags, 0, 0));
    int64_t dl = 0;
    bool blocking = false;
    for (;;) {
        struct pollfd p = {F.fd, POLLIN, 0};
        long n = sys_poll(&p, 1, 0);
        if (n != 0 || blocking) {
            vt_syscall_enter();
            long r = sys6(SYS_accept4, F.fd, (long)addr, (long)alen, flags, 0, 0);
            vt_syscall_exit();
            return (int)ret_errno(r);
        }
        long w = wait_ready(&F.fd, POLLIN, SO_RCVTIMEO, &dl, &blocking);
        if (w < 0)
            return (int)ret_errno(w);
    }
}

PL_PUBLIC int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
    return accept4(fd, addr, alen, 0);
}

/* connect: no per-call non-blocking form either; it blocks as a system
 * call (loopback and refused connections return at once). */
PL_PUBLIC int connect(int fd, const struct sockaddr *addr, socklen_t alen)
{
    NOT_G_USE_REAL(vt_real.connect(fd, addr, alen));
    vt_syscall_enter();
    long r = SYS(SYS_connect, fd, addr, alen);
    vt_syscall_exit();
    return (int)ret_errno(r);
}

/* ------------------------------------------------------ poll, epoll */

static int64_t ms_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? 0 : vt_now() + (int64_t)timeout_ms * 1000000;
}

PL_PUBLIC int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    NOT_G_USE_REAL(vt_real.poll(fds, n, timeout));
    if (timeout == 0)
        return (int)ret_errno(sys_poll(fds, n, timeout));
    if (n == 0) { /* a sleep */
        if (timeout > 0 && vt_sleep_until(ms_deadline(timeout)) == EINTR &&
            pl_interrupted() != PL_INTR_NONE)
            return (int)ret_errno(-EINTR);
        if (timeout < 0)
            return (int)ret_errno(sys_poll(fds, n, timeout));
        return 0;
    }
    int64_t dl = ms_deadline(timeout);
    FD_FOLLOW(F, n == 1 ? fds[0].fd : -1);
    for (;;) {
        long r = 0;
        if (F.fd != F.orig) {
            /* The program closed the descriptor while we waited.  The
             * kernel's poll stays asleep on the old file and, when that
             * file wakes it, looks the number up again (POLLNVAL, or
             * whatever file has the number now): the same here. */
            struct pollfd one = fds[0];
            one.fd = F.fd;
            if (sys_poll(&one, 1, 0) > 0)
                r = sys_poll(fds, n, 0);
        } else {
            r = sys_poll(fds, n, 0);
        }
        if (r != 0)
            return (int)ret_errno(r);
        if (n == 1 && fds[0].fd >= 0 && (fds[0].events & (POLLIN | POLLOUT))) {
            int e = vt_wait_fd(&F.fd,
                               (fds[0].events & POLLIN) ? POLLIN : POLLOUT, dl);
            if (e == ETIMEDOUT)
                return 0;
            /* poll is never restarted after a handler (SA_RESTART or not) */
            if (e == EINTR && pl_interrupted() != PL_INTR_NONE)
                return (int)ret_errno(-EINTR);
            if (e == 0 || e == EINTR)
                continue;
        }
        /* Several descriptors (or one we cannot poll): block as a system
         * call with the time that is left. */
        int left = -1;
        if (dl) {
            int64_t ns = dl - vt_now();
            if (ns <= 0)
                return 0;
            left = (int)((ns + 999999) / 1000000);
        }
        vt_syscall_enter();
        r = sys_poll(fds, n, left);
        vt_syscall_exit();
        return (int)ret_errno(r);
    }
}

PL_PUBLIC int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                         size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        __chk_fail();
    return poll(fds, n, timeout);
}

PL_PUBLIC int select(int n, fd_set *r, fd_set *w, fd_set *e,
                     struct timeval *tv)
{
    NOT_G_USE_REAL(vt_real.select(n, r, w, e, tv));
    if (tv && tv->tv_sec == 0 && tv->tv_usec == 0)
        return (int)ret_errno(sys_select(n, r, w, e, tv));
    if (n == 0 && !r && !w && !e && tv) { /* a sleep */
        int64_t dl = vt_now() + (int64_t)tv->tv_sec * 1000000000 +
                     tv->tv_usec * 1000;
        if (vt_sleep_until(dl) == EINTR && pl_interrupted() != PL_INTR_NONE)
            return (int)ret_errno(-EINTR);
        tv->tv_sec = tv->tv_usec = 0;
        return 0;
    }
    vt_syscall_enter();
    long res = sys_select(n, r, w, e, tv);
    vt_syscall_exit();
    return (int)ret_errno(res);
}

/* A G waiting on its own epoll set parks: the epoll descriptor itself is
 * readable when it has events. */
PL_PUBLIC int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
    NOT_G_USE_REAL(vt_real.epoll_wait(ep, ev, max, timeout));
    if (timeout == 0)
        return (int)ret_errno(
            sys_epoll_wait(ep, ev, max, timeout));
    int64_t dl = ms_deadline(timeout);
    FD_FOLLOW(F, ep);
    for (;;) {
        long r = sys_epoll_wait(F.fd, ev, max, 0);
        if (r != 0)
            return (int)ret_errno(r);
        int e = vt_wait_fd(&F.fd, POLLIN, dl);
        if (e == ETIMEDOUT)
            return 0;
        if (e == EINTR && pl_interrupted() != PL_INTR_NONE)
            return (int)ret_errno(-EINTR);
        if (e == EPERM || e == EBADF) {
            vt_syscall_enter();
            r = sys_epoll_wait(F.fd, ev, max, timeout);
            vt_syscall_exit();
            return (int)ret_errno(r);
        }
    }
}

/* ppoll, epoll_pwait(2), pselect: the G's mask is the given one while the
 * call waits (pl_sigmask_enter: signals reach a parked G through its
 * mask), so they park like poll, epoll_wait and select. */
static int ts_to_ms(const struct timespec *ts)
{
    if (!ts)
        return -1;
    int64_t t = (int64_t)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
    return t > 0x7fffffff ? 0x7fffffff : (int)t;
}

static bool ts_bad(const struct timespec *ts)
{
    return ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000);
}

/* The int expression `call` (poll, epoll_wait, select) with the calling
 * G's mask set to *mask for its length; -1/EINTR without calling it when
 * a pending signal's handler ran as the mask went in.  A cancellation
 * point. */
#define WITH_MASK(mask, call)                                                 \
    ({                                                                        \
        pl_testcancel();                                                      \
        uint64_t old_mask_;                                                   \
        int r_ = -1;                                                          \
        if (pl_sigmask_enter((mask), &old_mask_))                             \
            errno = EINTR;                                                    \
        else                                                                  \
            r_ = (call);                                                      \
        pl_sigmask_leave(old_mask_);                                          \
        r_;                                                                   \
    })

PL_PUBLIC int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                    const sigset_t *mask)
{
    vt_sched_point();
    if (!parkable()) {
        struct timespec copy, *tp = NULL;
        if (ts) {
            copy = *ts; /* the kernel updates it */
            tp = &copy;
        }
        return (int)ret_errno(
            sys6(SYS_ppoll, (long)fds, (long)n, (long)tp, (long)mask, 8, 0));
    }
    if (ts_bad(ts))
        return (int)ret_errno(-EINVAL);
    if (!mask)
        return poll(fds, n, ts_to_ms(ts));
    return WITH_MASK(mask, poll(fds, n, ts_to_ms(ts)));
}

PL_PUBLIC int epoll_pwait(int ep, struct epoll_event *ev, int max,
                          int timeout, const sigset_t *mask)
{
    if (!parkable()) /* (epoll_wait below is the schedule point) */
        return (int)ret_errno(
            sys6(SYS_epoll_pwait, ep, (long)ev, max, timeout, (long)mask, 8));
    if (!mask)
        return epoll_wait(ep, ev, max, timeout);
    return WITH_MASK(mask, epoll_wait(ep, ev, max, timeout));
}

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif
PL_PUBLIC int epoll_pwait2(int ep, struct epoll_event *ev, int max,
                           const struct timespec *ts, const sigset_t *mask)
{
    if (!parkable() || ts_bad(ts))
        return (int)ret_errno(
            sys6(SYS_epoll_pwait2, ep, (long)ev, max, (long)ts, (long)mask, 8));
    return epoll_pwait(ep, ev, max, ts_to_ms(ts), mask);
}

PL_PUBLIC int pselect(int n, fd_set *r, fd_set *w, fd_set *e,
                      const struct timespec *ts, const sigset_t *mask)
{
    vt_sched_point();
    if (!parkable() || ts_bad(ts)) {
        struct timespec copy, *tp = NULL;
        if (ts) {
            copy = *ts;
            tp = &copy;
        }
        /* the kernel's sixth argument: {mask, size} */
        struct { const sigset_t *ss; size_t len; } m6 = {mask, 8};
        return (int)ret_errno(sys6(SYS_pselect6, n, (long)r, (long)w, (long)e,
                                   (long)tp, (long)&m6));
    }
    struct timeval tv, *tvp = NULL;
    if (ts) {
        tv.tv_sec = ts->tv_sec;
        tv.tv_usec = (ts->tv_nsec + 999) / 1000;
        if (tv.tv_usec == 1000000) {
            tv.tv_sec++;
            tv.tv_usec = 0;
        }
        tvp = &tv;
    }
    if (!mask)
        return select(n, r, w, e, tvp);
    return WITH_MASK(mask, select(n, r, w, e, tvp));
}

/* Several messages at once, each as the single-message call would: a
 * blocking recvmmsg waits for the first datagram, then for the rest
 * unless MSG_WAITFORONE (the timeout, as in the kernel, is looked at
 * after each datagram and gets the time left); a blocking sendmmsg sends
 * them all.  Both report what they did before an error, if anything.
 * mmsg_loop: the vector through system call nr (SYS_recvmmsg or
 * SYS_sendmmsg) with MSG_DONTWAIT, parking in between; recvmmsg stops
 * early as said (`end`: its deadline, 0 none).  The count done, else
 * -errno. */
static long mmsg_loop(long nr, int *fd, struct mmsghdr *v, unsigned n,
                      int flags, int64_t end)
{
    bool recv = nr == SYS_recvmmsg;
    int64_t dl = 0;
    bool blocking = false;
    unsigned done = 0;
    long r = 0;
    while (done < n) {
        if (blocking) {
            vt_syscall_enter();
            r = sys6(nr, *fd, (long)(v + done), n - done, flags, 0, 0);
            vt_syscall_exit();
        } else {
            r = sys6(nr, *fd, (long)(v + done), n - done,
                     flags | MSG_DONTWAIT, 0, 0);
        }
        if (r > 0) {
            done += (unsigned)r;
            if (recv && ((flags & MSG_WAITFORONE) || (end && vt_now() >= end)))
                break;
            continue;
        }
        if (r != -EAGAIN || done) /* (recv: 0 is end of file) */
            break;
        r = wait_ready(fd, recv ? POLLIN : POLLOUT,
                       recv ? SO_RCVTIMEO : SO_SNDTIMEO, &dl, &blocking);
        if (r < 0)
            break;
    }
    return done ? (long)done : r;
}

PL_PUBLIC int recvmmsg(int fd0, struct mmsghdr *v, unsigned n, int flags,
                       struct timespec *ts)
{
    vt_sched_point();
    FD_FOLLOW(F, fd0);
    if (!parkable() || (flags & MSG_DONTWAIT) || n == 0 || ts_bad(ts))
        return (int)ret_errno(sys6(SYS_recvmmsg, F.fd, (long)v, n, flags,
                                   (long)ts, 0));
    pl_testcancel();
    int64_t end = ts ? pl_deadline_rel(ts) : 0;
    long r = mmsg_loop(SYS_recvmmsg, &F.fd, v, n, flags, end);
    if (ts && end) {
        int64_t left = end - vt_now();
        if (left < 0)
            left = 0;
        ts->tv_sec = left / PL_NS;
        ts->tv_nsec = left % PL_NS;
    }
    return (int)ret_errno(r);
}

PL_PUBLIC int sendmmsg(int fd0, struct mmsghdr *v, unsigned n, int flags)
{
    vt_sched_point();
    FD_FOLLOW(F, fd0);
    if (!parkable() || (flags & MSG_DONTWAIT) || n == 0)
        return (int)ret_errno(sys6(SYS_sendmmsg, F.fd, (long)v, n, flags, 0, 0));
    pl_testcancel();
    return (int)ret_errno(mmsg_loop(SYS_sendmmsg, &F.fd, v, n, flags, 0));
}

/* A blocking flock may wait for as long as another process likes: hand
 * the P away at once (the pessimistic path). */
PL_PUBLIC int flock(int fd, int op)
{
    if (!parkable() || (op & LOCK_NB))
        return (int)ret_errno(SYS(SYS_flock, fd, op, 0));
    vt_syscall_enter_block();
    long r = SYS(SYS_flock, fd, op, 0);
    vt_syscall_exit();
    return (int)ret_errno(r);
}

/* fcntl: only the lock-waiting commands block, for as long as another
 * process likes: the pessimistic path, and a cancellation point (as in
 * glibc).  Everything else is glibc's. */
PL_PUBLIC int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    if (cmd == F_SETFL) {
        /* O_NONBLOCK may change (user_nonblocking).  After the call: a
         * wait that read the old flags meanwhile cached them under the
         * old generation, which this bump retires. */
        int r = vt_real.fcntl(fd, cmd, arg);
        vt_fd_props_changed();
        return r;
    }
    if ((cmd != F_SETLKW && cmd != F_OFD_SETLKW) || !parkable())
        return vt_real.fcntl(fd, cmd, arg);
    pl_testcancel();
    vt_syscall_enter_block();
    long r = SYS(SYS_fcntl, fd, cmd, arg);
    vt_syscall_exit();
    return (int)ret_errno(r);
}
PL_ALIAS(fcntl, fcntl64);
PL_ALIAS(fcntl, __fcntl);

/* ioctl(FIONBIO) sets O_NONBLOCK too. */
PL_PUBLIC int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (!vt_real.ioctl)
        vt_real_init(); /* an earlier constructor's ioctl (isatty) */
    int r = vt_real.ioctl(fd, req, arg);
    if (req == FIONBIO)
        vt_fd_props_changed(); /* after the call: see fcntl */
    return r;
}

/* Socket timeouts are remembered by waits too (sock_deadline). */
PL_PUBLIC int setsockopt(int fd, int level, int opt, const void *val,
                         socklen_t len)
{
    long r = sys6(SYS_setsockopt, fd, level, opt, (long)val, (long)len, 0);
    if (level == SOL_SOCKET &&
        (opt == SO_RCVTIMEO || opt == SO_SNDTIMEO ||
         opt == SO_RCVTIMEO_NEW || opt == SO_SNDTIMEO_NEW))
        vt_fd_props_changed(); /* after the call: see fcntl */
    return (int)ret_errno(r);
}

/* System V message queues and semaphores wait without limit unless
 * IPC_NOWAIT: the pessimistic path too. */
PL_PUBLIC ssize_t msgrcv(int id, void *msg, size_t size, long type, int flg)
{
    if ((flg & IPC_NOWAIT) || !parkable())
        return vt_real.msgrcv(id, msg, size, type, flg);
    pl_testcancel();
    vt_syscall_enter_block();
    long r = sys6(SYS_msgrcv, id, (long)msg, (long)size, type, flg, 0);
    vt_syscall_exit();
    return ret_errno(r);
}

PL_PUBLIC int msgsnd(int id, const void *msg, size_t size, int flg)
{
    if ((flg & IPC_NOWAIT) || !parkable())
        return vt_real.msgsnd(id, msg, size, flg);
    pl_testcancel();
    vt_syscall_enter_block();
    long r = sys6(SYS_msgsnd, id, (long)msg, (long)size, flg, 0, 0);
    vt_syscall_exit();
    return (int)ret_errno(r);
}

PL_PUBLIC int semtimedop(int id, struct sembuf *ops, size_t n,
                         const struct timespec *ts)
{
    bool may_wait = false;
    for (size_t i = 0; ops && i < n; i++)
        may_wait |= !(ops[i].sem_flg & IPC_NOWAIT);
    if (!may_wait || !parkable())
        return vt_real.semtimedop(id, ops, n, ts);
    pl_testcancel();
    vt_syscall_enter_block();
    long r = sys6(SYS_semtimedop, id, (long)ops, (long)n, (long)ts, 0, 0);
    vt_syscall_exit();
    return (int)ret_errno(r);
}

PL_PUBLIC int semop(int id, struct sembuf *ops, size_t n)
{
    return semtimedop(id, ops, n, NULL);
}

/* ---------------------------------------------------- close, dup2, dup3 */

PL_PUBLIC int close(int fd)
{
    if (!pl_on())
        return vt_real.close(fd);
    if (__builtin_expect(vt_fd_is_internal(fd), 0)) {
        errno = EBADF; /* not one of the program's: as if never opened */
        return -1;
    }
    vt_fd_close(fd);
    if (vt_inside_runtime())
        return vt_real.close(fd);
    pl_testcancel();
    return (int)ret_errno(SYS(SYS_close, fd, 0, 0));
}

/* Closes that glibc makes inside itself, out of our sight: the stdio ones
 * (fclose, pclose, freopen close the stream's descriptor with an internal
 * call), and the ranged ones.  The netpoller must forget the descriptor
 * first, or a new file that gets its number would be taken for registered
 * and its waiters never woken. */
static void forget_stream(FILE *f)
{
    int fd = f ? fileno(f) : -1;
    if (fd >= 0 && pl_on())
        vt_fd_close(fd);
    if (!vt_real.fclose)
        vt_real_init(); /* an earlier constructor's stdio */
}

PL_PUBLIC int fclose(FILE *f)
{
    forget_stream(f);
    return vt_real.fclose(f);
}

PL_PUBLIC int pclose(FILE *f)
{
    forget_stream(f);
    return vt_real.pclose(f);
}

PL_PUBLIC FILE *freopen(const char *path, const char *mode, FILE *f)
{
    forget_stream(f);
    return vt_real.freopen(path, mode, f);
}

PL_PUBLIC FILE *freopen64(const char *path, const char *mode, FILE *f)
{
    forget_stream(f);
    return vt_real.freopen64(path, mode, f);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* close_range over [first, last] around the runtime's own descriptors,
 * which the program does not know it has (vt_fd_hide). */
static long close_range_around(unsigned first, unsigned last, int flags)
{
    int own[64];
    int n = pl_on() ? vt_fd_internal_list(own, 64) : 0;
    qsort(own, (size_t)n, sizeof own[0], cmp_int);
    unsigned lo = first;
    for (int i = 0; i < n; i++) {
        unsigned f = (unsigned)own[i]; /* <= INT_MAX: f + 1 cannot wrap */
        if (f < lo || f > last)
            continue;
        if (f > lo) {
            long r = SYS(SYS_close_range, lo, f - 1, flags);
            if (r != 0)
                return r;
        }
        lo = f + 1;
    }
    return lo <= last ? SYS(SYS_close_range, lo, last, flags) : 0;
}

PL_PUBLIC int close_range(unsigned first, unsigned last, int flags)
{
    if (pl_on() && first <= last && !(flags & CLOSE_RANGE_CLOEXEC))
        vt_fd_close_range(first, last);
    return (int)ret_errno(close_range_around(first, last, flags));
}

PL_PUBLIC void closefrom(int lowfd)
{
    unsigned first = lowfd < 0 ? 0 : (unsigned)lowfd;
    if (pl_on())
        vt_fd_close_range(first, ~0U);
    if (close_range_around(first, ~0U, 0) == 0)
        return;
    /* a kernel without close_range: one by one, as glibc falls back to */
    for (int fd = (int)first; fd < 65536; fd++)
        if (!pl_on() || !vt_fd_is_internal(fd))
            SYS(SYS_close, fd, 0, 0);
}

PL_PUBLIC int dup2(int old, int newfd)
{
    if (pl_on() && old != newfd)
        vt_fd_close(newfd);
    return (int)ret_errno(sys_dup2(old, newfd));
}

PL_PUBLIC int dup3(int old, int newfd, int flags)
{
    if (pl_on() && old != newfd)
        vt_fd_close(newfd);
    return (int)ret_errno(SYS(SYS_dup3, old, newfd, flags));
}

/* ------------------------------------------------- calls that block long */

PL_PUBLIC pid_t waitpid(pid_t pid, int *status, int options)
{
    NOT_G_USE_REAL(vt_real.wait4(pid, status, options, NULL));
    if (options & WNOHANG)
        return (pid_t)ret_errno(
            sys6(SYS_wait4, pid, (long)status, options, 0, 0, 0));
    vt_syscall_enter_block();
    long r = sys6(SYS_wait4, pid, (long)status, options, 0, 0, 0);
    vt_syscall_exit();
    return (pid_t)ret_errno(r);
}

PL_PUBLIC pid_t wait(int *status) { return waitpid(-1, status, 0); }

PL_PUBLIC pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
    NOT_G_USE_REAL(vt_real.wait4(pid, status, options, ru));
    if (options & WNOHANG)
        return (pid_t)ret_errno(
            sys6(SYS_wait4, pid, (long)status, options, (long)ru, 0, 0));
    vt_syscall_enter_block();
    long r = sys6(SYS_wait4, pid, (long)status, options, (long)ru, 0, 0);
    vt_syscall_exit();
    return (pid_t)ret_errno(r);
}
