/*
 * io_pipe: blocking I/O between threads - pipe and socketpair ping-pong,
 * a 4 MiB single write() through a pipe (must transfer everything), poll,
 * select and epoll with a mix of ready and not-ready descriptors (and one
 * that becomes ready while blocked), SO_RCVTIMEO timing out with
 * EAGAIN/EWOULDBLOCK, connect() to a bound but not listening loopback port
 * (ECONNREFUSED), a loopback TCP echo server with blocking accept(), and
 * shutdown() waking a thread blocked in recv().
 */
#include "e2e.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>

/* ------------------------------------------------------- ping-pong */

struct pp {
    int in, out;
    int rounds;
    size_t size;
};

static void *echo_fn(void *arg)
{
    struct pp *p = arg;
    char buf[64];
    for (int i = 0; i < p->rounds; i++) {
        read_all(p->in, buf, p->size);
        buf[0]++;
        write_all(p->out, buf, p->size);
    }
    return NULL;
}

/* main side: send a counter, expect it back incremented */
static void pingpong(int to, int from, int rounds, size_t size,
                     int to_peer_in, int from_peer_out)
{
    struct pp p = {to_peer_in, from_peer_out, rounds, size};
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, echo_fn, &p));
    char buf[64] = {0};
    for (int i = 0; i < rounds; i++) {
        buf[0] = (char)(i & 0x3f);
        memset(buf + 1, i & 0xff, size - 1);
        write_all(to, buf, size);
        char back[64];
        read_all(from, back, size);
        if (back[0] != (char)((i & 0x3f) + 1))
            FAIL("ping-pong round %d: got %d", i, back[0]);
        if (memcmp(back + 1, buf + 1, size - 1) != 0)
            FAIL("ping-pong round %d: payload changed", i);
    }
    CHECK_OK(pthread_join(t, NULL));
}

static void test_pingpong(void)
{
    int a[2], b[2];
    CHECK_SYS(pipe(a));
    CHECK_SYS(pipe(b));
    pingpong(a[1], b[0], 10000, 1, a[0], b[1]);
    close(a[0]); close(a[1]); close(b[0]); close(b[1]);

    int s[2];
    CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, s));
    pingpong(s[0], s[0], 5000, 32, s[1], s[1]);
    close(s[0]); close(s[1]);

    CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, s));
    pingpong(s[0], s[0], 5000, 48, s[1], s[1]);
    close(s[0]); close(s[1]);
    printf("ping-pong: 10000 over pipes, 5000 over stream and datagram "
           "socketpairs\n");
}

/* -------------------------------------------------- big write */

#define BIG (4u << 20)
static int big_pipe[2];
static unsigned char *big_in;

static void *big_reader(void *arg)
{
    (void)arg;
    unsigned char *buf = malloc(BIG);
    CHECK(buf != NULL);
    size_t got = 0, chunk = 1;
    while (got < BIG) {
        size_t want = chunk < BIG - got ? chunk : BIG - got;
        ssize_t r = read(big_pipe[0], buf + got, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            FAIL("big read: %s", r < 0 ? strerror(errno) : "EOF");
        got += (size_t)r;
        chunk = chunk * 3 + 7;
        if (chunk > 200000)
            chunk = 1;
    }
    char c;
    CHECK_EQ(read(big_pipe[0], &c, 1), 0);    /* then EOF */
    CHECK(memcmp(buf, big_in, BIG) == 0);
    free(buf);
    return NULL;
}

static void test_big_write(void)
{
    big_in = malloc(BIG);
    CHECK(big_in != NULL);
    unsigned x = 12345;
    for (size_t i = 0; i < BIG; i++) {
        x = x * 1103515245u + 12345u;
        big_in[i] = (unsigned char)(x >> 24);
    }
    CHECK_SYS(pipe(big_pipe));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, big_reader, NULL));
    /* a blocking write to a pipe transfers everything before returning */
    ssize_t w = write(big_pipe[1], big_in, BIG);
    CHECK_EQ(w, (ssize_t)BIG);
    close(big_pipe[1]);
    CHECK_OK(pthread_join(t, NULL));
    close(big_pipe[0]);
    free(big_in);
    printf("one blocking write() of %u bytes into a pipe returned %u; "
           "reader got them all\n", BIG, BIG);
}

/* ----------------------------------------------- poll/select/epoll */

struct later { int fd; int ms; int close_it; };
static void *write_later(void *arg)
{
    struct later *l = arg;
    sleep_ms(l->ms);
    if (l->close_it)
        close(l->fd);
    else
        write_all(l->fd, "z", 1);
    return NULL;
}

static void test_poll(void)
{
    int p[4][2];
    for (int i = 0; i < 4; i++)
        CHECK_SYS(pipe(p[i]));
    write_all(p[1][1], "a", 1);
    write_all(p[3][1], "b", 1);

    struct pollfd f[4];
    for (int i = 0; i < 4; i++)
        f[i] = (struct pollfd){.fd = p[i][0], .events = POLLIN};
    CHECK_EQ(poll(f, 4, 5000), 2);
    CHECK_EQ(f[0].revents, 0);
    CHECK_EQ(f[1].revents, POLLIN);
    CHECK_EQ(f[2].revents, 0);
    CHECK_EQ(f[3].revents, POLLIN);

    /* a write end is writable at once */
    struct pollfd wf = {.fd = p[0][1], .events = POLLOUT};
    CHECK_EQ(poll(&wf, 1, 5000), 1);
    CHECK_EQ(wf.revents, POLLOUT);

    /* nothing ready: timeout */
    struct pollfd nf[2] = {{.fd = p[0][0], .events = POLLIN},
                           {.fd = p[2][0], .events = POLLIN}};
    int64_t t0 = now_ns();
    CHECK_EQ(poll(nf, 2, 100), 0);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK_EQ(nf[0].revents, 0);

    /* becomes ready while we are blocked */
    pthread_t t;
    struct later l = {p[2][1], 50, 0};
    CHECK_OK(pthread_create(&t, NULL, write_later, &l));
    CHECK_EQ(poll(nf, 2, 30000), 1);
    CHECK_EQ(nf[0].revents, 0);
    CHECK_EQ(nf[1].revents, POLLIN);
    CHECK_OK(pthread_join(t, NULL));

    /* select on the same mix */
    fd_set rs;
    FD_ZERO(&rs);
    int maxfd = 0;
    for (int i = 0; i < 4; i++) {
        FD_SET(p[i][0], &rs);
        if (p[i][0] > maxfd)
            maxfd = p[i][0];
    }
    struct timeval tv = {5, 0};
    CHECK_EQ(select(maxfd + 1, &rs, NULL, NULL, &tv), 3);
    CHECK(!FD_ISSET(p[0][0], &rs));
    CHECK(FD_ISSET(p[1][0], &rs));
    CHECK(FD_ISSET(p[2][0], &rs));
    CHECK(FD_ISSET(p[3][0], &rs));
    FD_ZERO(&rs);
    FD_SET(p[0][0], &rs);
    tv = (struct timeval){0, 100000};
    t0 = now_ns();
    CHECK_EQ(select(p[0][0] + 1, &rs, NULL, NULL, &tv), 0);
    CHECK_ELAPSED(t0, 100, 0);

    /* epoll: one ready now, one later */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK_SYS(ep);
    for (int i = 0; i < 4; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, p[i][0], &ev));
    }
    char c;
    read_all(p[1][0], &c, 1);
    read_all(p[2][0], &c, 1);
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, 5000);
    CHECK_EQ(n, 1);
    CHECK_EQ(evs[0].data.u32, 3);
    read_all(p[3][0], &c, 1);
    t0 = now_ns();
    CHECK_EQ(epoll_wait(ep, evs, 4, 100), 0);
    CHECK_ELAPSED(t0, 100, 0);
    l = (struct later){p[0][1], 50, 0};
    CHECK_OK(pthread_create(&t, NULL, write_later, &l));
    n = epoll_wait(ep, evs, 4, 30000);
    CHECK_EQ(n, 1);
    CHECK_EQ(evs[0].data.u32, 0);
    CHECK_OK(pthread_join(t, NULL));
    read_all(p[0][0], &c, 1);
    close(ep);

    /* POLLHUP when the last write end is closed while we wait */
    l = (struct later){p[2][1], 50, 1};
    CHECK_OK(pthread_create(&t, NULL, write_later, &l));
    struct pollfd hf = {.fd = p[2][0], .events = POLLIN};
    CHECK_EQ(poll(&hf, 1, 30000), 1);
    CHECK(hf.revents & POLLHUP);
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(read(p[2][0], &c, 1), 0);

    for (int i = 0; i < 4; i++) {
        close(p[i][0]);
        if (i != 2)
            close(p[i][1]);
    }
    printf("poll/select/epoll: ready and not-ready fds told apart; "
           "timeouts; wake-up on data and on hang-up\n");
}

/* ---------------------------------------------------- SO_RCVTIMEO */

static void test_rcvtimeo(void)
{
    int s[2];
    CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, s));
    struct timeval tv = {0, 150 * 1000};
    CHECK_SYS(setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    char c;
    int64_t t0 = now_ns();
    errno = 0;
    ssize_t r = read(s[0], &c, 1);
    int e = errno;
    CHECK_EQ(r, -1);
    if (e != EAGAIN && e != EWOULDBLOCK)
        FAIL("read with SO_RCVTIMEO: errno %d (%s)", e, strerror(e));
    /* the kernel counts this timeout in scheduler ticks */
    CHECK_ELAPSED(t0, 150, 10);
    t0 = now_ns();
    CHECK_ERRNO(recv(s[0], &c, 1, 0), EAGAIN);
    CHECK_ELAPSED(t0, 150, 10);

    /* data arriving in time is returned */
    pthread_t t;
    struct later l = {s[1], 30, 0};
    tv = (struct timeval){10, 0};
    CHECK_SYS(setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    CHECK_OK(pthread_create(&t, NULL, write_later, &l));
    CHECK_EQ(read(s[0], &c, 1), 1);
    CHECK_EQ(c, 'z');
    CHECK_OK(pthread_join(t, NULL));
    close(s[0]);
    close(s[1]);
    printf("SO_RCVTIMEO: blocking read timed out with EAGAIN; data in time "
           "was returned\n");
}

/* ------------------------------------------------------------- TCP */

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_SYS(fd);
    return fd;
}

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = port;
    return a;
}

static void test_refused(void)
{
    /* a port that is bound but not listening refuses connections, and no
     * other process can take it meanwhile */
    int b = tcp_socket();
    struct sockaddr_in a = loopback(0);
    CHECK_SYS(bind(b, (struct sockaddr *)&a, sizeof a));
    socklen_t len = sizeof a;
    CHECK_SYS(getsockname(b, (struct sockaddr *)&a, &len));
    for (int i = 0; i < 3; i++) {
        int c = tcp_socket();
        CHECK_ERRNO(connect(c, (struct sockaddr *)&a, sizeof a),
                    ECONNREFUSED);
        close(c);
    }
    close(b);
    printf("connect to a closed loopback port: ECONNREFUSED\n");
}

#define NCLIENT 4
#define NMSG 500
#define MSGSZ 64
static int lfd;

static void *serve_conn(void *arg)
{
    int c = (int)(intptr_t)arg;
    char buf[MSGSZ];
    for (;;) {
        ssize_t r = read(c, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        CHECK(r >= 0);
        if (r == 0)
            break;
        write_all(c, buf, (size_t)r);
    }
    close(c);
    return NULL;
}

static void *acceptor(void *arg)
{
    (void)arg;
    pthread_t h[NCLIENT];
    for (int i = 0; i < NCLIENT; i++) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);   /* blocks */
        CHECK_SYS(c);
        CHECK_OK(pthread_create(&h[i], NULL, serve_conn, (void *)(intptr_t)c));
    }
    for (int i = 0; i < NCLIENT; i++)
        CHECK_OK(pthread_join(h[i], NULL));
    return NULL;
}

static struct sockaddr_in srv;
static void *client(void *arg)
{
    int id = (int)(intptr_t)arg;
    sleep_ms(10 * id);     /* the acceptor is blocked in accept() */
    int c = tcp_socket();
    CHECK_SYS(connect(c, (struct sockaddr *)&srv, sizeof srv));
    int one = 1;
    CHECK_SYS(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    char out[MSGSZ], in[MSGSZ];
    long sum = 0;
    for (int m = 0; m < NMSG; m++) {
        for (int k = 0; k < MSGSZ; k++)
            out[k] = (char)(id * 31 + m * 7 + k);
        write_all(c, out, MSGSZ);
        read_all(c, in, MSGSZ);
        CHECK(memcmp(in, out, MSGSZ) == 0);
        sum += (unsigned char)in[m % MSGSZ];
    }
    close(c);
    return (void *)sum;
}

static void test_tcp_echo(void)
{
    lfd = tcp_socket();
    srv = loopback(0);
    CHECK_SYS(bind(lfd, (struct sockaddr *)&srv, sizeof srv));
    socklen_t len = sizeof srv;
    CHECK_SYS(getsockname(lfd, (struct sockaddr *)&srv, &len));
    CHECK_SYS(listen(lfd, 16));
    pthread_t a, c[NCLIENT];
    CHECK_OK(pthread_create(&a, NULL, acceptor, NULL));
    for (int i = 0; i < NCLIENT; i++)
        CHECK_OK(pthread_create(&c[i], NULL, client, (void *)(intptr_t)i));
    long total = 0;
    for (int i = 0; i < NCLIENT; i++) {
        void *rv;
        CHECK_OK(pthread_join(c[i], &rv));
        total += (long)rv;
    }
    CHECK_OK(pthread_join(a, NULL));
    close(lfd);
    printf("TCP echo over loopback: %d clients x %d messages, checksum "
           "%ld\n", NCLIENT, NMSG, total);
}

/* ----------------------------------------- shutdown wakes a reader */

static void *blocked_recv(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    ssize_t r;
    while ((r = recv(fd, &c, 1, 0)) < 0 && errno == EINTR)
        ;
    return (void *)(intptr_t)r;
}

static void test_shutdown(void)
{
    int s[2];
    CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, s));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, blocked_recv, (void *)(intptr_t)s[0]));
    sleep_ms(50);
    CHECK_SYS(shutdown(s[0], SHUT_RDWR));
    void *rv;
    CHECK_OK(pthread_join(t, &rv));
    CHECK_EQ((intptr_t)rv, 0);
    close(s[0]);
    close(s[1]);
    printf("shutdown(SHUT_RDWR) woke a thread blocked in recv(): EOF\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_pingpong();
    test_big_write();
    test_poll();
    test_rcvtimeo();
    test_refused();
    test_tcp_echo();
    test_shutdown();
    return 0;
}
