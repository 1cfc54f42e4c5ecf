/*
 * many_blocked: 2,000 threads all blocked in pthread_cond_wait at the same
 * time.  While they are blocked, the "Threads:" line of /proc/self/status
 * is printed to stderr (it is 2001 natively and should be small under an
 * M:N runtime) and, if E2E_THREADS_FILE is set, written to that file for
 * the test runner to check.  Then they are all released by one broadcast
 * and joined.
 */
#include "e2e.h"

#include <pthread.h>

#define N 2000

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t all_in = PTHREAD_COND_INITIALIZER;
static int waiting, go, woken;

static void *waiter(void *arg)
{
    intptr_t i = (intptr_t)arg;
    CHECK_OK(pthread_mutex_lock(&m));
    if (++waiting == N)
        CHECK_OK(pthread_cond_signal(&all_in));
    while (!go)
        CHECK_OK(pthread_cond_wait(&go_cv, &m));
    woken++;
    CHECK_OK(pthread_mutex_unlock(&m));
    return (void *)(i * 7 + 3);
}

static void report_threads_line(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    char found[256] = "";
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0) {
            snprintf(found, sizeof found, "%s", line);
            break;
        }
    fclose(f);
    if (!found[0])
        FAIL("no Threads: line in /proc/self/status");
    /* stderr, not stdout: the count differs natively and under vthread */
    fprintf(stderr, "many_blocked: %d blocked threads; %s", N, found);
    const char *path = getenv("E2E_THREADS_FILE");
    if (path && *path) {
        FILE *o = fopen(path, "w");
        if (!o)
            FAIL("cannot write E2E_THREADS_FILE %s: %s", path,
                 strerror(errno));
        fputs(found, o);
        if (fclose(o) != 0)
            FAIL("writing %s: %s", path, strerror(errno));
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    static pthread_t t[N];
    for (intptr_t i = 0; i < N; i++)
        CHECK_OK(pthread_create(&t[i], NULL, waiter, (void *)i));

    CHECK_OK(pthread_mutex_lock(&m));
    while (waiting < N)
        CHECK_OK(pthread_cond_wait(&all_in, &m));
    /* Every waiter has released m, which it can only do inside
     * pthread_cond_wait: all N are blocked now, and stay blocked while we
     * hold m and go == 0. */
    CHECK_EQ(woken, 0);
    CHECK_OK(pthread_mutex_unlock(&m));
    printf("%d threads blocked on one condition variable\n", N);

    report_threads_line();

    CHECK_OK(pthread_mutex_lock(&m));
    CHECK_EQ(woken, 0);
    go = 1;
    CHECK_OK(pthread_cond_broadcast(&go_cv));
    CHECK_OK(pthread_mutex_unlock(&m));

    long long sum = 0;
    for (intptr_t i = 0; i < N; i++) {
        void *rv;
        CHECK_OK(pthread_join(t[i], &rv));
        CHECK_EQ((intptr_t)rv, i * 7 + 3);
        sum += (intptr_t)rv;
    }
    CHECK_EQ(woken, N);
    printf("released and joined %d threads, checksum %lld\n", N, sum);
    return 0;
}
