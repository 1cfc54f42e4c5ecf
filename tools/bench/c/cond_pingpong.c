/*
 * cond_pingpong - round-trip latency through a mutex and two condvars.
 *
 * Usage: cond_pingpong [N=50000]
 *
 * The main thread ("ping") and a partner ("pong") share one mutex, two
 * condvars and a 'turn' variable.  Ping sets turn=PONG and signals the
 * partner's condvar, then waits on its own until turn==PING; pong does the
 * reverse and counts the round trips.  N round trips.
 * Metric: wall nanoseconds per round trip, "ns_per_op".
 */
#include "bench.h"

enum { PING, PONG };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ping_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pong_cv = PTHREAD_COND_INITIALIZER;
static int turn = PING;
static long n_rounds;
static long pong_count; /* written by pong under mu */

static void *pong(void *arg)
{
    (void)arg;
    PCHECK(pthread_mutex_lock(&mu));
    for (long i = 0; i < n_rounds; i++) {
        while (turn != PONG)
            PCHECK(pthread_cond_wait(&pong_cv, &mu));
        pong_count++;
        turn = PING;
        PCHECK(pthread_cond_signal(&ping_cv));
    }
    PCHECK(pthread_mutex_unlock(&mu));
    return NULL;
}

int main(int argc, char **argv)
{
    json_begin("cond_pingpong");
    n_rounds = arg_long(argc, argv, 1, 50000);
    pthread_t t;
    PCHECK(pthread_create(&t, NULL, pong, NULL));

    int64_t t0 = now_ns();
    PCHECK(pthread_mutex_lock(&mu));
    for (long i = 0; i < n_rounds; i++) {
        turn = PONG;
        PCHECK(pthread_cond_signal(&pong_cv));
        while (turn != PING)
            PCHECK(pthread_cond_wait(&ping_cv, &mu));
    }
    PCHECK(pthread_mutex_unlock(&mu));
    int64_t t1 = now_ns();
    PCHECK(pthread_join(t, NULL));

    json_int("n", n_rounds);
    json_dbl("ns_per_op", (double)(t1 - t0) / (double)n_rounds);
    json_dbl("wall_ms", (double)(t1 - t0) / 1e6);
    json_end_exit(pong_count == n_rounds);
}
