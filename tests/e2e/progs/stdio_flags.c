/*
 * stdio_flags: blocking I/O from threads must not leave O_NONBLOCK (or any
 * other file status flag) set on the descriptors, neither as seen through
 * fcntl(F_GETFL) in the process nor on the open file description itself,
 * which is shared with other processes (a shell's terminal, a pipe's other
 * users).  An M:N runtime that makes descriptors non-blocking internally
 * must hide that and must not leak it.
 *
 *  1. fds 0, 1, 2 as given: flags unchanged after threads used them.
 *  2. an in-process pipe: flags unchanged while a thread is blocked in
 *     read() on it and afterwards; an O_NONBLOCK set by the program itself
 *     is honoured (EAGAIN) and reported, and clearing it works.
 *  3. a child (this program re-executed, so under the same LD_PRELOAD)
 *     whose fds 0, 1, 2 are pipes: its threads block reading 0 and writing
 *     1 and 2; meanwhile and afterwards the parent, which holds the same
 *     open file descriptions, samples their flags: never O_NONBLOCK.
 */
#include "e2e.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

static int getfl(int fd)
{
    int f = fcntl(fd, F_GETFL);
    if (f == -1)
        FAIL("fcntl(%d, F_GETFL): %s", fd, strerror(errno));
    return f;
}

/* ---------------------------------------------------- the child */

#define CHILD_IN_CHUNK 1000
#define CHILD_IN_CHUNKS 3
#define CHILD_OUT (256 * 1024)
#define CHILD_ERR (64 * 1024)

static atomic_long child_in_sum, child_in_n;

static void *child_reader(void *arg)
{
    (void)arg;
    char buf[512];
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            FAIL("child read(0): %s", strerror(errno));
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            atomic_fetch_add(&child_in_sum, (unsigned char)buf[i]);
        atomic_fetch_add(&child_in_n, r);
    }
    return NULL;
}

static void *child_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t total = fd == 1 ? CHILD_OUT : CHILD_ERR;
    char *buf = malloc(total);
    CHECK(buf != NULL);
    for (size_t i = 0; i < total; i++)
        buf[i] = (char)('a' + i % 26);
    /* one big write: blocks until the parent drains the pipe */
    ssize_t w = write(fd, buf, total);
    if (w != (ssize_t)total)
        FAIL("child write(%d) returned %zd: %s", fd, w, strerror(errno));
    free(buf);
    return NULL;
}

static int child_main(void)
{
    int fl[3];
    for (int fd = 0; fd < 3; fd++) {
        fl[fd] = getfl(fd);
        if (fl[fd] & O_NONBLOCK)
            FAIL("child: fd %d starts with O_NONBLOCK", fd);
    }
    CHECK_EQ(fl[0] & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fl[1] & O_ACCMODE, O_WRONLY);
    CHECK_EQ(fl[2] & O_ACCMODE, O_WRONLY);
    pthread_t r, w1, w2;
    CHECK_OK(pthread_create(&r, NULL, child_reader, NULL));
    CHECK_OK(pthread_create(&w1, NULL, child_writer, (void *)(intptr_t)1));
    CHECK_OK(pthread_create(&w2, NULL, child_writer, (void *)(intptr_t)2));
    CHECK_OK(pthread_join(r, NULL));
    CHECK_OK(pthread_join(w1, NULL));
    CHECK_OK(pthread_join(w2, NULL));
    for (int fd = 0; fd < 3; fd++)
        if (getfl(fd) != fl[fd])
            FAIL("child: fd %d flags 0%o, were 0%o", fd, getfl(fd), fl[fd]);
    char line[128];
    int n = snprintf(line, sizeof line, "child read %ld bytes, sum %ld\n",
                     atomic_load(&child_in_n), atomic_load(&child_in_sum));
    write_all(1, line, (size_t)n);
    return 0;
}

/* ----------------------------------------------------- the parent */

static int shared_fd[3];       /* parent's copies of the child's 0, 1, 2 */
static int shared_fl[3];

static void check_shared(const char *when)
{
    for (int i = 0; i < 3; i++) {
        int f = getfl(shared_fd[i]);
        if (f & O_NONBLOCK)
            FAIL("child's fd %d has O_NONBLOCK set (%s)", i, when);
        if (f != shared_fl[i])
            FAIL("child's fd %d flags 0%o, were 0%o (%s)", i, f,
                 shared_fl[i], when);
    }
}

static void drain(int fd, size_t total, char base)
{
    char buf[4096];
    size_t got = 0;
    while (got < total) {
        size_t want = total - got < sizeof buf ? total - got : sizeof buf;
        ssize_t r = read(fd, buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            FAIL("drain: %s", r < 0 ? strerror(errno) : "EOF");
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != (char)(base + (got + (size_t)i) % 26))
                FAIL("drain: wrong byte at %zu", got + (size_t)i);
        got += (size_t)r;
        check_shared("while the child writes");
        sleep_ms(1);
    }
}

static void test_child(const char *self)
{
    int in[2], out[2], err[2];
    CHECK_SYS(pipe(in));
    CHECK_SYS(pipe(out));
    CHECK_SYS(pipe(err));
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
            _exit(120);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        close(err[0]); close(err[1]);
        execl(self, "stdio_flags", "child", (char *)NULL);
        _exit(121);
    }
    /* keep the child's open file descriptions; close only what would stop
     * EOF on the child's stdin */
    shared_fd[0] = in[0];
    shared_fd[1] = out[1];
    shared_fd[2] = err[1];
    for (int i = 0; i < 3; i++)
        shared_fl[i] = getfl(shared_fd[i]);

    /* the child's threads are now blocking: reader on empty fd 0, writers
     * on full pipes */
    for (int k = 0; k < 30; k++) {
        check_shared("while the child blocks");
        sleep_ms(5);
    }
    char buf[CHILD_IN_CHUNK];
    long sum = 0;
    for (int c = 0; c < CHILD_IN_CHUNKS; c++) {
        for (int i = 0; i < CHILD_IN_CHUNK; i++) {
            buf[i] = (char)(c * 7 + i);
            sum += (unsigned char)buf[i];
        }
        write_all(in[1], buf, sizeof buf);
        for (int k = 0; k < 6; k++) {
            check_shared("between input chunks");
            sleep_ms(5);
        }
    }
    close(in[1]);
    drain(out[0], CHILD_OUT, 'a');
    drain(err[0], CHILD_ERR, 'a');

    char line[128] = "";
    size_t got = 0;
    while (got < sizeof line - 1 && (got == 0 || line[got - 1] != '\n')) {
        ssize_t r = read(out[0], line + got, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            FAIL("child sent no summary line");
        got += (size_t)r;
    }
    line[got] = 0;
    char want[128];
    snprintf(want, sizeof want, "child read %d bytes, sum %ld\n",
             CHILD_IN_CHUNK * CHILD_IN_CHUNKS, sum);
    if (strcmp(line, want) != 0)
        FAIL("child said '%s', expected '%s'", line, want);

    int st;
    while (waitpid(pid, &st, 0) == -1)
        CHECK_EQ(errno, EINTR);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("child failed: status 0x%x", st);
    check_shared("after the child exited");
    for (int i = 0; i < 2; i++) {
        close(in[i]);
        close(err[i]);
    }
    close(out[0]);
    close(out[1]);
    printf("child with piped stdin/stdout/stderr: %s", line);
    printf("child's stdin/stdout/stderr never had O_NONBLOCK, seen from "
           "the parent\n");
}

/* -------------------------------------------- in-process pipe */

static int pp[2];
static atomic_int reader_state;   /* 1 about to read, 2 done */
static atomic_long reader_result, reader_errno;

static void *pipe_reader(void *arg)
{
    (void)arg;
    char c = 0;
    atomic_store(&reader_state, 1);
    errno = 0;
    ssize_t r = read(pp[0], &c, 1);
    atomic_store(&reader_errno, errno);
    atomic_store(&reader_result, r == 1 ? c : r);
    atomic_store(&reader_state, 2);
    return NULL;
}

static void test_pipe(void)
{
    CHECK_SYS(pipe(pp));
    int f0 = getfl(pp[0]), f1 = getfl(pp[1]);
    CHECK_EQ(f0, O_RDONLY);
    CHECK_EQ(f1, O_WRONLY);

    /* blocking read: flags unchanged while blocked and afterwards */
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, pipe_reader, NULL));
    WAIT_UNTIL(atomic_load(&reader_state) == 1, 10000);
    for (int k = 0; k < 10; k++) {
        sleep_ms(5);
        CHECK_EQ(getfl(pp[0]), f0);
        CHECK_EQ(getfl(pp[1]), f1);
    }
    CHECK_EQ(atomic_load(&reader_state), 1);    /* still blocked */
    write_all(pp[1], "q", 1);
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(atomic_load(&reader_result), 'q');
    CHECK_EQ(getfl(pp[0]), f0);
    CHECK_EQ(getfl(pp[1]), f1);

    /* the program's own O_NONBLOCK is honoured and reported */
    CHECK_SYS(fcntl(pp[0], F_SETFL, f0 | O_NONBLOCK));
    CHECK_EQ(getfl(pp[0]), f0 | O_NONBLOCK);
    atomic_store(&reader_state, 0);
    CHECK_OK(pthread_create(&t, NULL, pipe_reader, NULL));
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(atomic_load(&reader_result), -1);
    CHECK_EQ(atomic_load(&reader_errno), EAGAIN);
    CHECK_EQ(getfl(pp[0]), f0 | O_NONBLOCK);
    /* and clearing it makes reads block again */
    CHECK_SYS(fcntl(pp[0], F_SETFL, f0));
    CHECK_EQ(getfl(pp[0]), f0);
    atomic_store(&reader_state, 0);
    CHECK_OK(pthread_create(&t, NULL, pipe_reader, NULL));
    WAIT_UNTIL(atomic_load(&reader_state) == 1, 10000);
    sleep_ms(30);
    CHECK_EQ(atomic_load(&reader_state), 1);
    write_all(pp[1], "r", 1);
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(atomic_load(&reader_result), 'r');
    CHECK_EQ(getfl(pp[0]), f0);
    close(pp[0]);
    close(pp[1]);
    printf("pipe: flags unchanged across a blocking read; own O_NONBLOCK "
           "gives EAGAIN and can be cleared\n");
}

/* ---------------------------------------------------- fds 0, 1, 2 */

static void *use_stdio_fds(void *arg)
{
    int which = (int)(intptr_t)arg;
    if (which == 0) {
        /* read stdin only if that cannot hang (the runner gives
         * /dev/null) */
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (!isatty(0) && poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
            char buf[4096];
            ssize_t r;
            long n = 0;
            while ((r = read(0, buf, sizeof buf)) > 0 && n < (1 << 20))
                n += r;
        }
    } else if (which == 1) {
        const char *m = "stdout: written by a thread with write(2)\n";
        write_all(1, m, strlen(m));
    } else {
        const char *m = "stdio_flags: stderr written by a thread\n";
        write_all(2, m, strlen(m));
    }
    return NULL;
}

int main(int argc, char **argv)
{
    E2E_INIT(argv[0]);
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child_main();

    int fl[3];
    for (int fd = 0; fd < 3; fd++)
        fl[fd] = getfl(fd);

    fflush(stdout);
    for (int i = 0; i < 3; i++) {   /* one after the other: stable output */
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, use_stdio_fds, (void *)(intptr_t)i));
        CHECK_OK(pthread_join(t, NULL));
    }
    test_pipe();
    test_child("/proc/self/exe");
    fflush(stdout);

    for (int fd = 0; fd < 3; fd++)
        if (getfl(fd) != fl[fd])
            FAIL("fd %d flags 0%o, were 0%o at start", fd, getfl(fd),
                 fl[fd]);
    printf("fds 0, 1, 2: flags unchanged\n");
    return 0;
}
