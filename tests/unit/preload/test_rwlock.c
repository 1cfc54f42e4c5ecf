/*
 * test_rwlock.c — pthread_rwlock_* under vthread: exclusion invariants
 * under contention, concurrent readers, both preferences, EDEADLK, EBUSY,
 * EAGAIN on reader overflow, timed variants, writer time-out clean-up,
 * delegated process-shared locks.
 */
#include "pl_test.h"

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int readers_in, writers_in, max_readers;
static long shared_value;

enum { NT = 32, ITER = 2000 };

static void *mixed(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < ITER; i++) {
        if ((i + id) % 8 == 0) {
            ck_assert_int_eq(pthread_rwlock_wrlock(&rw), 0);
            ck_assert_int_eq(atomic_fetch_add(&writers_in, 1), 0);
            ck_assert_int_eq(atomic_load(&readers_in), 0);
            shared_value++;
            if (i % 64 == 0)
                sched_yield();
            atomic_fetch_sub(&writers_in, 1);
            ck_assert_int_eq(pthread_rwlock_unlock(&rw), 0);
        } else {
            ck_assert_int_eq(pthread_rwlock_rdlock(&rw), 0);
            int n = atomic_fetch_add(&readers_in, 1) + 1;
            int mx = atomic_load(&max_readers);
            while (n > mx && !atomic_compare_exchange_weak(&max_readers, &mx, n))
                ;
            ck_assert_int_eq(atomic_load(&writers_in), 0);
            if (i % 16 == 0)
                sched_yield();
            atomic_fetch_sub(&readers_in, 1);
            ck_assert_int_eq(pthread_rwlock_unlock(&rw), 0);
        }
    }
    return NULL;
}

static void run_mixed(int kind)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, kind);
    ck_assert_int_eq(pthread_rwlock_init(&rw, &a), 0);
    shared_value = 0;
    pt_run(NT, mixed);
    long writes = 0;
    for (int id = 0; id < NT; id++)
        for (int i = 0; i < ITER; i++)
            writes += (i + id) % 8 == 0;
    ck_assert_int_eq(shared_value, writes);
    ck_assert_int_gt(atomic_load(&max_readers), 1);
    ck_assert_int_eq(pthread_rwlock_destroy(&rw), 0);
}

START_TEST(mixed_prefer_reader) { run_mixed(PTHREAD_RWLOCK_PREFER_READER_NP); }
END_TEST
START_TEST(mixed_prefer_writer)
{
    run_mixed(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
}
END_TEST

/* Try for a read lock; release it at once if taken. */
static void *try_rd(void *l)
{
    int r = pthread_rwlock_tryrdlock(l);
    if (r == 0)
        pthread_rwlock_unlock(l);
    return (void *)(intptr_t)r;
}
static void *try_wr(void *l) { return (void *)(intptr_t)pthread_rwlock_trywrlock(l); }
static void *rd_and_unlock(void *l)
{
    int r = pthread_rwlock_rdlock(l);
    if (r == 0)
        pthread_rwlock_unlock(l);
    return (void *)(intptr_t)r;
}

START_TEST(errors)
{
    pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    ck_assert_int_eq(pthread_rwlock_wrlock(&l), 0);
    ck_assert_int_eq(pthread_rwlock_wrlock(&l), EDEADLK);
    ck_assert_int_eq(pthread_rwlock_rdlock(&l), EDEADLK);
    ck_assert_int_eq(pthread_rwlock_trywrlock(&l), EBUSY);
    ck_assert_int_eq((intptr_t)pt_join(pt_start(try_rd, &l)), EBUSY);
    ck_assert_int_eq((intptr_t)pt_join(pt_start(try_wr, &l)), EBUSY);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 10);
    ck_assert_int_eq(pthread_rwlock_timedwrlock(&l, &ts), EDEADLK);
    ck_assert_int_eq(pthread_rwlock_unlock(&l), 0);

    ck_assert_int_eq(pthread_rwlock_rdlock(&l), 0);
    ck_assert_int_eq(pthread_rwlock_rdlock(&l), 0); /* recursive read */
    ck_assert_int_eq((intptr_t)pt_join(pt_start(try_rd, &l)), 0);
    ck_assert_int_eq((intptr_t)pt_join(pt_start(try_wr, &l)), EBUSY);
    ck_assert_int_eq(pthread_rwlock_unlock(&l), 0);
    ck_assert_int_eq(pthread_rwlock_unlock(&l), 0);

    /* Timeouts: glibc checks them first, even when the lock is free. */
    struct timespec bad = {0, 1000000000};
    ck_assert_int_eq(pthread_rwlock_timedrdlock(&l, &bad), EINVAL);
    ck_assert_int_eq(pthread_rwlock_timedwrlock(&l, &bad), EINVAL);
    ck_assert_int_eq(pthread_rwlock_clockrdlock(&l, CLOCK_BOOTTIME, &ts),
                     EINVAL);
    ck_assert_int_eq(pthread_rwlock_clockwrlock(&l, 12345, &ts), EINVAL);

    /* Reader overflow (white box: our reader count in __readers). */
    l.__data.__readers = 0x0fffffffu << 3;
    ck_assert_int_eq(pthread_rwlock_tryrdlock(&l), EAGAIN);
    ck_assert_int_eq(pthread_rwlock_rdlock(&l), EAGAIN);
    l.__data.__readers = 0;
    ck_assert_int_eq(pthread_rwlock_destroy(&l), 0);
}
END_TEST

static void *hold_read(void *l)
{
    ck_assert_int_eq(pthread_rwlock_rdlock(l), 0);
    pt_sleep_ms(150);
    ck_assert_int_eq(pthread_rwlock_unlock(l), 0);
    return NULL;
}

START_TEST(timed)
{
    pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    pthread_t t = pt_start(hold_read, &l);
    pt_sleep_ms(20);
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 20);
    ck_assert_int_eq(pthread_rwlock_timedwrlock(&l, &ts), ETIMEDOUT);
    ck_assert_int_ge(pt_ms_since(t0), 19);
    ts = pt_abs(CLOCK_MONOTONIC, 20);
    ck_assert_int_eq(pthread_rwlock_clockwrlock(&l, CLOCK_MONOTONIC, &ts),
                     ETIMEDOUT);
    struct timespec past = {-5, 0};
    ck_assert_int_eq(pthread_rwlock_timedwrlock(&l, &past), ETIMEDOUT);
    /* Readers still get in. */
    ts = pt_abs(CLOCK_REALTIME, 20);
    ck_assert_int_eq(pthread_rwlock_timedrdlock(&l, &ts), 0);
    ck_assert_int_eq(pthread_rwlock_unlock(&l), 0);
    ts = pt_abs(CLOCK_MONOTONIC, 5000);
    ck_assert_int_eq(pthread_rwlock_clockwrlock(&l, CLOCK_MONOTONIC, &ts), 0);
    ck_assert_int_eq(pthread_rwlock_unlock(&l), 0);
    pt_join(t);
}
END_TEST

static void *wait_write(void *l)
{
    ck_assert_int_eq(pthread_rwlock_wrlock(l), 0);
    ck_assert_int_eq(pthread_rwlock_unlock(l), 0);
    return NULL;
}

START_TEST(preferences)
{
    /* Writer preference: a waiting writer holds new readers back. */
    pthread_rwlock_t l = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    ck_assert_int_eq(pthread_rwlock_rdlock(&l), 0);
    pthread_t w = pt_start(wait_write, &l);
    pt_sleep_ms(30);
    ck_assert_int_eq((intptr_t)pt_join(pt_start(try_rd, &l)), EBUSY);
    ck_assert_int_eq(pthread_rwlock_unlock(&l), 0);
    pt_join(w);

    /* Reader preference (default, and PREFER_WRITER_NP like glibc). */
    for (int k = 0; k < 2; k++) {
        pthread_rwlockattr_t a;
        pthread_rwlockattr_init(&a);
        pthread_rwlockattr_setkind_np(&a, k ? PTHREAD_RWLOCK_PREFER_WRITER_NP
                                            : PTHREAD_RWLOCK_PREFER_READER_NP);
        pthread_rwlock_t r;
        pthread_rwlock_init(&r, &a);
        ck_assert_int_eq(pthread_rwlock_rdlock(&r), 0);
        w = pt_start(wait_write, &r);
        pt_sleep_ms(30);
        ck_assert_int_eq((intptr_t)pt_join(pt_start(try_rd, &r)), 0);
        ck_assert_int_eq(pthread_rwlock_unlock(&r), 0);
        pt_join(w);
    }
}
END_TEST

struct wt_arg {
    pthread_rwlock_t *l;
    int result;
};
static void *timed_writer(void *p)
{
    struct wt_arg *a = p;
    struct timespec ts = pt_abs(CLOCK_REALTIME, 60);
    a->result = pthread_rwlock_timedwrlock(a->l, &ts);
    return NULL;
}

START_TEST(writer_gives_up)
{
    pthread_rwlock_t l = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    ck_assert_int_eq(pthread_rwlock_rdlock(&l), 0);
    struct wt_arg a = {&l, -1};
    pthread_t w = pt_start(timed_writer, &a);
    pt_sleep_ms(20);
    /* Blocked behind the waiting writer... */
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    pthread_t r = pt_start(rd_and_unlock, &l);
    /* ...until it times out, although we keep our read lock. */
    ck_assert_int_eq((intptr_t)pt_join(r), 0);
    ck_assert_int_lt(pt_ms_since(t0), 2000);
    pt_join(w);
    ck_assert_int_eq(a.result, ETIMEDOUT);
    ck_assert_int_eq(pthread_rwlock_unlock(&l), 0);
    ck_assert_int_eq(pthread_rwlock_trywrlock(&l), 0);
    ck_assert_int_eq(pthread_rwlock_unlock(&l), 0);
}
END_TEST

static pthread_rwlock_t prw;
static void *pshared_worker(void *unused)
{
    (void)unused;
    for (int i = 0; i < 1000; i++) {
        pthread_rwlock_wrlock(&prw);
        shared_value++;
        pthread_rwlock_unlock(&prw);
        pthread_rwlock_rdlock(&prw);
        pthread_rwlock_unlock(&prw);
    }
    return NULL;
}

START_TEST(delegated_pshared)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    ck_assert_int_eq(pthread_rwlock_init(&prw, &a), 0);
    shared_value = 0;
    pt_run(8, pshared_worker);
    ck_assert_int_eq(shared_value, 8000);
    ck_assert_int_eq(pthread_rwlock_destroy(&prw), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-rwlock");
    PT_ADD(s, mixed_prefer_reader);
    PT_ADD(s, mixed_prefer_writer);
    PT_ADD(s, errors);
    PT_ADD(s, timed);
    PT_ADD(s, preferences);
    PT_ADD(s, writer_gives_up);
    PT_ADD(s, delegated_pshared);
    return s;
}

PT_MAIN(suite)
