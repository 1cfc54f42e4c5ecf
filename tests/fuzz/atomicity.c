/*
 * atomicity.c — an atomicity violation: each access to the balance is
 * locked, but a deposit reads it in one critical section and writes it
 * in another, so a deposit between the two is lost.
 * Built twice: as is (the bug) and with -DFIXED (one critical section).
 * Exit 0 when the balance is right, 1 when an update was lost.
 */
#include <pthread.h>
#include <stdio.h>

#define THREADS 3
#define DEPOSITS 2

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long balance;

static void *depositor(void *arg)
{
    (void)arg;
    for (int i = 0; i < DEPOSITS; i++) {
#ifdef FIXED
        pthread_mutex_lock(&lock);
        balance += 10;
        pthread_mutex_unlock(&lock);
#else
        pthread_mutex_lock(&lock);
        long b = balance;
        pthread_mutex_unlock(&lock);
        pthread_mutex_lock(&lock);
        balance = b + 10;
        pthread_mutex_unlock(&lock);
#endif
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, depositor, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    if (balance != THREADS * DEPOSITS * 10) {
        printf("atomicity: balance %ld, expected %d\n", balance,
               THREADS * DEPOSITS * 10);
        return 1;
    }
    return 0;
}
