/*
 * arch.h — what core/ needs from the CPU, for aarch64 (arm64) Linux.
 *
 * The same names as arch/x86_64/arch.h: the context switch, building a
 * new context's first frame, the thread pointer (tpidr_el0), raw system
 * calls that never touch errno, a spin hint, the preemption trampoline.
 *
 * The thread pointer.  glibc's aarch64 TLS is variant I: tpidr_el0
 * points at a 16-byte TCB {dtv, private}; the static TLS blocks follow it
 * upwards, and the thread descriptor (struct pthread) lies just below it.
 * So a descriptor field at offset F is at tp - VT_TP_PD_OFFSET + F, and
 * pthread_self() is tp - VT_TP_PD_OFFSET (core/pd.h has the offsets, and
 * checks them at start-up).
 *
 * Memory ordering.  arm64 is weakly ordered: a store may become visible
 * to another CPU after a later one, and a load may be satisfied early.
 * Every cross-thread hand-off in core/ goes through C11 atomics with
 * acquire/release (or seq_cst) orders, which the compiler turns into
 * ldar/stlr/ldaxr/stlxr (or LSE atomics); the one hand-off written in
 * assembly, vt_arch_switch's "this context is saved" store, is a stlr
 * (store-release), paired with the ld_acquire of on_cpu in core/sched.c.
 */
#ifndef VTHREAD_ARCH_H
#define VTHREAD_ARCH_H

/* ---- shared with the assembly (.S files include this header) ---- */

/* Offsets in the frame vt_arch_switch saves (switch_aarch64_lp64_elf.S):
 * the AAPCS64 callee-saved registers x19-x28, the frame pointer x29, the
 * link register x30 (the switch's return address), the low halves d8-d15
 * of v8-v15, and FPCR (rounding mode and trap enables; the AAPCS64 says
 * its control bits are preserved across calls). */
#define VT_FRAME_X19 0
#define VT_FRAME_X20 8
#define VT_FRAME_X21 16
#define VT_FRAME_X22 24
#define VT_FRAME_X23 32
#define VT_FRAME_X24 40
#define VT_FRAME_X25 48
#define VT_FRAME_X26 56
#define VT_FRAME_X27 64
#define VT_FRAME_X28 72
#define VT_FRAME_FP 80    /* x29 */
#define VT_FRAME_RET 88   /* x30: where the switch returns */
#define VT_FRAME_D8 96    /* d8..d15: 96..152 */
#define VT_FRAME_FPCR 160
#define VT_FRAME_SIZE 176 /* a multiple of 16: sp stays aligned */

/* Thread-pointer-relative words vthread owns.  tcbhead_t.private (the
 * TCB's second word) is unused by glibc on aarch64: it holds the running
 * context's vt_g * (0 = not a G).  The vfork mark lives in the
 * descriptor; see core/pd.h and docs/glibc-descriptor.md. */
#define VT_TP_G_SLOT 8
#define VT_TP_PD_OFFSET 1856              /* sizeof(struct pthread) */
#define VT_TP_VFORK_SLOT (8 - 1856)       /* pd.h PD_VFORK, from tp */

/* The preemption trampoline's frame is a kernel rt_sigframe, which it
 * hands to rt_sigreturn to resume the interrupted code with every
 * register restored (preempt_aarch64_lp64_elf.S).  Its layout: a
 * siginfo_t (128 bytes), then a ucontext_t, whose uc_mcontext holds
 * regs[31], sp, pc, pstate and the __reserved record area.  Checked
 * against <sys/ucontext.h> and <asm/sigcontext.h> in arch.c. */
#define VT_SF_UC 128                       /* ucontext_t in the frame */
#define VT_SF_STACK (VT_SF_UC + 16)        /* uc_stack */
#define VT_SF_SIGMASK (VT_SF_UC + 40)      /* uc_sigmask */
#define VT_SF_REGS (VT_SF_UC + 184)        /* uc_mcontext.regs[0] */
#define VT_SF_SP (VT_SF_REGS + 248)        /* uc_mcontext.sp */
#define VT_SF_PC (VT_SF_REGS + 256)        /* uc_mcontext.pc */
#define VT_SF_PSTATE (VT_SF_REGS + 264)    /* uc_mcontext.pstate */
#define VT_SF_RESERVED (VT_SF_UC + 464)    /* uc_mcontext.__reserved */
#define VT_SF_FPSIMD_SIZE 528              /* struct fpsimd_context */
#define VT_SF_SIZE (VT_SF_UC + 4560)       /* sizeof(struct rt_sigframe) */

#ifndef __ASSEMBLER__

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef VT_HIDDEN
#define VT_HIDDEN __attribute__((visibility("hidden")))
#endif

/* libunwind's local-unwinding entry points are named per architecture. */
#define VT_ARCH_UNW_PREFIX "_ULaarch64_"

/* Also, from arch_common.h: vt_arch_redirect_to_preempt refuses an
 * unaligned stack pointer, and a context holding live SVE or SME state
 * (Z/P registers wider than the V registers the trampoline saves: the
 * kernel records them only for a thread that used SVE since its last
 * system call).  vt_arch_call3_via's gadget is the address of
 * "ldp x29, x30, [sp], #16; ret", which pops the frame record the call
 * pushes and returns to it (callvia_aarch64_lp64_elf.S).  vt_arch_switch
 * ends with a stlr of *off_cpu. */
#include "../arch_common.h"

/* Builds the first frame of a context that will run entry(arg) on the
 * stack whose highest usable address is top; returns its saved stack
 * pointer, for vt_arch_switch's load_sp. */
static inline void *vt_arch_init_stack(void *top, void (*entry)(void *),
                                       void *arg)
{
    uintptr_t sp = (uintptr_t)top & ~(uintptr_t)15;
    sp -= 16; /* an empty frame record above the first frame */
    ((uint64_t *)sp)[0] = 0;
    ((uint64_t *)sp)[1] = 0;
    sp -= VT_FRAME_SIZE;
    uint64_t *f = (uint64_t *)sp;
    for (int i = 0; i < VT_FRAME_SIZE / 8; i++)
        f[i] = 0; /* FPCR 0: round to nearest, no traps (ABI default) */
    *(uint64_t *)(sp + VT_FRAME_X19) = (uint64_t)(uintptr_t)entry;
    *(uint64_t *)(sp + VT_FRAME_X20) = (uint64_t)(uintptr_t)arg;
    *(uint64_t *)(sp + VT_FRAME_RET) = (uint64_t)(uintptr_t)vt_arch_gstart;
    return (void *)sp;
}

/* The thread pointer. */
static inline uintptr_t vt_arch_get_tp(void)
{
    uintptr_t tp;
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
    return tp;
}

/* Reads a word (or an int) at an offset from the thread pointer (the
 * offset may be negative: the descriptor lies below it).  volatile asm:
 * the compiler can neither cache nor move these across a switch. */
static inline uintptr_t vt_arch_tp_load(long off)
{
    uintptr_t v;
    __asm__ volatile("mrs %0, tpidr_el0\n\tldr %0, [%0, %1]"
                     : "=&r"(v)
                     : "r"(off)
                     : "memory");
    return v;
}
static inline int vt_arch_tp_load32(long off)
{
    uintptr_t tp;
    int v;
    __asm__ volatile("mrs %1, tpidr_el0\n\tldr %w0, [%1, %2]"
                     : "=r"(v), "=&r"(tp)
                     : "r"(off)
                     : "memory");
    return v;
}

static inline void vt_arch_relax(void) { __asm__ volatile("yield" ::: "memory"); }

/* Raw system calls: return -errno on failure, never touch errno. */
static inline long vt_sys6(long n, long a, long b, long c, long d, long e,
                           long f)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc #0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}

#endif /* !__ASSEMBLER__ */
#endif /* VTHREAD_ARCH_H */
