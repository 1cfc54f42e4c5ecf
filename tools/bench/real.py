"""Real programs for the vthread benchmark suite (used by tools/bench/run).

Two kinds of case:

  * "stat" cases (pigz, xz, zstd, sort, git): one command, run natively and
    under the preload by tools/vthread-stat --json -r 1 (one call per round,
    native first then vthread).  Every run's stdout must hash to a reference
    that was verified once (decompressed and compared with the input, or
    computed independently), and its exit status must be 0.  Without a
    library (--modes native, or none built) the native run is measured here
    with wait4() instead.
  * "server" cases (redis, memcached): the server runs natively or under the
    preload, the load generator (redis-benchmark, memaslap) always natively
    (no LD_PRELOAD).  Requests/s come from the load generator; the server's
    context switches and CPU from the wait4() rusage of the server process
    (this runner is its parent); its OS threads are sampled every 10 ms.
    After the load the server's state is checked over the wire.

Inputs are generated deterministically in <build>/real/ (no network) and
cached.  A program that is not installed gives "n/a" rows with a note.
Standard library only.
"""

import gzip
import hashlib
import itertools
import json
import lzma
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

KIB = 1024
MIB = 1024 * 1024
THREADS = 4          # -p / -T / --parallel / --threads / io-threads / -t
GEN_VERSION = 1      # bump when the generators change (new file names)

# Sizes per profile.  Default: each run takes 1-3 s natively on the 2-CPU
# development VM.
SIZES = {
    "smoke": dict(text=1 * MIB, sort_text=3 * MIB, xz_text=256 * KIB, xz_block="32KiB",
                  zstd_block="512KiB", git=(40, 20, 5), redis_n=100,
                  memc_ops=3200),
    "quick": dict(text=8 * MIB, sort_text=6 * MIB, xz_text=2 * MIB, xz_block="256KiB",
                  zstd_block="1MiB", git=(200, 100, 20), redis_n=500,
                  memc_ops=32000),
    "default": dict(text=64 * MIB, sort_text=32 * MIB, xz_text=8 * MIB, xz_block="1MiB",
                    zstd_block="2MiB", git=(500, 300, 30), redis_n=2000,
                    memc_ops=200000),
}

REDIS_CLIENTS = 50
REDIS_TESTS = ("set", "get", "incr")
MEMC_CLIENT_THREADS = 2
MEMC_CONCURRENCY = 16   # memaslap runs ops // concurrency per connection:
                        # keep memc_ops a multiple of it
START_TIMEOUT = 10.0     # seconds for a server to answer its first request
STOP_TIMEOUT = 10.0      # seconds for a server to exit once asked to


class RealError(Exception):
    """Preparation failed (a broken reference, a generator error)."""


def fmt_size(n):
    if n % MIB == 0:
        return "%d MiB" % (n // MIB)
    return "%d KiB" % (n // KIB)


# --------------------------------------------------------------------------
# Deterministic inputs
# --------------------------------------------------------------------------

def _atomic_write(path, data):
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def gen_text(path, nbytes, seed, words_per_line=(3, 16)):
    """Text-like lines: a number and 3-16 words drawn (Zipf-like) from a
    vocabulary of 8,000 made-up words.  Compresses about 3:1."""
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return
    rnd = random.Random(seed)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    lw = [12, 9, 8, 7.5, 7, 6.7, 6.3, 6, 5.9, 4.3, 4, 2.8, 2.8, 2.4, 2.4,
          2.2, 2, 2, 1.5, 1, 0.8, 0.2, 0.15, 0.1, 0.1, 0.07]
    vocab, seen = [], set()
    while len(vocab) < 8000:
        w = "".join(rnd.choices(letters, weights=lw, k=rnd.randint(2, 11)))
        if w not in seen:
            seen.add(w)
            vocab.append(w)
    cum = list(itertools.accumulate(1.0 / (i + 1) ** 1.05
                                    for i in range(len(vocab))))
    out = bytearray()
    while len(out) < nbytes:
        words = rnd.choices(vocab, cum_weights=cum, k=20000)
        parts, i = [], 0
        while True:
            n = rnd.randint(*words_per_line)
            if i + n > len(words):
                break
            parts.append("%d %s\n" % (rnd.randrange(1000000),
                                      " ".join(words[i:i + n])))
            i += n
        out += "".join(parts).encode()
    data = bytes(out[:nbytes])
    data = data[:data.rindex(b"\n") + 1]  # whole lines only
    _atomic_write(path, data)


def _fast_import_stream(nfiles, ncommits, per_commit, seed):
    """A history of ncommits commits over nfiles text files; each commit
    after the first edits per_commit files a little (so the pack is mostly
    deltas, which index-pack resolves in parallel)."""
    rnd = random.Random(seed)
    words = ["w%d" % i for i in range(3000)]

    def line():
        return " ".join(rnd.choices(words, k=rnd.randint(5, 14)))
    files = [[line() for _ in range(rnd.randint(200, 600))]
             for _ in range(nfiles)]
    out = []
    for c in range(ncommits):
        touched = (range(nfiles) if c == 0 else
                   sorted(rnd.sample(range(nfiles), per_commit)))
        msg = b"commit %d\n" % c
        out.append(b"commit refs/heads/main\nmark :%d\n"
                   b"committer Bench <bench@example.invalid> %d +0000\n"
                   b"data %d\n%s" % (c + 1, 1700000000 + 60 * c, len(msg),
                                     msg))
        if c:
            out.append(b"from :%d\n" % c)
        for f in touched:
            lines = files[f]
            if c:
                for _ in range(rnd.randint(1, 6)):
                    j = rnd.randrange(len(lines))
                    r = rnd.random()
                    if r < 0.4:
                        lines[j] = line()
                    elif r < 0.7:
                        lines.insert(j, line())
                    elif len(lines) > 50:
                        del lines[j]
            blob = ("\n".join(lines) + "\n").encode()
            out.append(b"M 100644 inline d%02d/f%04d.txt\ndata %d\n" %
                       (f % 50, f, len(blob)))
            out.append(blob)
            out.append(b"\n")
    return b"".join(out)


def gen_git_pack(top, nfiles, ncommits, per_commit, env):
    """A bare repository with one pack; returns the pack's path."""
    done = os.path.join(top, "done")
    repo = os.path.join(top, "repo.git")
    if os.path.exists(done):
        return open(done).read().strip()
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)

    def git(*args, **kw):
        r = subprocess.run(["git", "-c", "gc.auto=0", "-C", repo] +
                           list(args), env=env, capture_output=True, **kw)
        if r.returncode != 0:
            raise RealError("git %s failed: %s" % (
                args[0], r.stderr.decode(errors="replace").strip()[-300:]))
        return r
    r = subprocess.run(["git", "init", "-q", "--bare", repo], env=env,
                       capture_output=True)
    if r.returncode != 0:
        raise RealError("git init failed: %s" % r.stderr.decode().strip())
    stream = _fast_import_stream(nfiles, ncommits, per_commit, seed=2)
    # No compression and no deltas while importing (fast); the repack below
    # makes the real pack.
    git("-c", "pack.compression=0", "fast-import", "--quiet",
        "--big-file-threshold=1k", input=stream)
    git("-c", "repack.writeBitmaps=false", "repack", "-a", "-d", "-F", "-q",
        "--window=10", "--depth=50")
    packdir = os.path.join(repo, "objects", "pack")
    packs = [p for p in os.listdir(packdir) if p.endswith(".pack")]
    if len(packs) != 1:
        raise RealError("expected one pack in %s, found %d" % (packdir,
                                                               len(packs)))
    pack = os.path.join(packdir, packs[0])
    _atomic_write(done, pack.encode() + b"\n")
    return pack


# --------------------------------------------------------------------------
# Case definitions
# --------------------------------------------------------------------------

class RealCase:
    """What a real-program Instance needs besides its metrics."""

    def __init__(self, kind, programs, install):
        self.kind = kind            # "stat" | "server"
        self.programs = programs    # executables that must be in PATH
        self.install = install      # Debian packages providing them
        self.na = None              # reason when not available
        self.prep_error = None
        self.cmd = None             # stat: the measured command
        self.env_extra = {}
        self.ref_sha = None         # stat: expected stdout sha256
        self.input_bytes = 0        # stat: for MB/s
        self.paths = {}             # resolved programs

    def check_available(self):
        missing = []
        for p in self.programs:
            alts = p if isinstance(p, tuple) else (p,)
            found = next((shutil.which(a) for a in alts if shutil.which(a)),
                         None)
            if found:
                self.paths[alts[0]] = found
            else:
                missing.append("/".join(alts))
        if missing:
            self.na = "%s not installed (apt-get install %s)" % (
                ", ".join(missing), " ".join(self.install))
        return self.na is None


STAT_METRIC_KEYS = ("wall_s", "mb_per_s", "ctx_switches", "cpu_s",
                    "peak_threads")
SERVER_METRIC_KEYS = ("rps", "ctx_switches", "cpu_s", "peak_threads")


def case_defs(profile):
    """name -> (label, RealCase, throughput label).  Commands are filled in
    by prepare() (they need the generated inputs)."""
    S = SIZES[profile]
    gf, gc, gp = S["git"]
    return {
        "pigz": ("pigz -p%d -6 (%s)" % (THREADS, fmt_size(S["text"])),
                 RealCase("stat", ["pigz"], ["pigz"]), "input MB/s"),
        "xz": ("xz -T%d -3 (%s)" % (THREADS, fmt_size(S["xz_text"])),
               RealCase("stat", ["xz"], ["xz-utils"]), "input MB/s"),
        "zstd": ("zstd -T%d -7 (%s)" % (THREADS, fmt_size(S["text"])),
                 RealCase("stat", ["zstd"], ["zstd"]), "input MB/s"),
        "sort": ("sort --parallel=%d -k2,2 -k1,1n (%s)" % (
            THREADS, fmt_size(S["sort_text"])),
                 RealCase("stat", ["sort"], ["coreutils"]), "input MB/s"),
        "git": ("git index-pack --threads=%d (%d commits)" % (THREADS, gc),
                RealCase("stat", ["git"], ["git"]), "pack MB/s"),
        "redis": ("redis io-threads %d (%dx%d req, -c %d)" % (
            THREADS, len(REDIS_TESTS), S["redis_n"], REDIS_CLIENTS),
            RealCase("server", ["redis-server", "redis-benchmark"],
                     ["redis-server", "redis-tools"]), "requests/s"),
        "memcached": ("memcached -t %d (%d ops, memaslap)" % (
            THREADS, S["memc_ops"]),
            RealCase("server", ["memcached", ("memcaslap", "memaslap")],
                     ["memcached", "libmemcached-tools"]), "requests/s"),
    }


# --------------------------------------------------------------------------
# Preparation: inputs and verified references
# --------------------------------------------------------------------------

def _sha(data):
    return hashlib.sha256(data).hexdigest()


class Refs:
    """Cache of verified reference hashes, keyed by everything they depend
    on (command, program binary, input files)."""

    def __init__(self, path):
        self.path = path
        try:
            self.d = json.load(open(path))
        except (OSError, ValueError):
            self.d = {}

    @staticmethod
    def key(cmd, files):
        parts = list(cmd)
        for f in files:
            st = os.stat(f)
            parts.append("%s:%d:%d" % (f, st.st_size, st.st_mtime_ns))
        return "\x1f".join(parts)

    def get(self, key):
        return self.d.get(key)

    def put(self, key, sha):
        self.d[key] = sha
        _atomic_write(self.path, json.dumps(self.d, indent=0).encode())


def _native_output(cmd, env, timeout):
    r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise RealError("reference run of %s exited %d: %s" % (
            cmd[0], r.returncode,
            r.stderr.decode(errors="replace").strip()[-300:]))
    return r.stdout


def prepare(name, rc, profile, build_dir, base_env, log, timeout):
    """Generate inputs, fill rc.cmd / rc.ref_sha / rc.input_bytes."""
    S = SIZES[profile]
    top = os.path.join(build_dir, "real")
    os.makedirs(top, exist_ok=True)
    env = dict(base_env, LC_ALL="C")
    rc.env_extra = {"LC_ALL": "C"}
    if rc.kind == "server":
        return
    refs = Refs(os.path.join(top, "refs.json"))

    def text(size, seed, words_per_line=(3, 16)):
        p = os.path.join(top, "text-v%d-s%d-w%d-%d-%d.txt" % (
            GEN_VERSION, seed, words_per_line[0], words_per_line[1], size))
        if not os.path.exists(p):
            log("real: generating %s" % p)
            gen_text(p, size, seed, words_per_line)
        return p

    P = rc.paths
    if name == "pigz":
        f = text(S["text"], 1)
        rc.cmd = [P["pigz"], "-p", str(THREADS), "-6", "-n", "-c", f]
        files, verify = [f], lambda out: gzip.decompress(out) == _read(f)
    elif name == "xz":
        f = text(S["xz_text"], 3)
        rc.cmd = [P["xz"], "-T%d" % THREADS, "-3",
                  "--block-size=%s" % S["xz_block"], "-c", f]
        files, verify = [f], lambda out: lzma.decompress(out) == _read(f)
    elif name == "zstd":
        f = text(S["text"], 1)
        rc.cmd = [P["zstd"], "-q", "-T%d" % THREADS, "-7",
                  "-B%s" % S["zstd_block"], "-c", f]

        def verify(out):
            d = subprocess.run([P["zstd"], "-q", "-d", "-c"], input=out,
                               capture_output=True, env=env, timeout=timeout)
            return d.returncode == 0 and d.stdout == _read(f)
        files = [f]
    elif name == "sort":
        # Short lines ("<number> <word>"): GNU sort only splits the work
        # between threads for >= 128 Ki lines per split.
        f = text(S["sort_text"], 4, (1, 2))
        rc.cmd = [P["sort"], "--parallel=%d" % THREADS, "-S", "512M",
                  "-T", top, "-k2,2", "-k1,1n", f]
        files, verify = [f], None
    elif name == "git":
        gf, gc, gp = S["git"]
        gdir = os.path.join(top, "git-v%d-%d-%d-%d" % (GEN_VERSION, gf, gc,
                                                        gp))
        if not os.path.exists(os.path.join(gdir, "done")):
            log("real: generating a git repository in %s" % gdir)
        pack = gen_git_pack(gdir, gf, gc, gp, env)
        # --verify: index the pack again and die unless the .idx it computes
        # is byte-identical to the existing one (written by pack-objects).
        rc.cmd = [P["git"], "-C", os.path.join(gdir, "repo.git"),
                  "index-pack", "--threads=%d" % THREADS, "--verify", pack]
        files, verify = [pack], None
        f = pack
    else:
        raise RealError("unknown real case %s" % name)
    rc.input_bytes = os.path.getsize(f)

    key = Refs.key(rc.cmd + ["prog:%s:%d" % (rc.cmd[0], os.stat(
        rc.cmd[0]).st_mtime_ns)], files)
    sha = refs.get(key)
    if sha is None:
        log("real: verifying a reference run of %s" % name)
        if name == "sort":
            # Computed without sort(1).  LC_ALL=C: -k2,2 compares the
            # second word's bytes (with its one leading blank, the same
            # for every line), -k1,1n the leading number, then the whole
            # line byte by byte (sort's last-resort comparison).
            def sort_key(line):
                w = line[:-1].split(b" ", 2)
                return (w[1], int(w[0]), line)
            lines = _read(f).splitlines(keepends=True)
            lines.sort(key=sort_key)
            sha = _sha(b"".join(lines))
            del lines
        else:
            out = _native_output(rc.cmd, env, timeout)
            if verify is not None and not verify(out):
                raise RealError("%s: the native output does not decompress "
                                "to the input" % name)
            sha = _sha(out)
        refs.put(key, sha)
    rc.ref_sha = sha


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# --------------------------------------------------------------------------
# "stat" cases
# --------------------------------------------------------------------------

def _stat_sample(name, rc, run):
    """A vthread-stat run dict (or ours) -> a suite sample."""
    st = str(run.get("status"))
    wall = run.get("wall_s")
    j = {
        "wall_s": wall,
        "mb_per_s": (rc.input_bytes / 1e6 / wall) if wall else None,
        "ctx_switches": (run.get("nvcsw") or 0) + (run.get("nivcsw") or 0),
        "nvcsw": run.get("nvcsw"), "nivcsw": run.get("nivcsw"),
        "cpu_s": (run.get("user_s") or 0) + (run.get("sys_s") or 0),
        "peak_threads": run.get("peak_threads"),
        "perf_context_switches": run.get("context_switches"),
        "peak_rss_kib": run.get("peak_rss_kib"),
        "stdout_sha256": run.get("stdout_sha256"),
        "exit": st,
    }
    s = {"secs": round(wall or 0, 3), "json": j}
    if run.get("timed_out") or st == "timeout":
        s["status"], s["error"] = "timeout", "killed after the timeout"
    elif st.startswith("SIG") or st.startswith("signal"):
        s["status"], s["error"] = "crash", st
    elif st != "0":
        s["status"], s["error"] = "fail", "exit status %s" % st
    elif run.get("stdout_sha256") != rc.ref_sha:
        s["status"] = "fail"
        s["error"] = ("wrong output: stdout sha256 %s, verified reference %s"
                      % (str(run.get("stdout_sha256"))[:12],
                         str(rc.ref_sha)[:12]))
    else:
        s["status"] = "ok"
    return s


def _measure_native(cmd, env, timeout):
    """Fallback without a library: one native run measured with wait4()."""
    out = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    timed_out = False
    try:
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout:
                _killpg(p.pid)
                timed_out = True
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.002)
    except BaseException:
        _killpg(p.pid)
        os.wait4(p.pid, 0)
        p.returncode = 0
        raise
    wall = time.monotonic() - t0
    p.returncode = 0  # reaped here; keep subprocess from waiting again
    if os.WIFSIGNALED(status):
        st = signal.Signals(os.WTERMSIG(status)).name
    else:
        st = str(os.WEXITSTATUS(status))
    out.seek(0)
    h = hashlib.sha256()
    for chunk in iter(lambda: out.read(1 << 20), b""):
        h.update(chunk)
    out.close()
    return {"status": "timeout" if timed_out else st, "timed_out": timed_out,
            "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "nvcsw": ru.ru_nvcsw, "nivcsw": ru.ru_nivcsw,
            "peak_threads": None, "stdout_sha256": h.hexdigest()}


def run_stat(name, rc, lib, stat_tool, base_env, timeout, want):
    """One round: returns {mode: sample} for the modes in `want`."""
    env = dict(base_env, **rc.env_extra)
    if lib is None:
        run = _measure_native(rc.cmd, env, timeout)
        return {"native": _stat_sample(name, rc, run)}
    cmd = [stat_tool, "--json", "-r", "1", "--lib", lib, "--timeout",
           str(timeout), "--"] + rc.cmd
    try:
        r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True,
                           timeout=2 * timeout + 60, start_new_session=True)
    except subprocess.TimeoutExpired:
        return {m: {"status": "timeout", "error": "vthread-stat hung",
                    "secs": 0} for m in want}
    try:
        doc = json.loads(r.stdout)
        runs = doc["runs"]
    except (ValueError, KeyError, TypeError):
        err = "vthread-stat exited %d: %s" % (r.returncode,
                                              r.stderr.strip()[-300:])
        return {m: {"status": "nojson", "error": err, "secs": 0}
                for m in want}
    res = {}
    for m in want:
        if runs.get(m):
            res[m] = _stat_sample(name, rc, runs[m][0])
        else:
            res[m] = {"status": "nojson", "error": "no %s run" % m,
                      "secs": 0}
    return res


# --------------------------------------------------------------------------
# "server" cases
# --------------------------------------------------------------------------

def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)  # our own child's group only
    except OSError:
        pass


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _recv_until(sock, pred, timeout):
    sock.settimeout(timeout)
    buf = b""
    end = time.monotonic() + timeout
    while not pred(buf):
        if time.monotonic() > end:
            raise OSError("timed out waiting for the server's reply")
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


class RespClient:
    """Just enough of the redis protocol for the checks."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=timeout)
        self.f = self.s.makefile("rb")
        self.timeout = timeout

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._reply()

    def _reply(self):
        line = self.f.readline()
        if not line:
            raise OSError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            return [self._reply() for _ in range(int(rest))]
        raise OSError("bad reply %r" % line)

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


class ServerRun:
    """A server process of ours: start, sample threads, stop, wait4."""

    def __init__(self, cmd, env, log_path):
        self.log_path = log_path
        self.logf = open(log_path, "wb")
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                  stdout=self.logf, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        self.peak_threads = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._sample, daemon=True)
        self._th.start()
        self.rusage = None
        self.status = None

    def _sample(self):
        path = "/proc/%d/status" % self.p.pid
        while not self._stop.is_set():
            try:
                with open(path, "rb") as f:
                    for line in f:
                        if line.startswith(b"Threads:"):
                            self.peak_threads = max(self.peak_threads,
                                                    int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass
            self._stop.wait(0.01)

    def alive(self):
        return self.status is None and self._poll()

    def _poll(self):
        pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
        if pid:
            self._reaped(status, ru)
            return False
        return True

    def _reaped(self, status, ru):
        self._stop.set()
        self.status, self.rusage = status, ru
        self.p.returncode = 0  # reaped by us; subprocess must not wait

    def wait(self, timeout):
        """Wait up to timeout for the exit; True if it exited."""
        end = time.monotonic() + timeout
        while self.status is None:
            if not self._poll():
                return True
            if time.monotonic() > end:
                return False
            time.sleep(0.005)
        return True

    def kill(self):
        """SIGKILL its process group (while it is not reaped, so the group
        ID is still ours) and reap it."""
        if self.status is None:
            _killpg(self.p.pid)
            pid, status, ru = os.wait4(self.p.pid, 0)
            self._reaped(status, ru)

    def log_tail(self):
        try:
            if not self.logf.closed:
                self.logf.flush()
            return _read(self.log_path).decode(errors="replace")[-300:]
        except OSError:
            return ""

    def close(self):
        self._stop.set()
        self._th.join()
        self.logf.close()


def _wait_ready(srv, probe, timeout):
    """Call probe() until it returns True; False if the server died or the
    time ran out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not srv.alive():
            return False
        try:
            if probe():
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def _redis_probe(port):
    c = RespClient(port, timeout=1.0)
    try:
        return c.cmd("PING") == "PONG"
    finally:
        c.close()


def _memc_request(port, req, done, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(req)
        return _recv_until(s, done, timeout)
    finally:
        s.close()


def _memc_probe(port):
    return _memc_request(port, b"version\r\n",
                         lambda b: b.endswith(b"\r\n"),
                         1.0).startswith(b"VERSION")


def _memc_stats(port):
    raw = _memc_request(port, b"stats\r\n", lambda b: b.endswith(b"END\r\n"))
    st = {}
    for line in raw.decode(errors="replace").splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == "STAT":
            st[f[1]] = f[2]
    return st


def _run_load(cmd, env, timeout):
    r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout,
                       start_new_session=True)
    return r.returncode, r.stdout, r.stderr


def _redis_load(name, rc, S, port, env, timeout):
    n = S["redis_n"]
    rcode, out, err = _run_load(
        [rc.paths["redis-benchmark"], "-h", "127.0.0.1", "-p", str(port),
         "-c", str(REDIS_CLIENTS), "-n", str(n), "-t", ",".join(REDIS_TESTS),
         "--csv"], env, timeout)
    if rcode != 0:
        raise RealError("redis-benchmark exited %d: %s" % (
            rcode, (err or out).strip()[-300:]))
    rps = {}
    for line in out.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if len(f) >= 2 and f[0] in {t.upper() for t in REDIS_TESTS}:
            rps[f[0]] = float(f[1])
    if set(rps) != {t.upper() for t in REDIS_TESTS} or min(rps.values()) <= 0:
        raise RealError("redis-benchmark output lacks a test: %r" %
                        out.strip()[-300:])
    total = n * len(REDIS_TESTS)
    j = {"rps": total / sum(n / v for v in rps.values()),
         "rps_by_test": rps, "requests": total}
    # The server's state must match what the load generator did.
    c = RespClient(port)
    try:
        cnt = c.cmd("GET", "counter:__rand_int__")
        val = c.cmd("GET", "key:__rand_int__")
        info = c.cmd("INFO", "stats")
        c.cmd("SET", "bench:check", "vthread")
        chk = c.cmd("GET", "bench:check")
    finally:
        c.close()
    stats = {}
    if isinstance(info, bytes):
        for line in info.decode(errors="replace").splitlines():
            k, _, v = line.partition(":")
            stats[k] = v.strip()
    j["total_commands_processed"] = int(stats.get(
        "total_commands_processed", -1))
    j["io_threaded_reads_processed"] = int(stats.get(
        "io_threaded_reads_processed", -1))
    j["io_threaded_writes_processed"] = int(stats.get(
        "io_threaded_writes_processed", -1))
    bad = []
    if cnt != str(n).encode():
        bad.append("INCR counter is %r, expected %d" % (cnt, n))
    if not isinstance(val, bytes) or len(val) != 3:  # -d 3, random bytes
        bad.append("GET key returned %r, expected a 3-byte value" % (val,))
    if chk != b"vthread":
        bad.append("SET/GET check returned %r" % (chk,))
    if j["total_commands_processed"] < total:
        bad.append("server processed %d commands, expected >= %d" % (
            j["total_commands_processed"], total))
    return j, bad


def _memc_load(name, rc, S, port, env, timeout):
    ops = S["memc_ops"]
    rcode, out, err = _run_load(
        [rc.paths["memcaslap"], "-s", "127.0.0.1:%d" % port,
         "-T", str(MEMC_CLIENT_THREADS), "-c", str(MEMC_CONCURRENCY),
         "-x", str(ops), "-X", "64", "-v", "1"], env, timeout)

    def num(key):
        m = re.search(r"^%s:\s*(\d+)" % re.escape(key), out, re.M)
        return int(m.group(1)) if m else None
    m = re.search(r"Ops:\s*(\d+)\s+TPS:\s*(\d+)", out)
    if rcode != 0 or not m:
        raise RealError("memaslap exited %d: %s" % (
            rcode, (err or out).strip()[-300:]))
    j = {"rps": float(m.group(2)), "requests": int(m.group(1)),
         "cmd_get": num("cmd_get"), "cmd_set": num("cmd_set")}
    bad = []
    for k in ("get_misses", "verify_misses", "verify_failed"):
        j[k] = num(k)
        if j[k] != 0:
            bad.append("memaslap %s = %s" % (k, j[k]))
    if j["requests"] != ops:
        bad.append("memaslap did %d ops, expected %d" % (j["requests"], ops))
    st = _memc_stats(port)
    for k in ("cmd_get", "cmd_set"):
        if j[k] is None or str(j[k]) != st.get(k):
            bad.append("server %s = %s, memaslap sent %s" % (
                k, st.get(k), j[k]))
    if st.get("get_hits") != st.get("cmd_get"):
        bad.append("server get_hits %s != cmd_get %s" % (
            st.get("get_hits"), st.get("cmd_get")))
    reply = _memc_request(port, b"set bench_check 0 0 7\r\nvthread\r\n"
                          b"get bench_check\r\n",
                          lambda b: b.endswith(b"END\r\n"))
    if reply != (b"STORED\r\nVALUE bench_check 0 7\r\nvthread\r\nEND\r\n"):
        bad.append("set/get check returned %r" % reply[:80])
    j["server_threads_stat"] = st.get("threads")
    return j, bad


def run_server(name, rc, profile, mode, lib, base_env, build_dir, timeout):
    """One run of a server case in `mode`; returns a sample.  The server is
    always stopped and reaped before this returns (or raises)."""
    box = []
    try:
        return _run_server(name, rc, profile, mode, lib, base_env, build_dir,
                           timeout, box)
    except BaseException:
        for srv in box:
            srv.kill()
            srv.close()
        raise


def _run_server(name, rc, profile, mode, lib, base_env, build_dir, timeout,
                box):
    S = SIZES[profile]
    load_env = dict(base_env)                       # always native
    srv_env = dict(base_env, LD_PRELOAD=lib) if mode == "vthread" else \
        dict(base_env)
    top = os.path.join(build_dir, "real", "servers")
    os.makedirs(top, exist_ok=True)
    log_path = os.path.join(top, "%s-%s.log" % (name, mode))
    t0 = time.monotonic()
    srv = None
    for attempt in range(2):  # a free port can be taken in between: retry
        port = free_port()
        if name == "redis":
            cmd = [rc.paths["redis-server"], "--port", str(port),
                   "--bind", "127.0.0.1", "--io-threads", str(THREADS),
                   "--io-threads-do-reads", "yes", "--save", "",
                   "--appendonly", "no", "--daemonize", "no",
                   "--protected-mode", "no", "--dir", top, "--logfile", ""]
            probe = lambda: _redis_probe(port)   # noqa: E731
        else:
            cmd = [rc.paths["memcached"], "-l", "127.0.0.1", "-p", str(port),
                   "-U", "0", "-t", str(THREADS), "-m", "64", "-c", "1024"]
            if os.geteuid() == 0:
                cmd += ["-u", "root"]
            probe = lambda: _memc_probe(port)    # noqa: E731
        srv = ServerRun(cmd, srv_env, log_path)
        box[:] = [srv]
        if _wait_ready(srv, probe, min(START_TIMEOUT, timeout)):
            break
        started = srv.status is None
        srv.kill()
        srv.close()
        tail = srv.log_tail()
        if attempt == 0 and "in use" in tail:
            continue
        return {"status": "timeout" if started else "fail",
                "secs": round(time.monotonic() - t0, 3),
                "error": "%s did not answer within %.0f s" % (
                    name, min(START_TIMEOUT, timeout)) if started else
                "%s exited at start-up" % name,
                "stderr": tail}
    j, bad, err = {}, [], None
    try:
        if name == "redis":
            j, bad = _redis_load(name, rc, S, port, load_env, timeout)
        else:
            j, bad = _memc_load(name, rc, S, port, load_env, timeout)
    except subprocess.TimeoutExpired:
        err = ("timeout", "the load generator was killed after %.0f s" %
               timeout)
    except (RealError, OSError) as e:
        err = ("fail", str(e))
    # Stop the server and take its rusage.
    if srv.alive():
        try:
            if name == "redis":
                c = RespClient(port)
                try:
                    c.cmd("SHUTDOWN", "NOSAVE")
                except OSError:
                    pass  # the connection closes as it exits
                c.close()
            else:
                os.kill(srv.p.pid, signal.SIGTERM)
        except OSError:
            os.kill(srv.p.pid, signal.SIGTERM)
    clean = srv.wait(STOP_TIMEOUT)
    if not clean and err is None:
        err = ("fail", "%s did not exit within %.0f s of being asked" % (
            name, STOP_TIMEOUT))
    srv.kill()
    srv.close()
    st = srv.status
    if err is None and os.WIFSIGNALED(st) and clean:
        err = ("crash", signal.Signals(os.WTERMSIG(st)).name)
    elif err is None and clean and os.WEXITSTATUS(st) != 0:
        err = ("fail", "%s exited %d" % (name, os.WEXITSTATUS(st)))
    ru = srv.rusage
    j.update({"ctx_switches": ru.ru_nvcsw + ru.ru_nivcsw,
              "nvcsw": ru.ru_nvcsw, "nivcsw": ru.ru_nivcsw,
              "cpu_s": ru.ru_utime + ru.ru_stime,
              "peak_threads": srv.peak_threads})
    s = {"secs": round(time.monotonic() - t0, 3), "json": j}
    if err is None and bad:
        err = ("fail", "; ".join(bad))
    if err:
        s["status"], s["error"] = err
        s["stderr"] = srv.log_tail()
    else:
        s["status"] = "ok"
    return s
