/*
 * mutex_kinds: normal, recursive and error-checking mutexes, statically and
 * dynamically initialised; trylock/timedlock/clocklock; owner checks; a
 * contended counter.
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>

static pthread_mutex_t m_normal = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t m_err = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;

static void semwait(sem_t *s)
{
    while (sem_wait(s) != 0)
        CHECK_EQ(errno, EINTR);
}

/* ----------------------------------------------- a helper thread that
 * runs one operation on a mutex when asked, and reports its result */

enum op { OP_LOCK, OP_UNLOCK, OP_TRYLOCK, OP_QUIT };
struct helper {
    pthread_t t;
    sem_t go, done;
    enum op op;
    pthread_mutex_t *m;
    int rc;
};

static void *helper_fn(void *arg)
{
    struct helper *h = arg;
    for (;;) {
        semwait(&h->go);
        switch (h->op) {
        case OP_LOCK: h->rc = pthread_mutex_lock(h->m); break;
        case OP_UNLOCK: h->rc = pthread_mutex_unlock(h->m); break;
        case OP_TRYLOCK: h->rc = pthread_mutex_trylock(h->m); break;
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

static int helper_do(struct helper *h, enum op op, pthread_mutex_t *m)
{
    h->op = op;
    h->m = m;
    CHECK_SYS(sem_post(&h->go));
    semwait(&h->done);
    return h->rc;
}

static void helper_stop(struct helper *h)
{
    h->op = OP_QUIT;
    CHECK_SYS(sem_post(&h->go));
    CHECK_OK(pthread_join(h->t, NULL));
    sem_destroy(&h->go);
    sem_destroy(&h->done);
}

/* ------------------------------------------------------------ kinds */

static void check_recursive(pthread_mutex_t *m, struct helper *h)
{
    for (int i = 0; i < 100; i++)
        CHECK_OK(pthread_mutex_lock(m));
    CHECK_OK(pthread_mutex_trylock(m));         /* owner: depth 101 */
    CHECK_RC(helper_do(h, OP_TRYLOCK, m), EBUSY);
    CHECK_RC(helper_do(h, OP_UNLOCK, m), EPERM); /* not the owner */
    for (int i = 0; i < 100; i++)
        CHECK_OK(pthread_mutex_unlock(m));
    CHECK_RC(helper_do(h, OP_TRYLOCK, m), EBUSY); /* still held once */
    CHECK_OK(pthread_mutex_unlock(m));
    CHECK_RC(pthread_mutex_unlock(m), EPERM);    /* not held at all */
    /* now free for the other thread, which can nest too */
    CHECK_OK(helper_do(h, OP_LOCK, m));
    CHECK_OK(helper_do(h, OP_LOCK, m));
    CHECK_RC(pthread_mutex_trylock(m), EBUSY);
    CHECK_OK(helper_do(h, OP_UNLOCK, m));
    CHECK_RC(pthread_mutex_trylock(m), EBUSY);
    CHECK_OK(helper_do(h, OP_UNLOCK, m));
    CHECK_OK(pthread_mutex_trylock(m));
    CHECK_OK(pthread_mutex_unlock(m));
}

static void check_errorcheck(pthread_mutex_t *m, struct helper *h)
{
    CHECK_OK(pthread_mutex_lock(m));
    CHECK_RC(pthread_mutex_lock(m), EDEADLK);
    CHECK_RC(pthread_mutex_trylock(m), EBUSY);
    struct timespec dl = deadline_in(CLOCK_REALTIME, 10000);
    CHECK_RC(pthread_mutex_timedlock(m, &dl), EDEADLK);
    CHECK_RC(helper_do(h, OP_TRYLOCK, m), EBUSY);
    CHECK_RC(helper_do(h, OP_UNLOCK, m), EPERM);
    CHECK_OK(pthread_mutex_unlock(m));
    CHECK_RC(pthread_mutex_unlock(m), EPERM);
    /* held by the other thread: our unlock is EPERM, theirs works */
    CHECK_OK(helper_do(h, OP_LOCK, m));
    CHECK_RC(helper_do(h, OP_LOCK, m), EDEADLK);
    CHECK_RC(pthread_mutex_unlock(m), EPERM);
    CHECK_RC(pthread_mutex_trylock(m), EBUSY);
    CHECK_OK(helper_do(h, OP_UNLOCK, m));
    CHECK_OK(pthread_mutex_trylock(m));
    CHECK_OK(pthread_mutex_unlock(m));
}

static void check_normal(pthread_mutex_t *m, struct helper *h)
{
    CHECK_OK(pthread_mutex_lock(m));
    CHECK_RC(pthread_mutex_trylock(m), EBUSY);      /* even for the owner */
    CHECK_RC(helper_do(h, OP_TRYLOCK, m), EBUSY);
    CHECK_OK(pthread_mutex_unlock(m));
    CHECK_OK(helper_do(h, OP_TRYLOCK, m));
    CHECK_RC(pthread_mutex_trylock(m), EBUSY);
    CHECK_OK(helper_do(h, OP_UNLOCK, m));
    CHECK_OK(pthread_mutex_trylock(m));
    CHECK_OK(pthread_mutex_unlock(m));
}

/* Timed locking of a mutex held by another thread. */
static void check_timed(pthread_mutex_t *m, struct helper *h)
{
    CHECK_OK(helper_do(h, OP_LOCK, m));

    struct timespec dl = deadline_in(CLOCK_REALTIME, 100);
    int64_t t0 = now_ns();
    CHECK_RC(pthread_mutex_timedlock(m, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_REALTIME) >= ts_to_ns(&dl));

    dl = deadline_in(CLOCK_MONOTONIC, 100);
    t0 = now_ns();
    CHECK_RC(pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_MONOTONIC) >= ts_to_ns(&dl));

    /* a deadline in the past times out at once */
    dl = deadline_in(CLOCK_REALTIME, -1000);
    t0 = now_ns();
    CHECK_RC(pthread_mutex_timedlock(m, &dl), ETIMEDOUT);
    CHECK(now_ns() - t0 < SLACK_MS * NS_PER_MS);

    /* an invalid deadline, when the lock would have to wait */
    dl = deadline_in(CLOCK_REALTIME, 0);
    dl.tv_nsec = 1000000000;
    CHECK_RC(pthread_mutex_timedlock(m, &dl), EINVAL);

    CHECK_OK(helper_do(h, OP_UNLOCK, m));
    /* free: timedlock succeeds at once, even with a past deadline */
    dl = deadline_in(CLOCK_REALTIME, -1000);
    CHECK_OK(pthread_mutex_timedlock(m, &dl));
    CHECK_OK(pthread_mutex_unlock(m));
}

/* The owner releases while we are in timedlock: we get the lock. */
struct delayed { pthread_mutex_t *m; sem_t locked; };
static void *hold_then_release(void *arg)
{
    struct delayed *d = arg;
    CHECK_OK(pthread_mutex_lock(d->m));
    CHECK_SYS(sem_post(&d->locked));
    sleep_ms(50);
    CHECK_OK(pthread_mutex_unlock(d->m));
    return NULL;
}

static void check_timed_success(pthread_mutex_t *m)
{
    struct delayed d = {.m = m};
    pthread_t t;
    CHECK_SYS(sem_init(&d.locked, 0, 0));
    CHECK_OK(pthread_create(&t, NULL, hold_then_release, &d));
    semwait(&d.locked);
    struct timespec dl = deadline_in(CLOCK_REALTIME, 30000);
    CHECK_OK(pthread_mutex_timedlock(m, &dl));
    CHECK_OK(pthread_mutex_unlock(m));
    CHECK_OK(pthread_join(t, NULL));
    sem_destroy(&d.locked);
}

/* --------------------------------------------------------- counter */

#define NCOUNT 16
#define ITERS 100000
static long counter;
static long rec_counter;
static pthread_mutex_t m_counter = PTHREAD_MUTEX_INITIALIZER;

static void *count_fn(void *arg)
{
    pthread_mutex_t *rm = arg;
    for (int i = 0; i < ITERS; i++) {
        CHECK_OK(pthread_mutex_lock(&m_counter));
        long c = counter;
        if ((i & 1023) == 0)
            sched_yield();          /* hold the lock across a switch */
        counter = c + 1;
        CHECK_OK(pthread_mutex_unlock(&m_counter));
        if ((i & 15) == 0) {
            CHECK_OK(pthread_mutex_lock(rm));
            CHECK_OK(pthread_mutex_lock(rm));
            rec_counter++;
            CHECK_OK(pthread_mutex_unlock(rm));
            CHECK_OK(pthread_mutex_unlock(rm));
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    struct helper h;
    helper_start(&h);

    /* static initialisers */
    check_normal(&m_normal, &h);
    check_recursive(&m_rec, &h);
    check_errorcheck(&m_err, &h);
    printf("static initialisers: normal, recursive, errorcheck behave\n");

    /* dynamic initialisation through attributes */
    static const int kinds[] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_RECURSIVE,
                                PTHREAD_MUTEX_ERRORCHECK,
                                PTHREAD_MUTEX_DEFAULT};
    for (int i = 0; i < 4; i++) {
        pthread_mutexattr_t a;
        pthread_mutex_t m;
        int type = -1;
        CHECK_OK(pthread_mutexattr_init(&a));
        CHECK_OK(pthread_mutexattr_gettype(&a, &type));
        CHECK_EQ(type, PTHREAD_MUTEX_DEFAULT);
        CHECK_OK(pthread_mutexattr_settype(&a, kinds[i]));
        CHECK_OK(pthread_mutexattr_gettype(&a, &type));
        CHECK_EQ(type, kinds[i]);
        CHECK_OK(pthread_mutex_init(&m, &a));
        CHECK_OK(pthread_mutexattr_destroy(&a));
        if (kinds[i] == PTHREAD_MUTEX_RECURSIVE)
            check_recursive(&m, &h);
        else if (kinds[i] == PTHREAD_MUTEX_ERRORCHECK)
            check_errorcheck(&m, &h);
        else
            check_normal(&m, &h);
        check_timed(&m, &h);
        check_timed_success(&m);
        /* glibc refuses to destroy a locked mutex */
        CHECK_OK(pthread_mutex_lock(&m));
        CHECK_RC(pthread_mutex_destroy(&m), EBUSY);
        CHECK_OK(pthread_mutex_unlock(&m));
        CHECK_OK(pthread_mutex_destroy(&m));
    }
    check_timed(&m_normal, &h);
    check_timed(&m_rec, &h);
    check_timed(&m_err, &h);
    helper_stop(&h);
    printf("dynamic init: normal, recursive, errorcheck, default behave; "
           "timedlock/clocklock ETIMEDOUT and EINVAL\n");

    pthread_t t[NCOUNT];
    for (int i = 0; i < NCOUNT; i++)
        CHECK_OK(pthread_create(&t[i], NULL, count_fn, &m_rec));
    for (int i = 0; i < NCOUNT; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    CHECK_EQ(counter, (long)NCOUNT * ITERS);
    CHECK_EQ(rec_counter, (long)NCOUNT * ((ITERS + 15) / 16));
    printf("contended counter: %d threads x %d = %ld\n", NCOUNT, ITERS,
           counter);
    return 0;
}
