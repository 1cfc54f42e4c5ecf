/*
 * pd.h — glibc 2.36's thread descriptor (struct pthread), per architecture.
 *
 * vthread gives every G a descriptor of its own, laid out as NPTL lays
 * out a thread's (core/tls.c), and reads and writes some of its fields
 * (the tid, the robust list, the cancellation word, the cleanup chains,
 * the stack block ...).  This is the one table of their offsets, for
 * core/ and preload/ alike (preload/ may include it with vthread_core.h
 * and real.h); core/tls.c checks the layout against the running glibc at
 * start-up and stops with a message on any other.  docs/glibc-descriptor.md
 * says how each offset was found.
 *
 * Offsets are from the descriptor's address: pthread_self(), the "pd" of
 * the code.  Where that lies from the thread pointer is the architecture's
 * TLS variant (arch.h VT_TP_PD_OFFSET): at it on x86_64 (variant II), just
 * below it on aarch64 (variant I).
 */
#ifndef VTHREAD_PD_H
#define VTHREAD_PD_H

#include <stdint.h>

#include "arch.h"

#if defined(__x86_64__)
#define PD_ARCH "x86_64"
/* tcbhead_t, the first 0x2c0 bytes: the descriptor is the TCB. */
#define PD_TCB 0x0            /* tcbhead_t.tcb: the TCB itself */
#define PD_DTV 0x8            /* tcbhead_t.dtv */
#define PD_SELF 0x10          /* tcbhead_t.self: what pthread_self returns */
#define PD_MULTIPLE_THREADS 0x18
#define PD_SYSINFO 0x20
#define PD_STACK_GUARD 0x28
#define PD_POINTER_GUARD 0x30
#define PD_FEATURE_1 0x48
#define PD_VTHREAD_G 0x280    /* tcbhead_t.__padding[0]: unused by glibc;
                                 vthread's G pointer (0 = not a G) */
#define PD_VFORK 0x288        /* tcbhead_t.__padding[1]: 1 in a vfork child */
#define PD_LIST 0x2c0         /* list_t: glibc's dl_stack_used/user link */
#define PD_TID 0x2d0
#define PD_ROBUST_PREV 0x2d8
#define PD_ROBUST_HEAD 0x2e0  /* struct robust_list_head */
#define PD_CLEANUP 0x2f8      /* old-style _pthread_cleanup_buffer */
#define PD_CLEANUP_JMP_BUF 0x300 /* __pthread_unwind_buf_t chain */
#define PD_CANCELHANDLING 0x308
#define PD_RESULT 0x628
#define PD_STACKBLOCK 0x690
#define PD_STACKBLOCK_SIZE 0x698
#define PD_GUARDSIZE 0x6a0
#define PD_REPORTED_GUARDSIZE 0x6a8
#define PD_TCB_SIZE 2368      /* sizeof(struct pthread), incl. rseq area */

#elif defined(__aarch64__)
#define PD_ARCH "aarch64"
/* The header is a union of {multiple_threads, gscope_flag} with 24 words
 * of padding; the TCB proper ({dtv, private}) is at the thread pointer,
 * just above the descriptor.  There is no "self" field (pthread_self is
 * tp - sizeof(struct pthread)), and the stack and pointer guards are
 * process-wide variables, not descriptor fields. */
#define PD_MULTIPLE_THREADS 0x0
#define PD_VFORK 0x8          /* header.__padding[1]: unused by glibc;
                                 1 in a vfork child */
#define PD_LIST 0xc0
#define PD_TID 0xd0
#define PD_ROBUST_PREV 0xd8
#define PD_ROBUST_HEAD 0xe0
#define PD_CLEANUP 0xf8
#define PD_CLEANUP_JMP_BUF 0x100
#define PD_CANCELHANDLING 0x108
#define PD_RESULT 0x428
#define PD_STACKBLOCK 0x490
#define PD_STACKBLOCK_SIZE 0x498
#define PD_GUARDSIZE 0x4a0
#define PD_REPORTED_GUARDSIZE 0x4a8
#define PD_TCB_SIZE 1856      /* sizeof(struct pthread), incl. rseq area */
#define PD_DTV PD_TCB_SIZE    /* tcbhead_t.dtv, at the thread pointer */
#define PD_VTHREAD_G (PD_TCB_SIZE + 8) /* tcbhead_t.private: unused by
                                 glibc; vthread's G pointer */
#else
#error "no glibc descriptor layout for this architecture"
#endif

_Static_assert(PD_VTHREAD_G - VT_TP_PD_OFFSET == VT_TP_G_SLOT,
               "arch.h's G slot is the descriptor's");
_Static_assert(PD_VFORK - VT_TP_PD_OFFSET == VT_TP_VFORK_SLOT,
               "arch.h's vfork slot is the descriptor's");

#define PD_FIELD(pd, off, type) (*(type *)((char *)(pd) + (off)))

/* The calling thread's descriptor: what pthread_self() returns. */
static inline void *vt_pd_self(void)
{
    return (char *)vt_arch_get_tp() - VT_TP_PD_OFFSET;
}
/* The thread pointer of the thread whose descriptor is pd. */
static inline uintptr_t vt_pd_tp(const void *pd)
{
    return (uintptr_t)pd + VT_TP_PD_OFFSET;
}
/* An int field of the caller's own descriptor, read through the thread
 * pointer (one volatile load: never cached across a switch). */
static inline int vt_pd_self_load32(long off)
{
    return vt_arch_tp_load32(off - VT_TP_PD_OFFSET);
}

#endif /* VTHREAD_PD_H */
