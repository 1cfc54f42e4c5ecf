/* runq.c — the local run queue; the protocol is described in runq.h. */
#include "runq.h"
#include "atomic.h"

bool vt_runq_put(struct vt_runq *q, void *item)
{
    uint32_t h = ld_acquire(&q->head);
    uint32_t t = ld_relaxed(&q->tail);
    if (t - h >= VT_RUNQ_SIZE)
        return false;
    st_relaxed(&q->buf[t % VT_RUNQ_SIZE], item);
    st_release(&q->tail, t + 1);
    return true;
}

void *vt_runq_get(struct vt_runq *q)
{
    for (;;) {
        uint32_t h = ld_acquire(&q->head);
        uint32_t t = ld_relaxed(&q->tail);
        if (t == h)
            return 0;
        void *item = ld_relaxed(&q->buf[h % VT_RUNQ_SIZE]);
        if (atomic_compare_exchange_weak(&q->head, &h, h + 1))
            return item;
    }
}

uint32_t vt_runq_grab(struct vt_runq *q, void **out, uint32_t max)
{
    for (;;) {
        uint32_t h = ld_acquire(&q->head);
        uint32_t t = ld_acquire(&q->tail);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0)
            return 0;
        if (n > VT_RUNQ_SIZE / 2 + 1) /* h and t read at different times */
            continue;
        if (n > max)
            n = max;
        for (uint32_t i = 0; i < n; i++)
            out[i] = ld_relaxed(&q->buf[(h + i) % VT_RUNQ_SIZE]);
        if (atomic_compare_exchange_weak(&q->head, &h, h + n))
            return n;
    }
}

uint32_t vt_runq_spill(struct vt_runq *q, void *item, void **out)
{
    uint32_t h = ld_acquire(&q->head);
    uint32_t t = ld_relaxed(&q->tail);
    uint32_t n = (t - h) / 2;
    if (t - h != VT_RUNQ_SIZE)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        out[i] = ld_relaxed(&q->buf[(h + i) % VT_RUNQ_SIZE]);
    if (!atomic_compare_exchange_strong(&q->head, &h, h + n))
        return 0;
    out[n] = item;
    return n + 1;
}

uint32_t vt_runq_len(struct vt_runq *q)
{
    uint32_t h = ld_acquire(&q->head);
    uint32_t t = ld_acquire(&q->tail);
    uint32_t n = t - h;
    return n > VT_RUNQ_SIZE ? 0 : n;
}
