/*
 * forkjoin_cpu - CPU-bound fork-join: repeated parallel matrix multiply.
 *
 * Usage: forkjoin_cpu [ROUNDS=30] [DIM=256]
 *
 * C = A x B with DIMxDIM uint32 matrices (wrapping arithmetic).  Each round
 * clears C, forks P = 2 * (online CPUs) threads that each compute a band of
 * rows, and joins them.  After every round the checksum of C is compared
 * with a serial reference computed once before timing.
 * Metric: total wall milliseconds for all rounds, "wall_ms".
 */
#include "bench.h"

#include <unistd.h>

static long dim;
static uint32_t *A, *B, *Cm;

struct band {
    long lo, hi;
};

/* Rows [lo, hi) of Cm = A x B (i-k-j order, vectorisable inner loop). */
static void mult_rows(uint32_t *out, long lo, long hi)
{
    for (long i = lo; i < hi; i++) {
        uint32_t *crow = out + i * dim;
        for (long k = 0; k < dim; k++) {
            uint32_t a = A[i * dim + k];
            const uint32_t *brow = B + k * dim;
            for (long j = 0; j < dim; j++)
                crow[j] += a * brow[j];
        }
    }
}

static void *worker(void *arg)
{
    struct band *b = arg;
    mult_rows(Cm, b->lo, b->hi);
    return NULL;
}

static uint64_t checksum(const uint32_t *m)
{
    uint64_t s = 0;
    for (long i = 0; i < dim * dim; i++)
        s = s * 31 + m[i];
    return s;
}

int main(int argc, char **argv)
{
    json_begin("forkjoin_cpu");
    long rounds = arg_long(argc, argv, 1, 30);
    dim = arg_long(argc, argv, 2, 256);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    long p = 2 * ncpu;
    size_t bytes = (size_t)(dim * dim) * sizeof(uint32_t);
    A = malloc(bytes);
    B = malloc(bytes);
    Cm = malloc(bytes);
    uint32_t *ref = calloc(1, bytes);
    pthread_t *tids = calloc((size_t)p, sizeof *tids);
    struct band *bands = calloc((size_t)p, sizeof *bands);
    if (!A || !B || !Cm || !ref || !tids || !bands)
        bench_fail("out of memory");
    for (long i = 0; i < dim * dim; i++) {
        A[i] = (uint32_t)(i * 2654435761u + 1);
        B[i] = (uint32_t)(i * 40503u + 7);
    }
    mult_rows(ref, 0, dim); /* serial reference (untimed) */
    uint64_t want = checksum(ref);
    for (long t = 0; t < p; t++) {
        bands[t].lo = dim * t / p;
        bands[t].hi = dim * (t + 1) / p;
    }

    long bad_rounds = 0;
    int64_t t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        memset(Cm, 0, bytes);
        for (long t = 0; t < p; t++)
            PCHECK(pthread_create(&tids[t], NULL, worker, &bands[t]));
        for (long t = 0; t < p; t++)
            PCHECK(pthread_join(tids[t], NULL));
        if (checksum(Cm) != want)
            bad_rounds++;
    }
    int64_t t1 = now_ns();

    json_int("n", rounds);
    json_int("dim", dim);
    json_int("threads", p);
    json_dbl("wall_ms", (double)(t1 - t0) / 1e6);
    json_dbl("ms_per_round", (double)(t1 - t0) / 1e6 / (double)rounds);
    json_int("bad_rounds", bad_rounds);
    free(A);
    free(B);
    free(Cm);
    free(ref);
    free(tids);
    free(bands);
    json_end_exit(bad_rounds == 0);
}
