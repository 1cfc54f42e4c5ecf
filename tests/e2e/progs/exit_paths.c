/*
 * exit_paths: the ways a threaded process ends.  Run without arguments, it
 * runs itself (/proc/self/exe, so under the same LD_PRELOAD) once per mode
 * and checks each child's exit status and complete stdout:
 *
 *   exit_thread        exit(3) from a non-main thread while other threads
 *                      run and block: status 3, atexit handler ran once,
 *                      buffered stdout flushed.
 *   main_pthread_exit  main calls pthread_exit (its key destructors run)
 *                      while two threads keep working; when the last one
 *                      ends the process exits with status 0, atexit
 *                      handler ran once, stdout flushed.
 *   return_main        main returns 5 while threads are still running,
 *                      blocked in cond_wait/read/sleep or spinning: status
 *                      5, atexit handler ran once.
 *   pthread_exit_alone main calls pthread_exit with no other thread:
 *                      status 0.
 *
 * `exit_paths MODE` runs one mode directly (for debugging).
 */
#include "e2e.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

static atomic_int atexit_runs;
static void on_exit_handler(void)
{
    int n = atomic_fetch_add(&atexit_runs, 1) + 1;
    printf("atexit handler run %d\n", n);
}

/* ---------------------------------------------- background threads */

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static int never_pipe[2];
static atomic_int bg_started;

static void *bg_spin(void *arg)
{
    (void)arg;
    atomic_fetch_add(&bg_started, 1);
    volatile unsigned long x = 0;
    for (;;) {
        x++;
        if ((x & 0xffff) == 0)
            sched_yield();
    }
    return NULL;
}

static void *bg_cond(void *arg)
{
    (void)arg;
    CHECK_OK(pthread_mutex_lock(&m));
    atomic_fetch_add(&bg_started, 1);
    for (;;)
        CHECK_OK(pthread_cond_wait(&never, &m));
    return NULL;
}

static void *bg_read(void *arg)
{
    (void)arg;
    atomic_fetch_add(&bg_started, 1);
    char c;
    ssize_t n = read(never_pipe[0], &c, 1);
    FAIL("read returned %zd", n);
    return NULL;
}

static void *bg_sleep(void *arg)
{
    (void)arg;
    atomic_fetch_add(&bg_started, 1);
    for (;;)
        sleep(1000);
    return NULL;
}

static void *bg_lockstep(void *arg)
{
    (void)arg;
    atomic_fetch_add(&bg_started, 1);
    for (;;) {
        CHECK_OK(pthread_mutex_lock(&m));
        CHECK_OK(pthread_mutex_unlock(&m));
        sleep_ms(1);
    }
    return NULL;
}

static void start_background(void)
{
    void *(*fns[])(void *) = {bg_spin, bg_cond, bg_read, bg_sleep,
                              bg_lockstep};
    int n = (int)(sizeof fns / sizeof fns[0]);
    CHECK_SYS(pipe(never_pipe));
    for (int i = 0; i < n; i++) {
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, fns[i], NULL));
        CHECK_OK(pthread_detach(t));
    }
    WAIT_UNTIL(atomic_load(&bg_started) == n, 10000);
    sleep_ms(20);
}

/* --------------------------------------------------------- modes */

static void *exiter(void *arg)
{
    (void)arg;
    sleep_ms(50);
    printf("exiter: calling exit(3)\n");
    exit(3);
}

static int mode_exit_thread(void)
{
    atexit(on_exit_handler);
    printf("exit_thread: started\n");  /* stays buffered: stdout is a pipe */
    start_background();
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, exiter, NULL));
    pthread_join(t, NULL);             /* never returns */
    FAIL("pthread_join of a thread that called exit() returned");
}

static atomic_int main_key_dtor_ran;
static void main_key_dtor(void *p)
{
    CHECK_EQ((intptr_t)p, 99);
    printf("main's key destructor ran\n");
    atomic_store(&main_key_dtor_ran, 1);
}

static pthread_t w1;
static void *worker1(void *arg)
{
    (void)arg;
    WAIT_UNTIL(atomic_load(&main_key_dtor_ran), 10000);
    sleep_ms(100);
    long s = 0;
    for (long i = 0; i < 1000000; i++)
        s += i % 7;
    printf("worker 1 done: %ld\n", s);
    return (void *)s;
}

static void *worker2(void *arg)
{
    (void)arg;
    void *rv;
    CHECK_OK(pthread_join(w1, &rv));
    sleep_ms(50);
    printf("worker 2 done after worker 1 (%ld): last thread ends\n",
           (long)(intptr_t)rv);
    return NULL;          /* the process ends here, exit status 0 */
}

static int mode_main_pthread_exit(void)
{
    atexit(on_exit_handler);
    pthread_key_t k;
    CHECK_OK(pthread_key_create(&k, main_key_dtor));
    CHECK_OK(pthread_setspecific(k, (void *)(intptr_t)99));
    printf("main: calling pthread_exit\n");
    pthread_t t2;
    CHECK_OK(pthread_create(&w1, NULL, worker1, NULL));
    CHECK_OK(pthread_create(&t2, NULL, worker2, NULL));
    CHECK_OK(pthread_detach(t2));
    pthread_exit(NULL);
}

static int mode_return_main(void)
{
    atexit(on_exit_handler);
    start_background();
    printf("return_main: returning 5 with threads running\n");
    return 5;
}

static int mode_pthread_exit_alone(void)
{
    atexit(on_exit_handler);
    printf("pthread_exit_alone: main calls pthread_exit\n");
    pthread_exit((void *)1);
}

/* --------------------------------------------------------- driver */

struct mode {
    const char *name;
    int (*fn)(void);
    int want_status;
    const char *want_out;
};

static const struct mode modes[] = {
    {"exit_thread", mode_exit_thread, 3,
     "exit_thread: started\n"
     "exiter: calling exit(3)\n"
     "atexit handler run 1\n"},
    {"main_pthread_exit", mode_main_pthread_exit, 0,
     "main: calling pthread_exit\n"
     "main's key destructor ran\n"
     "worker 1 done: 2999997\n"
     "worker 2 done after worker 1 (2999997): last thread ends\n"
     "atexit handler run 1\n"},
    {"return_main", mode_return_main, 5,
     "return_main: returning 5 with threads running\n"
     "atexit handler run 1\n"},
    {"pthread_exit_alone", mode_pthread_exit_alone, 0,
     "pthread_exit_alone: main calls pthread_exit\n"
     "atexit handler run 1\n"},
};
#define NMODES (int)(sizeof modes / sizeof modes[0])

static void run_mode(const struct mode *md)
{
    int pfd[2];
    CHECK_SYS(pipe(pfd));
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        close(pfd[0]);
        if (dup2(pfd[1], 1) == -1)
            _exit(120);
        close(pfd[1]);
        execl("/proc/self/exe", e2e_prog, md->name, (char *)NULL);
        _exit(121);
    }
    close(pfd[1]);
    char out[4096];
    size_t got = 0;
    int64_t end = now_ns() + 30 * NS_PER_S;
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r < 0 && errno == EINTR)
            continue;
        CHECK_SYS(r);
        if (r > 0) {
            ssize_t n = read(pfd[0], out + got, sizeof out - 1 - got);
            CHECK_SYS(n);
            if (n == 0)
                break;
            got += (size_t)n;
            if (got == sizeof out - 1)
                FAIL("%s: too much output", md->name);
        }
        if (now_ns() > end) {
            kill(pid, SIGKILL);
            FAIL("%s: child did not end within 30 s", md->name);
        }
    }
    out[got] = 0;
    close(pfd[0]);
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        CHECK_SYS(r);
        if (r == pid)
            break;
        if (now_ns() > end) {
            kill(pid, SIGKILL);
            FAIL("%s: child closed stdout but did not exit", md->name);
        }
        sleep_ms(5);
    }
    if (WIFSIGNALED(st))
        FAIL("%s: killed by signal %d; output so far:\n%s", md->name,
             WTERMSIG(st), out);
    CHECK(WIFEXITED(st));
    if (WEXITSTATUS(st) != md->want_status)
        FAIL("%s: exit status %d, expected %d; output:\n%s", md->name,
             WEXITSTATUS(st), md->want_status, out);
    if (strcmp(out, md->want_out) != 0)
        FAIL("%s: output\n%s--- expected\n%s---", md->name, out,
             md->want_out);
    int lines = 0;
    for (const char *q = out; *q; q++)
        lines += *q == '\n';
    printf("%s: exit status %d, output as expected (%d lines)\n", md->name,
           md->want_status, lines);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        /* the modes keep stdout fully buffered (it is a pipe): exit paths
         * must flush it */
        E2E_SET_NAME(argv[0]);
        for (int i = 0; i < NMODES; i++)
            if (strcmp(argv[1], modes[i].name) == 0)
                return modes[i].fn();
        fprintf(stderr, "exit_paths: unknown mode %s\n", argv[1]);
        return 2;
    }
    E2E_INIT(argv[0]);
    for (int i = 0; i < NMODES; i++)
        run_mode(&modes[i]);
    return 0;
}
