#!/usr/bin/env bash
# tests/posix/run.sh - the thread, semaphore and signal tests of the Open
# POSIX Test Suite 1.5.2 (Debian's posixtestsuite source package), run
# natively and under LD_PRELOAD=libvthread.so, results compared per test.
#
#   tests/posix/run.sh [--lib PATH] [--jobs N] [--timeout S] [--build DIR]
#                      [--native-only] [TEST-GLOB...]
#
# Tests: every NUMBER-NUMBER.c (and *-buildonly.c, which only has to
# compile) under conformance/interfaces/{pthread_*,sem_*,sig*,raise,kill,
# killpg}/, speculative/ included.  A test is named by its path there
# without ".c" (pthread_cond_wait/2-1); a TEST-GLOB is a shell pattern
# matched against that name or its directory (sem_wait, 'pthread_rwlock_*',
# 'sig*/1-1').  Default: all of them.
#
# fetch.sh gets the sources into DIR (--build, default tests/posix/build,
# or $POSIX_BUILD) once; each test is compiled there with gcc, warnings
# off, as the suite's Makefile does (-O2 -std=gnu99
# -D_POSIX_C_SOURCE=200112L -Iinclude, then its LDFLAGS file:
# -D_GNU_SOURCE -lpthread -lrt), $(nproc) compilers at a time; binaries
# are kept and reused.  Every test then runs natively, then every test
# with LD_PRELOAD=PATH (--lib, default $VTHREAD_LIB or .libs/libvthread.so;
# only the test gets it, through env, not timeout), --jobs (default 2)
# tests at a time, each under `timeout -k 5 S` (--timeout, default 30),
# stdin from /dev/null, in a private temporary working directory (also
# its TMPDIR); its process group is killed afterwards.  Slowest first,
# by the durations of the previous run (DIR/timings) or, on a fresh
# checkout, tests/posix/slow.
#
# Results: PASS FAIL UNRESOLVED UNSUPPORTED UNTESTED (exit 0 1 2 4 5),
# TIMEOUT, SIGNAL n (killed by signal n), EXIT n (any other status);
# BUILT for a build-only test, NOBUILD when it does not compile (both not
# run).  A test whose vthread result differs is run natively once more:
# if that gives another result, the test is flaky natively and does not
# count as a difference (it should go into known-differences).
#
# Output: one line per differing test ("DIFF" for a failure, "known" for
# a test listed in tests/posix/known-differences, one "TEST<TAB>reason"
# per line, # comments) with both results and, for DIFF, the last lines
# of the vthread output; "fixed" for a listed test that now gives the
# native result (remove its line); then the counts.  Exit status 0 when
# every test not listed gives the native result under vthread, 1 if not
# (or if the sources cannot be fetched), 2 for a usage error.  Logs:
# DIR/logs/{native,native2,vthread}/TEST.log, results DIR/results.tsv.

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

lib=${VTHREAD_LIB:-$repo/.libs/libvthread.so}
jobs=2
tmo=30
build=${POSIX_BUILD:-$here/build}
native_only=0
globs=()
usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
while [ $# -gt 0 ]; do
    case $1 in
        --lib) lib=${2:?--lib PATH}; shift 2 ;;
        --lib=*) lib=${1#*=}; shift ;;
        --jobs) jobs=${2:?--jobs N}; shift 2 ;;
        --jobs=*) jobs=${1#*=}; shift ;;
        --timeout) tmo=${2:?--timeout S}; shift 2 ;;
        --timeout=*) tmo=${1#*=}; shift ;;
        --build) build=${2:?--build DIR}; shift 2 ;;
        --build=*) build=${1#*=}; shift ;;
        --native-only) native_only=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) globs+=("$1"); shift ;;
    esac
done
case $jobs in ''|*[!0-9]*|0) echo "run.sh: bad --jobs $jobs" >&2; exit 2 ;; esac
case $tmo in ''|*[!0-9]*|0) echo "run.sh: bad --timeout $tmo" >&2; exit 2 ;; esac
if [ $native_only = 0 ]; then
    [ -f "$lib" ] || { echo "run.sh: no library $lib (--lib PATH)" >&2; exit 2; }
    lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
fi

t_start=$SECONDS
"$here/fetch.sh" "$build" || { echo "FAIL posix: the Open POSIX Test Suite sources could not be fetched (see above)"; exit 1; }
build=$(cd "$build" && pwd)
suite=$build/posixtestsuite
ifaces=$suite/conformance/interfaces
t_fetch=$((SECONDS - t_start))

# ---- the tests
cd "$ifaces" || exit 1
mapfile -t all < <(find pthread_* sem_* sig* raise kill killpg -type f -name '[0-9]*-*.c' 2>/dev/null |
                   sed 's/\.c$//' | LC_ALL=C sort)
tests=()
for t in "${all[@]}"; do
    if [ ${#globs[@]} = 0 ]; then tests+=("$t"); continue; fi
    for g in "${globs[@]}"; do
        # shellcheck disable=SC2053
        if [[ $t == $g || ${t%/*} == $g || ${t%/[0-9]*} == $g ]]; then tests+=("$t"); break; fi
    done
done
[ ${#tests[@]} -gt 0 ] || { echo "run.sh: no test matches ${globs[*]}" >&2; exit 2; }

# ---- build (binaries under $build/bin, kept while the flags stay the same)
cflags="-O2 -std=gnu99 -D_POSIX_C_SOURCE=200112L -w -I$suite/include"
ldflags=$(grep -v '^#' "$suite/LDFLAGS" | tr '\n' ' ')
bin=$build/bin
if [ "$(cat "$bin/.flags" 2>/dev/null)" != "$cflags $ldflags" ]; then
    rm -rf "$bin"; mkdir -p "$bin"; echo "$cflags $ldflags" > "$bin/.flags"
fi
build_one() {   # NAME -> $bin/NAME (executable) and $bin/NAME.b (BUILT, NOBUILD, NOMAIN, RUN)
    local t=$1 out=$bin/$1 r
    [ -f "$out.b" ] && return 0
    mkdir -p "${out%/*}"
    case $t in
        *-buildonly)
            if gcc $cflags -c -o "$out.o" "$t.c" $ldflags >"$out.clog" 2>&1; then r=BUILT; else r=NOBUILD; fi
            rm -f "$out.o" ;;
        *)
            if gcc $cflags -o "$out" "$t.c" $ldflags >"$out.clog" 2>&1; then r=RUN
            elif gcc $cflags -c -o "$out.o" "$t.c" $ldflags >/dev/null 2>&1 &&
                 ! nm -g "$out.o" | grep -q ' T main$'; then r=NOMAIN   # a part of another test
            else r=NOBUILD; fi
            rm -f "$out.o" ;;
    esac
    echo $r > "$out.b"
}
export -f build_one; export bin cflags ldflags
t0=$SECONDS
printf '%s\0' "${tests[@]}" | xargs -0 -r -n 8 -P "$(nproc)" bash -c 'for t; do build_one "$t"; done' _
t_build=$((SECONDS - t0))

declare -A bres
runnable=()
for t in "${tests[@]}"; do
    bres[$t]=$(cat "$bin/$t.b" 2>/dev/null || echo NOBUILD)
    [ "${bres[$t]}" = RUN ] && runnable+=("$t")
done

# ---- run: slowest first (durations of the last run, else tests/posix/slow)
order() {   # the runnable tests, slowest first
    local f=$build/timings
    [ -s "$f" ] || f=$here/slow
    [ -f "$f" ] || f=/dev/null
    printf '%s\n' "$@" |
        awk -F'\t' -v f="$f" 'BEGIN { while ((getline l < f) > 0) { split(l, a, "\t"); d[a[1]] = a[2] } }
                             { print ((($1 in d) ? d[$1] : 0) "\t" $1) }' |
        LC_ALL=C sort -t$'\t' -k1,1gr -k2,2 | cut -f2
}
run_one() {     # MODE NAME: run $bin/NAME, write $logs/MODE/NAME.{log,res}
    local mode=$1 t=$2 log=$logs/$1/$2 wd pid rc t0 t1 el res pre=()
    mkdir -p "${log%/*}"
    wd=$(mktemp -d "$tmp/XXXXXX")
    [ "$mode" = vthread ] && pre=(env "LD_PRELOAD=$lib")
    t0=$EPOCHREALTIME
    (cd "$wd" && TMPDIR=$wd exec timeout -k 5 "$tmo" "${pre[@]}" "$bin/$t" </dev/null >"$log.log" 2>&1) &
    pid=$!
    wait $pid; rc=$?
    t1=$EPOCHREALTIME
    kill -KILL -- -$pid 2>/dev/null   # whatever the test left behind in its group
    rm -rf "$wd"
    el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    case $rc in
        0) res=PASS ;; 1) res=FAIL ;; 2) res=UNRESOLVED ;; 4) res=UNSUPPORTED ;; 5) res=UNTESTED ;;
        124) res=TIMEOUT ;;
        137) if awk -v e="$el" -v t="$tmo" 'BEGIN { exit !(e >= t) }'; then res=TIMEOUT; else res="SIGNAL 9"; fi ;;
        *) if [ $rc -gt 128 ]; then res="SIGNAL $((rc - 128))"; else res="EXIT $rc"; fi ;;
    esac
    printf '%s\t%s\n' "$res" "$el" > "$log.res"
}
export -f run_one; export logs=$build/logs tmp=$build/tmp lib tmo
rm -rf "$build/logs" "$build/tmp"; mkdir -p "$build/logs" "$build/tmp"
run_all() {     # MODE TEST...
    local mode=$1; shift
    [ $# -gt 0 ] || return 0
    order "$@" | tr '\n' '\0' | xargs -0 -r -n 1 -P "$jobs" bash -c 'run_one "$0" "$1"' "$mode"
}
res() { cut -f1 "$logs/$1/$2.res" 2>/dev/null || echo "NO RESULT"; }

t0=$SECONDS
run_all native "${runnable[@]}"
t_native=$((SECONDS - t0))
# durations for the next run's order (only a run of every test replaces them)
if [ ${#globs[@]} = 0 ]; then
    for t in "${runnable[@]}"; do printf '%s\t%s\n' "$t" "$(cut -f2 "$logs/native/$t.res")"; done > "$build/timings"
fi
t_vthread=0
if [ $native_only = 0 ]; then
    t0=$SECONDS
    run_all vthread "${runnable[@]}"
    t_vthread=$((SECONDS - t0))
fi

# ---- compare
declare -A known
kf=$here/known-differences
if [ -f "$kf" ]; then
    while IFS=$'\t' read -r name reason; do
        case $name in ''|'#'*) continue ;; esac
        known[$name]=${reason:-"(no reason given)"}
    done < "$kf"
fi
declare -A nres vres
differ=()
for t in "${tests[@]}"; do
    if [ "${bres[$t]}" = RUN ]; then
        nres[$t]=$(res native "$t")
        if [ $native_only = 0 ]; then vres[$t]=$(res vthread "$t"); else vres[$t]=${nres[$t]}; fi
    else
        nres[$t]=${bres[$t]}; vres[$t]=${bres[$t]}
    fi
    [ "${nres[$t]}" != "${vres[$t]}" ] && differ+=("$t")
done
t_rerun=0
if [ ${#differ[@]} -gt 0 ]; then
    t0=$SECONDS
    run_all native2 "${differ[@]}"
    t_rerun=$((SECONDS - t0))
fi

status=0
n_diff=0 n_known=0 n_flaky=0 n_fixed=0
for t in "${tests[@]}"; do
    n=${nres[$t]} v=${vres[$t]}
    if [ "$n" = "$v" ]; then
        if [ -n "${known[$t]+x}" ] && [ "${bres[$t]}" = RUN ]; then
            echo "fixed $t: $n natively and under vthread; remove it from known-differences (${known[$t]})"
            n_fixed=$((n_fixed + 1))
        fi
        continue
    fi
    n2=$(res native2 "$t")
    if [ -n "${known[$t]+x}" ]; then
        echo "known $t: native $n, vthread $v (${known[$t]})"
        n_known=$((n_known + 1))
    elif [ "$n2" != "$n" ]; then
        echo "flaky natively $t: native $n, then $n2; vthread $v (list it in known-differences)"
        n_flaky=$((n_flaky + 1))
    else
        echo "DIFF $t: native $n, vthread $v"
        tail -n 5 "$logs/vthread/$t.log" 2>/dev/null | cut -c1-200 | sed 's/^/    | /'
        n_diff=$((n_diff + 1)); status=1
    fi
done
for t in "${!known[@]}"; do
    [ -n "${nres[$t]+x}" ] || [ ${#globs[@]} -gt 0 ] ||
        echo "note: known-differences lists $t, which is not a test here"
done

counts() {      # ARRAY-NAME: "PASS 10, FAIL 2, ..."
    local -n a=$1
    local t
    for t in "${tests[@]}"; do echo "${a[$t]}"; done | sort | uniq -c |
        awk '{ c = $1; $1 = ""; sub(/^ /, ""); printf "%s%s %d", (NR > 1 ? ", " : ""), $0, c } END { print "" }'
}
{
    printf '# TEST\tNATIVE\tVTHREAD\tNATIVE2\n'
    for t in "${tests[@]}"; do
        printf '%s\t%s\t%s\t%s\n' "$t" "${nres[$t]}" "${vres[$t]}" "$( [ "${nres[$t]}" = "${vres[$t]}" ] || res native2 "$t")"
    done
} > "$build/results.tsv"
echo "# ${#tests[@]} tests (${#runnable[@]} run; the others build-only or not built)"
echo "# native:  $(counts nres)"
[ $native_only = 1 ] || echo "# vthread: $(counts vres)"
echo "# differ: $((n_diff + n_known + n_flaky)) ($n_diff unexpected, $n_known known, $n_flaky flaky natively); $n_fixed known fixed"
echo "# time: ${t_fetch} s fetch, ${t_build} s build, ${t_native} s native, ${t_vthread} s vthread, ${t_rerun} s native rerun; $((SECONDS - t_start)) s in all"
if [ $status = 0 ]; then echo "ok posix"; else echo "FAIL posix: $n_diff tests differ under vthread"; fi
exit $status
