/*
 * barrier_sem_spin: pthread barriers (one PTHREAD_BARRIER_SERIAL_THREAD per
 * round, phases separated), POSIX unnamed semaphores (wait/post/trywait/
 * timedwait/clockwait/getvalue, a two-thread ping-pong, counting), and
 * spin locks.
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>

/* --------------------------------------------------------- barrier */

#define BN 8
#define ROUNDS 1000
static pthread_barrier_t bar;
static atomic_int serial_count[ROUNDS];
static atomic_int arrived;

static void *bar_fn(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        atomic_fetch_add(&arrived, 1);
        if ((r + id) % 97 == 0)
            sched_yield();
        int rc = pthread_barrier_wait(&bar);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&serial_count[r], 1);
        else if (rc != 0)
            FAIL("pthread_barrier_wait returned %d", rc);
        /* everyone of this round has arrived, nobody of the next yet
         * (they cannot pass the next barrier before we arrive there) */
        int a = atomic_load(&arrived);
        if (a < BN * (r + 1) || a > BN * (r + 2))
            FAIL("round %d: %d arrivals after the barrier", r, a);
    }
    return NULL;
}

static void test_barrier(void)
{
    pthread_barrier_t b0;
    CHECK_RC(pthread_barrier_init(&b0, NULL, 0), EINVAL);
    /* a barrier of one never blocks and always elects the caller */
    CHECK_OK(pthread_barrier_init(&b0, NULL, 1));
    CHECK_EQ(pthread_barrier_wait(&b0), PTHREAD_BARRIER_SERIAL_THREAD);
    CHECK_EQ(pthread_barrier_wait(&b0), PTHREAD_BARRIER_SERIAL_THREAD);
    CHECK_OK(pthread_barrier_destroy(&b0));

    pthread_t t[BN];
    CHECK_OK(pthread_barrier_init(&bar, NULL, BN));
    for (int i = 0; i < BN; i++)
        CHECK_OK(pthread_create(&t[i], NULL, bar_fn, (void *)(intptr_t)i));
    for (int i = 0; i < BN; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    for (int r = 0; r < ROUNDS; r++)
        if (atomic_load(&serial_count[r]) != 1)
            FAIL("round %d: %d serial threads", r,
                 atomic_load(&serial_count[r]));
    CHECK_OK(pthread_barrier_destroy(&bar));
    printf("barrier: %d threads x %d rounds, exactly one serial thread per "
           "round\n", BN, ROUNDS);
}

/* ------------------------------------------------------- semaphores */

static sem_t ping, pong;
#define PINGS 10000
static void *ponger(void *arg)
{
    (void)arg;
    for (int i = 0; i < PINGS; i++) {
        while (sem_wait(&ping) != 0)
            CHECK_EQ(errno, EINTR);
        CHECK_SYS(sem_post(&pong));
    }
    return NULL;
}

static sem_t items, slots;
static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;
static long q_sum;
static int q_n;
#define SEM_PROD 4
#define SEM_PER 5000

static void *sem_producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < SEM_PER; i++) {
        while (sem_wait(&slots) != 0)
            CHECK_EQ(errno, EINTR);
        CHECK_SYS(sem_post(&items));
    }
    return NULL;
}

static void *sem_consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < SEM_PER; i++) {
        while (sem_wait(&items) != 0)
            CHECK_EQ(errno, EINTR);
        CHECK_OK(pthread_mutex_lock(&qm));
        q_n++;
        q_sum += i;
        CHECK_OK(pthread_mutex_unlock(&qm));
        CHECK_SYS(sem_post(&slots));
    }
    return NULL;
}

static sem_t late;
static void *post_later(void *arg)
{
    (void)arg;
    sleep_ms(50);
    CHECK_SYS(sem_post(&late));
    return NULL;
}

static void test_sem(void)
{
    sem_t s;
    int v = -1;
    CHECK_SYS(sem_init(&s, 0, 3));
    CHECK_SYS(sem_getvalue(&s, &v));
    CHECK_EQ(v, 3);
    CHECK_SYS(sem_trywait(&s));
    CHECK_SYS(sem_wait(&s));
    struct timespec dl = deadline_in(CLOCK_REALTIME, 10000);
    CHECK_SYS(sem_timedwait(&s, &dl));
    CHECK_SYS(sem_getvalue(&s, &v));
    CHECK_EQ(v, 0);
    CHECK_ERRNO(sem_trywait(&s), EAGAIN);

    dl = deadline_in(CLOCK_REALTIME, 100);
    int64_t t0 = now_ns();
    CHECK_ERRNO(sem_timedwait(&s, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_REALTIME) >= ts_to_ns(&dl));

    dl = deadline_in(CLOCK_MONOTONIC, 100);
    t0 = now_ns();
    CHECK_ERRNO(sem_clockwait(&s, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_MONOTONIC) >= ts_to_ns(&dl));

    dl = deadline_in(CLOCK_REALTIME, -1000);
    CHECK_ERRNO(sem_timedwait(&s, &dl), ETIMEDOUT);
    dl.tv_nsec = -1;
    CHECK_ERRNO(sem_timedwait(&s, &dl), EINVAL);

    for (int i = 0; i < 5; i++)
        CHECK_SYS(sem_post(&s));
    CHECK_SYS(sem_getvalue(&s, &v));
    CHECK_EQ(v, 5);
    CHECK_SYS(sem_destroy(&s));

    /* a blocked sem_wait / sem_timedwait is woken by a post */
    pthread_t t;
    CHECK_SYS(sem_init(&late, 0, 0));
    CHECK_OK(pthread_create(&t, NULL, post_later, NULL));
    while (sem_wait(&late) != 0)
        CHECK_EQ(errno, EINTR);
    CHECK_OK(pthread_join(t, NULL));
    CHECK_OK(pthread_create(&t, NULL, post_later, NULL));
    dl = deadline_in(CLOCK_REALTIME, 30000);
    while (sem_timedwait(&late, &dl) != 0)
        CHECK_EQ(errno, EINTR);
    CHECK_OK(pthread_join(t, NULL));
    CHECK_SYS(sem_getvalue(&late, &v));
    CHECK_EQ(v, 0);
    CHECK_SYS(sem_destroy(&late));

    /* ping-pong */
    CHECK_SYS(sem_init(&ping, 0, 0));
    CHECK_SYS(sem_init(&pong, 0, 0));
    CHECK_OK(pthread_create(&t, NULL, ponger, NULL));
    for (int i = 0; i < PINGS; i++) {
        CHECK_SYS(sem_post(&ping));
        while (sem_wait(&pong) != 0)
            CHECK_EQ(errno, EINTR);
    }
    CHECK_OK(pthread_join(t, NULL));
    CHECK_SYS(sem_getvalue(&ping, &v));
    CHECK_EQ(v, 0);
    CHECK_SYS(sem_getvalue(&pong, &v));
    CHECK_EQ(v, 0);

    /* counting semaphores as a bounded queue */
    CHECK_SYS(sem_init(&items, 0, 0));
    CHECK_SYS(sem_init(&slots, 0, 4));
    pthread_t p[SEM_PROD], c[SEM_PROD];
    for (int i = 0; i < SEM_PROD; i++) {
        CHECK_OK(pthread_create(&p[i], NULL, sem_producer, NULL));
        CHECK_OK(pthread_create(&c[i], NULL, sem_consumer, NULL));
    }
    for (int i = 0; i < SEM_PROD; i++) {
        CHECK_OK(pthread_join(p[i], NULL));
        CHECK_OK(pthread_join(c[i], NULL));
    }
    CHECK_EQ(q_n, SEM_PROD * SEM_PER);
    CHECK_EQ(q_sum, (long)SEM_PROD * SEM_PER * (SEM_PER - 1) / 2);
    CHECK_SYS(sem_getvalue(&items, &v));
    CHECK_EQ(v, 0);
    CHECK_SYS(sem_getvalue(&slots, &v));
    CHECK_EQ(v, 4);
    printf("semaphores: getvalue/trywait EAGAIN/timedwait+clockwait "
           "ETIMEDOUT/EINVAL; %d ping-pongs; %d items through a counting "
           "queue\n", PINGS, q_n);
}

/* ------------------------------------------------------- spin locks */

#define SPIN_T 4
#define SPIN_ITERS 100000
static pthread_spinlock_t spin;
static long spin_counter;
static atomic_int spin_inside;

static void *spin_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < SPIN_ITERS; i++) {
        CHECK_OK(pthread_spin_lock(&spin));
        if (atomic_fetch_add(&spin_inside, 1) != 0)
            FAIL("two threads inside a spin lock");
        spin_counter++;
        atomic_fetch_add(&spin_inside, -1);
        CHECK_OK(pthread_spin_unlock(&spin));
    }
    return NULL;
}

static void test_spin(void)
{
    CHECK_OK(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE));
    CHECK_OK(pthread_spin_trylock(&spin));
    CHECK_RC(pthread_spin_trylock(&spin), EBUSY);
    CHECK_OK(pthread_spin_unlock(&spin));
    pthread_t t[SPIN_T];
    for (int i = 0; i < SPIN_T; i++)
        CHECK_OK(pthread_create(&t[i], NULL, spin_fn, NULL));
    for (int i = 0; i < SPIN_T; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    CHECK_EQ(spin_counter, (long)SPIN_T * SPIN_ITERS);
    CHECK_OK(pthread_spin_destroy(&spin));
    printf("spin lock: %d threads x %d = %ld\n", SPIN_T, SPIN_ITERS,
           spin_counter);
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_barrier();
    test_sem();
    test_spin();
    return 0;
}
