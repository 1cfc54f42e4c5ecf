/*
 * detached_wave - cost of a wave of short-lived detached threads.
 *
 * Usage: detached_wave [N=10000]
 *
 * Creates N detached threads (attribute PTHREAD_CREATE_DETACHED); each one
 * locks a mutex, decrements a shared countdown and signals a condvar when it
 * reaches zero.  The main thread waits on the condvar for zero.
 * Metric: wall nanoseconds per thread, "ns_per_op".
 *
 * If pthread_create fails with EAGAIN (too many threads still alive because
 * they have not exited yet), the creator backs off for 1 ms and retries; the
 * number of retries is reported as "eagain_retries".
 */
#include "bench.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t zero_cv = PTHREAD_COND_INITIALIZER;
static long countdown;
static long ran; /* how many workers ran (protected by mu) */

static void *worker(void *arg)
{
    (void)arg;
    PCHECK(pthread_mutex_lock(&mu));
    ran++;
    if (--countdown == 0)
        PCHECK(pthread_cond_signal(&zero_cv));
    PCHECK(pthread_mutex_unlock(&mu));
    return NULL;
}

int main(int argc, char **argv)
{
    json_begin("detached_wave");
    long n = arg_long(argc, argv, 1, 10000);
    long retries = 0;
    pthread_attr_t attr;
    PCHECK(pthread_attr_init(&attr));
    PCHECK(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED));
    countdown = n;

    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t t;
        int rc;
        while ((rc = pthread_create(&t, &attr, worker, NULL)) == EAGAIN) {
            retries++;
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
        if (rc)
            bench_fail("pthread_create: %s", strerror(rc));
    }
    PCHECK(pthread_mutex_lock(&mu));
    while (countdown > 0)
        PCHECK(pthread_cond_wait(&zero_cv, &mu));
    long r = ran, c = countdown;
    PCHECK(pthread_mutex_unlock(&mu));
    int64_t t1 = now_ns();
    PCHECK(pthread_attr_destroy(&attr));

    json_int("n", n);
    json_dbl("ns_per_op", (double)(t1 - t0) / (double)n);
    json_dbl("wall_ms", (double)(t1 - t0) / 1e6);
    json_int("eagain_retries", retries);
    json_end_exit(r == n && c == 0);
}
