/*
 * signals_waits - which waits a signal handler interrupts, as NPTL does.
 *
 *  1. Before any thread exists: sem_wait, sem_timedwait, nanosleep and
 *     pause in the main thread, interrupted by a SIGALRM handler, with and
 *     without SA_RESTART (the handler then posts the semaphore: a wait the
 *     kernel restarts returns 0, one it does not returns EINTR; NPTL's
 *     semaphore waits restart, sleeps and pause do not).
 *  2. Waits POSIX says are not interrupted: a thread blocked in
 *     pthread_mutex_lock, pthread_rwlock_rdlock, pthread_rwlock_wrlock,
 *     pthread_barrier_wait and pthread_join runs a handler sent with
 *     pthread_kill while it still waits (the handler's flag is seen while
 *     the waited-for thing is still held), then goes on waiting and
 *     succeeds once released.
 *  3. The same waits in a thread, interrupted by pthread_kill: sem_wait,
 *     sem_timedwait, sem_clockwait, nanosleep, with and without
 *     SA_RESTART, as NPTL (compared with the native run).
 *  4. Asynchronous cancellation acts on a thread blocked in
 *     pthread_mutex_lock (join returns PTHREAD_CANCELED while the mutex is
 *     still held); deferred cancellation does not (it is no cancellation
 *     point): the thread gets the mutex, then acts at pthread_testcancel.
 */
#include "e2e.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/time.h>

static _Atomic int handled;
/* In the SA_RESTART rounds the handler also posts this semaphore: a wait
 * the kernel restarts then returns 0, one it does not returns EINTR. */
static sem_t *volatile post_in_handler;
static void on_sig(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
    if (post_in_handler)
        sem_post(post_in_handler);
}

static void install(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(sig, &sa, NULL));
}

static void alarm_in_ms(int ms)
{
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
}

static const char *res(int r, int e)
{
    static char buf[64];
    if (r == 0)
        return "0";
    snprintf(buf, sizeof buf, "-1 %s", e == EINTR ? "EINTR"
                                       : e == ETIMEDOUT ? "ETIMEDOUT"
                                                        : strerror(e));
    return buf;
}

/* ------------------------------------------------------ 1: no threads */
static void before_threads(void)
{
    sem_t s;
    CHECK_SYS(sem_init(&s, 0, 0));
    for (int restart = 0; restart < 2; restart++) {
        install(SIGALRM, restart ? SA_RESTART : 0);
        post_in_handler = restart ? &s : NULL;
        const char *how = restart ? "SA_RESTART" : "no SA_RESTART";
        alarm_in_ms(50);
        int r = sem_wait(&s);
        printf("main, no threads, %s: sem_wait -> %s\n", how, res(r, errno));
        struct timespec dl = deadline_in(CLOCK_REALTIME, 3000);
        alarm_in_ms(50);
        r = sem_timedwait(&s, &dl);
        printf("main, no threads, %s: sem_timedwait -> %s\n", how,
               res(r, errno));
        struct timespec ts = {3, 0};
        alarm_in_ms(50);
        r = nanosleep(&ts, NULL);
        printf("main, no threads, %s: nanosleep -> %s\n", how, res(r, errno));
        alarm_in_ms(50);
        r = pause();
        printf("main, no threads, %s: pause -> %s\n", how, res(r, errno));
        while (sem_trywait(&s) == 0)
            ;
    }
    post_in_handler = NULL;
    CHECK_SYS(sem_destroy(&s));
}

/* ----------------------------------------------- 2: not interrupted */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t bar;
static _Atomic int entered, rc_out;
static pthread_t joined_t;

static void *in_mutex(void *a)
{
    (void)a;
    atomic_store(&entered, 1);
    int r = pthread_mutex_lock(&mu);
    atomic_store(&rc_out, r);
    if (r == 0)
        pthread_mutex_unlock(&mu);
    return NULL;
}
static void *in_rdlock(void *a)
{
    (void)a;
    atomic_store(&entered, 1);
    int r = pthread_rwlock_rdlock(&rw);
    atomic_store(&rc_out, r);
    if (r == 0)
        pthread_rwlock_unlock(&rw);
    return NULL;
}
static void *in_wrlock(void *a)
{
    (void)a;
    atomic_store(&entered, 1);
    int r = pthread_rwlock_wrlock(&rw);
    atomic_store(&rc_out, r);
    if (r == 0)
        pthread_rwlock_unlock(&rw);
    return NULL;
}
static void *in_barrier(void *a)
{
    (void)a;
    atomic_store(&entered, 1);
    int r = pthread_barrier_wait(&bar);
    atomic_store(&rc_out, r == PTHREAD_BARRIER_SERIAL_THREAD ? 0 : r);
    return NULL;
}
static _Atomic int release_joined;
static void *joined_fn(void *a)
{
    (void)a;
    while (!atomic_load(&release_joined))
        sleep_ms(1);
    return (void *)7;
}
static void *in_join(void *a)
{
    (void)a;
    atomic_store(&entered, 1);
    void *v = NULL;
    int r = pthread_join(joined_t, &v);
    atomic_store(&rc_out, r == 0 && v == (void *)7 ? 0 : -1);
    return NULL;
}

/* Starts fn, lets it block, signals it, checks the handler ran while it
 * still waits, then release() frees it and it must succeed. */
static void not_interrupted(const char *name, void *(*fn)(void *),
                            void (*release)(void))
{
    atomic_store(&entered, 0);
    atomic_store(&rc_out, -99);
    int before = atomic_load(&handled);
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, fn, NULL));
    WAIT_UNTIL(atomic_load(&entered), 5000);
    sleep_ms(50); /* now blocked */
    CHECK_OK(pthread_kill(t, SIGUSR1));
    WAIT_UNTIL(atomic_load(&handled) > before, 2000);
    sleep_ms(20);
    if (atomic_load(&rc_out) != -99)
        FAIL("%s: the wait ended (%d) when a handler ran", name,
             atomic_load(&rc_out));
    release();
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(atomic_load(&rc_out), 0);
    printf("%s: the handler ran during the wait, which went on and "
           "succeeded\n", name);
}

static void rel_mutex(void) { CHECK_OK(pthread_mutex_unlock(&mu)); }
static void rel_rw(void) { CHECK_OK(pthread_rwlock_unlock(&rw)); }
static void rel_barrier(void)
{
    int r = pthread_barrier_wait(&bar);
    CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
}
static void rel_join(void) { atomic_store(&release_joined, 1); }

static void waits_not_interrupted(void)
{
    install(SIGUSR1, 0);
    CHECK_OK(pthread_mutex_lock(&mu));
    not_interrupted("pthread_mutex_lock", in_mutex, rel_mutex);
    CHECK_OK(pthread_rwlock_wrlock(&rw));
    not_interrupted("pthread_rwlock_rdlock", in_rdlock, rel_rw);
    CHECK_OK(pthread_rwlock_rdlock(&rw));
    not_interrupted("pthread_rwlock_wrlock", in_wrlock, rel_rw);
    CHECK_OK(pthread_barrier_init(&bar, NULL, 2));
    not_interrupted("pthread_barrier_wait", in_barrier, rel_barrier);
    CHECK_OK(pthread_barrier_destroy(&bar));
    CHECK_OK(pthread_create(&joined_t, NULL, joined_fn, NULL));
    not_interrupted("pthread_join", in_join, rel_join);
}

/* ---------------------------------------------------- 3: interrupted */
static sem_t sem;
static const char *wait_kind;
static void *in_wait(void *a)
{
    (void)a;
    atomic_store(&entered, 1);
    int r;
    if (strcmp(wait_kind, "sem_wait") == 0) {
        r = sem_wait(&sem);
    } else if (strcmp(wait_kind, "sem_timedwait") == 0) {
        struct timespec dl = deadline_in(CLOCK_REALTIME, 3000);
        r = sem_timedwait(&sem, &dl);
    } else if (strcmp(wait_kind, "sem_clockwait") == 0) {
        struct timespec dl = deadline_in(CLOCK_MONOTONIC, 3000);
        r = sem_clockwait(&sem, CLOCK_MONOTONIC, &dl);
    } else {
        struct timespec ts = {3, 0};
        r = nanosleep(&ts, NULL);
    }
    atomic_store(&rc_out, r == 0 ? 0 : errno);
    return NULL;
}

static void waits_interrupted(void)
{
    static const char *const kinds[] = {"sem_wait", "sem_timedwait",
                                        "sem_clockwait", "nanosleep"};
    CHECK_SYS(sem_init(&sem, 0, 0));
    for (int restart = 0; restart < 2; restart++) {
        install(SIGUSR1, restart ? SA_RESTART : 0);
        post_in_handler = restart ? &sem : NULL;
        for (int k = 0; k < 4; k++) {
            while (sem_trywait(&sem) == 0)
                ;
            wait_kind = kinds[k];
            atomic_store(&entered, 0);
            atomic_store(&rc_out, -99);
            pthread_t t;
            CHECK_OK(pthread_create(&t, NULL, in_wait, NULL));
            WAIT_UNTIL(atomic_load(&entered), 5000);
            sleep_ms(50);
            CHECK_OK(pthread_kill(t, SIGUSR1));
            int64_t t0 = now_ns();
            CHECK_OK(pthread_join(t, NULL));
            int e = atomic_load(&rc_out);
            printf("thread, %s: %s -> %s%s\n",
                   restart ? "SA_RESTART" : "no SA_RESTART", kinds[k],
                   e == 0 ? "0" : e == EINTR ? "EINTR" : strerror(e),
                   now_ns() - t0 < 1500 * NS_PER_MS ? "" : " (late)");
        }
    }
    post_in_handler = NULL;
    CHECK_SYS(sem_destroy(&sem));
}

/* --------------------------------------------------- 4: cancellation */
static _Atomic int got_lock;
static void *cancel_in_mutex(void *a)
{
    int async = (int)(intptr_t)a;
    if (async)
        CHECK_OK(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL));
    atomic_store(&entered, 1);
    CHECK_OK(pthread_mutex_lock(&mu));
    if (async)
        CHECK_OK(pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL));
    atomic_store(&got_lock, 1);
    pthread_mutex_unlock(&mu);
    pthread_testcancel();
    return NULL;
}

static void cancel_waits(void)
{
    for (int async = 1; async >= 0; async--) {
        atomic_store(&entered, 0);
        atomic_store(&got_lock, 0);
        CHECK_OK(pthread_mutex_lock(&mu));
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, cancel_in_mutex,
                                (void *)(intptr_t)async));
        WAIT_UNTIL(atomic_load(&entered), 5000);
        sleep_ms(50);
        CHECK_OK(pthread_cancel(t));
        void *v = NULL;
        if (async) {
            CHECK_OK(pthread_join(t, &v)); /* the mutex is still ours */
            CHECK_OK(pthread_mutex_unlock(&mu));
        } else {
            sleep_ms(50);
            CHECK_EQ(atomic_load(&got_lock), 0);
            CHECK_OK(pthread_mutex_unlock(&mu));
            CHECK_OK(pthread_join(t, &v));
            CHECK_EQ(atomic_load(&got_lock), 1);
        }
        CHECK(v == PTHREAD_CANCELED);
        printf("%s cancellation of a thread in pthread_mutex_lock: %s\n",
               async ? "asynchronous" : "deferred",
               async ? "acts during the wait" : "acts after it, at the "
                                                "next cancellation point");
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    before_threads();
    alarm(30);
    install(SIGALRM, 0);
    signal(SIGALRM, SIG_DFL); /* the watchdog kills */
    alarm(30);
    waits_not_interrupted();
    waits_interrupted();
    cancel_waits();
    return 0;
}
