/*
 * keys: pthread_key_create/setspecific/getspecific/key_delete and the
 * thread-exit destructor rounds.
 */
#include "e2e.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>

#define NTHREADS 16
#define NMANY 200

struct val {
    int thread;        /* index of the owning thread */
    int round;         /* how many times the destructor has seen it */
    pthread_t owner;
};

static pthread_key_t k_plain, k_reset, k_forever, k_null, k_a, k_b, k_del,
    k_new, k_nodtor;
static pthread_key_t k_many[NMANY];

static atomic_int plain_calls, reset_calls, forever_calls, null_calls,
    a_calls, b_calls, del_calls, wrong_thread, many_calls;
static atomic_int reset_rounds_hist[PTHREAD_DESTRUCTOR_ITERATIONS + 2];

static struct val vals[NTHREADS][8];
static int bvals[NTHREADS];

static void check_owner(struct val *v)
{
    if (!pthread_equal(v->owner, pthread_self()))
        atomic_fetch_add(&wrong_thread, 1);
}

static void dtor_plain(void *p)
{
    struct val *v = p;
    check_owner(v);
    /* the value is already NULL while the destructor runs */
    if (pthread_getspecific(k_plain) != NULL)
        FAIL("value not cleared before its destructor ran");
    atomic_fetch_add(&plain_calls, 1);
}

/* Re-sets its value until it has been called PTHREAD_DESTRUCTOR_ITERATIONS
 * times: POSIX requires that many rounds to be made. */
static void dtor_reset(void *p)
{
    struct val *v = p;
    check_owner(v);
    v->round++;
    atomic_fetch_add(&reset_calls, 1);
    if (v->round < PTHREAD_DESTRUCTOR_ITERATIONS)
        CHECK_OK(pthread_setspecific(k_reset, v));
    else
        atomic_fetch_add(&reset_rounds_hist[v->round], 1);
}

/* Always re-sets its value: glibc gives up after
 * PTHREAD_DESTRUCTOR_ITERATIONS rounds. */
static void dtor_forever(void *p)
{
    struct val *v = p;
    check_owner(v);
    v->round++;
    atomic_fetch_add(&forever_calls, 1);
    CHECK_OK(pthread_setspecific(k_forever, v));
}

static void dtor_null(void *p)
{
    (void)p;
    atomic_fetch_add(&null_calls, 1);
}

/* a's destructor gives b a value: b's destructor must still run once. */
static void dtor_a(void *p)
{
    struct val *v = p;
    check_owner(v);
    atomic_fetch_add(&a_calls, 1);
    CHECK_OK(pthread_setspecific(k_b, &bvals[v->thread]));
}

static void dtor_b(void *p)
{
    int *b = p;
    CHECK(b >= &bvals[0] && b < &bvals[NTHREADS]);
    (*b)++;
    atomic_fetch_add(&b_calls, 1);
}

static void dtor_del(void *p)
{
    (void)p;
    atomic_fetch_add(&del_calls, 1);
}

static void dtor_many(void *p)
{
    (void)p;
    atomic_fetch_add(&many_calls, 1);
}

static sem_t phase1_done, phase2_go;

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 8; i++) {
        vals[id][i].thread = id;
        vals[id][i].owner = pthread_self();
    }
    /* a new thread starts with NULL everywhere */
    CHECK(pthread_getspecific(k_plain) == NULL);
    CHECK(pthread_getspecific(k_nodtor) == NULL);

    CHECK_OK(pthread_setspecific(k_plain, &vals[id][0]));
    CHECK_OK(pthread_setspecific(k_reset, &vals[id][1]));
    CHECK_OK(pthread_setspecific(k_forever, &vals[id][2]));
    CHECK_OK(pthread_setspecific(k_null, &vals[id][3]));
    CHECK_OK(pthread_setspecific(k_a, &vals[id][4]));
    CHECK_OK(pthread_setspecific(k_del, &vals[id][5]));
    CHECK_OK(pthread_setspecific(k_nodtor, &vals[id][6]));
    CHECK_OK(pthread_setspecific(k_null, NULL));   /* no destructor call */
    for (int i = 0; i < NMANY; i++)
        CHECK_OK(pthread_setspecific(k_many[i], (void *)(intptr_t)(id * 1000 + i + 1)));

    for (int k = 0; k < 100; k++) {
        sched_yield();
        CHECK(pthread_getspecific(k_plain) == &vals[id][0]);
        CHECK(pthread_getspecific(k_nodtor) == &vals[id][6]);
        CHECK(pthread_getspecific(k_null) == NULL);
        int i = (k * 7) % NMANY;
        CHECK_EQ((intptr_t)pthread_getspecific(k_many[i]), id * 1000 + i + 1);
    }

    CHECK_SYS(sem_post(&phase1_done));
    while (sem_wait(&phase2_go) != 0)
        CHECK_EQ(errno, EINTR);
    /* main deleted k_del and created k_new meanwhile: the new key reads
     * NULL in this already-running thread, even if it reuses k_del's slot */
    CHECK(pthread_getspecific(k_new) == NULL);
    CHECK_OK(pthread_setspecific(k_new, &vals[id][7]));
    CHECK(pthread_getspecific(k_new) == &vals[id][7]);
    CHECK(pthread_getspecific(k_plain) == &vals[id][0]);

    if (id % 2)
        pthread_exit(NULL);   /* destructors run on pthread_exit too */
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);

    CHECK_OK(pthread_key_create(&k_plain, dtor_plain));
    CHECK_OK(pthread_key_create(&k_reset, dtor_reset));
    CHECK_OK(pthread_key_create(&k_forever, dtor_forever));
    CHECK_OK(pthread_key_create(&k_null, dtor_null));
    CHECK_OK(pthread_key_create(&k_a, dtor_a));
    CHECK_OK(pthread_key_create(&k_b, dtor_b));
    CHECK_OK(pthread_key_create(&k_del, dtor_del));
    CHECK_OK(pthread_key_create(&k_nodtor, NULL));
    for (int i = 0; i < NMANY; i++)
        CHECK_OK(pthread_key_create(&k_many[i], (i % 2) ? dtor_many : NULL));

    /* main's own values */
    CHECK(pthread_getspecific(k_plain) == NULL);
    static int mainval;
    CHECK_OK(pthread_setspecific(k_plain, &mainval));

    CHECK_SYS(sem_init(&phase1_done, 0, 0));
    CHECK_SYS(sem_init(&phase2_go, 0, 0));
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK_OK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i));
    for (int i = 0; i < NTHREADS; i++)
        while (sem_wait(&phase1_done) != 0)
            CHECK_EQ(errno, EINTR);

    /* every thread has a value for k_del: delete it (no destructor calls,
     * then or at thread exit) and create a new key */
    CHECK_OK(pthread_key_delete(k_del));
    CHECK_OK(pthread_key_create(&k_new, NULL));
    for (int i = 0; i < NTHREADS; i++)
        CHECK_SYS(sem_post(&phase2_go));
    for (int i = 0; i < NTHREADS; i++)
        CHECK_OK(pthread_join(t[i], NULL));

    CHECK_EQ(wrong_thread, 0);
    CHECK_EQ(plain_calls, NTHREADS);
    CHECK_EQ(reset_calls, NTHREADS * PTHREAD_DESTRUCTOR_ITERATIONS);
    CHECK_EQ(reset_rounds_hist[PTHREAD_DESTRUCTOR_ITERATIONS], NTHREADS);
    /* glibc: at most PTHREAD_DESTRUCTOR_ITERATIONS rounds, then it stops */
    CHECK_EQ(forever_calls, NTHREADS * PTHREAD_DESTRUCTOR_ITERATIONS);
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(vals[i][2].round, PTHREAD_DESTRUCTOR_ITERATIONS);
    CHECK_EQ(null_calls, 0);
    CHECK_EQ(a_calls, NTHREADS);
    CHECK_EQ(b_calls, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(bvals[i], 1);
    CHECK_EQ(del_calls, 0);
    CHECK_EQ(many_calls, NTHREADS * NMANY / 2);

    /* main's value survived */
    CHECK(pthread_getspecific(k_plain) == &mainval);

    /* deleting keys; a deleted key's slot can be reused, starting NULL */
    CHECK_OK(pthread_key_delete(k_plain));
    pthread_key_t again;
    CHECK_OK(pthread_key_create(&again, NULL));
    CHECK(pthread_getspecific(again) == NULL);
    CHECK_OK(pthread_key_delete(again));

    /* create/delete churn well past PTHREAD_KEYS_MAX */
    for (int i = 0; i < 3 * PTHREAD_KEYS_MAX; i++) {
        pthread_key_t k;
        CHECK_OK(pthread_key_create(&k, dtor_null));
        CHECK(pthread_getspecific(k) == NULL);
        CHECK_OK(pthread_setspecific(k, &mainval));
        CHECK_OK(pthread_key_delete(k));
    }

    printf("keys: destructors ran once per value in the owning thread; "
           "re-set values got %d rounds; deleted keys ran none\n",
           PTHREAD_DESTRUCTOR_ITERATIONS);
    return 0;
}
