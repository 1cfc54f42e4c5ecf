/*
 * trace.c — VTHREAD_TRACE=FILE: an execution trace of the scheduler,
 * written at exit as Chrome trace-event JSON (Perfetto, chrome://tracing).
 *
 * What it shows:
 *  - one track per M (pid 1, tid = M id, "M<n> (tid <kernel tid>)") with
 *    a complete ("X") slice for every stretch a G ran on that M, from the
 *    switch to it until the switch away (park, yield, preemption, exit; a
 *    G in a system call stays on its M, as the OS thread does, and the
 *    call shows as two instants);
 *  - one track per P (pid 2, "Ps"), the same stretches by P at switch-in;
 *  - instants for create, park (with its wait reason), unpark (by whom),
 *    steal, P hand-off, retake by sysmon, preemption, system call entry
 *    and return, exit; sysmon's own on its track (tid 0);
 *  - a flow from each create and unpark to the next slice of that G.
 *
 * Recording.  Hooks (rt.h) test vt_trace_on with one relaxed load.  When
 * on, a hook appends a 32-byte binary record (vt_now(), kind, G id, two
 * arguments) to the buffer of the M whose OS thread runs it.  Only that
 * thread writes the buffer, so there is no lock and no atomic
 * read-modify-write: the count is published with a release store after
 * the record is complete, for the exit writer on another thread.  A
 * signal handler may interrupt a record half-way and record itself (a
 * sem_post in a handler): m->tr_busy turns the nested record into a
 * drop, rather than two writers of one slot.
 *   Threads without an M (sysmon, foreign threads) share one buffer in
 * which a slot is claimed with an atomic add and published by storing its
 * kind last: rare events, any number of writers, still no lock (a lock
 * would deadlock against a handler on the thread holding it).
 *
 * Bounded memory.  Each buffer holds VTHREAD_TRACE_EVENTS records (default
 * 2^18, 8 MiB), mapped at the M's first record (never touched pages cost
 * nothing).  The last slot takes a VT_TR_FULL marker with the time of the
 * first loss; every later record is counted as dropped.  The JSON says so
 * (an instant on the M's track and otherData.dropped), and so does one
 * line on stderr at exit.  Rejected: a ring that overwrites the oldest
 * records (the start of a trace is what explains the rest, and a ring
 * needs a reader protocol against the writer that laps it).
 *
 * Writing, at exit (at_exit_stats, sched.c): tracing is turned off first,
 * then each buffer's first tr_n records are read while other Ms may still
 * run (they no longer record).  Raw open/write system calls through one
 * 64 KiB buffer: stdio would go through the preload's wrappers, which may
 * enter the scheduler.  The writer allocates (qsort, dladdr, mmap): it
 * runs from atexit, never from a signal handler; a SIGQUIT dump is not
 * offered for that reason.  In a fork child tracing is off and nothing is
 * written (the buffers are the parent's); "%p" in FILE, replaced by the
 * process id, keeps the traces of exec'd children apart.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "rt.h"

_Atomic int vt_trace_on;

static uint32_t cap;         /* records per buffer; written before on */
static int64_t epoch;        /* vt_now() when tracing began: ts 0 */
static bool armed;           /* this process writes FILE at exit */
static _Atomic int written;  /* the writer ran (once per process) */

/* The shared buffer of threads without an M; see the top.  next counts
 * claims, including those beyond cap (dropped). */
static struct vt_trace_rec *shared_buf;
static _Atomic uint64_t shared_next;
static _Atomic int64_t shared_full_ts;
#define TR_SYSMON 0x100u     /* kind bit: recorded by sysmon */

static struct vt_trace_rec *const no_buf = (struct vt_trace_rec *)1;

static void *map(size_t size)
{
    long r = vt_sys6(SYS_mmap, 0, (long)size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return (unsigned long)r > -4096ul ? NULL : (void *)r;
}

vt_m *vt_trace_here(vt_m *cand)
{
    vt_g *g = vt_tp_g();
    if (g)
        return g->m; /* a running G's m is the M it runs on */
    /* On a g0 the thread pointer is that of its descriptor (set by mstart or
     * make_g0 before the M records anything).  The walk is for the rare
     * events of a g0 without a P (a poller readying Gs) and of threads
     * without an M, and only while tracing. */
    void *pd = vt_pd_self();
    if (cand && cand->g0 && cand->g0->pd == pd)
        return cand;
    if ((void *)vt_sched.sysmon == pd)
        return NULL;
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        if (m->g0 && m->g0->pd == pd)
            return m;
    return NULL;
}

static void drop(_Atomic uint64_t *c)
{
    st_relaxed(c, ld_relaxed(c) + 1); /* one writer per counter */
}

/* Appends *r (all but kind; ts 0: now) with kind to the buffer of m, the
 * M running the caller.  Held like a runtime lock: a G is not preempted
 * meanwhile (where libvthread's code is preemptible, in a static build,
 * it could resume on another M half-way through a record of this one's),
 * and the program's signal handlers wait.  Then m is read again, from the
 * G: the caller's m may have been read before a preemption. */
static void m_put(vt_m *m, struct vt_trace_rec *r, unsigned kind)
{
    vt_lock_count(1);
    vt_g *g = vt_tp_g();
    if (g)
        m = g->m;
    if (m->tr_busy) { /* we interrupted a record of this thread */
        drop(&m->tr_dropped);
        vt_lock_count(-1);
        return;
    }
    m->tr_busy = 1;
    atomic_signal_fence(memory_order_seq_cst);
    struct vt_trace_rec *buf = m->tr_buf;
    if (unlikely(!buf)) {
        buf = map((size_t)cap * sizeof *buf);
        m->tr_buf = buf = buf ? buf : no_buf;
    }
    uint32_t n = ld_relaxed(&m->tr_n);
    if (unlikely(buf == no_buf || n >= cap)) {
        drop(&m->tr_dropped);
    } else {
        struct vt_trace_rec *d = &buf[n];
        if (unlikely(n == cap - 1)) {
            /* the last slot says when the losses began */
            drop(&m->tr_dropped);
            memset(d, 0, sizeof *d);
            d->ts = vt_now();
            kind = VT_TR_FULL;
        } else {
            *d = *r;
            if (kind != VT_TR_NAME)
                d->ts = vt_now();
        }
        st_relaxed(&d->kind, kind);
        st_release(&m->tr_n, n + 1);
    }
    atomic_signal_fence(memory_order_seq_cst);
    m->tr_busy = 0;
    vt_lock_count(-1); /* (delivers what waited, as any lock release) */
}

/* From a thread without an M.  Any thread, any number at once. */
static void shared_put(struct vt_trace_rec *r, unsigned kind)
{
    if (!shared_buf)
        return;
    uint64_t i = xadd(&shared_next, 1);
    if (i >= cap) {
        int64_t z = 0;
        if (i == cap)
            cas(&shared_full_ts, &z, vt_now());
        return; /* counted: shared_next - cap */
    }
    struct vt_trace_rec *d = &shared_buf[i];
    d->ts = kind == VT_TR_NAME ? r->ts : vt_now(); /* (a name's 1st half) */
    d->b = r->b;
    d->g = r->g;
    d->a = r->a;
    if (vt_sched.sysmon == (pthread_t)vt_pd_self())
        kind |= TR_SYSMON;
    st_release(&d->kind, kind); /* the writer skips a slot still 0 */
}

void vt_trace_rec(vt_m *m, unsigned kind, uint64_t g, uint32_t a, uint64_t b)
{
    struct vt_trace_rec r;
    r.ts = 0; /* read by the put, once in place */
    r.b = b;
    r.g = g;
    r.a = a;
    if (m)
        m_put(m, &r, kind);
    else
        shared_put(&r, kind);
}

void vt_trace_name(vt_g *g, const char *name)
{
    if (likely(!ld_relaxed(&vt_trace_on)))
        return;
    struct vt_trace_rec r;
    memset(&r, 0, sizeof r);
    strncpy(r.name, name, sizeof r.name - 1);
    r.g = g->id;
    vt_m *m = vt_trace_here(NULL);
    if (m)
        m_put(m, &r, VT_TR_NAME);
    else
        shared_put(&r, VT_TR_NAME);
}

/* vt_start, on the first G (g) of M0 (m), which holds its P: from here
 * on everything is recorded, beginning with g's first stretch. */
void vt_trace_start(vt_m *m, vt_g *g)
{
    cap = vt_cfg.trace_events;
    epoch = vt_now();
    shared_buf = map((size_t)cap * sizeof *shared_buf);
    armed = true;
    st_release(&vt_trace_on, 1);
    vt_trace_run(m, g);
}

/* The child of a fork: its buffers are copies of the parent's, its FILE
 * the parent's too.  It records and writes nothing. */
void vt_trace_fork_child(void)
{
    st_relaxed(&vt_trace_on, 0);
    armed = false;
}

/* ================================================================ writer */
/* Everything below runs once, at exit, on the thread calling exit. */

static struct {
    int fd;
    bool failed;
    size_t n;
    char buf[65536];
} o;

static void flush(void)
{
    const char *p = o.buf;
    while (o.n > 0 && !o.failed) {
        long w = vt_sys3(SYS_write, o.fd, p, o.n);
        if (w == -EINTR)
            continue;
        if (w <= 0) {
            o.failed = true;
            break;
        }
        p += w;
        o.n -= (size_t)w;
    }
    o.n = 0;
}

static void put(const char *s, size_t n)
{
    if (o.n + n > sizeof o.buf)
        flush();
    if (n > sizeof o.buf)
        return; /* (never: callers write short pieces) */
    memcpy(o.buf + o.n, s, n);
    o.n += n;
}

static void puts_(const char *s) { put(s, strlen(s)); }

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
    if (sizeof o.buf - o.n < 512)
        flush();
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o.buf + o.n, sizeof o.buf - o.n, fmt, ap);
    va_end(ap);
    if (n > 0)
        o.n += (size_t)n < sizeof o.buf - o.n ? (size_t)n
                                              : sizeof o.buf - o.n - 1;
}

/* A JSON string of at most max bytes of s: quotes, backslashes and
 * control characters escaped; bytes that are not well-formed UTF-8 (a
 * thread name is any bytes) become '?', so that the file always parses. */
static void put_jstr(const char *s, size_t max)
{
    put("\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *e = p + strnlen(s, max);
    while (p < e) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(esc, 2);
            p++;
        } else if (c < 0x20) {
            outf("\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            put((const char *)p, 1);
            p++;
        } else {
            int len = c >= 0xf0 && c < 0xf5 ? 4
                      : c >= 0xe0           ? 3
                      : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            bool ok = len && e - p >= len;
            for (int i = 1; ok && i < len; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (ok) {
                put((const char *)p, (size_t)len);
                p += len;
            } else {
                put("?", 1);
                p++;
            }
        }
    }
    put("\"", 1);
}

/* Microseconds since the epoch with the nanoseconds as decimals. */
static void put_ts(const char *key, int64_t ns)
{
    ns -= epoch;
    if (ns < 0)
        ns = 0;
    outf(",\"%s\":%lld.%03lld", key, (long long)(ns / 1000),
         (long long)(ns % 1000));
}

static bool first_event = true;

/* Starts an event object: {"ph":..,"pid":..,"tid":..,"ts":.. */
static void ev(const char *ph, int pid, long long tid, int64_t ts)
{
    puts_(first_event ? "\n" : ",\n");
    first_event = false;
    outf("{\"ph\":\"%s\",\"pid\":%d,\"tid\":%lld", ph, pid, tid);
    if (ts != INT64_MIN)
        put_ts("ts", ts);
}

static void meta(const char *what, int pid, long long tid, const char *name)
{
    ev("M", pid, tid, INT64_MIN);
    outf(",\"name\":\"%s\",\"args\":{\"name\":", what);
    put_jstr(name, 256);
    puts_("}}");
}

static void sort_index(int pid, long long tid, long long idx)
{
    ev("M", pid, tid, INT64_MIN);
    outf(",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%lld}}",
         idx);
}

enum { PID_M = 1, PID_P = 2 };
#define TID_SYSMON 0
#define TID_FOREIGN 2147483647LL /* threads without an M, not sysmon */

/* --- G names: the last VT_TR_NAME of each G, in an open-addressed table */
struct gname {
    uint64_t g; /* 0: empty slot */
    char name[16];
};
static struct gname *names;
static size_t names_mask;

static struct gname *name_slot(uint64_t g)
{
    size_t i = (size_t)(g * 0x9e3779b97f4a7c15ull >> 20) & names_mask;
    while (names[i].g && names[i].g != g)
        i = (i + 1) & names_mask;
    return &names[i];
}

static const char *name_of(uint64_t g)
{
    if (!names)
        return NULL;
    struct gname *s = name_slot(g);
    return s->g ? s->name : NULL;
}

/* --- start routines by name (dladdr), cached per address */
static struct {
    uintptr_t fn;
    const char *sym;
} symcache[512];

static const char *sym_of(uintptr_t fn)
{
    size_t i = (fn >> 4) % (sizeof symcache / sizeof symcache[0]);
    if (symcache[i].fn != fn) {
        Dl_info di;
        symcache[i].fn = fn;
        symcache[i].sym = dladdr((void *)fn, &di) && di.dli_sname &&
                                  (uintptr_t)di.dli_saddr == fn
                              ? di.dli_sname
                              : NULL;
    }
    return symcache[i].sym;
}

/* --- run slices, kept for the P tracks and the flows */
struct slice {
    int64_t ts, end;
    uint64_t g;
    uintptr_t fn;
    int m, p; /* p: -1 when the M held none at switch-in */
};
static struct slice *slices;
static size_t nslices;

static void slice_name(uint64_t g)
{
    const char *nm = name_of(g);
    if (nm) {
        char buf[48];
        snprintf(buf, sizeof buf, "G%llu %s", (unsigned long long)g, nm);
        put_jstr(buf, sizeof buf);
    } else {
        outf("\"G%llu\"", (unsigned long long)g);
    }
}

static void emit_slice(const struct slice *s, int pid, long long tid)
{
    int64_t d = s->end - s->ts;
    ev("X", pid, tid, s->ts);
    outf(",\"dur\":%lld.%03lld,\"cat\":\"run\",\"name\":",
         (long long)(d / 1000), (long long)(d % 1000));
    slice_name(s->g);
    outf(",\"args\":{\"g\":%llu", (unsigned long long)s->g);
    if (pid == PID_P)
        outf(",\"m\":%d", s->m);
    else if (s->p >= 0)
        outf(",\"p\":%d", s->p);
    if (s->fn) {
        outf(",\"fn\":\"%#lx\"", (unsigned long)s->fn);
        const char *sym = sym_of(s->fn);
        if (sym) {
            puts_(",\"sym\":");
            put_jstr(sym, 256);
        }
    }
    puts_("}}");
}

static const char *retake_kind(uint64_t b)
{
    switch (b & 0xff) {
    case 0: return "syscall";
    case 1: return "blocked";
    default: return "busy";
    }
}

/* One instant (any kind but RUN, NAME, FULL) on track tid. */
static void emit_instant(const struct vt_trace_rec *r, unsigned kind,
                         long long tid)
{
    unsigned long long g = (unsigned long long)r->g;
    ev("i", PID_M, tid, r->ts);
    puts_(",\"s\":\"t\",\"cat\":\"sched\",\"name\":");
    switch (kind) {
    case VT_TR_CREATE:
        outf("\"create G%llu\",\"args\":{\"g\":%llu,\"by\":%llu}", g, g,
             (unsigned long long)r->b);
        break;
    case VT_TR_PARK: {
        const char *why = (const char *)(uintptr_t)r->b;
        outf("\"park\",\"args\":{\"g\":%llu,\"reason\":", g);
        put_jstr(why ? why : "unspecified", 128);
        puts_("}");
        break;
    }
    case VT_TR_UNPARK:
        outf("\"unpark G%llu\",\"args\":{\"g\":%llu,\"by\":%llu}", g, g,
             (unsigned long long)r->b);
        break;
    case VT_TR_STEAL:
        outf("\"steal\",\"args\":{\"from_p\":%u,\"to_p\":%llu,\"n\":%llu}",
             r->a, (unsigned long long)(r->b >> 32),
             (unsigned long long)(r->b & 0xffffffffu));
        break;
    case VT_TR_HANDOFF:
        outf("\"handoff P%u\",\"args\":{\"p\":%u,\"g\":%llu}", r->a, r->a, g);
        break;
    case VT_TR_RETAKE:
        outf("\"retake P%u (%s)\",\"args\":{\"p\":%u,\"kind\":\"%s\","
             "\"from_m\":%llu}",
             r->a, retake_kind(r->b), r->a, retake_kind(r->b),
             (unsigned long long)(r->b >> 8));
        break;
    case VT_TR_PREEMPT:
        outf("\"preempt G%llu\",\"args\":{\"g\":%llu}", g, g);
        break;
    case VT_TR_SYSCALL:
        outf("\"%s\",\"args\":{\"g\":%llu}",
             r->a ? "syscall (hands off its P)" : "syscall", g);
        break;
    case VT_TR_SYSRET:
        outf("\"%s\",\"args\":{\"g\":%llu}",
             r->a ? "syscall return (P lost)" : "syscall return", g);
        break;
    case VT_TR_EXIT:
        outf("\"exit G%llu\",\"args\":{\"g\":%llu}", g, g);
        break;
    default:
        outf("\"kind %u\"", kind);
        break;
    }
    puts_("}");
}

static void emit_dropped(uint64_t n, const char *where, long long tid,
                         int64_t ts, bool full)
{
    ev("i", PID_M, tid, ts);
    char buf[160];
    snprintf(buf, sizeof buf, "vthread: %llu events dropped (%s%s)",
             (unsigned long long)n, full ? "buffer full on " : "on ", where);
    puts_(",\"s\":\"g\",\"cat\":\"vthread\",\"name\":");
    put_jstr(buf, sizeof buf);
    outf(",\"args\":{\"dropped\":%llu}}", (unsigned long long)n);
}

static int cmp_by_p(const void *x, const void *y)
{
    const struct slice *a = x, *b = y;
    if (a->p != b->p)
        return a->p < b->p ? -1 : 1;
    return a->ts < b->ts ? -1 : a->ts > b->ts;
}

static int cmp_by_g(const void *x, const void *y)
{
    const struct slice *a = x, *b = y;
    if (a->g != b->g)
        return a->g < b->g ? -1 : 1;
    return a->ts < b->ts ? -1 : a->ts > b->ts;
}

/* The first slice of g that begins at or after ts (slices by G), or NULL. */
static const struct slice *next_slice(uint64_t g, int64_t ts)
{
    size_t lo = 0, hi = nslices;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct slice *s = &slices[mid];
        if (s->g < g || (s->g == g && s->ts < ts))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nslices && slices[lo].g == g ? &slices[lo] : NULL;
}

static uint64_t flow_id;

/* A flow from a create or unpark on track tid to g's next slice. */
static void emit_flow(const struct vt_trace_rec *r, long long tid)
{
    const struct slice *s = next_slice(r->g, r->ts);
    if (!s)
        return;
    flow_id++;
    ev("s", PID_M, tid, r->ts);
    outf(",\"cat\":\"wake\",\"name\":\"wake\",\"id\":%llu}",
         (unsigned long long)flow_id);
    ev("f", PID_M, s->m, s->ts);
    outf(",\"bp\":\"e\",\"cat\":\"wake\",\"name\":\"wake\",\"id\":%llu}",
         (unsigned long long)flow_id);
}

/* The file name with %p replaced by the process id (%% is one %). */
static bool make_path(char *out, size_t size)
{
    const char *s = vt_cfg.trace_file;
    size_t n = 0;
    for (; *s; s++) {
        char num[24];
        const char *piece = s;
        size_t len = 1;
        if (s[0] == '%' && s[1] == 'p') {
            len = (size_t)snprintf(num, sizeof num, "%ld",
                                   vt_sys0(SYS_getpid));
            piece = num;
            s++;
        } else if (s[0] == '%' && s[1] == '%') {
            s++;
        }
        if (n + len >= size)
            return false;
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = 0;
    return true;
}

/* The records of a buffer, up to n, as read by the writer. */
static uint32_t m_count(vt_m *m)
{
    return m->tr_buf && m->tr_buf != no_buf ? ld_acquire(&m->tr_n) : 0;
}

static uint32_t shared_count(void)
{
    uint64_t n = ld_acquire(&shared_next);
    return shared_buf ? (uint32_t)(n < cap ? n : cap) : 0;
}

/* The first pass: every G's last name, from every buffer. */
static void collect_names(void)
{
    size_t count = 0;
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        for (uint32_t i = 0, n = m_count(m); i < n; i++)
            count += ld_relaxed(&m->tr_buf[i].kind) == VT_TR_NAME;
    for (uint32_t i = 0, n = shared_count(); i < n; i++)
        count += (ld_acquire(&shared_buf[i].kind) & 0xff) == VT_TR_NAME;
    if (!count)
        return;
    size_t size = 16;
    while (size < 2 * count)
        size *= 2;
    names = map(size * sizeof *names);
    if (!names)
        return;
    names_mask = size - 1;
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        for (uint32_t i = 0, n = m_count(m); i < n; i++) {
            const struct vt_trace_rec *r = &m->tr_buf[i];
            if (ld_relaxed(&r->kind) == VT_TR_NAME && r->g) {
                struct gname *s = name_slot(r->g);
                s->g = r->g;
                memcpy(s->name, r->name, sizeof s->name);
                s->name[15] = 0;
            }
        }
    for (uint32_t i = 0, n = shared_count(); i < n; i++) {
        const struct vt_trace_rec *r = &shared_buf[i];
        if ((ld_acquire(&r->kind) & 0xff) == VT_TR_NAME && r->g) {
            struct gname *s = name_slot(r->g);
            s->g = r->g;
            memcpy(s->name, r->name, sizeof s->name);
            s->name[15] = 0;
        }
    }
}

/* One M's track: its slices (kept in slices[]) and instants.  Returns
 * the records it dropped. */
static uint64_t write_m(vt_m *m, int64_t end)
{
    uint32_t n = m_count(m);
    uint64_t dropped = ld_relaxed(&m->tr_dropped);
    if (!n && !dropped)
        return 0;
    char label[64];
    snprintf(label, sizeof label, "M%d (tid %d)", m->id, (int)m->tid);
    meta("thread_name", PID_M, m->id, label);
    sort_index(PID_M, m->id, m->id);
    struct slice cur = {.g = 0};
    int64_t full_ts = INT64_MIN;
    for (uint32_t i = 0; i < n; i++) {
        const struct vt_trace_rec *r = &m->tr_buf[i];
        unsigned kind = ld_relaxed(&r->kind);
        if (kind == VT_TR_NAME)
            continue;
        if (kind == VT_TR_RUN || kind == VT_TR_FULL) {
            if (cur.g) {
                cur.end = r->ts;
                emit_slice(&cur, PID_M, m->id);
                if (slices)
                    slices[nslices++] = cur;
            }
            cur.g = kind == VT_TR_RUN ? r->g : 0;
            cur.ts = r->ts;
            cur.fn = (uintptr_t)r->b;
            cur.m = m->id;
            cur.p = (int)r->a - 1;
            if (kind == VT_TR_FULL)
                full_ts = r->ts;
            continue;
        }
        emit_instant(r, kind, m->id);
    }
    if (cur.g) { /* still running at exit */
        cur.end = end;
        emit_slice(&cur, PID_M, m->id);
        if (slices)
            slices[nslices++] = cur;
    }
    if (dropped) {
        char where[32];
        snprintf(where, sizeof where, "M%d", m->id);
        emit_dropped(dropped, where, m->id, full_ts != INT64_MIN ? full_ts : end,
                     full_ts != INT64_MIN);
    }
    return dropped;
}

static void write_shared(int64_t end, uint64_t *dropped)
{
    uint32_t n = shared_count();
    bool any[2] = {false, false}; /* sysmon, foreign */
    for (uint32_t i = 0; i < n; i++) {
        const struct vt_trace_rec *r = &shared_buf[i];
        unsigned k = ld_acquire(&r->kind);
        if (!k)
            continue; /* still being written */
        long long tid = k & TR_SYSMON ? TID_SYSMON : TID_FOREIGN;
        if (!any[tid != TID_SYSMON]) {
            any[tid != TID_SYSMON] = true;
            meta("thread_name", PID_M, tid,
                 tid == TID_SYSMON ? "sysmon" : "threads without an M");
            sort_index(PID_M, tid, tid == TID_SYSMON ? 0 : TID_FOREIGN);
        }
        k &= 0xff;
        if (k != VT_TR_NAME && k != VT_TR_RUN && k != VT_TR_FULL)
            emit_instant(r, k, tid);
    }
    uint64_t next = ld_relaxed(&shared_next);
    if (shared_buf && next > cap) {
        int64_t ts = ld_relaxed(&shared_full_ts);
        emit_dropped(next - cap, "sysmon and threads without an M",
                     TID_SYSMON, ts ? ts : end, true);
        *dropped += next - cap;
    }
}

/* The P tracks: the M slices by P at switch-in, each cut where the next
 * one on that P begins (a P retaken from a G blocked in the kernel runs
 * other Gs while the G's slice goes on on its M). */
static void write_ps(void)
{
    qsort(slices, nslices, sizeof *slices, cmp_by_p);
    int last_p = -1;
    for (size_t i = 0; i < nslices; i++) {
        struct slice s = slices[i];
        if (s.p < 0)
            continue;
        if (s.p != last_p) {
            char label[24];
            snprintf(label, sizeof label, "P%d", s.p);
            meta("thread_name", PID_P, s.p, label);
            sort_index(PID_P, s.p, s.p);
            last_p = s.p;
        }
        if (i + 1 < nslices && slices[i + 1].p == s.p &&
            slices[i + 1].ts < s.end)
            s.end = slices[i + 1].ts;
        emit_slice(&s, PID_P, s.p);
    }
}

/* Flows from each create and unpark to the G's next slice. */
static void write_flows(void)
{
    qsort(slices, nslices, sizeof *slices, cmp_by_g);
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        for (uint32_t i = 0, n = m_count(m); i < n; i++) {
            const struct vt_trace_rec *r = &m->tr_buf[i];
            unsigned k = ld_relaxed(&r->kind);
            if (k == VT_TR_CREATE || k == VT_TR_UNPARK)
                emit_flow(r, m->id);
        }
    for (uint32_t i = 0, n = shared_count(); i < n; i++) {
        const struct vt_trace_rec *r = &shared_buf[i];
        unsigned k = ld_acquire(&r->kind);
        if ((k & 0xff) == VT_TR_CREATE || (k & 0xff) == VT_TR_UNPARK)
            emit_flow(r, k & TR_SYSMON ? TID_SYSMON : TID_FOREIGN);
    }
}

void vt_trace_at_exit(void)
{
    if (!armed || xchg(&written, 1))
        return;
    st_release(&vt_trace_on, 0); /* the buffers grow no more */
    int64_t end = vt_now();
    char path[4096];
    if (!make_path(path, sizeof path)) {
        vt_say("VTHREAD_TRACE='%s': the name is too long",
                  vt_cfg.trace_file);
        return;
    }
    long fd = vt_sys4(SYS_openat, AT_FDCWD, path,
                      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        vt_say("VTHREAD_TRACE='%s': cannot create the trace: %s",
                  path, strerror((int)-fd));
        return;
    }
    o.fd = (int)fd;

    size_t runs = 0;
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        runs += m_count(m);
    slices = runs ? map(runs * sizeof *slices) : NULL; /* (an upper bound) */
    collect_names();

    puts_("{\"traceEvents\":[");
    char label[64];
    snprintf(label, sizeof label, "vthread Ms (pid %ld)", vt_sys0(SYS_getpid));
    meta("process_name", PID_M, 0, label);
    meta("process_name", PID_P, 0, "Ps");
    uint64_t dropped = 0;
    write_shared(end, &dropped);
    for (vt_m *m = ld_acquire((vt_m *_Atomic *)&vt_sched.allm); m;
         m = m->allnext)
        dropped += write_m(m, end);
    if (slices) {
        write_ps();
        write_flows();
    }
    outf("\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"version\":"
         "\"vthread execution trace 1\",\"clock\":\"CLOCK_MONOTONIC\","
         "\"epoch_ns\":%lld,\"events_per_m\":%u,\"dropped\":%llu}}\n",
         (long long)epoch, cap, (unsigned long long)dropped);
    flush();
    bool failed = o.failed;
    vt_sys1(SYS_close, o.fd);
    if (failed)
        vt_say("VTHREAD_TRACE='%s': writing the trace failed",
                  path);
    if (dropped)
        vt_say("trace: %llu events dropped; raise "
                  "VTHREAD_TRACE_EVENTS",
                  (unsigned long long)dropped);
}
