/*
 * test_sleep.c — nanosleep, clock_nanosleep, usleep, sleep under vthread:
 * Gs sleep concurrently on timers, error codes, absolute sleeps on each
 * supported clock, other clocks passed to the kernel.
 */
#include "pl_test.h"

static void *nap(void *unused)
{
    (void)unused;
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    struct timespec ts = {0, 30000000};
    ck_assert_int_eq(nanosleep(&ts, NULL), 0);
    ck_assert_int_ge(pt_ms_since(t0), 29);
    return NULL;
}

START_TEST(concurrent_sleepers)
{
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    pt_run(300, nap);
    /* 300 x 30 ms in parallel, on 2 processors. */
    ck_assert_int_lt(pt_ms_since(t0), 3000);
}
END_TEST

static void *errors_in_g(void *unused)
{
    (void)unused;
    struct timespec bad = {0, 1000000000}, neg = {-1, 0};
    errno = 0;
    ck_assert_int_eq(nanosleep(&bad, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(nanosleep(&neg, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL), EINVAL);
    struct timespec ok = {0, 1000};
    ck_assert_int_eq(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ok, NULL),
                     EINVAL);
    ck_assert_int_eq(clock_nanosleep(12345, 0, &ok, NULL), EINVAL);
    return NULL;
}

START_TEST(errors)
{
    pt_join(pt_start(errors_in_g, NULL));
    errors_in_g(NULL); /* the first G too */
}
END_TEST

static void *clocks_in_g(void *unused)
{
    (void)unused;
    clockid_t clks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    for (int i = 0; i < 3; i++) {
        int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
        struct timespec ts = pt_abs(clks[i], 20);
        ck_assert_int_eq(clock_nanosleep(clks[i], TIMER_ABSTIME, &ts, NULL), 0);
        ck_assert_int_ge(pt_ms_since(t0), 19);
        ck_assert_int_lt(pt_ms_since(t0), 2000);
        ts = pt_abs(clks[i], -1000); /* in the past: returns at once */
        ck_assert_int_eq(clock_nanosleep(clks[i], TIMER_ABSTIME, &ts, NULL), 0);
        struct timespec rel = {0, 10000000};
        t0 = pt_now_ns(CLOCK_MONOTONIC);
        ck_assert_int_eq(clock_nanosleep(clks[i], 0, &rel, NULL), 0);
        ck_assert_int_ge(pt_ms_since(t0), 9);
    }
    /* A clock we hand to the kernel. */
    struct timespec tai = {0, 1000000};
    ck_assert_int_eq(clock_nanosleep(CLOCK_TAI, 0, &tai, NULL), 0);
    ck_assert_int_eq(usleep(0), 0);
    ck_assert_int_eq(usleep(5000), 0);
    errno = 1234;
    ck_assert_int_eq(sleep(0), 0);
    ck_assert_int_eq(errno, 1234); /* sleep keeps errno on success */
    ck_assert_int_eq(sleep(1), 0);
    return NULL;
}

START_TEST(clocks)
{
    pt_join(pt_start(clocks_in_g, NULL));
}
END_TEST

static atomic_int stop_spin;
static void *sleeper(void *unused)
{
    (void)unused;
    pt_sleep_ms(40);
    atomic_store(&stop_spin, 1);
    return NULL;
}

START_TEST(usleep0_yields)
{
    /* A polling loop with usleep(0) lets the others run. */
    pthread_t t = pt_start(sleeper, NULL);
    while (!atomic_load(&stop_spin))
        usleep(0);
    pt_join(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-sleep");
    PT_ADD(s, concurrent_sleepers);
    PT_ADD(s, errors);
    PT_ADD(s, clocks);
    PT_ADD(s, usleep0_yields);
    return s;
}

PT_MAIN(suite)
