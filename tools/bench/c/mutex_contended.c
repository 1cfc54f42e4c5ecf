/*
 * mutex_contended - throughput of one heavily contended mutex.
 *
 * Usage: mutex_contended [K=100000] [THREADS=64]
 *
 * THREADS threads wait at a start gate, then each does K iterations of
 * lock / counter++ / unlock on ONE default mutex.  The timed region runs
 * from opening the gate until all threads are joined.
 * Metric: total lock/unlock pairs per second, "ops_per_s"; the counter must
 * equal THREADS*K.
 */
#include "bench.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct gate gate = GATE_INIT;
static long k_iters, n_threads;
static volatile long counter; /* protected by mu; volatile keeps the loop honest */

static void *worker(void *arg)
{
    (void)arg;
    gate_arrive_wait(&gate, n_threads);
    for (long i = 0; i < k_iters; i++) {
        pthread_mutex_lock(&mu);
        counter = counter + 1;
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    json_begin("mutex_contended");
    k_iters = arg_long(argc, argv, 1, 100000);
    n_threads = arg_long(argc, argv, 2, 64);
    pthread_t *tids = calloc((size_t)n_threads, sizeof *tids);
    if (!tids)
        bench_fail("out of memory");
    for (long i = 0; i < n_threads; i++)
        PCHECK(pthread_create(&tids[i], NULL, worker, NULL));
    gate_wait_arrived(&gate, n_threads);

    int64_t t0 = now_ns();
    gate_open(&gate);
    for (long i = 0; i < n_threads; i++)
        PCHECK(pthread_join(tids[i], NULL));
    int64_t t1 = now_ns();
    free(tids);

    long total = k_iters * n_threads;
    json_int("n", k_iters);
    json_int("threads", n_threads);
    json_dbl("ops_per_s", (double)total / ((double)(t1 - t0) / 1e9));
    json_dbl("ns_per_op", (double)(t1 - t0) / (double)total);
    json_dbl("wall_ms", (double)(t1 - t0) / 1e6);
    json_int("counter", counter);
    json_end_exit(counter == total);
}
