"""CPython's regression-test driver, as `python3 -m test`, plus a per-test
watchdog.

run.py starts it as

    python3 -u -c 'import sys; sys.path.insert(0, DIR); \
        import regrtest_watchdog as w; del sys.path[0]; w.main()' \
        [--test-timeout=S] REGRTEST-ARGS...

(`-c` rather than a script path, so that, as under `-m test`, the
children that multiprocessing spawns do not re-import a main module).

regrtest's own --timeout applies to a whole test module; this arms
faulthandler.dump_traceback_later(S, exit=True) at the start of every test
case (unittest.TextTestResult.startTest) and cancels it when the case stops,
so a hung case prints every thread's stack and ends the process after S
seconds; run.py then knows which case hung (the last one started) and runs
the rest of the module again without it.
"""

import faulthandler
import sys


def main():
    timeout = 0.0
    args = sys.argv[1:]
    if args and args[0].startswith("--test-timeout="):
        timeout = float(args.pop(0).split("=", 1)[1])
    sys.argv[1:] = args
    if timeout > 0:
        import unittest
        cls = unittest.TextTestResult
        orig_start, orig_stop = cls.startTest, cls.stopTest

        def startTest(self, test):
            faulthandler.dump_traceback_later(timeout, exit=True)
            orig_start(self, test)

        def stopTest(self, test):
            orig_stop(self, test)
            faulthandler.cancel_dump_traceback_later()

        cls.startTest, cls.stopTest = startTest, stopTest

    from test.libregrtest import main as regrtest_main
    regrtest_main()
