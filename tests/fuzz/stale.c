/*
 * stale.c — a stale snapshot, a bug that needs one thread to run far
 * ahead of another: the reader notes which ring slot holds the newest
 * value under the lock, lets the lock go, and reads that slot later,
 * assuming the writer cannot have gone round the whole ring (RING
 * updates) meanwhile.  Natively the writer never runs RING critical
 * sections between two of the reader's.  A scheduler switching at random
 * at every point rarely lets it either (about 2^-2RING); PCT's priorities
 * let one thread run on for as long as it can (docs/fuzzing.md).
 * With -DFIXED the reader reads the slot while still holding the lock.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>

#define RING 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t started;
static long ring[RING];
static long head; /* updates made; the newest is ring[(head - 1) % RING] */

static void update(void)
{
    pthread_mutex_lock(&lock);
    ring[head % RING] = head;
    head++;
    pthread_mutex_unlock(&lock);
}

static void *writer(void *arg)
{
    (void)arg;
    update();
    sem_post(&started);
    for (int i = 0; i < 2 * RING; i++)
        update();
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    sem_wait(&started);
    pthread_mutex_lock(&lock);
    long h = head;
    long slot = (h - 1) % RING;
#ifdef FIXED
    long v = ring[slot];
    pthread_mutex_unlock(&lock);
#else
    pthread_mutex_unlock(&lock);
    pthread_mutex_lock(&lock);
    long v = ring[slot];
    pthread_mutex_unlock(&lock);
#endif
    return (void *)(long)(v != h - 1); /* overwritten: the writer lapped us */
}

int main(void)
{
    pthread_t r, w;
    sem_init(&started, 0, 0);
    pthread_create(&r, NULL, reader, NULL);
    pthread_create(&w, NULL, writer, NULL);
    void *bad;
    pthread_join(r, &bad);
    pthread_join(w, NULL);
    if (bad) {
        printf("stale: the reader read a slot the writer had reused\n");
        return 1;
    }
    return 0;
}
