#!/usr/bin/python3
"""mp_smoke.py - a small deterministic check of multiprocessing.

    /usr/bin/python3 tests/cpython/mp_smoke.py [--check-timeout S]
                     [--method-timeout S] [--max-timeouts N] [METHOD...]

For each start method (fork, forkserver, spawn by default), in a process of
its own, runs these checks, each printing one deterministic line:

  queue       multiprocessing.Queue: 2 producer processes -> parent
  lock        Lock guarding a RawValue incremented by 3 processes
  event       Event ping-pong between parent and a child
  semaphore   Semaphore(0) released by a child; Semaphore(2) bounding
              the concurrency of 4 processes
  value_array Value('i') and Array('i') updated under their own locks
  pool_map    Pool(2).map over range(20), plus apply_async
  ppe         concurrent.futures.ProcessPoolExecutor(2): map and submit

Every check runs under signal.alarm(--check-timeout, default 8 s): a
check that does not finish prints "METHOD CHECK: TIMEOUT" (its stack goes
to stderr), its child processes are killed, and the next check runs.
After --max-timeouts (default 2) timeouts, the method's remaining checks
print "not run".  faulthandler.dump_traceback_later(--method-timeout,
default 20 s, exit=True) is the backstop if the alarm cannot get through
(a wait that a signal does not interrupt): it dumps every thread's stack
to stderr and ends that method's process, and this script prints
"METHOD: aborted" and goes on with the next method; 15 s later still, the
method's process group is killed (and in any case once the method's
process has ended).  So a run takes at most about 3 x 35 s, and about 2 s
when all is well.

Exit status: 0 if every check gave its expected result, 1 otherwise.
Stdout is identical from run to run when everything works (the runner
tests/cpython/run.sh compares it between a native and a vthread run);
diagnostics (tracebacks, timings) go to stderr.
"""

import faulthandler
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import concurrent.futures

METHODS = ("fork", "forkserver", "spawn")


# ---------------------------------------------------------------- workers
# (module level, so that spawn and forkserver children can import them)

def square(x):
    return x * x


def producer(q, base, n):
    for i in range(n):
        q.put(base + i)
    q.put(None)


def locked_incr(lock, val, n):
    for _ in range(n):
        with lock:
            v = val.value
            val.value = v + 1


def event_child(go, done):
    if go.wait(60):
        done.set()


def sem_releaser(sem, n):
    for _ in range(n):
        sem.release()


def sem_bounded(sem, cur, peak):
    with sem:
        with cur.get_lock():
            cur.value += 1
            if cur.value > peak.value:
                peak.value = cur.value
        time.sleep(0.05)
        with cur.get_lock():
            cur.value -= 1


def va_worker(val, arr, idx, n):
    for _ in range(n):
        with val.get_lock():
            val.value += 1
        with arr.get_lock():
            arr[idx] += 1
            arr[len(arr) - 1] += 1


# ---------------------------------------------------------------- checks

def join_all(procs):
    for p in procs:
        p.join()
    return [p.exitcode for p in procs]


def check_pool_map(ctx):
    with ctx.Pool(2) as pool:
        r = pool.map(square, range(20))
        a = pool.apply_async(pow, (2, 16)).get()
    return "map=%s sum=%d apply=%d" % (r[:5], sum(r), a)


def check_ppe(ctx):
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        r = list(ex.map(square, range(10)))
        s = ex.submit(pow, 3, 5).result()
    return "map=%s submit=%d" % (r, s)


def check_queue(ctx):
    q = ctx.Queue()
    procs = [ctx.Process(target=producer, args=(q, b, 50))
             for b in (0, 1000)]
    for p in procs:
        p.start()
    got, ends = [], 0
    while ends < len(procs):
        x = q.get()
        if x is None:
            ends += 1
        else:
            got.append(x)
    codes = join_all(procs)
    got.sort()
    return "items=%d sum=%d first=%d last=%d exit=%s" % (
        len(got), sum(got), got[0], got[-1], codes)


def check_lock(ctx):
    lock = ctx.Lock()
    val = ctx.RawValue("i", 0)
    procs = [ctx.Process(target=locked_incr, args=(lock, val, 2000))
             for _ in range(2)]
    for p in procs:
        p.start()
    locked_incr(lock, val, 2000)
    codes = join_all(procs)
    # acquire(False) on a held lock fails, then succeeds once released
    lock.acquire()
    busy = lock.acquire(False)
    lock.release()
    free = lock.acquire(False)
    lock.release()
    return "value=%d exit=%s busy=%s free=%s" % (val.value, codes, busy, free)


def check_event(ctx):
    go, done = ctx.Event(), ctx.Event()
    p = ctx.Process(target=event_child, args=(go, done))
    p.start()
    early = done.is_set()
    go.set()
    ok = done.wait(60)
    codes = join_all([p])
    return "early=%s done=%s exit=%s" % (early, ok, codes)


def check_semaphore(ctx):
    sem = ctx.Semaphore(0)
    p = ctx.Process(target=sem_releaser, args=(sem, 3))
    p.start()
    got = sum(1 for _ in range(3) if sem.acquire(timeout=60))
    extra = sem.acquire(timeout=0.05)
    codes = join_all([p])
    bsem = ctx.Semaphore(2)
    cur, peak = ctx.Value("i", 0), ctx.Value("i", 0)
    procs = [ctx.Process(target=sem_bounded, args=(bsem, cur, peak))
             for _ in range(4)]
    for q in procs:
        q.start()
    codes += join_all(procs)
    return "acquired=%d extra=%s peak<=2:%s cur=%d exit=%s" % (
        got, extra, 1 <= peak.value <= 2, cur.value, codes)


def check_value_array(ctx):
    val = ctx.Value("i", 0)
    arr = ctx.Array("i", 4)
    procs = [ctx.Process(target=va_worker, args=(val, arr, i, 500))
             for i in range(3)]
    for p in procs:
        p.start()
    codes = join_all(procs)
    return "value=%d array=%s exit=%s" % (val.value, arr[:], codes)


CHECKS = (
    ("queue", check_queue),
    ("lock", check_lock),
    ("event", check_event),
    ("semaphore", check_semaphore),
    ("value_array", check_value_array),
    ("pool_map", check_pool_map),
    ("ppe", check_ppe),
)


# ---------------------------------------------------------------- driver

class CheckTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise CheckTimeout()


def kill_children():
    for p in multiprocessing.active_children():
        try:
            p.kill()
        except Exception:
            pass


def run_method(method, args):
    """The checks of one start method, in this process."""
    faulthandler.enable()
    faulthandler.dump_traceback_later(args.method_timeout, exit=True)
    signal.signal(signal.SIGALRM, on_alarm)
    ctx = multiprocessing.get_context(method)
    print("mp_smoke: %s: process %d" % (method, os.getpid()), file=sys.stderr,
          flush=True)
    failures = timeouts = 0
    for name, fn in CHECKS:
        label = "%s %s" % (method, name)
        if timeouts >= args.max_timeouts:
            print("%s: not run (%d timeouts)" % (label, timeouts), flush=True)
            failures += 1
            continue
        t0 = time.monotonic()
        signal.alarm(args.check_timeout)
        try:
            try:
                res = fn(ctx)
            finally:
                signal.alarm(0)
        except CheckTimeout:
            timeouts += 1
            failures += 1
            res = "TIMEOUT"
            print("mp_smoke: %s timed out after %d s; stack:"
                  % (label, args.check_timeout), file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            kill_children()
        except Exception as e:
            failures += 1
            res = "ERROR %s: %s" % (type(e).__name__, e)
            traceback.print_exc(file=sys.stderr)
            kill_children()
        print("%s: %s" % (label, res), flush=True)
        print("mp_smoke: %s %.2f s" % (label, time.monotonic() - t0),
              file=sys.stderr, flush=True)

    print("%s: %d checks failed" % (method, failures), flush=True)
    sys.stderr.flush()
    if timeouts:
        # Threads of a hung pool or executor may block interpreter exit.
        kill_children()
        os._exit(1)
    # multiprocessing's atexit handlers stay under the backstop
    return 1 if failures else 0


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-timeout", type=int, default=8)
    ap.add_argument("--method-timeout", type=int, default=20)
    ap.add_argument("--max-timeouts", type=int, default=2)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("methods", nargs="*", default=list(METHODS))
    args = ap.parse_args(argv)
    for m in args.methods + ([args.one] if args.one else []):
        if m not in METHODS:
            ap.error("unknown start method %r" % m)
    if args.one:
        return run_method(args.one, args)

    status = 0
    for method in args.methods:
        cmd = [sys.executable, "-u", os.path.abspath(__file__),
               "--one", method,
               "--check-timeout", str(args.check_timeout),
               "--method-timeout", str(args.method_timeout),
               "--max-timeouts", str(args.max_timeouts)]
        t0 = time.monotonic()
        # stdout to a file, not a pipe: hung grandchildren would hold a pipe
        # open after the method's process is gone
        with tempfile.TemporaryFile() as out_f:
            child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=out_f, start_new_session=True)
            try:
                child.wait(timeout=args.method_timeout + 15)
            except subprocess.TimeoutExpired:
                print("mp_smoke: %s: killing process group %d"
                      % (method, child.pid), file=sys.stderr, flush=True)
            try:
                os.killpg(child.pid, signal.SIGKILL)    # leftover children
            except (ProcessLookupError, PermissionError):
                pass
            child.wait()
            out_f.seek(0)
            out = out_f.read()
        lines = out.decode(errors="replace").splitlines()
        for line in lines:
            print(line)
        if child.returncode != 0:
            status = 1
            if not any(l.startswith("%s: " % method) and
                       l.endswith(" checks failed") for l in lines):
                print("%s: aborted" % method)
        sys.stdout.flush()
        print("mp_smoke: %s: exit status %d after %.1f s"
              % (method, child.returncode, time.monotonic() - t0),
              file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
