/*
 * tls.c — every G is a real thread to glibc.
 *
 * Each G has its own glibc thread descriptor (struct pthread) and static TLS
 * block, laid out as NPTL lays them out: on x86_64 (TLS variant II) the
 * descriptor at the thread pointer, the static TLS blocks just below it;
 * on aarch64 (variant I) the TCB at the thread pointer with the static
 * TLS blocks above it, the descriptor just below (pd.h).  They are set up with
 * glibc's own _dl_allocate_tls / _dl_allocate_tls_init, so every module's
 * __thread data starts from its initial image, and the descriptor header is
 * filled like NPTL's start_thread fills it (self, stack and pointer guards,
 * a unique tid, the robust list head, the stack bounds glibc reads, rseq
 * cpu_id = -1 so sched_getcpu asks the kernel).
 *
 * The hard part: glibc 2.36 exports no per-thread cleanup, so a freed TLS
 * block leaks malloc's per-thread cache (tcache) that lives in libc's own
 * TLS block.  We therefore recycle descriptors with their TLS (see stack.c's
 * unit cache) and, when re-initialising a recycled block, keep libc's TLS
 * block as it is (tcache, arena) and reset only what a new thread can see:
 * errno, the locale (uselocale(LC_GLOBAL_LOCALE)) and the ctype tables.
 * Every other module's TLS is re-initialised from its image.
 *
 * dlopen: glibc copies the image of a module placed in static TLS only into
 * the threads on its own lists; Gs are not on them, so vt_tls_after_dlopen
 * copies it into every G (tls_gen counts such fix-ups so a G that was being
 * created concurrently is fixed too).
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <locale.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>

#include "rt.h"

extern const int __rseq_offset;       /* glibc >= 2.35 */
extern void *__tls_get_addr(void *ti); /* ld.so, GLIBC_2.3 */

static void *(*p_dl_allocate_tls)(void *mem);
static void *(*p_dl_allocate_tls_init)(void *mem, bool init_tls);
static void (*p_dl_deallocate_tls)(void *tcb, bool dealloc_tcb);
static void (*p_dl_get_tls_static_info)(size_t *size, size_t *align);
static void (*p_ctype_init)(void);
static void (*p_call_tls_dtors)(void);

static size_t static_size, static_align;
static void *main_pd;                 /* header values are copied from it */
static long libc_off;                 /* libc's static TLS block: offset */
static size_t libc_size;              /* from the thread pointer, size */

/* The thread pointer of descriptor pd, as glibc's TLS functions take it
 * (their "tcb"). */
static char *tp_of(void *pd) { return (char *)vt_pd_tp(pd); }

/* Modules known to be in static TLS and already in every G's block. */
static size_t known_mods[256];
static int nknown;
_Atomic uint64_t vt_tls_gen;          /* bumped by each dlopen fix-up */

static void *glibc_private(const char *lib_sym)
{
    void *f = dlvsym(RTLD_DEFAULT, lib_sym, "GLIBC_PRIVATE");
    if (!f)
        vt_fatal("glibc private symbol %s not found: this glibc is not "
                 "supported (vthread needs glibc 2.34..2.36 on " PD_ARCH ")",
                 lib_sym);
    return f;
}

struct tls_mod {
    size_t modid;
    const void *image;
    size_t filesz, memsz;
    bool is_libc;
};

struct mod_list {
    struct tls_mod mods[256];
    int n;
};

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct mod_list *l = data;
    if (info->dlpi_tls_modid == 0 || l->n >= 256)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS)
            continue;
        struct tls_mod *m = &l->mods[l->n++];
        m->modid = info->dlpi_tls_modid;
        m->image = (const void *)(info->dlpi_addr + ph->p_vaddr);
        m->filesz = ph->p_filesz;
        m->memsz = ph->p_memsz;
        const char *name = info->dlpi_name ? info->dlpi_name : "";
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        m->is_libc = strncmp(base, "libc.so", 7) == 0;
    }
    return 0;
}

/* The offset of a module's block from the thread pointer if it lives in
 * static TLS, else 0 (negative on x86_64, where static TLS lies below the
 * thread pointer; positive on aarch64, where it follows the TCB).  __tls_get_addr brings the calling thread's DTV up
 * to date first (dl_iterate_phdr's own answer may be stale for a module
 * loaded after this thread's DTV was last updated). */
static long static_offset(size_t modid)
{
    struct { unsigned long modid, offset; } ti = {modid, 0};
    char *addr = __tls_get_addr(&ti);
    char *tp = (char *)vt_arch_get_tp();
#if VT_TP_PD_OFFSET == 0
    if (addr < tp && addr >= tp - static_size)
        return addr - tp;
#else
    if (addr >= tp + 16 && addr < tp + static_size)
        return addr - tp;
#endif
    return 0;
}

static void check_layout(void)
{
    char *pd = vt_pd_self();
    long tid = vt_sys0(SYS_gettid);
    /* glibc's rseq area, from the descriptor: inside it, at its end */
    long rseq = __rseq_offset + VT_TP_PD_OFFSET;
    bool ok = PD_FIELD(pd, PD_DTV, void *) != NULL &&
              PD_FIELD(pd, PD_TID, int) == (int)tid &&
              PD_FIELD(pd, PD_VTHREAD_G, void *) == NULL &&
              PD_FIELD(pd, PD_VFORK, int) == 0 &&
              PD_FIELD(pd, PD_ROBUST_HEAD, void *) == pd + PD_ROBUST_HEAD &&
              rseq > PD_CANCELHANDLING && rseq + 32 <= PD_TCB_SIZE;
#ifdef PD_SELF
    ok = ok && PD_FIELD(pd, PD_SELF, void *) == pd &&
         PD_FIELD(pd, PD_TCB, void *) == pd;
#else
    /* variant I: the descriptor's size is the distance to the thread
     * pointer, and the rseq area (32-byte aligned) is its last field */
    ok = ok && rseq + 32 == PD_TCB_SIZE;
#endif
    if (!ok)
        vt_fatal("this glibc's thread descriptor does not have the layout "
                 "vthread was built for (glibc 2.36, " PD_ARCH ")");
}

void vt_tls_init(void)
{
    check_layout();
    p_dl_allocate_tls = glibc_private("_dl_allocate_tls");
    p_dl_allocate_tls_init = glibc_private("_dl_allocate_tls_init");
    p_dl_deallocate_tls = glibc_private("_dl_deallocate_tls");
    p_dl_get_tls_static_info = glibc_private("_dl_get_tls_static_info");
    p_ctype_init = glibc_private("__ctype_init");
    p_call_tls_dtors = glibc_private("__call_tls_dtors");
    p_dl_get_tls_static_info(&static_size, &static_align);
    if (static_size < PD_TCB_SIZE || static_align < 16)
        vt_fatal("unexpected static TLS size %zu / alignment %zu",
                 static_size, static_align);
    main_pd = vt_pd_self();

    struct mod_list *l = malloc(sizeof *l);
    if (!l)
        vt_fatal("out of memory at start-up");
    l->n = 0;
    dl_iterate_phdr(collect_cb, l);
    for (int i = 0; i < l->n; i++) {
        long off = static_offset(l->mods[i].modid);
        if (off == 0)
            continue;
        if (nknown < 256)
            known_mods[nknown++] = l->mods[i].modid;
        if (l->mods[i].is_libc) {
            libc_off = off;
            libc_size = l->mods[i].memsz;
        }
    }
    free(l);
    if (libc_size == 0)
        vt_fatal("cannot find libc's static TLS block");
}

size_t vt_tls_static_size(void) { return static_size; }
size_t vt_tls_static_align(void) { return static_align; }
void *vt_tls_creator_pd(void) { return main_pd; }

/* Frees the dynamically allocated TLS blocks (modules loaded by dlopen
 * without static TLS) a recycled DTV still points to: glibc's re-init
 * would drop the pointers.  dtv[-1].counter is the DTV's length, entries
 * are {val, to_free}. */
static void free_dynamic_blocks(void *pd)
{
    struct dtv_entry { void *val, *to_free; };
    struct dtv_entry *dtv = PD_FIELD(pd, PD_DTV, struct dtv_entry *);
    size_t len = *(size_t *)&dtv[-1];
    for (size_t i = 1; i <= len; i++) {
        if (dtv[i].to_free) {
            free(dtv[i].to_free);
            dtv[i].to_free = NULL;
        }
    }
}

int vt_tls_setup(vt_g *g, void *pdv, bool fresh)
{
    char *pd = pdv;
    uint64_t gen = ld_acquire(&vt_tls_gen);
    if (fresh) {
        /* The memory is zero (a new mapping, or cleared by the caller). */
        if (!p_dl_allocate_tls(tp_of(pd)))
            return EAGAIN;
    } else {
        /* Keep libc's block (tcache, arena) across the re-init. */
        char saved[libc_size];
        memcpy(saved, tp_of(pd) + libc_off, libc_size);
        free_dynamic_blocks(pd);
        void *dtv = PD_FIELD(pd, PD_DTV, void *);
        memset(pd, 0, PD_TCB_SIZE);
        PD_FIELD(pd, PD_DTV, void *) = dtv;
        p_dl_allocate_tls_init(tp_of(pd), true);
        memcpy(tp_of(pd) + libc_off, saved, libc_size);
    }
    PD_FIELD(pd, PD_MULTIPLE_THREADS, int) = 1;
#ifdef PD_SELF
    char *mpd = main_pd;
    PD_FIELD(pd, PD_TCB, void *) = pd;
    PD_FIELD(pd, PD_SELF, void *) = pd;
    PD_FIELD(pd, PD_SYSINFO, uintptr_t) = PD_FIELD(mpd, PD_SYSINFO, uintptr_t);
    PD_FIELD(pd, PD_STACK_GUARD, uintptr_t) =
        PD_FIELD(mpd, PD_STACK_GUARD, uintptr_t);
    PD_FIELD(pd, PD_POINTER_GUARD, uintptr_t) =
        PD_FIELD(mpd, PD_POINTER_GUARD, uintptr_t);
    PD_FIELD(pd, PD_FEATURE_1, unsigned) = PD_FIELD(mpd, PD_FEATURE_1, unsigned);
#endif
    PD_FIELD(pd, PD_VTHREAD_G, vt_g *) = g->is_g0 ? NULL : g;
    PD_FIELD(pd, PD_TID, int) = g->tid;
    /* Not on glibc's thread lists, but linked to itself so that glibc's
     * list_del on it (fork's __reclaim_stacks does one on the forking
     * thread) is harmless. */
    PD_FIELD(pd, PD_LIST, void *) = pd + PD_LIST;
    PD_FIELD(pd, PD_LIST + 8, void *) = pd + PD_LIST;
    /* An empty robust list, as NPTL's start_thread leaves it; the futex
     * offset is that of __lock relative to __list.__next in a mutex. */
    PD_FIELD(pd, PD_ROBUST_HEAD, void *) = pd + PD_ROBUST_HEAD;
    PD_FIELD(pd, PD_ROBUST_HEAD + 8, long) =
        (long)offsetof(pthread_mutex_t, __data.__lock) -
        (long)offsetof(pthread_mutex_t, __data.__list.__next); /* -32 */
    PD_FIELD(pd, PD_ROBUST_PREV, void *) = pd + PD_ROBUST_HEAD;
    /* The stack block as NPTL records it: from the start of the guard to
     * the top of the unit (TLS and descriptor included).
     * __libc_alloca_cutoff sizes libc's own alloca use from it. */
    char *block = (char *)g->stack_lo - g->guard;
#if VT_TP_PD_OFFSET == 0 /* variant II: the descriptor is on top */
    char *top = pd + PD_TCB_SIZE;
#else /* variant I: the static TLS blocks are */
    char *top = tp_of(pd) + static_size;
#endif
    PD_FIELD(pd, PD_STACKBLOCK, void *) = block;
    PD_FIELD(pd, PD_STACKBLOCK_SIZE, size_t) = (size_t)(top - block);
    PD_FIELD(pd, PD_GUARDSIZE, size_t) = g->guard;
    PD_FIELD(pd, PD_REPORTED_GUARDSIZE, size_t) = g->guard;
    /* rseq: this area is not registered with the kernel; cpu_id -1 makes
     * sched_getcpu fall back to the vDSO. */
    *(int32_t *)(tp_of(pd) + __rseq_offset + 4) = -1;
    g->pd = pd;
    g->tls_gen = gen;
    return 0;
}

void vt_tls_release(vt_g *g)
{
    /* Frees the DTV and dynamic blocks; the block itself is our memory. */
    p_dl_deallocate_tls(tp_of(g->pd), false);
}

/* Runs on the new G, its TLS active, before its start routine. */
void vt_tls_start_g(vt_g *g)
{
    errno = 0;
    /* A recycled block may carry its previous owner's uselocale(). */
    uselocale(LC_GLOBAL_LOCALE);
    p_ctype_init();
}

/* Runs on the exiting G: C++ thread_local destructors. */
VT_HIDDEN void vt_tls_run_dtors(void) { p_call_tls_dtors(); }

void vt_tls_after_dlopen(void)
{
    if (!ld_acquire(&vt_sched.started))
        return; /* no G besides glibc's own threads yet */
    struct mod_list *l = malloc(sizeof *l);
    if (!l)
        return;
    l->n = 0;
    dl_iterate_phdr(collect_cb, l);
    vt_lock_acquire(&vt_sched.glock);
    for (int i = 0; i < l->n; i++) {
        struct tls_mod *m = &l->mods[i];
        bool known = false;
        for (int k = 0; k < nknown; k++)
            known |= known_mods[k] == m->modid;
        if (known)
            continue;
        long off = static_offset(m->modid);
        if (off == 0)
            continue; /* dynamic TLS: allocated lazily per thread */
        if (nknown < 256)
            known_mods[nknown++] = m->modid;
        xadd(&vt_tls_gen, 1);
        for (vt_g *g = vt_sched.allg; g; g = g->allnext) {
            if (g->kind == GU_MAIN)
                continue; /* on glibc's own list: done by dlopen */
            char *dst = tp_of(g->pd) + off;
            memcpy(dst, m->image, m->filesz);
            memset(dst + m->filesz, 0, m->memsz - m->filesz);
        }
    }
    vt_lock_release(&vt_sched.glock);
    free(l);
    vt_preempt_refresh(); /* the new module's code: preemptible or not */
}
