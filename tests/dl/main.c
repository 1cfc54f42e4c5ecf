/*
 * dl/main: dlopen by bare name, found through the program's own RUNPATH
 * ($ORIGIN/plug), while 64 threads exist; every thread then sees the
 * plugin's initial-exec TLS with its initial values (its own copy).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>

enum { NT = 64 };
static sem_t go;
static int (*check)(void);
static int results[NT];

static void *worker(void *arg)
{
    int i = (int)(long)arg;
    while (sem_wait(&go) != 0) {
    }
    results[i] = check() && check() == 0; /* 42, then 43: its own */
    return NULL;
}

int main(void)
{
    sem_init(&go, 0, 0);
    pthread_t t[NT];
    for (int i = 0; i < NT; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(long)i) != 0)
            return 2;
    void *h = dlopen("libdlplugin.so", RTLD_NOW);
    if (!h) {
        printf("dlopen: %s\n", dlerror());
        return 1;
    }
    check = (int (*)(void))dlsym(h, "plugin_check");
    if (!check)
        return 3;
    for (int i = 0; i < NT; i++)
        sem_post(&go);
    int ok = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(t[i], NULL);
        ok += results[i];
    }
    printf("dlopen by bare name through RUNPATH $ORIGIN/plug: found\n");
    printf("initial-exec TLS initialised in %d of %d threads\n", ok, NT);
    printf("main thread: %s\n", check() ? "initialised" : "NOT initialised");
    return ok == NT ? 0 : 1;
}
