#!/bin/bash
# tests/trace/run.sh — VTHREAD_TRACE, the execution trace (core/trace.c).
#
#   tests/trace/run.sh [--lib PATH]
#
# Runs tests/trace/blocked.c (36 named threads blocked six different
# ways, then released and joined) under the library and checks:
#  - without VTHREAD_TRACE no file appears, and with it the program's
#    stdout, stderr and exit status are what they are without it;
#  - the file is valid JSON in the trace-event format: a non-empty
#    traceEvents, M thread_name metadata, an "X" run slice for each of the
#    37 Gs (named after pthread_setname_np), a reason on every park, the
#    six reasons of the program, slices that never overlap on a track;
#  - a tiny buffer (VTHREAD_TRACE_EVENTS=100) drops events and says so in
#    otherData, in an event and on stderr, and the file still parses;
#  - a bad VTHREAD_TRACE_EVENTS or an impossible file is a one-line
#    message naming the variable;
#  - a fork child (which exits through atexit) writes no trace: with %p
#    in the name only the parent's file appears.
# Every run has a 60 s watchdog.  Prints "N/M checks passed"; exit 0 if
# all passed.
. "$(dirname "$0")/../tools/lib.sh"
unset VTHREAD_TRACE VTHREAD_TRACE_EVENTS VTHREAD_SCHED VTHREAD_SCHED_REPORT

lib_arg "$@"
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 77; }

"${CC:-cc}" -O2 -g -pthread -o "$tmp/blocked" "$src/blocked.c" ||
    { echo "cannot compile $src/blocked.c" >&2; exit 1; }

# check.py FILE WHAT: one property of the trace in FILE; prints why not.
cat >"$tmp/check.py" <<'EOF'
import json, re, sys

path, what = sys.argv[1], sys.argv[2]
try:
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
except Exception as e:
    sys.exit("not valid JSON: %s" % e)
ev = d.get("traceEvents") or []
slices = [e for e in ev if e.get("ph") == "X"]

def fail(msg):
    sys.exit(msg)

if what == "valid":
    if not isinstance(d.get("traceEvents"), list) or not ev:
        fail("traceEvents missing or empty")
    if d.get("displayTimeUnit") != "ns":
        fail("displayTimeUnit is %r" % d.get("displayTimeUnit"))
    for e in ev:
        for k in ("ph", "pid", "tid", "name"):
            if k not in e:
                fail("event without %s: %r" % (k, e))
        if e["ph"] != "M" and not isinstance(e.get("ts"), (int, float)):
            fail("event without ts: %r" % e)
elif what == "m-names":
    names = [e["args"]["name"] for e in ev
             if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == 1]
    if not any(re.fullmatch(r"M\d+ \(tid \d+\)", n) for n in names):
        fail("no M thread_name in %r" % names)
elif what == "every-g":
    made = {e["args"]["g"] for e in ev if e["ph"] == "i"
            and e["name"].startswith("create G")}
    ran = {e["args"]["g"] for e in slices}
    want = made | {1}
    if len(want) != 37:
        fail("%d Gs created (plus main), want 37: %s" % (len(want), sorted(want)))
    if want - ran:
        fail("Gs without a run slice: %s" % sorted(want - ran))
elif what == "g-names":
    kinds = ("cond", "sleep", "read", "mutex", "join", "sem")
    named = {e["name"].split(" ", 1)[1] for e in slices if " " in e["name"]}
    missing = ["%s-%d" % (k, i) for k in kinds for i in range(6)
               if "%s-%d" % (k, i) not in named]
    if missing:
        fail("no slice named after %s" % missing)
elif what == "park-reasons":
    parks = [e for e in ev if e["ph"] == "i" and e["name"] == "park"]
    if not parks:
        fail("no park instants")
    bad = [e for e in parks if not e.get("args", {}).get("reason")]
    if bad:
        fail("parks without a reason: %r" % bad[:3])
    seen = {e["args"]["reason"] for e in parks}
    want = {"condition variable", "sleep", "descriptor readable", "mutex",
            "thread join", "semaphore"}
    if want - seen:
        fail("reasons missing: %s (seen %s)" % (sorted(want - seen), sorted(seen)))
elif what == "no-overlap":
    tracks = {}
    for e in slices:
        tracks.setdefault((e["pid"], e["tid"]), []).append(e)
    for k, l in tracks.items():
        l.sort(key=lambda e: e["ts"])
        for a, b in zip(l, l[1:]):
            if a["dur"] < 0 or a["ts"] + a["dur"] > b["ts"] + 1e-6:
                fail("on track %s, %r overlaps %r" % (k, a, b))
elif what == "no-drops":
    if d.get("otherData", {}).get("dropped") != 0:
        fail("otherData: %r" % d.get("otherData"))
elif what.startswith("dropped="):
    n = int(what.split("=")[1])
    got = d.get("otherData", {}).get("dropped")
    if not n or got != n:
        fail("otherData.dropped is %r, stderr said %d" % (got, n))
    notes = [e for e in ev if re.fullmatch(
        r"vthread: \d+ events dropped \(buffer full on M\d+\)", e["name"])]
    if not notes:
        fail("no 'events dropped (buffer full on M k)' event")
else:
    fail("unknown check " + what)
EOF
trace_ok() { python3 "$tmp/check.py" "$@"; }

echo "without VTHREAD_TRACE"
mkdir "$tmp/cwd"
(cd "$tmp/cwd" && LD_PRELOAD=$lib timeout 60 "$tmp/blocked" >"$tmp/out0" 2>"$tmp/err0")
check_rc "the program passes" 0 $?
check "it creates no file" test -z "$(ls -A "$tmp/cwd")"

echo "with VTHREAD_TRACE"
VTHREAD_TRACE=$tmp/t.json LD_PRELOAD=$lib timeout 60 "$tmp/blocked" \
    >"$tmp/out1" 2>"$tmp/err1"
check_rc "the program passes" 0 $?
check "its stdout is unchanged" cmp -s "$tmp/out0" "$tmp/out1"
check "its stderr is unchanged (empty)" cmp -s "$tmp/err0" "$tmp/err1"
check "the trace is written" test -s "$tmp/t.json"
check "valid JSON with a non-empty traceEvents" trace_ok "$tmp/t.json" valid
check "a thread_name \"M<n> (tid <tid>)\" per M" trace_ok "$tmp/t.json" m-names
check "every G (36 created + main) has a run slice" trace_ok "$tmp/t.json" every-g
check "slices carry the pthread_setname_np names" trace_ok "$tmp/t.json" g-names
check "every park has a reason; all six of the program's appear" \
    trace_ok "$tmp/t.json" park-reasons
check "slices on one track never overlap" trace_ok "$tmp/t.json" no-overlap
check "nothing dropped" trace_ok "$tmp/t.json" no-drops
(cd "$tmp/cwd" && VTHREAD_TRACE=rel.json LD_PRELOAD=$lib timeout 60 \
    "$tmp/blocked" >/dev/null 2>&1)
check "a relative name is taken from the working directory" \
    trace_ok "$tmp/cwd/rel.json" valid

echo "a full buffer"
VTHREAD_TRACE=$tmp/small.json VTHREAD_TRACE_EVENTS=100 LD_PRELOAD=$lib \
    timeout 60 "$tmp/blocked" >"$tmp/out2" 2>"$tmp/err2"
check_rc "the program passes" 0 $?
check "its stdout is unchanged" cmp -s "$tmp/out0" "$tmp/out2"
check_grep "stderr says how many events were dropped" \
    '^vthread: trace: [0-9]+ events dropped; raise VTHREAD_TRACE_EVENTS$' "$tmp/err2"
check "and nothing else" test "$(wc -l <"$tmp/err2")" -eq 1
n=$(sed -n 's/^vthread: trace: \([0-9]*\) events dropped.*/\1/p' "$tmp/err2")
check "the file still parses" trace_ok "$tmp/small.json" valid
check "otherData.dropped and an event say so (${n:-?})" \
    trace_ok "$tmp/small.json" "dropped=${n:-0}"
check "slices on one track never overlap" trace_ok "$tmp/small.json" no-overlap

echo "configuration"
VTHREAD_TRACE=$tmp/x.json VTHREAD_TRACE_EVENTS=lots LD_PRELOAD=$lib \
    timeout 60 "$tmp/blocked" >"$tmp/out" 2>&1
check_rc "a bad VTHREAD_TRACE_EVENTS ends the program" 2 $?
check_grep "with a line naming the variable" \
    "^vthread: VTHREAD_TRACE_EVENTS='lots': expected" "$tmp/out"
check "in one line" test "$(wc -l <"$tmp/out")" -eq 1
VTHREAD_TRACE=$tmp/no/such/dir/t.json LD_PRELOAD=$lib timeout 60 \
    "$tmp/blocked" >/dev/null 2>"$tmp/out"
check_rc "a file that cannot be created does not fail the program" 0 $?
check_grep "one line names VTHREAD_TRACE" \
    "^vthread: VTHREAD_TRACE='$tmp/no/such/dir/t.json': cannot create" "$tmp/out"
check "in one line" test "$(wc -l <"$tmp/out")" -eq 1

echo "fork"
mkdir "$tmp/pp"
VTHREAD_TRACE="$tmp/pp/t.%p.json" LD_PRELOAD=$lib timeout 60 \
    "$tmp/blocked" fork >"$tmp/out" 2>"$tmp/err"
check_rc "a program that forks a child with a thread passes" 0 $?
check "its stderr is empty" test ! -s "$tmp/err"
files=$(ls "$tmp/pp")
check "one trace, the parent's, not the child's ($(echo $files))" \
    test "$(echo "$files" | grep -c .)" -eq 1
f=$tmp/pp/$(echo "$files" | head -1)
check "it is complete" trace_ok "$f" every-g

finish
