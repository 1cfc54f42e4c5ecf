/* demo.c — an ordinary pthread program, linked with vthread by its build.
 * 1,000 threads block on a condition variable; it prints how many OS
 * threads the process has meanwhile, and whether libvthread.so is mapped
 * (it must not be: vthread is inside the executable). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

enum { N = 1000 };
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int arrived, go;

static void *worker(void *arg)
{
    pthread_mutex_lock(&m);
    arrived++;
    pthread_cond_broadcast(&c);
    while (!go)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return arg;
}

int main(void)
{
    static pthread_t t[N];
    for (int i = 0; i < N; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0)
            return 2;
    pthread_mutex_lock(&m);
    while (arrived < N)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    int threads = -1, mapped = 0;
    char line[512];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        sscanf(line, "Threads: %d", &threads);
    if (f)
        fclose(f);
    f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        mapped |= strstr(line, "libvthread") != NULL;
    if (f)
        fclose(f);
    pthread_mutex_lock(&m);
    go = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    printf("threads=%d os_threads=%d libvthread_so_mapped=%d\n", N, threads,
           mapped);
    return 0;
}
