/*
 * test_signal.c — signals directed at Gs: pthread_kill of a parked G runs
 * the handler in that G (its pthread_self, its TLS) and its wait resumes
 * (sem_wait: EINTR; condvar: resumes), sleeps return EINTR with the time
 * left, pthread_sigqueue's value arrives, pthread_kill(t, 0) of a live or
 * finished-but-unjoined G is 0, a signal pending while the G blocks it is
 * reported by sigpending and delivered on unblock, sigtimedwait times out.
 * The program's actions: sigaction reports what was installed, glibc's
 * errors for bad signals, signal/sysv_signal/sigset/sighold/sigrelse/
 * sigignore/siginterrupt.  Process-directed signals reach the one G that
 * takes them (parked, or busy computing).  sigsuspend/pause park with the
 * given mask and return EINTR after the handler, mask restored; sigwait
 * takes a signal sent with pthread_kill while the G blocked it.
 */
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>

#include "pl_test.h"

static __thread int my_idx = -1;
static volatile pthread_t h_self;
static volatile int h_idx, h_val;
static atomic_int h_count;

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    h_self = pthread_self();
    h_idx = my_idx;
    if (si->si_code == SI_QUEUE)
        h_val = si->si_value.sival_int;
    atomic_fetch_add(&h_count, 1);
}

static void install(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
}

static sem_t sem;
static atomic_int ready, sem_eintr;

static void *sem_waiter(void *a)
{
    my_idx = (int)(intptr_t)a;
    atomic_store(&ready, 1);
    while (sem_wait(&sem) != 0) {
        ck_assert_int_eq(errno, EINTR);
        atomic_fetch_add(&sem_eintr, 1);
    }
    return NULL;
}

START_TEST(kill_parked_g)
{
    /* without SA_RESTART: an untimed sem_wait is restarted under it, as
     * glibc's futex wait is by the kernel (e2e signals_waits) */
    install(SIGUSR1, 0);
    ck_assert_int_eq(sem_init(&sem, 0, 0), 0);
    pthread_t t = pt_start(sem_waiter, (void *)7);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(10);
    for (int i = 0; i < 3; i++) {
        int before = atomic_load(&h_count);
        ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
        for (int k = 0; k < 2000 && atomic_load(&h_count) == before; k++)
            pt_sleep_ms(1);
        ck_assert_int_eq(atomic_load(&h_count), before + 1);
        ck_assert(pthread_equal(h_self, t));
        ck_assert_int_eq(h_idx, 7);
    }
    ck_assert_int_eq(pthread_kill(t, 0), 0);
    ck_assert_int_eq(pthread_kill(t, 12345), EINVAL);
    ck_assert_int_eq(sem_post(&sem), 0);
    pt_join(t);
    ck_assert_int_ge(atomic_load(&sem_eintr), 1);
}
END_TEST

static void *quick(void *a) { return a; }

START_TEST(kill_finished_unjoined)
{
    pthread_t t = pt_start(quick, NULL);
    pt_sleep_ms(20);
    ck_assert_int_eq(pthread_kill(t, 0), 0);
    pt_join(t);
}
END_TEST

static atomic_int sleep_rc = -2, sleep_left;
static void *sleeper(void *a)
{
    (void)a;
    atomic_store(&ready, 1);
    struct timespec ts = {100, 0}, rem = {0, 0};
    int r = nanosleep(&ts, &rem);
    atomic_store(&sleep_left, (int)rem.tv_sec);
    atomic_store(&sleep_rc, r == 0 ? 0 : errno);
    return NULL;
}

START_TEST(sleep_eintr)
{
    install(SIGUSR2, SA_RESTART);
    atomic_store(&ready, 0);
    pthread_t t = pt_start(sleeper, NULL);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(20);
    ck_assert_int_eq(pthread_kill(t, SIGUSR2), 0);
    pt_join(t);
    ck_assert_int_eq(atomic_load(&sleep_rc), EINTR);
    ck_assert_int_ge(atomic_load(&sleep_left), 90);
}
END_TEST

START_TEST(sigqueue_value)
{
    int sig = SIGRTMIN + 2;
    install(sig, 0);
    ck_assert_int_eq(sem_init(&sem, 0, 0), 0);
    atomic_store(&ready, 0);
    pthread_t t = pt_start(sem_waiter, (void *)3);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(10);
    int before = atomic_load(&h_count);
    union sigval v = {.sival_int = 4242};
    ck_assert_int_eq(pthread_sigqueue(t, sig, v), 0);
    for (int k = 0; k < 2000 && atomic_load(&h_count) == before; k++)
        pt_sleep_ms(1);
    ck_assert_int_eq(h_val, 4242);
    ck_assert_int_eq(h_idx, 3);
    sem_post(&sem);
    pt_join(t);
}
END_TEST

static sem_t go;
static void *masked(void *a)
{
    (void)a;
    my_idx = 9;
    sigset_t s, p;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
    atomic_store(&ready, 1);
    while (sem_wait(&go) != 0)
        ;
    int before = atomic_load(&h_count);
    ck_assert_int_eq(sigpending(&p), 0);
    ck_assert_int_eq(sigismember(&p, SIGUSR1), 1);
    ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);
    ck_assert_int_eq(atomic_load(&h_count), before + 1);
    ck_assert_int_eq(h_idx, 9);
    return NULL;
}

START_TEST(pending_while_blocked)
{
    install(SIGUSR1, SA_RESTART);
    ck_assert_int_eq(sem_init(&go, 0, 0), 0);
    atomic_store(&ready, 0);
    pthread_t t = pt_start(masked, NULL);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(10);
    ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
    pt_sleep_ms(10);
    sem_post(&go);
    pt_join(t);
}
END_TEST

static void *timed_waiter(void *a)
{
    (void)a;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 5);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
    struct timespec to = {0, 50000000};
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    errno = 0;
    ck_assert_int_eq(sigtimedwait(&s, NULL, &to), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_ge(pt_ms_since(t0), 49);
    return NULL;
}

static atomic_int other_ran;
static void *other(void *a)
{
    (void)a;
    atomic_store(&other_ran, 1);
    return NULL;
}

START_TEST(sigtimedwait_times_out)
{
    pthread_t t = pt_start(timed_waiter, NULL);
    pthread_t u = pt_start(other, NULL);
    pt_join(u);
    pt_join(t);
    ck_assert_int_eq(atomic_load(&other_ran), 1);
}
END_TEST

/* ------------------------------------------------ the program's actions */

/* the old System V / BSD calls are what is being tested */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static void plain_handler(int sig) { (void)sig; atomic_fetch_add(&h_count, 1); }

START_TEST(sigaction_reports_program_action)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &old), 0);
    ck_assert_ptr_eq((void *)old.sa_sigaction, (void *)handler);
    ck_assert(old.sa_flags & SA_SIGINFO);
    ck_assert(old.sa_flags & SA_RESTART);
    ck_assert_int_eq(sigismember(&old.sa_mask, SIGUSR2), 1);
    /* the preemption signal too: the program sees its own (none yet) */
    ck_assert_int_eq(sigaction(SIGURG, NULL, &old), 0);
    ck_assert_ptr_eq((void *)old.sa_handler, (void *)SIG_DFL);
    /* glibc's errors */
    errno = 0;
    ck_assert_int_eq(sigaction(0, &sa, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_int_eq(sigaction(SIGKILL, &sa, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_int_eq(sigaction(65, NULL, &old), -1);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_eq((void *)signal(SIGSTOP, plain_handler), (void *)SIG_ERR);
    ck_assert_int_eq(errno, EINVAL);
    /* signal() returns the previous handler; SA_RESTART unless
     * siginterrupt(sig, 1) */
    ck_assert_ptr_eq((void *)signal(SIGUSR2, plain_handler), (void *)SIG_DFL);
    ck_assert_ptr_eq((void *)signal(SIGUSR2, SIG_IGN), (void *)plain_handler);
    ck_assert_ptr_eq((void *)signal(SIGUSR2, plain_handler), (void *)SIG_IGN);
    ck_assert_int_eq(sigaction(SIGUSR2, NULL, &old), 0);
    ck_assert(old.sa_flags & SA_RESTART);
    ck_assert_int_eq(siginterrupt(SIGUSR2, 1), 0);
    ck_assert_int_eq(sigaction(SIGUSR2, NULL, &old), 0);
    ck_assert(!(old.sa_flags & SA_RESTART));
    /* the handler runs, raise() in a thread */
    int before = atomic_load(&h_count);
    ck_assert_int_eq(raise(SIGUSR2), 0);
    ck_assert_int_eq(atomic_load(&h_count), before + 1);
    /* sysv_signal: one shot */
    ck_assert_ptr_ne((void *)sysv_signal(SIGUSR2, plain_handler),
                     (void *)SIG_ERR);
    ck_assert_int_eq(raise(SIGUSR2), 0);
    ck_assert_int_eq(sigaction(SIGUSR2, NULL, &old), 0);
    ck_assert_ptr_eq((void *)old.sa_handler, (void *)SIG_DFL);
    /* sigignore, sigset, sighold, sigrelse */
    ck_assert_int_eq(sigignore(SIGUSR2), 0);
    ck_assert_ptr_eq((void *)sigset(SIGUSR2, plain_handler), (void *)SIG_IGN);
    ck_assert_ptr_eq((void *)sigset(SIGUSR2, SIG_HOLD), (void *)plain_handler);
    sigset_t cur;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    ck_assert_int_eq(sigismember(&cur, SIGUSR2), 1);
    ck_assert_int_eq(sigrelse(SIGUSR2), 0);
    ck_assert_int_eq(sighold(SIGUSR2), 0);
    ck_assert_int_eq(sigrelse(SIGUSR2), 0);
    ck_assert_int_eq(sighold(0), -1);
}
END_TEST

/* ------------------------------------------- process-directed signals */

static atomic_int spin_stop, takers_ready;
static sem_t quit;

static void block_sig(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
}

static void *decoy(void *a)
{
    (void)a;
    my_idx = 1;
    atomic_fetch_add(&takers_ready, 1);
    while (sem_wait(&quit) != 0)
        ;
    return NULL;
}

static void *spinner(void *a)
{
    my_idx = (int)(intptr_t)a;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);
    atomic_fetch_add(&takers_ready, 1);
    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
        if (pt_ms_since(t0) > 20000)
            break; /* the test fails below */
    return NULL;
}

/* Every thread but one busy one blocks SIGUSR1: kill(getpid()) runs the
 * handler in the busy one, at once (it never waits). */
START_TEST(process_directed_to_busy_g)
{
    install(SIGUSR1, SA_RESTART);
    block_sig(SIGUSR1); /* main, and inherited by the decoys */
    ck_assert_int_eq(sem_init(&quit, 0, 0), 0);
    pthread_t d[3], sp;
    for (int i = 0; i < 3; i++)
        d[i] = pt_start(decoy, NULL);
    sp = pt_start(spinner, (void *)42);
    while (atomic_load(&takers_ready) < 4)
        pt_sleep_ms(1);
    for (int k = 0; k < 5; k++) {
        int before = atomic_load(&h_count);
        ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
        for (int n = 0; n < 5000 && atomic_load(&h_count) == before; n++)
            pt_sleep_ms(1);
        ck_assert_int_eq(atomic_load(&h_count), before + 1);
        ck_assert(pthread_equal(h_self, sp));
        ck_assert_int_eq(h_idx, 42);
    }
    atomic_store(&spin_stop, 1);
    pt_join(sp);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sem_post(&quit), 0);
    for (int i = 0; i < 3; i++)
        pt_join(d[i]);
}
END_TEST

/* Nobody takes it: pending for the process until a thread unblocks it. */
static atomic_int unblock_now;
static void *late_taker(void *a)
{
    my_idx = (int)(intptr_t)a;
    atomic_store(&ready, 1);
    while (!atomic_load(&unblock_now))
        pt_sleep_ms(1);
    sigset_t p;
    ck_assert_int_eq(sigpending(&p), 0);
    ck_assert_int_eq(sigismember(&p, SIGUSR2), 1);
    int before = atomic_load(&h_count);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);
    /* delivered before pthread_sigmask returned, here */
    ck_assert_int_eq(atomic_load(&h_count), before + 1);
    ck_assert(pthread_equal(h_self, pthread_self()));
    return NULL;
}

START_TEST(process_directed_held_until_unblocked)
{
    install(SIGUSR2, SA_RESTART);
    block_sig(SIGUSR2);
    atomic_store(&ready, 0);
    pthread_t t = pt_start(late_taker, (void *)5);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    int before = atomic_load(&h_count);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    pt_sleep_ms(50);
    ck_assert_int_eq(atomic_load(&h_count), before);
    atomic_store(&unblock_now, 1);
    pt_join(t);
}
END_TEST

/* ----------------------------------------------- sigsuspend, pause */

static atomic_int susp_rc = -2, susp_errno, susp_mask_ok;
static void *suspender(void *a)
{
    my_idx = 9;
    bool use_pause = a != NULL;
    if (use_pause) { /* pause: with its own mask, which lets SIGUSR1 in */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);
    }
    atomic_store(&ready, 1);
    int r;
    if (use_pause) {
        r = pause();
    } else {
        sigset_t m;
        sigemptyset(&m);
        r = sigsuspend(&m);
    }
    atomic_store(&susp_errno, errno);
    sigset_t cur;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    atomic_store(&susp_mask_ok, sigismember(&cur, SIGUSR1) == !use_pause);
    atomic_store(&susp_rc, r);
    return NULL;
}

static void suspend_case(bool use_pause)
{
    install(SIGUSR1, SA_RESTART);
    block_sig(SIGUSR1); /* main and the suspender (until sigsuspend) */
    atomic_store(&ready, 0);
    atomic_store(&susp_rc, -2);
    pthread_t t = pt_start(suspender, use_pause ? (void *)1 : NULL);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    pt_sleep_ms(30); /* inside now */
    ck_assert_int_eq(atomic_load(&susp_rc), -2);
    int before = atomic_load(&h_count);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0); /* process-directed */
    pt_join(t);
    ck_assert_int_eq(atomic_load(&susp_rc), -1);
    ck_assert_int_eq(atomic_load(&susp_errno), EINTR);
    ck_assert_int_eq(atomic_load(&h_count), before + 1);
    ck_assert(pthread_equal(h_self, t));
    ck_assert_int_eq(atomic_load(&susp_mask_ok), 1);
}

START_TEST(sigsuspend_parks_until_handler) { suspend_case(false); }
END_TEST
START_TEST(pause_parks_until_handler) { suspend_case(true); }
END_TEST

/* A signal pthread_kill'ed to a G that blocks it is taken by its sigwait. */
static atomic_int sw_sig;
static void *self_waiter(void *a)
{
    (void)a;
    block_sig(SIGUSR2);
    atomic_store(&ready, 1);
    while (!atomic_load(&unblock_now))
        pt_sleep_ms(1);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    int sig = 0;
    ck_assert_int_eq(sigwait(&s, &sig), 0);
    atomic_store(&sw_sig, sig);
    return NULL;
}

START_TEST(sigwait_takes_thread_pending)
{
    install(SIGUSR2, SA_RESTART);
    atomic_store(&ready, 0);
    atomic_store(&unblock_now, 0);
    pthread_t t = pt_start(self_waiter, NULL);
    while (!atomic_load(&ready))
        pt_sleep_ms(1);
    int before = atomic_load(&h_count);
    ck_assert_int_eq(pthread_kill(t, SIGUSR2), 0);
    pt_sleep_ms(20);
    atomic_store(&unblock_now, 1);
    pt_join(t);
    ck_assert_int_eq(atomic_load(&sw_sig), SIGUSR2);
    ck_assert_int_eq(atomic_load(&h_count), before); /* not handled */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-signal");
    PT_ADD(s, kill_parked_g);
    PT_ADD(s, kill_finished_unjoined);
    PT_ADD(s, sleep_eintr);
    PT_ADD(s, sigqueue_value);
    PT_ADD(s, pending_while_blocked);
    PT_ADD(s, sigtimedwait_times_out);
    PT_ADD(s, sigaction_reports_program_action);
    PT_ADD(s, process_directed_to_busy_g);
    PT_ADD(s, process_directed_held_until_unblocked);
    PT_ADD(s, sigsuspend_parks_until_handler);
    PT_ADD(s, pause_parks_until_handler);
    PT_ADD(s, sigwait_takes_thread_pending);
    return s;
}

PT_MAIN(suite)
