/*
 * thread_identity: a thread's kernel-level identity as NPTL gives it.
 * gettid()/SYS_gettid (equal to getpid() in main, distinct between live
 * threads, constant over a thread's life across sleeps and yields);
 * tgkill/SYS_tgkill/SYS_tkill to a thread's tid run the handler in that
 * thread (sleeping or spinning without calls), ESRCH for a tid that does
 * not exist; scheduling calls on a tid (sched_getaffinity/setaffinity,
 * sched_getscheduler/getparam, getpriority/setpriority) act on that thread;
 * pthread_join/pthread_detach of an already joined thread (ESRCH in
 * glibc); per-thread CPU time (CLOCK_THREAD_CPUTIME_ID,
 * pthread_getcpuclockid, getrusage(RUSAGE_THREAD)).
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define WATCHDOG_S 10   /* alarm(), default action: a hang fails fast */
#define WAIT_MS 3000

/* A tid no task can have: above PID_MAX_LIMIT (2^22). */
#define NO_SUCH_TID ((pid_t)((1 << 22) + 4321))

static void part(const char *name)
{
    fprintf(stderr, "thread_identity: %s...\n", name);
}

/* ------------------------------------------------------------- gettid */

#define NT 64
#define SWITCHES 200
static pthread_barrier_t live;
static pid_t tids[NT];

static void *tid_fn(void *arg)
{
    int i = (int)(intptr_t)arg;
    pid_t t = gettid();
    CHECK_EQ(syscall(SYS_gettid), t);
    CHECK(t > 0);
    tids[i] = t;
    /* all alive while main compares the tids */
    int rc = pthread_barrier_wait(&live);
    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    rc = pthread_barrier_wait(&live);
    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    for (int k = 0; k < SWITCHES; k++) {
        if ((k + i) % 2)
            sched_yield();
        else {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
        if (gettid() != t || syscall(SYS_gettid) != t)
            FAIL("thread %d: tid changed from %d to %d/%ld after %d "
                 "switches", i, (int)t, (int)gettid(),
                 syscall(SYS_gettid), k + 1);
    }
    return NULL;
}

static void test_gettid(void)
{
    part("gettid");
    pid_t pid = getpid();
    CHECK_EQ(gettid(), pid);
    CHECK_EQ(syscall(SYS_gettid), pid);

    pthread_t t[NT];
    CHECK_OK(pthread_barrier_init(&live, NULL, NT + 1));
    for (int i = 0; i < NT; i++)
        CHECK_OK(pthread_create(&t[i], NULL, tid_fn, (void *)(intptr_t)i));
    int rc = pthread_barrier_wait(&live);
    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    for (int i = 0; i < NT; i++) {
        if (tids[i] == pid)
            FAIL("thread %d has the process id as its tid", i);
        for (int j = 0; j < i; j++)
            if (tids[i] == tids[j])
                FAIL("live threads %d and %d share tid %d", i, j,
                     (int)tids[i]);
    }
    rc = pthread_barrier_wait(&live);
    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    for (int i = 0; i < NT; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    CHECK_OK(pthread_barrier_destroy(&live));
    CHECK_EQ(gettid(), pid);
    CHECK_EQ(syscall(SYS_gettid), pid);
    printf("gettid: equals SYS_gettid, main's is the pid, %d live threads "
           "distinct, each constant over %d sleeps/yields: ok\n", NT,
           SWITCHES);
}

/* ------------------------------------------------------------ tgkill */

static __thread int my_idx = -1;
static volatile pthread_t h_self;
static volatile int h_idx;
static atomic_int h_count;

static void handler(int sig)
{
    (void)sig;
    int saved = errno;
    h_self = pthread_self();
    h_idx = my_idx;
    atomic_fetch_add(&h_count, 1);
    errno = saved;
}

struct worker {
    int idx;
    int spin;                   /* spin without calls instead of sleeping */
    atomic_int tid;             /* published by the worker */
    atomic_int self_prio_set;   /* 1 once self_prio is valid */
    int self_prio;              /* getpriority(PRIO_PROCESS, 0) at start */
    atomic_int ask_prio;        /* main: 1 = read your priority again */
    atomic_int prio_after;      /* the worker's answer + 100 */
    volatile int stop;
};

static volatile unsigned long spin_sink;

static void *worker_fn(void *arg)
{
    struct worker *w = arg;
    my_idx = w->idx;
    errno = 0;
    w->self_prio = getpriority(PRIO_PROCESS, 0);
    CHECK_EQ(errno, 0);
    atomic_store(&w->self_prio_set, 1);
    atomic_store(&w->tid, (int)gettid());
    if (w->spin) {
        /* a pure computation loop: no call until main says stop */
        unsigned long x = 1;
        while (!w->stop)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
        spin_sink = x;
        return NULL;
    }
    for (int k = 0; k < 5000 && !w->stop; k++) {
        if (atomic_load(&w->ask_prio) == 1) {
            errno = 0;
            int p = getpriority(PRIO_PROCESS, 0);
            CHECK_EQ(errno, 0);
            atomic_store(&w->prio_after, p + 100);
            atomic_store(&w->ask_prio, 2);
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (!w->stop)
        FAIL("worker %d: not stopped within 5 s", w->idx);
    return NULL;
}

static void start_worker(pthread_t *t, struct worker *w, int idx, int spin)
{
    memset(w, 0, sizeof *w);
    w->idx = idx;
    w->spin = spin;
    CHECK_OK(pthread_create(t, NULL, worker_fn, w));
    WAIT_UNTIL(atomic_load(&w->tid) != 0, WAIT_MS);
}

static void stop_worker(pthread_t t, struct worker *w)
{
    w->stop = 1;
    CHECK_OK(pthread_join(t, NULL));
}

static const char *const how_name[3] = {"tgkill", "syscall(SYS_tgkill)",
                                        "syscall(SYS_tkill)"};

static long send_sig(int how, pid_t tid, int sig)
{
    switch (how) {
    case 0:
        return tgkill(getpid(), tid, sig);
    case 1:
        return syscall(SYS_tgkill, getpid(), tid, sig);
    default:
        return syscall(SYS_tkill, tid, sig);
    }
}

static void test_tgkill(void)
{
    part("tgkill");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));

    static struct worker w;
    pthread_t t;
    for (int spin = 0; spin < 2; spin++) {
        start_worker(&t, &w, 10 + spin, spin);
        pid_t tid = (pid_t)atomic_load(&w.tid);
        CHECK_EQ(tgkill(getpid(), tid, 0), 0);
        for (int how = 0; how < 3; how++) {
            int before = atomic_load(&h_count);
            h_idx = -1;
            if (send_sig(how, tid, SIGUSR1) != 0)
                FAIL("%s to a %s thread: %s", how_name[how],
                     spin ? "spinning" : "sleeping", strerror(errno));
            WAIT_UNTIL(atomic_load(&h_count) == before + 1, WAIT_MS);
            if (!pthread_equal(h_self, t) || h_idx != w.idx)
                FAIL("%s to a %s thread: the handler ran in another thread "
                     "(__thread index %d, expected %d)", how_name[how],
                     spin ? "spinning" : "sleeping", h_idx, w.idx);
        }
        stop_worker(t, &w);
        /* the tid of a joined thread is gone (no thread is created in
         * between, and tgkill checks the thread group).  Natively the
         * kernel clears the tid for pthread_join before the task has
         * finished exiting: for a moment tgkill still finds it. */
        for (int k = 0; k < 1000 && tgkill(getpid(), tid, 0) == 0; k++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        CHECK_ERRNO(tgkill(getpid(), tid, 0), ESRCH);
        CHECK_ERRNO(tgkill(getpid(), tid, SIGUSR1), ESRCH);
    }
    /* a live thread's tid is not in another thread group */
    start_worker(&t, &w, 12, 0);
    CHECK_ERRNO(tgkill(getppid(), (pid_t)atomic_load(&w.tid), 0), ESRCH);
    stop_worker(t, &w);

    CHECK_ERRNO(tgkill(getpid(), NO_SUCH_TID, SIGUSR1), ESRCH);
    CHECK_ERRNO(syscall(SYS_tgkill, getpid(), NO_SUCH_TID, SIGUSR1), ESRCH);
    CHECK_ERRNO(syscall(SYS_tkill, NO_SUCH_TID, SIGUSR1), ESRCH);
    CHECK_ERRNO(syscall(SYS_tkill, NO_SUCH_TID, 0), ESRCH);
    CHECK_EQ(atomic_load(&h_count), 6);
    printf("tgkill, SYS_tgkill, SYS_tkill: handler runs in the target "
           "(sleeping and spinning), ESRCH for a joined thread's and a "
           "non-existent tid: ok\n");
}

/* ---------------------------------------------- scheduling by tid */

static void test_sched_by_tid(void)
{
    part("sched by tid");
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    CHECK_EQ(errno, 0);

    static struct worker w;
    pthread_t t;
    start_worker(&t, &w, 20, 0);
    WAIT_UNTIL(atomic_load(&w.self_prio_set), WAIT_MS);
    pid_t tid = (pid_t)atomic_load(&w.tid);

    /* affinity */
    cpu_set_t proc, a, b;
    CPU_ZERO(&proc);
    CHECK_SYS(sched_getaffinity(0, sizeof proc, &proc));
    CPU_ZERO(&a);
    CPU_ZERO(&b);
    CHECK_SYS(sched_getaffinity(tid, sizeof a, &a));
    CHECK_OK(pthread_getaffinity_np(t, sizeof b, &b));
    CHECK(CPU_EQUAL(&a, &b));
    CHECK(CPU_COUNT(&a) > 0);
    CHECK_SYS(sched_setaffinity(tid, sizeof proc, &proc));
    CPU_ZERO(&a);
    CHECK_SYS(sched_getaffinity(tid, sizeof a, &a));
    CHECK(CPU_EQUAL(&a, &proc));
    CPU_ZERO(&b);
    CHECK_OK(pthread_getaffinity_np(t, sizeof b, &b));
    CHECK(CPU_EQUAL(&b, &proc));

    /* policy and parameters */
    int policy = -1;
    struct sched_param pp = {.sched_priority = -1}, sp = {-1};
    CHECK_OK(pthread_getschedparam(t, &policy, &pp));
    int pol2 = sched_getscheduler(tid);
    CHECK_SYS(pol2);
    CHECK_EQ(pol2, policy);
    CHECK_SYS(sched_getparam(tid, &sp));
    CHECK_EQ(sp.sched_priority, pp.sched_priority);

    /* nice value of one thread */
    CHECK_EQ(w.self_prio, base);
    errno = 0;
    int p = getpriority(PRIO_PROCESS, tid);
    CHECK_EQ(errno, 0);
    CHECK_EQ(p, w.self_prio);
    int want = base + 5 > 19 ? 19 : base + 5;
    CHECK_SYS(setpriority(PRIO_PROCESS, tid, want));
    errno = 0;
    p = getpriority(PRIO_PROCESS, tid);
    CHECK_EQ(errno, 0);
    CHECK_EQ(p, want);
    errno = 0;
    p = getpriority(PRIO_PROCESS, 0);
    CHECK_EQ(errno, 0);
    CHECK_EQ(p, base);                  /* main's is unchanged */
    atomic_store(&w.ask_prio, 1);       /* and the thread sees its own */
    WAIT_UNTIL(atomic_load(&w.ask_prio) == 2, WAIT_MS);
    CHECK_EQ(atomic_load(&w.prio_after) - 100, want);
    stop_worker(t, &w);
    errno = 0;
    p = getpriority(PRIO_PROCESS, 0);
    CHECK_EQ(errno, 0);
    CHECK_EQ(p, base);

    printf("sched by tid: sched_getaffinity = pthread_getaffinity_np, "
           "sched_setaffinity, sched_getscheduler/getparam = "
           "pthread_getschedparam, getpriority/setpriority(tid) act on "
           "that thread only: ok\n");
}

/* ------------------------------------------ join/detach after join */

static void *ret42(void *a)
{
    (void)a;
    return (void *)42;
}

static void test_join_twice(void)
{
    part("join twice");
    /* No other thread is created (or exists) until the checks are done, so
     * the joined thread's descriptor is not reused.  glibc keeps it in its
     * stack cache (40 MiB) with tid -1; a small explicit stack makes sure
     * it stays cached whatever RLIMIT_STACK is. */
    pthread_attr_t at;
    CHECK_OK(pthread_attr_init(&at));
    CHECK_OK(pthread_attr_setstacksize(&at, 1 << 20));
    pthread_t t;
    void *rv = NULL;
    CHECK_OK(pthread_create(&t, &at, ret42, NULL));
    CHECK_OK(pthread_attr_destroy(&at));
    CHECK_OK(pthread_join(t, &rv));
    CHECK_EQ((intptr_t)rv, 42);
    CHECK_RC(pthread_join(t, &rv), ESRCH);
    CHECK_RC(pthread_detach(t), ESRCH);
    CHECK_RC(pthread_join(t, NULL), ESRCH);
    printf("pthread_join and pthread_detach of a joined thread: ESRCH: "
           "ok\n");
}

/* -------------------------------------------------------- CPU time */

#define SPIN_MS 100
#define SLEEP_MS 100
#define IDLE_MAX_MS 20

static atomic_int spin_started, sleeper_done, sleeper_release, spin_phase;
static int64_t spin_tcpu, spin_ru_ns, spin_abs;
static int64_t sleep_tcpu, sleep_ru_ns, sleep_abs, sleep_t0;

static int64_t ru_ns(const struct rusage *ru)
{
    return ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * NS_PER_S +
           ((int64_t)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000;
}

static void *spinner(void *a)
{
    (void)a;
    /* Baselines first: vthread counts a thread's CPU time from the
     * process's first request for one (the switch path pays nothing
     * before); programs that measure take such a baseline anyway. */
    int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    struct rusage ru0;
    CHECK_SYS(getrusage(RUSAGE_THREAD, &ru0));
    int64_t p0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    int64_t end = now_ns() + 5 * NS_PER_S;
    atomic_store(&spin_started, 1);
    unsigned long x = 1;
    /* spin for SPIN_MS + 10 ms of process CPU time (the other threads
     * mostly sleep: a few ms are theirs), and until the sleeper has
     * measured itself */
    while (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - p0 <
               (SPIN_MS + 10) * NS_PER_MS ||
           !atomic_load(&sleeper_done)) {
        for (int i = 0; i < 100000; i++)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
        if (now_ns() > end)
            FAIL("spinner: %d ms of process CPU time not reached in 5 s",
                 SPIN_MS);
    }
    spin_sink = x;
    spin_abs = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    spin_tcpu = spin_abs - t0;
    struct rusage ru;
    CHECK_SYS(getrusage(RUSAGE_THREAD, &ru));
    spin_ru_ns = ru_ns(&ru) - ru_ns(&ru0);
    atomic_store(&spin_phase, 1);
    /* stay alive (sleeping) while main reads our CPU clock */
    WAIT_UNTIL(atomic_load(&spin_phase) == 2, 5000);
    return NULL;
}

static void *sleeper(void *a)
{
    (void)a;
    int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    struct rusage ru0;
    CHECK_SYS(getrusage(RUSAGE_THREAD, &ru0));
    sleep_t0 = t0;
    WAIT_UNTIL(atomic_load(&spin_started), WAIT_MS);
    sleep_ms(SLEEP_MS);
    sleep_abs = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    sleep_tcpu = sleep_abs - t0;
    struct rusage ru;
    CHECK_SYS(getrusage(RUSAGE_THREAD, &ru));
    sleep_ru_ns = ru_ns(&ru) - ru_ns(&ru0);
    atomic_store(&sleeper_done, 1);
    /* stay alive (sleeping) while main reads our CPU clock */
    WAIT_UNTIL(atomic_load(&sleeper_release), 5000);
    return NULL;
}

static void test_cpu_time(void)
{
    part("cpu time");
    int64_t p0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    pthread_t ts, tl;
    CHECK_OK(pthread_create(&ts, NULL, spinner, NULL));
    CHECK_OK(pthread_create(&tl, NULL, sleeper, NULL));
    WAIT_UNTIL(atomic_load(&sleeper_done), 5000);
    clockid_t cid;
    CHECK_OK(pthread_getcpuclockid(tl, &cid));
    int64_t sleeper_from_main = clock_ns(cid);
    atomic_store(&sleeper_release, 1);
    CHECK_OK(pthread_join(tl, NULL));
    WAIT_UNTIL(atomic_load(&spin_phase) == 1, 5000);

    CHECK_OK(pthread_getcpuclockid(ts, &cid));
    int64_t from_main = clock_ns(cid);
    atomic_store(&spin_phase, 2);
    CHECK_OK(pthread_join(ts, NULL));
    int64_t pdelta = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - p0;

    fprintf(stderr, "spinner: thread cpu %.1f ms, rusage %.1f ms, from main "
            "%.1f ms; sleeper: thread cpu %.1f ms, rusage %.1f ms, from "
            "main %.1f ms; process cpu %.1f ms\n", spin_tcpu / 1e6,
            spin_ru_ns / 1e6, from_main / 1e6, sleep_tcpu / 1e6,
            sleep_ru_ns / 1e6, sleeper_from_main / 1e6, pdelta / 1e6);
    if (spin_tcpu < (SPIN_MS - 10) * NS_PER_MS)
        FAIL("spinning thread: CLOCK_THREAD_CPUTIME_ID %.1f ms, expected "
             ">= %d", spin_tcpu / 1e6, SPIN_MS - 10);
    if (spin_tcpu > pdelta + 5 * NS_PER_MS)
        FAIL("spinning thread: CLOCK_THREAD_CPUTIME_ID %.1f ms, more than "
             "the process used (%.1f ms)", spin_tcpu / 1e6, pdelta / 1e6);
    if (spin_ru_ns < (SPIN_MS - 20) * NS_PER_MS)
        FAIL("spinning thread: getrusage(RUSAGE_THREAD) %.1f ms, expected "
             ">= %d", spin_ru_ns / 1e6, SPIN_MS - 20);
    if (from_main < spin_abs || from_main - spin_abs > 10 * NS_PER_MS)
        FAIL("pthread_getcpuclockid of the spinning thread read from main: "
             "%.1f ms, the thread itself read %.1f ms", from_main / 1e6,
             spin_abs / 1e6);
    if (sleep_tcpu >= IDLE_MAX_MS * NS_PER_MS)
        FAIL("sleeping thread: CLOCK_THREAD_CPUTIME_ID %.1f ms, expected "
             "< %d", sleep_tcpu / 1e6, IDLE_MAX_MS);
    if (sleep_ru_ns >= IDLE_MAX_MS * NS_PER_MS)
        FAIL("sleeping thread: getrusage(RUSAGE_THREAD) %.1f ms while "
             "another thread spun, expected < %d", sleep_ru_ns / 1e6,
             IDLE_MAX_MS);
    if (sleeper_from_main < sleep_abs ||
        sleeper_from_main - sleep_t0 >= IDLE_MAX_MS * NS_PER_MS)
        FAIL("pthread_getcpuclockid of the sleeping thread read from main: "
             "%.1f ms, the thread itself read %.1f ms (expected < %d)",
             sleeper_from_main / 1e6, sleep_abs / 1e6, IDLE_MAX_MS);

    /* main's own clock through pthread_getcpuclockid */
    CHECK_OK(pthread_getcpuclockid(pthread_self(), &cid));
    int64_t a = clock_ns(cid), b = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (b < a || b - a > 5 * NS_PER_MS)
        FAIL("main: pthread_getcpuclockid(self) %.3f ms vs "
             "CLOCK_THREAD_CPUTIME_ID %.3f ms", a / 1e6, b / 1e6);

    printf("cpu time: a spinning thread's CLOCK_THREAD_CPUTIME_ID, "
           "getrusage(RUSAGE_THREAD) and pthread_getcpuclockid from main "
           "count its spin, a sleeping thread's stay near 0; "
           "pthread_getcpuclockid(self) in main: ok\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    alarm(WATCHDOG_S);
    test_gettid();
    test_tgkill();
    test_sched_by_tid();
    test_join_twice();
    test_cpu_time();
    printf("thread_identity: done\n");
    return 0;
}
