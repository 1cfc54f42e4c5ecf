/*
 * threads_basic: thread creation, joining, detaching, identity, attributes
 * and names.
 */
#include "e2e.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define NCREATE 2000

/* ------------------------------------------------- create/join many */

static pthread_t self_of[NCREATE];

static void *ret_fn(void *arg)
{
    intptr_t i = (intptr_t)arg;
    self_of[i] = pthread_self();
    /* a little work so that threads overlap */
    unsigned x = (unsigned)i;
    for (int k = 0; k < 100; k++)
        x = x * 1103515245u + 12345u;
    if ((i & 7) == 0)
        sched_yield();
    if (x == 42)   /* never: just keeps the loop */
        return NULL;
    return (void *)(intptr_t)(i * 3 + 1);
}

static void test_create_join_many(void)
{
    static pthread_t t[NCREATE];
    for (intptr_t i = 0; i < NCREATE; i++)
        CHECK_OK(pthread_create(&t[i], NULL, ret_fn, (void *)i));
    long long sum = 0;
    for (intptr_t i = 0; i < NCREATE; i++) {
        void *rv = NULL;
        CHECK_OK(pthread_join(t[i], &rv));
        CHECK_EQ((intptr_t)rv, i * 3 + 1);
        /* the id a thread sees for itself is the one create returned */
        CHECK(pthread_equal(t[i], self_of[i]));
        CHECK(!pthread_equal(t[i], pthread_self()));
        sum += (intptr_t)rv;
    }
    printf("create/join %d threads: sum of return values %lld\n", NCREATE,
           sum);
}

/* ------------------------------------------- identity while all alive */

#define NALIVE 64
static sem_t alive_go;
static pthread_t alive_self[NALIVE];
static atomic_int alive_ready;

static void *alive_fn(void *arg)
{
    intptr_t i = (intptr_t)arg;
    alive_self[i] = pthread_self();
    CHECK(pthread_equal(pthread_self(), pthread_self()));
    atomic_fetch_add(&alive_ready, 1);
    while (sem_wait(&alive_go) != 0)
        CHECK_EQ(errno, EINTR);
    return NULL;
}

static void test_identity(void)
{
    pthread_t t[NALIVE];
    CHECK_SYS(sem_init(&alive_go, 0, 0));
    for (intptr_t i = 0; i < NALIVE; i++)
        CHECK_OK(pthread_create(&t[i], NULL, alive_fn, (void *)i));
    WAIT_UNTIL(atomic_load(&alive_ready) == NALIVE, 10000);
    /* All alive at once: ids are pairwise distinct, and distinct from
     * main's. */
    int distinct = 1;
    for (int i = 0; i < NALIVE; i++) {
        CHECK(pthread_equal(t[i], alive_self[i]));
        CHECK(!pthread_equal(t[i], pthread_self()));
        for (int j = i + 1; j < NALIVE; j++)
            if (pthread_equal(t[i], t[j]))
                distinct = 0;
    }
    CHECK(distinct);
    for (int i = 0; i < NALIVE; i++)
        CHECK_SYS(sem_post(&alive_go));
    for (int i = 0; i < NALIVE; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    sem_destroy(&alive_go);
    printf("pthread_self/pthread_equal: %d live threads distinct\n", NALIVE);
}

/* ---------------------------------------------------------- detach */

#define NDETACH 200
static atomic_int detached_done;

static void *detached_fn(void *arg)
{
    (void)arg;
    sched_yield();
    atomic_fetch_add(&detached_done, 1);
    return NULL;
}

static sem_t blocker;

static void *block_fn(void *arg)
{
    while (sem_wait(&blocker) != 0)
        CHECK_EQ(errno, EINTR);
    return arg;
}

static sem_t detached_blocker;

static void *detached_block_fn(void *arg)
{
    while (sem_wait(&detached_blocker) != 0)
        CHECK_EQ(errno, EINTR);
    atomic_fetch_add(&detached_done, 1);
    return arg;
}

static void test_detach(void)
{
    pthread_attr_t a;
    int ds = -1;
    CHECK_OK(pthread_attr_init(&a));
    CHECK_OK(pthread_attr_getdetachstate(&a, &ds));
    CHECK_EQ(ds, PTHREAD_CREATE_JOINABLE);
    CHECK_OK(pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED));
    CHECK_OK(pthread_attr_getdetachstate(&a, &ds));
    CHECK_EQ(ds, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < NDETACH; i++) {
        pthread_t t;
        if (i & 1) {
            CHECK_OK(pthread_create(&t, &a, detached_fn, NULL));
        } else {
            CHECK_OK(pthread_create(&t, NULL, detached_fn, NULL));
            CHECK_OK(pthread_detach(t));
        }
    }
    WAIT_UNTIL(atomic_load(&detached_done) == NDETACH, 20000);

    /* Joining a (still running) detached thread: glibc returns EINVAL
     * ("thread is not a joinable thread"); detaching it again also EINVAL. */
    CHECK_SYS(sem_init(&detached_blocker, 0, 0));
    pthread_t t;
    CHECK_OK(pthread_create(&t, &a, detached_block_fn, NULL));
    CHECK_RC(pthread_join(t, NULL), EINVAL);
    CHECK_RC(pthread_detach(t), EINVAL);
    /* glibc's pthread_tryjoin_np tests "still running" (EBUSY) before it
     * looks at the detach state */
    CHECK_RC(pthread_tryjoin_np(t, NULL), EBUSY);
    /* the detached thread still runs normally */
    CHECK_SYS(sem_post(&detached_blocker));
    WAIT_UNTIL(atomic_load(&detached_done) == NDETACH + 1, 20000);
    CHECK_OK(pthread_attr_destroy(&a));

    /* Joining oneself: EDEADLK. */
    CHECK_RC(pthread_join(pthread_self(), NULL), EDEADLK);

    printf("detach: %d detached threads ran; join/detach of a detached "
           "thread EINVAL; self-join EDEADLK\n", NDETACH);
}

/* --------------------------------------------- tryjoin / timedjoin */

static void test_tryjoin_timedjoin(void)
{
    sem_t *s = &blocker;
    CHECK_SYS(sem_init(&blocker, 0, 0));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, block_fn, (void *)(intptr_t)77));
    CHECK_RC(pthread_tryjoin_np(t, NULL), EBUSY);

    struct timespec dl = deadline_in(CLOCK_REALTIME, 100);
    int64_t t0 = now_ns();
    CHECK_RC(pthread_timedjoin_np(t, NULL, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_REALTIME) >= ts_to_ns(&dl));

    dl = deadline_in(CLOCK_MONOTONIC, 100);
    t0 = now_ns();
    CHECK_RC(pthread_clockjoin_np(t, NULL, CLOCK_MONOTONIC, &dl), ETIMEDOUT);
    CHECK_ELAPSED(t0, 100, 0);
    CHECK(clock_ns(CLOCK_MONOTONIC) >= ts_to_ns(&dl));

    /* still joinable after the timeouts; a timed join that succeeds */
    CHECK_RC(pthread_tryjoin_np(t, NULL), EBUSY);
    CHECK_SYS(sem_post(s));
    void *rv = NULL;
    dl = deadline_in(CLOCK_REALTIME, 30000);
    CHECK_OK(pthread_timedjoin_np(t, &rv, &dl));
    CHECK_EQ((intptr_t)rv, 77);

    /* tryjoin of a finished thread succeeds (poll until it has exited) */
    CHECK_OK(pthread_create(&t, NULL, block_fn, (void *)(intptr_t)78));
    CHECK_SYS(sem_post(s));
    int r;
    int64_t end = now_ns() + 20 * NS_PER_S;
    while ((r = pthread_tryjoin_np(t, &rv)) == EBUSY) {
        CHECK(now_ns() < end);
        sleep_ms(1);
    }
    CHECK_OK(r);
    CHECK_EQ((intptr_t)rv, 78);
    sem_destroy(&blocker);
    printf("tryjoin EBUSY, timedjoin/clockjoin ETIMEDOUT on a running "
           "thread; both succeed once it ends\n");
}

/* ------------------------------------------ stack size / getattr_np */

struct stackinfo {
    size_t want;   /* requested size, 0 for default */
    size_t use;    /* bytes of stack to actually touch */
    void *base;    /* for attr_setstack: the block given */
    size_t size;
    int ok_local;  /* local variable inside the reported stack */
    int ok_size;
};

/* Touch `n` bytes of stack in 4 KiB frames of recursion-free use. */
static __attribute__((noinline)) unsigned touch_stack(size_t n)
{
    volatile unsigned char *p = __builtin_alloca(n);
    for (size_t i = 0; i < n; i += 1024)
        p[i] = (unsigned char)i;
    unsigned s = 0;
    for (size_t i = 0; i < n; i += 1024)
        s += p[i];
    return s;
}

static void *stack_fn(void *arg)
{
    struct stackinfo *si = arg;
    int local = 0;
    pthread_attr_t a;
    CHECK_OK(pthread_getattr_np(pthread_self(), &a));
    void *addr;
    size_t size;
    CHECK_OK(pthread_attr_getstack(&a, &addr, &size));
    size_t ss = 0;
    CHECK_OK(pthread_attr_getstacksize(&a, &ss));
    CHECK_EQ(ss, size);
    int ds = -1;
    CHECK_OK(pthread_attr_getdetachstate(&a, &ds));
    CHECK_EQ(ds, PTHREAD_CREATE_JOINABLE);
    CHECK_OK(pthread_attr_destroy(&a));
    uintptr_t lo = (uintptr_t)addr, hi = lo + size, l = (uintptr_t)&local;
    si->ok_local = (l >= lo && l < hi);
    si->ok_size = si->want == 0 ? size >= 16384 : size >= si->want;
    if (si->base) {
        /* attr_setstack: the reported stack is exactly the block given */
        si->ok_size = si->ok_size && addr == si->base && size == si->size;
    }
    if (si->use)
        local = (int)touch_stack(si->use);
    return (void *)(intptr_t)(local != -1);
}

static void run_stack_case(struct stackinfo *si, pthread_attr_t *a)
{
    pthread_t t;
    void *rv;
    CHECK_OK(pthread_create(&t, a, stack_fn, si));
    CHECK_OK(pthread_join(t, &rv));
    CHECK_EQ((intptr_t)rv, 1);
    CHECK(si->ok_local);
    CHECK(si->ok_size);
}

static void test_stack(void)
{
    pthread_attr_t a;
    size_t sz = 0;

    /* default attributes */
    struct stackinfo d = {0};
    d.use = 64 * 1024;
    run_stack_case(&d, NULL);

    /* small explicit size (256 KiB), use most of it */
    CHECK_OK(pthread_attr_init(&a));
    CHECK_OK(pthread_attr_setstacksize(&a, 256 * 1024));
    CHECK_OK(pthread_attr_getstacksize(&a, &sz));
    CHECK_EQ(sz, 256 * 1024);
    struct stackinfo s1 = {.want = 256 * 1024, .use = 160 * 1024};
    run_stack_case(&s1, &a);
    CHECK_OK(pthread_attr_destroy(&a));

    /* large explicit size (32 MiB, more than the 8 MiB default), use 24 MiB */
    CHECK_OK(pthread_attr_init(&a));
    CHECK_OK(pthread_attr_setstacksize(&a, 32u << 20));
    struct stackinfo s2 = {.want = 32u << 20, .use = 24u << 20};
    run_stack_case(&s2, &a);
    CHECK_OK(pthread_attr_destroy(&a));

    /* too small a size is refused */
    CHECK_OK(pthread_attr_init(&a));
    CHECK_RC(pthread_attr_setstacksize(&a, 1024), EINVAL);
    CHECK_OK(pthread_attr_destroy(&a));

    /* caller-provided stack */
    size_t blk = 1u << 20;
    void *mem = mmap(NULL, blk, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    CHECK(mem != MAP_FAILED);
    CHECK_OK(pthread_attr_init(&a));
    CHECK_OK(pthread_attr_setstack(&a, mem, blk));
    struct stackinfo s3 = {.want = blk, .use = 512 * 1024, .base = mem,
                           .size = blk};
    run_stack_case(&s3, &a);
    CHECK_OK(pthread_attr_destroy(&a));
    munmap(mem, blk);

    /* the main thread too */
    int local;
    void *addr;
    size_t size;
    CHECK_OK(pthread_getattr_np(pthread_self(), &a));
    CHECK_OK(pthread_attr_getstack(&a, &addr, &size));
    CHECK_OK(pthread_attr_destroy(&a));
    CHECK((uintptr_t)&local >= (uintptr_t)addr &&
          (uintptr_t)&local < (uintptr_t)addr + size);

    printf("stacks: default, 256 KiB, 32 MiB and caller-provided stacks "
           "honoured; getattr_np bounds contain locals\n");
}

/* ------------------------------------------------------------ names */

static sem_t name_sem, name_sem2;
static char name_seen[32];
static char name_default[32];

static void *name_fn(void *arg)
{
    (void)arg;
    CHECK_OK(pthread_getname_np(pthread_self(), name_default,
                                sizeof name_default));
    CHECK_SYS(sem_post(&name_sem2));
    while (sem_wait(&name_sem) != 0)
        CHECK_EQ(errno, EINTR);
    /* main renamed us while we waited */
    CHECK_OK(pthread_getname_np(pthread_self(), name_seen, sizeof name_seen));
    /* rename ourselves */
    CHECK_OK(pthread_setname_np(pthread_self(), "self-named"));
    CHECK_SYS(sem_post(&name_sem2));
    while (sem_wait(&name_sem) != 0)
        CHECK_EQ(errno, EINTR);
    return NULL;
}

static void test_names(void)
{
    char mainname[32], buf[32];
    CHECK_OK(pthread_getname_np(pthread_self(), mainname, sizeof mainname));
    CHECK_SYS(sem_init(&name_sem, 0, 0));
    CHECK_SYS(sem_init(&name_sem2, 0, 0));
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, name_fn, NULL));
    while (sem_wait(&name_sem2) != 0)
        CHECK_EQ(errno, EINTR);
    /* a new thread starts with the name of the thread that created it */
    if (strcmp(name_default, mainname) != 0)
        FAIL("new thread's name '%s', main's '%s'", name_default, mainname);

    CHECK_OK(pthread_setname_np(t, "worker-7"));
    CHECK_OK(pthread_getname_np(t, buf, sizeof buf));
    CHECK(strcmp(buf, "worker-7") == 0);
    /* 15 characters is the longest name; 16 is ERANGE */
    CHECK_OK(pthread_setname_np(t, "abcdefghijklmno"));
    CHECK_RC(pthread_setname_np(t, "abcdefghijklmnop"), ERANGE);
    CHECK_OK(pthread_getname_np(t, buf, sizeof buf));
    CHECK(strcmp(buf, "abcdefghijklmno") == 0);
    /* a buffer shorter than 16 bytes is ERANGE */
    CHECK_RC(pthread_getname_np(t, buf, 15), ERANGE);
    CHECK_OK(pthread_setname_np(t, "worker-7"));
    CHECK_SYS(sem_post(&name_sem));
    while (sem_wait(&name_sem2) != 0)
        CHECK_EQ(errno, EINTR);
    CHECK(strcmp(name_seen, "worker-7") == 0);
    CHECK_OK(pthread_getname_np(t, buf, sizeof buf));
    CHECK(strcmp(buf, "self-named") == 0);
    /* main's name is untouched */
    CHECK_OK(pthread_getname_np(pthread_self(), buf, sizeof buf));
    CHECK(strcmp(buf, mainname) == 0);
    CHECK_SYS(sem_post(&name_sem));
    CHECK_OK(pthread_join(t, NULL));
    sem_destroy(&name_sem);
    sem_destroy(&name_sem2);
    printf("names: set/get round trip, inherited default, ERANGE for long "
           "names and short buffers\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    test_create_join_many();
    test_identity();
    test_detach();
    test_tryjoin_timedjoin();
    test_stack();
    test_names();
    printf("threads_basic: done\n");
    return 0;
}
