/*
 * io_more - blocking I/O on every kind of descriptor, and blocking that a
 * threads library cannot see.
 *
 *  - pty: a thread blocks reading the master while another writes the slave;
 *  - eventfd: a reader blocks until a writer adds to the counter;
 *  - FIFO: open() of a FIFO blocks until the other end opens, then data;
 *  - flock: one thread blocks in flock() on a file another thread holds,
 *    while 2,000 other threads start, work and finish;
 *  - SO_RCVTIMEO: recv times out with EAGAIN after the timeout;
 *  - connect to a closed loopback port: ECONNREFUSED;
 *  - ppoll / epoll_pwait / pselect (with and without a signal mask) and
 *    sendmmsg / recvmmsg;
 *  - a thread-per-connection echo server: 1,000 client threads connect to
 *    it (2,000 threads in all), each sends 10 messages and checks the echo;
 *    while every connection is open, the number of OS threads is written
 *    to $E2E_THREADS_FILE (the runner bounds it under vthread).
 */
#include "e2e.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* Reads exactly n bytes (blocking). */
/* ----------------------------------------------------------------- pty */

static int pty_master, pty_slave;
static void *pty_writer(void *arg)
{
    sleep_ms(20);
    CHECK(write(pty_slave, "hello pty\n", 10) == 10);
    return arg;
}

static void test_pty(void)
{
    CHECK_SYS(openpty(&pty_master, &pty_slave, NULL, NULL, NULL));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, pty_writer, NULL));
    char buf[64];
    ssize_t n = read(pty_master, buf, sizeof buf); /* blocks ~20 ms */
    CHECK(n > 0);
    CHECK(memcmp(buf, "hello pty", 9) == 0);
    CHECK_OK(pthread_join(t, NULL));
    close(pty_master);
    close(pty_slave);
    printf("pty: master read what the slave wrote\n");
}

/* ------------------------------------------------------------- eventfd */

static int efd;
static void *ev_writer(void *arg)
{
    sleep_ms(20);
    uint64_t v = 42;
    CHECK(write(efd, &v, sizeof v) == sizeof v);
    return arg;
}

static void test_eventfd(void)
{
    efd = eventfd(0, 0);
    CHECK(efd >= 0);
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, ev_writer, NULL));
    uint64_t v = 0;
    CHECK(read(efd, &v, sizeof v) == sizeof v);
    CHECK_EQ(v, 42);
    CHECK_OK(pthread_join(t, NULL));
    close(efd);
    printf("eventfd: blocked read got 42\n");
}

/* ---------------------------------------------------------------- FIFO */

static char fifo_path[64];
static void *fifo_writer(void *arg)
{
    int fd = open(fifo_path, O_WRONLY); /* blocks until the reader opens */
    CHECK(fd >= 0);
    CHECK(write(fd, "through the fifo", 16) == 16);
    close(fd);
    return arg;
}

static void test_fifo(void)
{
    snprintf(fifo_path, sizeof fifo_path, "/tmp/e2e-fifo-%d", (int)getpid());
    unlink(fifo_path);
    CHECK_SYS(mkfifo(fifo_path, 0600));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, fifo_writer, NULL));
    int fd = open(fifo_path, O_RDONLY);
    CHECK(fd >= 0);
    char buf[16];
    read_all(fd, buf, 16);
    CHECK(memcmp(buf, "through the fifo", 16) == 0);
    char extra;
    CHECK_EQ(read(fd, &extra, 1), 0); /* EOF after the writer closed */
    close(fd);
    CHECK_OK(pthread_join(t, NULL));
    unlink(fifo_path);
    printf("fifo: open blocked until both ends, data and EOF arrived\n");
}

/* --------------------------------------------------------------- flock */

static char lock_path[64];
static atomic_int workers_done;
static atomic_int locker_waiting;

static void *flock_waiter(void *arg)
{
    (void)arg;
    int fd = open(lock_path, O_RDWR); /* its own open file description */
    CHECK(fd >= 0);
    atomic_store(&locker_waiting, 1);
    CHECK_SYS(flock(fd, LOCK_EX)); /* blocks until main unlocks */
    int done = atomic_load(&workers_done);
    close(fd);
    return (void *)(intptr_t)done;
}

static void *small_work(void *arg)
{
    volatile long x = 0;
    for (int i = 0; i < 1000; i++)
        x += i;
    atomic_fetch_add(&workers_done, 1);
    return arg;
}

static void test_flock(void)
{
    snprintf(lock_path, sizeof lock_path, "/tmp/e2e-lock-%d", (int)getpid());
    int fd = open(lock_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK_SYS(flock(fd, LOCK_EX));
    pthread_t w;
    CHECK_OK(pthread_create(&w, NULL, flock_waiter, NULL));
    while (!atomic_load(&locker_waiting))
        sleep_ms(1);
    sleep_ms(20); /* it is now blocked in flock */
    /* 2,000 threads must run to completion while it is stuck. */
    enum { N = 2000 };
    static pthread_t t[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(pthread_create(&t[i], NULL, small_work, NULL));
    for (int i = 0; i < N; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    CHECK_EQ(atomic_load(&workers_done), N);
    CHECK_SYS(flock(fd, LOCK_UN));
    void *done;
    CHECK_OK(pthread_join(w, &done));
    CHECK_EQ((intptr_t)done, N);
    close(fd);
    unlink(lock_path);
    printf("flock: 2000 threads finished while one was blocked in flock\n");
}

/* --------------------------------------------------- socket timeouts etc */

static void test_rcvtimeo_and_refused(void)
{
    int sv[2];
    CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct timeval tv = {0, 50000};
    CHECK_SYS(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    char c;
    int64_t t0 = now_ns();
    ssize_t r = recv(sv[0], &c, 1, 0);
    int e = errno;
    int64_t dt = now_ns() - t0;
    CHECK(r == -1 && (e == EAGAIN || e == EWOULDBLOCK));
    CHECK(dt >= 45000000 && dt < 2000000000);
    close(sv[0]);
    close(sv[1]);
    printf("SO_RCVTIMEO: recv timed out with EAGAIN\n");

    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK_SYS(bind(s, (struct sockaddr *)&a, sizeof a));
    CHECK_SYS(getsockname(s, (struct sockaddr *)&a, &al));
    close(s); /* nobody listens on that port now */
    s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(s, (struct sockaddr *)&a, sizeof a) == -1);
    CHECK_EQ(errno, ECONNREFUSED);
    close(s);
    printf("connect to a closed port: ECONNREFUSED\n");
}

/* --------------------------------------- ppoll, epoll_pwait, pselect, mmsg */

static int pf[2];
static void *late_writer(void *arg)
{
    sleep_ms(20);
    CHECK(write(pf[1], "ab", 2) == 2);
    return arg;
}

static void test_poll_family(void)
{
    CHECK_SYS(pipe(pf));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, late_writer, NULL));
    struct pollfd p = {pf[0], POLLIN, 0};
    struct timespec ts = {5, 0};
    CHECK_EQ(ppoll(&p, 1, &ts, NULL), 1); /* waits ~20 ms */
    CHECK(p.revents & POLLIN);
    CHECK_OK(pthread_join(t, NULL));
    char buf[2];
    read_all(pf[0], buf, 2);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = pf[0]}, out;
    CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, pf[0], &ev));
    sigset_t none;
    sigemptyset(&none);
    CHECK_OK(pthread_create(&t, NULL, late_writer, NULL));
    CHECK_EQ(epoll_pwait(ep, &out, 1, 5000, &none), 1);
    CHECK_EQ(out.data.fd, pf[0]);
    CHECK_OK(pthread_join(t, NULL));
    read_all(pf[0], buf, 2);
    close(ep);

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(pf[0], &rs);
    struct timespec to = {0, 30000000};
    int64_t t0 = now_ns();
    CHECK_EQ(pselect(pf[0] + 1, &rs, NULL, NULL, &to, &none), 0);
    CHECK(now_ns() - t0 >= 25000000);
    close(pf[0]);
    close(pf[1]);

    int sv[2];
    CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    char m1[] = "one", m2[] = "two";
    struct iovec iv[2] = {{m1, 3}, {m2, 3}};
    struct mmsghdr mm[2];
    memset(mm, 0, sizeof mm);
    mm[0].msg_hdr.msg_iov = &iv[0];
    mm[0].msg_hdr.msg_iovlen = 1;
    mm[1].msg_hdr.msg_iov = &iv[1];
    mm[1].msg_hdr.msg_iovlen = 1;
    CHECK_EQ(sendmmsg(sv[0], mm, 2, 0), 2);
    char r1[8] = {0}, r2[8] = {0};
    struct iovec rv[2] = {{r1, 8}, {r2, 8}};
    struct mmsghdr rm[2];
    memset(rm, 0, sizeof rm);
    rm[0].msg_hdr.msg_iov = &rv[0];
    rm[0].msg_hdr.msg_iovlen = 1;
    rm[1].msg_hdr.msg_iov = &rv[1];
    rm[1].msg_hdr.msg_iovlen = 1;
    CHECK_EQ(recvmmsg(sv[1], rm, 2, 0, NULL), 2);
    CHECK(!strcmp(r1, "one") && !strcmp(r2, "two"));
    close(sv[0]);
    close(sv[1]);
    printf("ppoll, epoll_pwait, pselect, sendmmsg/recvmmsg: as the kernel\n");
}

/* --------------------------------------------------------- echo server */

enum { CONNS = 1000, MSGS = 10, MSGLEN = 64 };
static struct sockaddr_in srv_addr;
static atomic_int connected;
static atomic_int may_close;

static void *echo_conn(void *arg)
{
    (void)0;
    int fd = (int)(intptr_t)arg;
    char buf[MSGLEN];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0)
            FAIL("server read: %s", strerror(errno));
        CHECK(write(fd, buf, (size_t)n) == n);
    }
    close(fd);
    return NULL;
}

static void *acceptor(void *arg)
{
    (void)0;
    int ls = (int)(intptr_t)arg;
    for (int i = 0; i < CONNS; i++) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            FAIL("accept: %s", strerror(errno));
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)c));
        CHECK_OK(pthread_detach(t));
    }
    return NULL;
}

static void *client(void *arg)
{
    int id = (int)(intptr_t)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    CHECK_SYS(connect(s, (struct sockaddr *)&srv_addr, sizeof srv_addr));
    atomic_fetch_add(&connected, 1);
    char out[MSGLEN], in[MSGLEN];
    for (int m = 0; m < MSGS; m++) {
        for (int k = 0; k < MSGLEN; k++)
            out[k] = (char)(id * 31 + m * 7 + k);
        CHECK(write(s, out, MSGLEN) == MSGLEN);
        read_all(s, in, MSGLEN);
        CHECK(memcmp(in, out, MSGLEN) == 0);
    }
    /* keep the connection until every client is connected */
    while (!atomic_load(&may_close))
        sleep_ms(2);
    close(s);
    return NULL;
}

static void write_threads_line(void)
{
    const char *path = getenv("E2E_THREADS_FILE");
    FILE *f = fopen("/proc/self/status", "r");
    char line[256], keep[256] = "";
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8))
            snprintf(keep, sizeof keep, "%s", line);
    if (f)
        fclose(f);
    fprintf(stderr, "io_more: echo server with %d connections: %s", CONNS,
            keep);
    if (path) {
        FILE *o = fopen(path, "w");
        if (o) {
            fputs(keep, o);
            fclose(o);
        }
    }
}

static void test_echo(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 3 * CONNS) {
        rl.rlim_cur = rl.rlim_max < 3 * CONNS ? rl.rlim_max : 3 * CONNS;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    srv_addr.sin_family = AF_INET;
    srv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof srv_addr;
    CHECK_SYS(bind(ls, (struct sockaddr *)&srv_addr, sizeof srv_addr));
    CHECK_SYS(listen(ls, 4096));
    CHECK_SYS(getsockname(ls, (struct sockaddr *)&srv_addr, &al));
    pthread_t acc;
    CHECK_OK(pthread_create(&acc, NULL, acceptor, (void *)(intptr_t)ls));
    static pthread_t c[CONNS];
    for (int i = 0; i < CONNS; i++)
        CHECK_OK(pthread_create(&c[i], NULL, client, (void *)(intptr_t)i));
    while (atomic_load(&connected) < CONNS)
        sleep_ms(5);
    sleep_ms(50);
    write_threads_line();
    atomic_store(&may_close, 1);
    for (int i = 0; i < CONNS; i++)
        CHECK_OK(pthread_join(c[i], NULL));
    CHECK_OK(pthread_join(acc, NULL));
    close(ls);
    printf("echo server: %d connections x %d messages verified\n", CONNS,
           MSGS);
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_pty();
    test_eventfd();
    test_fifo();
    test_flock();
    test_rcvtimeo_and_refused();
    test_poll_family();
    test_echo();
    return 0;
}
