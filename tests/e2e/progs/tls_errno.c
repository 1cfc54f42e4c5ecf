/*
 * tls_errno: __thread / _Thread_local variables and errno are per thread,
 * keep their value across sched_yield() and sleeps (i.e. across any
 * context switch or migration an M:N runtime may do), start from their
 * initial values in each new thread, and have distinct addresses in
 * concurrently live threads.  Pointers to TLS taken before a yield stay
 * valid after it (the compiler may keep the TLS address in a register
 * across calls at -O2).
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define NTHREADS 64
#define ITERS 3000

static __thread long tv;                       /* zero-initialised */
static _Thread_local int init_val = 42;         /* C11 spelling */
static _Thread_local char tbuf[16] = "hello";
static __thread struct {
    int a;
    double b;
    const char *c;
} tstruct = {7, 2.5, "seven"};

static pthread_barrier_t bar;
static void *addr_tv[NTHREADS], *addr_errno[NTHREADS], *addr_buf[NTHREADS];
static atomic_long total;

static void pause_briefly(int k)
{
    if (k % 64 == 0) {
        struct timespec ts = {0, 50 * 1000};   /* 50 us */
        nanosleep(&ts, NULL);
    } else {
        sched_yield();
    }
}

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;

    /* fresh initial values, whatever main did to its own copies */
    CHECK_EQ(tv, 0);
    CHECK_EQ(init_val, 42);
    CHECK(strcmp(tbuf, "hello") == 0);
    CHECK_EQ(tstruct.a, 7);
    CHECK(tstruct.b == 2.5);
    CHECK(strcmp(tstruct.c, "seven") == 0);

    addr_tv[id] = &tv;
    addr_errno[id] = &errno;
    addr_buf[id] = tbuf;

    long *ptv = &tv;          /* address taken before the yields */
    int *perrno = &errno;
    snprintf(tbuf, sizeof tbuf, "t%ld", id);
    init_val = (int)id * 10;

    for (int k = 0; k < ITERS; k++) {
        long mine = id * 1000003L + k;
        int myerr = 100000 + (int)id * 1000 + (k % 1000); /* no real errno */
        tv = mine;
        errno = myerr;
        tstruct.a = (int)id + k;
        pause_briefly(k);
        if (tv != mine)
            FAIL("thread %ld iter %d: __thread var is %ld, expected %ld", id,
                 k, tv, mine);
        if (*ptv != mine)
            FAIL("thread %ld iter %d: pointer to __thread var stale", id, k);
        if (errno != myerr)
            FAIL("thread %ld iter %d: errno is %d, expected %d", id, k,
                 errno, myerr);
        if (*perrno != myerr)
            FAIL("thread %ld iter %d: pointer to errno stale", id, k);
        if (init_val != (int)id * 10)
            FAIL("thread %ld iter %d: _Thread_local int changed", id, k);
        if (tstruct.a != (int)id + k)
            FAIL("thread %ld iter %d: __thread struct changed", id, k);
        char want[16];
        snprintf(want, sizeof want, "t%ld", id);
        if (strcmp(tbuf, want) != 0)
            FAIL("thread %ld iter %d: _Thread_local buffer is '%s'", id, k,
                 tbuf);
    }
    atomic_fetch_add(&total, tv % 1000003L);

    /* everyone still alive here: addresses can be compared by main */
    int r = pthread_barrier_wait(&bar);
    CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
    return (void *)(intptr_t)(init_val + 1);
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);

    /* main's copies, changed before any thread exists */
    tv = -1;
    init_val = 99;
    strcpy(tbuf, "main");
    tstruct.a = -5;
    errno = 12345;

    pthread_t t[NTHREADS];
    CHECK_OK(pthread_barrier_init(&bar, NULL, NTHREADS + 1));
    for (long i = 0; i < NTHREADS; i++)
        CHECK_OK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i));

    int r = pthread_barrier_wait(&bar);
    CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
    /* all workers are parked at or past the barrier, none has exited */
    for (int i = 0; i < NTHREADS; i++)
        for (int j = i + 1; j < NTHREADS; j++) {
            CHECK(addr_tv[i] != addr_tv[j]);
            CHECK(addr_errno[i] != addr_errno[j]);
            CHECK(addr_buf[i] != addr_buf[j]);
        }
    for (int i = 0; i < NTHREADS; i++) {
        CHECK(addr_tv[i] != (void *)&tv);
        CHECK(addr_errno[i] != (void *)&errno);
    }
    for (long i = 0; i < NTHREADS; i++) {
        void *rv;
        CHECK_OK(pthread_join(t[i], &rv));
        CHECK_EQ((intptr_t)rv, i * 10 + 1);
    }
    pthread_barrier_destroy(&bar);

    /* main's own copies survived all of that */
    CHECK_EQ(tv, -1);
    CHECK_EQ(init_val, 99);
    CHECK(strcmp(tbuf, "main") == 0);
    CHECK_EQ(tstruct.a, -5);

    long want = 0;
    for (long i = 0; i < NTHREADS; i++)
        want += (i * 1000003L + ITERS - 1) % 1000003L;
    CHECK_EQ(atomic_load(&total), want);
    printf("%d threads x %d switches: __thread, _Thread_local and errno "
           "stayed per-thread; checksum %ld\n", NTHREADS, ITERS,
           atomic_load(&total));
    return 0;
}
