/*
 * lostwakeup.c — a lost wake-up: the waiter waits on the condition
 * variable without a predicate, so a signal sent before it waits is lost
 * and it waits for ever (and main with it, in pthread_join).  Natively
 * the waiter has long been waiting when main signals: main first works
 * for 5 ms.
 * With -DFIXED the waiter waits for a flag, in a loop, as it should.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static bool done;

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
#ifdef FIXED
    while (!done)
        pthread_cond_wait(&ready, &lock);
#else
    pthread_cond_wait(&ready, &lock);
#endif
    pthread_mutex_unlock(&lock);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    /* some work before telling the waiter (no synchronisation in it) */
    volatile unsigned long x = 0;
    for (double end = now() + 0.005; now() < end;)
        x++;
    pthread_mutex_lock(&lock);
    done = true;
    pthread_cond_signal(&ready);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    return 0;
}
