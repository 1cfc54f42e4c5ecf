/* arch.c — aarch64: signal contexts, parked contexts, return gadgets. */
#include <asm/sigcontext.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <ucontext.h>

#include "arch.h"

/* The trampoline's frame (arch.h VT_SF_*) is the kernel's rt_sigframe:
 * a siginfo_t then a ucontext_t, glibc's ucontext_t having the kernel's
 * layout on aarch64 (its 128-byte sigset_t is the kernel's sigset plus
 * padding). */
_Static_assert(sizeof(siginfo_t) == VT_SF_UC, "siginfo_t");
_Static_assert(offsetof(ucontext_t, uc_stack) == VT_SF_STACK - VT_SF_UC, "");
_Static_assert(offsetof(ucontext_t, uc_sigmask) == VT_SF_SIGMASK - VT_SF_UC,
               "");
_Static_assert(offsetof(ucontext_t, uc_mcontext.regs) ==
                   VT_SF_REGS - VT_SF_UC, "");
_Static_assert(offsetof(ucontext_t, uc_mcontext.sp) == VT_SF_SP - VT_SF_UC,
               "");
_Static_assert(offsetof(ucontext_t, uc_mcontext.pc) == VT_SF_PC - VT_SF_UC,
               "");
_Static_assert(offsetof(ucontext_t, uc_mcontext.pstate) ==
                   VT_SF_PSTATE - VT_SF_UC, "");
_Static_assert(offsetof(ucontext_t, uc_mcontext.__reserved) ==
                   VT_SF_RESERVED - VT_SF_UC, "");
_Static_assert(sizeof(ucontext_t) == VT_SF_SIZE - VT_SF_UC, "");
_Static_assert(sizeof(struct fpsimd_context) == VT_SF_FPSIMD_SIZE, "");
_Static_assert(VT_SF_SIZE % 16 == 0, "the frame keeps sp aligned");
_Static_assert(VT_SF_PC == VT_SF_SP + 8, "the trampoline stores sp, pc as a pair");

void vt_arch_init(void) {}

uintptr_t vt_arch_context_pc(void *ucontext)
{
    return (uintptr_t)((ucontext_t *)ucontext)->uc_mcontext.pc;
}

#ifndef ZA_MAGIC
#define ZA_MAGIC 0x54366345
#endif

/* True when the signal context carries SVE or SME register contents the
 * trampoline would not save.  The kernel writes an SVE record with
 * registers only for a thread whose SVE state is live (it used SVE since
 * its last system call), or in streaming mode; an extra_context record
 * means the frame overflowed __reserved, which only such state does. */
static bool wide_vector_state(const ucontext_t *uc)
{
    const unsigned char *p = uc->uc_mcontext.__reserved;
    const unsigned char *end = p + sizeof uc->uc_mcontext.__reserved;
    while (p + sizeof(struct _aarch64_ctx) <= end) {
        const struct _aarch64_ctx *h = (const void *)p;
        if (h->magic == 0 || h->size < sizeof *h ||
            h->size > (size_t)(end - p))
            return false;
        if (h->magic == EXTRA_MAGIC)
            return true;
        if ((h->magic == SVE_MAGIC || h->magic == ZA_MAGIC) &&
            h->size > sizeof(struct sve_context))
            return true;
        p += h->size;
    }
    return false;
}

bool vt_arch_redirect_to_preempt(void *ucontext, uintptr_t *pc_slot)
{
    ucontext_t *uc = ucontext;
    if (uc->uc_mcontext.sp & 15)
        return false;
    if (wide_vector_state(uc))
        return false;
    *pc_slot = (uintptr_t)uc->uc_mcontext.pc;
    uc->uc_mcontext.pc = (uintptr_t)vt_arch_preempt_tramp;
    return true;
}

void vt_arch_parked_context(void *ucontext, uintptr_t sp)
{
    ucontext_t *uc = ucontext;
    const uint64_t *f = (const uint64_t *)sp;
    for (int i = 19; i <= 30; i++)
        uc->uc_mcontext.regs[i] = f[(VT_FRAME_X19 / 8) + (i - 19)];
    uc->uc_mcontext.pc = f[VT_FRAME_RET / 8];
    uc->uc_mcontext.sp = sp + VT_FRAME_SIZE;
}

/* "ldp x29, x30, [sp], #16" followed by "ret". */
#define LDP_FP_LR_POST16 0xa8c17bfdu
#define RET_X30 0xd65f03c0u

uintptr_t vt_arch_find_return_gadget(uintptr_t lo, uintptr_t hi,
                                     uintptr_t near)
{
    lo = (lo + 3) & ~(uintptr_t)3;
    near &= ~(uintptr_t)3;
    if (near < lo || near + 8 > hi)
        return 0;
    /* backwards first: usually a few instructions away */
    for (uintptr_t p = near; p >= lo + 4; p -= 4) {
        const uint32_t *i = (const uint32_t *)(p - 4);
        if (i[0] == LDP_FP_LR_POST16 && i[1] == RET_X30)
            return p - 4;
    }
    for (uintptr_t p = near; p + 8 <= hi; p += 4) {
        const uint32_t *i = (const uint32_t *)p;
        if (i[0] == LDP_FP_LR_POST16 && i[1] == RET_X30)
            return p;
    }
    return 0;
}
