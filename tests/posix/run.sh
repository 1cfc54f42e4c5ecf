#!/usr/bin/env bash
# tests/posix/run.sh - the thread, semaphore and signal tests of the Open
# POSIX Test Suite 1.5.2 (Debian's posixtestsuite source package), run
# natively and under LD_PRELOAD=libvthread.so, results compared per test.
#
#   tests/posix/run.sh [--lib PATH] [--jobs N] [--timeout S] [--build DIR]
#                      [--native-only] [--reuse-native] [TEST-GLOB...]
#
# Tests: every NUMBER-NUMBER.c (and *-buildonly.c, which only has to
# compile) under conformance/interfaces/{pthread_*,sem_*,sig*,raise,kill,
# killpg}/, speculative/ included.  A test is named by its path there
# without ".c" (pthread_cond_wait/2-1); a TEST-GLOB is a shell pattern
# matched against that name or its directory (sem_wait, 'pthread_rwlock_*',
# 'sig*/1-1').  Default: all of them.
#
# fetch.sh gets the sources into DIR (--build, default tests/posix/build,
# or $POSIX_BUILD) once.  Each test is compiled with gcc, warnings off,
# with the suite's flags minus -O2 and -Werror (-std=gnu99
# -D_POSIX_C_SOURCE=200112L -Iinclude, then its LDFLAGS file:
# -D_GNU_SOURCE -lpthread -lrt), $(nproc) compilers at a time; binaries
# are kept in DIR/bin and reused.  Then every test runs natively, then
# every test with LD_PRELOAD=PATH (--lib, default $VTHREAD_LIB or
# .libs/libvthread.so; only the test gets it, through env, not timeout;
# env also resets every signal's action to the default),
# --jobs (default 2) at a time, slowest first (tests/posix/durations, then
# DIR/timings of the last full run), each under `timeout -k 5 S`, stdin
# from /dev/null, in a private temporary working directory (also its
# TMPDIR); its process group is killed afterwards.  S is --timeout
# (default 30) or the test's own in tests/posix/settings; under vthread
# at most 3 x the native time + 10 s (at least 15 s).  Tests marked "solo"
# in settings (they set the system clock, or spin at real-time priority)
# run after the others, alone.
#
# Results: PASS FAIL UNRESOLVED UNSUPPORTED UNTESTED (exit 0 1 2 4 5),
# TIMEOUT, SIGNAL n (killed by signal n), EXIT n (any other status);
# BUILT for a build-only test, NOBUILD when it does not compile (both not
# run), NOMAIN for a file without main (a part of another test).
#
# A test whose vthread result differs and that is not listed in
# tests/posix/known-differences runs natively once more: if that gives
# another result, it is flaky natively and does not fail the run (list
# it).  Output: one line per differing test ("DIFF" for a failure, with
# the last lines of its vthread output; "known" for a listed one;
# "flaky natively"), "fixed" for a listed test that now gives the native
# result (remove its line; not said of those listed as "flaky natively" or
# "test race", which match now and then), then "#" lines with the counts
# and times, and "ok posix" or "FAIL posix: ...".  Exit status 0 when
# every test not
# listed gives its native result under vthread, 1 if not or if the
# sources cannot be fetched, 2 for a usage error.  Logs:
# DIR/logs/{native,vthread,native2}/TEST.{log,res}, DIR/results.tsv.
# --native-only: no vthread run; --reuse-native: keep the native results
# of the previous run (for working on vthread; not a baseline to trust).

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

lib=${VTHREAD_LIB:-$repo/.libs/libvthread.so}
jobs=2
tmo=30
build=${POSIX_BUILD:-$here/build}
native_only=0
reuse_native=0
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
        --reuse-native) reuse_native=1; shift ;;
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

# seconds since boot, 1/100 s: immune to the tests that set the clock
uptime_cs() { local u _; read -r u _ < /proc/uptime; u=${u/./}; echo $((10#$u)); }
t_start=$(uptime_cs)
since() { local d=$(( $(uptime_cs) - $1 )); echo $((d / 100)); }

"$here/fetch.sh" "$build" ||
    { echo "FAIL posix: the Open POSIX Test Suite sources could not be fetched (see above)"; exit 1; }
build=$(cd "$build" && pwd)
suite=$build/posixtestsuite
t_fetch=$(since "$t_start")

# ---- the tests
cd "$suite/conformance/interfaces" || exit 1
mapfile -t all < <(find pthread_* sem_* sig* raise kill killpg -type f -name '[0-9]*-*.c' 2>/dev/null |
                   sed 's/\.c$//' | LC_ALL=C sort)
[ ${#all[@]} -gt 1000 ] || { echo "FAIL posix: only ${#all[@]} tests in $suite"; exit 1; }
tests=()
for t in "${all[@]}"; do
    if [ ${#globs[@]} = 0 ]; then tests+=("$t"); continue; fi
    for g in "${globs[@]}"; do
        # shellcheck disable=SC2053
        if [[ $t == $g || ${t%/*} == $g || ${t%%/*} == $g ]]; then tests+=("$t"); break; fi
    done
done
[ ${#tests[@]} -gt 0 ] || { echo "run.sh: no test matches ${globs[*]}" >&2; exit 2; }

# settings: TEST<TAB>timeout=S and/or solo
declare -A tmo_of solo
while IFS=$'\t' read -r name words _; do
    case $name in ''|'#'*) continue ;; esac
    for w in $words; do
        case $w in
            timeout=*) tmo_of[$name]=${w#timeout=} ;;
            solo) solo[$name]=1 ;;
            '#'*) break ;;
            *) echo "run.sh: settings: $name: unknown setting $w" >&2; exit 2 ;;
        esac
    done
done < <(cat "$here/settings" 2>/dev/null)

# ---- build (DIR/bin/TEST and TEST.b: RUN, BUILT, NOBUILD or NOMAIN), in
# the background at nice 19, slowest tests first: the native run starts
# with those while the rest compiles (run_one waits for its binary)
cflags="-std=gnu99 -D_POSIX_C_SOURCE=200112L -w -I$suite/include"
ldflags=$(grep -v '^#' "$suite/LDFLAGS" | tr '\n' ' ')
bin=$build/bin
if [ "$(cat "$bin/.flags" 2>/dev/null)" != "$(gcc -dumpfullversion) $cflags $ldflags" ]; then
    rm -rf "$bin"; mkdir -p "$bin"; echo "$(gcc -dumpfullversion) $cflags $ldflags" > "$bin/.flags"
fi
build_one() {
    local t=$1 out=$bin/$1 r
    [ -f "$out.b" ] && return 0
    mkdir -p "${out%/*}"
    case $t in
        *-buildonly)
            if gcc $cflags -c -o "$out.o" "$t.c" $ldflags >"$out.clog" 2>&1; then r=BUILT; else r=NOBUILD; fi ;;
        *)
            if gcc $cflags -o "$out" "$t.c" $ldflags >"$out.clog" 2>&1; then r=RUN
            elif gcc $cflags -c -o "$out.o" "$t.c" $ldflags >/dev/null 2>&1 &&
                 ! nm -g "$out.o" | grep -q ' T main$'; then r=NOMAIN
            else r=NOBUILD; fi ;;
    esac
    rm -f "$out.o"
    echo $r > "$out.b.tmp" && mv "$out.b.tmp" "$out.b"
}
order() {   # TEST... -> slowest first (durations, then the last run's timings)
    printf '%s\n' "$@" |
        awk -F'\t' -v f1="$here/durations" -v f2="$build/timings" '
            BEGIN { while ((getline l < f1) > 0) { split(l, a, "\t"); d[a[1]] = a[2] }
                    while ((getline l < f2) > 0) { split(l, a, "\t"); d[a[1]] = a[2] } }
            { print ((($1 in d) ? d[$1] : 0) "\t" $1) }' |
        LC_ALL=C sort -t$'\t' -k1,1gr -k2,2 | cut -f2
}
export -f build_one; export bin cflags ldflags
t_build0=$(uptime_cs)
( order "${tests[@]}" | tr '\n' '\0' |
      nice -n 19 xargs -0 -r -n 4 -P "$(nproc)" bash -c 'for t; do build_one "$t"; done' _
  echo $(( $(uptime_cs) - t_build0 )) > "$bin/.took" ) &
builder=$!

par=() ser=()
for t in "${tests[@]}"; do
    case $t in *-buildonly) continue ;; esac
    if [ -n "${solo[$t]+x}" ]; then ser+=("$t"); else par+=("$t"); fi
done

# ---- run
logs=$build/logs tmp=$build/tmp
rm -rf "$logs/vthread" "$logs/native2" "$tmp"
[ $reuse_native = 1 ] || rm -rf "$logs/native"
mkdir -p "$logs" "$tmp"

run_one() {     # MODE TEST TIMEOUT: run $bin/TEST, write $logs/MODE/TEST.{log,res}
    local mode=$1 t=$2 s=$3 log=$logs/$1/$2 wd pid rc t0 t1 u res b pre=()
    mkdir -p "${log%/*}"
    until [ -f "$bin/$t.b" ]; do   # built in the background
        kill -0 "$builder" 2>/dev/null || break
        sleep 0.05
    done
    read -r b < "$bin/$t.b" 2>/dev/null || b=NOBUILD
    if [ "$b" != RUN ]; then printf '%s\t0\n' "$b" > "$log.res"; return; fi
    wd=$(mktemp -d "$tmp/XXXXXX")
    # default actions for every signal (a background job of a shell
    # without job control ignores SIGINT and SIGQUIT, and so would the test)
    pre=(env --default-signal)
    [ "$mode" = vthread ] && pre+=("LD_PRELOAD=$lib")
    read -r u _ < /proc/uptime; t0=${u/./}
    (cd "$wd" && TMPDIR=$wd exec timeout -k 5 "$s" "${pre[@]}" "$bin/$t" </dev/null >"$log.log" 2>&1) &
    pid=$!
    { wait $pid; } 2>/dev/null; rc=$?
    read -r u _ < /proc/uptime; t1=${u/./}
    kill -KILL -- -$pid 2>/dev/null   # whatever the test left behind in its group
    rm -rf "$wd"
    case $rc in
        0) res=PASS ;; 1) res=FAIL ;; 2) res=UNRESOLVED ;; 4) res=UNSUPPORTED ;; 5) res=UNTESTED ;;
        124) res=TIMEOUT ;;
        137) if [ $((10#$t1 - 10#$t0)) -ge $((s * 100)) ]; then res=TIMEOUT; else res="SIGNAL 9"; fi ;;
        *) if [ $rc -gt 128 ] && [ $rc -le 192 ]; then res="SIGNAL $((rc - 128))"; else res="EXIT $rc"; fi ;;
    esac
    printf '%s\t%d.%02d\n' "$res" $(((10#$t1 - 10#$t0) / 100)) $(((10#$t1 - 10#$t0) % 100)) > "$log.res"
}
export -f run_one; export logs tmp lib bin builder
declare -A nres vres ndur
read_res() {    # MODE ARRAY TEST...: results into ARRAY (and native times into ndur)
    local mode=$1 t r d; local -n a=$2; shift 2
    for t; do
        if IFS=$'\t' read -r r d < "$logs/$mode/$t.res" 2>/dev/null; then
            a[$t]=$r; [ "$mode" = native ] && ndur[$t]=$d
        else
            a[$t]="NO RESULT"
        fi
    done
}
timeout_for() { # MODE TEST -> seconds
    local s=${tmo_of[$2]:-$tmo}
    if [ "$1" = vthread ] && [ "${nres[$2]:-}" != TIMEOUT ] && [ -n "${ndur[$2]:-}" ]; then
        local v=$(( 3 * ${ndur[$2]%.*} + 10 ))
        [ $v -lt 15 ] && v=15
        [ $v -lt "$s" ] && s=$v
    fi
    echo "$s"
}
run_all() {     # MODE TEST...
    local mode=$1 t; shift
    local -a p=() s=()
    for t; do if [ -n "${solo[$t]+x}" ]; then s+=("$t"); else p+=("$t"); fi; done
    if [ ${#p[@]} -gt 0 ]; then
        for t in $(order "${p[@]}"); do printf '%s\0%s\0' "$t" "$(timeout_for "$mode" "$t")"; done |
            xargs -0 -r -n 2 -P "$jobs" bash -c 'run_one "$0" "$1" "$2"' "$mode"
    fi
    for t in "${s[@]}"; do run_one "$mode" "$t" "$(timeout_for "$mode" "$t")"; done
}

t0=$(uptime_cs)
todo=("${par[@]}" "${ser[@]}")
if [ $reuse_native = 1 ]; then
    todo=()
    for t in "${par[@]}" "${ser[@]}"; do [ -f "$logs/native/$t.res" ] || todo+=("$t"); done
fi
run_all native "${todo[@]}"
t_native=$(since "$t0")
wait $builder
t_build=$(( $(cat "$bin/.took" 2>/dev/null || echo 0) / 100 ))
declare -A bres
for t in "${tests[@]}"; do read -r "bres[$t]" < "$bin/$t.b" 2>/dev/null || bres[$t]=NOBUILD; done
p=() s=()   # from now on only the tests that were built and have a main
for t in "${par[@]}"; do [ "${bres[$t]}" = RUN ] && p+=("$t"); done
for t in "${ser[@]}"; do [ "${bres[$t]}" = RUN ] && s+=("$t"); done
par=("${p[@]}") ser=("${s[@]}")
read_res native nres "${par[@]}" "${ser[@]}"
# durations for the next run's order (only a run of every test replaces them)
if [ ${#globs[@]} = 0 ]; then
    for t in "${par[@]}" "${ser[@]}"; do printf '%s\t%s\n' "$t" "${ndur[$t]:-0}"; done > "$build/timings"
fi
t_vthread=0
if [ $native_only = 0 ]; then
    t0=$(uptime_cs)
    run_all vthread "${par[@]}" "${ser[@]}"
    t_vthread=$(since "$t0")
    read_res vthread vres "${par[@]}" "${ser[@]}"
fi

# ---- compare
declare -A known
while IFS=$'\t' read -r name reason; do
    case $name in ''|'#'*) continue ;; esac
    known[$name]=${reason:-"(no reason given)"}
done < <(cat "$here/known-differences" 2>/dev/null)
differ=() again=()
for t in "${tests[@]}"; do
    if [ "${bres[$t]}" != RUN ]; then nres[$t]=${bres[$t]}; vres[$t]=${bres[$t]}; fi
    [ $native_only = 1 ] && vres[$t]=${nres[$t]}
    [ "${nres[$t]}" = "${vres[$t]}" ] && continue
    differ+=("$t")
    [ -n "${known[$t]+x}" ] || again+=("$t")
done
t_rerun=0
declare -A n2res
if [ ${#again[@]} -gt 0 ]; then
    t0=$(uptime_cs)
    run_all native2 "${again[@]}"
    t_rerun=$(since "$t0")
    read_res native2 n2res "${again[@]}"
fi

status=0
n_diff=0 n_known=0 n_flaky=0 n_fixed=0 n_racy=0
for t in "${tests[@]}"; do
    n=${nres[$t]} v=${vres[$t]}
    if [ "$n" = "$v" ]; then
        if [ -n "${known[$t]+x}" ] && [ "${bres[$t]}" = RUN ] && [ $native_only = 0 ]; then
            case ${known[$t]} in
                "flaky natively"*|"test race"*) n_racy=$((n_racy + 1)) ;;   # expected now and then
                *) echo "fixed $t: $n natively and under vthread; remove its line from known-differences if it stays so (${known[$t]})"
                   n_fixed=$((n_fixed + 1)) ;;
            esac
        fi
        continue
    fi
    if [ -n "${known[$t]+x}" ]; then
        echo "known $t: native $n, vthread $v (${known[$t]})"
        n_known=$((n_known + 1))
    elif [ "${n2res[$t]:-}" != "$n" ]; then
        echo "flaky natively $t: native $n, then ${n2res[$t]:-}; vthread $v (list it in known-differences)"
        n_flaky=$((n_flaky + 1))
    else
        echo "DIFF $t: native $n, vthread $v"
        tail -n 5 "$logs/vthread/$t.log" 2>/dev/null | cut -c1-200 | sed 's/^/    | /'
        n_diff=$((n_diff + 1)); status=1
    fi
done
if [ ${#globs[@]} = 0 ]; then
    for t in "${!known[@]}"; do
        [ -n "${nres[$t]+x}" ] || echo "note: known-differences lists $t, which is not a test"
    done
fi

counts() {      # ARRAY: "PASS 10, FAIL 2, ..."
    local -n a=$1
    local t
    for t in "${tests[@]}"; do echo "${a[$t]}"; done | LC_ALL=C sort | uniq -c |
        awk '{ c = $1; $1 = ""; sub(/^ /, ""); printf "%s%s %d", (NR > 1 ? ", " : ""), $0, c } END { print "" }'
}
{
    printf '# TEST\tNATIVE\tVTHREAD\tNATIVE-AGAIN\n'
    for t in "${tests[@]}"; do printf '%s\t%s\t%s\t%s\n' "$t" "${nres[$t]}" "${vres[$t]}" "${n2res[$t]:-}"; done
} > "$build/results.tsv"
echo "# ${#tests[@]} tests, ${#par[@]} + ${#ser[@]} run (the others build-only, not tests, or not built)"
echo "# native:  $(counts nres)"
[ $native_only = 1 ] || echo "# vthread: $(counts vres)"
[ $native_only = 1 ] ||
    echo "# differ: $((n_diff + n_known + n_flaky)) ($n_diff unexpected, $n_known known, $n_flaky flaky natively); listed but same: $n_fixed fixed, $n_racy flaky or racy"
echo "# time: ${t_fetch} s fetch, ${t_build} s build, ${t_native} s native, ${t_vthread} s vthread, ${t_rerun} s native again; $(since "$t_start") s in all"
if [ $status = 0 ]; then echo "ok posix"; else echo "FAIL posix: $n_diff tests differ under vthread"; fi
exit $status
