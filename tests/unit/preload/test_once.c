/*
 * test_once.c — pthread_once under vthread: racing callers, init runs
 * exactly once and everybody returns after it finished; an init that
 * ends its thread (pthread_exit: the cancellation path) lets another
 * caller run it.
 */
#include "pl_test.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int runs;
static atomic_int finished;

static void init_slow(void)
{
    atomic_fetch_add(&runs, 1);
    pt_sleep_ms(20); /* others must wait, parked */
    atomic_store(&finished, 1);
}

static void *racer(void *unused)
{
    (void)unused;
    ck_assert_int_eq(pthread_once(&once, init_slow), 0);
    ck_assert_int_eq(atomic_load(&finished), 1);
    return NULL;
}

START_TEST(racing_callers)
{
    pt_run(64, racer);
    ck_assert_int_eq(atomic_load(&runs), 1);
    ck_assert_int_eq(pthread_once(&once, init_slow), 0);
    ck_assert_int_eq(atomic_load(&runs), 1);
}
END_TEST

static pthread_once_t once2 = PTHREAD_ONCE_INIT;
static void init_exits_first(void)
{
    if (atomic_fetch_add(&runs, 1) == 0) {
        pt_sleep_ms(20);
        pthread_exit(NULL); /* unwinds through pthread_once */
    }
    atomic_store(&finished, 1);
}

static void *caller2(void *unused)
{
    (void)unused;
    pthread_once(&once2, init_exits_first);
    return (void *)1;
}

START_TEST(init_abandoned)
{
    pthread_t first = pt_start(caller2, NULL);
    pt_sleep_ms(5);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = pt_start(caller2, NULL);
    ck_assert_ptr_null(pt_join(first)); /* it exited inside init */
    for (int i = 0; i < 8; i++)
        ck_assert_ptr_eq(pt_join(t[i]), (void *)1);
    ck_assert_int_eq(atomic_load(&runs), 2);
    ck_assert_int_eq(atomic_load(&finished), 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-once");
    PT_ADD(s, racing_callers);
    PT_ADD(s, init_abandoned);
    return s;
}

PT_MAIN(suite)
