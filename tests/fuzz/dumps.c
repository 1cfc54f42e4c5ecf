/*
 * dumps.c — live tracebacks while every thread churns: 32 threads take a
 * mutex, broadcast and wait on a condition variable and sleep now and
 * then, while the main thread sends the process SIGQUIT every 50 ms
 * (with VTHREAD_TRACEBACK=sigquit each one prints every thread's
 * backtrace).  A dump interrupts the runtime anywhere: it must neither
 * crash nor disturb the scheduler, and the program must end normally.
 * Exit 0 after ROUNDS signals and every worker joined.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 32
#define ROUNDS 20

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long turn;
static atomic_int stop;

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0; !atomic_load(&stop); i++) {
        pthread_mutex_lock(&m);
        turn++;
        pthread_cond_broadcast(&c);
        if (turn % 7 == id % 7 && !atomic_load(&stop))
            pthread_cond_wait(&c, &m);
        pthread_mutex_unlock(&m);
        if (i % 64 == 0) {
            struct timespec ts = {0, 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int main(void)
{
    pthread_t t[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    for (int r = 0; r < ROUNDS; r++) {
        usleep(50000);
        kill(getpid(), SIGQUIT);
    }
    usleep(50000);
    atomic_store(&stop, 1);
    pthread_mutex_lock(&m);
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    printf("dumps: %d tracebacks while %d threads churned\n", ROUNDS, WORKERS);
    return 0;
}
