/*
 * log.c — messages to stderr with raw writes (no stdio locks, no errno),
 * so they work from any context, including with the runtime half broken.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt.h"

static void vt_write_line(const char *prefix, const char *fmt, va_list ap)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s", prefix);
    if (n < 0)
        n = 0;
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    const char *p = buf;
    while (len > 0) {
        long w = vt_sys3(SYS_write, 2, p, len);
        if (w <= 0)
            break;
        p += w;
        len -= (size_t)w;
    }
}

void vt_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vt_write_line("vthread: fatal: ", fmt, ap);
    va_end(ap);
    abort();
}

void vt_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vt_write_line("vthread: warning: ", fmt, ap);
    va_end(ap);
}

/* A line of information ("vthread: " and fmt), nothing more: for what
 * the user asked for and should know (events a trace dropped). */
void vt_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vt_write_line("vthread: ", fmt, ap);
    va_end(ap);
}

/* Bad configuration: one line naming the variable, exit status 2 (no
 * core dump: the program never started). */
void vt_config_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vt_write_line("vthread: ", fmt, ap);
    va_end(ap);
    _exit(2);
}
