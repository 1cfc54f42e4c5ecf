/*
 * switch_x86_64_sysv_elf.S — G-to-G context switch and the G entry
 * trampoline for x86_64, System V ABI, ELF.
 *
 * C prototypes (arch.h):
 *   void vt_arch_switch(void **save_sp, void *load_sp, uintptr_t fs,
 *                       volatile int *off_cpu);
 *   void vt_arch_gstart(void);   (never called: the first "return" target)
 *
 * vt_arch_switch saves the callee-saved state of the running context on its
 * own stack, stores the stack pointer in *save_sp, installs the target's
 * thread pointer (fs base) unless fs is 0, moves to load_sp, and only then
 * stores 0 to *off_cpu (when not NULL): from that store on, another M may
 * resume the saved context, because nothing here touches its stack or its
 * TLS any more.  Setting fs before leaving the old stack means a signal that
 * lands in between runs with the TARGET's TLS, which this M already owns;
 * the reverse order would let it run with the old context's TLS while
 * another M may be running that context.
 *
 * Saved frame, growing down from the caller's return address (offsets from
 * the saved stack pointer; mirrored in arch.h VT_FRAME_*, checked there):
 *
 *    +56  return address            (pushed by the caller's call)
 *    +48  rbp                       callee-saved
 *    +40  rbx                       callee-saved
 *    +32  r12                       callee-saved (gstart: entry function)
 *    +24  r13                       callee-saved (gstart: its argument)
 *    +16  r14                       callee-saved
 *     +8  r15                       callee-saved
 *     +4  x87 control word (16 bits) callee-saved per the ABI
 *     +0  MXCSR (32 bits)           control bits are callee-saved
 *
 * Everything else is caller-saved, so the C caller does not expect it to
 * survive the call.  The syscall path clobbers rax, rcx, r11 (caller-saved).
 * Vector registers are caller-saved in the SysV ABI: nothing to save.
 */
        .text

        .globl  vt_arch_switch
        .hidden vt_arch_switch
        .type   vt_arch_switch, @function
        .p2align 4
vt_arch_switch:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)            /* *save_sp = rsp: context saved */

        movq    %rsi, %r8               /* r8 = target stack pointer */
        movq    %rcx, %r9               /* r9 = off_cpu flag (syscall eats rcx) */
        testq   %rdx, %rdx
        jz      2f                      /* fs == 0: same thread pointer */
        cmpb    $0, vt_arch_have_fsgsbase(%rip)
        je      1f
        wrfsbase %rdx                   /* ~13 ns where the CPU allows it */
        jmp     2f
1:      movl    $158, %eax              /* SYS_arch_prctl */
        movl    $0x1002, %edi           /* ARCH_SET_FS */
        movq    %rdx, %rsi
        syscall                         /* cannot fail for a valid pointer */
2:      movq    %r8, %rsp               /* now on the target's stack */
        testq   %r9, %r9
        jz      3f
        movl    $0, (%r9)               /* release the old context (TSO:
                                           all its saves are visible first) */
3:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   vt_arch_switch, .-vt_arch_switch

/*
 * The first switch into a new context "returns" here, with r12 = the entry
 * function and r13 = its argument (placed by vt_arch_init_stack), and the
 * stack pointer 16-byte aligned.  The entry function never returns.  The
 * return address is marked undefined so unwinders (glibc's forced unwind
 * for pthread_exit, libunwind, gdb) stop here: this is the outermost frame.
 */
        .globl  vt_arch_gstart
        .hidden vt_arch_gstart
        .type   vt_arch_gstart, @function
        .p2align 4
vt_arch_gstart:
        .cfi_startproc
        .cfi_undefined rip
        xorl    %ebp, %ebp
        movq    %r13, %rdi
        callq   *%r12
        ud2                             /* the entry function returned */
        .cfi_endproc
        .size   vt_arch_gstart, .-vt_arch_gstart

        .section .note.GNU-stack,"",@progbits
