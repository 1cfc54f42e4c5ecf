/*
 * dl.c — calling glibc's dlopen/dlmopen on behalf of another object.
 *
 * glibc decides where dlopen searches from the object that called it (its
 * RUNPATH and RPATH, $ORIGIN), which it finds from its return address.
 * The preload layer wraps dlopen (to fix up Gs' static TLS afterwards,
 * vt_tls_after_dlopen), and must not become "the caller".  So the real
 * dlopen is entered with a return address inside the real caller's
 * object: a byte 0xc3 (ret) found in the executable segment that holds
 * the caller's return address, which returns to us in turn
 * (vt_arch_call3_via).  Any 0xc3 byte will do: the CPU executes it as a
 * ret wherever it sits.
 */
#include <link.h>
#include <stdint.h>

#include "rt.h"

struct find {
    uintptr_t addr;
    uintptr_t lo, hi; /* the executable segment holding addr */
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct find *f = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (f->addr >= lo && f->addr < lo + ph->p_memsz) {
            f->lo = lo;
            f->hi = lo + ph->p_filesz; /* bytes that are really there */
            return 1;
        }
    }
    return 0;
}

/* A ret instruction in the same object as addr, or 0. */
static uintptr_t ret_near(uintptr_t addr)
{
    struct find f = {addr, 0, 0};
    dl_iterate_phdr(find_cb, &f);
    if (!f.lo || addr >= f.hi)
        return 0;
    for (uintptr_t p = addr; p > f.lo; p--) /* usually within bytes */
        if (*(const unsigned char *)(p - 1) == 0xc3)
            return p - 1;
    for (uintptr_t p = addr; p < f.hi; p++)
        if (*(const unsigned char *)p == 0xc3)
            return p;
    return 0;
}

void *vt_call_as(void *(*fn)(long, long, long), long a, long b, long c,
                 const void *caller)
{
    uintptr_t r = caller ? ret_near((uintptr_t)caller) : 0;
    if (!r)
        return fn(a, b, c);
    return vt_arch_call3_via(fn, a, b, c, r);
}
