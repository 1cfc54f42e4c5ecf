/*
 * test_signal.c — signals directed at Gs: pthread_kill of a parked G runs
 * the handler in that G (its pthread_self, its TLS) and its wait resumes
 * (sem_wait: EINTR; condvar: resumes), sleeps return EINTR with the time
 * left, pthread_sigqueue's value arrives, pthread_kill(t, 0) of a live or
 * finished-but-unjoined G is 0, a signal pending while the G blocks it is
 * reported by sigpending and delivered on unblock, sigtimedwait times out.
 */
#include <semaphore.h>
#include <signal.h>

#include "pl_test.h"

static __thread int my_idx = -1;
static volatile pthread_t h_self;
static volatile int h_idx, h_val;
static atomic_int h_count;

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    h_self = pthread_self();
    h_idx = my_idx;
    if (si->si_code == SI_QUEUE)
        h_val = si->si_value.sival_int;
    atomic_fetch_add(&h_count, 1);
}

static void install(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
}

static sem_t sem;
static atomic_int ready, sem_eintr;

static void *sem_waiter(void *a)
{
    my_idx = (int)(intptr_t)a;
    atomic_store(&ready, 1);
    while (sem_wait(&sem) != 0) {
        ck_assert_int_eq(errno, EINTR);
        atomic_fetch_add(&sem_eintr, 1);
    }
    return NULL;
}

START_TEST(kill_parked_g)
{
    install(SIGUSR1, SA_RESTART);
    ck_assert_int_eq(sem_init(&sem, 0, 0), 0);
    pthread_t t = pt_start(sem_waiter, (void *)7);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(10);
    for (int i = 0; i < 3; i++) {
        int before = atomic_load(&h_count);
        ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
        for (int k = 0; k < 2000 && atomic_load(&h_count) == before; k++)
            pt_sleep_ms(1);
        ck_assert_int_eq(atomic_load(&h_count), before + 1);
        ck_assert(pthread_equal(h_self, t));
        ck_assert_int_eq(h_idx, 7);
    }
    ck_assert_int_eq(pthread_kill(t, 0), 0);
    ck_assert_int_eq(pthread_kill(t, 12345), EINVAL);
    ck_assert_int_eq(sem_post(&sem), 0);
    pt_join(t);
    ck_assert_int_ge(atomic_load(&sem_eintr), 1);
}
END_TEST

static void *quick(void *a) { return a; }

START_TEST(kill_finished_unjoined)
{
    pthread_t t = pt_start(quick, NULL);
    pt_sleep_ms(20);
    ck_assert_int_eq(pthread_kill(t, 0), 0);
    pt_join(t);
}
END_TEST

static atomic_int sleep_rc = -2, sleep_left;
static void *sleeper(void *a)
{
    (void)a;
    atomic_store(&ready, 1);
    struct timespec ts = {100, 0}, rem = {0, 0};
    int r = nanosleep(&ts, &rem);
    atomic_store(&sleep_left, (int)rem.tv_sec);
    atomic_store(&sleep_rc, r == 0 ? 0 : errno);
    return NULL;
}

START_TEST(sleep_eintr)
{
    install(SIGUSR2, SA_RESTART);
    atomic_store(&ready, 0);
    pthread_t t = pt_start(sleeper, NULL);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(20);
    ck_assert_int_eq(pthread_kill(t, SIGUSR2), 0);
    pt_join(t);
    ck_assert_int_eq(atomic_load(&sleep_rc), EINTR);
    ck_assert_int_ge(atomic_load(&sleep_left), 90);
}
END_TEST

START_TEST(sigqueue_value)
{
    int sig = SIGRTMIN + 2;
    install(sig, 0);
    ck_assert_int_eq(sem_init(&sem, 0, 0), 0);
    atomic_store(&ready, 0);
    pthread_t t = pt_start(sem_waiter, (void *)3);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(10);
    int before = atomic_load(&h_count);
    union sigval v = {.sival_int = 4242};
    ck_assert_int_eq(pthread_sigqueue(t, sig, v), 0);
    for (int k = 0; k < 2000 && atomic_load(&h_count) == before; k++)
        pt_sleep_ms(1);
    ck_assert_int_eq(h_val, 4242);
    ck_assert_int_eq(h_idx, 3);
    sem_post(&sem);
    pt_join(t);
}
END_TEST

static sem_t go;
static void *masked(void *a)
{
    (void)a;
    my_idx = 9;
    sigset_t s, p;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
    atomic_store(&ready, 1);
    while (sem_wait(&go) != 0)
        ;
    int before = atomic_load(&h_count);
    ck_assert_int_eq(sigpending(&p), 0);
    ck_assert_int_eq(sigismember(&p, SIGUSR1), 1);
    ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);
    ck_assert_int_eq(atomic_load(&h_count), before + 1);
    ck_assert_int_eq(h_idx, 9);
    return NULL;
}

START_TEST(pending_while_blocked)
{
    install(SIGUSR1, SA_RESTART);
    ck_assert_int_eq(sem_init(&go, 0, 0), 0);
    atomic_store(&ready, 0);
    pthread_t t = pt_start(masked, NULL);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(10);
    ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
    pt_sleep_ms(10);
    sem_post(&go);
    pt_join(t);
}
END_TEST

static void *timed_waiter(void *a)
{
    (void)a;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 5);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
    struct timespec to = {0, 50000000};
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    errno = 0;
    ck_assert_int_eq(sigtimedwait(&s, NULL, &to), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_ge(pt_ms_since(t0), 49);
    return NULL;
}

static atomic_int other_ran;
static void *other(void *a)
{
    (void)a;
    atomic_store(&other_ran, 1);
    return NULL;
}

START_TEST(sigtimedwait_times_out)
{
    pthread_t t = pt_start(timed_waiter, NULL);
    pthread_t u = pt_start(other, NULL);
    pt_join(u);
    pt_join(t);
    ck_assert_int_eq(atomic_load(&other_ran), 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-signal");
    PT_ADD(s, kill_parked_g);
    PT_ADD(s, kill_finished_unjoined);
    PT_ADD(s, sleep_eintr);
    PT_ADD(s, sigqueue_value);
    PT_ADD(s, pending_while_blocked);
    PT_ADD(s, sigtimedwait_times_out);
    return s;
}

PT_MAIN(suite)
