/*
 * signals_routing: process-directed signals (kill(getpid(), ...), SIGCHLD)
 * reach the thread NPTL would pick when threads have different masks:
 * the sending main thread when it takes the signal (before kill returns);
 * the one thread that takes it while spinning without system calls; a
 * thread in sigsuspend (EINTR, its old mask back afterwards) or pause; held
 * pending while every thread blocks it, then delivered to the thread that
 * unblocks it before pthread_sigmask returns; a sigwaitinfo thread even
 * though a handler is installed (the handler never runs); SIGCHLD with
 * its siginfo in the only thread that takes it.  Also the bookkeeping of
 * sigaction/signal (old actions reported exactly) and SA_RESETHAND.
 */
#include "e2e.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define SIG_RT (SIGRTMIN + 5)

/* Thread identity: -1 in main, a distinct small number in each worker. */
static __thread int my_idx = -1;

/* What the SA_SIGINFO handler saw, per signal number. */
struct hrec {
    atomic_int count;
    atomic_int wrong;        /* runs in a thread other than expect_idx */
    atomic_int expect_idx;
    volatile pthread_t self; /* last run */
    volatile int idx, signo, code, status;
    volatile pid_t pid;
};
static struct hrec rec[NSIG];

/* case 2: set by the handler, the spinner leaves its loop */
static atomic_int spin_stop;

static void info_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    struct hrec *r = &rec[sig];
    r->self = pthread_self();
    r->idx = my_idx;
    r->signo = si->si_signo;
    r->code = si->si_code;
    r->pid = si->si_pid;
    r->status = (sig == SIGCHLD) ? si->si_status : 0;
    if (my_idx != atomic_load(&r->expect_idx))
        atomic_fetch_add(&r->wrong, 1);
    if (sig == SIGUSR2)
        atomic_store(&spin_stop, 1);
    atomic_fetch_add(&r->count, 1);
    errno = saved;
}

static void install_info(int sig, int extra_flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = info_handler;
    sa.sa_flags = SA_SIGINFO | extra_flags;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(sig, &sa, NULL));
}

static void reset_rec(int sig, int expect_idx)
{
    struct hrec *r = &rec[sig];
    atomic_store(&r->count, 0);
    atomic_store(&r->wrong, 0);
    atomic_store(&r->expect_idx, expect_idx);
    r->idx = -1000;
    r->signo = r->code = r->status = 0;
    r->pid = 0;
}

static sigset_t one_sig(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

/* Change the calling thread's mask for one signal; returns the old mask. */
static sigset_t mask_sig(int how, int sig)
{
    sigset_t s = one_sig(sig), old;
    CHECK_OK(pthread_sigmask(how, &s, &old));
    return old;
}

static int blocked_here(int sig)
{
    sigset_t cur;
    CHECK_OK(pthread_sigmask(SIG_BLOCK, NULL, &cur));
    return sigismember(&cur, sig);
}

static int pending_here(int sig)
{
    sigset_t p;
    CHECK_SYS(sigpending(&p));
    return sigismember(&p, sig);
}

/* sem_wait, bounded (`ms`), retrying after EINTR.  The checks in main
 * wait at most 10 s; threads that merely wait for main to let them go wait
 * longer, so that a failure is reported by the more specific check. */
#define semwait(s) semwait_at((s), 10000, __LINE__)
#define semwait_long(s) semwait_at((s), 30000, __LINE__)
static void semwait_at(sem_t *s, int ms, int line)
{
    struct timespec dl = deadline_in(CLOCK_REALTIME, ms);
    while (sem_timedwait(s, &dl) != 0) {
        if (errno == ETIMEDOUT)
            FAIL("sem_timedwait at line %d in thread %d: no post within "
                 "%d ms", line, my_idx, ms);
        CHECK_EQ(errno, EINTR);
    }
}

/* Take away any instance of sig still pending for the process (the caller
 * blocks sig), so that the next case starts clean. */
static void drain(int sig)
{
    sigset_t s = one_sig(sig);
    struct timespec zero = {0, 0};
    for (int i = 0; i < 100 && sigtimedwait(&s, NULL, &zero) == sig; i++)
        ;
    CHECK(!pending_here(sig));
}

/* ------------------------------------------------ decoy threads */

/* A thread that keeps the mask it inherited (or blocks `block_sig`) and
 * waits on `quit`. */
struct decoy {
    pthread_t t;
    int idx;
    int block_sig;           /* 0: none */
    sem_t quit;
};
static atomic_int decoys_ready;

static void *decoy_fn(void *arg)
{
    struct decoy *d = arg;
    my_idx = d->idx;
    if (d->block_sig)
        mask_sig(SIG_BLOCK, d->block_sig);
    atomic_fetch_add(&decoys_ready, 1);
    semwait_long(&d->quit);
    return NULL;
}

static void start_decoys(struct decoy *d, int n, int first_idx,
                         int block_sig)
{
    atomic_store(&decoys_ready, 0);
    for (int i = 0; i < n; i++) {
        d[i].idx = first_idx + i;
        d[i].block_sig = block_sig;
        CHECK_SYS(sem_init(&d[i].quit, 0, 0));
        CHECK_OK(pthread_create(&d[i].t, NULL, decoy_fn, &d[i]));
    }
    WAIT_UNTIL(atomic_load(&decoys_ready) == n, 10000);
}

static void stop_decoys(struct decoy *d, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_SYS(sem_post(&d[i].quit));
    for (int i = 0; i < n; i++) {
        CHECK_OK(pthread_join(d[i].t, NULL));
        CHECK_SYS(sem_destroy(&d[i].quit));
    }
}

/* ------------------------------------ 1. the sending main accepts */

static void test_main_accepts(void)
{
    install_info(SIGUSR1, 0);
    reset_rec(SIGUSR1, -1);
    sigset_t old = mask_sig(SIG_UNBLOCK, SIGUSR1);
    struct decoy d[4];
    start_decoys(d, 4, 10, SIGUSR1);

    for (int k = 0; k < 10; k++) {
        int before = atomic_load(&rec[SIGUSR1].count);
        CHECK_SYS(kill(getpid(), SIGUSR1));
        int at_return = atomic_load(&rec[SIGUSR1].count);
        WAIT_UNTIL(atomic_load(&rec[SIGUSR1].count) > before, 5000);
        if (!pthread_equal(rec[SIGUSR1].self, pthread_self()))
            FAIL("kill %d: SIGUSR1 handled in thread %d, not in main (the "
                 "only thread that takes it)", k, rec[SIGUSR1].idx);
        CHECK_EQ(rec[SIGUSR1].idx, -1);
        CHECK_EQ(rec[SIGUSR1].signo, SIGUSR1);
        CHECK_EQ(rec[SIGUSR1].code, SI_USER);
        CHECK_EQ(rec[SIGUSR1].pid, getpid());
        /* POSIX: sig generated for the caller's own process, unblocked in
         * the caller and in no other thread: delivered before kill
         * returns */
        if (at_return != before + 1)
            FAIL("kill %d: handler had not run in main when kill "
                 "returned", k);
    }
    sleep_ms(20);
    CHECK_EQ(atomic_load(&rec[SIGUSR1].count), 10);
    CHECK_EQ(atomic_load(&rec[SIGUSR1].wrong), 0);
    stop_decoys(d, 4);
    CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    printf("main accepts: 10 kill(getpid(), SIGUSR1) handled in main before "
           "kill returned, 4 blocking threads untouched, SI_USER from our "
           "pid\n");
}

/* ---------------------- 2. only a thread that never waits accepts */

static atomic_int spinning, spin_timed_out;
static pthread_t spinner_t;

static void *spinner(void *arg)
{
    (void)arg;
    my_idx = 29;
    mask_sig(SIG_UNBLOCK, SIGUSR2);
    int64_t deadline = now_ns() + 10 * NS_PER_S;
    atomic_store(&spinning, 1);
    unsigned long n = 0;
    /* no system calls in the loop (clock_gettime is in the vDSO) */
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed)) {
        if ((++n & 0xffff) == 0 && now_ns() > deadline) {
            atomic_store(&spin_timed_out, 1);
            break;
        }
    }
    return NULL;
}

static void test_busy_accepts(void)
{
    install_info(SIGUSR2, 0);
    reset_rec(SIGUSR2, 29);
    atomic_store(&spin_stop, 0);
    atomic_store(&spinning, 0);
    atomic_store(&spin_timed_out, 0);
    sigset_t old = mask_sig(SIG_BLOCK, SIGUSR2);
    struct decoy d[3];
    start_decoys(d, 3, 20, 0);               /* inherit: SIGUSR2 blocked */
    CHECK_OK(pthread_create(&spinner_t, NULL, spinner, NULL));
    WAIT_UNTIL(atomic_load(&spinning), 10000);
    sleep_ms(10);
    CHECK_SYS(kill(getpid(), SIGUSR2));
    CHECK_OK(pthread_join(spinner_t, NULL));  /* bounded by its deadline */
    if (atomic_load(&spin_timed_out))
        FAIL("SIGUSR2 not handled in the spinning thread within 10 s "
             "(handler ran %d times)", atomic_load(&rec[SIGUSR2].count));
    CHECK_EQ(atomic_load(&rec[SIGUSR2].count), 1);
    if (!pthread_equal(rec[SIGUSR2].self, spinner_t))
        FAIL("SIGUSR2 handled in thread %d, not in the spinner (the only "
             "thread that takes it)", rec[SIGUSR2].idx);
    CHECK_EQ(rec[SIGUSR2].idx, 29);
    CHECK_EQ(rec[SIGUSR2].code, SI_USER);
    CHECK_EQ(rec[SIGUSR2].pid, getpid());
    CHECK(!pending_here(SIGUSR2));
    stop_decoys(d, 3);
    CHECK_EQ(atomic_load(&rec[SIGUSR2].count), 1);
    CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    printf("busy accepts: kill(getpid(), SIGUSR2) handled in the only "
           "thread taking it while it spun without system calls\n");
}

/* ------------------------------------------- 3. sigsuspend, pause */

static atomic_int about_to_wait, wait_done, wait_errno, wait_ret;
static sem_t pause_exit;

static void *suspender(void *arg)
{
    (void)arg;
    my_idx = 39;
    mask_sig(SIG_BLOCK, SIGUSR1);            /* already inherited */
    sigset_t before, m;
    CHECK_OK(pthread_sigmask(SIG_BLOCK, NULL, &before));
    m = before;
    sigdelset(&m, SIGUSR1);
    atomic_store(&about_to_wait, 1);
    errno = 0;
    int r = sigsuspend(&m);
    int e = errno;
    CHECK_EQ(r, -1);
    CHECK_EQ(e, EINTR);
    CHECK_EQ(atomic_load(&rec[SIGUSR1].count), 1);
    CHECK(pthread_equal(rec[SIGUSR1].self, pthread_self()));
    CHECK_EQ(rec[SIGUSR1].idx, 39);
    CHECK_EQ(rec[SIGUSR1].code, SI_USER);
    CHECK_EQ(rec[SIGUSR1].pid, getpid());
    /* the mask from before sigsuspend is back */
    sigset_t cur;
    CHECK_OK(pthread_sigmask(SIG_BLOCK, NULL, &cur));
    CHECK(sigismember(&cur, SIGUSR1) == 1);
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&before, s) >= 0 &&
            sigismember(&before, s) != sigismember(&cur, s))
            FAIL("signal %d: blocked %d before sigsuspend, %d after", s,
                 sigismember(&before, s), sigismember(&cur, s));
    atomic_store(&wait_done, 1);
    return NULL;
}

static void *pauser(void *arg)
{
    (void)arg;
    my_idx = 38;
    mask_sig(SIG_UNBLOCK, SIGUSR1);
    atomic_store(&about_to_wait, 1);
    errno = 0;
    int r = pause();
    atomic_store(&wait_errno, errno);
    atomic_store(&wait_ret, r);
    atomic_store(&wait_done, 1);
    /* stay, still taking SIGUSR1, until main has stopped sending it */
    semwait_long(&pause_exit);
    return NULL;
}

static void test_suspend_pause(void)
{
    /* SIGUSR1 keeps case 1's handler */
    sigset_t old = mask_sig(SIG_BLOCK, SIGUSR1);
    struct decoy d[3];
    pthread_t t;

    /* sigsuspend: once with the thread surely inside it; then 10 times with
     * the signal sent as soon as the thread is about to call it (pending
     * before, or arriving while it starts: either way it must end it) */
    for (int round = 0; round < 11; round++) {
        reset_rec(SIGUSR1, 39);
        atomic_store(&about_to_wait, 0);
        atomic_store(&wait_done, 0);
        start_decoys(d, 3, 30, 0);               /* inherit: SIGUSR1 blocked */
        CHECK_OK(pthread_create(&t, NULL, suspender, NULL));
        WAIT_UNTIL(atomic_load(&about_to_wait), 10000);
        if (round == 0)
            sleep_ms(50);
        CHECK_SYS(kill(getpid(), SIGUSR1));
        int64_t end = now_ns() + 10 * NS_PER_S;
        while (!atomic_load(&wait_done)) {
            if (now_ns() > end)
                FAIL("sigsuspend did not return within 10 s (handler ran %d "
                     "times, last in thread %d; SIGUSR1 pending in main: %d)",
                     atomic_load(&rec[SIGUSR1].count), rec[SIGUSR1].idx,
                     pending_here(SIGUSR1));
            sleep_ms(1);
        }
        CHECK_OK(pthread_join(t, NULL));
        CHECK_EQ(atomic_load(&rec[SIGUSR1].count), 1);
        CHECK_EQ(atomic_load(&rec[SIGUSR1].wrong), 0);
        CHECK(!pending_here(SIGUSR1));
        stop_decoys(d, 3);
    }
    printf("sigsuspend: kill(getpid(), SIGUSR1) ended the sigsuspend of the "
           "only thread taking it, EINTR, its mask restored (11 times, 10 "
           "sent as it began)\n");

    /* pause */
    reset_rec(SIGUSR1, 38);
    atomic_store(&about_to_wait, 0);
    atomic_store(&wait_done, 0);
    atomic_store(&wait_ret, 0);
    atomic_store(&wait_errno, 0);
    CHECK_SYS(sem_init(&pause_exit, 0, 0));
    start_decoys(d, 3, 30, 0);
    CHECK_OK(pthread_create(&t, NULL, pauser, NULL));
    WAIT_UNTIL(atomic_load(&about_to_wait), 10000);
    sleep_ms(50);
    /* a signal that came before the thread was inside pause() would only
     * run the handler: send again until pause returns */
    int64_t end = now_ns() + 10 * NS_PER_S;
    while (!atomic_load(&wait_done)) {
        CHECK_SYS(kill(getpid(), SIGUSR1));
        int64_t next = now_ns() + 1000 * NS_PER_MS;
        while (!atomic_load(&wait_done) && now_ns() < next)
            sleep_ms(1);
        if (!atomic_load(&wait_done) && now_ns() > end)
            FAIL("pause() did not return within 10 s (handler ran %d "
                 "times)", atomic_load(&rec[SIGUSR1].count));
    }
    CHECK_EQ(atomic_load(&wait_ret), -1);
    CHECK_EQ(atomic_load(&wait_errno), EINTR);
    CHECK_SYS(sem_post(&pause_exit));
    CHECK_OK(pthread_join(t, NULL));
    CHECK(atomic_load(&rec[SIGUSR1].count) >= 1);
    if (atomic_load(&rec[SIGUSR1].wrong) != 0)
        FAIL("SIGUSR1 handled %d times outside the pausing thread (last in "
             "thread %d)", atomic_load(&rec[SIGUSR1].wrong),
             rec[SIGUSR1].idx);
    CHECK_EQ(rec[SIGUSR1].code, SI_USER);
    CHECK_EQ(rec[SIGUSR1].pid, getpid());
    stop_decoys(d, 3);
    drain(SIGUSR1);
    CHECK_SYS(sem_destroy(&pause_exit));
    CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    printf("pause: kill(getpid(), SIGUSR1) ended the pause of the only "
           "thread taking it, EINTR\n");
}

/* ------------------------------- 4. held while every thread blocks */

static sem_t held_go;
static atomic_int held_done;
static pthread_t held_t;

static void *unblocker(void *arg)
{
    (void)arg;
    my_idx = 49;
    semwait(&held_go);
    CHECK(blocked_here(SIG_RT) == 1);
    CHECK_EQ(atomic_load(&rec[SIG_RT].count), 0);
    if (pending_here(SIG_RT) != 1)
        FAIL("sigpending in a worker does not report the process-pending "
             "SIGRTMIN+5");
    mask_sig(SIG_UNBLOCK, SIG_RT);
    /* delivered here before pthread_sigmask returned */
    if (atomic_load(&rec[SIG_RT].count) != 1)
        FAIL("SIGRTMIN+5 handler ran %d times by the time the unblocking "
             "pthread_sigmask returned, expected 1",
             atomic_load(&rec[SIG_RT].count));
    CHECK(pthread_equal(rec[SIG_RT].self, pthread_self()));
    CHECK_EQ(rec[SIG_RT].idx, 49);
    CHECK_EQ(rec[SIG_RT].signo, SIG_RT);
    CHECK_EQ(rec[SIG_RT].code, SI_USER);
    CHECK_EQ(rec[SIG_RT].pid, getpid());
    CHECK(!pending_here(SIG_RT));
    atomic_store(&held_done, 1);
    return NULL;
}

static void test_held(void)
{
    install_info(SIG_RT, 0);
    reset_rec(SIG_RT, 49);
    atomic_store(&held_done, 0);
    CHECK_SYS(sem_init(&held_go, 0, 0));
    sigset_t old = mask_sig(SIG_BLOCK, SIG_RT);
    struct decoy d[3];
    start_decoys(d, 3, 40, 0);               /* inherit: SIG_RT blocked */
    CHECK_OK(pthread_create(&held_t, NULL, unblocker, NULL));
    CHECK_SYS(kill(getpid(), SIG_RT));
    sleep_ms(50);
    if (atomic_load(&rec[SIG_RT].count) != 0)
        FAIL("SIGRTMIN+5 handled (in thread %d) although every thread "
             "blocks it", rec[SIG_RT].idx);
    if (pending_here(SIG_RT) != 1)
        FAIL("sigpending in main does not report SIGRTMIN+5");
    CHECK_SYS(sem_post(&held_go));
    WAIT_UNTIL(atomic_load(&held_done), 10000);
    CHECK_OK(pthread_join(held_t, NULL));
    CHECK(!pending_here(SIG_RT));
    stop_decoys(d, 3);
    CHECK_EQ(atomic_load(&rec[SIG_RT].count), 1);
    CHECK_EQ(atomic_load(&rec[SIG_RT].wrong), 0);
    CHECK_SYS(sem_destroy(&held_go));
    CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    printf("held: SIGRTMIN+5 blocked everywhere stayed pending (seen by "
           "sigpending), ran in the thread that unblocked it before "
           "pthread_sigmask returned\n");
}

/* ------------------------- 5. sigwaitinfo although a handler exists */

#define NSW 20
static sem_t sw_ack;

static void *sigwaiter(void *arg)
{
    (void)arg;
    my_idx = 59;
    sigset_t s = one_sig(SIGUSR2);
    CHECK(blocked_here(SIGUSR2) == 1);
    for (int i = 0; i < NSW; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int sig;
        do
            sig = sigwaitinfo(&s, &si);
        while (sig == -1 && errno == EINTR);
        CHECK_EQ(sig, SIGUSR2);
        CHECK_EQ(si.si_signo, SIGUSR2);
        CHECK_EQ(si.si_code, SI_USER);
        CHECK_EQ(si.si_pid, getpid());
        CHECK_SYS(sem_post(&sw_ack));
    }
    return NULL;
}

static void test_sigwait_with_handler(void)
{
    /* SIGUSR2 keeps case 2's handler, which must not run */
    reset_rec(SIGUSR2, -2);
    CHECK_SYS(sem_init(&sw_ack, 0, 0));
    sigset_t old = mask_sig(SIG_BLOCK, SIGUSR2);
    struct decoy d[3];
    start_decoys(d, 3, 50, 0);               /* inherit: SIGUSR2 blocked */
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, sigwaiter, NULL));
    for (int i = 0; i < NSW; i++) {
        CHECK_SYS(kill(getpid(), SIGUSR2));
        struct timespec dl = deadline_in(CLOCK_REALTIME, 10000);
        while (sem_timedwait(&sw_ack, &dl) != 0) {
            if (errno == ETIMEDOUT)
                FAIL("kill %d: SIGUSR2 not taken by sigwaitinfo within 10 s "
                     "(handler ran %d times, last in thread %d; SIGUSR2 "
                     "pending in main: %d)", i,
                     atomic_load(&rec[SIGUSR2].count), rec[SIGUSR2].idx,
                     pending_here(SIGUSR2));
            CHECK_EQ(errno, EINTR);
        }
    }
    CHECK_OK(pthread_join(t, NULL));
    sleep_ms(20);
    if (atomic_load(&rec[SIGUSR2].count) != 0)
        FAIL("SIGUSR2 handler ran %d times (last in thread %d) although "
             "every thread blocks it", atomic_load(&rec[SIGUSR2].count),
             rec[SIGUSR2].idx);
    CHECK(!pending_here(SIGUSR2));
    stop_decoys(d, 3);
    CHECK_SYS(sem_destroy(&sw_ack));
    CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    CHECK_EQ(atomic_load(&rec[SIGUSR2].count), 0);
    printf("sigwaitinfo: %d kill(getpid(), SIGUSR2) taken by the waiting "
           "thread with SI_USER and our pid; the installed handler never "
           "ran\n", NSW);
}

/* ------------------------------------------------------ 6. SIGCHLD */

static atomic_int chld_ready;
static sem_t chld_quit;

static void *chld_catcher(void *arg)
{
    (void)arg;
    my_idx = 69;
    mask_sig(SIG_UNBLOCK, SIGCHLD);
    atomic_store(&chld_ready, 1);
    semwait_long(&chld_quit);
    return NULL;
}

static void test_sigchld(void)
{
    install_info(SIGCHLD, 0);
    reset_rec(SIGCHLD, 69);
    atomic_store(&chld_ready, 0);
    CHECK_SYS(sem_init(&chld_quit, 0, 0));
    sigset_t old = mask_sig(SIG_BLOCK, SIGCHLD);
    struct decoy d[3];
    start_decoys(d, 3, 60, 0);               /* inherit: SIGCHLD blocked */
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, chld_catcher, NULL));
    WAIT_UNTIL(atomic_load(&chld_ready), 10000);

    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0)
        _exit(7);
    WAIT_UNTIL(atomic_load(&rec[SIGCHLD].count) > 0, 10000);
    if (!pthread_equal(rec[SIGCHLD].self, t))
        FAIL("SIGCHLD handled in thread %d, not in the only thread that "
             "takes it", rec[SIGCHLD].idx);
    CHECK_EQ(rec[SIGCHLD].idx, 69);
    CHECK_EQ(rec[SIGCHLD].signo, SIGCHLD);
    CHECK_EQ(rec[SIGCHLD].code, CLD_EXITED);
    CHECK_EQ(rec[SIGCHLD].pid, pid);
    CHECK_EQ(rec[SIGCHLD].status, 7);

    int st = 0;
    pid_t w;
    do
        w = waitpid(pid, &st, 0);
    while (w == -1 && errno == EINTR);
    CHECK_EQ(w, pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 7);
    CHECK_ERRNO(waitpid(-1, NULL, WNOHANG), ECHILD);

    CHECK_SYS(sem_post(&chld_quit));
    CHECK_OK(pthread_join(t, NULL));
    stop_decoys(d, 3);
    CHECK_EQ(atomic_load(&rec[SIGCHLD].count), 1);
    CHECK_EQ(atomic_load(&rec[SIGCHLD].wrong), 0);
    CHECK_SYS(sem_destroy(&chld_quit));
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    CHECK_SYS(sigaction(SIGCHLD, &dfl, NULL));
    drain(SIGCHLD);
    CHECK_OK(pthread_sigmask(SIG_SETMASK, &old, NULL));
    printf("SIGCHLD: child's _exit(7) handled in the only thread taking "
           "SIGCHLD, CLD_EXITED with its pid and status; waitpid reaped "
           "it\n");
}

/* ------------------------------------- 7. sigaction bookkeeping */

#define POSIX_SA_FLAGS                                                     \
    (SA_NOCLDSTOP | SA_NOCLDWAIT | SA_SIGINFO | SA_ONSTACK | SA_RESTART |  \
     SA_NODEFER | SA_RESETHAND)

static void h7_info(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
}

static atomic_int plain_count;
static void plain_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&plain_count, 1);
}

static atomic_int reset_count;
static volatile sighandler_t reset_seen_inside;
static void reset_handler(int sig)
{
    struct sigaction in;
    atomic_fetch_add(&reset_count, 1);
    if (sigaction(sig, NULL, &in) == 0)
        reset_seen_inside = in.sa_handler;
}

#define SAME_FN(a, b) ((uintptr_t)(a) == (uintptr_t)(b))

static void test_bookkeeping(void)
{
    struct sigaction sa, prev, old;
    CHECK(!blocked_here(SIGUSR1));
    CHECK(!blocked_here(SIGUSR2));

    /* exactly what was installed comes back */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h7_info;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaddset(&sa.sa_mask, SIG_RT);
    memset(&prev, 0, sizeof prev);
    CHECK_SYS(sigaction(SIGUSR1, &sa, &prev));
    CHECK(SAME_FN(prev.sa_sigaction, info_handler));
    CHECK_EQ(prev.sa_flags & POSIX_SA_FLAGS, SA_SIGINFO);
    memset(&old, 0, sizeof old);
    CHECK_SYS(sigaction(SIGUSR1, NULL, &old));
    CHECK(SAME_FN(old.sa_sigaction, h7_info));
    CHECK_EQ(old.sa_flags & POSIX_SA_FLAGS, SA_SIGINFO | SA_RESTART);
    CHECK(sigismember(&old.sa_mask, SIGUSR2) == 1);
    CHECK(sigismember(&old.sa_mask, SIG_RT) == 1);
    CHECK(sigismember(&old.sa_mask, SIGUSR1) == 0);
    CHECK(sigismember(&old.sa_mask, SIGINT) == 0);
    CHECK(sigismember(&old.sa_mask, SIGURG) == 0);

    /* signal() returns the previous handler, installs BSD semantics */
    sighandler_t ph = signal(SIGUSR1, plain_handler);
    CHECK(ph != SIG_ERR);
    CHECK(SAME_FN(ph, h7_info));
    memset(&old, 0, sizeof old);
    CHECK_SYS(sigaction(SIGUSR1, NULL, &old));
    CHECK(SAME_FN(old.sa_handler, plain_handler));
    CHECK_EQ(old.sa_flags & POSIX_SA_FLAGS, SA_RESTART);
    atomic_store(&plain_count, 0);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(atomic_load(&plain_count), 1);
    ph = signal(SIGUSR1, SIG_IGN);
    CHECK(SAME_FN(ph, plain_handler));
    CHECK_EQ(raise(SIGUSR1), 0);             /* ignored */
    ph = signal(SIGUSR1, SIG_DFL);
    CHECK(ph == SIG_IGN);
    memset(&old, 0, sizeof old);
    CHECK_SYS(sigaction(SIGUSR1, NULL, &old));
    CHECK(old.sa_handler == SIG_DFL);
    CHECK_EQ(atomic_load(&plain_count), 1);
    CHECK(signal(SIGKILL, plain_handler) == SIG_ERR);
    CHECK_ERRNO(sigaction(SIGSTOP, &sa, NULL), EINVAL);

    /* SA_RESETHAND: runs once, SIG_DFL from the handler's entry on */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reset_handler;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(SIGUSR2, &sa, NULL));
    memset(&old, 0, sizeof old);
    CHECK_SYS(sigaction(SIGUSR2, NULL, &old));
    CHECK(SAME_FN(old.sa_handler, reset_handler));
    CHECK((old.sa_flags & SA_RESETHAND) != 0);
    atomic_store(&reset_count, 0);
    reset_seen_inside = plain_handler;
    CHECK_EQ(raise(SIGUSR2), 0);
    CHECK_EQ(atomic_load(&reset_count), 1);
    memset(&old, 0, sizeof old);
    CHECK_SYS(sigaction(SIGUSR2, NULL, &old));
    sighandler_t after = old.sa_handler;
    install_info(SIGUSR2, 0);                /* before anything sends it */
    if (after != SIG_DFL)
        FAIL("SA_RESETHAND: sigaction reports %s after the handler ran, "
             "expected SIG_DFL",
             SAME_FN(after, reset_handler) ? "the handler" : "another "
             "action");
    if (reset_seen_inside != SIG_DFL)
        FAIL("SA_RESETHAND: inside the handler sigaction reports %s, "
             "expected SIG_DFL",
             SAME_FN(reset_seen_inside, reset_handler) ? "the handler"
                                                        : "another action");
    memset(&old, 0, sizeof old);
    CHECK_SYS(sigaction(SIGUSR2, NULL, &old));
    CHECK(SAME_FN(old.sa_sigaction, info_handler));
    CHECK_EQ(old.sa_flags & POSIX_SA_FLAGS, SA_SIGINFO);
    printf("sigaction: old actions reported exactly (handler, flags, mask); "
           "signal returns the previous handler; SA_RESETHAND ran once and "
           "left SIG_DFL\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    sigset_t none;
    sigemptyset(&none);
    CHECK_OK(pthread_sigmask(SIG_SETMASK, &none, NULL));

    test_main_accepts();
    test_busy_accepts();
    test_suspend_pause();
    test_held();
    test_sigwait_with_handler();
    test_sigchld();
    test_bookkeeping();

    CHECK_OK(pthread_sigmask(SIG_BLOCK, NULL, &none));
    CHECK(sigisemptyset(&none));
    printf("done\n");
    return 0;
}
