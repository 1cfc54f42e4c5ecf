/*
 * rwlock: reader/writer exclusion invariants under load, concurrent
 * readers, try/timed/clock variants, and glibc's EDEADLK for a writer that
 * relocks.
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>

static void semwait(sem_t *s)
{
    while (sem_wait(s) != 0)
        CHECK_EQ(errno, EINTR);
}

/* ------------------------------------------------------- invariants */

#define NREAD 6
#define NWRITE 2
#define RITERS 20000
#define WITERS 5000
#define NDATA 16

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int readers_in, writers_in, max_readers;
static long data[NDATA];
static long writes_done;

static void *reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < RITERS; i++) {
        CHECK_OK(pthread_rwlock_rdlock(&rw));
        int r = atomic_fetch_add(&readers_in, 1) + 1;
        int m = atomic_load(&max_readers);
        while (r > m && !atomic_compare_exchange_weak(&max_readers, &m, r))
            ;
        if (atomic_load(&writers_in) != 0)
            FAIL("reader inside while a writer is inside");
        long v = data[0];
        if ((i & 255) == 0)
            sched_yield();
        for (int k = 1; k < NDATA; k++)
            if (data[k] != v)
                FAIL("reader saw a torn write: %ld vs %ld", data[k], v);
        atomic_fetch_add(&readers_in, -1);
        CHECK_OK(pthread_rwlock_unlock(&rw));
    }
    return NULL;
}

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < WITERS; i++) {
        CHECK_OK(pthread_rwlock_wrlock(&rw));
        if (atomic_fetch_add(&writers_in, 1) != 0)
            FAIL("two writers inside");
        if (atomic_load(&readers_in) != 0)
            FAIL("writer inside while readers are inside");
        long v = data[0] + 1;
        for (int k = 0; k < NDATA; k++) {
            data[k] = v;
            if (k == NDATA / 2 && (i & 63) == 0)
                sched_yield();
        }
        writes_done++;
        atomic_fetch_add(&writers_in, -1);
        CHECK_OK(pthread_rwlock_unlock(&rw));
    }
    return NULL;
}

static void test_invariants(void)
{
    pthread_t r[NREAD], w[NWRITE];
    for (int i = 0; i < NREAD; i++)
        CHECK_OK(pthread_create(&r[i], NULL, reader, NULL));
    for (int i = 0; i < NWRITE; i++)
        CHECK_OK(pthread_create(&w[i], NULL, writer, NULL));
    for (int i = 0; i < NREAD; i++)
        CHECK_OK(pthread_join(r[i], NULL));
    for (int i = 0; i < NWRITE; i++)
        CHECK_OK(pthread_join(w[i], NULL));
    CHECK_EQ(writes_done, NWRITE * WITERS);
    CHECK_EQ(data[0], NWRITE * WITERS);
    CHECK_EQ(data[NDATA - 1], NWRITE * WITERS);
    printf("invariants: %d readers x %d, %d writers x %d; no overlap, no "
           "torn reads; final value %ld\n", NREAD, RITERS, NWRITE, WITERS,
           data[0]);
}

/* -------------------------------------------- helper holding a lock */

enum op { OP_RD, OP_WR, OP_UNLOCK, OP_TRYRD, OP_TRYWR, OP_QUIT };
struct helper {
    pthread_t t;
    sem_t go, done;
    enum op op;
    pthread_rwlock_t *l;
    int rc;
};

static void *helper_fn(void *arg)
{
    struct helper *h = arg;
    for (;;) {
        semwait(&h->go);
        switch (h->op) {
        case OP_RD: h->rc = pthread_rwlock_rdlock(h->l); break;
        case OP_WR: h->rc = pthread_rwlock_wrlock(h->l); break;
        case OP_UNLOCK: h->rc = pthread_rwlock_unlock(h->l); break;
        case OP_TRYRD: h->rc = pthread_rwlock_tryrdlock(h->l); break;
        case OP_TRYWR: h->rc = pthread_rwlock_trywrlock(h->l); break;
        case OP_QUIT: return NULL;
        }
        CHECK_SYS(sem_post(&h->done));
    }
}

static void helper_start(struct helper *h)
{
    CHECK_SYS(sem_init(&h->go, 0, 0));
    CHECK_SYS(sem_init(&h->done, 0, 0));
    CHECK_OK(pthread_create(&h->t, NULL, helper_fn, h));
}

static int helper_do(struct helper *h, enum op op, pthread_rwlock_t *l)
{
    h->op = op;
    h->l = l;
    CHECK_SYS(sem_post(&h->go));
    semwait(&h->done);
    return h->rc;
}

static void helper_stop(struct helper *h)
{
    h->op = OP_QUIT;
    CHECK_SYS(sem_post(&h->go));
    CHECK_OK(pthread_join(h->t, NULL));
}

static void test_try_timed(pthread_rwlock_t *l)
{
    struct helper h;
    struct timespec dl;
    int64_t t0;
    helper_start(&h);

    /* other thread reads: we can read too (at once), not write */
    CHECK_OK(helper_do(&h, OP_RD, l));
    CHECK_OK(pthread_rwlock_tryrdlock(l));
    CHECK_OK(pthread_rwlock_unlock(l));
    dl = deadline_in(CLOCK_REALTIME, 10000);
    CHECK_OK(pthread_rwlock_timedrdlock(l, &dl));
    CHECK_OK(pthread_rwlock_unlock(l));
    CHECK_RC(pthread_rwlock_trywrlock(l), EBUSY);
    dl = deadline_in(CLOCK_REALTIME, 100);
    t0 = now_ns();
    CHECK_RC(pthread_rwlock_timedwrlock(l, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_REALTIME) >= ts_to_ns(&dl));
    dl = deadline_in(CLOCK_MONOTONIC, 100);
    t0 = now_ns();
    CHECK_RC(pthread_rwlock_clockwrlock(l, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_MONOTONIC) >= ts_to_ns(&dl));
    CHECK_OK(helper_do(&h, OP_UNLOCK, l));

    /* other thread writes: we can do neither */
    CHECK_OK(helper_do(&h, OP_WR, l));
    CHECK_RC(pthread_rwlock_tryrdlock(l), EBUSY);
    CHECK_RC(pthread_rwlock_trywrlock(l), EBUSY);
    dl = deadline_in(CLOCK_REALTIME, 100);
    t0 = now_ns();
    CHECK_RC(pthread_rwlock_timedrdlock(l, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    dl = deadline_in(CLOCK_MONOTONIC, 100);
    t0 = now_ns();
    CHECK_RC(pthread_rwlock_clockrdlock(l, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    dl = deadline_in(CLOCK_REALTIME, 100);
    t0 = now_ns();
    CHECK_RC(pthread_rwlock_timedwrlock(l, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    dl = deadline_in(CLOCK_REALTIME, -1000);            /* past */
    CHECK_RC(pthread_rwlock_timedwrlock(l, &dl), ETIMEDOUT);
    dl.tv_nsec = 1000000000;                             /* invalid */
    CHECK_RC(pthread_rwlock_timedrdlock(l, &dl), EINVAL);
    CHECK_OK(helper_do(&h, OP_UNLOCK, l));

    /* we write: the other thread can do neither */
    CHECK_OK(pthread_rwlock_wrlock(l));
    CHECK_RC(helper_do(&h, OP_TRYRD, l), EBUSY);
    CHECK_RC(helper_do(&h, OP_TRYWR, l), EBUSY);
    /* glibc detects a writer relocking its own lock */
    CHECK_RC(pthread_rwlock_wrlock(l), EDEADLK);
    CHECK_RC(pthread_rwlock_rdlock(l), EDEADLK);
    dl = deadline_in(CLOCK_REALTIME, 10000);
    CHECK_RC(pthread_rwlock_timedwrlock(l, &dl), EDEADLK);
    CHECK_OK(pthread_rwlock_unlock(l));
    CHECK_OK(helper_do(&h, OP_TRYWR, l));
    CHECK_OK(helper_do(&h, OP_UNLOCK, l));

    /* readers nest: a reader may take the read lock again */
    CHECK_OK(pthread_rwlock_rdlock(l));
    CHECK_OK(pthread_rwlock_rdlock(l));
    CHECK_OK(helper_do(&h, OP_TRYRD, l));
    CHECK_RC(helper_do(&h, OP_TRYWR, l), EBUSY);
    CHECK_OK(helper_do(&h, OP_UNLOCK, l));
    CHECK_OK(pthread_rwlock_unlock(l));
    CHECK_RC(helper_do(&h, OP_TRYWR, l), EBUSY);
    CHECK_OK(pthread_rwlock_unlock(l));
    CHECK_OK(helper_do(&h, OP_TRYWR, l));
    CHECK_OK(helper_do(&h, OP_UNLOCK, l));

    helper_stop(&h);
}

/* A writer blocked in wrlock gets the lock once the readers leave. */
static pthread_rwlock_t wl = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int writer_has_it;
static void *late_writer(void *arg)
{
    (void)arg;
    CHECK_OK(pthread_rwlock_wrlock(&wl));
    atomic_store(&writer_has_it, 1);
    CHECK_OK(pthread_rwlock_unlock(&wl));
    return NULL;
}

static void test_blocked_writer(void)
{
    pthread_t t;
    CHECK_OK(pthread_rwlock_rdlock(&wl));
    CHECK_OK(pthread_create(&t, NULL, late_writer, NULL));
    sleep_ms(50);
    CHECK_EQ(atomic_load(&writer_has_it), 0);   /* we still read */
    CHECK_OK(pthread_rwlock_unlock(&wl));
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(atomic_load(&writer_has_it), 1);
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_invariants();

    test_try_timed(&rw);
    pthread_rwlockattr_t a;
    pthread_rwlock_t l;
    int kind = -1;
    CHECK_OK(pthread_rwlockattr_init(&a));
    CHECK_OK(pthread_rwlockattr_getkind_np(&a, &kind));
    CHECK_EQ(kind, PTHREAD_RWLOCK_PREFER_READER_NP);
    CHECK_OK(pthread_rwlockattr_setkind_np(
        &a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP));
    CHECK_OK(pthread_rwlockattr_getkind_np(&a, &kind));
    CHECK_EQ(kind, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    CHECK_OK(pthread_rwlock_init(&l, &a));
    CHECK_OK(pthread_rwlockattr_destroy(&a));
    test_try_timed(&l);
    CHECK_OK(pthread_rwlock_destroy(&l));
    test_blocked_writer();
    printf("try/timed/clock variants: EBUSY, ETIMEDOUT, EINVAL, EDEADLK as "
           "glibc; blocked writer proceeds after readers leave\n");
    return 0;
}
