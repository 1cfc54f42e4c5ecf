/*
 * probes.h — USDT (SDT) probes for perf and systemtap, provider "vthread".
 *
 * Compiled in when configure finds sys/sdt.h (--enable-sdt=auto, the
 * default; systemtap-sdt-dev).  A probe is one nop in the code and a note
 * in the ELF file: free when nobody listens.  See docs/perf.md.
 *
 *   g_create(g_id, creator_g_id)   g_exit(g_id)
 *   park(g_id, addr)               unpark(g_id)        (G made runnable)
 *   steal(thief_p, victim_p, n)    handoff(p)          (P given away)
 *   retake(p, kind)                preempt(g_id)       (kind 0 syscall,
 *                                                       1 blocked, 2 busy)
 */
#ifndef VTHREAD_PROBES_H
#define VTHREAD_PROBES_H

#ifdef VT_HAVE_SDT
#include <sys/sdt.h>
#define VT_PROBE1(n, a) DTRACE_PROBE1(vthread, n, a)
#define VT_PROBE2(n, a, b) DTRACE_PROBE2(vthread, n, a, b)
#define VT_PROBE3(n, a, b, c) DTRACE_PROBE3(vthread, n, a, b, c)
#else
#define VT_PROBE1(n, a) ((void)0)
#define VT_PROBE2(n, a, b) ((void)0)
#define VT_PROBE3(n, a, b, c) ((void)0)
#endif

#endif
