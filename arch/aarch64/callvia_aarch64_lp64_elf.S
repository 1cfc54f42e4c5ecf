/*
 * callvia_aarch64_lp64_elf.S — call a function so that its return address
 * lies in another object, and still get control back.
 *
 * C prototype (arch.h):
 *   void *vt_arch_call3_via(void *(*fn)(long, long, long), long a, long b,
 *                           long c, uintptr_t gadget);
 *
 * Why: glibc's dlopen and dlmopen look at their return address (x30 at
 * entry) to find the calling object, whose RUNPATH, RPATH and $ORIGIN
 * decide where the library is searched (core/dl.c).  On x86_64 a lone
 * "ret" byte in the caller's object serves, because ret pops its target
 * from the stack.  aarch64's ret jumps to x30, which would be the gadget
 * itself; so the gadget here is an ordinary function epilogue,
 *     ldp x29, x30, [sp], #16
 *     ret
 * found in the caller's object (vt_arch_find_return_gadget).  We push the
 * frame record it pops: our frame pointer, and label 1 below as x30.
 *
 * Stack at fn's entry (growing down):
 *      our x29, x30             our own frame record (16 bytes)
 *      our x29, label 1f        <- sp: popped by the gadget's ldp
 * fn is reached with br x16, which a BTI "c" landing pad accepts.
 */
        .text
        .globl  vt_arch_call3_via
        .hidden vt_arch_call3_via
        .type   vt_arch_call3_via, %function
        .p2align 4
vt_arch_call3_via:
        .cfi_startproc
        stp     x29, x30, [sp, #-16]!
        .cfi_def_cfa_offset 16
        .cfi_offset x29, -16
        .cfi_offset x30, -8
        mov     x29, sp
        adr     x9, 1f
        stp     x29, x9, [sp, #-16]!
        .cfi_adjust_cfa_offset 16
        mov     x16, x0
        mov     x0, x1
        mov     x1, x2
        mov     x2, x3
        mov     x30, x4
        br      x16
1:      /* the gadget popped its 16 bytes and restored our x29 */
        .cfi_adjust_cfa_offset -16
        ldp     x29, x30, [sp], #16
        .cfi_adjust_cfa_offset -16
        .cfi_restore x29
        .cfi_restore x30
        ret
        .cfi_endproc
        .size   vt_arch_call3_via, .-vt_arch_call3_via

        .section .note.GNU-stack,"",%progbits
