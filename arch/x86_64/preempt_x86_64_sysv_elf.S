/*
 * preempt_x86_64_sysv_elf.S — the preemption trampoline.
 *
 * C prototype (arch.h):  void vt_arch_preempt_tramp(void);  (never called)
 *
 * The preemption signal handler (core/preempt.c) rewrites the interrupted
 * context so that, when the handler returns, the G runs this code with rsp
 * moved below the 128-byte red zone and one empty slot, and the
 * interrupted rip kept in the G (vt_g.preempt_pc, at offset 8; the G is
 * at %fs:0x280).  The handler cannot write that slot itself: the kernel's
 * signal frame, restored by sigreturn, lies right there.  We fill it, so
 * the stack then holds the interrupted rip as a return address, and every
 * register still has the interrupted code's value.  We save them all,
 * the flags and the extended (x87/SSE/AVX/AVX-512) state, call
 * vt_preempt_park() (which yields the G; it may resume on another M), and
 * restore everything before returning into the interrupted code.
 *
 * Returning pops the slot and the 128 bytes skipped for the red zone
 * (ret $128), so the interrupted code resumes with its own rsp.
 *
 * Frame, from the entry stack pointer down:
 *    +0   interrupted rip (return address)
 *    -8   rflags
 *    -16..-128  rax rbx rcx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 r15
 *    then, 64-byte aligned, vt_arch_xsave_size bytes of XSAVE area (or a
 *    512-byte FXSAVE area when the CPU has no XSAVE).
 * rbp keeps the address of the saved r15 across the call (callee-saved).
 *
 * Unwinding (a forced unwind for asynchronous cancellation runs through
 * here, from vt_preempt_park, into the interrupted code): the CFA is the
 * interrupted code's own rsp, entry rsp + 8 + 128 (the red zone we
 * skipped), not entry rsp + 8 as for a call, and the return address
 * lies 136 bytes below it.  Every register is recorded where we saved it
 * (the interrupted code may keep its frame in any of them), and the FDE
 * is marked a signal frame: the "return address" is the exact interrupted
 * rip, not the instruction after a call, so the unwinder must not look up
 * rip - 1 (which may lie in the previous function).
 */
        .text
        .globl  vt_arch_preempt_tramp
        .hidden vt_arch_preempt_tramp
        .type   vt_arch_preempt_tramp, @function
        .p2align 4
vt_arch_preempt_tramp:
        .cfi_startproc
        .cfi_signal_frame
        .cfi_def_cfa rsp, 136
        .cfi_offset rip, -136
        pushq   %rax
        .cfi_adjust_cfa_offset 8
        movq    %fs:0x280, %rax         /* the G */
        movq    8(%rax), %rax           /* its preempt_pc */
        movq    %rax, 8(%rsp)           /* into the return-address slot */
        popq    %rax
        .cfi_adjust_cfa_offset -8
        pushfq
        .cfi_adjust_cfa_offset 8
        pushq   %rax
        .cfi_adjust_cfa_offset 8
        .cfi_offset rax, -152
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_offset rbx, -160
        pushq   %rcx
        .cfi_adjust_cfa_offset 8
        .cfi_offset rcx, -168
        pushq   %rdx
        .cfi_adjust_cfa_offset 8
        .cfi_offset rdx, -176
        pushq   %rsi
        .cfi_adjust_cfa_offset 8
        .cfi_offset rsi, -184
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        .cfi_offset rdi, -192
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_offset rbp, -200
        pushq   %r8
        .cfi_adjust_cfa_offset 8
        .cfi_offset r8, -208
        pushq   %r9
        .cfi_adjust_cfa_offset 8
        .cfi_offset r9, -216
        pushq   %r10
        .cfi_adjust_cfa_offset 8
        .cfi_offset r10, -224
        pushq   %r11
        .cfi_adjust_cfa_offset 8
        .cfi_offset r11, -232
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_offset r12, -240
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_offset r13, -248
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_offset r14, -256
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_offset r15, -264
        movq    %rsp, %rbp
        .cfi_def_cfa_register rbp
        subq    vt_arch_xsave_size(%rip), %rsp
        andq    $-64, %rsp
        cmpb    $0, vt_arch_have_xsave(%rip)
        je      1f
        /* XRSTOR faults on a non-zero reserved header: clear the 64-byte
         * header (offset 512) that XSAVE only partly writes. */
        xorl    %eax, %eax
        movq    %rax, 512(%rsp)
        movq    %rax, 520(%rsp)
        movq    %rax, 528(%rsp)
        movq    %rax, 536(%rsp)
        movq    %rax, 544(%rsp)
        movq    %rax, 552(%rsp)
        movq    %rax, 560(%rsp)
        movq    %rax, 568(%rsp)
        movl    $-1, %eax
        movl    $-1, %edx
        xsave64 (%rsp)
        jmp     2f
1:      fxsave64 (%rsp)
2:      cld                             /* the ABI's direction flag */
        call    vt_preempt_park
        cmpb    $0, vt_arch_have_xsave(%rip)
        je      3f
        movl    $-1, %eax
        movl    $-1, %edx
        xrstor64 (%rsp)
        jmp     4f
3:      fxrstor64 (%rsp)
4:      movq    %rbp, %rsp
        .cfi_def_cfa_register rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %r11
        popq    %r10
        popq    %r9
        popq    %r8
        popq    %rbp
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rbx
        popq    %rax
        popfq
        ret     $128                    /* and give back the red zone */
        .cfi_endproc
        .size   vt_arch_preempt_tramp, .-vt_arch_preempt_tramp

        .section .note.GNU-stack,"",@progbits
