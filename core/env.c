/*
 * env.c — configuration from the environment, validated once at start-up.
 * A bad value is a one-line error naming the variable (exit status 2).
 *
 *   VTHREAD_PROCS=N          Ps (1..1024); default: CPUs in the affinity mask
 *   VTHREAD_STACK_SIZE=SIZE  default stack of a G (16K..1G; suffix k, m, g);
 *                            default RLIMIT_STACK as glibc (2 MiB if
 *                            unlimited)
 *   VTHREAD_MAX_THREADS=N    cap on OS threads (Ms), default 10000
 *   VTHREAD_DEBUG=LIST       comma list: stats, sched (the seeded
 *                            scheduler's summary at exit), schedtrace=MS
 *   VTHREAD_DISABLE=1        pass everything through to glibc
 *   VTHREAD_PREEMPT_SIGNAL=N signal used to preempt Gs running > 3 ms
 *                            while others wait; 0 turns preemption off;
 *                            default SIGURG (23)
 *   VTHREAD_TRACEBACK=WHEN   none, crash, sigquit or all: dump every G
 *                            with its backtrace (core/traceback.c)
 *   VTHREAD_SCHED=MODE       fifo (default), random:SEED or
 *                            pct:SEED[:DEPTH[:STEPS]]: the seeded schedule
 *                            fuzzer (core/fuzz.c, docs/fuzzing.md); makes
 *                            VTHREAD_PROCS default to 1
 *   VTHREAD_SCHED_REPORT=FILE  with VTHREAD_SCHED: append the scheduler's
 *                            summary line to FILE at exit (absolute path;
 *                            ignored in secure-execution mode)
 *   VTHREAD_TRACE=FILE       write an execution trace (Chrome trace-event
 *                            JSON, core/trace.c) to FILE at exit; %p in
 *                            FILE is the process id; a relative FILE is
 *                            taken from the start-up directory (ignored in
 *                            secure-execution mode)
 *   VTHREAD_TRACE_EVENTS=N   trace records kept per M (16..2^26, default
 *                            2^18: 8 MiB); beyond, events are dropped
 *   VTHREAD_FSBASE=MODE      auto (default), wrfsbase, or syscall: how the
 *                            thread pointer is switched (syscall forces
 *                            arch_prctl, to measure machines without
 *                            FSGSBASE; wrfsbase fails if unsupported)
 *   VTHREAD_GUARD=MODE       auto (default) or mprotect: how the guard page
 *                            below each stack is made.  auto uses guard
 *                            regions (Linux >= 6.13: no extra mapping per
 *                            thread), which gdb's gcore cannot read past:
 *                            mprotect makes gcore's cores whole
 *                            (docs/debugging.md)
 *
 * In secure-execution mode (getauxval(AT_SECURE): setuid, setgid, file
 * capabilities) the variables that write files or show memory are
 * ignored, as glibc ignores its own diagnostic ones there:
 * VTHREAD_SCHED_REPORT, VTHREAD_TRACE and VTHREAD_TRACEBACK (which prints addresses,
 * defeating the address-space randomisation of a privileged program).
 */
#include <ctype.h>
#include <signal.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rt.h"

struct vt_config vt_cfg;

/* Parses a whole decimal number with an optional k/m/g suffix (binary).
 * Returns false on anything else. */
static bool parse_size(const char *s, unsigned long long *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    }
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end != '\0' || (shift && v > (ULLONG_MAX >> shift)))
        return false;
    *out = v << shift;
    return true;
}

static long env_int(const char *name, long lo, long hi, long dflt)
{
    const char *s = getenv(name);
    if (!s)
        return dflt;
    unsigned long long v;
    bool ok = true;
    const char *p = s;
    if (!*p)
        ok = false;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            ok = false;
    if (ok) {
        errno = 0;
        v = strtoull(s, NULL, 10);
        ok = errno == 0 && v >= (unsigned long long)lo &&
             v <= (unsigned long long)hi;
    }
    if (!ok)
        vt_config_error("%s='%s': expected a whole number from %ld to %ld",
                        name, s, lo, hi);
    return (long)v;
}

static size_t default_stack_size(void)
{
    struct rlimit rl;
    /* glibc: RLIMIT_STACK, or 2 MiB when unlimited (ARCH_STACK_DEFAULT_SIZE
     * is 32 MiB only on ia64); never below PTHREAD_STACK_MIN. */
    if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 2u << 20;
    size_t s = rl.rlim_cur;
    if (s < 16384)
        s = 16384;
    return s;
}

static void parse_debug(const char *s)
{
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == 5 && !strncmp(p, "stats", 5)) {
            vt_cfg.stats = true;
        } else if (len == 5 && !strncmp(p, "sched", 5)) {
            vt_cfg.sched_report = true;
        } else if (len > 11 && !strncmp(p, "schedtrace=", 11)) {
            char num[16];
            size_t n = len - 11;
            bool ok = n < sizeof num;
            if (ok) {
                memcpy(num, p + 11, n);
                num[n] = 0;
                for (size_t i = 0; i < n; i++)
                    if (!isdigit((unsigned char)num[i]))
                        ok = false;
            }
            long ms = ok ? strtol(num, NULL, 10) : 0;
            if (!ok || ms < 1 || ms > 3600000)
                vt_config_error("VTHREAD_DEBUG='%s': schedtrace wants a period "
                                "in ms from 1 to 3600000, as schedtrace=1000",
                                s);
            vt_cfg.schedtrace_ms = (int)ms;
        } else if (len > 0) {
            vt_config_error("VTHREAD_DEBUG='%s': unknown item '%.*s' "
                            "(known: stats, sched, schedtrace=MS)",
                            s, (int)len, p);
        }
        p += len;
        if (*p == ',')
            p++;
    }
}

/* VTHREAD_SCHED: fifo | random:SEED | pct:SEED[:DEPTH[:STEPS]]. */
static void parse_sched(const char *s)
{
    vt_cfg.sched = 0;
    if (!s || !*s || !strcmp(s, "fifo"))
        return;
    const char *rest;
    if (!strncmp(s, "random:", 7)) {
        vt_cfg.sched = VT_FUZZ_RANDOM;
        rest = s + 7;
    } else if (!strncmp(s, "pct:", 4)) {
        vt_cfg.sched = VT_FUZZ_PCT;
        rest = s + 4;
    } else {
        goto bad;
    }
    unsigned long long v[3] = {0, 3, 0};
    int n = 0;
    while (n < 3) {
        if (!isdigit((unsigned char)*rest))
            goto bad;
        errno = 0;
        char *end;
        v[n++] = strtoull(rest, &end, 10);
        if (errno)
            goto bad;
        rest = end;
        if (*rest != ':')
            break;
        rest++;
    }
    if (*rest || (vt_cfg.sched == VT_FUZZ_RANDOM && n != 1) || v[1] < 1 || v[1] > 16)
        goto bad;
    vt_cfg.sched_seed = v[0];
    vt_cfg.pct_depth = (int)v[1];
    vt_cfg.pct_steps = v[2];
    return;
bad:
    vt_config_error("VTHREAD_SCHED='%s': expected fifo, random:SEED or "
                    "pct:SEED[:DEPTH[:STEPS]] (SEED a number, DEPTH 1..16)",
                    s);
}

void vt_config_load(void)
{
    const char *dis = getenv("VTHREAD_DISABLE");
    if (dis && strcmp(dis, "0") && strcmp(dis, "1") && *dis)
        vt_config_error("VTHREAD_DISABLE='%s': expected 0 or 1", dis);
    vt_cfg.disabled = dis && !strcmp(dis, "1");

    cpu_set_t set;
    int ncpu = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        ncpu = CPU_COUNT(&set);
    if (ncpu < 1)
        ncpu = 1;
    if (ncpu > 1024)
        ncpu = 1024;
    parse_sched(getenv("VTHREAD_SCHED"));
    /* Secure execution (setuid, setgid, file capabilities): no file is
     * written and no address shown on a variable's say, as glibc ignores
     * its own diagnostic variables there (top of this file). */
    bool secure = getauxval(AT_SECURE) != 0;
    vt_cfg.sched_report_file = secure ? NULL : getenv("VTHREAD_SCHED_REPORT");
    if (vt_cfg.sched_report_file && vt_cfg.sched_report_file[0] != '/')
        vt_config_error("VTHREAD_SCHED_REPORT='%s': expected an absolute "
                        "path", vt_cfg.sched_report_file);
    /* (A relative trace name is made absolute now, so that a chdir by
     * the program does not move it.) */
    const char *tf = secure ? NULL : getenv("VTHREAD_TRACE");
    vt_cfg.trace_file = NULL;
    if (tf && *tf == '/') {
        vt_cfg.trace_file = tf;
    } else if (tf && *tf) {
        static char abs_trace[4096];
        size_t n = getcwd(abs_trace, sizeof abs_trace) ? strlen(abs_trace) : 0;
        if (!n || n + 1 + strlen(tf) + 1 > sizeof abs_trace)
            vt_config_error("VTHREAD_TRACE='%s': cannot make it an absolute "
                            "path (give one)", tf);
        abs_trace[n] = '/';
        strcpy(abs_trace + n + 1, tf);
        vt_cfg.trace_file = abs_trace;
    }
    vt_cfg.trace_events = (uint32_t)env_int("VTHREAD_TRACE_EVENTS", 16,
                                            1l << 26, 1l << 18);
    /* A seeded schedule replays only when one P makes every decision:
     * fuzzing runs on one P unless told otherwise. */
    vt_cfg.procs = (int)env_int("VTHREAD_PROCS", 1, 1024,
                                vt_cfg.sched ? 1 : ncpu);
    vt_cfg.max_ms = (int)env_int("VTHREAD_MAX_THREADS", 4, 1000000, 10000);

    const char *ss = getenv("VTHREAD_STACK_SIZE");
    if (ss) {
        unsigned long long v;
        if (!parse_size(ss, &v) || v < 16384 || v > (1ull << 30))
            vt_config_error("VTHREAD_STACK_SIZE='%s': expected a size from "
                            "16k to 1g (bytes, or with suffix k, m or g)",
                            ss);
        vt_cfg.stack_size = (size_t)v;
    } else {
        vt_cfg.stack_size = default_stack_size();
    }

    vt_cfg.preempt_signal = (int)env_int("VTHREAD_PREEMPT_SIGNAL", 0, 64,
                                         SIGURG);
    int ps = vt_cfg.preempt_signal;
    if (ps == SIGKILL || ps == SIGSTOP || ps == 32 || ps == 33)
        vt_config_error("VTHREAD_PREEMPT_SIGNAL='%d': that signal cannot be "
                        "caught or is reserved by glibc", ps);

    const char *fs = getenv("VTHREAD_FSBASE");
    vt_cfg.fsbase = 0;
    if (fs && !strcmp(fs, "wrfsbase"))
        vt_cfg.fsbase = 1;
    else if (fs && !strcmp(fs, "syscall"))
        vt_cfg.fsbase = 2;
    else if (fs && strcmp(fs, "auto"))
        vt_config_error("VTHREAD_FSBASE='%s': expected auto, wrfsbase or "
                        "syscall", fs);

    const char *gd = getenv("VTHREAD_GUARD");
    vt_cfg.guard_mprotect = gd && !strcmp(gd, "mprotect");
    if (gd && strcmp(gd, "mprotect") && strcmp(gd, "auto"))
        vt_config_error("VTHREAD_GUARD='%s': expected auto or mprotect", gd);

    const char *tb = secure ? NULL : getenv("VTHREAD_TRACEBACK");
    vt_cfg.traceback = 0;
    if (tb && !strcmp(tb, "crash"))
        vt_cfg.traceback = 1;
    else if (tb && !strcmp(tb, "sigquit"))
        vt_cfg.traceback = 2;
    else if (tb && !strcmp(tb, "all"))
        vt_cfg.traceback = 3;
    else if (tb && *tb && strcmp(tb, "none"))
        vt_config_error("VTHREAD_TRACEBACK='%s': expected none, crash, "
                        "sigquit or all", tb);

    const char *dbg = getenv("VTHREAD_DEBUG");
    if (dbg)
        parse_debug(dbg);
}
