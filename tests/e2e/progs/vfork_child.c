/*
 * vfork_child: what a vfork child does before it execs stays its own, as
 * with any libc.  The child (sharing the parent's memory) closes and
 * dup2s over a descriptor a parent thread is blocked reading, resets a
 * signal handler, blocks every signal and execs /bin/true; meanwhile
 * another parent thread keeps reading.  Afterwards the reader gets its
 * data, the parent's handler and signal mask are unchanged.
 */
#include "e2e.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

static int p[2];
static atomic_int in_read, handled;
static char got;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static void *reader(void *arg)
{
    (void)arg;
    atomic_store(&in_read, 1);
    CHECK_EQ(read(p[0], &got, 1), 1);
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
    CHECK_SYS(pipe(p));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, reader, NULL));
    WAIT_UNTIL(atomic_load(&in_read), 10000);
    sleep_ms(50);
    for (int round = 0; round < 20; round++) {
        pid_t pid = vfork();
        if (pid == 0) {
            /* the child: only async-signal-safe calls, then exec */
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            sigaction(SIGUSR1, &dfl, NULL);
            sigset_t all;
            sigfillset(&all);
            sigprocmask(SIG_BLOCK, &all, NULL);
            close(p[0]);
            dup2(p[1], p[0]);
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        CHECK(pid > 0);
        int st = 0;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    printf("20 vfork children closed, dup2'ed, reset a handler, "
           "blocked signals and exec'ed\n");
    CHECK_EQ(write(p[1], "v", 1), 1);
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(got, 'v');
    printf("the parent's reader still got its byte\n");
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(atomic_load(&handled), 1);
    sigset_t cur;
    CHECK_OK(pthread_sigmask(SIG_BLOCK, NULL, &cur));
    CHECK(!sigismember(&cur, SIGUSR1) && !sigismember(&cur, SIGTERM));
    printf("the parent's handler and mask are unchanged\n");
    return 0;
}
