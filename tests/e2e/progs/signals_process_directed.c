/*
 * signals_process_directed - kill(getpid(), sig) reaches the only thread
 * that leaves sig unblocked.  The case lives in signals.c; this file builds
 * it alone, because vthread does not pass it yet (tests/e2e/known-gaps).
 */
#define ONLY_PROCESS_DIRECTED 1
/* the other cases are compiled but not run here */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "signals.c"
