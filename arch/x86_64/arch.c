/* arch.c — x86_64: choosing how the thread pointer is switched. */
#include <asm/prctl.h>
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

void vt_arch_set_tp(uintptr_t tp)
{
    if (vt_arch_have_fsgsbase)
        __asm__ volatile("wrfsbase %0" ::"r"(tp) : "memory");
    else
        vt_sys2(SYS_arch_prctl, ARCH_SET_FS, tp);
}
