/*
 * pshared: process-shared synchronisation objects used by several
 * processes: unnamed semaphores (sem_init(s, 1, n)) in MAP_SHARED memory,
 * named semaphores (sem_open) shared with a forked child and with an
 * unrelated process (this program re-executed through /proc/self/exe),
 * PTHREAD_PROCESS_SHARED mutexes, condition variables, rwlocks and
 * barriers, and a pshared mutex + semaphore in a shm_open'ed file used by
 * an unrelated process.  Every part runs twice: first before this process
 * has created any thread, then while three background threads of it run,
 * with the child processes then also running threads (their side of the
 * part in a thread of its own next to background threads).
 *
 * A lost cross-process wake-up must fail within seconds: waits that another
 * process ends are timed (WAIT_MS, and ETIMEDOUT is a failure) or bounded
 * by a watchdog (alarm(), default action) in every process.
 */
#include "e2e.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define WAIT_MS 3000        /* bound of a wait that another process ends */
#define CHILD_WATCHDOG_S 6  /* alarm() in every child process */
#define PART_WATCHDOG_S 10  /* alarm() in the parent, per part and round */
#define HOLD_MS 30          /* a holder keeps an object this long */

static int round_no;        /* 0: no thread created yet, 1: threads run */
static const char *const round_name[2] = {"no threads", "with threads"};

/* ---------------------------------------------- shared anonymous memory */

#define PINGS 1000
#define INCS 20000
#define BAR_ROUNDS 300
#define NTHR 4              /* incrementing threads per process, round 1 */

struct shared {
    sem_t s1, s2, ping, pong;
    pthread_mutex_t m;
    pthread_cond_t c;
    pthread_rwlock_t rw;
    pthread_barrier_t bar;
    atomic_int step, done, flag, waiting, woken, inside, arrived;
    long counter;
    atomic_int serial[BAR_ROUNDS];
};
static struct shared *sh;

/* ------------------------------------------------- background threads */

#define NBG 3
static pthread_t bg_t[NBG];
static atomic_int bg_stop;
static pthread_mutex_t bg_m;
static pthread_cond_t bg_c;
static long bg_ops;

static void *bg_fn(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !atomic_load(&bg_stop); i++) {
        CHECK_OK(pthread_mutex_lock(&bg_m));
        bg_ops++;
        struct timespec dl = deadline_in(CLOCK_REALTIME, 1);
        int rc = pthread_cond_timedwait(&bg_c, &bg_m, &dl);
        if (rc != 0 && rc != ETIMEDOUT)
            FAIL("background pthread_cond_timedwait: %s", strerror(rc));
        CHECK_OK(pthread_mutex_unlock(&bg_m));
        if (i % 3 == 0)
            sched_yield();
        else
            sleep_ms(1);
    }
    return NULL;
}

/* Also used in a child after fork: the copies of bg_m/bg_c may be in any
 * state there, so they are initialised afresh. */
static void bg_start(void)
{
    atomic_store(&bg_stop, 0);
    bg_ops = 0;
    CHECK_OK(pthread_mutex_init(&bg_m, NULL));
    CHECK_OK(pthread_cond_init(&bg_c, NULL));
    for (int i = 0; i < NBG; i++)
        CHECK_OK(pthread_create(&bg_t[i], NULL, bg_fn, NULL));
}

static void bg_finish(void)
{
    atomic_store(&bg_stop, 1);
    for (int i = 0; i < NBG; i++)
        CHECK_OK(pthread_join(bg_t[i], NULL));
}

/* ------------------------------------------------------------ names */

/* Names of the named semaphores and the shm_open file: unique per run and
 * round.  A janitor process removes them if this process dies early (a
 * failed check _exits, the watchdog kills), so /dev/shm does not fill up
 * with leftovers of failed runs. */
static pid_t main_pid;
static int janitor_fd = -1;     /* write end, only in the main process */

static void obj_name(char *buf, size_t n, int round, const char *suffix)
{
    snprintf(buf, n, "/e2e-pshared-%d-%d-%s", (int)main_pid, round, suffix);
}

static void start_janitor(void)
{
    int pfd[2];
    CHECK_SYS(pipe2(pfd, O_CLOEXEC));
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        close(pfd[1]);
        char c;
        /* EOF once the main process (and so every holder) has gone */
        for (;;) {
            ssize_t r = read(pfd[0], &c, 1);
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        for (int r = 0; r < 2; r++) {
            char name[64];
            obj_name(name, sizeof name, r, "a");
            sem_unlink(name);
            obj_name(name, sizeof name, r, "b");
            sem_unlink(name);
            obj_name(name, sizeof name, r, "shm");
            shm_unlink(name);
        }
        _exit(0);
    }
    close(pfd[0]);
    janitor_fd = pfd[1];
}

/* ------------------------------------------------------ child processes */

struct call {
    void (*fn)(void *);
    void *arg;
};

static void *call_thread(void *p)
{
    struct call *c = p;
    c->fn(c->arg);
    return NULL;
}

/* Run fn(arg) in a child process: directly in round 0, in round 1 in a new
 * thread (joined) while background threads run. */
static void child_run(void (*fn)(void *), void *arg)
{
    if (round_no == 0) {
        fn(arg);
        return;
    }
    bg_start();
    struct call c = {fn, arg};
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, call_thread, &c));
    CHECK_OK(pthread_join(t, NULL));
    bg_finish();
}

static pid_t spawn(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        alarm(CHILD_WATCHDOG_S);
        close(janitor_fd);
        child_run(fn, arg);
        _exit(0);
    }
    return pid;
}

/* Re-execute this program as an unrelated process: MODE NAME1 NAME2 ROUND */
static pid_t spawn_exec(const char *mode, const char *n1, const char *n2)
{
    char r[8];
    snprintf(r, sizeof r, "%d", round_no);
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        execl("/proc/self/exe", e2e_prog, mode, n1, n2, r, (char *)NULL);
        _exit(121);
    }
    return pid;
}

static void wait_child(pid_t pid, const char *what)
{
    int64_t end = now_ns() + (CHILD_WATCHDOG_S + 2) * NS_PER_S;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == -1 && errno == EINTR)
            continue;
        CHECK_SYS(r);
        if (r == pid) {
            if (WIFSIGNALED(st))
                FAIL("%s (%s): child killed by signal %d (%s)", what,
                     round_name[round_no], WTERMSIG(st),
                     strsignal(WTERMSIG(st)));
            if (WEXITSTATUS(st) != 0)
                FAIL("%s (%s): child exited with status %d", what,
                     round_name[round_no], WEXITSTATUS(st));
            return;
        }
        if (now_ns() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            FAIL("%s (%s): child did not end", what, round_name[round_no]);
        }
        sleep_ms(1);
    }
}

/* ----------------------------------------------------------- helpers */

static void sem_wait_ok(sem_t *s)
{
    while (sem_wait(s) != 0)
        CHECK_EQ(errno, EINTR);
}

static void sem_timedwait_ok(sem_t *s, const char *what)
{
    struct timespec dl = deadline_in(CLOCK_REALTIME, WAIT_MS);
    while (sem_timedwait(s, &dl) != 0) {
        if (errno == ETIMEDOUT)
            FAIL("%s (%s): sem_timedwait timed out after %d ms: the other "
                 "process's sem_post did not wake it", what,
                 round_name[round_no], WAIT_MS);
        CHECK_EQ(errno, EINTR);
    }
}

static void check_sem_value(sem_t *s, int want)
{
    int v = -1;
    CHECK_SYS(sem_getvalue(s, &v));
    CHECK_EQ(v, want);
}

static void mutex_init_pshared(pthread_mutex_t *m, int type)
{
    pthread_mutexattr_t a;
    int ps = -1;
    CHECK_OK(pthread_mutexattr_init(&a));
    CHECK_OK(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED));
    CHECK_OK(pthread_mutexattr_getpshared(&a, &ps));
    CHECK_EQ(ps, PTHREAD_PROCESS_SHARED);
    CHECK_OK(pthread_mutexattr_settype(&a, type));
    CHECK_OK(pthread_mutex_init(m, &a));
    CHECK_OK(pthread_mutexattr_destroy(&a));
}

static void timedlock_ok(pthread_mutex_t *m, const char *what)
{
    struct timespec dl = deadline_in(CLOCK_REALTIME, WAIT_MS);
    int rc = pthread_mutex_timedlock(m, &dl);
    if (rc == ETIMEDOUT)
        FAIL("%s (%s): pthread_mutex_timedlock timed out after %d ms: the "
             "other process's unlock did not wake it", what,
             round_name[round_no], WAIT_MS);
    CHECK_OK(rc);
}

static void reset_shared(void)
{
    memset(sh, 0, sizeof *sh);
}

/* Each part announces itself on stderr: when the watchdog ends a hung
 * process (killed by SIGALRM), the last line there says where it hung. */
static void part_begin(const char *name)
{
    reset_shared();
    fprintf(stderr, "pshared: %s (%s)...\n", name, round_name[round_no]);
    alarm(PART_WATCHDOG_S);
}

static void part_end(const char *name, const char *what)
{
    alarm(0);
    printf("%s (%s): ok - %s\n", name, round_name[round_no], what);
}

/* ================================================= unnamed semaphores */

static void c_post_s1_later(void *a)
{
    (void)a;
    sleep_ms(HOLD_MS);
    CHECK_SYS(sem_post(&sh->s1));
}

static void c_wait_s2(void *timed)
{
    atomic_store(&sh->step, 1);
    if (timed)
        sem_timedwait_ok(&sh->s2, "child sem_timedwait woken by the parent");
    else
        sem_wait_ok(&sh->s2);
    CHECK_EQ(atomic_load(&sh->done), 1);
}

static void c_post_s1_5(void *a)
{
    (void)a;
    for (int i = 0; i < 5; i++)
        CHECK_SYS(sem_post(&sh->s1));
}

static void c_ponger(void *a)
{
    (void)a;
    for (int i = 0; i < PINGS; i++) {
        if (i & 1)
            sem_timedwait_ok(&sh->ping, "ping-pong (child)");
        else
            sem_wait_ok(&sh->ping);
        CHECK_SYS(sem_post(&sh->pong));
    }
}

static void part_sem_unnamed(void)
{
    part_begin("sem unnamed");
    CHECK_SYS(sem_init(&sh->s1, 1, 0));
    CHECK_SYS(sem_init(&sh->s2, 1, 0));
    CHECK_SYS(sem_init(&sh->ping, 1, 0));
    CHECK_SYS(sem_init(&sh->pong, 1, 0));

    /* the parent blocks in sem_timedwait / sem_wait, the child posts */
    pid_t pid = spawn(c_post_s1_later, NULL);
    sem_timedwait_ok(&sh->s1, "parent sem_timedwait woken by a child");
    wait_child(pid, "sem_timedwait woken by another process");
    pid = spawn(c_post_s1_later, NULL);
    sem_wait_ok(&sh->s1);
    wait_child(pid, "sem_wait woken by another process");
    check_sem_value(&sh->s1, 0);

    /* the child blocks in sem_wait / sem_timedwait, the parent posts */
    for (int timed = 0; timed < 2; timed++) {
        atomic_store(&sh->step, 0);
        atomic_store(&sh->done, 0);
        pid = spawn(c_wait_s2, timed ? (void *)1 : NULL);
        WAIT_UNTIL(atomic_load(&sh->step) == 1, WAIT_MS);
        sleep_ms(HOLD_MS);
        atomic_store(&sh->done, 1);
        CHECK_SYS(sem_post(&sh->s2));
        wait_child(pid, timed ? "child sem_timedwait woken by the parent"
                              : "child sem_wait woken by the parent");
    }
    check_sem_value(&sh->s2, 0);

    /* posts of an exited child stay counted */
    pid = spawn(c_post_s1_5, NULL);
    wait_child(pid, "sem_post x5 in a child");
    check_sem_value(&sh->s1, 5);
    for (int i = 0; i < 5; i++)
        CHECK_SYS(sem_trywait(&sh->s1));
    CHECK_ERRNO(sem_trywait(&sh->s1), EAGAIN);

    /* ping-pong */
    pid = spawn(c_ponger, NULL);
    for (int i = 0; i < PINGS; i++) {
        CHECK_SYS(sem_post(&sh->ping));
        if (i & 1)
            sem_wait_ok(&sh->pong);
        else
            sem_timedwait_ok(&sh->pong, "ping-pong (parent)");
    }
    wait_child(pid, "ping-pong");
    check_sem_value(&sh->ping, 0);
    check_sem_value(&sh->pong, 0);

    CHECK_SYS(sem_destroy(&sh->s1));
    CHECK_SYS(sem_destroy(&sh->s2));
    CHECK_SYS(sem_destroy(&sh->ping));
    CHECK_SYS(sem_destroy(&sh->pong));
    part_end("sem unnamed", "wait/timedwait woken both ways, counts, "
             "1000 ping-pongs");
}

/* =================================================== named semaphores */

struct named {
    char a[64], b[64];
    sem_t *sa, *sb;
};

/* forked child: opens the semaphores again by name, and also uses the
 * handle it inherited */
static void c_named_fork(void *p)
{
    struct named *n = p;
    sem_t *a = sem_open(n->a, 0);
    if (a == SEM_FAILED)
        FAIL("sem_open(%s) in a forked child: %s", n->a, strerror(errno));
    sleep_ms(HOLD_MS);
    CHECK_SYS(sem_post(a));                         /* parent waits */
    sem_wait_ok(n->sb);                             /* inherited handle */
    CHECK_SYS(sem_post(n->sa));
    sem_timedwait_ok(n->sb, "named semaphore: forked child waits");
    CHECK_SYS(sem_close(a));
}

#define NAMED_PINGS 200

/* unrelated (re-executed) process */
static int x_named(const char *na, const char *nb)
{
    sem_t *a = sem_open(na, 0), *b = sem_open(nb, 0);
    if (a == SEM_FAILED || b == SEM_FAILED)
        FAIL("sem_open(%s/%s) in another process: %s", na, nb,
             strerror(errno));
    CHECK_SYS(sem_post(b));         /* the parent is blocked on b by now */
    for (int i = 0; i < NAMED_PINGS; i++) {
        if (i & 1)
            sem_timedwait_ok(a, "named ping-pong (other process)");
        else
            sem_wait_ok(a);
        CHECK_SYS(sem_post(b));
    }
    CHECK_SYS(sem_close(a));
    CHECK_SYS(sem_close(b));
    return 0;
}

static void part_sem_named(void)
{
    part_begin("sem named");
    static struct named n;
    obj_name(n.a, sizeof n.a, round_no, "a");
    obj_name(n.b, sizeof n.b, round_no, "b");
    n.sa = sem_open(n.a, O_CREAT | O_EXCL, 0600, 0);
    n.sb = sem_open(n.b, O_CREAT | O_EXCL, 0600, 0);
    if (n.sa == SEM_FAILED || n.sb == SEM_FAILED)
        FAIL("sem_open(O_CREAT): %s", strerror(errno));

    /* a forked child */
    pid_t pid = spawn(c_named_fork, &n);
    sem_timedwait_ok(n.sa, "named semaphore: parent waits for a forked "
                           "child");
    sleep_ms(HOLD_MS);
    CHECK_SYS(sem_post(n.sb));
    sem_wait_ok(n.sa);
    sleep_ms(HOLD_MS);
    CHECK_SYS(sem_post(n.sb));
    wait_child(pid, "named semaphore with a forked child");
    check_sem_value(n.sa, 0);
    check_sem_value(n.sb, 0);

    /* an unrelated process opening the same names */
    pid = spawn_exec("named", n.a, n.b);
    sem_timedwait_ok(n.sb, "named semaphore: parent waits for another "
                           "process");
    for (int i = 0; i < NAMED_PINGS; i++) {
        CHECK_SYS(sem_post(n.sa));
        if (i & 1)
            sem_wait_ok(n.sb);
        else
            sem_timedwait_ok(n.sb, "named ping-pong (parent)");
    }
    wait_child(pid, "named semaphore with another process");
    check_sem_value(n.sa, 0);
    check_sem_value(n.sb, 0);

    CHECK_SYS(sem_close(n.sa));
    CHECK_SYS(sem_close(n.sb));
    CHECK_SYS(sem_unlink(n.a));
    CHECK_SYS(sem_unlink(n.b));
    errno = 0;
    CHECK(sem_open(n.a, 0) == SEM_FAILED);
    CHECK_EQ(errno, ENOENT);
    CHECK_ERRNO(sem_unlink(n.b), ENOENT);
    part_end("sem named", "forked child and another process, 200 "
             "ping-pongs, unlinked");
}

/* ============================================================ mutexes */

static void inc_loop(int n)
{
    for (int i = 0; i < n; i++) {
        CHECK_OK(pthread_mutex_lock(&sh->m));
        if (atomic_fetch_add(&sh->inside, 1) != 0)
            FAIL("two processes inside a process-shared mutex");
        sh->counter++;
        atomic_fetch_sub(&sh->inside, 1);
        CHECK_OK(pthread_mutex_unlock(&sh->m));
    }
}

static void *inc_thread(void *a)
{
    inc_loop((int)(intptr_t)a);
    return NULL;
}

/* INCS increments in this process: one thread in round 0, NTHR in round 1 */
static void inc_proc(void *a)
{
    (void)a;
    WAIT_UNTIL(atomic_load(&sh->flag) == 1, WAIT_MS);
    if (round_no == 0) {
        inc_loop(INCS);
        return;
    }
    pthread_t t[NTHR];
    for (int i = 0; i < NTHR; i++)
        CHECK_OK(pthread_create(&t[i], NULL, inc_thread,
                                (void *)(intptr_t)(INCS / NTHR)));
    for (int i = 0; i < NTHR; i++)
        CHECK_OK(pthread_join(t[i], NULL));
}

static void c_hold_mutex(void *a)
{
    (void)a;
    CHECK_OK(pthread_mutex_lock(&sh->m));
    atomic_store(&sh->step, 1);
    sleep_ms(HOLD_MS);
    atomic_store(&sh->done, 1);
    CHECK_OK(pthread_mutex_unlock(&sh->m));
}

static void c_block_mutex(void *timed)
{
    CHECK_RC(pthread_mutex_trylock(&sh->m), EBUSY);
    atomic_store(&sh->step, 1);
    if (timed)
        timedlock_ok(&sh->m, "child's timedlock released by the parent");
    else
        CHECK_OK(pthread_mutex_lock(&sh->m));
    CHECK_EQ(atomic_load(&sh->done), 1);
    CHECK_OK(pthread_mutex_unlock(&sh->m));
}

static void part_mutex(void)
{
    part_begin("mutex");
    mutex_init_pshared(&sh->m, PTHREAD_MUTEX_DEFAULT);

    /* parent and two children increment a shared counter */
    pid_t p1 = spawn(inc_proc, NULL), p2 = spawn(inc_proc, NULL);
    atomic_store(&sh->flag, 1);
    inc_proc(NULL);
    wait_child(p1, "mutex counter");
    wait_child(p2, "mutex counter");
    CHECK_EQ(sh->counter, 3L * INCS);

    /* the parent blocks on a mutex a child holds (lock, then timedlock) */
    for (int timed = 0; timed < 2; timed++) {
        atomic_store(&sh->step, 0);
        atomic_store(&sh->done, 0);
        pid_t pid = spawn(c_hold_mutex, NULL);
        WAIT_UNTIL(atomic_load(&sh->step) == 1, WAIT_MS);
        CHECK_RC(pthread_mutex_trylock(&sh->m), EBUSY);
        if (timed)
            timedlock_ok(&sh->m, "parent's timedlock released by a child");
        else
            CHECK_OK(pthread_mutex_lock(&sh->m));
        CHECK_EQ(atomic_load(&sh->done), 1);
        CHECK_OK(pthread_mutex_unlock(&sh->m));
        wait_child(pid, "mutex held by a child");
    }

    /* a child blocks on the mutex the parent holds */
    for (int timed = 0; timed < 2; timed++) {
        atomic_store(&sh->step, 0);
        atomic_store(&sh->done, 0);
        CHECK_OK(pthread_mutex_lock(&sh->m));
        pid_t pid = spawn(c_block_mutex, timed ? (void *)1 : NULL);
        WAIT_UNTIL(atomic_load(&sh->step) == 1, WAIT_MS);
        sleep_ms(HOLD_MS);
        atomic_store(&sh->done, 1);
        CHECK_OK(pthread_mutex_unlock(&sh->m));
        wait_child(pid, "child blocked on the parent's mutex");
    }
    CHECK_OK(pthread_mutex_destroy(&sh->m));
    part_end("mutex", "3 processes x 20000 increments, lock/timedlock "
             "released by the other process");
}

/* ================================================ condition variables */

static void cond_init_pshared(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int ps = -1;
    CHECK_OK(pthread_condattr_init(&a));
    CHECK_OK(pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED));
    CHECK_OK(pthread_condattr_getpshared(&a, &ps));
    CHECK_EQ(ps, PTHREAD_PROCESS_SHARED);
    CHECK_OK(pthread_cond_init(c, &a));
    CHECK_OK(pthread_condattr_destroy(&a));
}

/* Wait until sh->flag is set; timed: a timeout is a lost wake-up. */
static void cond_wait_flag(int timed, const char *what)
{
    CHECK_OK(pthread_mutex_lock(&sh->m));
    atomic_fetch_add(&sh->waiting, 1);
    struct timespec dl = deadline_in(CLOCK_REALTIME, WAIT_MS);
    while (!atomic_load(&sh->flag)) {
        if (!timed) {
            CHECK_OK(pthread_cond_wait(&sh->c, &sh->m));
            continue;
        }
        int rc = pthread_cond_timedwait(&sh->c, &sh->m, &dl);
        if (rc == ETIMEDOUT)
            FAIL("%s (%s): pthread_cond_timedwait timed out after %d ms: "
                 "the other process's signal/broadcast did not wake it",
                 what, round_name[round_no], WAIT_MS);
        CHECK_OK(rc);
    }
    atomic_fetch_add(&sh->woken, 1);
    CHECK_OK(pthread_mutex_unlock(&sh->m));
}

static void c_cond_waiter(void *timed)
{
    cond_wait_flag(timed != NULL, "child waits for the parent's signal");
}

static void *cond_waiter_thread(void *timed)
{
    cond_wait_flag(timed != NULL, "child thread waits for a broadcast");
    return NULL;
}

/* broadcast: one waiter (timed) in round 0, two threads (plain, timed) in
 * round 1 */
static void c_cond_bcast_waiters(void *a)
{
    (void)a;
    if (round_no == 0) {
        cond_wait_flag(1, "child waits for the parent's broadcast");
        return;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(pthread_create(&t[i], NULL, cond_waiter_thread,
                                i ? (void *)1 : NULL));
    for (int i = 0; i < 2; i++)
        CHECK_OK(pthread_join(t[i], NULL));
}

static void c_cond_signaller(void *bcast)
{
    WAIT_UNTIL(atomic_load(&sh->waiting) == 1, WAIT_MS);
    CHECK_OK(pthread_mutex_lock(&sh->m));  /* the parent is in the wait */
    atomic_store(&sh->flag, 1);
    if (bcast)
        CHECK_OK(pthread_cond_broadcast(&sh->c));
    else
        CHECK_OK(pthread_cond_signal(&sh->c));
    CHECK_OK(pthread_mutex_unlock(&sh->m));
}

static void cond_timeout(void)
{
    CHECK_OK(pthread_mutex_lock(&sh->m));
    struct timespec dl = deadline_in(CLOCK_REALTIME, 50);
    int64_t t0 = now_ns();
    CHECK_RC(pthread_cond_timedwait(&sh->c, &sh->m, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 50, 0);
    /* re-acquired: unlocking an error-checking mutex we do not own is
     * EPERM */
    CHECK_OK(pthread_mutex_unlock(&sh->m));
    CHECK_RC(pthread_mutex_unlock(&sh->m), EPERM);
}

static void c_cond_timeout(void *a)
{
    (void)a;
    cond_timeout();
}

static void cond_reset(void)
{
    atomic_store(&sh->flag, 0);
    atomic_store(&sh->waiting, 0);
    atomic_store(&sh->woken, 0);
}

static void part_cond(void)
{
    part_begin("cond");
    mutex_init_pshared(&sh->m, PTHREAD_MUTEX_ERRORCHECK);
    cond_init_pshared(&sh->c);

    /* a child waits (timed and plain), the parent signals */
    for (int timed = 0; timed < 2; timed++) {
        cond_reset();
        pid_t pid = spawn(c_cond_waiter, timed ? (void *)1 : NULL);
        WAIT_UNTIL(atomic_load(&sh->waiting) == 1, WAIT_MS);
        CHECK_OK(pthread_mutex_lock(&sh->m)); /* the child is waiting */
        atomic_store(&sh->flag, 1);
        CHECK_OK(pthread_cond_signal(&sh->c));
        CHECK_OK(pthread_mutex_unlock(&sh->m));
        wait_child(pid, "cond wait in a child woken by the parent's signal");
        CHECK_EQ(atomic_load(&sh->woken), 1);
    }

    /* the parent waits, a child signals / broadcasts */
    for (int bcast = 0; bcast < 2; bcast++) {
        cond_reset();
        pid_t pid = spawn(c_cond_signaller, bcast ? (void *)1 : NULL);
        cond_wait_flag(bcast, "parent waits for a child's signal");
        wait_child(pid, "cond wait in the parent woken by a child");
        CHECK_EQ(atomic_load(&sh->woken), 1);
    }

    /* waiters in two children, one broadcast from the parent */
    cond_reset();
    int per = round_no ? 2 : 1;
    pid_t p1 = spawn(c_cond_bcast_waiters, NULL);
    pid_t p2 = spawn(c_cond_bcast_waiters, NULL);
    WAIT_UNTIL(atomic_load(&sh->waiting) == 2 * per, WAIT_MS);
    CHECK_OK(pthread_mutex_lock(&sh->m));
    atomic_store(&sh->flag, 1);
    CHECK_OK(pthread_cond_broadcast(&sh->c));
    CHECK_OK(pthread_mutex_unlock(&sh->m));
    wait_child(p1, "broadcast to waiters in two children");
    wait_child(p2, "broadcast to waiters in two children");
    CHECK_EQ(atomic_load(&sh->woken), 2 * per);

    /* pthread_cond_timedwait timing out, in the parent and in a child */
    cond_timeout();
    pid_t pid = spawn(c_cond_timeout, NULL);
    wait_child(pid, "cond timedwait timing out in a child");

    CHECK_OK(pthread_cond_destroy(&sh->c));
    CHECK_OK(pthread_mutex_destroy(&sh->m));
    part_end("cond", "signal and broadcast across processes, timedwait "
             "ETIMEDOUT");
}

/* ============================================================ rwlocks */

static void c_writer(void *a)
{
    (void)a;
    CHECK_OK(pthread_rwlock_wrlock(&sh->rw));
    atomic_store(&sh->step, 1);
    sleep_ms(HOLD_MS);
    atomic_store(&sh->done, 1);
    CHECK_OK(pthread_rwlock_unlock(&sh->rw));
}

static void c_blocked_reader(void *a)
{
    (void)a;
    CHECK_RC(pthread_rwlock_tryrdlock(&sh->rw), EBUSY);
    atomic_store(&sh->step, 1);
    struct timespec dl = deadline_in(CLOCK_REALTIME, WAIT_MS);
    int rc = pthread_rwlock_timedrdlock(&sh->rw, &dl);
    if (rc == ETIMEDOUT)
        FAIL("child's timedrdlock (%s) timed out after %d ms: the parent's "
             "unlock did not wake it", round_name[round_no], WAIT_MS);
    CHECK_OK(rc);
    CHECK_EQ(atomic_load(&sh->done), 1);
    CHECK_OK(pthread_rwlock_unlock(&sh->rw));
}

static void c_second_reader(void *a)
{
    (void)a;
    CHECK_OK(pthread_rwlock_tryrdlock(&sh->rw));
    CHECK_OK(pthread_rwlock_unlock(&sh->rw));
    CHECK_RC(pthread_rwlock_trywrlock(&sh->rw), EBUSY);
}

static void part_rwlock(void)
{
    part_begin("rwlock");
    pthread_rwlockattr_t a;
    int ps = -1;
    CHECK_OK(pthread_rwlockattr_init(&a));
    CHECK_OK(pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED));
    CHECK_OK(pthread_rwlockattr_getpshared(&a, &ps));
    CHECK_EQ(ps, PTHREAD_PROCESS_SHARED);
    CHECK_OK(pthread_rwlock_init(&sh->rw, &a));
    CHECK_OK(pthread_rwlockattr_destroy(&a));

    /* a writer in a child blocks the parent's rdlock / timedrdlock */
    for (int timed = 0; timed < 2; timed++) {
        atomic_store(&sh->step, 0);
        atomic_store(&sh->done, 0);
        pid_t pid = spawn(c_writer, NULL);
        WAIT_UNTIL(atomic_load(&sh->step) == 1, WAIT_MS);
        CHECK_RC(pthread_rwlock_tryrdlock(&sh->rw), EBUSY);
        if (timed) {
            struct timespec dl = deadline_in(CLOCK_REALTIME, WAIT_MS);
            int rc = pthread_rwlock_timedrdlock(&sh->rw, &dl);
            if (rc == ETIMEDOUT)
                FAIL("parent's timedrdlock (%s) timed out after %d ms: the "
                     "child's unlock did not wake it", round_name[round_no],
                     WAIT_MS);
            CHECK_OK(rc);
        } else {
            CHECK_OK(pthread_rwlock_rdlock(&sh->rw));
        }
        CHECK_EQ(atomic_load(&sh->done), 1);
        CHECK_OK(pthread_rwlock_unlock(&sh->rw));
        wait_child(pid, "writer in a child blocking the parent's reader");
    }

    /* the parent's writer blocks a reader in a child */
    atomic_store(&sh->step, 0);
    atomic_store(&sh->done, 0);
    CHECK_OK(pthread_rwlock_wrlock(&sh->rw));
    pid_t pid = spawn(c_blocked_reader, NULL);
    WAIT_UNTIL(atomic_load(&sh->step) == 1, WAIT_MS);
    sleep_ms(HOLD_MS);
    atomic_store(&sh->done, 1);
    CHECK_OK(pthread_rwlock_unlock(&sh->rw));
    wait_child(pid, "writer in the parent blocking a child's reader");

    /* readers share across processes */
    CHECK_OK(pthread_rwlock_rdlock(&sh->rw));
    pid = spawn(c_second_reader, NULL);
    wait_child(pid, "readers in two processes");
    CHECK_OK(pthread_rwlock_unlock(&sh->rw));
    CHECK_OK(pthread_rwlock_trywrlock(&sh->rw));
    CHECK_OK(pthread_rwlock_unlock(&sh->rw));

    CHECK_OK(pthread_rwlock_destroy(&sh->rw));
    part_end("rwlock", "writer in one process blocks readers in another");
}

/* =========================================================== barriers */

static void bar_loop(void *a)
{
    (void)a;
    for (int r = 0; r < BAR_ROUNDS; r++) {
        atomic_fetch_add(&sh->arrived, 1);
        int rc = pthread_barrier_wait(&sh->bar);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&sh->serial[r], 1);
        else if (rc != 0)
            FAIL("pthread_barrier_wait returned %d", rc);
        int n = atomic_load(&sh->arrived);
        if (n < 3 * (r + 1) || n > 3 * (r + 2))
            FAIL("barrier round %d: %d arrivals after the barrier", r, n);
    }
}

static void part_barrier(void)
{
    part_begin("barrier");
    pthread_barrierattr_t a;
    int ps = -1;
    CHECK_OK(pthread_barrierattr_init(&a));
    CHECK_OK(pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED));
    CHECK_OK(pthread_barrierattr_getpshared(&a, &ps));
    CHECK_EQ(ps, PTHREAD_PROCESS_SHARED);
    CHECK_OK(pthread_barrier_init(&sh->bar, &a, 3));
    CHECK_OK(pthread_barrierattr_destroy(&a));

    pid_t p1 = spawn(bar_loop, NULL), p2 = spawn(bar_loop, NULL);
    bar_loop(NULL);
    wait_child(p1, "barrier across three processes");
    wait_child(p2, "barrier across three processes");
    for (int r = 0; r < BAR_ROUNDS; r++)
        if (atomic_load(&sh->serial[r]) != 1)
            FAIL("barrier round %d: %d serial threads", r,
                 atomic_load(&sh->serial[r]));
    CHECK_EQ(atomic_load(&sh->arrived), 3 * BAR_ROUNDS);
    CHECK_OK(pthread_barrier_destroy(&sh->bar));
    part_end("barrier", "3 processes x 300 rounds, one serial thread per "
             "round");
}

/* ===================================================== shm_open file */

#define SHM_INCS 10000

struct shmfile {
    pthread_mutex_t m;
    sem_t hello, go;
    atomic_int step, done, inside;
    long counter;
};

static void shm_inc(struct shmfile *f, int n)
{
    for (int i = 0; i < n; i++) {
        CHECK_OK(pthread_mutex_lock(&f->m));
        if (atomic_fetch_add(&f->inside, 1) != 0)
            FAIL("two processes inside the mutex in the shm_open file");
        f->counter++;
        atomic_fetch_sub(&f->inside, 1);
        CHECK_OK(pthread_mutex_unlock(&f->m));
    }
}

static struct shmfile *shm_map(const char *name, int oflag)
{
    int fd = shm_open(name, oflag, 0600);
    if (fd < 0)
        FAIL("shm_open(%s): %s", name, strerror(errno));
    if (oflag & O_CREAT)
        CHECK_SYS(ftruncate(fd, sizeof(struct shmfile)));
    void *p = mmap(NULL, sizeof(struct shmfile), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_SYS(close(fd));
    return p;
}

/* unrelated (re-executed) process */
static int x_shm(const char *name)
{
    struct shmfile *f = shm_map(name, O_RDWR);
    CHECK_SYS(sem_post(&f->hello));     /* the parent is waiting */
    shm_inc(f, SHM_INCS);
    CHECK_SYS(sem_post(&f->hello));
    sem_timedwait_ok(&f->go, "shm_open file: other process waits for the "
                             "parent");
    CHECK_RC(pthread_mutex_trylock(&f->m), EBUSY);  /* the parent holds it */
    atomic_store(&f->step, 1);
    timedlock_ok(&f->m, "shm_open file: other process's timedlock");
    CHECK_EQ(atomic_load(&f->done), 1);
    CHECK_OK(pthread_mutex_unlock(&f->m));
    CHECK_SYS(munmap(f, sizeof *f));
    return 0;
}

static void part_shm(void)
{
    part_begin("shm_open file");
    char name[64];
    obj_name(name, sizeof name, round_no, "shm");
    struct shmfile *f = shm_map(name, O_CREAT | O_EXCL | O_RDWR);
    mutex_init_pshared(&f->m, PTHREAD_MUTEX_DEFAULT);
    CHECK_SYS(sem_init(&f->hello, 1, 0));
    CHECK_SYS(sem_init(&f->go, 1, 0));

    pid_t pid = spawn_exec("shm", name, "-");
    sem_timedwait_ok(&f->hello, "shm_open file: parent waits for the "
                                "other process");
    shm_inc(f, SHM_INCS);
    sem_timedwait_ok(&f->hello, "shm_open file: parent waits for the "
                                "other process's increments");
    CHECK_EQ(f->counter, 2L * SHM_INCS);
    CHECK_OK(pthread_mutex_lock(&f->m));
    CHECK_SYS(sem_post(&f->go));
    WAIT_UNTIL(atomic_load(&f->step) == 1, WAIT_MS);
    sleep_ms(HOLD_MS);
    atomic_store(&f->done, 1);
    CHECK_OK(pthread_mutex_unlock(&f->m));
    wait_child(pid, "shm_open file with another process");
    check_sem_value(&f->hello, 0);
    check_sem_value(&f->go, 0);

    CHECK_SYS(sem_destroy(&f->hello));
    CHECK_SYS(sem_destroy(&f->go));
    CHECK_OK(pthread_mutex_destroy(&f->m));
    CHECK_SYS(munmap(f, sizeof *f));
    CHECK_SYS(shm_unlink(name));
    CHECK_ERRNO(shm_open(name, O_RDWR, 0600), ENOENT);
    part_end("shm_open file", "mutex and semaphores with another process");
}

/* ======================================================== main */

static int x_done;
static int x_rc;
static const char *x_mode, *x_n1, *x_n2;

static void x_body(void *a)
{
    (void)a;
    if (strcmp(x_mode, "named") == 0)
        x_rc = x_named(x_n1, x_n2);
    else if (strcmp(x_mode, "shm") == 0)
        x_rc = x_shm(x_n1);
    else
        FAIL("unknown mode %s", x_mode);
    x_done = 1;
}

/* the re-executed process: MODE NAME1 NAME2 ROUND */
static int exec_child(int argc, char **argv)
{
    alarm(CHILD_WATCHDOG_S);
    if (argc != 5)
        FAIL("usage: pshared MODE NAME1 NAME2 ROUND");
    x_mode = argv[1];
    x_n1 = argv[2];
    x_n2 = argv[3];
    round_no = atoi(argv[4]) ? 1 : 0;
    child_run(x_body, NULL);
    CHECK(x_done);
    return x_rc;
}

static const struct {
    const char *name;
    void (*fn)(void);
} parts[] = {
    {"sem_unnamed", part_sem_unnamed}, {"sem_named", part_sem_named},
    {"mutex", part_mutex},             {"cond", part_cond},
    {"rwlock", part_rwlock},           {"barrier", part_barrier},
    {"shm", part_shm},
};
#define NPARTS (int)(sizeof parts / sizeof parts[0])

/* $E2E_PSHARED_PARTS (for debugging): comma-separated names of the parts
 * to run; all when unset. */
static int part_selected(const char *name)
{
    const char *sel = getenv("E2E_PSHARED_PARTS");
    if (!sel || !*sel)
        return 1;
    size_t n = strlen(name);
    for (const char *p = sel; p; p = strchr(p, ',')) {
        if (*p == ',')
            p++;
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    E2E_INIT(argv[0]);
    if (argc > 1)
        return exec_child(argc, argv);

    main_pid = getpid();
    start_janitor();
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);

    for (round_no = 0; round_no < 2; round_no++) {
        if (round_no)
            bg_start();
        for (int i = 0; i < NPARTS; i++)
            if (part_selected(parts[i].name))
                parts[i].fn();
        if (round_no) {
            bg_finish();
            CHECK(bg_ops > 0);
        }
    }
    printf("pshared: done\n");
    return 0;
}
