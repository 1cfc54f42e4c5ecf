/*
 * bench.h - tiny helpers shared by the vthread benchmark programs.
 *
 * Every benchmark is an ordinary POSIX-threads program: it knows nothing of
 * vthread and must behave identically whether it runs on NPTL or under
 * LD_PRELOAD=libvthread.so.  Each program prints exactly ONE line of JSON on
 * stdout, e.g.
 *
 *     {"case":"create_join","n":10000,"ns_per_op":1234.5,"ok":true}
 *
 * and exits 0 if its self-check passed, 1 otherwise ("ok":false).
 *
 * Include this header FIRST: it defines _GNU_SOURCE before any system header.
 */
#ifndef VTHREAD_BENCH_H
#define VTHREAD_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ time */

/* Monotonic clock in nanoseconds. */
static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------------------------- JSON line */

/*
 * The JSON line is accumulated in a static buffer and written with a single
 * fputs() + fflush() at the end, so it can never be interleaved with anything.
 */
static char bench_json_buf[4096];
static size_t bench_json_len;
static const char *bench_case_name = "?";

static inline void json_raw(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline void json_raw(const char *fmt, ...)
{
    if (bench_json_len >= sizeof bench_json_buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(bench_json_buf + bench_json_len,
                      sizeof bench_json_buf - bench_json_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        bench_json_len += (size_t)n;
}

/* Start the line: {"case":"<name>" */
static inline void json_begin(const char *case_name)
{
    bench_case_name = case_name;
    bench_json_len = 0;
    json_raw("{\"case\":\"%s\"", case_name);
}

static inline void json_int(const char *key, long long v)
{
    json_raw(",\"%s\":%lld", key, v);
}

static inline void json_dbl(const char *key, double v)
{
    json_raw(",\"%s\":%.3f", key, v);
}

/* Strings we emit are fixed identifiers/messages; escape the two risky chars
 * anyway so the line stays valid JSON. */
static inline void json_str(const char *key, const char *s)
{
    json_raw(",\"%s\":\"", key);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            json_raw("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            json_raw(" ");
        else
            json_raw("%c", *s);
    }
    json_raw("\"");
}

/* Finish the line with "ok", print it, and exit (0 if ok, 1 otherwise). */
static inline __attribute__((noreturn)) void json_end_exit(int ok)
{
    json_raw(",\"ok\":%s}\n", ok ? "true" : "false");
    fputs(bench_json_buf, stdout);
    fflush(stdout);
    exit(ok ? 0 : 1);
}

/*
 * Fatal error: print a JSON line with "ok":false and the message, exit 1.
 * Usable from any thread (exit() ends the whole process).
 */
static inline __attribute__((noreturn, format(printf, 1, 2)))
void bench_fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* If several threads fail at once, only the first one prints; the others
     * block here until exit() ends the process. */
    static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&fail_mu);
    json_begin(bench_case_name);
    json_str("error", msg);
    json_end_exit(0);
}

/* Check a pthread-style call that returns an error number (0 = success). */
#define PCHECK(call)                                                         \
    do {                                                                     \
        int pcheck_rc_ = (call);                                             \
        if (pcheck_rc_ != 0)                                                 \
            bench_fail("%s:%d: %s: %s", __FILE__, __LINE__, #call,           \
                       strerror(pcheck_rc_));                                \
    } while (0)

/* Check a libc call that returns -1 and sets errno on failure. */
#define SCHECK(call)                                                         \
    do {                                                                     \
        if ((call) == -1)                                                    \
            bench_fail("%s:%d: %s: %s", __FILE__, __LINE__, #call,           \
                       strerror(errno));                                     \
    } while (0)

/* ------------------------------------------------------------- arguments */

/* Positional integer argument argv[idx], or def if absent. Must be > 0. */
static inline long arg_long(int argc, char **argv, int idx, long def)
{
    if (argc <= idx)
        return def;
    char *end;
    errno = 0;
    long v = strtol(argv[idx], &end, 10);
    if (errno || *end || v <= 0)
        bench_fail("bad argument %d: '%s' (want a positive integer)", idx,
                   argv[idx]);
    return v;
}

/* ------------------------------------------------------ /proc/self/status */

/*
 * Value of a numeric field of /proc/self/status ("VmRSS:" in kB, "Threads:"),
 * or -1 if unavailable; proc_status_field() reads another status file
 * (e.g. "/proc/1234/status").  Uses only open/read-level stdio, which any
 * pthread replacement must support.
 */
static inline long proc_status_field(const char *path, const char *field)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t flen = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, flen) == 0) {
            v = strtol(line + flen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static inline long status_field(const char *field)
{
    return proc_status_field("/proc/self/status", field);
}

/* ------------------------------------------------------------ start gate */

/*
 * A one-shot gate built from a mutex and a condvar (deliberately not
 * pthread_barrier, to exercise the most common primitives): workers call
 * gate_arrive_wait() (or just gate_arrive()); the main thread waits for all
 * of them with
 * gate_wait_arrived(n) and releases them with gate_open().
 */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t arrived_cv; /* signalled when 'arrived' changes */
    pthread_cond_t open_cv;    /* broadcast when the gate opens */
    long arrived;
    int open;
};

#define GATE_INIT                                                            \
    { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,                   \
      PTHREAD_COND_INITIALIZER, 0, 0 }

/* Announce arrival without waiting for the gate to open. */
static inline void gate_arrive(struct gate *g, long expected)
{
    PCHECK(pthread_mutex_lock(&g->mu));
    if (++g->arrived == expected)
        PCHECK(pthread_cond_signal(&g->arrived_cv));
    PCHECK(pthread_mutex_unlock(&g->mu));
}

static inline void gate_arrive_wait(struct gate *g, long expected)
{
    PCHECK(pthread_mutex_lock(&g->mu));
    if (++g->arrived == expected)
        PCHECK(pthread_cond_signal(&g->arrived_cv));
    while (!g->open)
        PCHECK(pthread_cond_wait(&g->open_cv, &g->mu));
    PCHECK(pthread_mutex_unlock(&g->mu));
}

static inline void gate_wait_arrived(struct gate *g, long expected)
{
    PCHECK(pthread_mutex_lock(&g->mu));
    while (g->arrived < expected)
        PCHECK(pthread_cond_wait(&g->arrived_cv, &g->mu));
    PCHECK(pthread_mutex_unlock(&g->mu));
}

static inline void gate_open(struct gate *g)
{
    PCHECK(pthread_mutex_lock(&g->mu));
    g->open = 1;
    PCHECK(pthread_cond_broadcast(&g->open_cv));
    PCHECK(pthread_mutex_unlock(&g->mu));
}

#endif /* VTHREAD_BENCH_H */
