/*
 * mutex_robust_pi: robust mutexes whose owner thread exits while holding
 * them (the next lock or trylock returns EOWNERDEAD, consistent makes the
 * mutex usable again), and priority-inheritance mutexes (plain, robust,
 * errorcheck, recursive) under contention from several threads.
 */
#include "e2e.h"

#include <pthread.h>
#include <semaphore.h>

static pthread_mutex_t rm;
static sem_t locked;

static void *dier(void *arg)
{
    CHECK_OK(pthread_mutex_lock(&rm));
    CHECK_SYS(sem_post(&locked));
    if (arg)
        sleep_ms(50); /* the main thread is waiting for the lock by now */
    return NULL;      /* exits holding it */
}

static void test_robust(void)
{
    pthread_mutexattr_t a;
    CHECK_OK(pthread_mutexattr_init(&a));
    CHECK_OK(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST));
    CHECK_OK(pthread_mutex_init(&rm, &a));
    CHECK_SYS(sem_init(&locked, 0, 0));
    pthread_t t;
    /* a waiter blocked when the owner exits */
    CHECK_OK(pthread_create(&t, NULL, dier, (void *)1));
    while (sem_wait(&locked) != 0)
        CHECK_EQ(errno, EINTR);
    CHECK_RC(pthread_mutex_lock(&rm), EOWNERDEAD);
    CHECK_OK(pthread_mutex_consistent(&rm));
    CHECK_OK(pthread_mutex_unlock(&rm));
    CHECK_OK(pthread_mutex_lock(&rm));
    CHECK_OK(pthread_mutex_unlock(&rm));
    CHECK_OK(pthread_join(t, NULL));
    /* nobody waiting: the next trylock finds the owner dead */
    CHECK_OK(pthread_create(&t, NULL, dier, NULL));
    CHECK_OK(pthread_join(t, NULL));
    CHECK_RC(pthread_mutex_trylock(&rm), EOWNERDEAD);
    /* not made consistent: unusable from now on */
    CHECK_OK(pthread_mutex_unlock(&rm));
    CHECK_RC(pthread_mutex_lock(&rm), ENOTRECOVERABLE);
    CHECK_OK(pthread_mutex_destroy(&rm));
    printf("robust: EOWNERDEAD for a waiter and for trylock, "
           "consistent, ENOTRECOVERABLE\n");
}

enum { NT = 4, ITERS = 20000 };
static pthread_mutex_t pm;
static long counter;

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        CHECK_OK(pthread_mutex_lock(&pm));
        counter++;
        if (i % 2000 == 0)
            sleep_ms(1); /* others pile up on the lock */
        CHECK_OK(pthread_mutex_unlock(&pm));
    }
    return NULL;
}

static void test_pi(int type, int robust, const char *name)
{
    pthread_mutexattr_t a;
    CHECK_OK(pthread_mutexattr_init(&a));
    CHECK_OK(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT));
    CHECK_OK(pthread_mutexattr_settype(&a, type));
    CHECK_OK(pthread_mutexattr_setrobust(&a, robust));
    CHECK_OK(pthread_mutex_init(&pm, &a));
    int proto = -1;
    CHECK_OK(pthread_mutexattr_getprotocol(&a, &proto));
    CHECK_EQ(proto, PTHREAD_PRIO_INHERIT);
    counter = 0;
    pthread_t t[NT];
    for (int i = 0; i < NT; i++)
        CHECK_OK(pthread_create(&t[i], NULL, worker, NULL));
    for (int i = 0; i < NT; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    CHECK_EQ(counter, (long)NT * ITERS);
    CHECK_OK(pthread_mutex_lock(&pm));
    if (type == PTHREAD_MUTEX_ERRORCHECK)
        CHECK_RC(pthread_mutex_lock(&pm), EDEADLK);
    if (type == PTHREAD_MUTEX_RECURSIVE) {
        CHECK_OK(pthread_mutex_lock(&pm));
        CHECK_OK(pthread_mutex_unlock(&pm));
    }
    CHECK_OK(pthread_mutex_unlock(&pm));
    if (type != PTHREAD_MUTEX_NORMAL)
        CHECK_RC(pthread_mutex_unlock(&pm), EPERM);
    CHECK_OK(pthread_mutex_destroy(&pm));
    printf("priority inheritance, %s: %d threads x %d locked increments\n",
           name, NT, ITERS);
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_robust();
    test_pi(PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_STALLED, "normal");
    test_pi(PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ROBUST, "robust");
    test_pi(PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_STALLED, "errorcheck");
    test_pi(PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_STALLED, "recursive");
    return 0;
}
