/*
 * sigwait_info - signal waits and sigpending per thread, as NPTL.
 *
 *  1. raise() while blocked: pending on the thread, sigwaitinfo returns it
 *     with SI_USER (glibc folds the kernel's SI_TKILL) and our pid.
 *  2. pthread_kill to a thread blocked in sigtimedwait returns at once in
 *     that thread (SI_USER), not when something else wakes it; so does a
 *     kill(getpid()) when only that thread waits for the signal.
 *  3. sigpending in a thread reports its own pending signals and the
 *     process's, never another thread's: a signal pthread_kill'ed to a
 *     thread that blocks it is pending there only; one kill()ed to the
 *     process while every thread blocks it is pending for all.
 */
#include "e2e.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

static sigset_t usr12;
static _Atomic int ready, go, phase;
static _Atomic int64_t got_at;
static _Atomic int got_sig, got_code, got_pid;

static void *waiter(void *a)
{
    (void)a;
    atomic_store(&ready, 1);
    for (int i = 0; i < 2; i++) {
        siginfo_t si;
        struct timespec ts = {5, 0};
        int r = sigtimedwait(&usr12, &si, &ts);
        atomic_store(&got_code, r > 0 ? si.si_code : -100);
        atomic_store(&got_pid, r > 0 ? si.si_pid : -1);
        atomic_store(&got_at, now_ns());
        atomic_store(&got_sig, r);
        WAIT_UNTIL(atomic_load(&phase) > i, 5000);
    }
    return NULL;
}

static int pend_here(int sig)
{
    sigset_t p;
    CHECK_SYS(sigpending(&p));
    return sigismember(&p, sig);
}

static _Atomic int b_pending_usr1, b_pending_usr2;
static void *holder(void *a)
{
    (void)a;
    atomic_store(&ready, 1);
    WAIT_UNTIL(atomic_load(&go) == 1, 5000);
    atomic_store(&b_pending_usr1, pend_here(SIGUSR1));
    atomic_store(&b_pending_usr2, pend_here(SIGUSR2));
    atomic_store(&go, 2);
    WAIT_UNTIL(atomic_load(&go) == 3, 5000);
    siginfo_t si;
    /* take them, so nothing is left behind */
    struct timespec z = {0, 0};
    while (sigtimedwait(&usr12, &si, &z) > 0)
        ;
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    alarm(30);
    sigemptyset(&usr12);
    sigaddset(&usr12, SIGUSR1);
    sigaddset(&usr12, SIGUSR2);
    CHECK_OK(pthread_sigmask(SIG_BLOCK, &usr12, NULL));

    /* 1 */
    CHECK_SYS(raise(SIGUSR1));
    CHECK_EQ(pend_here(SIGUSR1), 1);
    siginfo_t si;
    CHECK_EQ(sigwaitinfo(&usr12, &si), SIGUSR1);
    CHECK_EQ(si.si_code, SI_USER);
    CHECK_EQ(si.si_pid, getpid());
    CHECK_EQ(pend_here(SIGUSR1), 0);
    printf("raise while blocked: pending, sigwaitinfo gives SI_USER and "
           "our pid\n");

    /* 2 */
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, waiter, NULL)); /* inherits the mask */
    WAIT_UNTIL(atomic_load(&ready), 5000);
    sleep_ms(50);
    int64_t t0 = now_ns();
    CHECK_OK(pthread_kill(t, SIGUSR1));
    WAIT_UNTIL(atomic_load(&got_sig) != 0, 5000);
    CHECK_EQ(atomic_load(&got_sig), SIGUSR1);
    CHECK_EQ(atomic_load(&got_code), SI_USER);
    if (atomic_load(&got_at) - t0 > 500 * NS_PER_MS)
        FAIL("pthread_kill to a thread in sigtimedwait: returned after "
             "%lld ms", (long long)((atomic_load(&got_at) - t0) / NS_PER_MS));
    atomic_store(&got_sig, 0);
    atomic_store(&phase, 1);
    sleep_ms(50);
    t0 = now_ns();
    CHECK_SYS(kill(getpid(), SIGUSR2));
    WAIT_UNTIL(atomic_load(&got_sig) != 0, 5000);
    CHECK_EQ(atomic_load(&got_sig), SIGUSR2);
    CHECK_EQ(atomic_load(&got_code), SI_USER);
    CHECK_EQ(atomic_load(&got_pid), getpid());
    if (atomic_load(&got_at) - t0 > 500 * NS_PER_MS)
        FAIL("kill to a thread in sigtimedwait: returned after %lld ms",
             (long long)((atomic_load(&got_at) - t0) / NS_PER_MS));
    atomic_store(&phase, 2);
    CHECK_OK(pthread_join(t, NULL));
    printf("sigtimedwait: a pthread_kill and a kill(getpid()) return it at "
           "once with SI_USER\n");

    /* 3 */
    atomic_store(&ready, 0);
    CHECK_OK(pthread_create(&t, NULL, holder, NULL));
    WAIT_UNTIL(atomic_load(&ready), 5000);
    CHECK_OK(pthread_kill(t, SIGUSR1)); /* for the holder alone */
    CHECK_SYS(kill(getpid(), SIGUSR2)); /* for the process */
    sleep_ms(50);
    CHECK_EQ(pend_here(SIGUSR1), 0);
    CHECK_EQ(pend_here(SIGUSR2), 1);
    atomic_store(&go, 1);
    WAIT_UNTIL(atomic_load(&go) == 2, 5000);
    CHECK_EQ(atomic_load(&b_pending_usr1), 1);
    CHECK_EQ(atomic_load(&b_pending_usr2), 1);
    atomic_store(&go, 3);
    CHECK_OK(pthread_join(t, NULL));
    struct timespec z = {0, 0};
    while (sigtimedwait(&usr12, &si, &z) > 0)
        ;
    printf("sigpending: a thread's own pending signals and the process's, "
           "not another thread's\n");
    return 0;
}
