/*
 * stack.c — G units: one mapping holding a G's guard, stack, vt_g, static
 * TLS and glibc descriptor, laid out from the top as NPTL does:
 *
 *   map_hi ┬ descriptor (struct pthread, PD_TCB_SIZE), 64-byte aligned
 *          ├ static TLS blocks (static size - PD_TCB_SIZE)
 *          ├ struct vt_g
 *          ...
 * (that is x86_64's TLS variant II; on aarch64, variant I, the static TLS
 * blocks lie at the top, from the 64-byte aligned thread pointer up, and
 * the descriptor just below them, then vt_g and the stack)
 *
 *          ├ stack (grows down) ... stack_lo
 *   map    ┴ guard (guard bytes, no access)
 *
 * So a new G touches two pages (descriptor+TLS+vt_g and its first frames),
 * not five.  The stack is reserved with MAP_NORESERVE and touched lazily;
 * default size is RLIMIT_STACK like glibc.
 *
 * Guards: madvise(MADV_GUARD_INSTALL) (Linux >= 6.13) marks the guard
 * without splitting the mapping, so adjacent units merge into few VMAs and
 * a million stacks fit under vm.max_map_count.  Older kernels get
 * mprotect(PROT_NONE), which costs two VMAs per unit (~32,000 units with
 * the default map count); when the kernel refuses more mappings we say so.
 *
 * Units of the default size are recycled (sched.c: per-P and global free
 * lists), keeping their TLS (see tls.c) and their touched pages.
 *
 * Fresh units of the default size come from batches: one mmap reserves
 * BATCH units at once (address space only: MAP_NORESERVE, no page tables
 * until touched) and units are carved from it on demand, each getting its
 * guard then.  Every fresh unit's top pages -- descriptor, TLS, vt_g and
 * the first frames, always written at once -- are populated with one
 * madvise(MADV_POPULATE_WRITE) instead of taking a page fault each (a
 * fault costs several us in a VM, the call about 2/3 of two).  A unit is
 * freed with its own munmap, whatever batch it came from.  The unused
 * rest of a batch is address space only, except under
 * vm.overcommit_memory=2, where MAP_NORESERVE is ignored and up to 15
 * units beyond those in use are charged to the commit limit.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MAP_STACK
#define MAP_STACK 0x20000
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* The batch units of the default size are carved from: [lo, cur) is
 * what is left, cut from the top down, always a whole number of units
 * (the default size is fixed at start-up).  Guarded by batch.lock (reset
 * in a fork child). */
#define BATCH 16
static struct {
    vt_lock lock;
    char *lo, *cur;
} batch = {.lock = VT_LOCK_INIT};
static _Atomic bool populate_ok = true; /* MADV_POPULATE_WRITE works */

static size_t page;
static bool have_guard_install;

size_t vt_page_size(void) { return page; }

void vt_stack_init(void)
{
    page = (size_t)sysconf(_SC_PAGESIZE);
    /* Probe MADV_GUARD_INSTALL once on a scratch mapping (unless told
     * not to use it: gcore cannot read past guard regions). */
    if (vt_cfg.guard_mprotect)
        return;
    void *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
        /* ... and check that it took: an emulator (qemu-user 7.2) may
         * accept any advice and do nothing.  The kernel reading a guard
         * region fails with EFAULT; reading this (zero) page as a signal
         * set to add to the mask changes nothing. */
        have_guard_install =
            vt_sys3(SYS_madvise, p, page, MADV_GUARD_INSTALL) == 0 &&
            vt_sys4(SYS_rt_sigprocmask, SIG_BLOCK, p, NULL, 8) == -EFAULT;
        munmap(p, 2 * page);
    }
}

static size_t round_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

/* Unit size (guard included) of a thread with default attributes. */
static size_t batch_default_bytes(void)
{
    return round_up(vt_cfg.stack_size, page) + page;
}

/* Carves vt_g, TLS and descriptor from the top of [lo, hi) and fills the
 * G's memory fields.  Returns NULL if the space cannot hold them plus a
 * minimal stack. */
static vt_g *carve(char *lo, char *hi)
{
    size_t align = vt_tls_static_align();
    size_t tls = vt_tls_static_size();
#if VT_TP_PD_OFFSET == 0 /* variant II: the descriptor on top */
    char *pd = (char *)(((uintptr_t)hi - PD_TCB_SIZE) & ~(uintptr_t)(align - 1));
    char *tls_lo = pd + PD_TCB_SIZE - tls;
#else /* variant I: static TLS on top, from the thread pointer up */
    if (align < 64)
        align = 64;
    char *tp = (char *)(((uintptr_t)hi - tls) & ~(uintptr_t)(align - 1));
    char *pd = tp - VT_TP_PD_OFFSET;
    char *tls_lo = pd;
#endif
    char *gp = (char *)(((uintptr_t)tls_lo - sizeof(vt_g)) & ~(uintptr_t)63);
    char *stack_hi = (char *)((uintptr_t)gp & ~(uintptr_t)15);
    if (stack_hi < lo + 2048)
        return NULL;
    vt_g *g = (vt_g *)gp;
    g->pd = pd;
    g->stack_lo = lo;
    g->stack_hi = stack_hi;
    return g;
}

static char *map_units(size_t bytes)
{
    char *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);
    return map == MAP_FAILED ? NULL : map;
}

/* A unit of `bytes` from the batch (refilled when empty), or NULL to map
 * it alone.  Only units of the default size share batches: those are the
 * ones created by the thousand. */
static char *batch_unit(size_t bytes)
{
    if (bytes != batch_default_bytes())
        return NULL;
    vt_lock_acquire(&batch.lock);
    if (batch.cur == batch.lo) {
        char *m = map_units(bytes * BATCH);
        if (!m) {
            vt_lock_release(&batch.lock);
            return NULL; /* no room for a batch: try one unit alone */
        }
        batch.lo = m;
        batch.cur = m + bytes * BATCH;
    }
    batch.cur -= bytes;
    char *u = batch.cur;
    vt_lock_release(&batch.lock);
    return u;
}

void vt_stack_fork_child(void) { batch.lock = (vt_lock)VT_LOCK_INIT; }

int vt_unit_alloc(size_t stack_size, size_t guard, vt_g **out)
{
    /* Like NPTL, the requested size includes the TLS and descriptor. */
    size_t size = round_up(stack_size, page);
    guard = round_up(guard, page);
    if (size + guard < size)
        return EINVAL;
    char *map = batch_unit(size + guard);
    if (!map)
        map = map_units(size + guard);
    if (!map)
        return EAGAIN;
    if (guard) {
        bool ok = have_guard_install &&
                  vt_sys3(SYS_madvise, map, guard, MADV_GUARD_INSTALL) == 0;
        if (!ok && mprotect(map, guard, PROT_NONE) != 0) {
            static _Atomic int warned;
            if (!xchg(&warned, 1))
                vt_warn("cannot add more stack guard pages (vm.max_map_count"
                        " reached?): new threads get no guard page");
            guard = 0; /* the stack works; an overflow is not caught */
        }
    }
    /* Populate what carve and the TLS set-up write at once (down to the
     * stack's first frames) in one call; on failure they simply fault. */
    if (ld_relaxed(&populate_ok) && size >= 4 * page) {
        /* descriptor + static TLS + vt_g + ~1 KiB of first frames */
        size_t top = round_up(vt_tls_static_size() + VT_TP_PD_OFFSET +
                                  sizeof(vt_g) + 1024, page);
        if (vt_sys3(SYS_madvise, map + size + guard - top, top,
                    MADV_POPULATE_WRITE) == -EINVAL)
            st_relaxed(&populate_ok, false); /* kernel < 5.14 */
    }
    vt_g *g = carve(map + guard, map + size + guard);
    if (!g) {
        munmap(map, size + guard);
        return EINVAL;
    }
    g->map = map;
    g->map_size = size + guard;
    g->guard = guard;
    g->stack_size = stack_size;
    g->kind = GU_UNIT;
    xadd(&vt_stats.units_made, 1);
    *out = g;
    return 0;
}

int vt_unit_on_user_stack(void *addr, size_t size, vt_g **out)
{
    /* Clear the part we use, as NPTL does for a user stack. */
    char *lo = addr, *hi = lo + size;
    vt_g *g = carve(lo, hi);
    if (!g)
        return EINVAL;
    memset(g, 0, (size_t)(hi - (char *)g));
    carve(lo, hi);
    g->kind = GU_USER_STACK;
    g->stack_size = size;
    *out = g;
    return 0;
}

void vt_unit_destroy(vt_g *g)
{
    vt_tls_release(g);
    if (g->kind == GU_UNIT) {
        xadd(&vt_stats.units_freed, 1);
        munmap(g->map, g->map_size);
    }
}
