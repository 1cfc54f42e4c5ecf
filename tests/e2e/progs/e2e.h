/*
 * e2e.h - tiny helpers shared by the end-to-end test programs.
 *
 * The programs are ordinary POSIX-threads programs: they know nothing of
 * vthread.  tests/e2e/run runs each one natively and under
 * LD_PRELOAD=libvthread.so and compares exit status and stdout byte for
 * byte, so stdout must be deterministic: no addresses, thread ids, timings
 * or counts that depend on scheduling.  Each program checks its own
 * invariants; on the first violation it prints one line to stderr and exits
 * with status 1.
 *
 * Include this header FIRST: it defines _GNU_SOURCE before any system header.
 */
#ifndef E2E_H
#define E2E_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Name of the program, for failure messages (set from argv[0] by E2E_INIT). */
static const char *e2e_prog = "e2e";

#define E2E_SET_NAME(argv0)                                                \
    do {                                                                   \
        const char *e2e_s_ = strrchr((argv0), '/');                        \
        e2e_prog = e2e_s_ ? e2e_s_ + 1 : (argv0);                          \
    } while (0)

/* Call first thing in main: sets the name and makes stdout line buffered,
 * so that the output file of a test that hangs shows how far it got. */
#define E2E_INIT(argv0)                                                    \
    do {                                                                   \
        setvbuf(stdout, NULL, _IOLBF, 0);                                  \
        E2E_SET_NAME(argv0);                                               \
    } while (0)

/* Report a failure and end the whole process at once.  _exit, not exit: a
 * failing check may be in any thread, and we must not run atexit handlers
 * or flush half-written stdout behind the back of other threads. */
__attribute__((noreturn, format(printf, 3, 4), unused))
static void e2e_fail(const char *file, int line, const char *fmt, ...)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "FAIL %s (%s:%d): ", e2e_prog, file,
                     line);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof buf)
        n = (int)sizeof buf - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    ssize_t w = write(2, buf, len);
    (void)w;
    _exit(1);
}

#define FAIL(...) e2e_fail(__FILE__, __LINE__, __VA_ARGS__)

/* CHECK(cond): cond must hold. */
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            FAIL("check failed: %s", #cond);                               \
    } while (0)

/* CHECK_EQ(a, b): two integers must be equal; both values are reported. */
#define CHECK_EQ(a, b)                                                     \
    do {                                                                   \
        long long e2e_a_ = (long long)(a), e2e_b_ = (long long)(b);        \
        if (e2e_a_ != e2e_b_)                                              \
            FAIL("%s == %s: got %lld, expected %lld", #a, #b, e2e_a_,      \
                 e2e_b_);                                                  \
    } while (0)

/* CHECK_RC(expr, want): a function returning an error number (pthread_*,
 * clock_nanosleep, ...) must return `want` (0, EBUSY, ...). */
#define CHECK_RC(expr, want)                                               \
    do {                                                                   \
        int e2e_r_ = (expr), e2e_w_ = (want);                              \
        if (e2e_r_ != e2e_w_)                                              \
            FAIL("%s returned %d (%s), expected %d (%s)", #expr, e2e_r_,   \
                 strerror(e2e_r_), e2e_w_, strerror(e2e_w_));              \
    } while (0)

/* CHECK_OK(expr): a pthread_* style call must return 0. */
#define CHECK_OK(expr) CHECK_RC(expr, 0)

/* CHECK_SYS(expr): a -1/errno style call must not return -1. */
#define CHECK_SYS(expr)                                                    \
    do {                                                                   \
        if ((expr) == -1)                                                  \
            FAIL("%s failed: %s", #expr, strerror(errno));                 \
    } while (0)

/* CHECK_ERRNO(expr, want): a -1/errno style call must fail with `want`. */
#define CHECK_ERRNO(expr, want)                                            \
    do {                                                                   \
        errno = 0;                                                         \
        long e2e_r_ = (long)(expr);                                        \
        int e2e_e_ = errno, e2e_w_ = (want);                               \
        if (e2e_r_ != -1 || e2e_e_ != e2e_w_)                              \
            FAIL("%s returned %ld errno %d (%s), expected -1 errno %d "    \
                 "(%s)", #expr, e2e_r_, e2e_e_, strerror(e2e_e_), e2e_w_,  \
                 strerror(e2e_w_));                                        \
    } while (0)

/* ------------------------------------------------------------------ time */

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

static inline int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        FAIL("clock_gettime(%d): %s", (int)c, strerror(errno));
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static inline int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static inline struct timespec ns_to_ts(int64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / NS_PER_S);
    ts.tv_nsec = (long)(ns % NS_PER_S);
    return ts;
}

static inline int64_t ts_to_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
}

/* Absolute time `ms` milliseconds from now on clock `c`. */
static inline struct timespec deadline_in(clockid_t c, int64_t ms)
{
    return ns_to_ts(clock_ns(c) + ms * NS_PER_MS);
}

/* Sleep for `ms` milliseconds (restarting after signals). */
static inline void sleep_ms(int64_t ms)
{
    struct timespec ts = ns_to_ts(ms * NS_PER_MS);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Upper bound for "this should not take much longer than asked".  The test
 * machines are small and shared, so it is generous. */
#define SLACK_MS 1000

/* Check that a wait that asked for `want_ms` took at least that long (minus
 * `early_ms` for kernel interfaces that round to clock ticks) and not
 * absurdly longer. */
#define CHECK_ELAPSED(t0, want_ms, early_ms)                               \
    do {                                                                   \
        int64_t e2e_el_ = now_ns() - (t0);                                 \
        int64_t e2e_lo_ = ((int64_t)(want_ms) - (early_ms)) * NS_PER_MS;  \
        int64_t e2e_hi_ = ((int64_t)(want_ms) + SLACK_MS) * NS_PER_MS;    \
        if (e2e_el_ < e2e_lo_ || e2e_el_ > e2e_hi_)                        \
            FAIL("waited %.3f ms, asked for %d ms", e2e_el_ / 1e6,         \
                 (int)(want_ms));                                          \
    } while (0)

/* Poll `cond` (an expression re-evaluated each time) every millisecond for
 * up to `ms` milliseconds; fail if it never became true.  Used to wait for
 * another thread to reach a point without adding synchronisation that
 * would change what is being tested. */
#define WAIT_UNTIL(cond, ms)                                               \
    do {                                                                   \
        int64_t e2e_end_ = now_ns() + (int64_t)(ms) * NS_PER_MS;           \
        while (!(cond)) {                                                  \
            if (now_ns() > e2e_end_)                                       \
                FAIL("timed out after %d ms waiting for %s", (int)(ms),    \
                     #cond);                                               \
            sleep_ms(1);                                                   \
        }                                                                  \
    } while (0)


/* Blocking I/O helpers: the whole buffer, retrying after EINTR. */
__attribute__((unused))
static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            FAIL("write(%d): %s", fd, w < 0 ? strerror(errno) : "0");
        p += w;
        n -= (size_t)w;
    }
}

__attribute__((unused))
static void read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            FAIL("read(%d): %s", fd, r < 0 ? strerror(errno) : "EOF");
        p += r;
        n -= (size_t)r;
    }
}

#endif /* E2E_H */
