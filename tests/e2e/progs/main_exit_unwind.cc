/*
 * main_exit_unwind: pthread_exit() in main unwinds main's stack as glibc
 * does — C++ destructors of every frame, pthread_cleanup_push handlers —
 * and the process lives on until the last thread ends (exit status 0).
 * Also pthread_cancel of the main thread (deferred, acting in sleep()),
 * run first in a child process (the same program, re-executed).
 */
#include <pthread.h>
#include <semaphore.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

static sem_t main_unwound;

struct Noisy {
    const char *name;
    ~Noisy()
    {
        std::printf("destructor: %s\n", name);
        std::fflush(stdout);
        if (name[0] == 'm') /* main's own frame: the last one */
            sem_post(&main_unwound);
    }
};

static void cleanup(void *arg)
{
    std::printf("cleanup handler: %s\n", static_cast<const char *>(arg));
    std::fflush(stdout);
}

static void *worker(void *arg)
{
    bool cancel = arg != nullptr;
    while (sem_wait(&main_unwound) != 0) {
    }
    std::printf("worker: main has unwound; %s\n",
                cancel ? "main was cancelled" : "main called pthread_exit");
    std::fflush(stdout);
    return nullptr; /* the last thread: the process exits with status 0 */
}

static volatile int depth = 2;

/* every path of deep() recurses or ends the thread: gcc calls that
 * infinite recursion */
#pragma GCC diagnostic ignored "-Winfinite-recursion"

static void deep(int n)
{
    Noisy d{n == 2 ? "deep 2" : n == 1 ? "deep 1" : "deep 0"};
    if (n) {
        deep(n - 1);
        return;
    }
    if (std::getenv("E2E_CANCEL_MAIN")) {
        pthread_cancel(pthread_self());
        for (;;)
            sleep(1); /* a cancellation point */
    }
    pthread_exit(nullptr);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (!std::getenv("E2E_CANCEL_MAIN")) {
        /* the cancellation variant first, in a child process */
        std::fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            setenv("E2E_CANCEL_MAIN", "1", 1);
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0) {
            std::printf("cancellation variant failed (status %d)\n", st);
            return 1;
        }
    }
    sem_init(&main_unwound, 0, 0);
    pthread_t t;
    bool cancel = std::getenv("E2E_CANCEL_MAIN") != nullptr;
    if (pthread_create(&t, nullptr, worker, cancel ? &t : nullptr) != 0)
        return 2;
    pthread_detach(t);
    Noisy m{"main"};
    pthread_cleanup_push(cleanup, const_cast<char *>("pushed in main"));
    deep(depth);
    pthread_cleanup_pop(0);
    std::printf("not reached\n");
    return 3;
}
