/*
 * signals_self - a process signalling itself, as NPTL handles it.
 *
 *  1. The main thread (other threads exist) sends a handled signal to its
 *     own process with kill(), syscall(SYS_kill), pidfd_send_signal on a
 *     pidfd_open() descriptor and on an open /proc/self: the handler has
 *     run when the call returns (the kernel gives it to the sending main
 *     thread before it returns to user mode), 500 times each.
 *  2. A child that is not under the preload (posix_spawn, clean
 *     environment) runs /bin/kill -USR1 on us; we read its output to EOF
 *     and reap it, then reset the handler to SIG_DFL: the signal, sent
 *     before the child exited, must have been handled by then (200
 *     rounds; under vthread the process used to die of SIGUSR1 or lose it).
 */
#include "e2e.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static volatile sig_atomic_t got;
static void handler(int s)
{
    (void)s;
    got++;
}

static _Atomic int stop;
static void *idler(void *a)
{
    (void)a;
    while (!atomic_load(&stop))
        sleep_ms(1);
    return NULL;
}

static void self_send(int how, int pidfd, int procfd)
{
    static const char *const name[] = {"kill", "syscall(SYS_kill)",
                                        "pidfd_send_signal(pidfd_open)",
                                        "pidfd_send_signal(/proc/self)"};
    int late = 0;
    for (int i = 0; i < 500; i++) {
        sig_atomic_t before = got;
        long r;
        switch (how) {
        case 0: r = kill(getpid(), SIGUSR1); break;
        case 1: r = syscall(SYS_kill, getpid(), SIGUSR1); break;
        case 2: r = syscall(SYS_pidfd_send_signal, pidfd, SIGUSR1, NULL, 0); break;
        default: r = syscall(SYS_pidfd_send_signal, procfd, SIGUSR1, NULL, 0); break;
        }
        CHECK_EQ(r, 0);
        if (got == before)
            late++;
        if (i % 50 == 0) { /* threads come and go meanwhile */
            pthread_t t;
            CHECK_OK(pthread_create(&t, NULL, idler, NULL));
            atomic_store(&stop, 1);
            CHECK_OK(pthread_join(t, NULL));
            atomic_store(&stop, 0);
        }
    }
    if (late)
        FAIL("%s to our own process: handler not run on return %d of 500",
             name[how], late);
    printf("%s to our own process from main: handled before it returns\n",
           name[how]);
}

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
    CHECK_OK(pthread_create(&t, NULL, idler, NULL)); /* the runtime runs */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    CHECK(pidfd >= 0);
    int procfd = open("/proc/self", O_DIRECTORY | O_RDONLY);
    CHECK(procfd >= 0);
    for (int how = 0; how < 4; how++)
        self_send(how, pidfd, procfd);
    atomic_store(&stop, 1);
    CHECK_OK(pthread_join(t, NULL));
    from_child();
    return 0;
}
