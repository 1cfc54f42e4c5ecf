/*
 * sleep.c — nanosleep, clock_nanosleep, usleep, sleep.
 *
 * A G sleeps on the runtime's timers (vt_sleep_until), not in the kernel.
 * Relative sleeps and absolute ones on CLOCK_REALTIME, CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME become a vt_now() deadline (an absolute realtime or
 * boottime sleep does not follow a later change of that clock: NOTES.md).
 * Other valid clocks (CLOCK_PROCESS_CPUTIME_ID, CLOCK_TAI, the alarm clocks,
 * another process's CPU clock) go to the real call, with the P handed off
 * while it blocks.  A sleep that ends at once (0, or an absolute time in the
 * past) yields the processor, as programs that "usleep(0)" in a polling
 * loop expect something else to run meanwhile.
 *
 * An interrupted sleep (vt_interrupt: a signal or cancellation aimed at
 * the G) returns EINTR with the time left in *rem, as the kernel does.
 *
 * Threads that are not Gs, and everything under VTHREAD_DISABLE=1, call
 * the real functions.
 */
#include <unistd.h>

#include "pl.h"

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
    if (ns < 0)
        ns = 0;
    ts->tv_sec = ns / PL_NS;
    ts->tv_nsec = ns % PL_NS;
}

/* Sleeps the calling G until deadline (0 = forever).  Returns 0 or EINTR;
 * on EINTR stores the time left in *rem (if rem). */
static int g_sleep(int64_t deadline, struct timespec *rem)
{
    vt_sched_point(); /* every sleep of a G comes here */
    pl_testcancel(); /* sleeps are cancellation points */
    if (deadline && deadline <= vt_now()) {
        vt_yield();
        return 0;
    }
    /* An interrupt without a handler to run (a disabled cancellation)
     * resumes the sleep; a handler that ran ends it with EINTR whatever
     * its SA_RESTART, as the kernel's nanosleep does. */
    for (;;) {
        if (vt_sleep_until(deadline) != EINTR)
            return 0;
        if (pl_interrupted() != PL_INTR_NONE)
            break;
    }
    if (rem) {
        if (deadline)
            ns_to_ts(deadline - vt_now(), rem);
        else
            rem->tv_sec = INT64_MAX, rem->tv_nsec = 0;
    }
    return EINTR;
}

static bool ts_ok(const struct timespec *ts)
{
    return ts->tv_sec >= 0 && pl_ts_valid(ts);
}

/* nanosleep for a G. */
static int g_nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (!ts_ok(req)) {
        errno = EINVAL;
        return -1;
    }
    int err = g_sleep(pl_deadline_rel(req), rem);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

PL_PUBLIC int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (!pl_on() || !vt_self())
        return vt_real.nanosleep(req, rem);
    return g_nanosleep(req, rem);
}

PL_PUBLIC int clock_nanosleep(clockid_t clk, int flags,
                              const struct timespec *req,
                              struct timespec *rem)
{
    if (!pl_on() || !vt_self())
        return vt_real.clock_nanosleep(clk, flags, req, rem);
    if (clk == CLOCK_THREAD_CPUTIME_ID) /* glibc refuses it itself */
        return EINVAL;
    if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC &&
        clk != CLOCK_BOOTTIME) {
        vt_syscall_enter_block();
        int r = vt_real.clock_nanosleep(clk, flags, req, rem);
        vt_syscall_exit();
        return r;
    }
    if (!ts_ok(req))
        return EINVAL;
    bool abs = flags & TIMER_ABSTIME;
    int64_t d = abs ? pl_deadline_abs(clk, req) : pl_deadline_rel(req);
    return g_sleep(d, abs ? NULL : rem);
}

PL_PUBLIC int usleep(useconds_t us)
{
    if (!pl_on() || !vt_self())
        return vt_real.usleep(us);
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    return g_nanosleep(&ts, NULL);
}

/* glibc's: whole seconds not slept when interrupted; errno kept on
 * success. */
PL_PUBLIC unsigned sleep(unsigned seconds)
{
    if (!pl_on() || !vt_self())
        return vt_real.sleep(seconds);
    int saved = errno;
    struct timespec ts = {seconds, 0};
    if (g_sleep(pl_deadline_rel(&ts), &ts) == EINTR) {
        errno = EINTR;
        return (unsigned)ts.tv_sec;
    }
    errno = saved;
    return 0;
}

PL_ALIAS(nanosleep, __nanosleep);
