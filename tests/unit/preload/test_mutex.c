/*
 * test_mutex.c — pthread_mutex_* under vthread: mutual exclusion under
 * contention, every kind's error codes as glibc returns them, timed
 * locks, destroy, starvation hand-off, delegated kinds, non-G contenders.
 */
#include <signal.h>

#include "pl_test.h"

static pthread_mutex_t gm = PTHREAD_MUTEX_INITIALIZER;
static long counter;

enum { NTHREADS = 64, NITER = 3000 };

static void *inc_worker(void *arg)
{
    pthread_mutex_t *m = arg;
    for (int i = 0; i < NITER; i++) {
        ck_assert_int_eq(pthread_mutex_lock(m), 0);
        long v = counter;
        if ((i & 63) == 0)
            sched_yield(); /* make the critical section long sometimes */
        counter = v + 1;
        ck_assert_int_eq(pthread_mutex_unlock(m), 0);
    }
    return NULL;
}

static void *inc_global(void *unused)
{
    (void)unused;
    return inc_worker(&gm);
}

START_TEST(contended_counter)
{
    counter = 0;
    pt_run(NTHREADS, inc_global);
    ck_assert_int_eq(counter, (long)NTHREADS * NITER);
}
END_TEST

static pthread_mutex_t kinds[4];
static int kind_idx;
static void *kind_worker(void *a)
{
    (void)a;
    for (int i = 0; i < NITER; i++) {
        ck_assert_int_eq(pthread_mutex_lock(&kinds[kind_idx]), 0);
        counter++;
        ck_assert_int_eq(pthread_mutex_unlock(&kinds[kind_idx]), 0);
    }
    return NULL;
}

START_TEST(contended_every_kind)
{
    int types[4] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_RECURSIVE,
                    PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_ADAPTIVE_NP};
    for (int k = 0; k < 4; k++) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, types[k]);
        ck_assert_int_eq(pthread_mutex_init(&kinds[k], &a), 0);
        pthread_mutexattr_destroy(&a);
        kind_idx = k;
        counter = 0;
        pt_run(16, kind_worker);
        ck_assert_int_eq(counter, 16L * NITER);
        ck_assert_int_eq(pthread_mutex_destroy(&kinds[k]), 0);
    }
}
END_TEST

static void *try_other(void *m)
{
    return (void *)(intptr_t)pthread_mutex_trylock(m);
}
static void *unlock_other(void *m)
{
    return (void *)(intptr_t)pthread_mutex_unlock(m);
}

START_TEST(recursive_rules)
{
    pthread_mutex_t m = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    ck_assert_int_eq(pthread_mutex_lock(&m), 0);
    ck_assert_int_eq(pthread_mutex_lock(&m), 0);
    ck_assert_int_eq(pthread_mutex_trylock(&m), 0);
    ck_assert_int_eq(m.__data.__count, 3);
    /* Another thread: busy, and not the owner. */
    ck_assert_int_eq((intptr_t)pt_join(pt_start(try_other, &m)), EBUSY);
    ck_assert_int_eq((intptr_t)pt_join(pt_start(unlock_other, &m)), EPERM);
    /* Count overflow (white box: glibc's __count). */
    unsigned saved = m.__data.__count;
    m.__data.__count = UINT_MAX;
    ck_assert_int_eq(pthread_mutex_lock(&m), EAGAIN);
    ck_assert_int_eq(pthread_mutex_trylock(&m), EAGAIN);
    m.__data.__count = saved;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
    ck_assert_int_eq(pthread_mutex_unlock(&m), EPERM);
    ck_assert_int_eq((intptr_t)pt_join(pt_start(try_other, &m)), 0);
    ck_assert_int_eq(pthread_mutex_trylock(&m), EBUSY);
}
END_TEST

START_TEST(errorcheck_rules)
{
    pthread_mutex_t m = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    ck_assert_int_eq(pthread_mutex_unlock(&m), EPERM);
    ck_assert_int_eq(pthread_mutex_lock(&m), 0);
    ck_assert_int_eq(pthread_mutex_lock(&m), EDEADLK);
    ck_assert_int_eq(pthread_mutex_trylock(&m), EBUSY);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 10);
    ck_assert_int_eq(pthread_mutex_timedlock(&m, &ts), EDEADLK);
    ck_assert_int_eq((intptr_t)pt_join(pt_start(unlock_other, &m)), EPERM);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
    ck_assert_int_eq(pthread_mutex_unlock(&m), EPERM);
}
END_TEST

START_TEST(trylock_normal)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    ck_assert_int_eq(pthread_mutex_trylock(&m), 0);
    ck_assert_int_eq(pthread_mutex_trylock(&m), EBUSY);
    ck_assert_int_eq((intptr_t)pt_join(pt_start(try_other, &m)), EBUSY);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
}
END_TEST

static void *hold_for(void *m)
{
    ck_assert_int_eq(pthread_mutex_lock(m), 0);
    pt_sleep_ms(150);
    ck_assert_int_eq(pthread_mutex_unlock(m), 0);
    return NULL;
}

START_TEST(timed_and_clock_lock)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    struct timespec bad = {0, 1000000000};
    /* Free: glibc does not look at the timeout. */
    ck_assert_int_eq(pthread_mutex_timedlock(&m, &bad), 0);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
    ck_assert_int_eq(pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID,
                                             &bad),
                     EINVAL);
    ck_assert_int_eq(pthread_mutex_clocklock(&m, 12345, &bad), EINVAL);

    pthread_t h = pt_start(hold_for, &m);
    pt_sleep_ms(30);
    ck_assert_int_eq(pthread_mutex_timedlock(&m, &bad), EINVAL);
    struct timespec past = {-1, 0};
    ck_assert_int_eq(pthread_mutex_timedlock(&m, &past), ETIMEDOUT);
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 20);
    ck_assert_int_eq(pthread_mutex_timedlock(&m, &ts), ETIMEDOUT);
    ck_assert_int_ge(pt_ms_since(t0), 19);
    ts = pt_abs(CLOCK_MONOTONIC, 20);
    ck_assert_int_eq(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &ts),
                     ETIMEDOUT);
    /* Long enough to outlast the holder. */
    ts = pt_abs(CLOCK_MONOTONIC, 5000);
    ck_assert_int_eq(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &ts), 0);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
    pt_join(h);
}
END_TEST

START_TEST(destroy_rules)
{
    pthread_mutex_t m;
    ck_assert_int_eq(pthread_mutex_init(&m, NULL), 0);
    ck_assert_int_eq(pthread_mutex_lock(&m), 0);
    ck_assert_int_eq(pthread_mutex_destroy(&m), EBUSY);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
    ck_assert_int_eq(pthread_mutex_destroy(&m), 0);
    /* glibc marks a destroyed mutex invalid. */
    ck_assert_int_eq(pthread_mutex_lock(&m), EINVAL);
    ck_assert_int_eq(pthread_mutex_init(&m, NULL), 0);
    ck_assert_int_eq(pthread_mutex_lock(&m), 0);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
}
END_TEST

/* Starvation: a hog relocks in a tight loop; a waiter must still get the
 * lock quickly thanks to the 1 ms hand-off. */
static atomic_int hog_stop;
static void *hog(void *m)
{
    while (!atomic_load(&hog_stop)) {
        pthread_mutex_lock(m);
        for (volatile int i = 0; i < 2000; i++)
            ;
        pthread_mutex_unlock(m);
    }
    return NULL;
}

START_TEST(starvation_handoff)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_t h1 = pt_start(hog, &m), h2 = pt_start(hog, &m);
    pt_sleep_ms(20);
    int64_t worst = 0;
    for (int i = 0; i < 20; i++) {
        int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
        pthread_mutex_lock(&m);
        int64_t dt = pt_now_ns(CLOCK_MONOTONIC) - t0;
        pthread_mutex_unlock(&m);
        if (dt > worst)
            worst = dt;
        pt_sleep_ms(1);
    }
    atomic_store(&hog_stop, 1);
    pt_join(h1);
    pt_join(h2);
    ck_assert_msg(worst < 200000000, "waited %lld ns", (long long)worst);
}
END_TEST

static void *pshared_worker(void *m)
{
    return inc_worker(m);
}

START_TEST(delegated_kinds)
{
    /* Process-shared and robust mutexes go to glibc; they must still work
     * between Gs. */
    for (int variant = 0; variant < 2; variant++) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        if (variant == 0)
            pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        else
            pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_t m;
        ck_assert_int_eq(pthread_mutex_init(&m, &a), 0);
        counter = 0;
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            t[i] = pt_start(pshared_worker, &m);
        for (int i = 0; i < 8; i++)
            pt_join(t[i]);
        ck_assert_int_eq(counter, 8L * NITER);
        ck_assert_int_eq(pthread_mutex_destroy(&m), 0);
        pthread_mutexattr_destroy(&a);
    }
}
END_TEST

/* A thread that is not a G (glibc's SIGEV_THREAD helper, made with the real
 * pthread_create) contends with Gs: it blocks on a futex in the parking
 * lot and must be woken by a G's unlock. */
static pthread_mutex_t nm = PTHREAD_MUTEX_INITIALIZER;
static atomic_int notify_done;
static void notify_fn(union sigval v)
{
    (void)v;
    pthread_mutex_lock(&nm);
    counter += 1000;
    pthread_mutex_unlock(&nm);
    atomic_store(&notify_done, 1);
}

START_TEST(non_g_contender)
{
    counter = 0;
    pthread_t t = pt_start(inc_worker, &nm); /* starts the runtime */
    ck_assert_int_eq(pthread_mutex_lock(&nm), 0);
    timer_t tm;
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = notify_fn;
    ck_assert_int_eq(timer_create(CLOCK_MONOTONIC, &sev, &tm), 0);
    struct itimerspec its = {{0, 0}, {0, 5000000}};
    ck_assert_int_eq(timer_settime(tm, 0, &its, NULL), 0);
    pt_sleep_ms(60); /* the helper is blocked on nm by now */
    ck_assert_int_eq(atomic_load(&notify_done), 0);
    ck_assert_int_eq(pthread_mutex_unlock(&nm), 0);
    pt_join(t);
    for (int i = 0; i < 2000 && !atomic_load(&notify_done); i++)
        pt_sleep_ms(1);
    ck_assert_int_eq(atomic_load(&notify_done), 1);
    ck_assert_int_eq(counter, NITER + 1000L);
    timer_delete(tm);
}
END_TEST

START_TEST(before_runtime)
{
    /* The runtime has not started: the main thread is not a G yet. */
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    ck_assert_int_eq(pthread_mutex_lock(&m), 0);
    ck_assert_int_eq(pthread_mutex_trylock(&m), EBUSY);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 10);
    ck_assert_int_eq(pthread_mutex_timedlock(&m, &ts), ETIMEDOUT);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
    /* Held across the start of the runtime. */
    ck_assert_int_eq(pthread_mutex_lock(&m), 0);
    pthread_t t = pt_start(inc_worker, &m);
    pt_sleep_ms(10);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
    pt_join(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-mutex");
    PT_ADD(s, contended_counter);
    PT_ADD(s, contended_every_kind);
    PT_ADD(s, recursive_rules);
    PT_ADD(s, errorcheck_rules);
    PT_ADD(s, trylock_normal);
    PT_ADD(s, timed_and_clock_lock);
    PT_ADD(s, destroy_rules);
    PT_ADD(s, starvation_handoff);
    PT_ADD(s, delegated_kinds);
    PT_ADD(s, non_g_contender);
    PT_ADD(s, before_runtime);
    return s;
}

PT_MAIN(suite)
