/*
 * key.c — pthread_key_create/delete/getspecific/setspecific.
 *
 * Where the values live.  Every G has its own glibc TLS block, so a
 * __thread variable of this library IS per-G storage, and it is also the
 * right storage for threads that are not Gs (the main thread before the
 * runtime starts — which keeps its values when it becomes the first G —,
 * libc's helper threads, the runtime's own threads).  A recycled G's TLS is
 * re-initialised by core from our module's image, and our exit hook frees
 * and clears the table anyway, so a new G always starts with no values.
 *
 * Layout, like glibc's: a global table of PTHREAD_KEYS_MAX (1024) keys,
 * each {seq, destructor}; seq is odd while the key is in use and grows by
 * one at create and at delete, so a value stored under an old incarnation
 * of a key (its slot records the seq it was stored with) is invisible to a
 * new one.  Per thread: one __thread pointer (8 bytes of TLS per G) to a
 * lazily allocated first level of 32 pointers to second-level blocks of 32
 * {seq, value} slots, allocated on the first store into them.
 *
 * Destructors: for a G, from the exit hook (init.c) after C++ thread_local
 * destructors, as glibc orders them.  For a thread that is not a G and not
 * the main thread, the first store of a non-NULL value registers our
 * destructor pass with __cxa_thread_atexit_impl, which glibc runs at that
 * thread's exit.  The main thread gets none, as under glibc when it returns
 * from main (exit() does not run key destructors).
 *
 * These functions never park; any caller, any time except signal handlers
 * that interrupt a setspecific of the same thread (malloc).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pl.h"

#define L2 32 /* slots per second-level block */
#define L1 (PTHREAD_KEYS_MAX / L2)
_Static_assert(PTHREAD_KEYS_MAX == 1024, "glibc's key limit");

struct key {
    _Atomic uintptr_t seq;          /* odd = in use */
    void (*_Atomic destr)(void *);
};
static struct key keys[PTHREAD_KEYS_MAX];

struct slot {
    uintptr_t seq;
    void *data;
};

struct tsd {
    struct slot *l2[L1];
    bool used;                      /* a non-NULL value was stored */
    bool atexit_registered;         /* non-G thread: destructor pass queued */
};

static __thread struct tsd *tsd_tls __attribute__((tls_model("initial-exec")));

extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj,
                                    void *dso_symbol);
extern void *__dso_handle __attribute__((weak));

#define KEY_UNUSED(s) (((s)&1) == 0)
#define KEY_USABLE(s) ((uintptr_t)(s) < (uintptr_t)((s) + 2))

PL_PUBLIC int pthread_key_create(pthread_key_t *key, void (*destr)(void *))
{
    for (unsigned i = 0; i < PTHREAD_KEYS_MAX; i++) {
        uintptr_t s = atomic_load_explicit(&keys[i].seq, memory_order_relaxed);
        if (KEY_UNUSED(s) && KEY_USABLE(s) &&
            atomic_compare_exchange_strong(&keys[i].seq, &s, s + 1)) {
            atomic_store_explicit(&keys[i].destr, destr, memory_order_release);
            *key = i;
            return 0;
        }
    }
    return EAGAIN;
}

PL_PUBLIC int pthread_key_delete(pthread_key_t key)
{
    if (key >= PTHREAD_KEYS_MAX)
        return EINVAL;
    uintptr_t s = atomic_load_explicit(&keys[key].seq, memory_order_relaxed);
    if (KEY_UNUSED(s) || !atomic_compare_exchange_strong(&keys[key].seq, &s,
                                                        s + 1))
        return EINVAL;
    return 0;
}

PL_PUBLIC void *pthread_getspecific(pthread_key_t key)
{
    struct tsd *t = tsd_tls;
    if (pl_unlikely(!t || key >= PTHREAD_KEYS_MAX))
        return NULL;
    struct slot *b = t->l2[key / L2];
    if (!b)
        return NULL;
    struct slot *sl = &b[key % L2];
    if (sl->data && sl->seq != atomic_load_explicit(&keys[key].seq,
                                                    memory_order_relaxed))
        sl->data = NULL; /* stored under a deleted incarnation */
    return sl->data;
}

static bool is_main_thread(void)
{
    return syscall(SYS_gettid) == getpid();
}

PL_PUBLIC int pthread_setspecific(pthread_key_t key, const void *value)
{
    if (key >= PTHREAD_KEYS_MAX)
        return EINVAL;
    uintptr_t s = atomic_load_explicit(&keys[key].seq, memory_order_relaxed);
    if (KEY_UNUSED(s))
        return EINVAL;
    struct tsd *t = tsd_tls;
    if (!t) {
        if (!value)
            return 0; /* nothing stored reads back as NULL anyway */
        t = calloc(1, sizeof *t);
        if (!t)
            return ENOMEM;
        tsd_tls = t;
    }
    struct slot *b = t->l2[key / L2];
    if (!b) {
        if (!value)
            return 0;
        b = calloc(L2, sizeof *b);
        if (!b)
            return ENOMEM;
        t->l2[key / L2] = b;
    }
    b[key % L2].seq = s;
    b[key % L2].data = (void *)value;
    if (value) {
        t->used = true;
        if (!t->atexit_registered && !vt_self() && !is_main_thread()) {
            /* A thread vthread did not create: glibc runs this at its exit
             * (from __call_tls_dtors). */
            t->atexit_registered = true;
            __cxa_thread_atexit_impl(pl_keys_thread_exit, NULL,
                                     &__dso_handle);
        }
    }
    return 0;
}

/* The destructor rounds of glibc's __nptl_deallocate_tsd, then frees the
 * table.  Runs on the exiting thread. */
static void run_dtors(void)
{
    struct tsd *t = tsd_tls;
    if (!t)
        return;
    for (int round = 0; t->used && round < PTHREAD_DESTRUCTOR_ITERATIONS;
         round++) {
        t->used = false;
        for (unsigned i = 0; i < L1; i++) {
            struct slot *b = t->l2[i];
            if (!b)
                continue;
            for (unsigned j = 0; j < L2; j++) {
                void *data = b[j].data;
                if (!data)
                    continue;
                b[j].data = NULL;
                unsigned k = i * L2 + j;
                void (*d)(void *) = atomic_load_explicit(
                    &keys[k].destr, memory_order_acquire);
                if (b[j].seq == atomic_load_explicit(&keys[k].seq,
                                                     memory_order_relaxed) &&
                    d)
                    d(data); /* may store new values: t->used again */
            }
        }
    }
    /* Values stored by destructors of the last round are dropped without
     * their destructor, as glibc drops them. */
    tsd_tls = NULL;
    for (unsigned i = 0; i < L1; i++)
        free(t->l2[i]);
    free(t);
}

void pl_keys_on_exit(void) { run_dtors(); }

void pl_keys_thread_exit(void *unused)
{
    (void)unused;
    run_dtors();
}

PL_ALIAS(pthread_key_create, __pthread_key_create);
PL_ALIAS(pthread_getspecific, __pthread_getspecific);
PL_ALIAS(pthread_setspecific, __pthread_setspecific);
