/*
 * callvia_x86_64_sysv_elf.S — call a function so that its return address
 * is a given "ret" instruction elsewhere, and still get control back.
 *
 * C prototype (arch.h):
 *   void *vt_arch_call3_via(void *(*fn)(long, long, long), long a, long b,
 *                           long c, uintptr_t ret_insn);
 *
 * Why: glibc's dlopen and dlmopen look at their return address to find
 * the calling object, whose RUNPATH, RPATH and $ORIGIN decide where the
 * library is searched.  A wrapper that calls them normally makes itself
 * the caller.  Here fn "returns" to ret_insn — the address of a byte 0xc3
 * (ret) inside the real caller's object — which in turn returns to the
 * label below, because we pushed it just above.  fn sees an ordinary
 * call: rsp is 8 mod 16 at its entry, arguments in rdi, rsi, rdx.
 *
 * Stack at fn's entry (growing down):
 *      saved rbx                (our own frame, 16-byte aligned below it)
 *      padding                  (alignment)
 *      label 1f                 <- popped by the ret at ret_insn
 *      ret_insn                 <- fn's return address
 */
        .text
        .globl  vt_arch_call3_via
        .hidden vt_arch_call3_via
        .type   vt_arch_call3_via, @function
vt_arch_call3_via:
        .cfi_startproc
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbx, 0
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        movq    %rdi, %rax
        movq    %rsi, %rdi
        movq    %rdx, %rsi
        movq    %rcx, %rdx
        leaq    1f(%rip), %r11
        pushq   %r11
        pushq   %r8
        jmpq    *%rax
1:
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore rbx
        ret
        .cfi_endproc
        .size   vt_arch_call3_via, .-vt_arch_call3_via

        .section .note.GNU-stack,"",@progbits
