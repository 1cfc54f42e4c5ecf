"""CPython 3.11's thread/process test modules, natively and under vthread.

Started by run.sh (which installs libpython3.11-testsuite first); see
README.md and `run.sh --help`.
"""

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"

# The parts run, in this order: name -> (test module, regrtest arguments).
# "-m PAT" selects test cases (dropped for a selective rerun, which names
# the cases), "-i PAT" leaves cases out, "-u RES" enables a resource.
# A module split into parts is reported per part, so that hangs in its
# process tests do not hide the results of its thread tests.  The subsets
# keep both passes to a few minutes on 2 CPUs; README.md says why.
PARTS = {
    "test_threading": ("test_threading", []),
    "test_thread": ("test_thread", []),
    "test_threading_local": ("test_threading_local", []),
    "test_queue": ("test_queue", []),
    "test_concurrent_futures:threads": (
        "test_concurrent_futures", ["-m", "FutureTests", "-m", "ThreadPool*"]),
    # The "fork" process pools.  The forkserver and spawn pools run the same
    # tests (~75 s more); the start methods are covered by
    # test_multiprocessing_forkserver and mp_smoke.  The wait tests are the
    # thread pool's ones again, with processes (16 s).
    # ProcessPoolForkExecutorDeadlockTest is left out: under vthread one of
    # its worker-crash cases hangs now and then (a forked worker that does
    # not exit; issue 10's closing note), and a hang cannot be retried.
    "test_concurrent_futures:processes": (
        "test_concurrent_futures", ["-m", "ProcessPoolFork*",
                                    "-i", "ProcessPoolForkserver*",
                                    "-i", "ProcessPoolForkWaitTest",
                                    "-i", "ProcessPoolForkExecutorDeadlockTest"]),
    # test_siginterrupt_off waits 30 s for a read that must not be
    # interrupted (test_siginterrupt_on and test_without_siginterrupt stay).
    "test_signal": ("test_signal", ["-i", "test_siginterrupt_off"]),
    "test_subprocess": ("test_subprocess", []),
    "test_socketserver": ("test_socketserver", ["-u", "network"]),  # localhost
    # multiprocessing.dummy: the same API over threads
    "test_multiprocessing_forkserver:threads": (
        "test_multiprocessing_forkserver", ["-m", "WithThreads*"]),
    # processes, managers and the rest
    "test_multiprocessing_forkserver:processes": (
        "test_multiprocessing_forkserver", ["-i", "WithThreads*"]),
    "mp_smoke": (None, None),               # tests/cpython/mp_smoke.py
}


def drop_match(args):
    out, k = [], 0
    while k < len(args):
        if args[k] == "-m":
            k += 2
            continue
        out.append(args[k])
        k += 1
    return out


START_RE = re.compile(r"(?:^|\s)(\w+) \((test\.[\w.]+)\)")
DOCTEST_RE = re.compile(r"^([\w.]+) \(\)$")     # then "Doctest: NAME ... ok"
STATUS_RE = re.compile(
    r"(?:^|\s)(ok|FAIL|ERROR|expected failure|unexpected success"
    r"|skipped (?:'.*'|\".*\"))$")
RAN_RE = re.compile(r"^Ran \d+ tests? in ")
SECTION_RE = re.compile(
    r"^(FAIL|ERROR|UNEXPECTED SUCCESS): (\w+) \((test\.[\w.]+)\)")
SEP1, SEP2 = "=" * 70, "-" * 70
TIMEOUT_RE = re.compile(r"Timeout \(\d+:\d\d:\d\d\)!$")   # faulthandler

PASS = {"ok", "expected failure"}
SKIP = {"skipped"}


def category(status):
    if status is None:
        return "missing"
    if status in PASS:
        return "pass"
    if status in SKIP:
        return "skip"
    return "fail"


def test_key(name, tid):
    # "test_x (test.mod.Class.test_x)" -> test.mod.Class.test_x;
    # "setUpClass (test.mod.Class)" -> test.mod.Class.setUpClass
    return tid if tid.endswith("." + name) else tid + "." + name


# ------------------------------------------------------------ parsing

class Parsed:
    def __init__(self):
        self.status = {}        # test id -> status word
        self.order = []         # test ids in the order they started
        self.detail = {}        # test id -> traceback lines
        self.pending = None     # started, no status when the output ended
        self.complete = False   # regrtest reached "Tests result:"
        self.ran = False        # unittest printed "Ran N tests"
        self.dump = []          # faulthandler output (timeout, crash)
        self.timeout_seen = False
        self.interrupted = None  # "Test suite interrupted by signal SIGINT."


def parse_log(text):
    p = Parsed()
    lines = text.splitlines()
    cur = None          # test waiting for its status
    i, n = 0, len(lines)

    def set_status(tid, st):
        old = p.status.get(tid)
        # a subtest failure already made it fail: keep that
        if old in ("FAIL", "ERROR") and category(st) != "fail":
            return
        p.status[tid] = st

    def dump_start(line):
        if line.startswith("Tests result:"):
            p.complete = "INTERRUPTED" not in line
        elif line.startswith("Test suite interrupted"):
            p.interrupted = line.strip()
        m = TIMEOUT_RE.search(line)
        if m:
            p.timeout_seen = True
            p.dump = [line[m.start():]] + lines[i:]
        elif "Fatal Python error:" in line and not p.dump:
            p.dump = [line[line.index("Fatal Python error:"):]] + lines[i:]

    # 1. the verbose part, up to the error sections or "Ran N tests"
    while i < n:
        line = lines[i]
        i += 1
        if line == SEP1 or RAN_RE.match(line):
            i -= 1
            break
        m = DOCTEST_RE.match(line)
        if m:
            tid, k = "doctest:" + m.group(1), 2
            while tid in p.order:           # the same doctest run again
                tid = "doctest:%s#%d" % (m.group(1), k)
                k += 1
            p.order.append(tid)
            cur = tid
            continue
        m = START_RE.search(line)
        if m:
            # "test_x (id) ... STATUS", or just "test_x (id)" when a
            # docstring line follows; "  test_x (id) [msg] (k=v) ... FAIL"
            # for a subtest
            tid = test_key(m.group(1), m.group(2))
            rest = line[m.end():]
            subtest = rest.lstrip().startswith(("[", "("))
            if not subtest and tid != cur:
                if tid not in p.order:
                    p.order.append(tid)
                cur = tid
            sm = STATUS_RE.search(rest) if " ... " in rest else None
            if sm:
                st = sm.group(1)
                if st.startswith("skipped"):
                    st = "skipped"
                if not subtest or st in ("FAIL", "ERROR"):
                    set_status(tid, st)
            dump_start(line)
            continue
        if cur is not None and cur not in p.status:
            # the status after the test's own output or its docstring line
            sm = STATUS_RE.search(line)
            if sm:
                st = sm.group(1)
                set_status(cur, "skipped" if st.startswith("skipped") else st)
        dump_start(line)

    # the test that was running when the output stopped
    if cur is not None and cur not in p.status:
        p.pending = cur

    # 2. the error sections and the end
    while i < n:
        line = lines[i]
        i += 1
        if RAN_RE.match(line):
            p.ran = True
        m = SECTION_RE.match(line)
        if m:
            tid = test_key(m.group(2), m.group(3))
            # skip to the dashes, then collect until the next separator
            while i < n and lines[i] != SEP2:
                i += 1
            i += 1
            body = []
            while i < n and lines[i] not in (SEP1, SEP2):
                body.append(lines[i])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            p.detail.setdefault(tid, body)
            continue
        dump_start(line)
    return p


def excerpt_traceback(body, maxlines=7):
    """The last frame and the exception of a traceback."""
    if not body:
        return []
    last_file = None
    for j, l in enumerate(body):
        if l.startswith("  File "):
            last_file = j
    out = body[last_file:] if last_file is not None else body[-maxlines:]
    out = [l for l in out if not re.match(r"^\s*[\^~]+\s*$", l)]
    if len(out) > maxlines:
        out = out[:2] + ["..."] + out[-(maxlines - 3):]
    return out


def short_frame(line):
    # '  File "/usr/lib/python3.11/x/y.py", line 12 in f' -> 'x/y.py:12 f'
    m = re.match(r'\s*File "(.*)", line (\d+),? in (.*)$', line)
    if not m:
        return line.strip()
    path = m.group(1).replace("/usr/lib/python3.11/", "").replace(
        HERE + "/", "")
    return "%s:%s %s" % (path, m.group(2), m.group(3))


def excerpt_dump(dump, maxframes=6, maxthreads=3, label="stack of the test"):
    """From a faulthandler dump: the stack of the thread running the test
    (down to unittest's frames), and the top frames of the other threads."""
    blocks, cur = [], None
    for l in dump:
        if re.match(r"^(Current thread|Thread) 0x", l):
            cur = [l]
            blocks.append(cur)
        elif cur is not None and l.startswith("  File "):
            cur.append(l)
        elif cur is not None:
            cur = None
    if not blocks:
        return dump[:maxframes]
    test = None
    for b in blocks:
        if any("unittest/case.py" in l for l in b):
            test = b
    if test is None:
        test = blocks[-1]
    out = [dump[0]] if not re.match(r"^(Current thread|Thread) 0x", dump[0]) else []
    frames = []
    for l in test[1:]:
        if "/unittest/" in l:
            break
        frames.append(short_frame(l))
    out.append(label + ": " + " <- ".join(frames[:maxframes]))
    others = [b for b in blocks if b is not test]
    for b in others[:maxthreads]:
        out.append("other thread: " + " <- ".join(
            short_frame(l) for l in b[1:4]))
    if len(others) > maxthreads and maxthreads:
        out.append("(%d more threads)" % (len(others) - maxthreads))
    return out


# ------------------------------------------------------------ running

def now():
    return time.monotonic()


def limit_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_logged(cmd, log, timeout_s, lib, env_extra=None, stdout_file=None):
    """Run cmd (a python command line) under `timeout -s ABRT -k 10`,
    LD_PRELOAD=lib for the program only (lib None: native), in a new
    session; kill what is left of its process group afterwards.  Returns
    (exit status, seconds)."""
    tmp = tempfile.mkdtemp(prefix="vtcpy.")
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["TMPDIR"] = tmp
    if env_extra:
        env.update(env_extra)
    pre = ["env", "LD_PRELOAD=" + lib] if lib else []
    full = ["timeout", "-s", "ABRT", "-k", "10", str(timeout_s)] + pre + cmd
    t0 = now()
    with open(log, "w") as out:
        out.write("# %s%s\n" % ("LD_PRELOAD=%s " % lib if lib else "",
                                " ".join(cmd)))
        out.flush()
        err = None
        if stdout_file:
            so = open(stdout_file, "w")
            err = out
        else:
            so = out
            err = subprocess.STDOUT
        try:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=so,
                                    stderr=err, env=env, cwd=tmp,
                                    start_new_session=True,
                                    preexec_fn=limit_core)
            rc = proc.wait()
        finally:
            if stdout_file:
                so.close()
    dt = now() - t0
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # leftovers (hung children)
    except (ProcessLookupError, PermissionError):
        pass
    shutil.rmtree(tmp, ignore_errors=True)
    with open(log, "a") as out:
        out.write("\n# exit status %d after %.1f s\n" % (rc, dt))
    return rc, dt


class ModuleRun:
    """All the regrtest runs of one module in one mode (native or vthread),
    resumed after a hung or crashed test case."""

    def __init__(self):
        self.status = {}
        self.order = []
        self.detail = {}    # id -> excerpt lines
        self.hung = []      # ids that hung or crashed
        self.seconds = 0.0
        self.runs = 0
        self.gave_up = None     # reason the remaining tests were not run
        self.notes = []

    def counts(self):
        c = {"pass": 0, "skip": 0, "fail": 0}
        for st in self.status.values():
            c[category(st)] += 1
        return c

    def summary(self):
        c = self.counts()
        s = "%d passed, %d skipped, %d failed" % (c["pass"], c["skip"],
                                                  c["fail"])
        if self.hung:
            s += " (%d hung/crashed)" % len(self.hung)
        return s


class Runner:
    def __init__(self, args):
        self.a = args

    def regrtest_cmd(self, module, extra, match_file=None, ignore_file=None):
        code = ("import sys; sys.path.insert(0, %r); "
                "import regrtest_watchdog as w; del sys.path[0]; w.main()"
                % HERE)
        cmd = [PYTHON, "-u", "-c", code]
        if self.a.test_timeout > 0:
            cmd.append("--test-timeout=%d" % self.a.test_timeout)
        cmd += ["-v"] + extra
        if match_file:
            cmd += ["--matchfile", match_file]
        if ignore_file:
            cmd += ["--ignorefile", ignore_file]
        return cmd + [module]

    def run_module(self, part, module, extra, lib, tag, only=None):
        """Run a module until every test case has a result, a case hung
        --max-hangs times, or nothing progresses.  only: run just these
        test ids (a selective rerun)."""
        mdir = os.path.join(self.a.build, part.replace(":", "."))
        if only is not None:
            extra = drop_match(extra)
        os.makedirs(mdir, exist_ok=True)
        mr = ModuleRun()
        done = set()
        while True:
            mr.runs += 1
            log = os.path.join(mdir, "%s.%d.log" % (tag, mr.runs))
            match_file = ignore_file = None
            if only is not None:
                match_file = os.path.join(mdir, "%s.%d.match" % (tag, mr.runs))
                with open(match_file, "w") as f:
                    f.write("".join(t + "\n" for t in only if t not in done))
            if done:
                ignore_file = os.path.join(mdir, "%s.%d.ignore" % (tag, mr.runs))
                with open(ignore_file, "w") as f:
                    f.write("".join(t + "\n" for t in sorted(done)))
            cmd = self.regrtest_cmd(module, extra, match_file, ignore_file)
            rc, dt = run_logged(cmd, log, self.a.timeout, lib)
            mr.seconds += dt
            with open(log, errors="replace") as f:
                p = parse_log(f.read())
            for t in p.order:
                if t not in mr.order:
                    mr.order.append(t)
            for t, st in p.status.items():
                mr.status[t] = st
                done.add(t)
            for t, body in p.detail.items():
                mr.detail[t] = excerpt_traceback(body)
            if p.complete and rc != 124 and rc != 128 + 9:
                break
            # the run did not finish
            if p.timeout_seen:
                how = "hung: no result after %d s" % self.a.test_timeout
            elif p.interrupted:
                how = "crashed: %s" % p.interrupted.rstrip(".")
            elif rc in (124, 137):
                how = "hung: outer timeout (%d s)" % self.a.timeout
            elif rc < 0:
                how = "crashed: killed by signal %d" % -rc
            else:
                how = "crashed: exit status %d" % rc
            if p.pending is None or p.pending in done:
                mr.gave_up = "%s run %s outside any test case; see %s" % (
                    tag, how, os.path.relpath(log))
                tail = p.dump or open(log, errors="replace").read().splitlines()[-8:]
                mr.notes.append((None, how, excerpt_dump(tail) if p.dump else tail))
                break
            t = p.pending
            mr.status[t] = "HANG" if how.startswith("hung") else "CRASH"
            mr.hung.append(t)
            ex = excerpt_dump(p.dump) if p.dump else []
            if ex and TIMEOUT_RE.match(ex[0]):
                ex = ex[1:]
            mr.detail[t] = [how] + ex
            done.add(t)
            if len(mr.hung) >= self.a.max_hangs:
                mr.gave_up = ("gave up on the rest after %d hung/crashed "
                              "test cases" % len(mr.hung))
                break
        return mr

    # -------------------------------------------------------- regrtest module
    def check_module(self, part, module, extra):
        a = self.a
        nat = self.run_module(part, module, extra, None, "native")
        res = {"native": nat}
        if a.native_only:
            bad = [t for t in nat.order if category(nat.status.get(t)) == "fail"]
            lines = ["# native: %s (%.1f s)" % (nat.summary(), nat.seconds)]
            if nat.gave_up:
                lines.append("# native: " + nat.gave_up)
            for t in bad:
                lines.append("# %s: %s" % (t, nat.status[t]))
                lines += ["#   " + l for l in nat.detail.get(t, [])]
            ok = not bad and not nat.gave_up
            return ok, "%d tests fail natively" % len(bad), lines, res
        vt = self.run_module(part, module, extra, a.lib, "vthread")
        res["vthread"] = vt

        native_fail = [t for t in nat.order
                       if category(nat.status.get(t)) == "fail"]
        ids = list(nat.order) + [t for t in vt.order if t not in nat.order]

        def differing(v):
            out = []
            for t in ids:
                nc = category(nat.status.get(t))
                if nc in ("fail", "missing"):
                    continue
                if category(v.get(t)) != nc:
                    out.append(t)
            return out

        diffs = differing(vt.status)
        final = dict(vt.status)
        # selective rerun of the differing tests that did not hang (a hang
        # costs --test-timeout again) and were not left out after hangs
        retry = [t for t in diffs if t in vt.status and vt.status[t] != "HANG"]
        flaky = []
        retry_s = 0.0
        if retry and a.retry:
            rr = self.run_module(part, module, extra, a.lib, "vthread-retry",
                                 only=retry)
            retry_s = rr.seconds
            for t in retry:
                if category(rr.status.get(t)) == category(nat.status.get(t)):
                    final[t] = rr.status[t]
                    flaky.append(t)
            diffs = differing(final)
        vt.seconds_retry = retry_s

        def desc(st):
            return st if st else "not run"

        lines = ["# native: %s (%.1f s)" % (nat.summary(), nat.seconds),
                 "# vthread: %s (%.1f s%s)" % (
                     vt.summary(), vt.seconds,
                     ", selective rerun %.1f s" % retry_s if retry_s else "")]
        if nat.gave_up:
            lines.append("# native: " + nat.gave_up)
        if vt.gave_up:
            lines.append("# vthread: " + vt.gave_up)
        for who, m in (("native", nat), ("vthread", vt)):
            for _, how, tail in m.notes:
                lines.append("# %s run %s:" % (who, how))
                lines += ["#   " + l for l in tail[:10]]
        not_run = [t for t in diffs if t not in vt.status]
        shown = [t for t in diffs if t in vt.status]
        for t in shown:
            lines.append("# %s: native %s, vthread %s%s" % (
                t, nat.status[t], desc(vt.status.get(t)),
                " (and %s on rerun)" % desc(final.get(t))
                if t in retry and a.retry else ""))
            lines += ["#   " + l for l in vt.detail.get(t, [])]
        if not_run:
            lines.append("# %d test(s) passing natively were not run under "
                         "vthread: %s" % (len(not_run), " ".join(
                             x.split(".", 2)[-1] for x in not_run[:8])
                             + (" ..." if len(not_run) > 8 else "")))
        for t in flaky:
            lines.append("# flaky under vthread (passed on rerun): %s (%s "
                         "first)" % (t, vt.status[t]))
            lines += ["#   " + l for l in vt.detail.get(t, [])[-3:]]
        for t in native_fail:
            lines.append("# fails natively too (ignored): %s: %s" % (
                t, nat.status[t]))
            lines += ["#   " + l for l in nat.detail.get(t, [])[-3:]]

        ok = not diffs
        reason = ""
        if not ok:
            kinds = {}
            for t in diffs:
                k = desc(final.get(t))
                kinds[k] = kinds.get(k, 0) + 1
            reason = "%d test(s) differ (vthread: %s)" % (
                len(diffs), ", ".join("%d %s" % (v, k)
                                      for k, v in sorted(kinds.items())))
        return ok, reason, lines, res

    # -------------------------------------------------------- mp_smoke
    def check_smoke(self):
        a = self.a
        mdir = os.path.join(a.build, "mp_smoke")
        os.makedirs(mdir, exist_ok=True)
        cmd = [PYTHON, "-u", os.path.join(HERE, "mp_smoke.py")]
        out = {}
        res = {}
        for tag, lib in (("native", None), ("vthread", a.lib)):
            if tag == "vthread" and a.native_only:
                break
            log = os.path.join(mdir, tag + ".stderr")
            so = os.path.join(mdir, tag + ".stdout")
            rc, dt = run_logged(cmd, log, a.timeout, lib, stdout_file=so)
            with open(so, errors="replace") as f:
                stdout = f.read().splitlines()
            with open(log, errors="replace") as f:
                stderr = f.read().splitlines()
            out[tag] = (rc, stdout, stderr)
            m = ModuleRun()
            m.seconds = dt
            res[tag] = m
        nrc, nout, nerr = out["native"]
        lines = ["# native: exit %d (%.1f s)" % (nrc, res["native"].seconds)]
        if nrc != 0:
            return False, "native run exited with %d" % nrc, lines + [
                "#   " + l for l in (nout + nerr)[-10:]], res
        if a.native_only:
            return True, "", lines, res
        vrc, vout, verr = out["vthread"]
        lines.append("# vthread: exit %d (%.1f s)" % (vrc,
                                                      res["vthread"].seconds))
        if vrc == 0 and vout == nout:
            return True, "", lines, res
        # compare line by line by label ("fork lock: ...")
        def label(l):
            return l.split(": ", 1)[0]
        vmap = {label(l): l for l in vout}
        nlab = [label(l) for l in nout]
        diff = [(n, vmap.get(label(n))) for n in nout
                if vmap.get(label(n)) != n]
        extra = [l for l in vout if label(l) not in nlab]
        reason = ", ".join(x for x in (
            "exit status %d" % vrc if vrc else "",
            "%d of %d stdout lines differ" % (len(diff), len(nout))
            if diff else "",
            "%d extra line(s)" % len(extra) if extra else "") if x)
        missing = []
        for n, v in diff:
            if v is None:
                missing.append(label(n))
            else:
                lines.append("# %s: vthread %r, native %r" % (
                    label(n), v.split(": ", 1)[-1], n.split(": ", 1)[-1]))
        if missing:
            lines.append("# no vthread result: " + ", ".join(missing))
        for l in extra:
            lines.append("# vthread only: " + l)
        # where the timed-out checks were stuck
        method = "?"
        for j, l in enumerate(verr):
            m = re.match(r"mp_smoke: (fork|forkserver|spawn)\b", l)
            if m:
                method = m.group(1)
            if l.startswith("mp_smoke:") and "timed out" in l:
                frames = []
                for x in verr[j + 1:]:
                    if x.startswith("CheckTimeout"):
                        break
                    if x.startswith("  File ") and "on_alarm" not in x:
                        frames.append(short_frame(x))
                lines.append("# %s, in: %s" % (
                    l[len("mp_smoke: "):].replace("; stack:", ""),
                    " <- ".join(reversed(frames[-3:]))))
            elif TIMEOUT_RE.match(l) or l.startswith("Fatal Python error"):
                ex = excerpt_dump(verr[j:], label="main thread",
                                  maxthreads=0)
                lines.append("# %s: %s (faulthandler) %s" % (method, l,
                                                             ex[-1]))
        return False, reason, lines, res


def main(argv):
    ap = argparse.ArgumentParser(prog="run.sh", add_help=True)
    ap.add_argument("--lib", default=os.environ.get("VTHREAD_LIB") or None)
    ap.add_argument("--timeout", type=int,
                    default=int(os.environ.get("CPYTHON_TIMEOUT", "300")))
    ap.add_argument("--test-timeout", type=int,
                    default=int(os.environ.get("CPYTHON_TEST_TIMEOUT", "30")))
    ap.add_argument("--max-hangs", type=int, default=2)
    ap.add_argument("--no-retry", dest="retry", action="store_false")
    ap.add_argument("--native-only", action="store_true")
    ap.add_argument("--build", default=os.environ.get(
        "CPYTHON_BUILD", os.path.join(HERE, "build")))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("modules", nargs="*")
    a = ap.parse_args(argv)
    if a.list:
        for m in PARTS:
            print(m)
        return 0
    if a.timeout < 1 or a.test_timeout < 0 or a.max_hangs < 1:
        ap.error("bad --timeout, --test-timeout or --max-hangs")
    parts = []
    for m in a.modules or list(PARTS):
        sel = [p for p in PARTS if p == m or p.split(":")[0] == m]
        if not sel:
            ap.error("unknown module %s (--list lists them)" % m)
        parts += [p for p in sel if p not in parts]
    if not a.native_only:
        if not a.lib:
            print("run.sh: no library (--lib PATH or $VTHREAD_LIB): "
                  "running natively only")
            a.native_only = True
        elif not os.path.isfile(a.lib):
            ap.error("no library file %s" % a.lib)
        else:
            a.lib = os.path.abspath(a.lib)
    a.build = os.path.abspath(a.build)
    os.makedirs(a.build, exist_ok=True)
    r = Runner(a)
    passed = failed = 0
    timing = []
    for m in parts:
        module, extra = PARTS[m]
        if module is None:
            ok, reason, lines, res = r.check_smoke()
        else:
            ok, reason, lines, res = r.check_module(m, module, extra)
        print(("ok %s" % m) if ok else ("FAIL %s: %s" % (m, reason)))
        for l in lines:
            print(l)
        sys.stdout.flush()
        if ok:
            passed += 1
        else:
            failed += 1
        timing.append("%-34s native %6.1f s  vthread %6.1f s%s" % (
            m, res["native"].seconds,
            res["vthread"].seconds if "vthread" in res else 0.0,
            "  (+%.1f s rerun)" % res["vthread"].seconds_retry
            if getattr(res.get("vthread"), "seconds_retry", 0) else ""))
    with open(os.path.join(a.build, "timings.txt"), "w") as f:
        f.write("\n".join(timing) + "\n")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
