/*
 * create_join - cost of creating and joining short-lived threads.
 *
 * Usage: create_join [N=10000]
 *
 * Creates N threads in batches of 64 (create 64, join those 64, repeat).
 * Each thread returns its argument + 1; the joiner sums the return values
 * and checks the sum.  Metric: wall nanoseconds per thread (create + run +
 * join), "ns_per_op".
 */
#include "bench.h"

#define BATCH 64

static void *worker(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

int main(int argc, char **argv)
{
    json_begin("create_join");
    long n = arg_long(argc, argv, 1, 10000);
    pthread_t tids[BATCH];
    uint64_t sum = 0;

    int64_t t0 = now_ns();
    for (long done = 0; done < n;) {
        long batch = n - done < BATCH ? n - done : BATCH;
        for (long i = 0; i < batch; i++)
            PCHECK(pthread_create(&tids[i], NULL, worker,
                                  (void *)(uintptr_t)(done + i)));
        for (long i = 0; i < batch; i++) {
            void *ret;
            PCHECK(pthread_join(tids[i], &ret));
            sum += (uintptr_t)ret;
        }
        done += batch;
    }
    int64_t t1 = now_ns();

    /* sum of (i + 1) for i in [0, n) */
    uint64_t expect = (uint64_t)n * (uint64_t)(n + 1) / 2;
    json_int("n", n);
    json_int("batch", BATCH);
    json_dbl("ns_per_op", (double)(t1 - t0) / (double)n);
    json_dbl("wall_ms", (double)(t1 - t0) / 1e6);
    json_int("checksum", (long long)sum);
    json_end_exit(sum == expect);
}
