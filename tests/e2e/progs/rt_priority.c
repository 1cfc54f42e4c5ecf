/*
 * rt_priority - real-time threads are woken highest priority first.
 *
 * Four SCHED_FIFO threads (priorities 10, 20, 30, 40, set by explicit-
 * scheduling attributes), started lowest first, block on a mutex the main
 * thread holds, then on a semaphore at 0.  Released one at a time (the
 * mutex unlocked, each taker unlocks it again; one sem_post per round),
 * they get them highest priority first, as the kernel's futex queues
 * order real-time waiters.  The same again with the priorities set later
 * by pthread_setschedparam.  A SCHED_FIFO thread waking from sleeps while
 * ordinary threads spin on every CPU runs at once (preemption).  Needs the privilege for SCHED_FIFO: without
 * it (EPERM, as natively) the test says so and checks only that.
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>

#define N 4
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sem_t sem;
static _Atomic int waiting, order_n, sem_n;
static int order[N], sem_order[N];

static _Atomic int turn; /* who may block next: workers go lowest first */
static void *worker(void *arg)
{
    int prio = (int)(intptr_t)arg, rank = prio / 10;
    WAIT_UNTIL(atomic_load(&turn) >= rank, 5000);
    atomic_fetch_add(&waiting, 1);
    CHECK_OK(pthread_mutex_lock(&mu));
    order[atomic_fetch_add(&order_n, 1)] = prio;
    CHECK_OK(pthread_mutex_unlock(&mu));
    WAIT_UNTIL(atomic_load(&turn) >= N + rank, 5000);
    atomic_fetch_add(&waiting, 1);
    while (sem_wait(&sem) != 0)
        CHECK_EQ(errno, EINTR);
    sem_order[atomic_fetch_add(&sem_n, 1)] = prio;
    return NULL;
}

static void run(const char *how, int explicit_attr)
{
    pthread_t t[N];
    atomic_store(&waiting, 0);
    atomic_store(&order_n, 0);
    atomic_store(&sem_n, 0);
    atomic_store(&turn, 0);
    CHECK_SYS(sem_init(&sem, 0, 0));
    CHECK_OK(pthread_mutex_lock(&mu));
    for (int i = 0; i < N; i++) {
        int prio = 10 * (i + 1);
        pthread_attr_t a;
        CHECK_OK(pthread_attr_init(&a));
        if (explicit_attr) {
            struct sched_param sp = {.sched_priority = prio};
            CHECK_OK(pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED));
            CHECK_OK(pthread_attr_setschedpolicy(&a, SCHED_FIFO));
            CHECK_OK(pthread_attr_setschedparam(&a, &sp));
        }
        CHECK_OK(pthread_create(&t[i], &a, worker, (void *)(intptr_t)prio));
        CHECK_OK(pthread_attr_destroy(&a));
        if (!explicit_attr) {
            struct sched_param sp = {.sched_priority = prio};
            CHECK_OK(pthread_setschedparam(t[i], SCHED_FIFO, &sp));
        }
    }
    /* block them on the mutex one after the other, lowest first */
    for (int i = 1; i <= N; i++) {
        atomic_store(&turn, i);
        WAIT_UNTIL(atomic_load(&waiting) == i, 5000);
        sleep_ms(30); /* asleep in pthread_mutex_lock */
    }
    CHECK_OK(pthread_mutex_unlock(&mu));
    WAIT_UNTIL(atomic_load(&order_n) == N, 5000);
    /* then on the semaphore, lowest first again */
    for (int i = 1; i <= N; i++) {
        atomic_store(&turn, N + i);
        WAIT_UNTIL(atomic_load(&waiting) == N + i, 5000);
        sleep_ms(30); /* asleep in sem_wait */
    }
    for (int i = 0; i < N; i++) {
        CHECK_SYS(sem_post(&sem));
        WAIT_UNTIL(atomic_load(&sem_n) == i + 1, 5000);
    }
    for (int i = 0; i < N; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    CHECK_SYS(sem_destroy(&sem));
    printf("%s: mutex taken in order", how);
    for (int i = 0; i < N; i++)
        printf(" %d", order[i]);
    printf("; semaphore in order");
    for (int i = 0; i < N; i++)
        printf(" %d", sem_order[i]);
    printf("\n");
}

/* ------------------------------------------------------------ preemption */
/* A SCHED_FIFO thread that wakes from a sleep while every CPU runs
 * ordinary threads that never block or call anything runs at once: the
 * kernel preempts one of them.  Median lateness of 30 sleeps of 2 ms;
 * natively some microseconds, bounded here at 5 ms (a machine's noise;
 * a runtime that waits for its time slice to end is late by ~10 ms). */
#define SPIN_ROUNDS 30
static _Atomic int spin_stop;
static void *spinner(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
        ;
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void *rt_sleeper(void *arg)
{
    long long *late = arg;
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        struct timespec t0, t1, d = {0, 2000000};
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_SYS(nanosleep(&d, NULL));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        late[i] = (t1.tv_sec - t0.tv_sec) * 1000000000LL +
                  (t1.tv_nsec - t0.tv_nsec) - 2000000;
    }
    return NULL;
}

static void preemption(void)
{
    cpu_set_t cs;
    CHECK_SYS(sched_getaffinity(0, sizeof cs, &cs));
    int nspin = CPU_COUNT(&cs) + 1;
    pthread_t sp[64];
    if (nspin > 64)
        nspin = 64;
    for (int i = 0; i < nspin; i++)
        CHECK_OK(pthread_create(&sp[i], NULL, spinner, NULL));
    struct timespec settle = {0, 20000000};
    nanosleep(&settle, NULL);
    pthread_attr_t a;
    struct sched_param prm = {.sched_priority = 50};
    CHECK_OK(pthread_attr_init(&a));
    CHECK_OK(pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED));
    CHECK_OK(pthread_attr_setschedpolicy(&a, SCHED_FIFO));
    CHECK_OK(pthread_attr_setschedparam(&a, &prm));
    static long long late[SPIN_ROUNDS];
    pthread_t t;
    CHECK_OK(pthread_create(&t, &a, rt_sleeper, late));
    CHECK_OK(pthread_join(t, NULL));
    atomic_store(&spin_stop, 1);
    for (int i = 0; i < nspin; i++)
        CHECK_OK(pthread_join(sp[i], NULL));
    qsort(late, SPIN_ROUNDS, sizeof late[0], cmp_ll);
    long long med = late[SPIN_ROUNDS / 2];
    fprintf(stderr, "rt_priority: %d spinners, SCHED_FIFO wake-up late by "
            "median %lld us, max %lld us\n", nspin, med / 1000,
            late[SPIN_ROUNDS - 1] / 1000);
    if (med > 5000000)
        FAIL("a SCHED_FIFO thread woke %lld us late (median) while "
             "ordinary threads spun on every CPU", med / 1000);
    printf("a real-time thread preempts spinning ordinary ones\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    alarm(30);
    /* privilege: SCHED_FIFO for the main thread's peers */
    pthread_attr_t a;
    pthread_t t;
    struct sched_param sp = {.sched_priority = 1};
    CHECK_OK(pthread_attr_init(&a));
    CHECK_OK(pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED));
    CHECK_OK(pthread_attr_setschedpolicy(&a, SCHED_FIFO));
    CHECK_OK(pthread_attr_setschedparam(&a, &sp));
    atomic_store(&turn, 2 * N);
    CHECK_SYS(sem_init(&sem, 0, 1));
    int r = pthread_create(&t, &a, worker, (void *)(intptr_t)1);
    if (r == EPERM) {
        printf("SCHED_FIFO needs a privilege we lack: EPERM, as natively\n");
        return 0;
    }
    CHECK_OK(r);
    CHECK_OK(pthread_join(t, NULL));
    CHECK_SYS(sem_destroy(&sem));
    run("explicit attributes", 1);
    run("pthread_setschedparam", 0);
    preemption();
    return 0;
}
