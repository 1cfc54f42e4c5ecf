/*
 * dl.c — dlopen and dlmopen: glibc's, then the static TLS of every G.
 *
 * A library that uses initial-exec TLS and is loaded after threads exist
 * gets a slot in every thread's static TLS; glibc copies its initial image
 * into the threads on its own lists only, and Gs are not on them, so
 * vt_tls_after_dlopen does it for the Gs (and refreshes preemption's map
 * of code).  glibc's dlopen searches from the object that called it
 * (RUNPATH, RPATH, $ORIGIN): vt_call_as makes it see our caller, not us.
 */
#include <dlfcn.h>

#include "pl.h"

static void after(void *h)
{
    if (h && pl_on())
        vt_tls_after_dlopen();
}

PL_PUBLIC void *dlopen(const char *file, int mode)
{
    vt_real_init(); /* a constructor may dlopen before anything else ran */
    void *h = vt_call_as((void *(*)(long, long, long))(void *)vt_real.dlopen,
                         (long)file, mode, 0, __builtin_return_address(0));
    after(h);
    return h;
}

PL_PUBLIC void *dlmopen(Lmid_t lmid, const char *file, int mode)
{
    vt_real_init();
    void *h = vt_call_as((void *(*)(long, long, long))(void *)vt_real.dlmopen,
                         (long)lmid, (long)file, mode,
                         __builtin_return_address(0));
    after(h);
    return h;
}
