/*
 * runq.h — a P's local run queue: a fixed ring of VT_RUNQ_SIZE entries.
 *
 * Single producer (the P's owner, in P_RT), many consumers: the owner pops
 * from the head with a CAS, thieves grab half the queue with one CAS on the
 * head.  Entries are opaque pointers so the queue is testable alone.
 *
 * Why it is safe: a consumer reads the slots [head, head+n) and then claims
 * them with CAS(head, h, h+n); if the CAS fails someone else consumed first
 * and the values read are discarded.  The producer writes a slot only when
 * tail - head < size, i.e. the slot is not in [head, tail), so it never
 * overwrites a slot a successful consumer read.  tail is published with a
 * release store after the slot is written; consumers load tail with
 * acquire, so they see the slot's contents.
 */
#ifndef VTHREAD_RUNQ_H
#define VTHREAD_RUNQ_H

#include <stdbool.h>
#include <stdint.h>

#define VT_RUNQ_SIZE 256

struct vt_runq {
    _Atomic uint32_t head;   /* next to consume; consumers CAS it */
    _Atomic uint32_t tail;   /* next free; only the owner stores it */
    _Atomic(void *) buf[VT_RUNQ_SIZE];
};

#define VT_HIDDEN __attribute__((visibility("hidden")))

/* Owner only.  False when full (the caller moves work to the global
 * queue). */
VT_HIDDEN bool vt_runq_put(struct vt_runq *q, void *item);
/* Owner only (thieves use grab).  NULL when empty. */
VT_HIDDEN void *vt_runq_get(struct vt_runq *q);
/* Any thread: claims half (rounded up) of q, at most max items, into out.
 * Returns how many. */
VT_HIDDEN uint32_t vt_runq_grab(struct vt_runq *q, void **out, uint32_t max);
/* Owner only: takes half of the full queue plus `item` out, for moving to
 * the global queue when the ring is full.  Returns the count put in out
 * (including item last), or 0 if the queue stopped being full. */
VT_HIDDEN uint32_t vt_runq_spill(struct vt_runq *q, void *item, void **out);
/* Any thread: a snapshot of the length. */
VT_HIDDEN uint32_t vt_runq_len(struct vt_runq *q);

#endif
