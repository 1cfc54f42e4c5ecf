/*
 * arch.h — what core/ needs from the CPU, for x86_64 Linux.
 *
 * A handful of symbols: the context switch, building a new context's first
 * frame, reading and writing the thread pointer (fs base), raw system calls
 * (which never touch errno: the runtime must not disturb the running G's
 * errno), and a spin hint.  Another architecture provides the same names.
 */
#ifndef VTHREAD_ARCH_H
#define VTHREAD_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef VT_HIDDEN
#define VT_HIDDEN __attribute__((visibility("hidden")))
#endif

/* Offsets in the frame vt_arch_switch saves (see the .S file). */
#define VT_FRAME_MXCSR 0
#define VT_FRAME_FPUCW 4
#define VT_FRAME_R15 8
#define VT_FRAME_R14 16
#define VT_FRAME_R13 24
#define VT_FRAME_R12 32
#define VT_FRAME_RBX 40
#define VT_FRAME_RBP 48
#define VT_FRAME_RET 56
#define VT_FRAME_SIZE 64

/* Thread-pointer-relative words.  On x86_64 (TLS variant II) the thread
 * pointer is the descriptor (struct pthread) itself, whose first 0x2c0
 * bytes are tcbhead_t; two of its padding words, unused by glibc, are
 * vthread's: the running context's vt_g * (0 = not a G; also read by
 * preempt_x86_64_sysv_elf.S) and the vfork mark (vfork_x86_64_sysv_elf.S).
 * See core/pd.h and docs/glibc-descriptor.md. */
#define VT_TP_G_SLOT 0x280
#define VT_TP_VFORK_SLOT 0x288
#define VT_TP_PD_OFFSET 0 /* the descriptor is at the thread pointer */

/* libunwind's local-unwinding entry points are named per architecture. */
#define VT_ARCH_UNW_PREFIX "_ULx86_64_"

/* True when wrfsbase may be used (AT_HWCAP2 has HWCAP2_FSGSBASE); read by
 * the assembly.  Set once by vt_arch_init(), before any switch. */
VT_HIDDEN extern unsigned char vt_arch_have_fsgsbase;

/* Preemption: the trampoline a preempted G is redirected into, and the
 * size of the extended-state save area it reserves (XSAVE size for the
 * enabled features, from CPUID 0xD; 512 for FXSAVE). */
VT_HIDDEN extern unsigned char vt_arch_have_xsave;
VT_HIDDEN extern unsigned long vt_arch_xsave_size;

/* Also, from arch_common.h: vt_arch_redirect_to_preempt keeps the red zone
 * intact and writes nothing to the interrupted stack (the kernel's
 * signal frame lies just below the red zone); it refuses an unaligned
 * stack pointer.  vt_arch_call3_via's gadget is the address of any 0xc3
 * byte (ret) in an executable segment: the CPU executes it as a ret
 * wherever it sits (callvia_x86_64_sysv_elf.S).  vt_arch_init decides
 * how the thread pointer is switched (wrfsbase or arch_prctl). */
#include "../arch_common.h"

/* Builds the first frame of a context that will run entry(arg) on the
 * stack whose highest usable address is top; returns its saved stack
 * pointer, for vt_arch_switch's load_sp. */
static inline void *vt_arch_init_stack(void *top, void (*entry)(void *),
                                       void *arg)
{
    uintptr_t sp = (uintptr_t)top & ~(uintptr_t)15;
    /* After vt_arch_switch's ret pops the return slot, rsp must be 16-byte
     * aligned for vt_arch_gstart's call: two zero words sit above it. */
    sp -= 16;
    ((uint64_t *)sp)[0] = 0;
    ((uint64_t *)sp)[1] = 0;
    sp -= VT_FRAME_SIZE;
    uint64_t *f = (uint64_t *)sp;
    for (int i = 0; i < VT_FRAME_SIZE / 8; i++)
        f[i] = 0;
    *(uint32_t *)(sp + VT_FRAME_MXCSR) = 0x1f80; /* ABI default MXCSR */
    *(uint16_t *)(sp + VT_FRAME_FPUCW) = 0x037f; /* ABI default x87 CW */
    *(uint64_t *)(sp + VT_FRAME_R12) = (uint64_t)(uintptr_t)entry;
    *(uint64_t *)(sp + VT_FRAME_R13) = (uint64_t)(uintptr_t)arg;
    *(uint64_t *)(sp + VT_FRAME_RET) = (uint64_t)(uintptr_t)vt_arch_gstart;
    return (void *)sp;
}

/* The thread pointer: %fs:0 holds the TCB's own address on x86_64. */
static inline uintptr_t vt_arch_get_tp(void)
{
    uintptr_t tp;
    __asm__ volatile("movq %%fs:0, %0" : "=r"(tp));
    return tp;
}

/* Reads/writes a word at an offset from the thread pointer.  volatile asm:
 * the compiler can neither cache nor move these across a switch. */
static inline uintptr_t vt_arch_tp_load(long off)
{
    uintptr_t v;
    __asm__ volatile("movq %%fs:(%1), %0" : "=r"(v) : "r"(off));
    return v;
}
static inline int vt_arch_tp_load32(long off)
{
    int v;
    __asm__ volatile("movl %%fs:(%1), %0" : "=r"(v) : "r"(off));
    return v;
}


static inline void vt_arch_relax(void) { __asm__ volatile("pause" ::: "memory"); }

/* Raw system calls: return -errno on failure, never touch errno. */
static inline long vt_sys6(long n, long a, long b, long c, long d, long e,
                           long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
                       "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#endif /* VTHREAD_ARCH_H */
