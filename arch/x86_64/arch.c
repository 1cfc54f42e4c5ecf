/* arch.c — x86_64: choosing how the thread pointer is switched. */
#include <cpuid.h>
#include <ucontext.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include "arch.h"

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

/* Read by the assembly; written once here before any G exists. */
unsigned char vt_arch_have_fsgsbase;
unsigned char vt_arch_have_xsave;
unsigned long vt_arch_xsave_size = 512;

void vt_arch_init(void)
{
    /* The kernel sets HWCAP2_FSGSBASE only when the CPU has the
     * instructions AND it enabled them for user space (CR4.FSGSBASE,
     * Linux >= 5.9); wrfsbase would fault otherwise. */
    vt_arch_have_fsgsbase = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0;
    /* XSAVE usable when the OS enabled it (CPUID.1:ECX.OSXSAVE, bit 27);
     * CPUID.(0xD,0):EBX is the save area size for the features enabled
     * in XCR0 now. */
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27)) &&
        __get_cpuid_count(0xd, 0, &a, &b, &c, &d) && b >= 576) {
        vt_arch_have_xsave = 1;
        vt_arch_xsave_size = b;
    }
}

uintptr_t vt_arch_context_pc(void *ucontext)
{
    ucontext_t *uc = ucontext;
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
}

bool vt_arch_redirect_to_preempt(void *ucontext, uintptr_t *pc_slot)
{
    ucontext_t *uc = ucontext;
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    if (sp & 7)
        return false;
    /* Skip the red zone (leaf code may keep data in the 128 bytes below
     * rsp) and reserve the return-address slot the trampoline fills.
     * The trampoline aligns the stack itself. */
    sp -= 128;
    sp -= 8;
    *pc_slot = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uc->uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)vt_arch_preempt_tramp;
    return true;
}


void vt_arch_parked_context(void *ucontext, uintptr_t sp)
{
    greg_t *r = ((ucontext_t *)ucontext)->uc_mcontext.gregs;
    r[REG_RIP] = *(greg_t *)(sp + VT_FRAME_RET);
    r[REG_RSP] = (greg_t)(sp + VT_FRAME_RET + 8);
    r[REG_RBP] = *(greg_t *)(sp + VT_FRAME_RBP);
    r[REG_RBX] = *(greg_t *)(sp + VT_FRAME_RBX);
    r[REG_R12] = *(greg_t *)(sp + VT_FRAME_R12);
    r[REG_R13] = *(greg_t *)(sp + VT_FRAME_R13);
    r[REG_R14] = *(greg_t *)(sp + VT_FRAME_R14);
    r[REG_R15] = *(greg_t *)(sp + VT_FRAME_R15);
}

uintptr_t vt_arch_find_return_gadget(uintptr_t lo, uintptr_t hi,
                                     uintptr_t near)
{
    if (near < lo || near >= hi)
        return 0;
    for (uintptr_t p = near; p > lo; p--) /* usually within bytes */
        if (*(const unsigned char *)(p - 1) == 0xc3)
            return p - 1;
    for (uintptr_t p = near; p < hi; p++)
        if (*(const unsigned char *)p == 0xc3)
            return p;
    return 0;
}
