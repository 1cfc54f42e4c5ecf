/*
 * blocked_threads - cost and footprint of many simultaneously blocked threads.
 *
 * Usage: blocked_threads [N=10000]
 *
 * Creates N threads with the DEFAULT attributes (default stack size, not
 * shrunk).  Each thread announces itself and blocks on a condvar until the
 * main thread opens the gate.  Once every created thread is blocked, main
 * samples /proc/self/status, then releases and joins them all.
 *
 * Reported:
 *   ns_per_thread         wall time from the first pthread_create until every
 *                         created thread is blocked, divided by the number
 *                         created (the creation cost; includes thread start)
 *   create_ns_per_thread  time of the pthread_create loop alone / created
 *   rss_kib_per_thread    (VmRSS while all blocked - VmRSS before) / created
 *   pt_kib_per_thread     (VmPTE while all blocked - VmPTE before) / created:
 *                         the page tables the threads' memory costs the
 *                         kernel, which VmRSS does not count
 *   mem_kib_per_thread    rss_kib_per_thread + pt_kib_per_thread
 *   os_threads            "Threads:" of /proc/self/status while all blocked
 *   created               threads actually created
 * If pthread_create fails with EAGAIN (or ENOMEM) the program stops creating,
 * reports "max_threads" (= created) and "stopped":"EAGAIN", measures what it
 * has, and still exits 0 with "ok":true: NPTL running out of threads is a
 * result, not a failure.
 */
#include "bench.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t open_cv = PTHREAD_COND_INITIALIZER;
static long arrived; /* threads that are (about to be) blocked */
static long target;  /* main waits until arrived == target */
static long passed;  /* threads that got through the gate */
static int open_flag;

static void *worker(void *arg)
{
    (void)arg;
    PCHECK(pthread_mutex_lock(&mu));
    if (++arrived == target)
        PCHECK(pthread_cond_signal(&arrived_cv));
    while (!open_flag)
        PCHECK(pthread_cond_wait(&open_cv, &mu));
    passed++;
    PCHECK(pthread_mutex_unlock(&mu));
    return NULL;
}

int main(int argc, char **argv)
{
    json_begin("blocked_threads");
    long n = arg_long(argc, argv, 1, 10000);
    /* Allocate and touch the handle array before the RSS baseline. */
    pthread_t *tids = malloc((size_t)n * sizeof *tids);
    if (!tids)
        bench_fail("out of memory");
    memset(tids, 0, (size_t)n * sizeof *tids);
    target = n;

    long rss0 = status_field("VmRSS:");
    long pt0 = status_field("VmPTE:");
    long created = 0;
    const char *stopped = NULL;

    int64_t t0 = now_ns();
    for (; created < n; created++) {
        int rc = pthread_create(&tids[created], NULL, worker, NULL);
        if (rc == EAGAIN || rc == ENOMEM) {
            stopped = rc == EAGAIN ? "EAGAIN" : "ENOMEM";
            break;
        }
        if (rc)
            bench_fail("pthread_create #%ld: %s", created, strerror(rc));
    }
    int64_t t1 = now_ns();
    PCHECK(pthread_mutex_lock(&mu));
    target = created; /* lower the target if we stopped early */
    while (arrived < target)
        PCHECK(pthread_cond_wait(&arrived_cv, &mu));
    PCHECK(pthread_mutex_unlock(&mu));
    int64_t t2 = now_ns();

    long rss1 = status_field("VmRSS:");
    long pt1 = status_field("VmPTE:");
    long os_threads = status_field("Threads:");

    PCHECK(pthread_mutex_lock(&mu));
    open_flag = 1;
    PCHECK(pthread_cond_broadcast(&open_cv));
    PCHECK(pthread_mutex_unlock(&mu));
    for (long i = 0; i < created; i++)
        PCHECK(pthread_join(tids[i], NULL));
    int64_t t3 = now_ns();
    free(tids);

    double per = created > 0 ? (double)created : 1.0;
    json_int("n", n);
    json_int("created", created);
    if (stopped) {
        json_int("max_threads", created);
        json_str("stopped", stopped);
    }
    json_dbl("ns_per_thread", (double)(t2 - t0) / per);
    json_dbl("create_ns_per_thread", (double)(t1 - t0) / per);
    json_dbl("rss_kib_per_thread", (double)(rss1 - rss0) / per);
    json_dbl("pt_kib_per_thread", (double)(pt1 - pt0) / per);
    json_dbl("mem_kib_per_thread", (double)(rss1 - rss0 + pt1 - pt0) / per);
    json_int("rss_before_kib", rss0);
    json_int("rss_blocked_kib", rss1);
    json_int("pte_before_kib", pt0);
    json_int("pte_blocked_kib", pt1);
    json_int("os_threads", os_threads);
    json_dbl("release_join_ms", (double)(t3 - t2) / 1e6);
    json_end_exit(created > 0 && passed == created && rss0 > 0 && rss1 > 0 &&
                  pt0 >= 0 && pt1 >= 0);
}
