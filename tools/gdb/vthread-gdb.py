# vthread-gdb.py — gdb commands that show a vthread program's own threads.
#
# Under vthread, gdb's `info threads` lists the few OS threads (Ms) that
# run the program's threads (Gs), not the Gs.  These commands list every
# G and give its backtrace, whether it is running on an OS thread or
# parked, in a live process (run or attached) and in a core file:
#
#   info vthreads             one line per G: id, name, state (running on
#                             M n / runnable / waiting: reason, how long,
#                             on what), start routine
#   vthread N bt [ARGS]       G N's backtrace (ARGS as for bt: full, -N...)
#   vthread apply all bt      every G's backtrace
#   vthread N CMD...          any gdb command in G N's context, its
#                             innermost frame selected
#   vthread N frame K [CMD]   G N's frame K (numbered as by vthread N bt),
#                             and CMD run in it (`info locals`, `p x`)
#
# gdb loads this file by itself for programs using libvthread (installed
# as <gdb auto-load dir>/<libdir>/libvthread.so.0.0.0-gdb.py); with a
# libvthread in the build tree: `source tools/gdb/vthread-gdb.py`.
# docs/debugging.md is the walkthrough.
#
# Everything is found through the library's exported table
# vthread_debug_layout (core/debug.c): it works on a stripped library, and
# a table of another version is refused with a message, never misread.
#
# A parked G's registers are on its own stack (the switch frame); gdb
# cannot write registers in a core file, so instead of setting them this
# script installs a frame unwinder that, for the selected OS thread's
# innermost frame only, says the caller is the G's saved context: gdb's
# own unwinder and symbolisation do the rest.

import re
import struct
import time

import gdb
import gdb.unwinder

LAYOUT_VERSION = 1
# struct vt_debug_layout in core/debug.c, version 1 (little endian)
_FIELDS = ("version size allg allm "
           "g_id g_status g_sp g_m g_kind g_fn "
           "g_wait_reason g_wait_since g_waiter_addr g_allnext "
           "g_stack_lo g_stack_hi g_on_cpu g_ext name_off "
           "m_id m_tid m_allnext "
           "frame_ret frame_rbp frame_rbx "
           "frame_r12 frame_r13 frame_r14 frame_r15 wait_clock").split()
_FORMAT = "<IIQQ" + "I" * (len(_FIELDS) - 4)

G_IDLE, G_RUNNABLE, G_RUNNING, G_WAITING, G_DEAD = range(5)
GU_UNIT, GU_USER_STACK, GU_MAIN, GU_G0 = range(4)
MAX_GS = 1000000  # a list longer than this is corrupt (or cyclic)


class VthreadError(gdb.GdbError):
    pass


def _inferior():
    inf = gdb.selected_inferior()
    if inf is None or inf.pid == 0 and not _is_core():
        raise VthreadError("vthread: no process or core file to look at")
    return inf


def _is_core():
    try:
        conn = gdb.selected_inferior().connection
        if conn is not None:
            return conn.type == "core"
    except AttributeError:
        pass
    return "core file" in gdb.execute("info target", to_string=True)


def _read(addr, n):
    try:
        return bytes(_inferior().read_memory(addr, n))
    except gdb.MemoryError:
        raise VthreadError("vthread: cannot read memory at %#x" % addr)


def _u64(addr):
    return struct.unpack("<Q", _read(addr, 8))[0]


def _i64(addr):
    return struct.unpack("<q", _read(addr, 8))[0]


def _i32(addr):
    return struct.unpack("<i", _read(addr, 4))[0]


def _cstr(addr, limit=64):
    if not addr:
        return None
    try:
        raw = _read(addr, limit)
    except VthreadError:
        return None
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _layout():
    arch = gdb.selected_inferior().architecture().name()
    if "x86-64" not in arch:
        raise VthreadError(
            "vthread: this extension reads x86_64 registers; the program "
            "is %s, which it does not support yet" % arch)
    try:
        addr = int(gdb.parse_and_eval("(long)&vthread_debug_layout"))
    except gdb.error:
        raise VthreadError(
            "vthread: this program does not run under vthread "
            "(no symbol vthread_debug_layout: libvthread not loaded yet, "
            "or too old to be debugged this way)")
    head = struct.unpack("<II", _read(addr, 8))
    if head[0] != LAYOUT_VERSION:
        raise VthreadError(
            "vthread: the library's debug layout is version %d, this "
            "script reads version %d: use the vthread-gdb.py installed "
            "with that libvthread" % (head[0], LAYOUT_VERSION))
    if head[1] < struct.calcsize(_FORMAT):
        raise VthreadError(
            "vthread: the library's debug layout is %d bytes, version %d "
            "has %d: library and script do not match"
            % (head[1], LAYOUT_VERSION, struct.calcsize(_FORMAT)))
    vals = struct.unpack(_FORMAT, _read(addr, struct.calcsize(_FORMAT)))
    return dict(zip(_FIELDS, vals))


class G(object):
    """One G, read from the inferior's memory."""

    def __init__(self, L, addr):
        self.addr = addr
        self.id = _u64(addr + L["g_id"])
        self.status = _i32(addr + L["g_status"])
        self.kind = _i32(addr + L["g_kind"])
        self.sp = _u64(addr + L["g_sp"])
        self.m = _u64(addr + L["g_m"])
        self.on_cpu = _i32(addr + L["g_on_cpu"])
        self.fn = _u64(addr + L["g_fn"])
        self.reason = _cstr(_u64(addr + L["g_wait_reason"]))
        self.since = _i64(addr + L["g_wait_since"])
        self.waiter = _u64(addr + L["g_waiter_addr"])
        self.stack_lo = _u64(addr + L["g_stack_lo"])
        self.stack_hi = _u64(addr + L["g_stack_hi"])
        self.name = None
        if L["name_off"]:
            self.name = _cstr(addr + L["g_ext"] + L["name_off"], 16) or None
        self.next = _u64(addr + L["g_allnext"])


def _all_gs(L):
    gs, seen = [], set()
    g = _u64(L["allg"])
    while g and g not in seen and len(gs) < MAX_GS:
        seen.add(g)
        one = G(L, g)
        if one.kind != GU_G0:
            gs.append(one)
        g = one.next
    return gs


def _ms(L):
    """{M address: (M id, kernel tid)}"""
    ms, m = {}, _u64(L["allm"])
    while m and m not in ms and len(ms) < 100000:
        ms[m] = (_i32(m + L["m_id"]), _i32(m + L["m_tid"]))
        m = _u64(m + L["m_allnext"])
    return ms


def _symbol(addr):
    if not addr:
        return "?"
    try:
        s = gdb.execute("info symbol %#x" % addr, to_string=True).strip()
    except gdb.error:
        return "%#x" % addr
    if s.startswith("No symbol"):
        return "%#x" % addr
    return s.split(" in section ")[0]


def _now(L):
    """The wait clock now, if the process is live (a core has no now)."""
    if _is_core():
        return None
    try:
        return int(time.clock_gettime(L["wait_clock"]) * 1e9)
    except (OSError, AttributeError):
        return None


def _state(L, g, ms, now):
    if g.status == G_RUNNING:
        m = ms.get(g.m)
        if m:
            return "running on M%d (LWP %d)" % m
        return "running"
    if g.status == G_RUNNABLE:
        return "runnable"
    if g.status == G_IDLE:
        return "idle"
    if g.status == G_DEAD:
        return "exited, not joined"
    s = "waiting: " + (g.reason or "parked")
    if g.since and now is not None and now >= g.since:
        s += " %.3f s" % ((now - g.since) / 1e9)
    if g.waiter:
        s += " on %#x" % g.waiter
    return s


def _start(g):
    if g.kind == GU_MAIN:
        return "main"
    return _symbol(g.fn)


class InfoVthreads(gdb.Command):
    """List every vthread G: id, name, state, start routine.

Usage: info vthreads
A G's state is "running on M n (LWP t)" (see it with `thread`), "runnable"
(waiting for a processor) or "waiting: REASON SECONDS on ADDRESS" (how
long only in a live process).  Then use `vthread ID bt`."""

    def __init__(self):
        super(InfoVthreads, self).__init__("info vthreads", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        L = _layout()
        gs, ms = _all_gs(L), _ms(L)
        now = _now(L)
        cur = gdb.selected_thread()
        cur_tid = cur.ptid[1] if cur else 0
        rows = []
        for g in gs:
            mark = "*" if (g.status == G_RUNNING and g.m in ms and
                           ms[g.m][1] == cur_tid) else " "
            rows.append((mark, str(g.id), g.name or "-",
                         _state(L, g, ms, now), _start(g)))
        w1 = max([2] + [len(r[1]) for r in rows])
        w2 = max([4] + [len(r[2]) for r in rows])
        w3 = max([5] + [len(r[3]) for r in rows])
        out = ["  %-*s  %-*s  %-*s  %s" % (w1, "Id", w2, "Name", w3, "State",
                                           "Start routine")]
        for r in rows:
            out.append("%s %-*s  %-*s  %-*s  %s" % (r[0], w1, r[1], w2, r[2],
                                                   w3, r[3], r[4]))
        out.append("%d threads on %d OS threads%s" %
                   (len(gs), len(ms), "" if now is not None else
                    " (a core file: wait times unknown)"))
        gdb.write("\n".join(out) + "\n")


class _FrameId(object):
    """What create_unwind_info wants (gdb.unwinder.FrameId from gdb 14)."""

    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class _GUnwinder(gdb.unwinder.Unwinder):
    """While `regs` is set: the selected OS thread's innermost frame's
    caller is the parked G's saved context."""

    def __init__(self):
        super(_GUnwinder, self).__init__("vthread-parked-g")
        self.regs = None
        self.ptid = None
        self.level = None  # the frame it stood in for (see below)
        self.sp = 0        # the G's saved stack pointer

    def __call__(self, pending):
        if self.regs is None:
            return None
        th = gdb.selected_thread()
        if th is None or th.ptid != self.ptid:
            return None
        # The innermost frame may be inline (a syscall wrapper inlined
        # into its caller): gdb does not ask us for those.  Stand in for
        # the first frame it asks about, which is the innermost real one.
        if self.level is None:
            self.level = pending.level()
        if pending.level() != self.level:
            return None
        # The frame's id says where it is on the stack, and gdb stops a
        # backtrace whose callers are not further out: the G's frames are
        # on the G's own stack, maybe below this thread's.  Its saved sp
        # (just below the G's frames) is this frame's place.
        pc = pending.read_register("rip")
        sp = gdb.Value(self.sp).cast(pending.read_register("rsp").type)
        info = pending.create_unwind_info(_FrameId(sp, pc))
        for name, val in self.regs:
            t = pending.read_register(name).type
            info.add_saved_register(name, gdb.Value(val).cast(t))
        return info


_unwinder = None


def _parked_regs(L, g):
    sp = g.sp
    return [("rip", _u64(sp + L["frame_ret"])),
            ("rsp", sp + L["frame_ret"] + 8),
            ("rbp", _u64(sp + L["frame_rbp"])),
            ("rbx", _u64(sp + L["frame_rbx"])),
            ("r12", _u64(sp + L["frame_r12"])),
            ("r13", _u64(sp + L["frame_r13"])),
            ("r14", _u64(sp + L["frame_r14"])),
            ("r15", _u64(sp + L["frame_r15"]))]


def _renumber_bt(text, first):
    """Drops the OS thread's frames (up to #first) and numbers the G's
    from 0."""
    out, keep = [], False
    for line in text.splitlines():
        m = re.match(r"#(\d+)(\s+)(.*)", line)
        if m:
            n = int(m.group(1))
            keep = n > first
            if keep:
                out.append("%-3s %s" % ("#%d" % (n - first - 1),
                                        m.group(3)))
        elif keep:
            out.append(line)
    return "\n".join(out) + "\n"


def _in_g(L, g, ms, command, renumber):
    """Runs command in g's context; returns its output."""
    global _unwinder
    if g.status == G_RUNNING and g.m in ms:
        tid = ms[g.m][1]
        for th in _inferior().threads():
            if th.ptid[1] == tid:
                old = gdb.selected_thread()
                th.switch()
                try:
                    return gdb.execute(command, to_string=True)
                finally:
                    if old is not None and old.is_valid():
                        old.switch()
        return "    (running on M%d, LWP %d, which gdb does not list)\n" % \
            ms[g.m]
    if g.status == G_DEAD:
        return "    (exited)\n"
    if not g.sp:
        return "    (no saved context)\n"
    if g.on_cpu:
        # parked or runnable, but its OS thread has not yet finished
        # switching away: the saved registers are not written yet (the
        # runtime's own dumps make the same test)
        return "    (switching off its OS thread: no saved context yet)\n"
    if g.kind != GU_MAIN and not (g.stack_lo <= g.sp < g.stack_hi):
        return "    (saved stack pointer %#x is off its stack: switching)\n" \
            % g.sp
    th = gdb.selected_thread()
    if th is None:
        raise VthreadError("vthread: no thread selected")
    if _unwinder is None:
        _unwinder = _GUnwinder()
        gdb.unwinder.register_unwinder(None, _unwinder, replace=True)
    _unwinder.regs = _parked_regs(L, g)
    _unwinder.ptid = th.ptid
    _unwinder.level = None
    _unwinder.sp = g.sp
    gdb.invalidate_cached_frames()
    try:
        if renumber:
            text = gdb.execute(command, to_string=True)
        else:
            # Any other command runs with the G's innermost frame
            # selected, and frame numbers are the G's own both ways.
            first = _select_g_frame()
            if first is None:
                return "    (gdb did not unwind this thread's frames)\n"
            # "frame K [COMMAND]": the G's frame K, then COMMAND in it
            m = re.match(r"\s*(?:frame|f)\s+(\d+)\s*(.*)$", command)
            if m:
                f = gdb.selected_frame()
                for _ in range(int(m.group(1))):
                    f = f.older() if f is not None else None
                if f is None:
                    return "    (G has no frame %s)\n" % m.group(1)
                f.select()
                command = m.group(2) or "frame"
            text = _renumber_lines(gdb.execute(command, to_string=True),
                                   first)
    finally:
        _unwinder.regs = None
        gdb.invalidate_cached_frames()
    if not renumber:
        return text
    if _unwinder.level is None:
        return "    (gdb did not unwind this thread's frames)\n"
    return _renumber_bt(text, _unwinder.level)


def _select_g_frame():
    """Selects the G's innermost frame (the caller of the frame the
    unwinder stood in for); returns the level it stood in for, or None."""
    f, n = gdb.newest_frame(), 0
    while f is not None and n < 64:
        if _unwinder.level is not None and f.level() == _unwinder.level + 1:
            f.select()
            return _unwinder.level
        f, n = f.older(), n + 1
    return None


def _renumber_lines(text, first):
    """Frame numbers (#N at a line's start) as the G's: N - first - 1."""
    out = []
    for line in text.splitlines():
        m = re.match(r"#(\d+)(\s+)(.*)", line)
        if m and int(m.group(1)) > first:
            line = "%-3s %s" % ("#%d" % (int(m.group(1)) - first - 1),
                                m.group(3))
        out.append(line)
    return "\n".join(out) + "\n"


def _header(L, g, ms, now):
    return "G%d%s [%s]:\n" % (g.id, " (%s)" % g.name if g.name else "",
                              _state(L, g, ms, now))


class Vthread(gdb.Command):
    """Run a command in the context of a vthread G.

Usage: vthread ID bt [BT-ARGS]     the backtrace of G ID
       vthread apply all bt [BT-ARGS]
       vthread ID COMMAND...       any command, with G ID's innermost
                                   frame selected (vthread 7 info locals)
       vthread ID frame K [COMMAND...]
                                   G ID's frame K (as numbered by
                                   vthread ID bt), and COMMAND in it
IDs are those of `info vthreads`."""

    def __init__(self):
        super(Vthread, self).__init__("vthread", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) >= 3 and argv[0] == "apply" and argv[1] == "all":
            self.apply_all(" ".join(argv[2:]))
            return
        if len(argv) < 2 or not argv[0].isdigit():
            raise VthreadError("usage: vthread ID bt | vthread apply all bt "
                               "| vthread ID COMMAND")
        L = _layout()
        want = int(argv[0])
        gs = [g for g in _all_gs(L) if g.id == want]
        if not gs:
            raise VthreadError("vthread: no G %d (see info vthreads)" % want)
        ms = _ms(L)
        cmd = " ".join(argv[1:])
        bt = argv[1] in ("bt", "backtrace", "where")
        if bt:
            gdb.write(_header(L, gs[0], ms, _now(L)))
        gdb.write(_in_g(L, gs[0], ms, cmd, bt))

    def apply_all(self, cmd):
        L = _layout()
        ms, now = _ms(L), _now(L)
        bt = cmd.split()[0] in ("bt", "backtrace", "where")
        for g in _all_gs(L):
            gdb.write("\n" + _header(L, g, ms, now))
            try:
                gdb.write(_in_g(L, g, ms, cmd, bt))
            except gdb.error as e:
                gdb.write("    (%s)\n" % e)


if not getattr(gdb, "_vthread_commands_loaded", False):
    InfoVthreads()
    Vthread()
    gdb._vthread_commands_loaded = True
