#!/bin/bash
# tests/fuzz/run.sh — the seeded scheduler and tools/vthread-fuzz, on
# small programs with the classic concurrency bugs (tests/fuzz/*.c).
#
#   tests/fuzz/run.sh [--lib PATH] [--runs N]
#
# For each bug (atomicity violation, order violation after
# pthread_create, lock-order deadlock, lost wake-up, stale snapshot):
#  - vthread-fuzz finds it within N runs (default 300), prints "seed N",
#    how the run failed and a replay command, and exits 1;
#  - the printed replay command fails every time (5 replays);
#  - the program built with -DFIXED passes all N runs (exit 0).
# Also: the same seed gives the same schedule (its hash) every time; the
# deadlock report names the cycle; a bad VTHREAD_SCHED is a one-line
# error; SIGQUIT tracebacks of a churning program neither crash nor
# disturb it (fifo and fuzzing); and a real Debian program (pigz, when installed) passes fuzzing
# with its output checked.  Prints "N/M checks passed".
. "$(dirname "$0")/../tools/lib.sh"

lib=
runs=300
while [ $# -gt 0 ]; do
    case $1 in
        --lib) lib=$2; shift 2 ;;
        --lib=*) lib=${1#--lib=}; shift ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "usage: $0 [--lib PATH] [--runs N]" >&2; exit 2 ;;
    esac
done
src=$(cd "$(dirname "$0")" && pwd)
[ -n "$lib" ] || lib=$(cd "$src/../.." && pwd)/.libs/libvthread.so
[ -f "$lib" ] || { echo "no library at $lib (build first)" >&2; exit 1; }
fuzz=$tools/vthread-fuzz
progs="atomicity order lockorder lostwakeup stale"

for p in $progs; do
    "${CC:-cc}" -O2 -g -pthread -o "$tmp/$p" "$src/$p.c" &&
        "${CC:-cc}" -O2 -g -pthread -DFIXED -o "$tmp/$p-fixed" "$src/$p.c" ||
        { echo "cannot compile $src/$p.c" >&2; exit 1; }
done

# Natively the buggy versions pass almost always: for information.
for p in $progs; do
    bad=0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        timeout 10 "$tmp/$p" >/dev/null 2>&1 || bad=$((bad + 1))
    done
    echo "  native: $p failed $bad of 10 runs"
done

for p in $progs; do
    echo "$p"
    timeout 600 "$fuzz" --lib "$lib" -q -n "$runs" -j 2 --timeout 10 \
        --verify 5 -- "$tmp/$p" >"$tmp/out" 2>&1
    check_rc "vthread-fuzz finds the bug in $p" 1 $?
    check_grep "it prints the seed" '^vthread-fuzz: run [0-9]+ of [0-9]+ failed: seed [0-9]+: ' "$tmp/out"
    check_grep "its replays fail the same way, every time" \
        'replayed 5 times: failed the same way 5 times$' "$tmp/out"
    replay=$(sed -n '/^--- replay ---$/{n;p;q}' "$tmp/out")
    check "there is a replay command" test -n "$replay"
    fails=0
    for _ in 1 2 3; do
        timeout 30 sh -c "$replay" >/dev/null 2>&1 || fails=$((fails + 1))
    done
    check "the printed replay command fails 3 times of 3 ($fails)" test "$fails" -eq 3
    timeout 600 "$fuzz" --lib "$lib" -q -n "$runs" -j 2 --timeout 10 \
        -- "$tmp/$p-fixed" >"$tmp/out" 2>&1
    rc=$?
    check_rc "the correct $p-fixed is never reported" 0 "$rc"
    [ "$rc" -eq 0 ] || sed 's/^/      | /' "$tmp/out"
done

echo "deadlock report"
timeout 600 "$fuzz" --lib "$lib" -q -n "$runs" -j 2 --seed 1 --verify 0 \
    --strategy random -- "$tmp/lockorder" >"$tmp/out" 2>&1
check_grep "a lock-order deadlock is reported as one" \
    'killed by SIGABRT \(deadlock: every thread waits for another\)' "$tmp/out"
check_grep "with the cycle of threads and mutexes" \
    '^    G[0-9]+ waits for mutex 0x[0-9a-f]+, held by G[0-9]+$' "$tmp/out"
check_grep "and each thread's backtrace shows where it waits" \
    '#[0-9]+ +0x[0-9a-f]+ (ab|ba)\+' "$tmp/out"

echo "determinism"
for s in random:7 random:12345 pct:7:3:40; do
    hashes=$(for _ in 1 2 3 4 5; do
        VTHREAD_SCHED=$s VTHREAD_DEBUG=sched LD_PRELOAD=$lib \
            timeout 30 "$tmp/atomicity-fixed" 2>&1 | sed -n 's/.*schedule=//p'
    done | sort -u)
    check "$s: five runs, one schedule ($(echo "$hashes" | tr '\n' ' '))" \
        test "$(echo "$hashes" | grep -c .)" -eq 1
done
one=$(VTHREAD_SCHED=random:1 VTHREAD_DEBUG=sched LD_PRELOAD=$lib "$tmp/atomicity-fixed" 2>&1 | sed -n 's/.*schedule=//p')
two=$(VTHREAD_SCHED=random:2 VTHREAD_DEBUG=sched LD_PRELOAD=$lib "$tmp/atomicity-fixed" 2>&1 | sed -n 's/.*schedule=//p')
check "different seeds, different schedules" test "$one" != "$two"

echo "configuration"
VTHREAD_SCHED=sometimes LD_PRELOAD=$lib timeout 30 "$tmp/order-fixed" >"$tmp/out" 2>&1
check_rc "a bad VTHREAD_SCHED ends the program" 2 $?
check_grep "with a line naming the variable" "^vthread: VTHREAD_SCHED='sometimes': expected" "$tmp/out"
VTHREAD_SCHED=fifo LD_PRELOAD=$lib timeout 30 "$tmp/atomicity-fixed"
check_rc "fifo is plain scheduling" 0 $?
timeout 60 "$fuzz" --help >"$tmp/out" 2>&1
check_rc "--help" 0 $?
check_grep "--help is a manual" '^EXIT STATUS' "$tmp/out"
timeout 60 "$fuzz" -n 0 -- true >"$tmp/out" 2>&1
check_rc "bad usage" 2 $?

echo "live tracebacks"
# A dump (SIGQUIT, a hang's report) interrupts the runtime anywhere; the
# libunwind it calls reads object files through the preload's wrappers.
"${CC:-cc}" -O2 -g -pthread -o "$tmp/dumps" "$src/dumps.c" ||
    { echo "cannot compile $src/dumps.c" >&2; exit 1; }
for mode in fifo random:11; do
    VTHREAD_SCHED=$mode VTHREAD_TRACEBACK=sigquit LD_PRELOAD=$lib \
        timeout 120 env --default-signal=QUIT "$tmp/dumps" >"$tmp/out" 2>&1
    check_rc "$mode: 20 SIGQUIT dumps of 33 churning threads, then a normal end" 0 $?
    n=$(grep -c '^vthread: end of traceback$' "$tmp/out")
    busy=$(grep -c 'another thread is printing one' "$tmp/out")
    check "$mode: every dump completed or found one in progress ($n + $busy)" \
        test $((n + busy)) -eq 20
    check_no_grep "$mode: no fatal error" 'vthread: fatal' "$tmp/out"
done

echo "a real program"
if command -v pigz >/dev/null; then
    head -c 3000000 /dev/urandom | od -x >"$tmp/data"
    cat >"$tmp/pigz.sh" <<EOF
#!/bin/sh
pigz -p 4 -b 128 -c "$tmp/data" | pigz -d -p 4 | cmp -s - "$tmp/data"
EOF
    chmod +x "$tmp/pigz.sh"
    timeout 600 "$fuzz" --lib "$lib" -n 20 -j 2 --timeout 60 -- "$tmp/pigz.sh" >"$tmp/out" 2>&1
    check_rc "pigz -p 4 round trip under 20 schedules" 0 $?
    sed 's/^/      /' "$tmp/out"
else
    echo "  skipped: pigz is not installed (tools/setup installs it)"
fi

finish
