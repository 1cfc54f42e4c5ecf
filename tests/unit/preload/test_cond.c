/*
 * test_cond.c — pthread_cond_* under vthread: ping-pong, broadcast (the
 * requeue path) with and without the mutex held, timed waits on both
 * clocks, error codes, process-shared condvars with a private mutex, and
 * binding of the old GLIBC_2.2.5 symbol versions to vthread.
 */
#include "pl_test.h"

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long turn, woke, gen;

enum { ROUNDS = 5000 };

static void *pinger(void *arg)
{
    long me = (long)(intptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&m);
        while ((turn & 1) != me)
            ck_assert_int_eq(pthread_cond_wait(&c, &m), 0);
        turn++;
        pthread_cond_signal(&c);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

START_TEST(ping_pong)
{
    turn = 0;
    pt_run(2, pinger);
    ck_assert_int_eq(turn, 2 * ROUNDS);
}
END_TEST

/* Many waiters, a broadcast per generation, with or without the mutex
 * held by the broadcaster: nobody may miss a generation (lost wake-ups
 * of requeued waiters would hang here). */
enum { NW = 40, GENS = 300 };
static atomic_int arrived;
static int bcast_locked;

static void *gen_waiter(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&m);
    for (long g = 1; g <= GENS; g++) {
        atomic_fetch_add(&arrived, 1);
        while (gen < g)
            ck_assert_int_eq(pthread_cond_wait(&c, &m), 0);
        woke++;
    }
    pthread_mutex_unlock(&m);
    return NULL;
}

static void broadcast_rounds(int locked)
{
    gen = woke = 0;
    atomic_store(&arrived, 0);
    bcast_locked = locked;
    pthread_t t[NW];
    for (int i = 0; i < NW; i++)
        t[i] = pt_start(gen_waiter, NULL);
    for (long g = 1; g <= GENS; g++) {
        while (atomic_load(&arrived) < NW * g)
            sched_yield();
        pthread_mutex_lock(&m);
        gen = g;
        if (locked)
            pthread_cond_broadcast(&c);
        pthread_mutex_unlock(&m);
        if (!locked)
            pthread_cond_broadcast(&c);
    }
    for (int i = 0; i < NW; i++)
        pt_join(t[i]);
    ck_assert_int_eq(woke, (long)NW * GENS);
    /* The mutex still works normally after all the requeueing. */
    ck_assert_int_eq(pthread_mutex_trylock(&m), 0);
    ck_assert_int_eq(pthread_mutex_unlock(&m), 0);
}

START_TEST(broadcast_locked) { broadcast_rounds(1); }
END_TEST

START_TEST(broadcast_unlocked) { broadcast_rounds(0); }
END_TEST

/* Producer/consumer with signal only. */
static long items, consumed;
enum { NPROD = 8, NCONS = 8, PER = 2000 };
static pthread_cond_t nonempty = PTHREAD_COND_INITIALIZER;

static void *producer(void *unused)
{
    (void)unused;
    for (int i = 0; i < PER; i++) {
        pthread_mutex_lock(&m);
        items++;
        pthread_cond_signal(&nonempty);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static void *consumer(void *unused)
{
    (void)unused;
    for (int i = 0; i < PER; i++) {
        pthread_mutex_lock(&m);
        while (items == 0)
            pthread_cond_wait(&nonempty, &m);
        items--;
        consumed++;
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

START_TEST(producer_consumer)
{
    pthread_t t[NPROD + NCONS];
    for (int i = 0; i < NCONS; i++)
        t[i] = pt_start(consumer, NULL);
    for (int i = 0; i < NPROD; i++)
        t[NCONS + i] = pt_start(producer, NULL);
    for (int i = 0; i < NPROD + NCONS; i++)
        pt_join(t[i]);
    ck_assert_int_eq(consumed, (long)NPROD * PER);
    ck_assert_int_eq(items, 0);
}
END_TEST

START_TEST(timed_waits)
{
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&m);
    struct timespec bad = {0, -1};
    ck_assert_int_eq(pthread_cond_timedwait(&cv, &m, &bad), EINVAL);
    ck_assert_int_eq(pthread_cond_clockwait(&cv, &m, CLOCK_BOOTTIME, &bad),
                     EINVAL);
    struct timespec ok = pt_abs(CLOCK_MONOTONIC, 10);
    ck_assert_int_eq(pthread_cond_clockwait(&cv, &m, 12345, &ok), EINVAL);

    int64_t t0 = pt_now_ns(CLOCK_MONOTONIC);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 30);
    ck_assert_int_eq(pthread_cond_timedwait(&cv, &m, &ts), ETIMEDOUT);
    ck_assert_int_ge(pt_ms_since(t0), 29);
    /* The mutex is held again after a timeout. */
    ck_assert_int_eq(pthread_mutex_trylock(&m), EBUSY);
    struct timespec past = {0, 0};
    ck_assert_int_eq(pthread_cond_timedwait(&cv, &m, &past), ETIMEDOUT);
    ck_assert_int_eq(pthread_mutex_trylock(&m), EBUSY);
    ts = pt_abs(CLOCK_MONOTONIC, 20);
    ck_assert_int_eq(pthread_cond_clockwait(&cv, &m, CLOCK_MONOTONIC, &ts),
                     ETIMEDOUT);
    pthread_mutex_unlock(&m);

    /* A condvar on CLOCK_MONOTONIC (condattr). */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t mc;
    ck_assert_int_eq(pthread_cond_init(&mc, &ca), 0);
    pthread_mutex_lock(&m);
    t0 = pt_now_ns(CLOCK_MONOTONIC);
    ts = pt_abs(CLOCK_MONOTONIC, 20);
    ck_assert_int_eq(pthread_cond_timedwait(&mc, &m, &ts), ETIMEDOUT);
    ck_assert_int_ge(pt_ms_since(t0), 19);
    ck_assert_int_lt(pt_ms_since(t0), 2000);
    pthread_mutex_unlock(&m);
    ck_assert_int_eq(pthread_cond_destroy(&mc), 0);
}
END_TEST

static pthread_cond_t tc = PTHREAD_COND_INITIALIZER;
static int flag;
static void *signal_later(void *unused)
{
    (void)unused;
    pt_sleep_ms(20);
    pthread_mutex_lock(&m);
    flag = 1;
    pthread_cond_broadcast(&tc);
    pthread_mutex_unlock(&m);
    return NULL;
}

START_TEST(timedwait_woken)
{
    /* Timed waiters woken by a broadcast (requeued with a live timer). */
    pthread_t t = pt_start(signal_later, NULL);
    pthread_mutex_lock(&m);
    while (!flag) {
        struct timespec ts = pt_abs(CLOCK_REALTIME, 5000);
        ck_assert_int_eq(pthread_cond_timedwait(&tc, &m, &ts), 0);
    }
    pthread_mutex_unlock(&m);
    pt_join(t);
}
END_TEST

START_TEST(errorcheck_not_owner)
{
    pthread_mutex_t em = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    ck_assert_int_eq(pthread_cond_wait(&cv, &em), EPERM);
    pthread_mutex_t rm = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    struct timespec ts = pt_abs(CLOCK_REALTIME, 10);
    ck_assert_int_eq(pthread_cond_timedwait(&cv, &rm, &ts), EPERM);
    /* With the errorcheck mutex held: a normal timeout. */
    pthread_mutex_lock(&em);
    ck_assert_int_eq(pthread_cond_timedwait(&cv, &em, &ts), ETIMEDOUT);
    ck_assert_int_eq(pthread_mutex_unlock(&em), 0);
    ck_assert_int_eq(pthread_cond_destroy(&cv), 0);
}
END_TEST

/* A process-shared condvar (glibc's) with vthread's private mutex. */
static pthread_cond_t sc;
static void *shared_signaller(void *unused)
{
    (void)unused;
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&m);
        turn++;
        pthread_cond_signal(&sc);
        pthread_mutex_unlock(&m);
        sched_yield();
    }
    return NULL;
}

START_TEST(pshared_cond_private_mutex)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    ck_assert_int_eq(pthread_cond_init(&sc, &ca), 0);
    turn = 0;
    pthread_t t = pt_start(shared_signaller, NULL);
    pthread_mutex_lock(&m);
    while (turn < 200) {
        struct timespec ts = pt_abs(CLOCK_REALTIME, 2000);
        int r = pthread_cond_timedwait(&sc, &m, &ts);
        ck_assert(r == 0 || r == ETIMEDOUT);
    }
    pthread_mutex_unlock(&m);
    pt_join(t);
    ck_assert_int_eq(pthread_cond_destroy(&sc), 0);
}
END_TEST

#ifdef __x86_64__ /* aarch64's first glibc (2.17) has one condvar ABI */
/* Old binaries bind pthread_cond_*@GLIBC_2.2.5; ld.so must bind that
 * versioned reference to vthread's unversioned definition.  glibc's old
 * implementation would allocate a new-style condvar and store its address
 * in the first word; ours records the waiters' mutex there instead. */
extern int old_cond_timedwait(pthread_cond_t *, pthread_mutex_t *,
                              const struct timespec *);
__asm__(".symver old_cond_timedwait, pthread_cond_timedwait@GLIBC_2.2.5");
extern int new_cond_timedwait(pthread_cond_t *, pthread_mutex_t *,
                              const struct timespec *);
__asm__(".symver new_cond_timedwait, pthread_cond_timedwait@GLIBC_2.3.2");

START_TEST(old_symbol_versions_bind_to_vthread)
{
    const char *dis = getenv("VTHREAD_DISABLE");
    if (dis && !strcmp(dis, "1"))
        return; /* glibc's own implementation is meant to run then */
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&m);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 5);
    ck_assert_int_eq(old_cond_timedwait(&cv, &m, &ts), ETIMEDOUT);
    uintptr_t first;
    memcpy(&first, &cv, sizeof first);
    ck_assert_msg(first == (uintptr_t)&m,
                  "pthread_cond_timedwait@GLIBC_2.2.5 did not reach vthread "
                  "(first word %#lx)", (unsigned long)first);
    pthread_cond_t cv2 = PTHREAD_COND_INITIALIZER;
    ts = pt_abs(CLOCK_REALTIME, 5);
    ck_assert_int_eq(new_cond_timedwait(&cv2, &m, &ts), ETIMEDOUT);
    memcpy(&first, &cv2, sizeof first);
    ck_assert(first == (uintptr_t)&m);
    pthread_mutex_unlock(&m);
}
END_TEST
#endif

static Suite *suite(void)
{
    Suite *s = suite_create("preload-cond");
    PT_ADD(s, ping_pong);
    PT_ADD(s, broadcast_locked);
    PT_ADD(s, broadcast_unlocked);
    PT_ADD(s, producer_consumer);
    PT_ADD(s, timed_waits);
    PT_ADD(s, timedwait_woken);
    PT_ADD(s, errorcheck_not_owner);
    PT_ADD(s, pshared_cond_private_mutex);
#ifdef __x86_64__
    PT_ADD(s, old_symbol_versions_bind_to_vthread);
#endif
    return s;
}

PT_MAIN(suite)
