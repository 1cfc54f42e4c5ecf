#!/bin/bash
# tests/gdb/run.sh — the gdb extension (tools/gdb/vthread-gdb.py) on a
# program whose 42 threads are blocked in six different ways
# (tests/gdb/blocked.c: condition variable, sleep, pipe read, mutex, join,
# semaphore, and pause() for the joined ones), run under the preload.
#
#   tests/gdb/run.sh [--lib PATH]
#
# Attached to the live process, on a core made with gcore, and on a core
# the kernel wrote when the program was killed by SIGABRT:
#  - `info vthreads` lists all 43 Gs, each with its name, its wait reason
#    and its start routine;
#  - `vthread apply all bt` shows, for each G, the function it blocked in
#    and the program's function below it, with no broken unwinding;
#  - `vthread N bt` for one G.
# Also: gdb loads the script by itself from an auto-load directory under
# the library's installed name; a script of another layout version and a
# program not under vthread get clear messages.  Prints "N/M checks
# passed".
. "$(dirname "$0")/../tools/lib.sh"

lib_arg "$@"
command -v gdb >/dev/null && command -v gcore >/dev/null ||
    { echo "gdb and gcore are needed (apt-get install gdb)" >&2; exit 1; }
script=$tools/gdb/vthread-gdb.py
"${CC:-cc}" -O1 -g -pthread -o "$tmp/blocked" "$src/blocked.c" ||
    { echo "cannot compile $src/blocked.c" >&2; exit 1; }

# gdb in batch mode, no user init file, with a watchdog
g() { timeout -k 5 120 gdb -nx -batch "$@" 2>&1; }

# VTHREAD_GUARD=mprotect: on Linux >= 6.13 the stacks' guard pages are
# guard regions, and gcore cannot read the megabyte around each one
# (docs/debugging.md); a live gdb reads them either way.
VTHREAD_GUARD=mprotect LD_PRELOAD=$lib "$tmp/blocked" >"$tmp/ready" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    grep -q ready "$tmp/ready" && break
    sleep 0.1
done
check "the program got every thread blocked" grep -q ready "$tmp/ready"

# what every listing and backtrace must show, per kind of blocking:
# name prefix, wait reason, start routine, blocking function (bt)
kinds="cv|condition variable|cv_waiter|in wait_ours .*preload/cond.c
sleep|sleep|sleeper|in g_nanosleep
pipe|descriptor readable|pipe_reader|in read .*preload/io.c
mutex|mutex|locker|lock_ours .*preload/mutex.c
join|thread join|joiner|in pthread_join
sem|semaphore|sem_waiter|in sem_wait
forever|sigsuspend|forever|in pause"

verify() { # WHERE OUTPUT
    local where=$1 out=$2
    check_grep "$where: info vthreads counts 43 threads" \
        '^43 threads on [0-9]+ OS threads' "$out"
    check_grep "$where: the main thread waits to join" \
        '^. 1 +- +waiting: thread join.* main$' "$out"
    while IFS='|' read -r name reason fn frame; do
        local n
        n=$(grep -Ec "^. [0-9]+ +$name-[0-9] +waiting: $reason .*$fn\$" "$out")
        check "$where: info vthreads: 6 $name-N threads, waiting: $reason, started in $fn ($n)" \
            test "$n" -eq 6
        # each of their backtraces: the blocking function, then the
        # program's function
        n=$(awk -v name="$name" -v frame="$frame" -v fn="$fn" '
            /^G[0-9]+ \(/ { inside = index($0, "(" name "-") > 0; seen = 0; next }
            inside && $0 ~ frame { seen = 1 }
            inside && seen == 1 && $0 ~ (" in " fn " ") { seen = 2; count++ }
            END { print count + 0 }' "$out")
        check "$where: vthread apply all bt: 6 $name-N backtraces reach $frame, then $fn ($n)" \
            test "$n" -eq 6
    done <<<"$kinds"
    check_no_grep "$where: no broken unwinding" \
        'corrupt stack|Python Exception|not unwind|Error' "$out"
}

g -p "$pid" -ex "source $script" -ex 'info vthreads' \
    -ex 'vthread apply all bt' -ex 'vthread 1 bt' >"$tmp/live.out"
verify live "$tmp/live.out"
# a frame of a parked G, by its own number, and a command in it
g -p "$pid" -ex "source $script" -ex 'vthread 1 bt' \
    -ex 'vthread 1 frame 0 info frame' >"$tmp/frame.out"
n=$(grep -E '^#[0-9]+ +0x[0-9a-f]+ in main \(\)' "$tmp/frame.out" | head -1 |
    sed 's/^#\([0-9]*\).*/\1/')
g -p "$pid" -ex "source $script" -ex "vthread 1 frame $n" \
    -ex "vthread 1 frame $n info locals" >"$tmp/frame.out"
check_grep "live: vthread 1 frame $n is main's frame, by the G's numbering" \
    "^#$n +0x[0-9a-f]+ in main \(\) at .*blocked.c" "$tmp/frame.out"
check_grep "live: a command runs in that frame (main's locals)" \
    '^kinds = ' "$tmp/frame.out"
check_grep "live: vthread 1 bt is main's backtrace" \
    '^#[0-9]+ +0x[0-9a-f]+ in main \(\) at .*blocked.c' "$tmp/live.out"
check_grep "live: wait times are shown" \
    'waiting: semaphore [0-9]+\.[0-9]{3} s on 0x' "$tmp/live.out"

timeout -k 5 120 gcore -o "$tmp/core" "$pid" >/dev/null 2>&1
core=$tmp/core.$pid
check "gcore wrote a core" test -s "$core"
{ kill -9 "$pid"; wait "$pid"; } 2>/dev/null

g "$tmp/blocked" "$core" -ex "source $script" -ex 'info vthreads' \
    -ex 'vthread apply all bt' >"$tmp/core.out"
verify core "$tmp/core.out"
check_grep "core: it says wait times are unknown" \
    'a core file: wait times unknown' "$tmp/core.out"

# A core the kernel writes when the program dies (SIGABRT), with the
# default guard pages (guard regions on Linux >= 6.13, which the kernel's
# dumper, unlike gcore, reads past).  Only where core_pattern writes a
# plain file in the working directory (not a pipe to systemd-coredump).
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null)
case $pattern in
    core*)
        mkdir -p "$tmp/kcore"
        (
            cd "$tmp/kcore" || exit
            ulimit -c unlimited
            LD_PRELOAD=$lib "$tmp/blocked" >ready 2>&1 &
            kpid=$!
            for _ in $(seq 1 300); do
                grep -q ready "$tmp/kcore/ready" 2>/dev/null && break
                sleep 0.1
            done
            kill -ABRT "$kpid"
            wait "$kpid"
        ) 2>/dev/null
        kcore=$(ls "$tmp"/kcore/core* 2>/dev/null | head -1)
        check "the kernel wrote a core (SIGABRT, default guard pages)" \
            test -n "$kcore"
        if [ -n "$kcore" ]; then
            g "$tmp/blocked" "$kcore" -ex "source $script" \
                -ex 'info vthreads' -ex 'vthread apply all bt' >"$tmp/kcore.out"
            verify kernel-core "$tmp/kcore.out"
        fi
        ;;
    *)
        echo "skip kernel core: core_pattern is '$pattern', not a file here"
        ;;
esac

# auto-load: the script under the library's real name in an auto-load
# directory (make install puts it there), loaded without `source`
real=$(readlink -f "$lib")
mkdir -p "$tmp/autoload$(dirname "$real")"
cp "$script" "$tmp/autoload$real-gdb.py"
g -iex "set auto-load scripts-directory $tmp/autoload" \
    -iex "set auto-load safe-path /" "$tmp/blocked" "$core" \
    -ex 'info vthreads' >"$tmp/auto.out"
check_grep "auto-load: gdb loads the script for libvthread by itself" \
    '^43 threads on' "$tmp/auto.out"

# a script for another layout is refused, with both versions named
sed 's/^LAYOUT_VERSION = 1$/LAYOUT_VERSION = 99/' "$script" >"$tmp/v99.py"
g "$tmp/blocked" "$core" -ex "source $tmp/v99.py" -ex 'info vthreads' \
    >"$tmp/v99.out"
check_grep "another layout version is refused, naming both" \
    'debug layout is version 1, this script reads version 99' "$tmp/v99.out"

# not under vthread
"$tmp/blocked" >"$tmp/ready2" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    grep -q ready "$tmp/ready2" && break
    sleep 0.1
done
g -p "$pid" -ex "source $script" -ex 'info vthreads' >"$tmp/native.out"
{ kill -9 "$pid"; wait "$pid"; } 2>/dev/null
check_grep "a program not under vthread: a clear message" \
    'does not run under vthread' "$tmp/native.out"

finish
