/*
 * gendata - write a deterministic, partly compressible text file for the
 * Debian-program tests (tests/e2e/debian.sh).
 *
 *   gendata MEGABYTES > file
 *
 * Lines of space-separated fields: dictionary words (compressible), a
 * decimal number, random hex and base64-like tokens (barely compressible),
 * and now and then a repeat of an earlier line (duplicates for sort).  The
 * same size always gives the same bytes: a fixed-seed xorshift generator,
 * no locale, no time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    /* xorshift64* */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
}

static const char *const words[] = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    "hotel", "india", "juliet", "kilo", "lima", "mike", "november", "oscar",
    "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
    "whiskey", "xray", "yankee", "zulu", "thread", "mutex", "condition",
    "variable", "scheduler", "goroutine", "processor", "machine", "stack",
    "signal", "futex", "barrier", "semaphore", "pipe", "socket", "poll",
    "epoll", "timer", "sleep", "wake", "park", "unpark", "yield", "spin",
    "lock", "unlock", "wait", "notify", "broadcast", "join", "detach",
    "cancel", "exit", "fork", "exec", "clone", "preempt", "migrate",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define KEEP 512

int main(int argc, char **argv)
{
    if (argc != 2 || atol(argv[1]) <= 0) {
        fprintf(stderr, "usage: gendata MEGABYTES\n");
        return 2;
    }
    unsigned long long limit = (unsigned long long)atol(argv[1]) << 20;
    unsigned long long written = 0;
    static char kept[KEEP][256];
    int nkept = 0;
    char line[256];
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);

    while (written < limit) {
        uint64_t r = next();
        int len = 0;
        unsigned kind = (unsigned)(r % 100);
        if (kind < 8 && nkept > 0) {
            /* repeat an earlier line */
            memcpy(line, kept[(r >> 8) % (uint64_t)nkept], sizeof line);
            len = (int)strlen(line);
        } else {
            int nw = 2 + (int)((r >> 8) % 8);
            for (int i = 0; i < nw; i++) {
                const char *w = words[next() % NWORDS];
                len += snprintf(line + len, sizeof line - (size_t)len, "%s%s",
                                i ? " " : "", w);
            }
            len += snprintf(line + len, sizeof line - (size_t)len, " %llu",
                            (unsigned long long)(next() % 1000000));
            if (kind < 50) {
                /* a random hex token */
                uint64_t h = next();
                len += snprintf(line + len, sizeof line - (size_t)len,
                                " %016llx", (unsigned long long)h);
            }
            if (kind >= 35 && kind < 65) {
                /* a random base64-ish token */
                int n = 8 + (int)(next() % 40);
                line[len++] = ' ';
                for (int i = 0; i < n; i++)
                    line[len++] = b64[next() % 64];
                line[len] = 0;
            }
            if (nkept < KEEP)
                memcpy(kept[nkept++], line, (size_t)len + 1);
            else if ((r >> 40) % 16 == 0)
                memcpy(kept[(r >> 20) % KEEP], line, (size_t)len + 1);
        }
        line[len++] = '\n';
        if (fwrite(line, 1, (size_t)len, stdout) != (size_t)len) {
            perror("gendata: write");
            return 1;
        }
        written += (unsigned long long)len;
    }
    if (fflush(stdout) != 0) {
        perror("gendata: write");
        return 1;
    }
    return 0;
}
