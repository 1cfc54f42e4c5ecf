#!/bin/bash
# test-vthread-stat.sh — tools/vthread-stat on a small pthread program built
# here, with the do-nothing library from fake_preload.c standing in for
# libvthread.so: the table (every row, both columns, the header), --json,
# the process-tree thread count, exit-status and output comparison, the
# timeout watchdog, the perf fallback and the usage errors.
# shellcheck disable=SC2016,SC2317  # $ in single quotes is for the inner sh
. "$(dirname "$0")/lib.sh"

stat=$tools/vthread-stat
lib=$tmp/libfake.so
build_fake_lib "$lib"

# A program with 3 threads that live ~150 ms (so the 2 ms sampler sees all
# 4 OS threads) and a deterministic output.
cat >"$tmp/threads.c" <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static void *work(void *arg)
{
    struct timespec ts = { 0, 150 * 1000 * 1000 };
    volatile unsigned long sum = 0;
    for (unsigned long i = 0; i < 1000000; i++)
        sum += i * (unsigned long)arg;
    nanosleep(&ts, NULL);
    return (void *)sum;
}

int main(void)
{
    pthread_t t[3];
    unsigned long total = 0;
    for (unsigned long i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, work, (void *)(i + 1));
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (unsigned long)r;
    }
    printf("total %lu\n", total);
    return 0;
}
EOF
if ! timeout 60 "${CC:-cc}" -O1 -pthread -o "$tmp/threads" "$tmp/threads.c"; then
    echo "cannot compile the test program" >&2
    exit 1
fi
prog=$tmp/threads

# vs ARGS...: vthread-stat under a watchdog, stdout to $tmp/out, stderr to
# $tmp/err; sets rc.
vs() {
    timeout 120 "$stat" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

# row LABEL: the table line of that metric, with the label removed.
row() {
    grep -F -- "$1" "$tmp/out" | head -1 | cut -c"$((${#1} + 1))"-
}
num='[0-9]+(\.[0-9]+)?'

echo "table, one run per mode"
vs --lib "$lib" -r 1 -- "$prog"
check_rc "vthread-stat on the pthread program" 0 "$rc"
cp "$tmp/out" "$tmp/table"
for h in '^command: +.*threads$' '^runs: +1 per mode' '^VTHREAD_PROCS: +not set' \
         "^library: +$lib\$" '^nproc: +[0-9]+$' '^kernel: +Linux ' '^perf counters: +(yes|no)'; do
    check_grep "header /$h/" "$h" "$tmp/table"
done
check_grep "column headings" \
    '^metric +native \(median\) +vthread \(median\) +vthread/native$' "$tmp/table"

# Rows always measured: a number in both columns and a ratio or "-".
for label in 'wall time (s)' 'user CPU (s)' 'system CPU (s)' 'peak OS threads' \
             'voluntary ctx switches' 'involuntary ctx switches' 'peak RSS (MiB)'; do
    check "row '$label' has both columns" \
        grep -Eq "^ *\*? +$num +$num +($num|-)\$" <<<"$(row "$label")"
done
# perf rows: numbers if the counters work here, else n/a; never a bare 0
# standing for an unsupported counter (those read "not supported").
if grep -q '^perf counters: *yes' "$tmp/table"; then
    perfval="($num|not supported|not counted)"
    perfratio="($num|-)"
else
    perfval='n/a'
    perfratio='-'
fi
for label in 'task clock (s) [perf]' 'context switches [perf]' \
             'CPU migrations [perf]' 'page faults [perf]'; do
    check "row '$label' has both columns" \
        grep -Eq "^ +$perfval +$perfval +$perfratio\$" <<<"$(row "$label")"
done
check "row 'exit status' is 0, 0, same" \
    grep -Eq '^ +0 +0 +same$' <<<"$(row 'exit status')"
check "peak OS threads: 4 in both modes (main + 3)" \
    grep -Eq '^ +4 +4 +1\.00$' <<<"$(row 'peak OS threads')"
check_grep "outputs compared" '^outputs identical: yes' "$tmp/table"
check_no_grep "no warning" 'DIFFERS|TIMEOUT' "$tmp/table"

echo "-p"
vs --lib "$lib" -r 1 -p 2 -- "$prog"
check_grep "-p shows in the header" '^VTHREAD_PROCS: +2 \(from -p\)' "$tmp/out"

echo "--json"
vs --lib "$lib" -r 2 --json -- "$prog"
check_rc "--json" 0 "$rc"
cp "$tmp/out" "$tmp/json"
check "--json parses with python3 -m json.tool" \
    python3 -m json.tool "$tmp/json" /dev/null
check "--json has medians of every row, raw runs, alternation" python3 - "$tmp/json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
keys = ['wall_s', 'user_s', 'sys_s', 'task_clock', 'peak_threads', 'nvcsw',
        'nivcsw', 'context_switches', 'cpu_migrations', 'page_faults',
        'peak_rss_mib', 'status']
for mode in ('native', 'vthread'):
    med = d['medians'][mode]
    missing = [k for k in keys if k not in med]
    assert not missing, (mode, missing)
    assert isinstance(med['wall_s'], float) and med['wall_s'] > 0, med
    assert med['peak_threads'] == 4, med
    assert med['status'] == '0', med
    assert len(d['runs'][mode]) == 2, d['runs'][mode]
    for r in d['runs'][mode]:
        assert all(k in r for k in keys), r
assert set(d['ratios']) >= set(keys), d['ratios']
assert d['status_same'] is True and d['outputs_identical'] is True
# native, vthread, native, vthread
starts = [d['runs'][m][i]['start_s'] for i in range(2)
          for m in ('native', 'vthread')]
assert starts == sorted(starts), starts
EOF

echo "process tree"
vs --lib "$lib" -r 1 -- sh -c '"$0" & "$0" & wait' "$prog"
check "threads of the whole tree: sh + 2 x 4" \
    grep -Eq '^ +9 +9 +1\.00$' <<<"$(row 'peak OS threads')"

echo "rusage-only fallback"
vs --lib "$lib" -r 1 --no-perf -- "$prog"
check_rc "--no-perf" 0 "$rc"
check_grep "header says no perf" '^perf counters: +no \(--no-perf\)' "$tmp/out"
check "perf rows are n/a" \
    grep -Eq '^ +n/a +n/a +-$' <<<"$(row 'page faults [perf]')"
check "rusage rows still there" \
    grep -Eq "^ +$num +$num +($num|-)\$" <<<"$(row 'involuntary ctx switches')"

echo "different exit status and output"
vs --lib "$lib" -r 1 -- sh -c 'case "$LD_PRELOAD" in *libfake*) kill -SEGV $$;; esac'
check_rc "a crash only under the library exits 1" 1 "$rc"
check "exit status row shows both, DIFFERENT" \
    grep -Eq '^ +0 +SIGSEGV +DIFFERENT$' <<<"$(row 'exit status')"
check_grep "... and a loud line after the table" \
    '^\*\*\* EXIT STATUS DIFFERS: native 0, vthread SIGSEGV \*\*\*$' "$tmp/out"

vs --lib "$lib" -r 1 -- sh -c 'kill -SEGV $$'
check_rc "the same crash in both modes is the same status" 0 "$rc"
check "... shown for each side" \
    grep -Eq '^ +SIGSEGV +SIGSEGV +same$' <<<"$(row 'exit status')"

vs --lib "$lib" -r 1 -- sh -c 'echo "$LD_PRELOAD"'
check_grep "different stdout is reported" '^outputs identical: no' "$tmp/out"

vs --lib "$lib" -r 1 --show-output -- sh -c 'echo program-says-hi'
check_grep "--show-output passes the output through" '^program-says-hi$' "$tmp/out"

echo "timeout watchdog"
start=$SECONDS
vs --lib "$lib" -r 1 --timeout 0.5 -- sh -c 'sleep 31.4159 & sleep 31.4159'
check_rc "a run that times out exits 1" 1 "$rc"
check "... promptly" test $((SECONDS - start)) -lt 20
check_grep "... and is reported" '^\*\*\* TIMEOUT: native run 1 was killed after 0.5 s' "$tmp/out"
check "exit status row says timeout" \
    grep -Eq '^ +timeout +timeout +same$' <<<"$(row 'exit status')"
sleep 0.2
# (The [.] keeps the pattern from matching a command line holding it.)
none_left() { ! pgrep -f 'sleep 31[.]4159' >/dev/null; }
check "... its whole process group was killed" none_left

echo "errors"
vs --lib "$lib" --bogus -- "$prog"
check_rc "unknown option" 2 "$rc"
check_grep "... named" 'bogus' "$tmp/err"
vs --lib "$lib" -r 0 -- "$prog"
check_rc "-r 0" 2 "$rc"
vs --lib "$lib"
check_rc "no program" 2 "$rc"
vs --lib "$tmp/nonexistent.so" -- "$prog"
check_rc "missing library" 127 "$rc"
check_grep "... one line" '^vthread-stat: cannot find libvthread.so' "$tmp/err"
vs --lib "$lib" -- "$tmp/no-such-program"
check_rc "missing program" 127 "$rc"

if command -v xz >/dev/null; then
    echo "xz -T2"
    head -c 300000 /dev/urandom | od -x >"$tmp/data"
    vs --lib "$lib" -r 1 -- xz -T2 -1 --block-size=64KiB -c "$tmp/data"
    check_rc "xz -T2" 0 "$rc"
    check "xz uses more than one OS thread" \
        grep -Eq '^ +([2-9]|[1-9][0-9]+) +([2-9]|[1-9][0-9]+) ' <<<"$(row 'peak OS threads')"
    check_grep "xz output identical" '^outputs identical: yes' "$tmp/out"
fi

finish
