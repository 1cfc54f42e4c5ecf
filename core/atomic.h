/* atomic.h — short names for the C11 atomics the runtime uses. */
#ifndef VTHREAD_ATOMIC_H
#define VTHREAD_ATOMIC_H

#include <stdatomic.h>

#define ld_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define ld_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define st_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define st_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define cas(p, expp, v) atomic_compare_exchange_strong((p), (expp), (v))
#define xadd(p, v) atomic_fetch_add((p), (v))
#define xsub(p, v) atomic_fetch_sub((p), (v))
#define xchg(p, v) atomic_exchange((p), (v))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
