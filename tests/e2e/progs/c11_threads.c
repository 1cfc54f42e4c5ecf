/*
 * c11_threads: the ISO C11 <threads.h> API - thrd_create/join/detach/
 * exit/current/equal/sleep/yield, mtx_* (plain, timed, recursive),
 * cnd_* (wait, timedwait, signal, broadcast), tss_* with destructors, and
 * call_once; with the documented return codes.
 */
#include "e2e.h"

#include <stdatomic.h>
#include <threads.h>

#define CHECK_THRD(expr, want)                                             \
    do {                                                                   \
        int r_ = (expr);                                                   \
        if (r_ != (want))                                                  \
            FAIL("%s returned %d, expected %d (%s)", #expr, r_, (want),    \
                 #want);                                                   \
    } while (0)

static struct timespec utc_in(int64_t ms)
{
    struct timespec ts;
    CHECK_EQ(timespec_get(&ts, TIME_UTC), TIME_UTC);
    return ns_to_ts(ts_to_ns(&ts) + ms * NS_PER_MS);
}

static int64_t utc_now(void)
{
    struct timespec ts;
    CHECK_EQ(timespec_get(&ts, TIME_UTC), TIME_UTC);
    return ts_to_ns(&ts);
}

/* ----------------------------------------------------- thrd basics */

#define NT 50
static thrd_t self_of[NT];

static int ret_fn(void *arg)
{
    int i = (int)(intptr_t)arg;
    self_of[i] = thrd_current();
    if (i % 5 == 0)
        thrd_yield();
    if (i % 2)
        thrd_exit(i * 2 + 1);   /* same as returning it */
    return i * 2 + 1;
}

static atomic_int det_ran;
static int detached_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&det_ran, 1);
    return 0;
}

static void test_thrd(void)
{
    thrd_t t[NT];
    for (int i = 0; i < NT; i++)
        CHECK_THRD(thrd_create(&t[i], ret_fn, (void *)(intptr_t)i),
                   thrd_success);
    long sum = 0;
    for (int i = 0; i < NT; i++) {
        int res = -1;
        CHECK_THRD(thrd_join(t[i], &res), thrd_success);
        CHECK_EQ(res, i * 2 + 1);
        CHECK(thrd_equal(t[i], self_of[i]));
        CHECK(!thrd_equal(t[i], thrd_current()));
        sum += res;
    }
    CHECK(thrd_equal(thrd_current(), thrd_current()));

    /* thrd_sleep: 0 after a full sleep, elapsed >= requested */
    struct timespec d = {0, 50 * 1000 * 1000}, rem = {9, 9};
    int64_t t0 = now_ns();
    CHECK_THRD(thrd_sleep(&d, &rem), 0);
    CHECK_ELAPSED(t0, 50, 0);

    /* detached threads */
    for (int i = 0; i < 10; i++) {
        thrd_t dt;
        CHECK_THRD(thrd_create(&dt, detached_fn, NULL), thrd_success);
        CHECK_THRD(thrd_detach(dt), thrd_success);
    }
    WAIT_UNTIL(atomic_load(&det_ran) == 10, 10000);
    printf("thrd: %d threads created and joined, results sum %ld; 10 "
           "detached; thrd_sleep 0\n", NT, sum);
}

/* ------------------------------------------------------------ mtx */

#define NCOUNT 8
#define ITERS 50000
static mtx_t cm;
static long counter;

static int count_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        CHECK_THRD(mtx_lock(&cm), thrd_success);
        counter++;
        CHECK_THRD(mtx_unlock(&cm), thrd_success);
    }
    return 0;
}

static mtx_t tm;
static atomic_int holder_state;    /* 1 = holding tm, 2 = release now */
static int holder_fn(void *arg)
{
    (void)arg;
    CHECK_THRD(mtx_lock(&tm), thrd_success);
    atomic_store(&holder_state, 1);
    WAIT_UNTIL(atomic_load(&holder_state) == 2, 20000);
    CHECK_THRD(mtx_unlock(&tm), thrd_success);
    return 0;
}

static void test_mtx(void)
{
    CHECK_THRD(mtx_init(&cm, mtx_plain), thrd_success);
    thrd_t t[NCOUNT];
    for (int i = 0; i < NCOUNT; i++)
        CHECK_THRD(thrd_create(&t[i], count_fn, NULL), thrd_success);
    for (int i = 0; i < NCOUNT; i++)
        CHECK_THRD(thrd_join(t[i], NULL), thrd_success);
    CHECK_EQ(counter, (long)NCOUNT * ITERS);
    CHECK_THRD(mtx_trylock(&cm), thrd_success);
    CHECK_THRD(mtx_trylock(&cm), thrd_busy);
    CHECK_THRD(mtx_unlock(&cm), thrd_success);
    mtx_destroy(&cm);

    /* timed mutex held by another thread */
    CHECK_THRD(mtx_init(&tm, mtx_timed), thrd_success);
    thrd_t h;
    CHECK_THRD(thrd_create(&h, holder_fn, NULL), thrd_success);
    WAIT_UNTIL(atomic_load(&holder_state) == 1, 10000);
    CHECK_THRD(mtx_trylock(&tm), thrd_busy);
    struct timespec dl = utc_in(100);
    int64_t t0 = now_ns();
    CHECK_THRD(mtx_timedlock(&tm, &dl), thrd_timedout);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(utc_now() >= ts_to_ns(&dl));
    atomic_store(&holder_state, 2);
    dl = utc_in(30000);
    CHECK_THRD(mtx_timedlock(&tm, &dl), thrd_success);
    CHECK_THRD(mtx_unlock(&tm), thrd_success);
    CHECK_THRD(thrd_join(h, NULL), thrd_success);
    mtx_destroy(&tm);

    /* recursive */
    mtx_t rm;
    CHECK_THRD(mtx_init(&rm, mtx_plain | mtx_recursive), thrd_success);
    for (int i = 0; i < 10; i++)
        CHECK_THRD(mtx_lock(&rm), thrd_success);
    CHECK_THRD(mtx_trylock(&rm), thrd_success);
    for (int i = 0; i < 11; i++)
        CHECK_THRD(mtx_unlock(&rm), thrd_success);
    mtx_destroy(&rm);
    printf("mtx: counter %ld; trylock thrd_busy; timedlock thrd_timedout; "
           "recursive nesting\n", counter);
}

/* ------------------------------------------------------------ cnd */

static mtx_t qm;
static cnd_t qc, allc;
static int q_items, q_waiting, q_taken, q_gen;

static int cnd_waiter(void *arg)
{
    int use_broadcast = (int)(intptr_t)arg;
    CHECK_THRD(mtx_lock(&qm), thrd_success);
    q_waiting++;
    CHECK_THRD(cnd_signal(&allc), thrd_success);
    if (use_broadcast) {
        int g = q_gen;
        while (q_gen == g)
            CHECK_THRD(cnd_wait(&qc, &qm), thrd_success);
    } else {
        while (q_items == 0)
            CHECK_THRD(cnd_wait(&qc, &qm), thrd_success);
        q_items--;
    }
    q_taken++;
    CHECK_THRD(cnd_signal(&allc), thrd_success);
    CHECK_THRD(mtx_unlock(&qm), thrd_success);
    return 0;
}

static void test_cnd(void)
{
    CHECK_THRD(mtx_init(&qm, mtx_plain), thrd_success);
    CHECK_THRD(cnd_init(&qc), thrd_success);
    CHECK_THRD(cnd_init(&allc), thrd_success);

    /* timed wait with nobody signalling */
    CHECK_THRD(mtx_lock(&qm), thrd_success);
    struct timespec dl = utc_in(100);
    int64_t t0 = now_ns();
    CHECK_THRD(cnd_timedwait(&qc, &qm, &dl), thrd_timedout);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(utc_now() >= ts_to_ns(&dl));
    CHECK_THRD(mtx_unlock(&qm), thrd_success);

    for (int mode = 0; mode < 2; mode++) {
        const int N = 10;
        thrd_t t[10];
        q_waiting = q_taken = q_items = 0;
        for (int i = 0; i < N; i++)
            CHECK_THRD(thrd_create(&t[i], cnd_waiter, (void *)(intptr_t)mode),
                       thrd_success);
        CHECK_THRD(mtx_lock(&qm), thrd_success);
        while (q_waiting < N)
            CHECK_THRD(cnd_wait(&allc, &qm), thrd_success);
        if (mode == 1) {
            q_gen++;
            CHECK_THRD(cnd_broadcast(&qc), thrd_success);
        } else {
            for (int i = 0; i < N; i++) {
                q_items++;
                CHECK_THRD(cnd_signal(&qc), thrd_success);
                while (q_taken < i + 1)
                    CHECK_THRD(cnd_wait(&allc, &qm), thrd_success);
            }
        }
        CHECK_THRD(mtx_unlock(&qm), thrd_success);
        for (int i = 0; i < N; i++)
            CHECK_THRD(thrd_join(t[i], NULL), thrd_success);
        CHECK_EQ(q_taken, N);
    }
    cnd_destroy(&qc);
    cnd_destroy(&allc);
    mtx_destroy(&qm);
    printf("cnd: timedwait thrd_timedout; signal woke 10 one by one; one "
           "broadcast woke 10\n");
}

/* ------------------------------------------------ tss, call_once */

static tss_t key, key2;
static atomic_int dtor_calls, dtor_bad;

static void tss_dtor(void *p)
{
    int *v = p;
    if (*v < 0 || *v >= 100)
        atomic_fetch_add(&dtor_bad, 1);
    *v = -1;
    atomic_fetch_add(&dtor_calls, 1);
}

static once_flag once = ONCE_FLAG_INIT;
static atomic_int once_runs, once_done;
static void once_fn(void)
{
    atomic_fetch_add(&once_runs, 1);
    sleep_ms(50);
    atomic_store(&once_done, 1);
}

static int vals[100];
static int tss_fn(void *arg)
{
    int i = (int)(intptr_t)arg;
    call_once(&once, once_fn);
    CHECK_EQ(atomic_load(&once_done), 1);
    CHECK(tss_get(key) == NULL);
    vals[i] = i;
    CHECK_THRD(tss_set(key, &vals[i]), thrd_success);
    if (i % 3 == 0)
        CHECK_THRD(tss_set(key2, &vals[i]), thrd_success); /* no dtor */
    for (int k = 0; k < 20; k++) {
        thrd_yield();
        CHECK(tss_get(key) == &vals[i]);
    }
    if (i % 4 == 0)
        CHECK_THRD(tss_set(key, NULL), thrd_success);   /* no dtor call */
    return 0;
}

static void test_tss_once(void)
{
    CHECK_THRD(tss_create(&key, tss_dtor), thrd_success);
    CHECK_THRD(tss_create(&key2, NULL), thrd_success);
    const int N = 40;
    thrd_t t[40];
    for (int i = 0; i < N; i++)
        CHECK_THRD(thrd_create(&t[i], tss_fn, (void *)(intptr_t)i),
                   thrd_success);
    for (int i = 0; i < N; i++)
        CHECK_THRD(thrd_join(t[i], NULL), thrd_success);
    CHECK_EQ(atomic_load(&once_runs), 1);
    CHECK_EQ(atomic_load(&dtor_bad), 0);
    CHECK_EQ(atomic_load(&dtor_calls), N - N / 4);
    for (int i = 0; i < N; i++)
        CHECK_EQ(vals[i], i % 4 == 0 ? i : -1);
    tss_delete(key);
    tss_delete(key2);
    printf("tss: %d destructor calls for %d threads (NULL values skipped); "
           "call_once ran once for %d threads\n", atomic_load(&dtor_calls),
           N, N);
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_thrd();
    test_mtx();
    test_cnd();
    test_tss_once();
    return 0;
}
