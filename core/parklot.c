/*
 * parklot.c — the address-keyed parking lot under every primitive.
 *
 * A fixed table of buckets, each a vt_lock and a FIFO list of waiters, the
 * bucket chosen by hashing the address (like the kernel's futex table or
 * WebKit's ParkingLot).  The primitives keep their state in their own word
 * and use the lot only to sleep and wake:
 *
 *   park:    lock bucket; if validate() (the word still says "wait"):
 *            queue the waiter, mark the G waiting; unlock; before_sleep();
 *            arm the deadline timer; switch away.
 *   unpark:  lock bucket; dequeue the oldest waiter on addr; callback();
 *            unlock; make it runnable (vt_ready) or futex-wake it.
 *
 * No lost wake-up: validate runs under the bucket lock, and a waker that
 * changes the word and then unparks must take the same lock, so it either
 * runs before validate (which then sees the new word) or finds the waiter
 * queued.  Exactly one party dequeues a waiter (unpark, the deadline timer,
 * or vt_interrupt), under the bucket lock, and only that party readies it.
 * A G readied before it finished switching away is safe: see on_cpu in rt.h.
 *
 * Non-G callers (threads the runtime did not create, sysmon, anything
 * before the runtime started) queue a waiter on their stack and sleep on
 * its futex word.  On a timeout such a waiter must dequeue itself; if a
 * waker got there first it waits for the waker's final store before its
 * stack frame may go away.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "probes.h"
#include "rt.h"

#define NBUCKETS 4096

struct bucket {
    vt_lock lock;
    struct vt_waiter *head, *tail;
} __attribute__((aligned(64)));

static struct bucket buckets[NBUCKETS];

static struct bucket *bucket_of(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    a ^= a >> 17;
    a *= 0x9E3779B97F4A7C15ull;
    return &buckets[(a >> 40) % NBUCKETS];
}

/* Locks the bucket w is currently queued in (its addr may be moved by a
 * requeue while we hash it). */
static struct bucket *lock_waiter_bucket(struct vt_waiter *w)
{
    for (;;) {
        const void *a = ld_acquire(&w->addr);
        struct bucket *b = bucket_of(a);
        vt_lock_acquire(&b->lock);
        if (ld_relaxed(&w->addr) == a)
            return b;
        vt_lock_release(&b->lock);
    }
}

/* Queues w just before x, in x's bucket b; at the end if x is NULL. */
static void insert_before(struct bucket *b, struct vt_waiter *x,
                          struct vt_waiter *w)
{
    w->next = x;
    w->prev = x ? x->prev : b->tail;
    if (w->prev)
        w->prev->next = w;
    else
        b->head = w;
    if (x)
        x->prev = w;
    else
        b->tail = w;
    w->queued = true;
}

/* The seeded scheduler (fuzz.c) decides the wake-up order: w goes to a
 * random place among the waiters on its address (all of priority 0: a
 * real-time one keeps its place).  False: at the end, as usual. */
static bool fuzz_enqueue(struct bucket *b, struct vt_waiter *w)
{
    const void *a = ld_relaxed(&w->addr);
    uint64_t k = 0;
    for (struct vt_waiter *x = b->head; x; x = x->next)
        if (ld_relaxed(&x->addr) == a && x->prio == 0)
            k++;
    if (!k)
        return false;
    uint64_t r = vt_fuzz_below(k + 1);
    if (r == k)
        return false;
    for (struct vt_waiter *x = b->head; x; x = x->next) {
        if (ld_relaxed(&x->addr) != a || x->prio != 0 || r--)
            continue;
        insert_before(b, x, w);
        return true;
    }
    return false;
}

static void enqueue(struct bucket *b, struct vt_waiter *w)
{
    /* A real-time waiter goes before the first waiter on its address with
     * a lower priority (the kernel's futex queues are ordered so too);
     * everyone else at the end. */
    if (unlikely(w->prio > 0)) {
        const void *a = ld_relaxed(&w->addr);
        for (struct vt_waiter *x = b->head; x; x = x->next) {
            if (ld_relaxed(&x->addr) != a || x->prio >= w->prio)
                continue;
            insert_before(b, x, w);
            return;
        }
    }
    if (unlikely(vt_fuzz_mode) && w->prio == 0 && fuzz_enqueue(b, w))
        return;
    insert_before(b, NULL, w);
}

static void dequeue(struct bucket *b, struct vt_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        b->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        b->tail = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
}

/* After dequeuing w (bucket lock released): let it run. */
static void wake_waiter(struct vt_waiter *w, vt_p *p, bool next)
{
    vt_stat_inc(VT_ST_WAKEUPS);
    if (w->g) {
        vt_ready(w->g, p, next);
    } else {
        /* The waiter may return as soon as it sees 1: this store is our
         * last access to its frame; the wake only uses the address. */
        st_release(&w->futex_word, 1);
        vt_futex_wake(&w->futex_word, 1);
    }
}

/* Takes w off its queue with `result`, unless a waker (or another
 * canceller) dequeued it first; with g: only an interruptible wait of g
 * (checked under the bucket lock).  True if it was ours to end. */
static bool take_off(struct vt_waiter *w, int result, vt_g *g)
{
    struct bucket *b = lock_waiter_bucket(w);
    bool mine = w->queued && (!g || (w->interruptible && w->g == g));
    if (mine) {
        dequeue(b, w);
        w->result = result;
    }
    vt_lock_release(&b->lock);
    return mine;
}

/* The deadline timer of a parked G.  Runs with the timer's P lock held. */
static void park_timeout(vt_timer *t, vt_p *runner)
{
    vt_g *g = (vt_g *)((char *)t - offsetof(vt_g, timer));
    struct vt_waiter *w = &g->waiter;
    if (take_off(w, VT_PARK_TIMEOUT, NULL))
        wake_waiter(w, runner, false);
}

void vt_waiter_interrupt(vt_g *g)
{
    struct vt_waiter *w = &g->waiter;
    if (!ld_acquire(&w->addr))
        return;
    if (take_off(w, VT_PARK_INTERRUPTED, g)) {
        vt_g *self = vt_tp_g();
        if (self) {
            vt_m *m = vt_rt_enter(self);
            wake_waiter(w, m->p, true);
            vt_rt_leave(m);
        } else {
            wake_waiter(w, NULL, true);
        }
    }
}

static void ts_from_ns(struct timespec *ts, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

/* A non-G caller: sleep on the waiter's futex word. */
/* Dequeues w (a non-G waiter) with `result` unless a waker took it off
 * the queue first; then waits for that waker's futex_word.  The bucket of
 * w is not locked on entry. */
static void futex_give_up(struct vt_waiter *w, int result)
{
    if (take_off(w, result, NULL))
        return;
    while (!ld_acquire(&w->futex_word))
        vt_futex_wait(&w->futex_word, 0, NULL);
}

/* A non-G waits in the kernel.  An interruptible wait ends when the
 * futex wait does with EINTR: a signal handler ran and the kernel chose
 * not to restart (the same rules as for glibc's own futex waits: an
 * untimed wait restarts under SA_RESTART, a timed one never does). */
static int park_futex(struct bucket *b, struct vt_waiter *w,
                      void (*before_sleep)(void *), void *ctx,
                      int64_t deadline, bool interruptible,
                      uintptr_t *out_token)
{
    w->g = NULL;
    st_relaxed(&w->futex_word, 0);
    enqueue(b, w);
    vt_lock_release(&b->lock);
    if (before_sleep)
        before_sleep(ctx);
    for (;;) {
        if (ld_acquire(&w->futex_word))
            break;
        struct timespec ts, *tsp = NULL;
        if (deadline) {
            int64_t left = deadline - vt_now();
            if (left <= 0) {
                /* Timed out, unless a waker dequeued us already. */
                futex_give_up(w, VT_PARK_TIMEOUT);
                break;
            }
            ts_from_ns(&ts, left);
            tsp = &ts;
        }
        if (vt_futex_wait(&w->futex_word, 0, tsp) == -EINTR && interruptible) {
            futex_give_up(w, VT_PARK_INTERRUPTED);
            /* Woken meanwhile (by the handler itself, say, posting the
             * semaphore we wait on): still interrupted, as glibc's waits
             * return EINTR without looking again.  Not when the waker
             * handed us something (a mutex): that must be taken. */
            if (w->result == VT_PARK_WOKEN && w->token_out == 0)
                w->result = VT_PARK_INTERRUPTED;
            break;
        }
    }
    if (out_token)
        *out_token = w->token_out;
    return w->result;
}

int vt_park(const void *addr, bool (*validate)(void *ctx),
            void (*before_sleep)(void *ctx), void *ctx, int64_t deadline,
            unsigned flags, uintptr_t token, uintptr_t *out_token)
{
    struct bucket *b = bucket_of(addr);
    vt_g *g = vt_tp_g();
    if (out_token)
        *out_token = 0;
    if (!g) {
        vt_lock_acquire(&b->lock);
        if (validate && !validate(ctx)) {
            vt_lock_release(&b->lock);
            return VT_PARK_INVALID;
        }
        if (deadline && deadline <= vt_now()) {
            vt_lock_release(&b->lock);
            return VT_PARK_TIMEOUT;
        }
        struct vt_waiter w;
        memset(&w, 0, sizeof w);
        st_relaxed(&w.addr, addr);
        w.token_in = token;
        w.result = VT_PARK_WOKEN;
        return park_futex(b, &w, before_sleep, ctx, deadline,
                          flags & VT_PARK_INTERRUPTIBLE, out_token);
    }
    /* Take our P before queueing: once we are a waiter we must not be put
     * on a run queue by reacquire().  before_sleep may unpark others:
     * vt_rt_enter nests. */
    vt_m *m = vt_rt_enter(g);
    g->intr_wait = false; /* (a caller that never cleared it) */
    int early = -1;
    if ((flags & VT_PARK_INTERRUPTIBLE) && ld_acquire(&g->interrupt))
        early = VT_PARK_INTERRUPTED;
    else if (deadline && deadline <= vt_now())
        early = VT_PARK_TIMEOUT;
    vt_lock_acquire(&b->lock);
    if (validate && !validate(ctx))
        early = VT_PARK_INVALID;
    if (early >= 0) {
        vt_lock_release(&b->lock);
        g->wait_reason = NULL;
        g->intr_wait = early == VT_PARK_INTERRUPTED;
        vt_rt_leave_nodeliver(m);
        vt_sig_check(g);
        return early;
    }
    struct vt_waiter *w = &g->waiter;
    st_relaxed(&w->addr, addr);
    w->g = g;
    w->token_in = token;
    w->token_out = 0;
    w->result = VT_PARK_WOKEN;
    w->interruptible = (flags & VT_PARK_INTERRUPTIBLE) != 0;
    w->prio = ld_relaxed(&g->rt_prio);
    g->wait_since = vt_now_coarse(); /* for tracebacks only */
    /* seq_cst: against vt_signal_notify (below) */
    atomic_store_explicit(&g->status, G_WAITING, memory_order_seq_cst);
    enqueue(b, w);
    vt_lock_release(&b->lock);
    vt_stat_inc(VT_ST_PARKS);
    VT_PROBE2(park, g->id, addr);
    vt_trace_park(m, g);
    /* An interrupt that raced with queueing (it saw no waiter yet).  And
     * a signal notified while we were on our way here: the notifier stores
     * sig_notify and then reads our status; seeing G_RUNNING, it kicked
     * our M, whose handler found us inside the runtime and left the
     * delivery to our next runtime exit, which a wait would put off
     * forever (a pthread_kill to a thread entering sem_wait, lost 1 time
     * in ~200 under load).  We store G_WAITING and then read sig_notify,
     * both seq_cst: one of us sees the other (a plain load first: no
     * locked instruction on the usual path).  Consumed here: the caller
     * delivers (pl_interrupted) and waits again if nothing was pending. */
    if (w->interruptible &&
        (ld_acquire(&g->interrupt) ||
         (atomic_load_explicit(&g->sig_notify, memory_order_seq_cst) &&
          atomic_exchange(&g->sig_notify, 0))))
        vt_waiter_interrupt(g);
    if (before_sleep)
        before_sleep(ctx);
    if (deadline)
        vt_timer_add(m->p, &g->timer, deadline, park_timeout);
    vt_park_self(g); /* returns on some M, P in P_RT */
    g->wait_reason = NULL;
    if (deadline)
        vt_timer_del(&g->timer);
    st_relaxed(&w->addr, NULL);
    if (out_token)
        *out_token = w->token_out;
    int r = w->result;
    /* Signals notified meanwhile run only now that the waiter and timer
     * are free again (a handler may park), and not at all when the wait
     * was interrupted: its caller delivers them (pl_interrupted) and
     * learns from them whether to return EINTR (intr_wait). */
    g->intr_wait = r == VT_PARK_INTERRUPTED;
    vt_rt_leave_nodeliver(g->m);
    vt_sig_check(g);
    return r;
}

unsigned vt_unpark_one(const void *addr,
                       uintptr_t (*callback)(void *, struct vt_unpark_info *),
                       void *ctx)
{
    struct bucket *b = bucket_of(addr);
    vt_lock_acquire(&b->lock);
    struct vt_waiter *w = b->head;
    while (w && ld_relaxed(&w->addr) != addr)
        w = w->next;
    struct vt_unpark_info info = {0, false, 0};
    if (w) {
        dequeue(b, w);
        info.woken = 1;
        info.token = w->token_in;
        for (struct vt_waiter *o = b->head; o; o = o->next)
            if (ld_relaxed(&o->addr) == addr) {
                info.more_waiters = true;
                break;
            }
    }
    uintptr_t tok = callback ? callback(ctx, &info) : 0;
    if (w) {
        w->token_out = tok;
        w->result = VT_PARK_WOKEN;
    }
    vt_lock_release(&b->lock);
    if (!w)
        return 0;
    vt_g *self = vt_tp_g();
    if (self) {
        vt_m *m = vt_rt_enter(self);
        wake_waiter(w, m->p, true);
        vt_rt_leave(m);
    } else {
        wake_waiter(w, NULL, true);
    }
    return 1;
}

/* Dequeues up to max waiters on addr from b (locked) into a list. */
static struct vt_waiter *take(struct bucket *b, const void *addr,
                              unsigned max, unsigned *n)
{
    struct vt_waiter *list = NULL, **tail = &list;
    *n = 0;
    struct vt_waiter *w = b->head;
    while (w && *n < max) {
        struct vt_waiter *next = w->next;
        if (ld_relaxed(&w->addr) == addr) {
            dequeue(b, w);
            w->result = VT_PARK_WOKEN;
            w->token_out = 0;
            *tail = w;
            tail = &w->next;
            (*n)++;
        }
        w = next;
    }
    *tail = NULL;
    return list;
}

static void wake_list(struct vt_waiter *list)
{
    if (!list)
        return;
    vt_g *self = vt_tp_g();
    vt_m *m = self ? vt_rt_enter(self) : NULL;
    while (list) {
        struct vt_waiter *next = list->next;
        wake_waiter(list, m ? m->p : NULL, false);
        list = next;
    }
    if (m)
        vt_rt_leave(m);
}

unsigned vt_unpark_all(const void *addr)
{
    return vt_unpark_all_to(addr, NULL);
}

unsigned vt_unpark_all_to(const void *addr, vt_glist *out)
{
    struct bucket *b = bucket_of(addr);
    unsigned n;
    vt_lock_acquire(&b->lock);
    struct vt_waiter *list = take(b, addr, ~0u, &n);
    vt_lock_release(&b->lock);
    if (!out) {
        wake_list(list);
        return n;
    }
    while (list) {
        struct vt_waiter *next = list->next;
        if (list->g) {
            vt_stat_inc(VT_ST_WAKEUPS);
            vt_ready_to(list->g, out);
        } else {
            wake_waiter(list, NULL, false);
        }
        list = next;
    }
    return n;
}

unsigned vt_unpark_requeue(const void *from, const void *to, unsigned nwake,
                           unsigned nrequeue)
{
    struct bucket *bf = bucket_of(from), *bt = bucket_of(to);
    /* Lock both in address order (one lock if they are the same). */
    if (bf == bt) {
        vt_lock_acquire(&bf->lock);
    } else if (bf < bt) {
        vt_lock_acquire(&bf->lock);
        vt_lock_acquire(&bt->lock);
    } else {
        vt_lock_acquire(&bt->lock);
        vt_lock_acquire(&bf->lock);
    }
    unsigned woken;
    struct vt_waiter *list = take(bf, from, nwake, &woken);
    unsigned moved = 0;
    struct vt_waiter *w = bf->head;
    while (w && moved < nrequeue) {
        struct vt_waiter *next = w->next;
        if (ld_relaxed(&w->addr) == from) {
            dequeue(bf, w);
            st_release(&w->addr, to);
            enqueue(bt, w);
            moved++;
        }
        w = next;
    }
    if (bf != bt)
        vt_lock_release(&bt->lock);
    vt_lock_release(&bf->lock);
    wake_list(list);
    return woken + moved;
}

bool vt_park_has_waiters(const void *addr)
{
    struct bucket *b = bucket_of(addr);
    vt_lock_acquire(&b->lock);
    bool any = false;
    for (struct vt_waiter *w = b->head; w; w = w->next)
        if (ld_relaxed(&w->addr) == addr) {
            any = true;
            break;
        }
    vt_lock_release(&b->lock);
    return any;
}

void vt_set_wait_reason(const char *reason)
{
    vt_g *g = vt_tp_g();
    if (g)
        g->wait_reason = reason;
}

/* Fork child: every queued waiter belonged to a thread that is gone. */
VT_HIDDEN void vt_parklot_reset(void);
void vt_parklot_reset(void)
{
    memset(buckets, 0, sizeof buckets);
}
