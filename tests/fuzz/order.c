/*
 * order.c — an order violation: the creator publishes the configuration
 * the new thread reads just after pthread_create, assuming the thread
 * starts later.  If the thread runs first it reads a NULL pointer and the
 * process dies of SIGSEGV.
 * With -DFIXED the configuration is published before the thread exists.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct config {
    int workers;
};
static struct config *volatile cfg;

static void *worker(void *arg)
{
    (void)arg;
    return (void *)(long)cfg->workers; /* NULL if the creator is late */
}

static void publish(void)
{
    struct config *c = malloc(sizeof *c);
    c->workers = 4;
    cfg = c;
}

int main(void)
{
    pthread_t t;
#ifdef FIXED
    publish();
    pthread_create(&t, NULL, worker, NULL);
#else
    pthread_create(&t, NULL, worker, NULL);
    publish();
#endif
    void *r;
    pthread_join(t, &r);
    if ((long)r != 4) {
        printf("order: worker saw %ld workers\n", (long)r);
        return 1;
    }
    return 0;
}
