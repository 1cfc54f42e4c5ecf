/*
 * io_fd_reuse: a descriptor a thread has waited on is closed by a path the
 * program does not call close() for -- fclose() of an fdopen()ed stream,
 * pclose(), freopen(), close_range(), closefrom(), syscall(SYS_close) --
 * and its number is reused at once by a new pipe or socket.  A thread then
 * blocked reading the new descriptor must be woken by data written to it,
 * and SO_RCVTIMEO on a socket that reuses a pipe's number must time out.
 * Flags changed between waits are honoured: O_NONBLOCK set with fcntl or
 * ioctl(FIONBIO), on the descriptor or on a dup of it, makes read() fail
 * with EAGAIN at once; cleared, read() blocks again; SO_RCVTIMEO set after
 * blocking receives applies to the next one.
 * Finally the program closes every descriptor from 3 up, as daemons do:
 * exactly its own are closed (the output compares the count and the next
 * open()'s number with the native run), and threads still block and wake
 * on new pipes afterwards.
 * (glibc closes the stdio descriptors internally; a runtime that keeps a
 * per-number registration must still notice.)
 */
#include "e2e.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>

static int rfd;
static int poll_first; /* wait in poll() before reading */

static void *reader(void *arg)
{
    (void)arg;
    char c = 0;
    if (poll_first) {
        struct pollfd pf = {.fd = rfd, .events = POLLIN};
        if (poll(&pf, 1, -1) != 1)
            return (void *)(intptr_t)-1;
    }
    ssize_t n = read(rfd, &c, 1);
    return (void *)(intptr_t)(n == 1 ? c : -1);
}

/* A reader blocks on p[0] until we write: the descriptor is now known to
 * whatever waits for descriptors. */
static void wait_once(int p[2], char c)
{
    pthread_t t;
    rfd = p[0];
    CHECK_OK(pthread_create(&t, NULL, reader, NULL));
    sleep_ms(20);
    write_all(p[1], &c, 1);
    void *r;
    CHECK_OK(pthread_join(t, &r));
    CHECK_EQ((intptr_t)r, c);
}

/* After the old descriptor went: a new pipe takes the same number (the
 * lowest free), and a reader blocked on it is woken by a write. */
static void reuse(int old, const char *how)
{
    int q[2];
    CHECK_SYS(pipe(q));
    if (q[0] != old)
        FAIL("%s: new pipe got %d, not the reused %d", how, q[0], old);
    wait_once(q, 'y');
    close(q[0]);
    close(q[1]);
    printf("%s: woken on the reused descriptor\n", how);
}

enum { FCLOSE, FREOPEN, CLOSE_RANGE, CLOSEFROM, SYSCALL_CLOSE, NWAYS };
static const char *const names[] = {"fclose", "freopen", "close_range",
                                    "closefrom", "syscall(SYS_close)"};

int main(int argc, char **argv)
{
    E2E_INIT(argv[0]);
    (void)argc;
    for (int how = 0; how < NWAYS; how++) {
        int p[2];
        CHECK_SYS(pipe(p));
        wait_once(p, 'x');
        int old = p[0];
        CHECK_SYS(close(p[1]));
        switch (how) {
        case FCLOSE: {
            FILE *f = fdopen(old, "r");
            CHECK(f != NULL);
            CHECK_EQ(fclose(f), 0);
            break;
        }
        case FREOPEN: {
            /* freopen closes the old descriptor inside glibc and opens
             * the new file at the lowest free number: the same one.  The
             * new file is a new pipe's read end (through /proc), so the
             * reader blocked on that number must be woken by its writer;
             * nothing but freopen ever closes the old number here.  (A
             * pipe opened by path refuses RWF_NOWAIT, so read() would
             * block plainly; poll() waits through the netpoller.) */
            int q[2];
            CHECK_SYS(pipe(q));
            FILE *f = fdopen(old, "r");
            CHECK(f != NULL);
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", q[0]);
            f = freopen(path, "r", f);
            CHECK(f != NULL);
            if (fileno(f) != old)
                FAIL("freopen: reopened at %d, not %d", fileno(f), old);
            int r[2] = {old, q[1]};
            poll_first = 1;
            wait_once(r, 'f');
            poll_first = 0;
            fclose(f);
            close(q[0]);
            close(q[1]);
            printf("%s: woken on the reused descriptor\n", names[how]);
            continue;
        }
        case CLOSE_RANGE:
            CHECK_SYS(close_range((unsigned)old, (unsigned)old, 0));
            break;
        case CLOSEFROM:
            closefrom(old);
            break;
        case SYSCALL_CLOSE:
            CHECK_SYS(syscall(SYS_close, old));
            break;
        }
        reuse(old, names[how]);
    }

    /* A pipe's number reused by a socket with a receive timeout: the
     * blocking recv must honour SO_RCVTIMEO (EAGAIN after ~100 ms). */
    int p[2];
    CHECK_SYS(pipe(p));
    wait_once(p, 'z');
    int old = p[0];
    close(p[1]);
    FILE *f = fdopen(old, "r");
    CHECK(f != NULL);
    fclose(f);
    int sv[2];
    CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(sv[0], old);
    struct timeval tv = {0, 100000};
    CHECK_SYS(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    char c;
    int64_t t0 = now_ns();
    ssize_t n = read(sv[0], &c, 1);
    CHECK_EQ(n, -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    CHECK_ELAPSED(t0, 100, 20);
    printf("SO_RCVTIMEO on a reused number: timed out\n");
    close(sv[0]);
    close(sv[1]);

    /* Flags changed between waits. */
    {
        int q[2];
        CHECK_SYS(pipe(q));
        wait_once(q, 'a');
        char c;
        CHECK_SYS(fcntl(q[0], F_SETFL, O_NONBLOCK));
        CHECK_ERRNO(read(q[0], &c, 1), EAGAIN);
        CHECK_SYS(fcntl(q[0], F_SETFL, 0));
        wait_once(q, 'b');
        int on = 1, d = dup(q[0]);
        CHECK_SYS(ioctl(d, FIONBIO, &on)); /* through another number */
        CHECK_ERRNO(read(q[0], &c, 1), EAGAIN);
        on = 0;
        CHECK_SYS(ioctl(q[0], FIONBIO, &on));
        wait_once(q, 'c');
        close(d);
        close(q[0]);
        close(q[1]);
        printf("O_NONBLOCK changes between waits are seen\n");

        int sp[2];
        CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
        wait_once(sp, 'd'); /* a blocking receive with no timeout */
        struct timeval tmo = {0, 50000};
        CHECK_SYS(setsockopt(sp[0], SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo));
        int64_t t1 = now_ns();
        CHECK_ERRNO(read(sp[0], &c, 1), EAGAIN);
        CHECK_ELAPSED(t1, 50, 10);
        close(sp[0]);
        close(sp[1]);
        printf("SO_RCVTIMEO set after waits applies\n");
    }

    /* Open a few, then close everything from 3 up one by one. */
    int a = open("/dev/null", O_RDONLY), b = dup(a);
    CHECK(a >= 0 && b >= 0);
    printf("next descriptors: %d %d\n", a, b);
    int closed = 0;
    for (int fd = 3; fd < 1024; fd++)
        closed += close(fd) == 0;
    printf("closed %d descriptors from 3 up\n", closed);
    int q[2];
    CHECK_SYS(pipe(q));
    printf("pipe after that: %d %d\n", q[0], q[1]);
    wait_once(q, 'w');
    close(q[0]);
    close(q[1]);
    closefrom(3);
    CHECK_SYS(pipe(q));
    wait_once(q, 'v');
    printf("threads still wait on pipes after closefrom(3)\n");
    return 0;
}
