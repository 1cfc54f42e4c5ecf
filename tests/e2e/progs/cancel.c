/*
 * cancel: pthread_cancel of threads blocked in cancellation points
 * (pthread_cond_wait with a cleanup handler that unlocks the mutex,
 * sleep, nanosleep, read, poll, sem_wait, pthread_join, pause), deferred
 * cancellation of a busy thread acting only at pthread_testcancel, the
 * disabled cancel state, asynchronous cancellation of a busy loop, cleanup
 * handler order, and PTHREAD_CANCELED from join.
 */
#include "e2e.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>

/* ------------------------------------------------ blocked threads */

enum where { W_COND, W_TIMEDCOND, W_SLEEP, W_NANOSLEEP, W_READ, W_POLL,
             W_SEM, W_JOIN, W_PAUSE, W_COUNT };
static const char *const where_name[W_COUNT] = {
    "pthread_cond_wait", "pthread_cond_timedwait", "sleep", "nanosleep",
    "read", "poll", "sem_wait", "pthread_join", "pause"};

static pthread_mutex_t cm;              /* error-checking, see main */
static pthread_cond_t cc = PTHREAD_COND_INITIALIZER;
static int pipe_fd[2];
static sem_t never_sem;
static pthread_t forever_thread;        /* target of W_JOIN */
static atomic_int started[W_COUNT], cleaned[W_COUNT], fell_through[W_COUNT];
static atomic_int unlock_rc = -1;

static void unlock_cleanup(void *arg)
{
    /* pthread_cond_wait re-acquires the mutex before the handlers run */
    atomic_store(&unlock_rc, pthread_mutex_unlock(arg));
}

static void note_cleanup(void *arg)
{
    atomic_fetch_add(&cleaned[(intptr_t)arg], 1);
}

static void *forever_fn(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void *blocked_fn(void *arg)
{
    intptr_t w = (intptr_t)arg;
    pthread_cleanup_push(note_cleanup, arg);
    atomic_store(&started[w], 1);
    switch (w) {
    case W_COND:
    case W_TIMEDCOND:
        CHECK_OK(pthread_mutex_lock(&cm));
        pthread_cleanup_push(unlock_cleanup, &cm);
        for (;;) {
            if (w == W_COND) {
                CHECK_OK(pthread_cond_wait(&cc, &cm));
            } else {
                struct timespec dl = deadline_in(CLOCK_REALTIME, 100000);
                CHECK_OK(pthread_cond_timedwait(&cc, &cm, &dl));
            }
        }
        pthread_cleanup_pop(1);
        break;
    case W_SLEEP:
        sleep(1000);
        break;
    case W_NANOSLEEP: {
        struct timespec ts = {1000, 0};
        nanosleep(&ts, NULL);
        break;
    }
    case W_READ: {
        char c;
        ssize_t r = read(pipe_fd[0], &c, 1);
        (void)r;
        break;
    }
    case W_POLL: {
        struct pollfd p = {.fd = pipe_fd[0], .events = POLLIN};
        poll(&p, 1, 1000000);
        break;
    }
    case W_SEM:
        sem_wait(&never_sem);
        break;
    case W_JOIN:
        pthread_join(forever_thread, NULL);
        break;
    case W_PAUSE:
        pause();
        break;
    }
    atomic_store(&fell_through[w], 1);     /* must never get here */
    pthread_cleanup_pop(0);
    return (void *)1;
}

static void test_blocked(void)
{
    CHECK_OK(pthread_create(&forever_thread, NULL, forever_fn, NULL));
    for (intptr_t w = 0; w < W_COUNT; w++) {
        pthread_t t;
        atomic_store(&unlock_rc, -1);
        CHECK_OK(pthread_create(&t, NULL, blocked_fn, (void *)w));
        WAIT_UNTIL(atomic_load(&started[w]), 10000);
        if (w == W_COND || w == W_TIMEDCOND) {
            /* wait until it is really inside the wait: then we can take
             * the mutex */
            CHECK_OK(pthread_mutex_lock(&cm));
            CHECK_OK(pthread_mutex_unlock(&cm));
        } else {
            sleep_ms(20);  /* most likely blocked by now; either way the
                              result is the same */
        }
        int64_t t0 = now_ns();
        CHECK_OK(pthread_cancel(t));
        void *rv = NULL;
        CHECK_OK(pthread_join(t, &rv));
        if (rv != PTHREAD_CANCELED)
            FAIL("%s: join returned %p, not PTHREAD_CANCELED", where_name[w],
                 rv);
        if (now_ns() - t0 > 10 * NS_PER_S)
            FAIL("%s: cancellation took too long", where_name[w]);
        if (atomic_load(&cleaned[w]) != 1)
            FAIL("%s: cleanup handler ran %d times", where_name[w],
                 atomic_load(&cleaned[w]));
        CHECK_EQ(atomic_load(&fell_through[w]), 0);
        if (w == W_COND || w == W_TIMEDCOND) {
            /* the cleanup handler owned and unlocked the mutex */
            CHECK_EQ(atomic_load(&unlock_rc), 0);
            CHECK_OK(pthread_mutex_trylock(&cm));
            CHECK_OK(pthread_mutex_unlock(&cm));
        }
        printf("cancelled in %s: PTHREAD_CANCELED, cleanup ran\n",
               where_name[w]);
    }
    CHECK_OK(pthread_cancel(forever_thread));
    void *rv;
    CHECK_OK(pthread_join(forever_thread, &rv));
    CHECK(rv == PTHREAD_CANCELED);
}

/* -------------------------------------------------- deferred, busy */

static atomic_int spin_release, spin_reached, spin_after, spin_progress;

static void *busy_deferred(void *arg)
{
    (void)arg;
    int old = -1;
    CHECK_OK(pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old));
    CHECK_EQ(old, PTHREAD_CANCEL_DEFERRED);
    while (!atomic_load_explicit(&spin_release, memory_order_relaxed))
        atomic_fetch_add_explicit(&spin_progress, 1, memory_order_relaxed);
    atomic_store(&spin_reached, 1);
    pthread_testcancel();
    atomic_store(&spin_after, 1);
    return NULL;
}

static void test_deferred_busy(void)
{
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, busy_deferred, NULL));
    WAIT_UNTIL(atomic_load(&spin_progress) > 0, 10000);
    CHECK_OK(pthread_cancel(t));
    /* no cancellation point in the loop: it keeps running */
    int p0 = atomic_load(&spin_progress);
    WAIT_UNTIL(atomic_load(&spin_progress) != p0, 10000);
    CHECK_EQ(atomic_load(&spin_reached), 0);
    atomic_store(&spin_release, 1);
    void *rv;
    CHECK_OK(pthread_join(t, &rv));
    CHECK(rv == PTHREAD_CANCELED);
    CHECK_EQ(atomic_load(&spin_reached), 1);
    CHECK_EQ(atomic_load(&spin_after), 0);
    printf("deferred: busy thread ran on after pthread_cancel, cancelled at "
           "pthread_testcancel\n");
}

/* --------------------------------------------------------- disabled */

static atomic_int dis_ready, dis_cancelled, dis_survived, dis_after;

static void *disabled_fn(void *arg)
{
    int enable_later = (int)(intptr_t)arg;
    int old = -1;
    CHECK_OK(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old));
    CHECK_EQ(old, PTHREAD_CANCEL_ENABLE);
    atomic_store(&dis_ready, 1);
    while (!atomic_load(&dis_cancelled))
        sleep_ms(1);
    /* cancellation points while disabled do not act */
    sleep_ms(50);
    char c;
    ssize_t r = read(pipe_fd[0], &c, 0);
    CHECK_EQ(r, 0);
    pthread_testcancel();
    atomic_store(&dis_survived, 1);
    if (!enable_later)
        return (void *)42;
    CHECK_OK(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old));
    CHECK_EQ(old, PTHREAD_CANCEL_DISABLE);
    /* re-enabling is not itself a cancellation point */
    atomic_store(&dis_after, 1);
    pthread_testcancel();
    atomic_store(&dis_after, 2);
    return NULL;
}

static void test_disabled(void)
{
    for (int enable_later = 0; enable_later < 2; enable_later++) {
        atomic_store(&dis_ready, 0);
        atomic_store(&dis_cancelled, 0);
        atomic_store(&dis_survived, 0);
        atomic_store(&dis_after, 0);
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, disabled_fn,
                                (void *)(intptr_t)enable_later));
        WAIT_UNTIL(atomic_load(&dis_ready), 10000);
        CHECK_OK(pthread_cancel(t));
        atomic_store(&dis_cancelled, 1);
        void *rv;
        CHECK_OK(pthread_join(t, &rv));
        CHECK_EQ(atomic_load(&dis_survived), 1);
        if (enable_later) {
            CHECK(rv == PTHREAD_CANCELED);
            CHECK_EQ(atomic_load(&dis_after), 1);
        } else {
            /* never re-enabled: the pending request is never acted on */
            CHECK_EQ((intptr_t)rv, 42);
        }
    }
    CHECK_RC(pthread_setcancelstate(12345, NULL), EINVAL);
    CHECK_RC(pthread_setcanceltype(12345, NULL), EINVAL);
    printf("disabled: cancel request held while disabled, acted on at the "
           "first cancellation point after enabling\n");
}

/* ----------------------------------------------------- asynchronous */

static atomic_int async_ready, async_cleanup;
static volatile unsigned long async_counter;

static void async_cleanup_fn(void *arg)
{
    (void)arg;
    atomic_store(&async_cleanup, 1);
}

static void *async_fn(void *arg)
{
    (void)arg;
    int old = -1;
    pthread_cleanup_push(async_cleanup_fn, NULL);
    CHECK_OK(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old));
    CHECK_EQ(old, PTHREAD_CANCEL_DEFERRED);
    atomic_store(&async_ready, 1);
    for (;;)
        async_counter++;    /* no calls, no cancellation points */
    pthread_cleanup_pop(0);
    return NULL;
}

static void test_async(void)
{
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, async_fn, NULL));
    WAIT_UNTIL(atomic_load(&async_ready) && async_counter > 1000, 10000);
    CHECK_OK(pthread_cancel(t));
    void *rv;
    CHECK_OK(pthread_join(t, &rv));
    CHECK(rv == PTHREAD_CANCELED);
    CHECK_EQ(atomic_load(&async_cleanup), 1);
    printf("asynchronous: busy loop without cancellation points cancelled, "
           "cleanup ran\n");
}

/* ------------------------------------------ cleanup order, self-cancel */

static char order[16];
static atomic_int order_len;
static void push_char(void *arg)
{
    order[atomic_fetch_add(&order_len, 1)] = (char)(intptr_t)arg;
}

static void *order_fn(void *arg)
{
    int how = (int)(intptr_t)arg;
    pthread_cleanup_push(push_char, (void *)'1');
    pthread_cleanup_push(push_char, (void *)'2');
    pthread_cleanup_push(push_char, (void *)'3');
    pthread_cleanup_push(push_char, (void *)'4');
    pthread_cleanup_pop(1);       /* runs '4' now */
    if (how == 0) {
        CHECK_OK(pthread_cancel(pthread_self()));   /* pending, deferred */
        push_char((void *)'x');
        pthread_testcancel();
    } else {
        pthread_exit((void *)7);
    }
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

static void test_order(void)
{
    for (int how = 0; how < 2; how++) {
        memset(order, 0, sizeof order);
        atomic_store(&order_len, 0);
        pthread_t t;
        void *rv;
        CHECK_OK(pthread_create(&t, NULL, order_fn, (void *)(intptr_t)how));
        CHECK_OK(pthread_join(t, &rv));
        if (how == 0) {
            CHECK(rv == PTHREAD_CANCELED);
            CHECK(strcmp(order, "4x321") == 0);
        } else {
            CHECK_EQ((intptr_t)rv, 7);
            CHECK(strcmp(order, "4321") == 0);
        }
    }
    printf("cleanup handlers run last-pushed first on cancel and on "
           "pthread_exit; self-cancel acts at pthread_testcancel\n");
}

/* A thread that has finished its work (and has no cancellation point left
 * before it ends) but is not yet joined can still be "cancelled": glibc
 * (>= 2.34) returns 0 and the thread's own return value is kept. */
static atomic_int quick_done;
static void *quick_fn(void *arg)
{
    atomic_store(&quick_done, 1);
    return arg;
}

static void test_cancel_finished(void)
{
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, quick_fn, (void *)(intptr_t)5));
    WAIT_UNTIL(atomic_load(&quick_done), 10000);
    sleep_ms(20);
    CHECK_OK(pthread_cancel(t));
    void *rv;
    CHECK_OK(pthread_join(t, &rv));
    CHECK_EQ((intptr_t)rv, 5);
    printf("cancel of a finished, unjoined thread: 0, its result kept\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    pthread_mutexattr_t ma;
    CHECK_OK(pthread_mutexattr_init(&ma));
    CHECK_OK(pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK));
    CHECK_OK(pthread_mutex_init(&cm, &ma));
    CHECK_OK(pthread_mutexattr_destroy(&ma));
    CHECK_SYS(pipe(pipe_fd));
    CHECK_SYS(sem_init(&never_sem, 0, 0));

    test_blocked();
    test_deferred_busy();
    test_disabled();
    test_async();
    test_order();
    test_cancel_finished();
    return 0;
}
