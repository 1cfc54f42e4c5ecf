/*
 * echo_server - thread-per-connection TCP echo server under many connections.
 *
 * Usage: echo_server [C=1000] [M=20]
 *
 * Loopback only (127.0.0.1), blocking sockets, TWO processes:
 *   - the SERVER (this process): a listening socket on an ephemeral port, an
 *     acceptor thread that accepts exactly C connections and creates one
 *     handler thread per connection (blocking read / write-back until EOF),
 *     and a sampler thread reading "Threads:" of /proc/self/status (and of
 *     the client process's /proc/PID/status) every ~1 ms, started before the
 *     acceptor and the client, so the connect phase is covered;
 *   - the CLIENT process: the same binary re-executed with posix_spawn as
 *     "echo_server --client PORT C M" (so it inherits the environment,
 *     including LD_PRELOAD, and runs on the same thread library), with C
 *     client threads, one connection each.
 * Why two processes: with both ends in one process, 10,000 connections need
 * 20,000+ descriptors, and RLIMIT_NOFILE's hard limit may be exactly that
 * without the capability to raise it (as in the development container).
 *
 * Protocol over the client's stdin/stdout (pipes to the server):
 *   client -> "ready\n" once all C connections are established;
 *   server waits for that AND for all C handler threads to be running, then
 *   sends "G"; each client thread sends M messages of 64 bytes, one at a
 *   time, reading back and verifying each echo before sending the next;
 *   client -> one JSON line with its counts, the duration of that message
 *   phase, and its own peak OS threads (its sampler thread starts before the
 *   first client thread, so it covers the connect phase); clients close,
 *   handlers see EOF.
 * Counts are bounded, so both processes stop by themselves.
 *
 * Reported (by the server, one JSON line):
 *   msgs_per_s        C*M / message-phase duration (headline throughput)
 *   us_per_msg        1e6 / msgs_per_s: microseconds per message
 *   connect_ms        spawning the client + establishing all connections
 *   peak_os_threads   max "Threads:" of the SERVER process over its whole
 *                     life from before the first accept (natively C+3)
 *   client_peak_os_threads   the same for the client process, from its
 *                     spawn (connect phase included): the larger of what the
 *                     client sampled itself (client_self_peak_os_threads)
 *                     and what the server's sampler saw in
 *                     /proc/CLIENT/status (client_ext_peak_os_threads)
 * Checks: every echo matches, the server echoed exactly C*M*64 bytes, the
 * client exited 0.
 *
 * RLIMIT_NOFILE is raised to the hard limit in both processes; if the hard
 * limit is below the C+64 descriptors needed, they try to raise it too
 * (needs CAP_SYS_RESOURCE, bounded by /proc/sys/fs/nr_open).
 */
#include "bench.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MSG 64

static long n_conns, n_msgs;
static int listen_fd;
static struct sockaddr_in server_addr;
static pthread_t *handler_tids;
static struct gate clients_ready = GATE_INIT;  /* all clients connected */
static struct gate handlers_ready = GATE_INIT; /* all handlers running */
static atomic_long bytes_echoed, msgs_ok, msgs_bad;
static atomic_int sampler_stop;
static atomic_long peak_threads;
static atomic_int child_pid;            /* server: the client process, or 0 */
static atomic_long child_peak_threads;  /* server: its peak, seen from here */

/* ------------------------------------------------------------ helpers */

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            bench_fail("write: %s", strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
}

static void read_all(int fd, char *p, size_t len)
{
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            bench_fail("read: %s", strerror(errno));
        }
        if (r == 0)
            bench_fail("read: unexpected EOF");
        p += r;
        len -= (size_t)r;
    }
}

static void set_nodelay(int fd)
{
    int one = 1;
    SCHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
}

/* Raise the soft descriptor limit to the hard limit, and the hard limit to
 * 'need' if it is lower (needs CAP_SYS_RESOURCE).  Returns the soft limit. */
static long raise_nofile(long need)
{
    struct rlimit rl;
    SCHECK(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)need) {
        struct rlimit want = {(rlim_t)need, (rlim_t)need};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    rl.rlim_cur = rl.rlim_max;
    SCHECK(setrlimit(RLIMIT_NOFILE, &rl));
    return rl.rlim_cur == RLIM_INFINITY ? need : (long)rl.rlim_cur;
}

/* ------------------------------------------------------------- threads */

static void *handler(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    gate_arrive(&handlers_ready, n_conns);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            bench_fail("server read: %s", strerror(errno));
        }
        if (r == 0)
            break;
        write_all(fd, buf, (size_t)r);
        atomic_fetch_add(&bytes_echoed, r);
    }
    close(fd);
    return NULL;
}

static void *acceptor(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_conns; i++) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED) {
                i--;
                continue;
            }
            bench_fail("accept #%ld: %s", i, strerror(errno));
        }
        set_nodelay(fd);
        PCHECK(pthread_create(&handler_tids[i], NULL, handler,
                              (void *)(intptr_t)fd));
    }
    return NULL;
}

/* Deterministic 64-byte message for (client, index). */
static void fill_msg(char *m, long client, long idx)
{
    uint64_t x = (uint64_t)client * 1000003u + (uint64_t)idx * 7919u + 1;
    for (int i = 0; i < MSG; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m[i] = (char)(x & 0xff);
    }
}

static void *client(void *arg)
{
    long id = (long)(intptr_t)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -1)
        bench_fail("socket: %s", strerror(errno));
    set_nodelay(fd);
    int tries = 0;
    while (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr)) {
        /* A full accept queue makes blocking connect() wait (SYN retries);
         * retry the rare hard failures a few times. */
        if ((errno == EINTR || errno == ECONNREFUSED || errno == EAGAIN ||
             errno == ETIMEDOUT) && ++tries < 20) {
            close(fd);
            nanosleep(&(struct timespec){0, 10 * 1000000}, NULL);
            fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd == -1)
                bench_fail("socket: %s", strerror(errno));
            set_nodelay(fd);
            continue;
        }
        bench_fail("connect: %s", strerror(errno));
    }
    gate_arrive_wait(&clients_ready, n_conns);

    char out[MSG], in[MSG];
    long ok = 0, bad = 0;
    for (long m = 0; m < n_msgs; m++) {
        fill_msg(out, id, m);
        write_all(fd, out, MSG);
        read_all(fd, in, MSG);
        if (memcmp(in, out, MSG) == 0)
            ok++;
        else
            bad++;
    }
    atomic_fetch_add(&msgs_ok, ok);
    atomic_fetch_add(&msgs_bad, bad);
    close(fd);
    return NULL;
}

static void *sampler(void *arg)
{
    (void)arg;
    char path[64];
    while (!atomic_load(&sampler_stop)) {
        long t = status_field("Threads:");
        if (t > atomic_load(&peak_threads))
            atomic_store(&peak_threads, t);
        int pid = atomic_load(&child_pid);
        if (pid > 0) {
            snprintf(path, sizeof path, "/proc/%d/status", pid);
            t = proc_status_field(path, "Threads:");
            if (t > atomic_load(&child_peak_threads))
                atomic_store(&child_peak_threads, t);
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return NULL;
}

/* ---------------------------------------------------------- client role */

/*
 * echo_server --client PORT C M: run C client threads against 127.0.0.1:PORT.
 * stdin/stdout are the control pipes from/to the server (see the header).
 */
static int client_main(int argc, char **argv)
{
    json_begin("echo_client");
    long port = arg_long(argc, argv, 2, 1);
    n_conns = arg_long(argc, argv, 3, 1);
    n_msgs = arg_long(argc, argv, 4, 1);
    long need = n_conns + 64;
    long nofile = raise_nofile(need);
    if (nofile < need)
        bench_fail("client: RLIMIT_NOFILE is %ld, need %ld", nofile, need);
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    server_addr.sin_port = htons((uint16_t)port);

    pthread_t *tids = calloc((size_t)n_conns, sizeof *tids);
    if (!tids)
        bench_fail("out of memory");
    pthread_t samp_tid;
    atomic_store(&peak_threads, status_field("Threads:"));
    PCHECK(pthread_create(&samp_tid, NULL, sampler, NULL));
    for (long i = 0; i < n_conns; i++)
        PCHECK(pthread_create(&tids[i], NULL, client, (void *)(intptr_t)i));
    gate_wait_arrived(&clients_ready, n_conns);

    fputs("ready\n", stdout);
    fflush(stdout);
    char go;
    ssize_t r;
    while ((r = read(0, &go, 1)) == -1 && errno == EINTR)
        ;
    if (r != 1 || go != 'G')
        bench_fail("client: no go signal from the server");

    int64_t t1 = now_ns();
    gate_open(&clients_ready);
    for (long i = 0; i < n_conns; i++)
        PCHECK(pthread_join(tids[i], NULL));
    int64_t t2 = now_ns();
    atomic_store(&sampler_stop, 1);
    PCHECK(pthread_join(samp_tid, NULL));
    free(tids);

    long ok = atomic_load(&msgs_ok), bad = atomic_load(&msgs_bad);
    json_int("msgs_ok", ok);
    json_int("msgs_bad", bad);
    json_int("msgs_ns", t2 - t1);
    json_int("peak_os_threads", atomic_load(&peak_threads));
    json_end_exit(ok == n_conns * n_msgs && bad == 0);
}

/* ---------------------------------------------------------- server role */

/* Numeric value of "key" in a flat JSON line, or -1 if absent. */
static double json_num(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--client") == 0)
        return client_main(argc, argv);

    json_begin("echo_server");
    n_conns = arg_long(argc, argv, 1, 1000);
    n_msgs = arg_long(argc, argv, 2, 20);
    long need = n_conns + 64;
    long nofile = raise_nofile(need);
    if (nofile < need)
        bench_fail("RLIMIT_NOFILE is %ld, need %ld (raise ulimit -n)",
                   nofile, need);

    handler_tids = calloc((size_t)n_conns, sizeof *handler_tids);
    if (!handler_tids)
        bench_fail("out of memory");

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SCHECK(listen_fd);
    int one = 1;
    SCHECK(setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    server_addr.sin_family = AF_INET;
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    server_addr.sin_port = 0; /* ephemeral */
    SCHECK(bind(listen_fd, (struct sockaddr *)&server_addr, sizeof server_addr));
    socklen_t alen = sizeof server_addr;
    SCHECK(getsockname(listen_fd, (struct sockaddr *)&server_addr, &alen));
    /* The kernel caps the backlog at net.core.somaxconn. */
    SCHECK(listen(listen_fd, n_conns < 65535 ? (int)n_conns : 65535));

    /* Control pipes: to_child -> client's stdin, from_child <- its stdout.
     * All four ends are close-on-exec; the spawn's dup2 clears the flag on
     * the copies made at 0 and 1. */
    int to_child[2], from_child[2];
    SCHECK(pipe2(to_child, O_CLOEXEC));
    SCHECK(pipe2(from_child, O_CLOEXEC));
    char a_port[16], a_c[24], a_m[24];
    snprintf(a_port, sizeof a_port, "%d", ntohs(server_addr.sin_port));
    snprintf(a_c, sizeof a_c, "%ld", n_conns);
    snprintf(a_m, sizeof a_m, "%ld", n_msgs);
    char *cargv[] = {argv[0], "--client", a_port, a_c, a_m, NULL};
    posix_spawn_file_actions_t fa;
    PCHECK(posix_spawn_file_actions_init(&fa));
    PCHECK(posix_spawn_file_actions_adddup2(&fa, to_child[0], 0));
    PCHECK(posix_spawn_file_actions_adddup2(&fa, from_child[1], 1));

    pthread_t samp_tid, acc_tid;
    atomic_store(&peak_threads, status_field("Threads:"));
    PCHECK(pthread_create(&samp_tid, NULL, sampler, NULL));
    PCHECK(pthread_create(&acc_tid, NULL, acceptor, NULL));

    int64_t t0 = now_ns();
    pid_t child;
    PCHECK(posix_spawn(&child, "/proc/self/exe", &fa, NULL, cargv, environ));
    atomic_store(&child_pid, (int)child);
    PCHECK(posix_spawn_file_actions_destroy(&fa));
    close(to_child[0]);
    close(from_child[1]);
    FILE *ctl = fdopen(from_child[0], "r");
    if (!ctl)
        bench_fail("fdopen: %s", strerror(errno));

    char line[1024];
    if (!fgets(line, sizeof line, ctl))
        bench_fail("client process died before connecting");
    if (strcmp(line, "ready\n") != 0) {
        line[strcspn(line, "\n")] = 0;
        bench_fail("client failed: %s", line);
    }
    gate_wait_arrived(&handlers_ready, n_conns);
    int64_t t1 = now_ns();
    char go = 'G';
    write_all(to_child[1], &go, 1);

    if (!fgets(line, sizeof line, ctl))
        bench_fail("client process died during the message phase");
    line[strcspn(line, "\n")] = 0;
    int64_t t2 = now_ns();
    PCHECK(pthread_join(acc_tid, NULL));
    for (long i = 0; i < n_conns; i++)
        PCHECK(pthread_join(handler_tids[i], NULL));
    /* The client has joined all its threads (it printed its line); stop
     * sampling it before it is reaped and its PID can be reused. */
    atomic_store(&child_pid, 0);
    int status = 0;
    while (waitpid(child, &status, 0) == -1)
        if (errno != EINTR)
            bench_fail("waitpid: %s", strerror(errno));
    int64_t t3 = now_ns();
    atomic_store(&sampler_stop, 1);
    PCHECK(pthread_join(samp_tid, NULL));
    fclose(ctl);
    close(to_child[1]);
    close(listen_fd);
    free(handler_tids);

    if (!strstr(line, "\"ok\":true"))
        bench_fail("client failed: %s", line);
    long total = n_conns * n_msgs;
    long ok = (long)json_num(line, "msgs_ok");
    long bad = (long)json_num(line, "msgs_bad");
    double msgs_ns = json_num(line, "msgs_ns");
    long echoed = atomic_load(&bytes_echoed);
    int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    json_int("n", n_conns);
    json_int("msgs_per_conn", n_msgs);
    json_dbl("msgs_per_s", msgs_ns > 0 ? (double)total / (msgs_ns / 1e9) : 0);
    json_dbl("ns_per_msg", msgs_ns / (double)total);
    json_dbl("us_per_msg", msgs_ns / 1e3 / (double)total);
    json_dbl("connect_ms", (double)(t1 - t0) / 1e6);
    json_dbl("msgs_ms", msgs_ns / 1e6);
    json_dbl("finish_ms", (double)(t3 - t2) / 1e6);
    json_int("peak_os_threads", atomic_load(&peak_threads));
    long self_peak = (long)json_num(line, "peak_os_threads");
    long ext_peak = atomic_load(&child_peak_threads);
    json_int("client_peak_os_threads", self_peak > ext_peak ? self_peak
                                                              : ext_peak);
    json_int("client_self_peak_os_threads", self_peak);
    json_int("client_ext_peak_os_threads", ext_peak);
    json_int("nofile_limit", nofile);
    json_int("msgs_ok", ok);
    json_int("msgs_bad", bad);
    json_end_exit(ok == total && bad == 0 && echoed == total * MSG &&
                  child_ok && msgs_ns > 0);
}
