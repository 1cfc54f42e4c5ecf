/*
 * arch_common.h — the functions every architecture's arch.h provides
 * (included by arch/<cpu>/arch.h, after its own constants; each arch.h
 * says what is particular to its CPU: the frame layout, how the
 * trampoline returns, what a return gadget is).
 */
#ifndef VTHREAD_ARCH_COMMON_H
#define VTHREAD_ARCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef VT_HIDDEN
#define VT_HIDDEN __attribute__((visibility("hidden")))
#endif

/* Preemption: the trampoline a preempted G is redirected into (never
 * called; see the arch's preempt .S). */
VT_HIDDEN void vt_arch_preempt_tramp(void);
/* Rewrites a signal context (ucontext_t *) so that the interrupted code
 * runs vt_arch_preempt_tramp when the handler returns, every register
 * kept; the interrupted pc goes to *pc_slot (the G's preempt_pc), where
 * the trampoline reads it.  False when this context cannot be preempted
 * (the arch.h says when); the G then yields at its next runtime exit. */
VT_HIDDEN bool vt_arch_redirect_to_preempt(void *ucontext, uintptr_t *pc_slot);
/* The interrupted program counter of a signal context. */
VT_HIDDEN uintptr_t vt_arch_context_pc(void *ucontext);
/* Fills *ucontext (a zeroed ucontext_t) with the registers a context
 * parked by vt_arch_switch saved at sp, as if it had just returned from
 * the switch: for unwinding a parked G (core/traceback.c). */
VT_HIDDEN void vt_arch_parked_context(void *ucontext, uintptr_t sp);

/* Calls fn(a, b, c) with a return gadget (vt_arch_find_return_gadget) as
 * its return address, and still returns fn's result: for callees that
 * look at their caller (glibc's dlopen, core/dl.c). */
VT_HIDDEN void *vt_arch_call3_via(void *(*fn)(long, long, long), long a,
                                  long b, long c, uintptr_t gadget);
/* A return gadget for vt_arch_call3_via in [lo, hi), the nearest to
 * near, or 0. */
VT_HIDDEN uintptr_t vt_arch_find_return_gadget(uintptr_t lo, uintptr_t hi,
                                               uintptr_t near);
/* Reads the CPU's features once, before any switch.  Idempotent. */
VT_HIDDEN void vt_arch_init(void);

/* Saves the running context into *save_sp, switches to load_sp (and to
 * thread pointer tp unless 0), then stores 0 to *off_cpu (with release
 * order) when non-NULL.  Returns when some M switches back to the saved
 * context. */
VT_HIDDEN void vt_arch_switch(void **save_sp, void *load_sp, uintptr_t tp,
                              volatile int *off_cpu);
/* The first "return" target of a new context (vt_arch_init_stack). */
VT_HIDDEN void vt_arch_gstart(void);

/* Raw system calls through vt_sys6: return -errno, never touch errno. */
#define vt_sys0(n) vt_sys6((n), 0, 0, 0, 0, 0, 0)
#define vt_sys1(n, a) vt_sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define vt_sys2(n, a, b) vt_sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define vt_sys3(n, a, b, c) vt_sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define vt_sys4(n, a, b, c, d)                                                \
    vt_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

#endif /* VTHREAD_ARCH_COMMON_H */
