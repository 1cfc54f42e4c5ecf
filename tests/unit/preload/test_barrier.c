/*
 * test_barrier.c — pthread_barrier_* under vthread: one serial thread per
 * round, nobody leaves a round early, reuse, error codes, pshared.
 */
#include "pl_test.h"

enum { N = 24, ROUNDS = 300 };
static pthread_barrier_t b;
static atomic_int phase_count[ROUNDS];
static atomic_int serials[ROUNDS];

static void *worker(void *unused)
{
    (void)unused;
    for (int r = 0; r < ROUNDS; r++) {
        atomic_fetch_add(&phase_count[r], 1);
        int ret = pthread_barrier_wait(&b);
        ck_assert(ret == 0 || ret == PTHREAD_BARRIER_SERIAL_THREAD);
        /* Everybody arrived before anybody left. */
        ck_assert_int_eq(atomic_load(&phase_count[r]), N);
        if (ret == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&serials[r], 1);
    }
    return NULL;
}

static void rounds(int pshared)
{
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, pshared ? PTHREAD_PROCESS_SHARED
                                               : PTHREAD_PROCESS_PRIVATE);
    ck_assert_int_eq(pthread_barrier_init(&b, &a, N), 0);
    pt_run(N, worker);
    for (int r = 0; r < ROUNDS; r++)
        ck_assert_int_eq(atomic_load(&serials[r]), 1);
    ck_assert_int_eq(pthread_barrier_destroy(&b), 0);
}

START_TEST(rounds_private) { rounds(0); }
END_TEST
START_TEST(rounds_pshared) { rounds(1); }
END_TEST

static void *lone_waiter(void *p)
{
    return (void *)(intptr_t)pthread_barrier_wait(p);
}

START_TEST(errors)
{
    pthread_barrier_t x;
    ck_assert_int_eq(pthread_barrier_init(&x, NULL, 0), EINVAL);
    ck_assert_int_eq(pthread_barrier_init(&x, NULL, 1), 0);
    ck_assert_int_eq(pthread_barrier_wait(&x), PTHREAD_BARRIER_SERIAL_THREAD);
    ck_assert_int_eq(pthread_barrier_wait(&x), PTHREAD_BARRIER_SERIAL_THREAD);
    ck_assert_int_eq(pthread_barrier_destroy(&x), 0);
    ck_assert_int_eq(pthread_barrier_init(&x, NULL, 2), 0);
    pthread_t t = pt_start(lone_waiter, &x);
    pt_sleep_ms(20);
    ck_assert_int_eq(pthread_barrier_destroy(&x), EBUSY); /* one waits */
    int r = pthread_barrier_wait(&x);
    int r2 = (int)(intptr_t)pt_join(t);
    ck_assert_int_eq(r + r2, PTHREAD_BARRIER_SERIAL_THREAD);
    ck_assert_int_eq(pthread_barrier_destroy(&x), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-barrier");
    PT_ADD(s, rounds_private);
    PT_ADD(s, rounds_pshared);
    PT_ADD(s, errors);
    return s;
}

PT_MAIN(suite)
