/*
 * cond: condition variables - a bounded-buffer producer/consumer, timed
 * waits timing out (realtime, monotonic condattr, clockwait), broadcast
 * waking every waiter, signal waking at least one, and mutex re-acquisition
 * on every return path.
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/* -------------------------------------------------- bounded buffer */

#define CAP 8
#define NPROD 4
#define NCONS 4
#define PER_PROD 25000

static pthread_mutex_t bm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static long buf[CAP];
static int head, count, producers_left = NPROD;
static long long cons_sum[NCONS];
static long cons_n[NCONS];

static void *producer(void *arg)
{
    long p = (long)(intptr_t)arg;
    for (long i = 0; i < PER_PROD; i++) {
        long v = p * 1000000 + i;
        CHECK_OK(pthread_mutex_lock(&bm));
        while (count == CAP)
            CHECK_OK(pthread_cond_wait(&not_full, &bm));
        CHECK(count < CAP);
        buf[(head + count) % CAP] = v;
        count++;
        CHECK_OK(pthread_cond_signal(&not_empty));
        CHECK_OK(pthread_mutex_unlock(&bm));
    }
    CHECK_OK(pthread_mutex_lock(&bm));
    producers_left--;
    CHECK_OK(pthread_cond_broadcast(&not_empty));
    CHECK_OK(pthread_mutex_unlock(&bm));
    return NULL;
}

static void *consumer(void *arg)
{
    int c = (int)(intptr_t)arg;
    for (;;) {
        CHECK_OK(pthread_mutex_lock(&bm));
        while (count == 0 && producers_left > 0)
            CHECK_OK(pthread_cond_wait(&not_empty, &bm));
        if (count == 0) {
            CHECK_OK(pthread_mutex_unlock(&bm));
            return NULL;
        }
        long v = buf[head];
        head = (head + 1) % CAP;
        count--;
        CHECK_OK(pthread_cond_signal(&not_full));
        CHECK_OK(pthread_mutex_unlock(&bm));
        cons_sum[c] += v;
        cons_n[c]++;
    }
}

static void test_bounded_buffer(void)
{
    pthread_t p[NPROD], c[NCONS];
    for (int i = 0; i < NCONS; i++)
        CHECK_OK(pthread_create(&c[i], NULL, consumer, (void *)(intptr_t)i));
    for (int i = 0; i < NPROD; i++)
        CHECK_OK(pthread_create(&p[i], NULL, producer, (void *)(intptr_t)i));
    for (int i = 0; i < NPROD; i++)
        CHECK_OK(pthread_join(p[i], NULL));
    for (int i = 0; i < NCONS; i++)
        CHECK_OK(pthread_join(c[i], NULL));
    long long sum = 0, want = 0;
    long n = 0;
    for (int i = 0; i < NCONS; i++) {
        sum += cons_sum[i];
        n += cons_n[i];
    }
    for (long pp = 0; pp < NPROD; pp++)
        for (long i = 0; i < PER_PROD; i++)
            want += pp * 1000000 + i;
    CHECK_EQ(n, (long)NPROD * PER_PROD);
    CHECK_EQ(sum, want);
    CHECK_EQ(count, 0);
    printf("bounded buffer: %d producers, %d consumers, %ld items, "
           "checksum %lld\n", NPROD, NCONS, n, sum);
}

/* ------------------------------------------------------ timed waits */

static void test_timedwait(void)
{
    /* an error-checking mutex tells us whether we own it on return */
    pthread_mutexattr_t ma;
    pthread_mutex_t m;
    CHECK_OK(pthread_mutexattr_init(&ma));
    CHECK_OK(pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK));
    CHECK_OK(pthread_mutex_init(&m, &ma));
    CHECK_OK(pthread_mutexattr_destroy(&ma));

    /* default clock: CLOCK_REALTIME */
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    CHECK_OK(pthread_mutex_lock(&m));
    struct timespec dl = deadline_in(CLOCK_REALTIME, 150);
    int64_t t0 = now_ns();
    CHECK_RC(pthread_cond_timedwait(&c, &m, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 150, 0);
    CHECK(clock_ns(CLOCK_REALTIME) >= ts_to_ns(&dl));
    CHECK_RC(pthread_mutex_lock(&m), EDEADLK);     /* we own it again */

    /* deadline already passed */
    dl = deadline_in(CLOCK_REALTIME, -500);
    CHECK_RC(pthread_cond_timedwait(&c, &m, &dl), ETIMEDOUT);
    CHECK_RC(pthread_mutex_lock(&m), EDEADLK);

    /* invalid deadline */
    dl = deadline_in(CLOCK_REALTIME, 100);
    dl.tv_nsec = 1000000000;
    CHECK_RC(pthread_cond_timedwait(&c, &m, &dl), EINVAL);
    CHECK_RC(pthread_mutex_lock(&m), EDEADLK);

    /* clockwait with CLOCK_MONOTONIC on a default condvar */
    dl = deadline_in(CLOCK_MONOTONIC, 100);
    t0 = now_ns();
    CHECK_RC(pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &dl),
             ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_MONOTONIC) >= ts_to_ns(&dl));
    CHECK_OK(pthread_mutex_unlock(&m));
    CHECK_RC(pthread_mutex_unlock(&m), EPERM);
    CHECK_OK(pthread_cond_destroy(&c));

    /* condattr with CLOCK_MONOTONIC */
    pthread_condattr_t ca;
    clockid_t clk = -1;
    CHECK_OK(pthread_condattr_init(&ca));
    CHECK_OK(pthread_condattr_getclock(&ca, &clk));
    CHECK_EQ(clk, CLOCK_REALTIME);
    CHECK_OK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
    CHECK_OK(pthread_condattr_getclock(&ca, &clk));
    CHECK_EQ(clk, CLOCK_MONOTONIC);
    CHECK_RC(pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID),
             EINVAL);
    CHECK_OK(pthread_cond_init(&c, &ca));
    CHECK_OK(pthread_condattr_destroy(&ca));
    CHECK_OK(pthread_mutex_lock(&m));
    dl = deadline_in(CLOCK_MONOTONIC, 120);
    t0 = now_ns();
    CHECK_RC(pthread_cond_timedwait(&c, &m, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 120, 0);
    CHECK(clock_ns(CLOCK_MONOTONIC) >= ts_to_ns(&dl));
    CHECK_RC(pthread_mutex_lock(&m), EDEADLK);
    CHECK_OK(pthread_mutex_unlock(&m));
    CHECK_OK(pthread_cond_destroy(&c));
    CHECK_OK(pthread_mutex_destroy(&m));
    printf("timed waits: realtime, past and monotonic deadlines time out "
           "with the mutex re-acquired; bad deadline EINVAL\n");
}

/* A timed wait that is signalled before its deadline returns 0. */
static pthread_mutex_t sm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sc = PTHREAD_COND_INITIALIZER;
static int flag;

static void *set_flag_later(void *arg)
{
    (void)arg;
    sleep_ms(50);
    CHECK_OK(pthread_mutex_lock(&sm));
    flag = 1;
    CHECK_OK(pthread_cond_signal(&sc));
    CHECK_OK(pthread_mutex_unlock(&sm));
    return NULL;
}

static void test_signalled_timedwait(void)
{
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, set_flag_later, NULL));
    CHECK_OK(pthread_mutex_lock(&sm));
    struct timespec dl = deadline_in(CLOCK_REALTIME, 30000);
    while (!flag)
        CHECK_OK(pthread_cond_timedwait(&sc, &sm, &dl));
    CHECK_OK(pthread_mutex_unlock(&sm));
    CHECK_OK(pthread_join(t, NULL));
    printf("timed wait signalled before its deadline returns 0\n");
}

/* ------------------------------------------------------- broadcast */

#define NWAIT 20
static pthread_mutex_t wm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wc = PTHREAD_COND_INITIALIZER;
static pthread_cond_t all_waiting = PTHREAD_COND_INITIALIZER;
static int generation, waiting, woken;

static void *waiter(void *arg)
{
    (void)arg;
    CHECK_OK(pthread_mutex_lock(&wm));
    int g = generation;
    waiting++;
    CHECK_OK(pthread_cond_signal(&all_waiting));
    while (generation == g)
        CHECK_OK(pthread_cond_wait(&wc, &wm));
    waiting--;
    woken++;
    CHECK_OK(pthread_mutex_unlock(&wm));
    return NULL;
}

static void test_broadcast(void)
{
    pthread_t t[NWAIT];
    for (int round = 0; round < 5; round++) {
        woken = 0;
        for (int i = 0; i < NWAIT; i++)
            CHECK_OK(pthread_create(&t[i], NULL, waiter, NULL));
        CHECK_OK(pthread_mutex_lock(&wm));
        while (waiting < NWAIT)
            CHECK_OK(pthread_cond_wait(&all_waiting, &wm));
        /* all NWAIT are inside pthread_cond_wait now (they can only have
         * released wm from within it) */
        generation++;
        CHECK_OK(pthread_cond_broadcast(&wc));
        CHECK_OK(pthread_mutex_unlock(&wm));
        for (int i = 0; i < NWAIT; i++)
            CHECK_OK(pthread_join(t[i], NULL));
        CHECK_EQ(woken, NWAIT);
        CHECK_EQ(waiting, 0);
    }
    printf("broadcast: one broadcast woke all %d waiters, 5 rounds\n", NWAIT);
}

/* One signal per waiter, each signal issued after the previous wake-up:
 * every waiter ends up woken, none is lost. */
static int tokens, consumed;
static void *token_waiter(void *arg)
{
    (void)arg;
    CHECK_OK(pthread_mutex_lock(&wm));
    waiting++;
    CHECK_OK(pthread_cond_signal(&all_waiting));
    while (tokens == 0)
        CHECK_OK(pthread_cond_wait(&wc, &wm));
    tokens--;
    consumed++;
    waiting--;
    CHECK_OK(pthread_cond_signal(&all_waiting));
    CHECK_OK(pthread_mutex_unlock(&wm));
    return NULL;
}

static void test_signal(void)
{
    pthread_t t[NWAIT];
    waiting = 0;
    for (int i = 0; i < NWAIT; i++)
        CHECK_OK(pthread_create(&t[i], NULL, token_waiter, NULL));
    CHECK_OK(pthread_mutex_lock(&wm));
    while (waiting < NWAIT)
        CHECK_OK(pthread_cond_wait(&all_waiting, &wm));
    for (int i = 0; i < NWAIT; i++) {
        tokens++;
        CHECK_OK(pthread_cond_signal(&wc));
        while (consumed < i + 1)
            CHECK_OK(pthread_cond_wait(&all_waiting, &wm));
    }
    CHECK_OK(pthread_mutex_unlock(&wm));
    for (int i = 0; i < NWAIT; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    CHECK_EQ(consumed, NWAIT);
    CHECK_EQ(tokens, 0);
    printf("signal: %d signals woke %d waiters one at a time\n", NWAIT,
           NWAIT);
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_bounded_buffer();
    test_timedwait();
    test_signalled_timedwait();
    test_broadcast();
    test_signal();
    return 0;
}
