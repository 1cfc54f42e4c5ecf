/*
 * test_spin.c — pthread_spin_lock under vthread: exclusion, and progress
 * when there are more spinners than processors (the holder must get to
 * run: spinners yield).
 */
#include "pl_test.h"

static pthread_spinlock_t sl;
static long counter;
enum { N = 16, ITER = 20000 };

static void *worker(void *unused)
{
    (void)unused;
    for (int i = 0; i < ITER; i++) {
        ck_assert_int_eq(pthread_spin_lock(&sl), 0);
        long v = counter;
        if (i % 1000 == 0)
            sched_yield(); /* the holder leaves its P while others spin */
        counter = v + 1;
        ck_assert_int_eq(pthread_spin_unlock(&sl), 0);
    }
    return NULL;
}

START_TEST(exclusion_and_progress)
{
    ck_assert_int_eq(pthread_spin_init(&sl, PTHREAD_PROCESS_PRIVATE), 0);
    pt_run(N, worker);
    ck_assert_int_eq(counter, (long)N * ITER);
    ck_assert_int_eq(pthread_spin_trylock(&sl), 0);
    ck_assert_int_eq(pthread_spin_trylock(&sl), EBUSY);
    ck_assert_int_eq(pthread_spin_unlock(&sl), 0);
    ck_assert_int_eq(pthread_spin_destroy(&sl), 0);
}
END_TEST

static void *hold_long(void *unused)
{
    (void)unused;
    pthread_spin_lock(&sl);
    pt_sleep_ms(50); /* parks while holding the spin lock */
    pthread_spin_unlock(&sl);
    return NULL;
}

START_TEST(holder_parked)
{
    pthread_spin_init(&sl, PTHREAD_PROCESS_PRIVATE);
    pthread_t h = pt_start(hold_long, NULL);
    pt_sleep_ms(5);
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    pthread_spin_lock(&sl);
    pthread_spin_unlock(&sl);
    ck_assert_int_lt(pt_ms_since(t0), 5000);
    pt_join(h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-spin");
    PT_ADD(s, exclusion_and_progress);
    PT_ADD(s, holder_parked);
    return s;
}

PT_MAIN(suite)
