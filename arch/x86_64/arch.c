/* arch.c — x86_64: choosing how the thread pointer is switched. */
#include <asm/prctl.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include "arch.h"

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

/* Read by the assembly; written once here before any G exists. */
unsigned char vt_arch_have_fsgsbase;

void vt_arch_init(void)
{
    /* The kernel sets HWCAP2_FSGSBASE only when the CPU has the
     * instructions AND it enabled them for user space (CR4.FSGSBASE,
     * Linux >= 5.9); wrfsbase would fault otherwise. */
    vt_arch_have_fsgsbase = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0;
}

void vt_arch_set_tp(uintptr_t tp)
{
    if (vt_arch_have_fsgsbase)
        __asm__ volatile("wrfsbase %0" ::"r"(tp) : "memory");
    else
        vt_sys2(SYS_arch_prctl, ARCH_SET_FS, tp);
}
