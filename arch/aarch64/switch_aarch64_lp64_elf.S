/*
 * switch_aarch64_lp64_elf.S — G-to-G context switch and the G entry
 * trampoline for aarch64, AAPCS64 (LP64), ELF.
 *
 * C prototypes (arch.h):
 *   void vt_arch_switch(void **save_sp, void *load_sp, uintptr_t tp,
 *                       volatile int *off_cpu);
 *   void vt_arch_gstart(void);   (never called: the first "return" target)
 *
 * vt_arch_switch saves the callee-saved state of the running context on its
 * own stack, stores the stack pointer in *save_sp, installs the target's
 * thread pointer (tpidr_el0) unless tp is 0, moves to load_sp, and only
 * then store-releases 0 to *off_cpu (when not NULL): from that store on,
 * another M may resume the saved context, because nothing here touches its
 * stack or its TLS any more.  The release (stlr) orders every save above,
 * and the *save_sp store, before it: the M that resumes the context
 * load-acquires on_cpu (core/sched.c) and then reads them.  x86_64 gets
 * this ordering for free (TSO); arm64 does not.  The thread pointer is set
 * before leaving the old stack for the reason given in the x86_64 file: a
 * signal landing in between runs with the TARGET's TLS, which this M owns.
 *
 * Saved frame (offsets from the saved stack pointer; arch.h VT_FRAME_*):
 *
 *   +160  FPCR                       control bits callee-saved (AAPCS64)
 *   +96   d8 .. d15                  low halves of v8-v15, callee-saved
 *   +88   x30 (lr)                   where the switch returns
 *   +80   x29 (fp)
 *   +0    x19 .. x28                 callee-saved
 *
 * Everything else is caller-saved, so the C caller does not expect it to
 * survive the call.  The frame is 176 bytes: sp stays 16-byte aligned.
 */
#include "arch.h"

        .text

        .globl  vt_arch_switch
        .hidden vt_arch_switch
        .type   vt_arch_switch, %function
        .p2align 4
vt_arch_switch:
        .cfi_startproc
        sub     sp, sp, #VT_FRAME_SIZE
        .cfi_def_cfa_offset VT_FRAME_SIZE
        stp     x19, x20, [sp, #VT_FRAME_X19]
        stp     x21, x22, [sp, #VT_FRAME_X21]
        stp     x23, x24, [sp, #VT_FRAME_X23]
        stp     x25, x26, [sp, #VT_FRAME_X25]
        stp     x27, x28, [sp, #VT_FRAME_X27]
        stp     x29, x30, [sp, #VT_FRAME_FP]
        .cfi_offset x19, VT_FRAME_X19 - VT_FRAME_SIZE
        .cfi_offset x20, VT_FRAME_X20 - VT_FRAME_SIZE
        .cfi_offset x21, VT_FRAME_X21 - VT_FRAME_SIZE
        .cfi_offset x22, VT_FRAME_X22 - VT_FRAME_SIZE
        .cfi_offset x23, VT_FRAME_X23 - VT_FRAME_SIZE
        .cfi_offset x24, VT_FRAME_X24 - VT_FRAME_SIZE
        .cfi_offset x25, VT_FRAME_X25 - VT_FRAME_SIZE
        .cfi_offset x26, VT_FRAME_X26 - VT_FRAME_SIZE
        .cfi_offset x27, VT_FRAME_X27 - VT_FRAME_SIZE
        .cfi_offset x28, VT_FRAME_X28 - VT_FRAME_SIZE
        .cfi_offset x29, VT_FRAME_FP - VT_FRAME_SIZE
        .cfi_offset x30, VT_FRAME_RET - VT_FRAME_SIZE
        stp     d8, d9, [sp, #VT_FRAME_D8]
        stp     d10, d11, [sp, #VT_FRAME_D8 + 16]
        stp     d12, d13, [sp, #VT_FRAME_D8 + 32]
        stp     d14, d15, [sp, #VT_FRAME_D8 + 48]
        mrs     x9, fpcr
        str     x9, [sp, #VT_FRAME_FPCR]
        mov     x9, sp
        str     x9, [x0]                /* *save_sp = sp: context saved */

        cbz     x2, 1f                  /* tp == 0: same thread pointer */
        msr     tpidr_el0, x2
1:      mov     sp, x1                  /* now on the target's stack */
        cbz     x3, 2f
        stlr    wzr, [x3]               /* release the old context */
2:      ldr     x9, [sp, #VT_FRAME_FPCR]
        mrs     x10, fpcr
        cmp     x9, x10
        b.eq    3f                      /* writing FPCR may be slow */
        msr     fpcr, x9
3:      ldp     d8, d9, [sp, #VT_FRAME_D8]
        ldp     d10, d11, [sp, #VT_FRAME_D8 + 16]
        ldp     d12, d13, [sp, #VT_FRAME_D8 + 32]
        ldp     d14, d15, [sp, #VT_FRAME_D8 + 48]
        ldp     x19, x20, [sp, #VT_FRAME_X19]
        ldp     x21, x22, [sp, #VT_FRAME_X21]
        ldp     x23, x24, [sp, #VT_FRAME_X23]
        ldp     x25, x26, [sp, #VT_FRAME_X25]
        ldp     x27, x28, [sp, #VT_FRAME_X27]
        ldp     x29, x30, [sp, #VT_FRAME_FP]
        add     sp, sp, #VT_FRAME_SIZE
        ret
        .cfi_endproc
        .size   vt_arch_switch, .-vt_arch_switch

/*
 * The first switch into a new context "returns" here, with x19 = the entry
 * function and x20 = its argument (placed by vt_arch_init_stack), and sp
 * 16-byte aligned.  The entry function never returns.  The return address
 * (x30) is marked undefined and the frame pointer zeroed, so unwinders
 * (glibc's forced unwind for pthread_exit, libunwind, gdb, perf's frame
 * pointer walk) stop here: this is the outermost frame.
 */
        .globl  vt_arch_gstart
        .hidden vt_arch_gstart
        .type   vt_arch_gstart, %function
        .p2align 4
vt_arch_gstart:
        .cfi_startproc
        .cfi_undefined x30
        mov     x29, #0
        mov     x30, #0
        mov     x0, x20
        blr     x19
        brk     #1                      /* the entry function returned */
        .cfi_endproc
        .size   vt_arch_gstart, .-vt_arch_gstart

        .section .note.GNU-stack,"",%progbits
