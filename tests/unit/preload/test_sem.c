/*
 * test_sem.c — unnamed semaphores under vthread (and named/pshared ones,
 * which go to glibc): counting under contention, error codes and errno,
 * timed waits, overflow.
 */
#include <fcntl.h>
#include <semaphore.h>

#include "pl_test.h"

static sem_t s;
static atomic_long taken;
enum { NP = 16, NC = 16, PER = 3000 };

static void *post_worker(void *unused)
{
    (void)unused;
    for (int i = 0; i < PER; i++) {
        ck_assert_int_eq(sem_post(&s), 0);
        if (i % 128 == 0)
            sched_yield();
    }
    return NULL;
}

static void *wait_worker(void *unused)
{
    (void)unused;
    for (int i = 0; i < PER; i++) {
        if (i % 3 == 0) {
            while (sem_trywait(&s) != 0) {
                ck_assert_int_eq(errno, EAGAIN);
                sched_yield();
            }
        } else if (i % 3 == 1) {
            ck_assert_int_eq(sem_wait(&s), 0);
        } else {
            struct timespec ts = pt_abs(CLOCK_REALTIME, 10000);
            ck_assert_int_eq(sem_timedwait(&s, &ts), 0);
        }
        atomic_fetch_add(&taken, 1);
    }
    return NULL;
}

static void counting(int pshared)
{
    ck_assert_int_eq(sem_init(&s, pshared, 0), 0);
    pthread_t t[NP + NC];
    for (int i = 0; i < NC; i++)
        t[i] = pt_start(wait_worker, NULL);
    for (int i = 0; i < NP; i++)
        t[NC + i] = pt_start(post_worker, NULL);
    for (int i = 0; i < NP + NC; i++)
        pt_join(t[i]);
    ck_assert_int_eq(atomic_load(&taken), (long)NC * PER);
    int v = -1;
    ck_assert_int_eq(sem_getvalue(&s, &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(sem_destroy(&s), 0);
}

START_TEST(counting_private) { counting(0); }
END_TEST
START_TEST(counting_pshared) { counting(1); }
END_TEST

START_TEST(errors)
{
    errno = 0;
    ck_assert_int_eq(sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(sem_init(&s, 0, SEM_VALUE_MAX), 0);
    ck_assert_int_eq(sem_post(&s), -1);
    ck_assert_int_eq(errno, EOVERFLOW);
    int v;
    sem_getvalue(&s, &v);
    ck_assert_int_eq(v, SEM_VALUE_MAX);

    ck_assert_int_eq(sem_init(&s, 0, 1), 0);
    /* glibc checks the timeout before taking a unit. */
    struct timespec bad = {0, 1000000000};
    ck_assert_int_eq(sem_timedwait(&s, &bad), -1);
    ck_assert_int_eq(errno, EINVAL);
    struct timespec ok = pt_abs(CLOCK_MONOTONIC, 10);
    ck_assert_int_eq(sem_clockwait(&s, CLOCK_BOOTTIME, &ok), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(sem_trywait(&s), 0);
    ck_assert_int_eq(sem_trywait(&s), -1);
    ck_assert_int_eq(errno, EAGAIN);

    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 20);
    ck_assert_int_eq(sem_timedwait(&s, &ts), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(pt_ms_since(t0), 19);
    ts = pt_abs(CLOCK_MONOTONIC, 20);
    ck_assert_int_eq(sem_clockwait(&s, CLOCK_MONOTONIC, &ts), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    struct timespec past = {-1, 0};
    ck_assert_int_eq(sem_timedwait(&s, &past), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(sem_destroy(&s), 0);
}
END_TEST

static sem_t *named;
static void *named_poster(void *unused)
{
    (void)unused;
    for (int i = 0; i < 100; i++) {
        sem_post(named);
        pt_sleep_ms(0);
    }
    return NULL;
}

START_TEST(named_semaphore)
{
    char name[64];
    snprintf(name, sizeof name, "/vthread-test-%d", (int)getpid());
    named = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    ck_assert_ptr_ne(named, SEM_FAILED);
    sem_unlink(name);
    pthread_t t = pt_start(named_poster, NULL);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(sem_wait(named), 0);
    pt_join(t);
    ck_assert_int_eq(sem_trywait(named), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(sem_close(named), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *su = suite_create("preload-sem");
    PT_ADD(su, counting_private);
    PT_ADD(su, counting_pshared);
    PT_ADD(su, errors);
    PT_ADD(su, named_semaphore);
    return su;
}

PT_MAIN(suite)
