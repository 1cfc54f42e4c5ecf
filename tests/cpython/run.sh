#!/usr/bin/env bash
# tests/cpython/run.sh - CPython 3.11's own thread and process tests, run
# natively and under LD_PRELOAD=libvthread.so, results compared per test.
#
#   tests/cpython/run.sh [--lib PATH] [--timeout S] [--test-timeout S]
#                        [--max-hangs N] [--no-retry] [--native-only]
#                        [--build DIR] [--list] [MODULE...]
#
# Modules (default: all, in this order): test_threading test_thread
# test_threading_local test_queue test_concurrent_futures test_signal
# test_subprocess test_socketserver test_multiprocessing_forkserver, some
# of them subsets (see run.py's MODULES and README.md), and mp_smoke
# (tests/cpython/mp_smoke.py, whose stdout is compared).
#
# Uses Debian's /usr/bin/python3 (3.11) and its test package
# libpython3.11-testsuite, which is installed with apt-get when missing.
# Each module is run as `python3 -m test -v MODULE` (through
# regrtest_watchdog.py, which adds a per-test-case faulthandler timeout,
# --test-timeout, default 30 s), natively, then with LD_PRELOAD=PATH for
# the python process only; every run is under `timeout -s ABRT -k 10 S`
# (--timeout, default 300 s) in its own process group, which is killed
# afterwards.  A hung or crashed test case is recorded and the rest of the
# module runs again without it, at most --max-hangs times (default 2).
#
# A module passes when the vthread run has the same sets of passing and
# skipped test cases as the native run (cases failing natively are
# ignored, and listed).  Cases that differ (but did not hang) are run once
# more under vthread (`--matchfile`); if they then agree they are reported
# as flaky and do not fail the module (--no-retry: no second chance).
#
# Output: "ok MODULE" or "FAIL MODULE: reason" per module, "#" lines with
# the counts, timings and every differing test case (with the end of its
# traceback, or for a hang the stack of the hung test), then exactly
# "N passed, N failed".  Exit status 1 if anything failed, 2 for a usage
# error.  Logs: --build DIR (default tests/cpython/build, or
# $CPYTHON_BUILD)/MODULE/{native,vthread,vthread-retry}.N.log, and
# timings.txt.  Without a library (--lib or $VTHREAD_LIB) it runs natively
# only.

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=/usr/bin/python3

case " $* " in
    *" -h "*|*" --help "*) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac

if [ ! -x "$py" ] || ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "run.sh: needs Debian's Python 3.11 as $py (apt-get install python3)" >&2
    exit 2
fi

if [ ! -f /usr/lib/python3.11/test/test_threading.py ] ||
   [ ! -f /usr/lib/python3.11/test/_test_multiprocessing.py ]; then
    echo "run.sh: installing libpython3.11-testsuite" >&2
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    { $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
          --no-install-recommends libpython3.11-testsuite; } >&2 || {
        echo "run.sh: could not install libpython3.11-testsuite" >&2
        exit 2
    }
fi

exec "$py" "$here/run.py" "$@"
