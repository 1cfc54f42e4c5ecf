/*
 * blocked.c — 36 threads, each blocked in one of six ways (6 each, named
 * after it): pthread_cond_wait, nanosleep, read from an empty pipe,
 * pthread_mutex_lock of a held mutex, pthread_join of a thread that never
 * ends (in pause()), sem_wait.  Prints "ready" once every one is blocked (a moment
 * after it got there), then the main thread waits in pthread_join.  The
 * test (run.sh) attaches gdb, makes a core with gcore and kills it; alarm
 * ends it after 120 s if nothing does.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define EACH 6

static pthread_mutex_t cv_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static sem_t sem;
static int pipefd[2];
static atomic_int started;
static pthread_t forever_t[EACH]; /* one each: a second joiner is EINVAL */
static atomic_int joiners;

static void *cv_waiter(void *a)
{
    pthread_mutex_lock(&cv_mu);
    started++;
    for (;;)
        pthread_cond_wait(&cv, &cv_mu);
    return a;
}

static void *sleeper(void *a)
{
    started++;
    struct timespec ts = {1000, 0};
    for (;;)
        nanosleep(&ts, NULL);
    return a;
}

static void *pipe_reader(void *a)
{
    char c;
    started++;
    for (;;)
        if (read(pipefd[0], &c, 1) <= 0)
            break;
    return a;
}

static void *locker(void *a)
{
    started++;
    pthread_mutex_lock(&held);
    return a;
}

static void *forever(void *a)
{
    pause();
    return a;
}

static void *joiner(void *a)
{
    int i = joiners++;
    started++;
    pthread_join(forever_t[i], NULL);
    return a;
}

static void *sem_waiter(void *a)
{
    started++;
    sem_wait(&sem);
    return a;
}

int main(void)
{
    alarm(120);
    sem_init(&sem, 0, 0);
    if (pipe(pipefd) != 0)
        return 1;
    pthread_mutex_lock(&held);
    for (int i = 0; i < EACH; i++) {
        char name[16];
        pthread_create(&forever_t[i], NULL, forever, NULL);
        snprintf(name, sizeof name, "forever-%d", i);
        pthread_setname_np(forever_t[i], name);
    }
    struct {
        const char *name;
        void *(*fn)(void *);
    } kinds[] = {{"cv", cv_waiter},     {"sleep", sleeper},
                 {"pipe", pipe_reader}, {"mutex", locker},
                 {"join", joiner},      {"sem", sem_waiter}};
    pthread_t t[6 * EACH];
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < EACH; i++) {
            pthread_t *p = &t[k * EACH + i];
            if (pthread_create(p, NULL, kinds[k].fn, NULL) != 0)
                return 1;
            char name[16];
            snprintf(name, sizeof name, "%s-%d", kinds[k].name, i);
            pthread_setname_np(*p, name);
        }
    while (started < 6 * EACH)
        usleep(1000);
    usleep(200000); /* each reaches its blocking call */
    printf("ready\n");
    fflush(stdout);
    pthread_join(t[0], NULL);
    return 0;
}
