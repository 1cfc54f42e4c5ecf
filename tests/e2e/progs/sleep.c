/*
 * sleep: nanosleep, usleep, sleep and clock_nanosleep (relative and
 * absolute, CLOCK_MONOTONIC and CLOCK_REALTIME) from 100 threads at once.
 * Each sleep must last at least what was asked (absolute ones must end at
 * or after the deadline on their clock) and not much longer: less than
 * requested + 200 ms.  Plus the error cases.
 */
#include "e2e.h"

#include <pthread.h>
#include <stdatomic.h>

#define NT 100
#define OVER_MS 200

static atomic_long worst_over_ns;   /* reported on stderr only */

/* elapsed since t0 must be in [want_ms - early_ms, want_ms + OVER_MS) */
static void check_span_early(const char *what, int id, int64_t t0,
                             int64_t want_ms, int64_t early_ms)
{
    int64_t el = now_ns() - t0;
    int64_t want = want_ms * NS_PER_MS;
    if (el < want - early_ms * NS_PER_MS)
        FAIL("thread %d: %s(%lld ms) returned after %.3f ms", id, what,
             (long long)want_ms, el / 1e6);
    if (el > want + OVER_MS * NS_PER_MS)
        FAIL("thread %d: %s(%lld ms) took %.3f ms", id, what,
             (long long)want_ms, el / 1e6);
    long over = (long)(el - want), w = atomic_load(&worst_over_ns);
    while (over > w && !atomic_compare_exchange_weak(&worst_over_ns, &w, over))
        ;
}

static void check_span(const char *what, int id, int64_t t0, int64_t want_ms)
{
    check_span_early(what, id, t0, want_ms, 0);
}

static pthread_barrier_t bar;
static atomic_int sleeps_done;

static void *sleeper(void *arg)
{
    int id = (int)(intptr_t)arg;
    int64_t ms = 10 + (id % 10) * 5;           /* 10..55 ms */
    int r = pthread_barrier_wait(&bar);
    CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);

    /* nanosleep */
    struct timespec ts = ns_to_ts(ms * NS_PER_MS), rem;
    int64_t t0 = now_ns();
    CHECK_SYS(nanosleep(&ts, &rem));
    check_span("nanosleep", id, t0, ms);

    /* usleep */
    t0 = now_ns();
    CHECK_SYS(usleep((useconds_t)(ms * 1000)));
    check_span("usleep", id, t0, ms);

    /* clock_nanosleep, relative, both clocks */
    t0 = now_ns();
    CHECK_OK(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL));
    check_span("clock_nanosleep(MONOTONIC)", id, t0, ms);
    t0 = now_ns();
    CHECK_OK(clock_nanosleep(CLOCK_REALTIME, 0, &ts, NULL));
    check_span("clock_nanosleep(REALTIME)", id, t0, ms);

    /* clock_nanosleep, absolute, both clocks */
    t0 = now_ns();
    struct timespec dl = ns_to_ts(t0 + ms * NS_PER_MS);
    CHECK_OK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL));
    if (clock_ns(CLOCK_MONOTONIC) < ts_to_ns(&dl))
        FAIL("thread %d: absolute MONOTONIC sleep ended early", id);
    check_span("clock_nanosleep(MONOTONIC, ABSTIME)", id, t0, ms);
    dl = deadline_in(CLOCK_REALTIME, ms);
    t0 = now_ns();
    CHECK_OK(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &dl, NULL));
    if (clock_ns(CLOCK_REALTIME) < ts_to_ns(&dl))
        FAIL("thread %d: absolute REALTIME sleep ended early", id);
    /* measured on the monotonic clock: allow for the two clocks' reads */
    check_span_early("clock_nanosleep(REALTIME, ABSTIME)", id, t0, ms, 1);

    /* deadline in the past: returns at once */
    dl = deadline_in(CLOCK_MONOTONIC, -1000);
    t0 = now_ns();
    CHECK_OK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL));
    check_span("clock_nanosleep(past deadline)", id, t0, 0);

    /* zero-length sleeps */
    ts = (struct timespec){0, 0};
    t0 = now_ns();
    CHECK_SYS(nanosleep(&ts, NULL));
    CHECK_SYS(usleep(0));
    check_span("nanosleep(0)", id, t0, 0);

    /* sleep(1), from every thread at once */
    t0 = now_ns();
    CHECK_EQ(sleep(1), 0);
    check_span("sleep", id, t0, 1000);

    /* error cases */
    ts = (struct timespec){0, 1000000000};
    CHECK_ERRNO(nanosleep(&ts, NULL), EINVAL);
    ts = (struct timespec){-1, 0};
    CHECK_ERRNO(nanosleep(&ts, NULL), EINVAL);
    ts = (struct timespec){0, -5};
    CHECK_RC(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), EINVAL);
    ts = (struct timespec){0, 1000};
    CHECK_RC(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL), EINVAL);
    CHECK_RC(clock_nanosleep((clockid_t)12345, 0, &ts, NULL), EINVAL);

    atomic_fetch_add(&sleeps_done, 10);
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    pthread_t t[NT];
    CHECK_OK(pthread_barrier_init(&bar, NULL, NT));
    for (int i = 0; i < NT; i++)
        CHECK_OK(pthread_create(&t[i], NULL, sleeper, (void *)(intptr_t)i));
    for (int i = 0; i < NT; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    pthread_barrier_destroy(&bar);
    fprintf(stderr, "sleep: worst overshoot %.3f ms\n",
            atomic_load(&worst_over_ns) / 1e6);
    printf("%d threads: %d sleeps, each >= requested and < requested + "
           "%d ms; error cases EINVAL\n", NT, atomic_load(&sleeps_done),
           OVER_MS);
    return 0;
}
