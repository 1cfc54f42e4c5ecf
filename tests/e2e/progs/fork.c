/*
 * fork: fork() from a multithreaded program (from main and from a worker
 * thread) while other threads allocate memory and use locks; the child
 * creates and joins 100 threads; pthread_atfork handler order; system()
 * and popen() called from several threads at once.
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* ---------------------------------------------------------- atfork */

static char order[64];
static int order_len;
static void rec(const char *s)
{
    size_t n = strlen(s);
    if (order_len + n + 1 >= sizeof order)
        FAIL("atfork order buffer overflow");
    memcpy(order + order_len, s, n);
    order_len += (int)n;
    order[order_len++] = ' ';
    order[order_len] = 0;
}
static void prep_a(void) { rec("pA"); }
static void prep_b(void) { rec("pB"); }
static void prep_c(void) { rec("pC"); }
static void par_a(void) { rec("aA"); }
static void par_b(void) { rec("aB"); }
static void par_c(void) { rec("aC"); }
static void chi_a(void) { rec("cA"); }
static void chi_b(void) { rec("cB"); }
static void chi_c(void) { rec("cC"); }

/* ---------------------------------------------- background workers */

#define NBG 4
static atomic_int bg_stop;
static pthread_mutex_t bg_m = PTHREAD_MUTEX_INITIALIZER;
static long bg_ops;

static void *bg_worker(void *arg)
{
    (void)arg;
    unsigned x = 1;
    while (!atomic_load(&bg_stop)) {
        void *p[8];
        for (int i = 0; i < 8; i++) {
            x = x * 1103515245u + 12345u;
            p[i] = malloc(16 + (x >> 20) % 4000);
            CHECK(p[i] != NULL);
            memset(p[i], 1, 16);
        }
        CHECK_OK(pthread_mutex_lock(&bg_m));
        bg_ops++;
        CHECK_OK(pthread_mutex_unlock(&bg_m));
        for (int i = 0; i < 8; i++)
            free(p[i]);
        if ((x & 7) == 0)
            sched_yield();
        else
            sleep_ms(0);     /* a nanosleep: busy, but not hogging CPUs */
    }
    return NULL;
}

/* --------------------------------------------------- in the child */

#define CHILD_THREADS 100
static pthread_mutex_t child_m = PTHREAD_MUTEX_INITIALIZER;
static int child_count;
static void *child_thread(void *arg)
{
    intptr_t i = (intptr_t)arg;
    char *p = malloc(1000 + (size_t)i);
    CHECK(p != NULL);
    memset(p, (int)i, 1000);
    int s = p[999];
    free(p);
    /* (not bg_m: a worker of the parent may have held it at the fork, and
     * then it stays locked forever in the child) */
    CHECK_OK(pthread_mutex_lock(&child_m));
    child_count++;
    CHECK_OK(pthread_mutex_unlock(&child_m));
    return (void *)(intptr_t)(s + 1);
}

/* What every child does: start and join 100 threads, use malloc and
 * stdio; exit status 0 on success. */
static int child_work(void)
{
    static pthread_t t[CHILD_THREADS];
    CHECK_OK(pthread_mutex_init(&child_m, NULL));
    child_count = 0;
    for (intptr_t i = 0; i < CHILD_THREADS; i++)
        CHECK_OK(pthread_create(&t[i], NULL, child_thread, (void *)i));
    long sum = 0;
    for (int i = 0; i < CHILD_THREADS; i++) {
        void *rv;
        CHECK_OK(pthread_join(t[i], &rv));
        sum += (intptr_t)rv;
    }
    /* sum of (i & 0xff as signed char) + 1 for i < 100 */
    CHECK_EQ(sum, 99 * 100 / 2 + CHILD_THREADS);
    CHECK_EQ(child_count, CHILD_THREADS);
    char buf[64];
    snprintf(buf, sizeof buf, "%ld", sum);
    CHECK(strcmp(buf, "5050") == 0);
    return 0;
}

static int wait_child(pid_t pid)
{
    int st;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
        ;
    if (r != pid)
        FAIL("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(st))
        FAIL("child killed by signal %d", WTERMSIG(st));
    CHECK(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* fork from main with workers running; the child reports the atfork
 * order it saw through a pipe */
static void test_fork_from_main(int rounds)
{
    for (int r = 0; r < rounds; r++) {
        int pfd[2];
        CHECK_SYS(pipe(pfd));
        order_len = 0;
        order[0] = 0;
        fflush(stdout);
        pid_t pid = fork();
        CHECK_SYS(pid);
        if (pid == 0) {
            close(pfd[0]);
            /* atfork order as seen in the child */
            ssize_t w = write(pfd[1], order, (size_t)order_len);
            (void)w;
            close(pfd[1]);
            int rc = child_work();
            fflush(stdout);
            _exit(rc);
        }
        close(pfd[1]);
        char corder[64] = "";
        size_t got = 0;
        ssize_t n;
        while ((n = read(pfd[0], corder + got, sizeof corder - 1 - got)) > 0)
            got += (size_t)n;
        corder[got] = 0;
        close(pfd[0]);
        CHECK_EQ(wait_child(pid), 0);
        if (strcmp(order, "pC pB pA aA aB aC ") != 0)
            FAIL("parent atfork order '%s'", order);
        if (strcmp(corder, "pC pB pA cA cB cC ") != 0)
            FAIL("child atfork order '%s'", corder);
    }
    printf("fork from main x%d with %d busy threads: children ran %d "
           "threads each; atfork order parent '%s', child as expected\n",
           rounds, NBG, CHILD_THREADS, order);
}

/* fork from a non-main thread */
static void *forking_thread(void *arg)
{
    (void)arg;
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        /* the child's only thread is a copy of this one */
        int rc = child_work();
        _exit(rc == 0 ? 11 : 1);
    }
    return (void *)(intptr_t)wait_child(pid);
}

static void test_fork_from_thread(void)
{
    pthread_t t;
    void *rv;
    CHECK_OK(pthread_create(&t, NULL, forking_thread, NULL));
    CHECK_OK(pthread_join(t, &rv));
    CHECK_EQ((intptr_t)rv, 11);
    printf("fork from a worker thread: child ran %d threads, exit 11\n",
           CHILD_THREADS);
}

/* ------------------------------------------------- system and popen */

#define NSYS 4
static void *sys_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int k = 0; k < 5; k++) {
        int st = system("true");
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        char cmd[64];
        snprintf(cmd, sizeof cmd, "exit %d", 3 + id);
        st = system(cmd);
        CHECK(st != -1 && WIFEXITED(st));
        CHECK_EQ(WEXITSTATUS(st), 3 + id);

        FILE *p = popen("echo hi", "r");
        CHECK(p != NULL);
        char line[32] = "";
        CHECK(fgets(line, sizeof line, p) != NULL);
        CHECK(strcmp(line, "hi\n") == 0);
        CHECK(fgets(line, sizeof line, p) == NULL);
        st = pclose(p);
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);

        snprintf(cmd, sizeof cmd, "cat > /dev/null; exit %d", id);
        p = popen(cmd, "w");
        CHECK(p != NULL);
        CHECK(fputs("data for cat\n", p) >= 0);
        st = pclose(p);
        CHECK(st != -1 && WIFEXITED(st));
        CHECK_EQ(WEXITSTATUS(st), id);
    }
    return NULL;
}

static void test_system_popen(void)
{
    pthread_t t[NSYS];
    fflush(stdout);
    for (int i = 0; i < NSYS; i++)
        CHECK_OK(pthread_create(&t[i], NULL, sys_thread, (void *)(intptr_t)i));
    for (int i = 0; i < NSYS; i++)
        CHECK_OK(pthread_join(t[i], NULL));
    printf("system() and popen() from %d threads at once: exit codes and "
           "output right\n", NSYS);
}

int main(int argc, char **argv)
{
    (void)argc;
    E2E_INIT(argv[0]);
    /* registration order A, B, C: prepare runs C B A, parent/child A B C */
    CHECK_OK(pthread_atfork(prep_a, par_a, chi_a));
    CHECK_OK(pthread_atfork(prep_b, par_b, chi_b));
    CHECK_OK(pthread_atfork(prep_c, par_c, chi_c));

    pthread_t bg[NBG];
    for (int i = 0; i < NBG; i++)
        CHECK_OK(pthread_create(&bg[i], NULL, bg_worker, NULL));

    test_fork_from_main(10);
    test_fork_from_thread();
    test_system_popen();

    atomic_store(&bg_stop, 1);
    for (int i = 0; i < NBG; i++)
        CHECK_OK(pthread_join(bg[i], NULL));
    CHECK(bg_ops > 0);
    printf("fork: done\n");
    return 0;
}
