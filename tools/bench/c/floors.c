/*
 * floors - hardware/kernel cost floors that bound what an M:N runtime can do.
 *
 * Usage: floors [N=200000]
 *
 * Measured (each as the minimum over 5 repetitions of N operations, to
 * filter out noise; values in ns per operation):
 *   syscall_ns        syscall(SYS_getppid): a raw, trivial system call
 *   arch_prctl_ns     arch_prctl(ARCH_SET_FS, <current fs base>): how a
 *                     runtime switches the TLS pointer without FSGSBASE
 *   wrfsbase_ns       the WRFSBASE instruction (current value), only if the
 *                     kernel enables it: getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE
 *   swapcontext_ns    one swapcontext() call (glibc; includes a
 *                     rt_sigprocmask system call)
 *   ctx_switch_ns     one bare user-space switch: a hand-written x86-64
 *                     routine saving/restoring callee-saved registers + rsp
 *   fs_switch_ns      the fs-base switch floor a runtime would use here:
 *                     wrfsbase_ns if FSGSBASE is enabled, else arch_prctl_ns
 * "fsgsbase" is 1 if HWCAP2_FSGSBASE is set.  Values that cannot be measured
 * on this architecture are omitted.  No threads are involved.
 */
#include "bench.h"

#include <sys/auxv.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <asm/prctl.h>
#endif

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

#define REPS 5

static long n_ops;

/* ---------------------------------------------------------- swapcontext */

static ucontext_t uc_main, uc_co;
static volatile long uc_count;

static void uc_entry(void)
{
    for (;;) {
        uc_count++;
        swapcontext(&uc_co, &uc_main);
    }
}

/* ------------------------------------------- hand-written x86-64 switch */

#if defined(__x86_64__)
/*
 * void bare_switch(void **save_sp, void *load_sp)
 * Push the callee-saved registers, store rsp in *save_sp, load load_sp and
 * pop the other side's registers.  This is the minimum a user-space thread
 * switch must do (no signal mask, no FPU control words, no TLS).
 */
void bare_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl bare_switch\n"
        ".type bare_switch,@function\n"
        "bare_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size bare_switch, .-bare_switch\n");

static void *bs_main_sp, *bs_co_sp;
static volatile long bs_count;

static void bs_entry(void)
{
    for (;;) {
        bs_count++;
        bare_switch(&bs_co_sp, bs_main_sp);
    }
}

/* Build the initial stack of the coroutine so that the first bare_switch
 * into it "returns" into bs_entry with the ABI-required alignment. */
static void *bs_init_stack(char *stack, size_t size)
{
    uintptr_t top = ((uintptr_t)(stack + size)) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = NULL;              /* fake return address of bs_entry */
    *--sp = (void *)bs_entry;  /* popped by bare_switch's ret */
    for (int i = 0; i < 6; i++)
        *--sp = NULL;          /* rbp rbx r12 r13 r14 r15 */
    return sp;
}
#endif

/* -------------------------------------------------------------- timing */

/* Run body n times, REPS repetitions, return min ns per op. */
#define MEASURE(result, n, body)                                             \
    do {                                                                     \
        double best_ = 1e300;                                                \
        for (int rep_ = 0; rep_ < REPS; rep_++) {                            \
            int64_t a_ = now_ns();                                           \
            for (long i_ = 0; i_ < (n); i_++) {                              \
                body;                                                        \
            }                                                                \
            double per_ = (double)(now_ns() - a_) / (double)(n);             \
            if (per_ < best_)                                                \
                best_ = per_;                                                \
        }                                                                    \
        (result) = best_;                                                    \
    } while (0)

int main(int argc, char **argv)
{
    json_begin("floors");
    n_ops = arg_long(argc, argv, 1, 200000);
    int ok = 1;
    json_int("n", n_ops);

    double sys_ns;
    pid_t pp = getppid();
    MEASURE(sys_ns, n_ops, if (syscall(SYS_getppid) != pp) ok = 0);
    json_dbl("syscall_ns", sys_ns);

    int fsgsbase = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0;
    json_int("fsgsbase", fsgsbase);
    double fs_ns = -1;

#if defined(__x86_64__)
    unsigned long fs = 0;
    SCHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
    double ap_ns;
    MEASURE(ap_ns, n_ops,
            if (syscall(SYS_arch_prctl, ARCH_SET_FS, fs) != 0) ok = 0);
    json_dbl("arch_prctl_ns", ap_ns);
    fs_ns = ap_ns;

    if (fsgsbase) {
        unsigned long cur;
        __asm__ volatile("rdfsbase %0" : "=r"(cur));
        if (cur != fs)
            ok = 0;
        double wr_ns;
        MEASURE(wr_ns, n_ops * 20,
                __asm__ volatile("wrfsbase %0" ::"r"(cur) : "memory"));
        json_dbl("wrfsbase_ns", wr_ns);
        fs_ns = wr_ns;
    }
#endif
    if (fs_ns >= 0) {
        json_dbl("fs_switch_ns", fs_ns);
        json_str("fs_switch_via", fsgsbase ? "wrfsbase" : "arch_prctl");
    }

    /* swapcontext: one op = one swapcontext call (two per round trip). */
    static char uc_stack[64 * 1024];
    SCHECK(getcontext(&uc_co));
    uc_co.uc_stack.ss_sp = uc_stack;
    uc_co.uc_stack.ss_size = sizeof uc_stack;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_entry, 0);
    long half = n_ops / 2 > 0 ? n_ops / 2 : 1;
    double uc_ns;
    MEASURE(uc_ns, half, swapcontext(&uc_main, &uc_co));
    uc_ns /= 2;
    if (uc_count != half * REPS)
        ok = 0;
    json_dbl("swapcontext_ns", uc_ns);

#if defined(__x86_64__)
    static char bs_stack[64 * 1024] __attribute__((aligned(16)));
    bs_co_sp = bs_init_stack(bs_stack, sizeof bs_stack);
    long many = n_ops * 10 / 2;
    double bs_ns;
    MEASURE(bs_ns, many, bare_switch(&bs_main_sp, bs_co_sp));
    bs_ns /= 2;
    if (bs_count != many * REPS)
        ok = 0;
    json_dbl("ctx_switch_ns", bs_ns);
#endif

    json_end_exit(ok);
}
