/*
 * test_key.c — pthread keys under vthread: per-thread values across many
 * Gs, destructors (rounds, order with NULL values), delete/re-create
 * sequence numbers, EINVAL/EAGAIN, values set before the runtime starts.
 */
#include "pl_test.h"

static pthread_key_t k1, k2;
static atomic_int dtor_calls;

static void dtor_count(void *v)
{
    ck_assert_ptr_nonnull(v);
    atomic_fetch_add(&dtor_calls, 1);
}

static void *per_thread(void *arg)
{
    intptr_t id = (intptr_t)arg + 1;
    ck_assert_ptr_null(pthread_getspecific(k1));
    ck_assert_int_eq(pthread_setspecific(k1, (void *)id), 0);
    for (int i = 0; i < 50; i++) {
        sched_yield(); /* migrate between Ms */
        ck_assert_ptr_eq(pthread_getspecific(k1), (void *)id);
    }
    return NULL;
}

START_TEST(per_g_values_and_destructors)
{
    ck_assert_int_eq(pthread_key_create(&k1, dtor_count), 0);
    pt_run(200, per_thread);
    ck_assert_int_eq(atomic_load(&dtor_calls), 200);
    ck_assert_ptr_null(pthread_getspecific(k1));
}
END_TEST

/* A destructor that stores a value again is called again, up to
 * PTHREAD_DESTRUCTOR_ITERATIONS rounds. */
static void dtor_again(void *v)
{
    atomic_fetch_add(&dtor_calls, 1);
    pthread_setspecific(k2, v); /* forever */
}
static void *set_k2(void *unused)
{
    (void)unused;
    pthread_setspecific(k2, (void *)1);
    return NULL;
}

START_TEST(destructor_rounds)
{
    ck_assert_int_eq(pthread_key_create(&k2, dtor_again), 0);
    pt_join(pt_start(set_k2, NULL));
    ck_assert_int_eq(atomic_load(&dtor_calls), PTHREAD_DESTRUCTOR_ITERATIONS);
}
END_TEST

static void *exit_with_value(void *unused)
{
    (void)unused;
    pthread_setspecific(k1, (void *)7);
    pthread_exit(NULL);
}

START_TEST(destructor_on_pthread_exit)
{
    ck_assert_int_eq(pthread_key_create(&k1, dtor_count), 0);
    pt_join(pt_start(exit_with_value, NULL));
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
}
END_TEST

START_TEST(delete_and_recreate)
{
    pthread_key_t k;
    ck_assert_int_eq(pthread_key_create(&k, NULL), 0);
    ck_assert_int_eq(pthread_setspecific(k, (void *)5), 0);
    ck_assert_ptr_eq(pthread_getspecific(k), (void *)5);
    ck_assert_int_eq(pthread_key_delete(k), 0);
    ck_assert_int_eq(pthread_key_delete(k), EINVAL);
    ck_assert_int_eq(pthread_setspecific(k, (void *)5), EINVAL);
    ck_assert_int_eq(pthread_key_delete(PTHREAD_KEYS_MAX), EINVAL);
    ck_assert_int_eq(pthread_setspecific(PTHREAD_KEYS_MAX + 3, NULL), EINVAL);
    pthread_key_t k2b;
    ck_assert_int_eq(pthread_key_create(&k2b, NULL), 0);
    ck_assert_int_eq(k2b, k); /* the slot is reused... */
    ck_assert_ptr_null(pthread_getspecific(k2b)); /* ...without old value */
}
END_TEST

START_TEST(key_limit)
{
    static pthread_key_t keys[PTHREAD_KEYS_MAX + 1];
    int n = 0;
    int err;
    while ((err = pthread_key_create(&keys[n], NULL)) == 0)
        n++;
    ck_assert_int_eq(err, EAGAIN);
    ck_assert_int_le(n, PTHREAD_KEYS_MAX);
    ck_assert_int_ge(n, PTHREAD_KEYS_MAX - 16);
    /* The highest key works (second-level blocks). */
    ck_assert_int_eq(pthread_setspecific(keys[n - 1], (void *)3), 0);
    ck_assert_ptr_eq(pthread_getspecific(keys[n - 1]), (void *)3);
    ck_assert_int_eq(pthread_key_delete(keys[0]), 0);
    ck_assert_int_eq(pthread_key_create(&keys[0], NULL), 0);
}
END_TEST

static void *read_k1(void *unused)
{
    (void)unused;
    return pthread_getspecific(k1);
}

START_TEST(value_set_before_runtime)
{
    /* The main thread is not a G yet; it becomes the first G at the first
     * pthread_create and keeps its values. */
    ck_assert_int_eq(pthread_key_create(&k1, NULL), 0);
    ck_assert_int_eq(pthread_setspecific(k1, (void *)42), 0);
    ck_assert_ptr_null(pt_join(pt_start(read_k1, NULL)));
    ck_assert_ptr_eq(pthread_getspecific(k1), (void *)42);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-key");
    PT_ADD(s, per_g_values_and_destructors);
    PT_ADD(s, destructor_rounds);
    PT_ADD(s, destructor_on_pthread_exit);
    PT_ADD(s, delete_and_recreate);
    PT_ADD(s, key_limit);
    PT_ADD(s, value_set_before_runtime);
    return s;
}

PT_MAIN(suite)
