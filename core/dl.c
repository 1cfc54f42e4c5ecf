/*
 * dl.c — calling glibc's dlopen/dlmopen on behalf of another object.
 *
 * glibc decides where dlopen searches from the object that called it (its
 * RUNPATH and RPATH, $ORIGIN), which it finds from its return address.
 * The preload layer wraps dlopen (to fix up Gs' static TLS afterwards,
 * vt_tls_after_dlopen), and must not become "the caller".  So the real
 * dlopen is entered with a return address inside the real caller's
 * object: a "return gadget" found in the executable segment that holds
 * the caller's return address, which returns to us in turn
 * (vt_arch_call3_via).  What makes a gadget is the architecture's
 * business (vt_arch_find_return_gadget: a 0xc3 byte on x86_64, a
 * "ldp x29, x30, [sp], #16; ret" epilogue on aarch64).
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

/* A return gadget in the same object as addr, or 0. */
static uintptr_t ret_near(uintptr_t addr)
{
    struct find f = {addr, 0, 0};
    dl_iterate_phdr(find_cb, &f);
    if (!f.lo || addr >= f.hi)
        return 0;
    return vt_arch_find_return_gadget(f.lo, f.hi, addr);
}

void *vt_call_as(void *(*fn)(long, long, long), long a, long b, long c,
                 const void *caller)
{
    uintptr_t r = caller ? ret_near((uintptr_t)caller) : 0;
    if (!r)
        return fn(a, b, c);
    return vt_arch_call3_via(fn, a, b, c, r);
}
