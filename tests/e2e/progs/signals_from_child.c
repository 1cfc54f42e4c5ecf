/*
 * signals_from_child - a signal from another process, handled before the
 * sender is reaped.
 *
 * A child that is not under the preload (posix_spawn, clean environment)
 * runs /bin/kill -USR1 on us; we read its output to EOF and reap it, then
 * reset the handler to SIG_DFL.  The signal, sent before the child
 * exited, must have been handled by then: NPTL's kernel picks the main
 * thread, blocked in read(), which runs the handler before it sees EOF.
 * 200 rounds, with a thread created once so that the runtime runs.
 */
#include "e2e.h"

#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

static volatile sig_atomic_t got;
static void handler(int s)
{
    (void)s;
    got++;
}

static void *nop(void *a) { return a; }

extern char **environ;
static void from_child(void)
{
    static char *cleanenv[] = {"PATH=/usr/bin:/bin", NULL};
    struct sigaction on, off;
    memset(&on, 0, sizeof on);
    on.sa_handler = handler; /* no SA_RESTART */
    memset(&off, 0, sizeof off);
    off.sa_handler = SIG_DFL;
    char ppid[32];
    snprintf(ppid, sizeof ppid, "%d", (int)getpid());
    char *args[] = {"/bin/kill", "-USR1", ppid, NULL};
    int n = 200;
    got = 0;
    for (int i = 0; i < n; i++) {
        CHECK_SYS(sigaction(SIGUSR1, &on, NULL));
        int fd[2];
        CHECK_SYS(pipe(fd));
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
        posix_spawn_file_actions_addclose(&fa, fd[0]);
        pid_t pid;
        CHECK_OK(posix_spawn(&pid, args[0], &fa, NULL, args, cleanenv));
        close(fd[1]);
        char buf[64];
        while (read(fd[0], buf, sizeof buf) != 0)
            ; /* EINTR: again */
        close(fd[0]);
        int st;
        while (waitpid(pid, &st, 0) < 0)
            ;
        CHECK_SYS(sigaction(SIGUSR1, &off, NULL));
        posix_spawn_file_actions_destroy(&fa);
    }
    if (got != n)
        FAIL("kill from a child: %d of %d handled before it was reaped",
             (int)got, n);
    printf("kill from a child, reaped, then SIG_DFL: every one handled\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    alarm(50);
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, nop, NULL));
    CHECK_OK(pthread_join(t, NULL));
    from_child();
    return 0;
}
