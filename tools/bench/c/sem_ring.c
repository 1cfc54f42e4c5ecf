/*
 * sem_ring - token passing around a ring of threads through semaphores.
 *
 * Usage: sem_ring [LAPS=1000] [THREADS=100]
 *
 * THREADS threads, one POSIX semaphore each (sem_init, value 0).  Thread i
 * loops LAPS times: sem_wait(sem[i]); hops++; sem_post(sem[(i+1)%THREADS]).
 * The main thread injects the token with sem_post(sem[0]) and joins all.
 * Metric: wall nanoseconds per hop, "ns_per_op"; hops must be LAPS*THREADS.
 */
#include "bench.h"

#include <semaphore.h>

static struct gate ready = GATE_INIT;
static sem_t *sems;
static long laps, n_threads;
static long hops; /* only the token holder touches it; sem ops order it */

static void *member(void *arg)
{
    long i = (long)(intptr_t)arg;
    sem_t *mine = &sems[i], *next = &sems[(i + 1) % n_threads];
    gate_arrive(&ready, n_threads); /* started: keep startup out of timing */
    for (long l = 0; l < laps; l++) {
        while (sem_wait(mine) == -1) {
            if (errno != EINTR)
                bench_fail("sem_wait: %s", strerror(errno));
        }
        hops++;
        SCHECK(sem_post(next));
    }
    return NULL;
}

int main(int argc, char **argv)
{
    json_begin("sem_ring");
    laps = arg_long(argc, argv, 1, 1000);
    n_threads = arg_long(argc, argv, 2, 100);
    sems = calloc((size_t)n_threads, sizeof *sems);
    pthread_t *tids = calloc((size_t)n_threads, sizeof *tids);
    if (!sems || !tids)
        bench_fail("out of memory");
    for (long i = 0; i < n_threads; i++)
        SCHECK(sem_init(&sems[i], 0, 0));
    for (long i = 0; i < n_threads; i++)
        PCHECK(pthread_create(&tids[i], NULL, member, (void *)(intptr_t)i));
    gate_wait_arrived(&ready, n_threads);

    int64_t t0 = now_ns();
    SCHECK(sem_post(&sems[0]));
    for (long i = 0; i < n_threads; i++)
        PCHECK(pthread_join(tids[i], NULL));
    int64_t t1 = now_ns();

    /* After the last hop the token sits in sem[0] again. */
    int token = 0;
    SCHECK(sem_getvalue(&sems[0], &token));
    long total = laps * n_threads;
    json_int("n", laps);
    json_int("threads", n_threads);
    json_dbl("ns_per_op", (double)(t1 - t0) / (double)total);
    json_dbl("wall_ms", (double)(t1 - t0) / 1e6);
    json_int("hops", hops);
    for (long i = 0; i < n_threads; i++)
        SCHECK(sem_destroy(&sems[i]));
    free(sems);
    free(tids);
    json_end_exit(hops == total && token == 1);
}
