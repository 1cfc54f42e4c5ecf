/*
 * debug.c — what a debugger needs to find every G: one exported table.
 *
 * tools/gdb/vthread-gdb.py (`info vthreads`, `vthread N bt`) reads the
 * runtime's structures from a live process or a core file.  It does not
 * rely on DWARF (an installed library is often stripped): everything it
 * reads is located through vthread_debug_layout, a dynamic symbol that
 * survives stripping (and is in a static link's symbol table).  The table
 * holds the addresses of the G and M lists and the offsets of the fields
 * the script reads, computed by the compiler, so a change of struct vt_g
 * cannot silently mislead the script.
 *
 * Compatibility rule: VT_DEBUG_LAYOUT_VERSION goes up whenever a field is
 * added to, removed from or changes meaning in the table, or the meaning
 * of a field it points at changes (the G_* states, the switch frame).  The
 * script refuses, with a message naming both versions, to read a table
 * whose version it does not know.  Fields are only ever appended, and
 * `size` lets a reader check that the fields it reads exist.
 *
 * Read only by debuggers; the runtime never reads it.  name_off is the one
 * field written at run time: preload/ (which owns the thread name in the
 * G's extension area) sets it once at start-up, before a second G exists.
 */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "rt.h"

#define VT_DEBUG_LAYOUT_VERSION 1

struct vt_debug_layout {
    uint32_t version, size;
    /* where the lists start; both are walked through the next fields */
    vt_g **allg;             /* vt_sched.allg (under sched.glock) */
    vt_m **allm;             /* vt_sched.allm (append-only) */
    /* vt_g */
    uint32_t g_id, g_status, g_sp, g_m, g_kind, g_fn;
    uint32_t g_wait_reason, g_wait_since, g_waiter_addr, g_allnext;
    uint32_t g_stack_lo, g_stack_hi, g_on_cpu, g_ext;
    /* offset of the thread's name (char[16]) in ext; 0: no names */
    uint32_t name_off;
    /* vt_m */
    uint32_t m_id, m_tid, m_allnext;
    /* a parked G's saved registers, at g->sp + these (arch.h); on
     * aarch64 (which the gdb script does not read yet) ret is x30, rbp
     * x29, and rbx..r15 hold x19..x22 */
    uint32_t frame_ret, frame_rbp, frame_rbx;
    uint32_t frame_r12, frame_r13, frame_r14, frame_r15;
    /* the clock of g->wait_since (a clockid_t) */
    uint32_t wait_clock;
};

/* Version 1 reads the states and kinds as these numbers: */
_Static_assert(G_IDLE == 0 && G_RUNNABLE == 1 && G_RUNNING == 2 &&
                   G_WAITING == 3 && G_DEAD == 4,
               "G_* changed: bump VT_DEBUG_LAYOUT_VERSION and the script");
_Static_assert(GU_UNIT == 0 && GU_USER_STACK == 1 && GU_MAIN == 2 &&
                   GU_G0 == 3,
               "GU_* changed: bump VT_DEBUG_LAYOUT_VERSION and the script");

#define GOFF(f) (uint32_t)offsetof(struct vt_g, f)
#define MOFF(f) (uint32_t)offsetof(struct vt_m, f)

__attribute__((visibility("default"), used)) struct vt_debug_layout
    vthread_debug_layout = {
        .version = VT_DEBUG_LAYOUT_VERSION,
        .size = sizeof(struct vt_debug_layout),
        .allg = &vt_sched.allg,
        .allm = &vt_sched.allm,
        .g_id = GOFF(id),
        .g_status = GOFF(status),
        .g_sp = GOFF(sp),
        .g_m = GOFF(m),
        .g_kind = GOFF(kind),
        .g_fn = GOFF(fn),
        .g_wait_reason = GOFF(wait_reason),
        .g_wait_since = GOFF(wait_since),
        .g_waiter_addr = GOFF(waiter.addr),
        .g_allnext = GOFF(allnext),
        .g_stack_lo = GOFF(stack_lo),
        .g_stack_hi = GOFF(stack_hi),
        .g_on_cpu = GOFF(on_cpu),
        .g_ext = GOFF(ext),
        .m_id = MOFF(id),
        .m_tid = MOFF(tid),
        .m_allnext = MOFF(allnext),
        .frame_ret = VT_FRAME_RET,
#ifdef __x86_64__
        .frame_rbp = VT_FRAME_RBP,
        .frame_rbx = VT_FRAME_RBX,
        .frame_r12 = VT_FRAME_R12,
        .frame_r13 = VT_FRAME_R13,
        .frame_r14 = VT_FRAME_R14,
        .frame_r15 = VT_FRAME_R15,
#else
        .frame_rbp = VT_FRAME_FP,
        .frame_rbx = VT_FRAME_X19,
        .frame_r12 = VT_FRAME_X20,
        .frame_r13 = VT_FRAME_X21,
        .frame_r14 = VT_FRAME_X22,
        .frame_r15 = VT_FRAME_X23,
#endif
        .wait_clock = CLOCK_MONOTONIC_COARSE,
};

void vt_debug_set_name_offset(size_t off)
{
    vthread_debug_layout.name_off = (uint32_t)off;
}
