/*
 * vfork_x86_64_sysv_elf.S — the program's vfork(), marking the caller's
 * thread descriptor while the child borrows its memory.
 *
 *   pid_t vfork(void);     (public: exported by libvthread, see below)
 *   pid_t __vfork(void);
 *
 * A vfork child runs on its parent's stack, with its parent's thread
 * pointer, in its parent's memory, until it execs or exits.  Anything the
 * child calls that vthread interposes (close, dup2, sigaction,
 * pthread_sigmask, read ...) would otherwise act on the parent's runtime
 * state: the G, its signal mask, the netpoller's registrations (the epoll
 * instance is shared with the child).  So the calling thread's descriptor
 * word at VFORK_SLOT (tcbhead_t.__padding[1], which glibc never uses; 0
 * for every thread) is set to 1 around the system call: in the child, the
 * preload layer's pl_on() sees it and passes every call straight to libc,
 * as in any single-threaded child.  Only the calling thread's word is
 * set: the parent's other threads keep running normally.  The parent
 * clears it when the kernel resumes it (the child has exec'ed or exited).
 *
 * Like glibc's: a C function cannot call vfork (its frame would be reused
 * by the child), so this is the whole function, returning straight to the
 * caller; the return address is kept in rdi across the system call.
 * Defined here, not in preload/, because it is assembly; the version
 * script exports it with the other public names.
 */
        .set    VFORK_SLOT, 0x288   /* pl.h PL_PD_VFORK; docs/glibc-descriptor.md */
        .set    SYS_vfork, 58

        .text
        .globl  vfork
        .type   vfork, @function
        .globl  __vfork
        .type   __vfork, @function
vfork:
__vfork:
        .cfi_startproc
        movl    $1, %fs:VFORK_SLOT
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rdi
        movl    $SYS_vfork, %eax
        syscall
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rip, 0
        testq   %rax, %rax
        jz      1f                      /* the child: leave the mark */
        movl    $0, %fs:VFORK_SLOT      /* the parent, resumed (or error) */
        cmpq    $-4095, %rax
        jae     2f
1:
        ret
2:
        /* errno = -rax, through libc's own accessor (errno is its TLS) */
        negl    %eax
        pushq   %rax                    /* keep it; aligns for the call */
        .cfi_adjust_cfa_offset 8
        call    __errno_location@PLT
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        movl    %ecx, (%rax)
        movq    $-1, %rax
        ret
        .cfi_endproc
        .size   vfork, .-vfork
        .size   __vfork, .-__vfork

        .section .note.GNU-stack,"",@progbits
