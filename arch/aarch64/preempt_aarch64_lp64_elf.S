/*
 * preempt_aarch64_lp64_elf.S — the preemption trampoline.
 *
 * C prototype (arch.h):  void vt_arch_preempt_tramp(void);  (never called)
 *
 * The preemption signal handler (core/preempt.c) rewrites the interrupted
 * context so that, when the handler returns, the G runs this code with
 * every register — x0-x30, sp, the flags, v0-v31, FPSR, FPCR — as the
 * interrupted code left it; only pc differs, and the interrupted pc is
 * kept in the G (vt_g.preempt_pc, at offset 8; the G is at
 * [tpidr_el0 + VT_TP_G_SLOT]).
 *
 * Why not save, call and return as on x86_64: returning to an arbitrary
 * pc on aarch64 needs the target in a register (br/ret), and at an
 * arbitrary point of C code no register is free — x16/x17 included,
 * which compilers also use as temporaries.  So the trampoline builds, on
 * the G's stack below the interrupted sp (Linux aarch64 code keeps no
 * data below sp: there is no red zone), the frame the kernel itself
 * builds for a signal: a struct rt_sigframe whose ucontext holds every
 * register, with an FPSIMD record and the terminating record.  After
 * vt_preempt_park() (which yields the G; it may resume on another M) it
 * fills in the signal mask and alternate stack of the OS thread it is on
 * NOW (read with rt_sigprocmask and sigaltstack, so the sigreturn changes
 * neither) and resumes the interrupted code with rt_sigreturn, which
 * restores everything at once.  One extra system call per preemption,
 * which happens at most once per 10 ms time slice.
 *
 * SVE/SME: the handler refuses to preempt a context with live SVE or SME
 * state (arch.c), since only the V registers are saved here.
 *
 * Unwinding (a forced unwind for asynchronous cancellation runs through
 * here, from vt_preempt_park, into the interrupted code; so do libunwind
 * and gdb): the CFA is the interrupted sp; every x register is recorded
 * where it was saved; the return address is the exact interrupted pc,
 * kept in libgcc's alternate return column (96, as its own unwinder does
 * for the kernel's signal trampoline) so that the interrupted x30 stays
 * a register of its own; and the FDE is a signal frame, so the unwinder
 * does not look up pc - 1.  A frame record {x29, pc} is also built, for
 * frame-pointer walkers (perf).
 */
#include "arch.h"

#define FRAME VT_SF_SIZE
#define FPSIMD_MAGIC 0x46508001

        .text
        .globl  vt_arch_preempt_tramp
        .hidden vt_arch_preempt_tramp
        .type   vt_arch_preempt_tramp, %function
        .p2align 4
vt_arch_preempt_tramp:
        .cfi_startproc
        .cfi_signal_frame
        .cfi_return_column 96
        sub     sp, sp, #(FRAME & 0xfff)
        sub     sp, sp, #(FRAME & ~0xfff)
        .cfi_def_cfa sp, FRAME
        stp     x0, x1, [sp]            /* scratch (the siginfo area) */
        add     x0, sp, #VT_SF_REGS
        stp     x2, x3, [x0, #16]
        stp     x4, x5, [x0, #32]
        stp     x6, x7, [x0, #48]
        stp     x8, x9, [x0, #64]
        stp     x10, x11, [x0, #80]
        stp     x12, x13, [x0, #96]
        stp     x14, x15, [x0, #112]
        stp     x16, x17, [x0, #128]
        stp     x18, x19, [x0, #144]
        stp     x20, x21, [x0, #160]
        stp     x22, x23, [x0, #176]
        stp     x24, x25, [x0, #192]
        stp     x26, x27, [x0, #208]
        stp     x28, x29, [x0, #224]
        str     x30, [x0, #240]
        ldp     x2, x3, [sp]
        stp     x2, x3, [x0]            /* x0, x1 */
        .irp    r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
        .cfi_offset x\r, VT_SF_REGS + 8 * \r - FRAME
        .endr
        add     x1, sp, #(FRAME & 0xfff)
        add     x1, x1, #(FRAME & ~0xfff)
        mrs     x2, tpidr_el0
        ldr     x2, [x2, #VT_TP_G_SLOT] /* the G */
        ldr     x2, [x2, #8]            /* its preempt_pc */
        mrs     x3, nzcv
        stp     x1, x2, [x0, #(VT_SF_SP - VT_SF_REGS)] /* sp, pc */
        .cfi_offset 96, VT_SF_PC - FRAME
        str     x3, [x0, #(VT_SF_PSTATE - VT_SF_REGS)] /* the flags; EL0, AArch64 */
        /* a frame record for frame-pointer walkers, in the siginfo area */
        ldr     x1, [x0, #(29 * 8)]     /* the interrupted x29 */
        stp     x1, x2, [sp, #16]
        add     x29, sp, #16
        /* the FPSIMD record, then the terminator */
        add     x0, sp, #VT_SF_RESERVED
        movz    w1, #(FPSIMD_MAGIC & 0xffff)
        movk    w1, #(FPSIMD_MAGIC >> 16), lsl #16
        mov     w2, #VT_SF_FPSIMD_SIZE
        stp     w1, w2, [x0]
        mrs     x1, fpsr
        mrs     x2, fpcr
        stp     w1, w2, [x0, #8]
        add     x1, x0, #16
        stp     q0, q1, [x1, #0]
        stp     q2, q3, [x1, #32]
        stp     q4, q5, [x1, #64]
        stp     q6, q7, [x1, #96]
        stp     q8, q9, [x1, #128]
        stp     q10, q11, [x1, #160]
        stp     q12, q13, [x1, #192]
        stp     q14, q15, [x1, #224]
        stp     q16, q17, [x1, #256]
        stp     q18, q19, [x1, #288]
        stp     q20, q21, [x1, #320]
        stp     q22, q23, [x1, #352]
        stp     q24, q25, [x1, #384]
        stp     q26, q27, [x1, #416]
        stp     q28, q29, [x1, #448]
        stp     q30, q31, [x1, #480]
        add     x2, x0, #VT_SF_FPSIMD_SIZE
        stp     xzr, xzr, [x2]
        /* uc_flags, uc_link */
        add     x0, sp, #VT_SF_UC
        stp     xzr, xzr, [x0]

        bl      vt_preempt_park         /* may return on another M */

        /* this OS thread's mask and alternate stack, so that sigreturn
         * leaves both as they are */
        mov     x0, #0                  /* SIG_BLOCK, with no set: a read */
        mov     x1, #0
        add     x2, sp, #VT_SF_SIGMASK
        mov     x3, #8
        mov     x8, #135                /* rt_sigprocmask */
        svc     #0
        mov     x0, #0
        add     x1, sp, #VT_SF_STACK
        mov     x8, #132                /* sigaltstack */
        svc     #0
        mov     x8, #139                /* rt_sigreturn: sp is the frame */
        svc     #0
        brk     #2                      /* not reached */
        .cfi_endproc
        .size   vt_arch_preempt_tramp, .-vt_arch_preempt_tramp

        .section .note.GNU-stack,"",%progbits
