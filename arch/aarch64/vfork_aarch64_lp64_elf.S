/*
 * vfork_aarch64_lp64_elf.S — the program's vfork(), marking the caller's
 * thread descriptor while the child borrows its memory.
 *
 *   pid_t vfork(void);     (public: exported by libvthread)
 *   pid_t __vfork(void);
 *
 * Why the mark: see vfork_x86_64_sysv_elf.S.  The calling thread's
 * descriptor word at VT_TP_VFORK_SLOT (arch.h; pd.h PD_VFORK) is 1 around
 * the system call, so that in the child, which runs on the parent's
 * stack with its thread pointer, the preload layer's pl_on() is false and
 * every call goes straight to libc.  The parent clears it when the kernel
 * resumes it (the child has exec'ed or exited).
 *
 * arm64 has no vfork system call: like glibc, this is clone with
 * CLONE_VM | CLONE_VFORK | SIGCHLD and the caller's stack.  The return
 * address stays in x30 across the call (nothing is popped off the shared
 * stack), so the child returning first does not break the parent.
 */
#include "arch.h"

        .set    SYS_clone, 220
        .set    VFORK_FLAGS, 0x4111     /* CLONE_VM | CLONE_VFORK | SIGCHLD */

        .text
        .globl  vfork
        .type   vfork, %function
        .globl  __vfork
        .type   __vfork, %function
        .p2align 4
vfork:
__vfork:
        .cfi_startproc
        mrs     x9, tpidr_el0
        sub     x9, x9, #(-VT_TP_VFORK_SLOT)
        mov     w10, #1
        str     w10, [x9]
        mov     x0, #VFORK_FLAGS
        mov     x1, #0                  /* the same stack */
        mov     x2, #0
        mov     x3, #0
        mov     x4, #0
        mov     x8, #SYS_clone
        svc     #0
        cbz     x0, 1f                  /* the child: leave the mark */
        mrs     x9, tpidr_el0
        sub     x9, x9, #(-VT_TP_VFORK_SLOT)
        str     wzr, [x9]               /* the parent, resumed (or error) */
        cmn     x0, #4095
        b.hs    2f
1:      ret
2:      /* errno = -x0, through libc's own accessor (errno is its TLS) */
        stp     x29, x30, [sp, #-16]!
        .cfi_def_cfa_offset 16
        .cfi_offset x29, -16
        .cfi_offset x30, -8
        mov     x29, sp
        neg     w9, w0
        str     w9, [sp, #-16]!
        bl      __errno_location
        ldr     w9, [sp], #16
        str     w9, [x0]
        mov     x0, #-1
        ldp     x29, x30, [sp], #16
        .cfi_def_cfa_offset 0
        .cfi_restore x29
        .cfi_restore x30
        ret
        .cfi_endproc
        .size   vfork, .-vfork
        .size   __vfork, .-__vfork

        .section .note.GNU-stack,"",%progbits
