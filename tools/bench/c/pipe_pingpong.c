/*
 * pipe_pingpong - round-trip latency of one byte through two pipes.
 *
 * Usage: pipe_pingpong [N=50000]
 *
 * Main writes byte b into pipe A; the partner reads it and writes b+1 into
 * pipe B; main reads it back and checks it.  Blocking pipes, N round trips.
 * Metric: wall nanoseconds per round trip, "ns_per_op".
 */
#include "bench.h"

#include <unistd.h>

static int a_fd[2], b_fd[2]; /* [0] read end, [1] write end */
static long n_rounds;

/* Read/write exactly one byte, retrying on EINTR. */
static unsigned char get1(int fd)
{
    unsigned char c;
    ssize_t r;
    while ((r = read(fd, &c, 1)) == -1 && errno == EINTR)
        ;
    if (r != 1)
        bench_fail("read: %s", r == 0 ? "EOF" : strerror(errno));
    return c;
}

static void put1(int fd, unsigned char c)
{
    ssize_t r;
    while ((r = write(fd, &c, 1)) == -1 && errno == EINTR)
        ;
    if (r != 1)
        bench_fail("write: %s", strerror(errno));
}

static void *partner(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_rounds; i++)
        put1(b_fd[1], (unsigned char)(get1(a_fd[0]) + 1));
    return NULL;
}

int main(int argc, char **argv)
{
    json_begin("pipe_pingpong");
    n_rounds = arg_long(argc, argv, 1, 50000);
    SCHECK(pipe(a_fd));
    SCHECK(pipe(b_fd));
    pthread_t t;
    PCHECK(pthread_create(&t, NULL, partner, NULL));

    long bad = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < n_rounds; i++) {
        unsigned char b = (unsigned char)i;
        put1(a_fd[1], b);
        if (get1(b_fd[0]) != (unsigned char)(b + 1))
            bad++;
    }
    int64_t t1 = now_ns();
    PCHECK(pthread_join(t, NULL));

    json_int("n", n_rounds);
    json_dbl("ns_per_op", (double)(t1 - t0) / (double)n_rounds);
    json_dbl("wall_ms", (double)(t1 - t0) / 1e6);
    json_int("bad_bytes", bad);
    json_end_exit(bad == 0);
}
