/*
 * blocked.c — 36 named threads blocked in six different ways for about
 * 200 ms, then released and joined: material for tests/trace/run.sh,
 * which checks that the execution trace shows each of them run, park
 * with its reason, and be woken.
 *
 * Six of each: pthread_cond_wait, usleep, read on a pipe,
 * pthread_mutex_lock on a held mutex, pthread_join of a thread that
 * waits (that thread is one of the cond waiters), sem_wait.  Prints one
 * line and exits 0 when all went as planned.
 *
 * "blocked fork": then forks a child that makes a thread of its own and
 * ends with exit (atexit handlers run: the trace writer must not).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EACH 6

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int go;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static int pipes[EACH][2];
static sem_t sem;
static pthread_t cond_th[EACH];

static void name_self(const char *kind, long i)
{
    char n[16];
    snprintf(n, sizeof n, "%s-%ld", kind, i);
    pthread_setname_np(pthread_self(), n);
}

static void *cond_waiter(void *arg)
{
    name_self("cond", (long)arg);
    pthread_mutex_lock(&m);
    while (!go)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

static void *sleeper(void *arg)
{
    name_self("sleep", (long)arg);
    usleep(200000);
    return NULL;
}

static void *reader(void *arg)
{
    long i = (long)arg;
    name_self("read", i);
    char b;
    return read(pipes[i][0], &b, 1) == 1 ? NULL : (void *)1;
}

static void *locker(void *arg)
{
    name_self("mutex", (long)arg);
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    return NULL;
}

static void *joiner(void *arg)
{
    long i = (long)arg;
    name_self("join", i);
    return pthread_join(cond_th[i], NULL) == 0 ? NULL : (void *)1;
}

static void *sem_waiter(void *arg)
{
    name_self("sem", (long)arg);
    return sem_wait(&sem) == 0 ? NULL : (void *)1;
}

static void *nothing(void *arg) { return arg; }

int main(int argc, char **argv)
{
    pthread_t th[5][EACH];
    void *(*fn[5])(void *) = {sleeper, reader, locker, joiner, sem_waiter};
    sem_init(&sem, 0, 0);
    pthread_mutex_lock(&held);
    for (long i = 0; i < EACH; i++) {
        if (pipe(pipes[i]) != 0)
            return 1;
        if (pthread_create(&cond_th[i], NULL, cond_waiter, (void *)i))
            return 1;
    }
    for (int k = 0; k < 5; k++)
        for (long i = 0; i < EACH; i++)
            if (pthread_create(&th[k][i], NULL, fn[k], (void *)i))
                return 1;
    usleep(200000);
    pthread_mutex_lock(&m);
    go = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    for (int i = 0; i < EACH; i++) {
        if (write(pipes[i][1], "x", 1) != 1)
            return 1;
        sem_post(&sem);
    }
    pthread_mutex_unlock(&held);
    int bad = 0;
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < EACH; i++) {
            void *r;
            if (pthread_join(th[k][i], &r) || r)
                bad++;
        }
    printf("blocked: %d threads released and joined, %d failures\n",
           6 * EACH, bad);
    if (argc > 1 && !strcmp(argv[1], "fork")) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            pthread_t t;
            if (pthread_create(&t, NULL, nothing, NULL) || pthread_join(t, NULL))
                _exit(1);
            exit(0);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
            bad++;
        printf("blocked: the child of a fork exited with status %d\n",
               pid > 0 ? st : -1);
    }
    return bad != 0;
}
