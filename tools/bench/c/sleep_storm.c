/*
 * sleep_storm - many threads sleeping in short intervals at the same time.
 *
 * Usage: sleep_storm [T=1000] [R=20]
 *
 * T threads wait at a start gate; when it opens, each does R nanosleep()s of
 * 10 ms, timing each one with CLOCK_MONOTONIC.
 *
 * Definition of the overhead (headline metric "oversleep_us"):
 *   mean over all T*R sleeps of (measured sleep duration - 10 ms), in µs.
 * This is the wake-up latency a sleeper sees: timer slack + the time spent
 * runnable but waiting for a CPU after the timer fired (all T threads wake
 * at about the same time, so it grows with T on a 2-core machine).
 * Also reported:
 *   wall_overhead_us  (wall time from opening the gate to the last join
 *                      - R*10 ms) / R, i.e. the slowest thread's overhead per
 *                      sleep as seen in wall-clock time
 *   max_oversleep_us  worst single sleep
 * Check: no sleep may return early (duration >= 10 ms) and all T*R sleeps
 * must have been done.
 */
#include "bench.h"

#define SLEEP_NS 10000000LL /* 10 ms */

struct stats {
    int64_t over_sum_ns; /* sum of (duration - 10 ms) */
    int64_t over_max_ns;
    long sleeps, early;
};

static struct gate gate = GATE_INIT;
static long n_threads, n_rounds;

static void *sleeper(void *arg)
{
    struct stats *st = arg;
    gate_arrive_wait(&gate, n_threads);
    for (long r = 0; r < n_rounds; r++) {
        struct timespec req = {0, SLEEP_NS}, rem;
        int64_t a = now_ns();
        while (nanosleep(&req, &rem) == -1) {
            if (errno != EINTR)
                bench_fail("nanosleep: %s", strerror(errno));
            req = rem; /* interrupted: sleep the remainder */
        }
        int64_t d = now_ns() - a - SLEEP_NS;
        if (d < 0)
            st->early++;
        st->over_sum_ns += d;
        if (d > st->over_max_ns)
            st->over_max_ns = d;
        st->sleeps++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    json_begin("sleep_storm");
    n_threads = arg_long(argc, argv, 1, 1000);
    n_rounds = arg_long(argc, argv, 2, 20);
    pthread_t *tids = calloc((size_t)n_threads, sizeof *tids);
    struct stats *st = calloc((size_t)n_threads, sizeof *st);
    if (!tids || !st)
        bench_fail("out of memory");
    for (long i = 0; i < n_threads; i++)
        PCHECK(pthread_create(&tids[i], NULL, sleeper, &st[i]));
    gate_wait_arrived(&gate, n_threads);

    int64_t t0 = now_ns();
    gate_open(&gate);
    for (long i = 0; i < n_threads; i++)
        PCHECK(pthread_join(tids[i], NULL));
    int64_t t1 = now_ns();

    struct stats tot = {0, 0, 0, 0};
    for (long i = 0; i < n_threads; i++) {
        tot.over_sum_ns += st[i].over_sum_ns;
        if (st[i].over_max_ns > tot.over_max_ns)
            tot.over_max_ns = st[i].over_max_ns;
        tot.sleeps += st[i].sleeps;
        tot.early += st[i].early;
    }
    free(tids);
    free(st);

    long expect = n_threads * n_rounds;
    json_int("n", n_threads);
    json_int("rounds", n_rounds);
    json_dbl("oversleep_us",
             (double)tot.over_sum_ns / (double)(tot.sleeps ? tot.sleeps : 1) / 1e3);
    json_dbl("wall_overhead_us",
             (double)(t1 - t0 - n_rounds * SLEEP_NS) / (double)n_rounds / 1e3);
    json_dbl("max_oversleep_us", (double)tot.over_max_ns / 1e3);
    json_dbl("wall_ms", (double)(t1 - t0) / 1e6);
    json_int("early_wakeups", tot.early);
    json_end_exit(tot.sleeps == expect && tot.early == 0);
}
