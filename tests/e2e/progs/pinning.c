/*
 * pinning: per-task kernel state stays with the thread that set it.
 * Under NPTL every thread is a task: what a thread sets for itself with
 * prctl (timer slack, no_new_privs), unshare(CLONE_FS) + chdir,
 * sched_setaffinity(0, ...) or setpriority(PRIO_PROCESS, 0, ...) is its
 * own, for its whole life, whatever it does meanwhile (sleeps, yields,
 * waits on condvars, mutexes and pipes), and no other thread sees it.
 * Checked with many such threads at once next to "observer" threads that
 * must keep the process's values; PR_SET_NAME/PR_GET_NAME agree with
 * pthread_{get,set}name_np; state set by main before the first thread is
 * main's for good and inherited by the threads made later; a fork from
 * such a thread gives a child with its state; once the threads are gone
 * the OS threads that carried their state are gone too.
 */
#include "e2e.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define WATCHDOG_S 30
#define MAIN_SLACK 777777UL
#define ROUNDS 150
#define CHECK_STREQ(a, b)                                                  \
    do {                                                                   \
        const char *s1_ = (a), *s2_ = (b);                                 \
        if (strcmp(s1_, s2_) != 0)                                         \
            FAIL("%s is \"%s\", expected \"%s\"", #a, s1_, s2_);          \
    } while (0)

static void part(const char *name)
{
    fprintf(stderr, "pinning: %s...\n", name);
}

static void pause_a_little(int k)
{
    switch (k % 4) {
    case 0: {
        struct timespec ts = {0, 20000 + (k % 7) * 10000};
        nanosleep(&ts, NULL);
        break;
    }
    case 1:
        sched_yield();
        break;
    case 2: {
        /* spin a little: a preemption point */
        volatile unsigned x = 0;
        for (int i = 0; i < 20000; i++)
            x += (unsigned)i;
        break;
    }
    default: {
        struct timespec ts = {0, 1000};
        nanosleep(&ts, NULL);
        break;
    }
    }
}

static unsigned long slack(void)
{
    return (unsigned long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
}

/* The nice value of the calling task as the kernel has it (field 19 of
 * /proc/thread-self/stat). */
static int kernel_nice(void)
{
    char buf[1024];
    int fd = open("/proc/thread-self/stat", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    CHECK(p);
    p += 2; /* state */
    for (int field = 3; field < 19; field++) {
        p = strchr(p, ' ');
        CHECK(p);
        p++;
    }
    return atoi(p);
}

static char start_cwd[PATH_MAX];
static char tmp_root[256];
static cpu_set_t start_aff;
static int last_cpu = -1; /* highest CPU we may run on; -1 if only one */

/* ---------------------------------------------------------- observers */

static atomic_int stop_observers;
static atomic_long observed;

static void observe_once(void)
{
    CHECK_EQ(slack(), MAIN_SLACK);
    CHECK_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd));
    CHECK_STREQ(cwd, start_cwd);
    errno = 0;
    CHECK_EQ(getpriority(PRIO_PROCESS, 0), 0);
    CHECK_EQ(errno, 0);
    CHECK_EQ(kernel_nice(), 0);
    cpu_set_t s;
    CHECK_EQ(sched_getaffinity(0, sizeof s, &s), 0);
    CHECK(CPU_EQUAL(&s, &start_aff));
}

static void *observer(void *arg)
{
    (void)arg;
    int k = 0;
    while (!atomic_load(&stop_observers)) {
        observe_once();
        pause_a_little(k++);
        atomic_fetch_add(&observed, 1);
    }
    return NULL;
}

/* ------------------------------------------------- pinned-state threads */

enum { K_SLACK, K_CWD, K_AFFINITY, K_NICE, K_NNP, K_SYSCALL, NKINDS };
#define PER_KIND 6
#define NPINNED (NKINDS * PER_KIND)

struct pinned {
    int kind, idx;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *turn;            /* ping-pong with its partner */
    int pipe_in;          /* partner writes one byte per round */
    char dir[PATH_MAX];
};

static void check_state(struct pinned *p)
{
    switch (p->kind) {
    case K_SLACK:
    case K_SYSCALL:
        CHECK_EQ(slack(), 100000UL + (unsigned long)p->kind * 1000 +
                              (unsigned long)p->idx);
        break;
    case K_CWD: {
        char cwd[PATH_MAX];
        CHECK(getcwd(cwd, sizeof cwd));
        CHECK_STREQ(cwd, p->dir);
        break;
    }
    case K_AFFINITY:
        if (last_cpu >= 0) {
            CHECK_EQ(sched_getcpu(), last_cpu);
            cpu_set_t s;
            CHECK_EQ(sched_getaffinity(0, sizeof s, &s), 0);
            CHECK_EQ(CPU_COUNT(&s), 1);
            CHECK(CPU_ISSET(last_cpu, &s));
            CHECK_EQ(pthread_getaffinity_np(pthread_self(), sizeof s, &s), 0);
            CHECK_EQ(CPU_COUNT(&s), 1);
        }
        break;
    case K_NICE:
        CHECK_EQ(getpriority(PRIO_PROCESS, 0), 3 + p->idx);
        CHECK_EQ(kernel_nice(), 3 + p->idx);
        break;
    case K_NNP:
        CHECK_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1);
        break;
    }
    /* what no pinned thread here changes stays the process's */
    if (p->kind != K_SLACK && p->kind != K_SYSCALL)
        CHECK_EQ(slack(), MAIN_SLACK);
}

static void set_state(struct pinned *p)
{
    switch (p->kind) {
    case K_SLACK:
        CHECK_EQ(prctl(PR_SET_TIMERSLACK, 100000UL + (unsigned long)p->idx,
                       0, 0, 0),
                 0);
        break;
    case K_SYSCALL:
        CHECK_EQ(syscall(SYS_prctl, PR_SET_TIMERSLACK,
                         100000UL + K_SYSCALL * 1000 + (unsigned long)p->idx,
                         0, 0, 0),
                 0);
        break;
    case K_CWD:
        CHECK_EQ(unshare(CLONE_FS), 0);
        snprintf(p->dir, sizeof p->dir, "%s/d%d", tmp_root, p->idx);
        CHECK_EQ(chdir(p->dir), 0);
        break;
    case K_AFFINITY:
        if (last_cpu >= 0) {
            cpu_set_t s;
            CPU_ZERO(&s);
            CPU_SET(last_cpu, &s);
            CHECK_EQ(sched_setaffinity(0, sizeof s, &s), 0);
        }
        break;
    case K_NICE:
        CHECK_EQ(setpriority(PRIO_PROCESS, 0, 3 + p->idx), 0);
        break;
    case K_NNP:
        CHECK_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        break;
    }
}

static void *pinned_fn(void *arg)
{
    struct pinned *p = arg;
    CHECK_EQ(slack(), MAIN_SLACK); /* inherited from main */
    set_state(p);
    for (int k = 0; k < ROUNDS; k++) {
        check_state(p);
        pause_a_little(k + p->idx);
        check_state(p);
        /* condvar ping-pong with an unpinned partner */
        pthread_mutex_lock(p->mu);
        while (*p->turn != 0)
            pthread_cond_wait(p->cv, p->mu);
        *p->turn = 1;
        pthread_cond_signal(p->cv);
        pthread_mutex_unlock(p->mu);
        check_state(p);
        /* a blocking pipe read the partner satisfies */
        char c;
        CHECK_EQ(read(p->pipe_in, &c, 1), 1);
        CHECK_EQ(c, (char)k);
        check_state(p);
    }
    return (void *)(intptr_t)(p->kind * 100 + p->idx);
}

struct partner {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;
    int pipe_out;
};

static void *partner_fn(void *arg)
{
    struct partner *q = arg;
    for (int k = 0; k < ROUNDS; k++) {
        pthread_mutex_lock(&q->mu);
        while (q->turn != 1)
            pthread_cond_wait(&q->cv, &q->mu);
        q->turn = 0;
        pthread_cond_signal(&q->cv);
        pthread_mutex_unlock(&q->mu);
        observe_once(); /* the partner is an observer too */
        char c = (char)k;
        CHECK_EQ(write(q->pipe_out, &c, 1), 1);
    }
    return NULL;
}

/* ---------------------------------------------------------------- names */

static pthread_barrier_t name_set, name_read;

static void *named_fn(void *arg)
{
    (void)arg;
    CHECK_EQ(prctl(PR_SET_NAME, "a-rather-long-thread-name", 0, 0, 0), 0);
    char buf[16], buf2[16];
    for (int k = 0; k < 20; k++) {
        memset(buf, 'x', sizeof buf);
        CHECK_EQ(prctl(PR_GET_NAME, buf, 0, 0, 0), 0);
        CHECK_STREQ(buf, "a-rather-long-t");
        CHECK_EQ(pthread_getname_np(pthread_self(), buf2, sizeof buf2), 0);
        CHECK_STREQ(buf2, "a-rather-long-t");
        pause_a_little(k);
    }
    CHECK_EQ(pthread_setname_np(pthread_self(), "via-pthread"), 0);
    CHECK_EQ(prctl(PR_GET_NAME, buf, 0, 0, 0), 0);
    CHECK_STREQ(buf, "via-pthread");
    pthread_barrier_wait(&name_set);
    pthread_barrier_wait(&name_read);
    return NULL;
}

/* ----------------------------------------------------------------- fork */

static void *child_slack(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)(slack() == 424242UL);
}

static void *forker_fn(void *arg)
{
    (void)arg;
    CHECK_EQ(prctl(PR_SET_TIMERSLACK, 424242UL, 0, 0, 0), 0);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    CHECK_EQ(slack(), 424242UL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* the child is a copy of this thread: its state */
        if (slack() != 424242UL)
            _exit(10);
        /* the child's new thread descends from this one: our slack */
        pthread_t t;
        if (pthread_create(&t, NULL, child_slack, NULL) != 0)
            _exit(11);
        void *r;
        if (pthread_join(t, &r) != 0 || r != (void *)1)
            _exit(12);
        nanosleep(&ts, NULL);
        _exit(slack() == 424242UL ? 0 : 13);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    CHECK_EQ(slack(), 424242UL);
    return NULL;
}

static int os_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f);
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    alarm(WATCHDOG_S);

    /* Before the first thread: main's own for good, inherited by every
     * thread made later. */
    CHECK_EQ(prctl(PR_SET_TIMERSLACK, MAIN_SLACK, 0, 0, 0), 0);
    CHECK(getcwd(start_cwd, sizeof start_cwd));
    CHECK_EQ(sched_getaffinity(0, sizeof start_aff, &start_aff), 0);
    if (CPU_COUNT(&start_aff) >= 2)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &start_aff))
                last_cpu = c;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/e2e-pinning-%d", (int)getpid());
    CHECK_EQ(mkdir(tmp_root, 0700), 0);
    for (int i = 0; i < PER_KIND; i++) {
        char d[PATH_MAX + 16];
        snprintf(d, sizeof d, "%s/d%d", tmp_root, i);
        CHECK_EQ(mkdir(d, 0700), 0);
    }

    part("names");
    pthread_t nt;
    pthread_barrier_init(&name_set, NULL, 2);
    pthread_barrier_init(&name_read, NULL, 2);
    CHECK_EQ(pthread_create(&nt, NULL, named_fn, NULL), 0);
    pthread_barrier_wait(&name_set);
    char nbuf[16];
    CHECK_EQ(pthread_getname_np(nt, nbuf, sizeof nbuf), 0);
    CHECK_STREQ(nbuf, "via-pthread");
    pthread_barrier_wait(&name_read);
    CHECK_EQ(pthread_join(nt, NULL), 0);
    printf("names: prctl and pthread_*name_np agree\n");

    part("pinned threads");
    enum { NOBS = 8 };
    pthread_t obs[NOBS];
    for (int i = 0; i < NOBS; i++)
        CHECK_EQ(pthread_create(&obs[i], NULL, observer, NULL), 0);
    static struct pinned pins[NPINNED];
    static struct partner parts[NPINNED];
    pthread_t pt[NPINNED], qt[NPINNED];
    for (int i = 0; i < NPINNED; i++) {
        int fds[2];
        CHECK_EQ(pipe(fds), 0);
        struct partner *q = &parts[i];
        pthread_mutex_init(&q->mu, NULL);
        pthread_cond_init(&q->cv, NULL);
        q->turn = 0;
        q->pipe_out = fds[1];
        struct pinned *p = &pins[i];
        p->kind = i % NKINDS;
        p->idx = i / NKINDS;
        p->mu = &q->mu;
        p->cv = &q->cv;
        p->turn = &q->turn;
        p->pipe_in = fds[0];
        CHECK_EQ(pthread_create(&pt[i], NULL, pinned_fn, p), 0);
        CHECK_EQ(pthread_create(&qt[i], NULL, partner_fn, q), 0);
    }
    /* main keeps its own state meanwhile */
    for (int k = 0; k < 50; k++) {
        observe_once();
        pause_a_little(k);
    }
    for (int i = 0; i < NPINNED; i++) {
        void *r;
        CHECK_EQ(pthread_join(pt[i], &r), 0);
        CHECK_EQ((intptr_t)r, pins[i].kind * 100 + pins[i].idx);
        CHECK_EQ(pthread_join(qt[i], NULL), 0);
        close(pins[i].pipe_in);
        close(parts[i].pipe_out);
    }
    atomic_store(&stop_observers, 1);
    for (int i = 0; i < NOBS; i++)
        CHECK_EQ(pthread_join(obs[i], NULL), 0);
    CHECK(atomic_load(&observed) > 0);
    observe_once();
    printf("pinned: %d threads kept their own state, %d observers the "
           "process's\n",
           NPINNED, NOBS);

    part("fork from a pinned thread");
    atomic_store(&stop_observers, 0);
    pthread_t ft;
    CHECK_EQ(pthread_create(&ft, NULL, forker_fn, NULL), 0);
    CHECK_EQ(pthread_join(ft, NULL), 0);
    printf("fork: the child has the forking thread's state\n");

    part("threads of the pinned ones are gone");
    /* every thread has ended; the OS threads that carried their state
     * end too (under NPTL at once; a runtime keeps a few of its own, more
     * on a busy machine: well under the 36 pinned ones) */
    int n = 0;
    for (int k = 0; k < 200; k++) {
        n = os_threads();
        if (n <= 20)
            break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "pinning: %d OS threads at the end\n", n);
    CHECK(n <= 20);
    observe_once();
    printf("end: few OS threads left\n");

    for (int i = 0; i < PER_KIND; i++) {
        char d[PATH_MAX + 16];
        snprintf(d, sizeof d, "%s/d%d", tmp_root, i);
        rmdir(d);
    }
    rmdir(tmp_root);
    return 0;
}
