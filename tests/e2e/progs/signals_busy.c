/*
 * signals_busy - signals to threads that are busy, and signal storms.
 *
 *  1. pthread_kill, pthread_sigqueue and kill(getpid()) (to the one thread
 *     that does not block the signal) reach a thread that spins in a loop
 *     without any call, within 200 ms (NPTL: at once), and the handler
 *     runs in that thread; the same for a thread looping on getppid()
 *     (a system call vthread does not park).
 *  2. Nothing is left behind: after its handler ran, the thread's next
 *     nanosleep(50 ms) sleeps its whole time (no EINTR).
 *  3. A storm: 8 threads each kill(getpid(), SIGUSR1) 3,000 times and
 *     pthread_kill each other with SIGUSR2 while the main thread sem_waits;
 *     handlers call sem_post, write (to a non-blocking pipe) and
 *     pthread_kill.  No hang, no crash; afterwards one more kill() is
 *     handled (no lost wake-up), and every SIGUSR2 sent to a thread that
 *     has it unblocked... ran at least once per target.
 */
#include "e2e.h"

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static __thread int my_index = -1;
static _Atomic int ran_in[16];
static _Atomic int ran_any;
static volatile sig_atomic_t stop_flag[16];

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si; (void)uc;
    if (my_index >= 0) {
        atomic_fetch_add(&ran_in[my_index], 1);
        stop_flag[my_index] = 1;
    }
    atomic_fetch_add(&ran_any, 1);
}

struct spinner { int index; int syscalls; _Atomic int ready; int slept_ok; };

static void *spin(void *arg)
{
    struct spinner *s = arg;
    my_index = s->index;
    atomic_store(&s->ready, 1);
    while (!stop_flag[s->index]) {
        if (s->syscalls)
            (void)syscall(SYS_getppid);
    }
    /* nothing left behind: a full nanosleep */
    struct timespec ts = {0, 50 * NS_PER_MS};
    int64_t t0 = now_ns();
    int r = nanosleep(&ts, NULL);
    s->slept_ok = r == 0 && now_ns() - t0 >= 50 * NS_PER_MS;
    return NULL;
}

static void busy_case(const char *name, int index, int syscalls, int how)
{
    struct spinner s = {.index = index, .syscalls = syscalls};
    pthread_t t;
    sigset_t all, old;
    sigfillset(&all);
    CHECK_OK(pthread_create(&t, NULL, spin, &s));
    if (how == 2) /* only the spinner may take a process-directed one */
        CHECK_OK(pthread_sigmask(SIG_BLOCK, &all, &old));
    while (!atomic_load(&s.ready))
        sched_yield();
    sleep_ms(20); /* let it spin */
    int64_t t0 = now_ns();
    if (how == 0)
        CHECK_OK(pthread_kill(t, SIGUSR1));
    else if (how == 1)
        CHECK_OK(pthread_sigqueue(t, SIGUSR1, (union sigval){.sival_int = 7}));
    else
        CHECK_SYS(kill(getpid(), SIGUSR1));
    while (!atomic_load(&ran_in[index])) {
        if (now_ns() - t0 > 2 * NS_PER_S)
            FAIL("%s: handler did not run within 2 s", name);
    }
    int64_t dt = now_ns() - t0;
    if (dt > 200 * NS_PER_MS)
        FAIL("%s: handler ran after %lld ms", name, (long long)(dt / NS_PER_MS));
    CHECK_OK(pthread_join(t, NULL));
    if (how == 2)
        CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    CHECK_EQ(atomic_load(&ran_in[index]), 1);
    if (!s.slept_ok)
        FAIL("%s: the nanosleep after the handler was cut short", name);
    printf("%s: ok\n", name);
}

/* ------------------------------------------------------------ storm */
#define NT 8
#define KILLS 3000
static sem_t sem, sem2;
static int pipefd[2];
static pthread_t th[NT];
static _Atomic int usr2_in[NT];
static _Atomic long posts;

static void on_storm1(int sig)
{
    (void)sig;
    int e = errno;
    sem_post(&sem);
    atomic_fetch_add(&posts, 1);
    char c = 'x';
    ssize_t w = write(pipefd[1], &c, 1); /* non-blocking: may be EAGAIN */
    (void)w;
    if (my_index >= 0)
        pthread_kill(th[(my_index + 1) % NT], SIGUSR2);
    errno = e;
}

static void on_storm2(int sig)
{
    (void)sig;
    if (my_index >= 0)
        atomic_fetch_add(&usr2_in[my_index], 1);
    sem_post(&sem2);
}

static _Atomic int finished, storm_over;
static pthread_barrier_t start;
static void *stormer(void *arg)
{
    my_index = (int)(intptr_t)arg;
    /* every stormer has its index before anybody signals anybody */
    pthread_barrier_wait(&start);
    for (int i = 0; i < KILLS; i++) {
        CHECK_SYS(kill(getpid(), SIGUSR1));
        if (i % 100 == 0)
            pthread_kill(th[(my_index + 3) % NT], SIGUSR2);
        if (i % 7 == 0)
            sem_trywait(&sem2);
    }
    atomic_fetch_add(&finished, 1);
    /* stay alive (others still pthread_kill us) until the storm is over */
    while (!atomic_load(&storm_over))
        sleep_ms(5);
    return NULL;
}

static _Atomic int drain_stop;
static void *drainer(void *arg)
{
    (void)arg;
    char buf[4096];
    while (!atomic_load(&drain_stop)) {
        ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n <= 0)
            sleep_ms(1);
    }
    return NULL;
}

static void storm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_storm1;
    sa.sa_flags = SA_RESTART;
    CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
    sa.sa_handler = on_storm2;
    CHECK_SYS(sigaction(SIGUSR2, &sa, NULL));
    CHECK_SYS(sem_init(&sem, 0, 0));
    CHECK_SYS(sem_init(&sem2, 0, 0));
    CHECK_SYS(pipe2(pipefd, O_NONBLOCK));
    pthread_t d;
    CHECK_OK(pthread_barrier_init(&start, NULL, NT + 1));
    CHECK_OK(pthread_create(&d, NULL, drainer, NULL));
    for (int i = 0; i < NT; i++)
        CHECK_OK(pthread_create(&th[i], NULL, stormer, (void *)(intptr_t)i));
    pthread_barrier_wait(&start);
    /* the main thread consumes posts while the storm lasts */
    long taken = 0;
    for (;;) {
        struct timespec dl = deadline_in(CLOCK_REALTIME, 50);
        if (sem_timedwait(&sem, &dl) == 0)
            taken++;
        else if (errno != ETIMEDOUT && errno != EINTR)
            FAIL("sem_timedwait: %s", strerror(errno));
        if (atomic_load(&finished) == NT)
            break;
    }
    /* no lost wake-up: one more signal is handled */
    while (sem_trywait(&sem) == 0)
        taken++;
    long before = atomic_load(&posts);
    CHECK_SYS(kill(getpid(), SIGUSR1));
    struct timespec dl = deadline_in(CLOCK_REALTIME, 2000);
    int r;
    while ((r = sem_timedwait(&sem, &dl)) != 0 && errno == EINTR)
        ;
    if (r != 0)
        FAIL("the last kill() was never handled (%s)", strerror(errno));
    CHECK(atomic_load(&posts) > before);
    atomic_store(&storm_over, 1);
    for (int i = 0; i < NT; i++)
        CHECK_OK(pthread_join(th[i], NULL));
    atomic_store(&drain_stop, 1);
    CHECK_OK(pthread_join(d, NULL));
    for (int i = 0; i < NT; i++)
        if (!atomic_load(&usr2_in[i]))
            FAIL("thread %d never ran its SIGUSR2 handler", i);
    fprintf(stderr, "storm: %ld posts, %ld taken\n", (long)atomic_load(&posts),
            taken);
    printf("storm: ok\n");
}

int main(int argc, char **argv)
{
    E2E_INIT(argv[0]);
    alarm(30);
    if (argc > 1 && strcmp(argv[1], "storm") == 0) { /* one part alone */
        storm();
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: a left-over would show */
    CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
    busy_case("pthread_kill to a spinning thread", 0, 0, 0);
    busy_case("pthread_sigqueue to a spinning thread", 1, 0, 1);
    busy_case("kill to the only thread taking it, spinning", 2, 0, 2);
    busy_case("pthread_kill to a thread in getppid loop", 3, 1, 0);
    busy_case("kill to the only thread taking it, getppid loop", 4, 1, 2);
    storm();
    return 0;
}
