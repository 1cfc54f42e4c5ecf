/* lock.c — the slow path of vt_lock (see lock.h). */
#include "lock.h"

void vt_lock_slow(vt_lock *l)
{
    /* Spin a little: runtime critical sections are a few hundred ns. */
    for (int i = 0; i < 100; i++) {
        int z = 0;
        if (ld_relaxed(&l->v) == 0 && cas(&l->v, &z, 1))
            return;
        vt_arch_relax();
    }
    /* Then sleep, marking the lock contended (2) so unlock wakes us. */
    while (xchg(&l->v, 2) != 0)
        vt_futex_wait(&l->v, 2, NULL);
}
