/*
 * pl_test.h — helpers for the preload layer's unit tests.
 *
 * The tests are ordinary pthread programs linked with libvthread (its
 * symbols come first in the search order, as under LD_PRELOAD).  Check runs
 * each test in its own forked child with a timeout; the runtime starts
 * lazily in that child at its first pthread_create, so the main thread of
 * each test becomes the first G.
 */
#ifndef PL_TEST_H
#define PL_TEST_H

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PL_TEST_TIMEOUT 30 /* seconds per test (2 shared cores) */

static inline int64_t pt_now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static inline int64_t pt_ms_since(int64_t t0)
{
    return (pt_now_ns(CLOCK_MONOTONIC) - t0) / 1000000;
}

/* An absolute time ms milliseconds from now on clk (ms may be negative). */
static inline struct timespec pt_abs(clockid_t clk, long ms)
{
    int64_t t = pt_now_ns(clk) + (int64_t)ms * 1000000;
    struct timespec ts = {t / 1000000000, t % 1000000000};
    if (ts.tv_nsec < 0) {
        ts.tv_nsec += 1000000000;
        ts.tv_sec--;
    }
    return ts;
}

static inline void pt_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Runs fn(i) in n new threads, i = 0..n-1, and joins them all; returns the
 * sum of their return values (as intptr_t). */
static inline intptr_t pt_run(int n, void *(*fn)(void *))
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fn, (void *)(intptr_t)i),
                         0);
    intptr_t sum = 0;
    for (int i = 0; i < n; i++) {
        void *r;
        ck_assert_int_eq(pthread_join(t[i], &r), 0);
        sum += (intptr_t)r;
    }
    free(t);
    return sum;
}

static inline pthread_t pt_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

static inline void *pt_join(pthread_t t)
{
    void *r;
    ck_assert_int_eq(pthread_join(t, &r), 0);
    return r;
}

/* One TCase per test, each with the watchdog. */
#define PT_ADD(s, fn)                                                         \
    do {                                                                      \
        TCase *tc_ = tcase_create(#fn);                                       \
        tcase_set_timeout(tc_, PL_TEST_TIMEOUT);                              \
        tcase_add_test(tc_, fn);                                              \
        suite_add_tcase((s), tc_);                                            \
    } while (0)

#define PT_MAIN(suite_fn)                                                     \
    int main(void)                                                            \
    {                                                                         \
        SRunner *sr = srunner_create(suite_fn());                             \
        srunner_run_all(sr, CK_NORMAL);                                       \
        int failed = srunner_ntests_failed(sr);                               \
        srunner_free(sr);                                                     \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                          \
    }

#endif
