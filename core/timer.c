/*
 * timer.c — per-P timer heaps (binary min-heaps on `when`).
 *
 * A timer lives in the heap of the P it was added on (t->owner) until it
 * fires or is deleted; p->tlock guards that heap and every queued timer's
 * fields.  Callbacks run with the lock held, so vt_timer_del, which takes
 * the same lock, returns only after a concurrent callback has finished:
 * the timer's memory (inside a vt_g) may be reused as soon as it returns.
 * Any M may run another P's expired timers (an idle M steals them), and so
 * may sysmon (runner = NULL: readied Gs go to the global queue).
 * p->timer0 mirrors the earliest `when` for lock-free peeks.
 */
#include <stdlib.h>

#include "rt.h"

static void set_timer0(vt_p *p)
{
    st_release(&p->timer0, p->ntimers ? p->timers[0]->when : INT64_MAX);
}

static void sift_up(vt_p *p, int i)
{
    vt_timer *t = p->timers[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (p->timers[parent]->when <= t->when)
            break;
        p->timers[i] = p->timers[parent];
        p->timers[i]->index = i;
        i = parent;
    }
    p->timers[i] = t;
    t->index = i;
}

static void sift_down(vt_p *p, int i)
{
    vt_timer *t = p->timers[i];
    int n = p->ntimers;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && p->timers[c + 1]->when < p->timers[c]->when)
            c++;
        if (t->when <= p->timers[c]->when)
            break;
        p->timers[i] = p->timers[c];
        p->timers[i]->index = i;
        i = c;
    }
    p->timers[i] = t;
    t->index = i;
}

static void remove_at(vt_p *p, int i)
{
    vt_timer *t = p->timers[i];
    int last = --p->ntimers;
    if (i != last) {
        p->timers[i] = p->timers[last];
        p->timers[i]->index = i;
        sift_down(p, i);
        sift_up(p, p->timers[i]->index);
    }
    t->index = -1;
}

void vt_timer_add(vt_p *p, vt_timer *t, int64_t when, vt_timer_fn fn)
{
    vt_lock_acquire(&p->tlock);
    if (p->ntimers == p->cap_timers) {
        int cap = p->cap_timers ? p->cap_timers * 2 : 64;
        vt_timer **nt = realloc(p->timers, (size_t)cap * sizeof *nt);
        if (!nt)
            vt_fatal("out of memory growing a timer heap to %d", cap);
        p->timers = nt;
        p->cap_timers = cap;
    }
    t->when = when;
    t->fn = fn;
    t->owner = p;
    p->timers[p->ntimers] = t;
    t->index = p->ntimers++;
    sift_up(p, t->index);
    set_timer0(p);
    vt_lock_release(&p->tlock);
    /* An idle M may be sleeping until a later deadline. */
    if (when < ld_acquire(&vt_sched.watch_until) ||
        when < ld_acquire(&vt_sched.poll_until))
        vt_rearm_watcher(when);
}

bool vt_timer_del(vt_timer *t)
{
    for (;;) {
        vt_p *p = ld_acquire(&t->owner);
        if (!p)
            return false; /* fired, or never added */
        vt_lock_acquire(&p->tlock);
        if (t->owner != p) { /* fired while we took the lock */
            vt_lock_release(&p->tlock);
            continue;
        }
        remove_at(p, t->index);
        t->owner = NULL;
        set_timer0(p);
        vt_lock_release(&p->tlock);
        return true;
    }
}

int vt_timers_run(vt_p *on, vt_p *runner, int64_t now)
{
    if (ld_acquire(&on->timer0) > now)
        return 0;
    int n = 0;
    vt_lock_acquire(&on->tlock);
    while (on->ntimers && on->timers[0]->when <= now) {
        vt_timer *t = on->timers[0];
        remove_at(on, 0);
        /* owner stays set while fn runs: a racing vt_timer_del waits for
         * the lock, then finds owner NULL and reports "already fired". */
        t->fn(t, runner);
        st_release(&t->owner, NULL);
        n++;
    }
    set_timer0(on);
    vt_lock_release(&on->tlock);
    if (n)
        xadd(&vt_stats.timers_fired, (uint64_t)n);
    return n;
}
