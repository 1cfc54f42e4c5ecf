/*
 * pertask.c — per-task kernel state: prctl, unshare, setns, capset,
 * seccomp.
 *
 * Under NPTL each thread is a kernel task, and some state belongs to the
 * task, not the process: the parent-death signal, no_new_privs, seccomp
 * filters (without TSYNC), the timer slack, capabilities and securebits,
 * namespaces after unshare/setns, the file-system context after
 * unshare(CLONE_FS), affinity and nice values set with pid 0.  Under
 * vthread "the calling task" is whichever M runs the G at that moment,
 * and the G may run on another M the next instant.  So a G that changes
 * such state is first pinned to its M for the rest of its life (core's
 * vt_pin_self, Go's LockOSThread done implicitly): the state stays with
 * the thread that asked for it, and no other G ever runs on that thread
 * (it ends with the G).  Then the real call is made, unchanged.
 *
 * What does not pin: calls that only read (PR_GET_*), prctl options
 * whose state is the process's (dumpable, child subreaper, the mm's
 * settings, the Yama ptracer), and the thread name (PR_SET_NAME /
 * PR_GET_NAME), which is the G's own as pthread_setname_np's is
 * (thread.c).  A G created by a pinned G does not inherit its task state
 * (it may run on any M), as a goroutine started by a locked one does not
 * in Go; the affinity, scheduling policy and nice value a G records are
 * inherited as under NPTL (thread.c).
 *
 * Before the runtime starts the caller is the thread that will become
 * the first G: it is pinned to its own thread (M0) when the runtime
 * starts, and the threads made later descend from that thread, so they
 * inherit what it set, as under NPTL.
 */
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "pl.h"

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#ifndef PR_GET_AUXV
#define PR_GET_AUXV 0x41555856
#endif

/* False for the options that read, or change the process's state rather
 * than the calling task's (see above); true for every other, known or
 * not: pinning a G needlessly costs speed, failing to pin one costs
 * correctness. */
static bool prctl_pins(int option, unsigned long arg2)
{
    switch (option) {
    case PR_GET_PDEATHSIG:
    case PR_GET_DUMPABLE:
    case PR_GET_UNALIGN:
    case PR_GET_KEEPCAPS:
    case PR_GET_FPEMU:
    case PR_GET_FPEXC:
    case PR_GET_TIMING:
    case PR_GET_ENDIAN:
    case PR_GET_SECCOMP:
    case PR_CAPBSET_READ:
    case PR_GET_TSC:
    case PR_GET_SECUREBITS:
    case PR_GET_TIMERSLACK:
    case PR_MCE_KILL_GET:
    case PR_GET_CHILD_SUBREAPER:
    case PR_GET_NO_NEW_PRIVS:
    case PR_GET_TID_ADDRESS:
    case PR_GET_THP_DISABLE:
    case PR_GET_FP_MODE:
    case PR_GET_SPECULATION_CTRL:
    case PR_GET_TAGGED_ADDR_CTRL:
    case PR_GET_IO_FLUSHER:
    case PR_GET_MDWE:
    case PR_GET_MEMORY_MERGE:
    case PR_GET_AUXV:
        return false;
    case PR_CAP_AMBIENT:
        return arg2 != PR_CAP_AMBIENT_IS_SET;
    /* the process's */
    case PR_SET_DUMPABLE:
    case PR_SET_CHILD_SUBREAPER:
    case PR_SET_MM:
    case PR_SET_PTRACER:
    case PR_SET_THP_DISABLE:
    case PR_SET_VMA:
    case PR_SET_MDWE:
    case PR_SET_MEMORY_MERGE:
        return false;
    default:
        return true;
    }
}

/* The thread name is the G's (pthread_setname_np): the kernel truncates
 * to 15 bytes where pthread_setname_np says ERANGE, and PR_GET_NAME
 * always writes 16 bytes. */
static int name_op(int option, unsigned long arg2)
{
    if (option == PR_SET_NAME) {
        char name[16];
        strncpy(name, (const char *)arg2, sizeof name - 1);
        name[sizeof name - 1] = 0;
        int err = pthread_setname_np(pthread_self(), name);
        if (err) {
            errno = err;
            return -1;
        }
        return 0;
    }
    char name[16] = {0};
    int err = pthread_getname_np(pthread_self(), name, sizeof name);
    if (err) {
        errno = err;
        return -1;
    }
    memcpy((char *)arg2, name, sizeof name);
    return 0;
}

PL_PUBLIC int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long);
    unsigned long a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long);
    unsigned long a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if (pl_on()) {
        if ((option == PR_SET_NAME || option == PR_GET_NAME) && vt_self())
            return name_op(option, a2);
        if (prctl_pins(option, a2))
            vt_pin_self();
    }
    return (int)syscall(SYS_prctl, option, a2, a3, a4, a5);
}

PL_PUBLIC int unshare(int flags)
{
    if (flags && pl_on())
        vt_pin_self();
    return (int)syscall(SYS_unshare, flags);
}

PL_PUBLIC int setns(int fd, int nstype)
{
    if (pl_on())
        vt_pin_self();
    return (int)syscall(SYS_setns, fd, nstype);
}

/* The kernel's capability header: {version, pid}.  pid 0 or the caller's
 * own id is the calling task; a G's own (synthetic) tid means it too. */
struct cap_header {
    uint32_t version;
    int pid;
};

/* capget/capset with the header's pid translated (a G's own tid: 0),
 * and the version the kernel writes back on a bad one copied out. */
static int cap_call(long nr, void *hdrp, const void *datap)
{
    struct cap_header *h = hdrp, copy;
    if (h && pl_on() && vt_self() && h->pid == gettid()) {
        copy = *h;
        copy.pid = 0;
        int r = (int)syscall(nr, &copy, datap);
        h->version = copy.version;
        return r;
    }
    return (int)syscall(nr, hdrp, datap);
}

PL_PUBLIC int capget(void *hdrp, void *datap)
{
    return cap_call(SYS_capget, hdrp, datap);
}

PL_PUBLIC int capset(void *hdrp, const void *datap)
{
    if (pl_on())
        vt_pin_self();
    return cap_call(SYS_capset, hdrp, datap);
}
