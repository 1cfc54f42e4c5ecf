/*
 * io_close_parked: closing a descriptor that another thread is blocked on,
 * as Linux does it.  The blocked call holds the open file, not the number:
 *  - a read goes on waiting on the old pipe and gets what is written to it,
 *    not what is written to a new pipe that reuses the number;
 *  - an accept goes on listening on the old socket: a later connect to its
 *    port is accepted;
 *  - a poll sleeps on the old file and, when that file wakes it, looks the
 *    number up again: POLLNVAL;
 * and nothing is left open afterwards (the read case runs twice, the
 * descriptors counted after the first).
 */
#include "e2e.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* Open descriptors, but for /proc files: a threads library may keep
 * some of its own (vthread's monitor once opened each OS thread's
 * /proc/self/task/TID/stat in the program's table; it no longer does). */
static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = 0;
            if (!strncmp(target, "/proc/", 6))
                continue;
        }
        n++;
    }
    closedir(d);
    return n;
}

static int rp[2];
static atomic_int r_in;
static char r_got;
static ssize_t r_n;

static void *reader(void *arg)
{
    (void)arg;
    atomic_store(&r_in, 1);
    r_n = read(rp[0], &r_got, 1);
    return NULL;
}

static void test_read(void)
{
    CHECK_SYS(pipe(rp));
    int old = rp[0];
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, reader, NULL));
    WAIT_UNTIL(atomic_load(&r_in), 10000);
    sleep_ms(50); /* inside read() by now */
    CHECK_SYS(close(old));
    int q[2];
    CHECK_SYS(pipe(q)); /* likely takes the number `old` */
    CHECK_EQ(write(q[1], "n", 1), 1);
    sleep_ms(50);
    CHECK_EQ(write(rp[1], "x", 1), 1);
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(r_n, 1);
    CHECK_EQ(r_got, 'x');
    char c = 0;
    CHECK_EQ(read(q[0], &c, 1), 1); /* the new pipe kept its byte */
    CHECK_EQ(c, 'n');
    close(q[0]);
    close(q[1]);
    close(rp[1]);
    printf("read: went on waiting on the closed pipe and got its byte\n");
}

static int ls;
static atomic_int a_in;
static int a_fd = -2;

static void *acceptor(void *arg)
{
    (void)arg;
    atomic_store(&a_in, 1);
    a_fd = accept(ls, NULL, NULL);
    return NULL;
}

static void test_accept(void)
{
    ls = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK_SYS(bind(ls, (struct sockaddr *)&a, sizeof a));
    CHECK_SYS(listen(ls, 4));
    CHECK_SYS(getsockname(ls, (struct sockaddr *)&a, &len));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, acceptor, NULL));
    WAIT_UNTIL(atomic_load(&a_in), 10000);
    sleep_ms(50);
    CHECK_SYS(close(ls));
    sleep_ms(50);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c >= 0);
    CHECK_SYS(connect(c, (struct sockaddr *)&a, sizeof a));
    CHECK_OK(pthread_join(t, NULL));
    CHECK(a_fd >= 0);
    CHECK_EQ(write(c, "y", 1), 1);
    char b = 0;
    CHECK_EQ(read(a_fd, &b, 1), 1);
    CHECK_EQ(b, 'y');
    close(a_fd);
    close(c);
    printf("accept: went on listening on the closed socket and accepted\n");
}

static int pp[2];
static atomic_int p_in, p_done;
static int p_r;
static short p_rev;

static void *poller(void *arg)
{
    (void)arg;
    struct pollfd f = {pp[0], POLLIN, 0};
    atomic_store(&p_in, 1);
    p_r = poll(&f, 1, 10000);
    p_rev = f.revents;
    atomic_store(&p_done, 1);
    return NULL;
}

static void test_poll(void)
{
    CHECK_SYS(pipe(pp));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, poller, NULL));
    WAIT_UNTIL(atomic_load(&p_in), 10000);
    sleep_ms(50);
    CHECK_SYS(close(pp[0]));
    sleep_ms(100);
    CHECK(!atomic_load(&p_done)); /* the close itself wakes nobody */
    CHECK_EQ(write(pp[1], "z", 1), 1); /* the old pipe is still open */
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(p_r, 1);
    CHECK_EQ(p_rev, POLLNVAL);
    close(pp[1]);
    printf("poll: slept on the closed pipe, then reported POLLNVAL\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_read();
    /* counted from here: a threads library may keep descriptors of its
     * own once threads blocked on I/O (vthread's netpoller: two) */
    int before = count_fds();
    test_read();
    test_accept();
    test_poll();
    CHECK_EQ(count_fds(), before);
    printf("no descriptor left open\n");
    return 0;
}
