/*
 * signals_self - a process signalling itself, as NPTL handles it.
 *
 *  1. The main thread (other threads exist) sends a handled signal to its
 *     own process with kill(), syscall(SYS_kill), pidfd_send_signal on a
 *     pidfd_open() descriptor and on an open /proc/self: the handler has
 *     run when the call returns (the kernel gives it to the sending main
 *     thread before it returns to user mode), 500 times each.  Unless the
 *     kernel gave it to another thread, as it may when the sender already
 *     has a signal pending (seen natively, about once in 10,000 rounds):
 *     then the handler must have run in that other thread, within 1 s.

 * (A signal from another process: signals_from_child.)
 */
#include "e2e.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static volatile sig_atomic_t got;
static pthread_t _Atomic who; /* the thread that ran the handler last */
static void handler(int s)
{
    (void)s;
    atomic_store(&who, pthread_self());
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
        if (got == before) {
            /* another thread took it: it must run there, soon */
            for (int w = 0; w < 1000 && got == before; w++)
                sleep_ms(1);
            if (got == before || pthread_equal(atomic_load(&who),
                                               pthread_self()))
                late++;
        }
        if (i % 50 == 0) { /* threads come and go meanwhile */
            pthread_t t;
            CHECK_OK(pthread_create(&t, NULL, idler, NULL));
            atomic_store(&stop, 1);
            CHECK_OK(pthread_join(t, NULL));
            atomic_store(&stop, 0);
        }
    }
    if (late)
        FAIL("%s to our own process: handler not run on return (nor in "
             "another thread) %d of 500",
             name[how], late);
    printf("%s to our own process from main: handled before it returns\n",
           name[how]);
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
    return 0;
}
