/*
 * once: pthread_once with 100 racing threads runs the init routine exactly
 * once, and no caller returns before that routine has completed, even when
 * the routine blocks for a while.  Several independent once controls.
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define NTHREADS 100
#define NONCE 8

static pthread_once_t once[NONCE] = {
    PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
    PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
};
static atomic_int init_runs[NONCE];
static atomic_int init_done[NONCE];
static atomic_int inside;            /* init routines running right now */
static pthread_barrier_t start;

static void init_common(int k)
{
    atomic_fetch_add(&init_runs[k], 1);
    atomic_fetch_add(&inside, 1);
    /* block inside the routine so that the others must really wait */
    if (k == 0)
        sleep_ms(100);
    else
        for (int i = 0; i < 50; i++)
            sched_yield();
    atomic_fetch_add(&inside, -1);
    atomic_store(&init_done[k], 1);
}

#define DEF_INIT(k) static void init##k(void) { init_common(k); }
DEF_INIT(0)
DEF_INIT(1)
DEF_INIT(2)
DEF_INIT(3)
DEF_INIT(4)
DEF_INIT(5)
DEF_INIT(6)
DEF_INIT(7)
static void (*const inits[NONCE])(void) = {init0, init1, init2, init3,
                                            init4, init5, init6, init7};

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    int r = pthread_barrier_wait(&start);
    CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
    for (int j = 0; j < NONCE; j++) {
        int k = (id + j) % NONCE;     /* threads start on different controls */
        CHECK_OK(pthread_once(&once[k], inits[k]));
        if (!atomic_load(&init_done[k]))
            FAIL("pthread_once returned before the init routine finished");
        CHECK_EQ(atomic_load(&init_runs[k]), 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    pthread_t t[NTHREADS];
    CHECK_OK(pthread_barrier_init(&start, NULL, NTHREADS));
    for (int i = 0; i < NTHREADS; i++)
        CHECK_OK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i));
    for (int i = 0; i < NTHREADS; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    pthread_barrier_destroy(&start);
    int total = 0;
    for (int k = 0; k < NONCE; k++)
        total += atomic_load(&init_runs[k]);
    CHECK_EQ(total, NONCE);
    CHECK_EQ(atomic_load(&inside), 0);
    /* later calls do nothing */
    for (int k = 0; k < NONCE; k++)
        CHECK_OK(pthread_once(&once[k], inits[k]));
    CHECK_EQ(atomic_load(&init_runs[0]), 1);
    printf("once: %d threads raced on %d once controls; each init ran "
           "exactly once\n", NTHREADS, NONCE);
    return 0;
}
