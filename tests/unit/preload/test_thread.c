/*
 * test_thread.c — thread management under vthread: create/join at scale,
 * pthread_self identity, detach rules, join error codes and timed joins,
 * pthread_exit with cleanup handlers, attributes (stack size, user stack,
 * scheduling), getattr_np, names, scheduling parameters, affinity, CPU
 * clock, yield.
 */
#include <sched.h>

#include "pl_test.h"

static void *ret_arg(void *a) { return a; }

START_TEST(create_join_many)
{
    for (int round = 0; round < 5; round++) {
        enum { N = 400 };
        pthread_t t[N];
        for (intptr_t i = 0; i < N; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, ret_arg, (void *)i),
                             0);
        for (intptr_t i = 0; i < N; i++)
            ck_assert_ptr_eq(pt_join(t[i]), (void *)i);
    }
}
END_TEST

static pthread_t seen_self;
static void *store_self(void *unused)
{
    (void)unused;
    seen_self = pthread_self();
    return NULL;
}

START_TEST(self_matches_handle)
{
    pthread_t t = pt_start(store_self, NULL);
    pt_join(t);
    ck_assert(pthread_equal(t, seen_self));
    pthread_t me = pthread_self();
    ck_assert(pthread_equal(me, pthread_self()));
}
END_TEST

static void *sleep_ret(void *a)
{
    pt_sleep_ms(50);
    return a;
}

START_TEST(join_errors)
{
    ck_assert_int_eq(pthread_join(pthread_self(), NULL), EDEADLK);
    pthread_t t = pt_start(sleep_ret, (void *)9);
    void *r = NULL;
    ck_assert_int_eq(pthread_tryjoin_np(t, &r), EBUSY);
    struct timespec bad = {0, 1000000000};
    ck_assert_int_eq(pthread_timedjoin_np(t, &r, &bad), EINVAL);
    struct timespec ts = pt_abs(CLOCK_REALTIME, 5);
    ck_assert_int_eq(pthread_timedjoin_np(t, &r, &ts), ETIMEDOUT);
    ts = pt_abs(CLOCK_MONOTONIC, 5);
    ck_assert_int_eq(pthread_clockjoin_np(t, &r, CLOCK_BOOTTIME, &ts), EINVAL);
    ck_assert_int_eq(pthread_clockjoin_np(t, &r, CLOCK_MONOTONIC, &ts),
                     ETIMEDOUT);
    ts = pt_abs(CLOCK_MONOTONIC, 5000);
    ck_assert_int_eq(pthread_clockjoin_np(t, &r, CLOCK_MONOTONIC, &ts), 0);
    ck_assert_ptr_eq(r, (void *)9);

    t = pt_start(ret_arg, (void *)3);
    pt_sleep_ms(20);
    ck_assert_int_eq(pthread_tryjoin_np(t, &r), 0);
    ck_assert_ptr_eq(r, (void *)3);
}
END_TEST

static pthread_t main_thread;
static void *join_main(void *unused)
{
    (void)unused;
    pt_sleep_ms(30); /* main is blocked joining us by now */
    return (void *)(intptr_t)pthread_join(main_thread, NULL);
}

START_TEST(mutual_join_edeadlk)
{
    main_thread = pthread_self();
    pthread_t t = pt_start(join_main, NULL);
    ck_assert_int_eq((intptr_t)pt_join(t), EDEADLK);
}
END_TEST

START_TEST(detach_rules)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &a, sleep_ret, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), EINVAL);
    ck_assert_int_eq(pthread_detach(t), EINVAL);
    t = pt_start(sleep_ret, NULL);
    ck_assert_int_eq(pthread_detach(t), 0);
    ck_assert_int_eq(pthread_detach(t), EINVAL);
    /* Many detached threads that exit at once. */
    for (int i = 0; i < 500; i++)
        ck_assert_int_eq(pthread_create(&t, &a, ret_arg, NULL), 0);
    pt_sleep_ms(100);
    pthread_attr_destroy(&a);
}
END_TEST

static atomic_int cleanups;
static void cleanup_fn(void *p) { atomic_fetch_add(&cleanups, (int)(intptr_t)p); }
static void *exit_deep(void *unused)
{
    (void)unused;
    pthread_cleanup_push(cleanup_fn, (void *)1);
    pthread_cleanup_push(cleanup_fn, (void *)10);
    pthread_exit((void *)77);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

START_TEST(exit_runs_cleanup)
{
    ck_assert_ptr_eq(pt_join(pt_start(exit_deep, NULL)), (void *)77);
    ck_assert_int_eq(atomic_load(&cleanups), 11);
}
END_TEST

struct stackinfo {
    char *lo, *hi, *local;
    size_t guard;
    int detach;
};
static void *probe_stack(void *p)
{
    struct stackinfo *si = p;
    char here;
    pthread_attr_t a;
    ck_assert_int_eq(pthread_getattr_np(pthread_self(), &a), 0);
    void *addr;
    size_t size;
    ck_assert_int_eq(pthread_attr_getstack(&a, &addr, &size), 0);
    pthread_attr_getguardsize(&a, &si->guard);
    pthread_attr_getdetachstate(&a, &si->detach);
    si->lo = addr;
    si->hi = (char *)addr + size;
    si->local = &here;
    pthread_attr_destroy(&a);
    return NULL;
}

START_TEST(stack_attributes)
{
    struct stackinfo si;
    /* Default. */
    pt_join(pt_start(probe_stack, &si));
    ck_assert(si.local > si.lo && si.local < si.hi);
    ck_assert_int_ge(si.hi - si.lo, 64 * 1024);

    /* A chosen size. */
    pthread_attr_t a;
    pthread_attr_init(&a);
    ck_assert_int_eq(pthread_attr_setstacksize(&a, 256 * 1024), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &a, probe_stack, &si), 0);
    pt_join(t);
    ck_assert(si.local > si.lo && si.local < si.hi);
    ck_assert_int_le(si.hi - si.lo, 320 * 1024);
    ck_assert_int_ge(si.hi - si.lo, 128 * 1024);
    pthread_attr_destroy(&a);

    /* A stack of our own. */
    size_t sz = 512 * 1024;
    char *mine = aligned_alloc(4096, sz);
    pthread_attr_init(&a);
    ck_assert_int_eq(pthread_attr_setstack(&a, mine, sz), 0);
    ck_assert_int_eq(pthread_create(&t, &a, probe_stack, &si), 0);
    pt_join(t);
    ck_assert(si.local > mine && si.local < mine + sz);
    ck_assert(si.lo >= mine && si.hi <= mine + sz);
    pthread_attr_destroy(&a);
    free(mine);

    /* Guard sizes as given: none, and two pages. */
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t g = 0; g <= 2 * pg; g += 2 * pg) {
        pthread_attr_init(&a);
        ck_assert_int_eq(pthread_attr_setguardsize(&a, g), 0);
        ck_assert_int_eq(pthread_create(&t, &a, probe_stack, &si), 0);
        pt_join(t);
        ck_assert_uint_eq(si.guard, g);
        ck_assert(si.local > si.lo && si.local < si.hi);
        pthread_attr_destroy(&a);
    }
    /* Default attributes: one page. */
    pt_join(pt_start(probe_stack, &si));
    ck_assert_uint_eq(si.guard, pg);
}
END_TEST

/* *thread is written before the new thread runs (NPTL): the thread may
 * read it through the pointer its creator passed. */
static pthread_t handle_slot;
static atomic_int handle_ok;
static void *read_handle(void *a)
{
    (void)a;
    atomic_store(&handle_ok, pthread_equal(handle_slot, pthread_self()));
    return NULL;
}

START_TEST(handle_written_before_start)
{
    for (int i = 0; i < 200; i++) {
        atomic_store(&handle_ok, 0);
        handle_slot = 0;
        ck_assert_int_eq(pthread_create(&handle_slot, NULL, read_handle, NULL),
                         0);
        pt_join(handle_slot);
        ck_assert_int_eq(atomic_load(&handle_ok), 1);
    }
}
END_TEST

START_TEST(bad_attributes)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
    struct sched_param sp = {.sched_priority = 5}; /* SCHED_OTHER wants 0 */
    ck_assert_int_eq(pthread_attr_setschedparam(&a, &sp), EINVAL); /* glibc */
    pthread_attr_setschedpolicy(&a, SCHED_FIFO);
    ck_assert_int_eq(pthread_attr_setschedparam(&a, &sp), 0);
    pthread_attr_setschedpolicy(&a, SCHED_OTHER); /* prio 5 is now wrong */
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &a, ret_arg, NULL), EINVAL);
    sp.sched_priority = 0;
    pthread_attr_setschedparam(&a, &sp);
    ck_assert_int_eq(pthread_create(&t, &a, ret_arg, NULL), 0);
    pt_join(t);
    pthread_attr_destroy(&a);
}
END_TEST

static _Atomic int named_self; /* name_self checked its own name */

static void *name_self(void *unused)
{
    (void)unused;
    ck_assert_int_eq(pthread_setname_np(pthread_self(), "worker-7"), 0);
    char buf[16];
    ck_assert_int_eq(pthread_getname_np(pthread_self(), buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "worker-7");
    atomic_store(&named_self, 1);
    pt_sleep_ms(30);
    return NULL;
}

START_TEST(names)
{
    pthread_t t = pt_start(name_self, NULL);
    /* wait until it has read its own name back: renaming it before that
     * would fail its check (seen under qemu, where it runs slowly) */
    for (int i = 0; i < 10000 && !atomic_load(&named_self); i++)
        pt_sleep_ms(1);
    ck_assert(atomic_load(&named_self));
    char buf[16];
    ck_assert_int_eq(pthread_getname_np(t, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "worker-7");
    ck_assert_int_eq(pthread_getname_np(t, buf, 15), ERANGE);
    ck_assert_int_eq(pthread_setname_np(t, "0123456789abcdef"), ERANGE);
    ck_assert_int_eq(pthread_setname_np(t, "0123456789abcde"), 0);
    ck_assert_int_eq(pthread_getname_np(t, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "0123456789abcde");
    pt_join(t);
    /* An unnamed G reports the program's name. */
    t = pt_start(sleep_ret, NULL);
    ck_assert_int_eq(pthread_getname_np(t, buf, sizeof buf), 0);
    ck_assert_int_gt((int)strlen(buf), 0);
    pt_join(t);
}
END_TEST

START_TEST(sched_and_affinity)
{
    pthread_t t = pt_start(sleep_ret, NULL);
    struct sched_param sp = {0};
    int pol;
    ck_assert_int_eq(pthread_setschedparam(t, 12345, &sp), EINVAL);
    sp.sched_priority = 3;
    ck_assert_int_eq(pthread_setschedparam(t, SCHED_OTHER, &sp), EINVAL);
    sp.sched_priority = 0;
    ck_assert_int_eq(pthread_setschedparam(t, SCHED_BATCH, &sp), 0);
    ck_assert_int_eq(pthread_getschedparam(t, &pol, &sp), 0);
    ck_assert_int_eq(pol, SCHED_BATCH);
    ck_assert_int_eq(pthread_setschedprio(t, 50), EINVAL);
    ck_assert_int_eq(pthread_setschedprio(t, 0), 0);

    cpu_set_t set;
    CPU_ZERO(&set);
    ck_assert_int_eq(pthread_setaffinity_np(t, sizeof set, &set), EINVAL);
    CPU_SET(0, &set);
    ck_assert_int_eq(pthread_setaffinity_np(t, sizeof set, &set), 0);
    cpu_set_t got;
    ck_assert_int_eq(pthread_getaffinity_np(t, sizeof got, &got), 0);
    ck_assert(CPU_EQUAL(&set, &got));

    pthread_attr_t a;
    ck_assert_int_eq(pthread_getattr_np(t, &a), 0);
    pthread_attr_getschedpolicy(&a, &pol);
    ck_assert_int_eq(pol, SCHED_BATCH);
    CPU_ZERO(&got);
    ck_assert_int_eq(pthread_attr_getaffinity_np(&a, sizeof got, &got), 0);
    ck_assert(CPU_EQUAL(&set, &got));
    pthread_attr_destroy(&a);

    clockid_t clk;
    ck_assert_int_eq(pthread_getcpuclockid(t, &clk), 0);
    struct timespec ts;
    ck_assert_int_eq(clock_gettime(clk, &ts), 0);
    ck_assert_int_eq(sched_yield(), 0);
    pt_join(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload-thread");
    PT_ADD(s, create_join_many);
    PT_ADD(s, self_matches_handle);
    PT_ADD(s, join_errors);
    PT_ADD(s, mutual_join_edeadlk);
    PT_ADD(s, detach_rules);
    PT_ADD(s, exit_runs_cleanup);
    PT_ADD(s, stack_attributes);
    PT_ADD(s, handle_written_before_start);
    PT_ADD(s, bad_attributes);
    PT_ADD(s, names);
    PT_ADD(s, sched_and_affinity);
    return s;
}

PT_MAIN(suite)
