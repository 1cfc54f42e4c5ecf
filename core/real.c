/*
 * real.c — resolves the real libc entry points (see real.h).  The preload
 * build asks the dynamic linker for the next definition after ours.
 */
#include <dlfcn.h>

#include "real.h"
#include "rt.h"

struct vt_real_table vt_real;

static void *resolve(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        vt_fatal("cannot find the real %s: %s", name, dlerror());
    return f;
}

void vt_real_init(void)
{
    if (vt_real.pthread_create)
        return;
#define VT_REAL_SET(ret, name, params)                                        \
    vt_real.name = (ret(*) params)resolve(#name);
    VT_REAL_FUNCS(VT_REAL_SET)
#undef VT_REAL_SET
}
