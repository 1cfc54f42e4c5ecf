#!/usr/bin/env bash
# tests/static/run.sh — installs vthread into a temporary prefix, builds the autotools project in tests/static against it
# with the VTHREAD_ENABLE macro, and checks that the program's threads are
# vthread's: 1,000 blocked threads on a few OS threads, no libvthread.so
# mapped, the runtime's stats printed.  Ends with "N passed, N failed".
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
step() { local name=$1; shift; if "$@" >"$tmp/$name.log" 2>&1; then ok "$name"; else bad "$name"; tail -n 20 "$tmp/$name.log" | sed 's/^/#   /'; return 1; fi; }

mkdir -p "$tmp/proj"
# Install the tree's build (tools/setup configured it) into a temporary
# prefix, as "make install" would into /usr/local.
build_install() {
    make -C "$src" -j"$(nproc)" >/dev/null &&
    make -C "$src" install prefix="$tmp/prefix" >/dev/null
}
step install build_install || { echo "$pass passed, $fail failed"; exit 1; }

cp "$src/tests/static/configure.ac" "$src/tests/static/Makefile.am" \
   "$src/tests/static/demo.c" "$tmp/proj/"
build_project() {
    cd "$tmp/proj" &&
    ACLOCAL_PATH="$tmp/prefix/share/aclocal" autoreconf -fi &&
    PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" ./configure -q &&
    make >/dev/null
}
step project build_project || { echo "$pass passed, $fail failed"; exit 1; }

out=$(cd "$tmp/proj" && VTHREAD_DEBUG=stats timeout 60 ./demo 2>"$tmp/stderr")
rc=$?
echo "# $out"
procs=$(nproc)
os=$(printf '%s\n' "$out" | sed -n 's/.*os_threads=\([0-9]*\).*/\1/p')
[ $rc = 0 ] && ok "runs" || bad "runs (exit $rc)"
[ -n "$os" ] && [ "$os" -le $((procs + 8)) ] && ok "threads are Gs ($os OS threads for 1,000 threads)" \
    || bad "threads are Gs: $os OS threads for 1,000 threads"
printf '%s\n' "$out" | grep -q "libvthread_so_mapped=0" && ok "no libvthread.so mapped" || bad "libvthread.so mapped"
grep -q "gs_created=1001" "$tmp/stderr" && ok "runtime stats (1,001 Gs)" || { bad "runtime stats"; cat "$tmp/stderr"; }
ldd "$tmp/proj/demo" | grep -q libvthread && bad "not linked statically" || ok "linked statically"
# Secure-execution mode (a setuid program: AT_SECURE): the variables that
# write files (VTHREAD_SCHED_REPORT, VTHREAD_TRACE) are ignored, as glibc ignores its own there.  LD_PRELOAD is
# itself ignored for setuid programs, so this is the statically linked
# demo, made setuid to nobody (run by root, its effective user differs
# from its real one).  The same binary without the bit writes the files.
secure() {
    local sec=$tmp/sec
    mkdir -p "$sec/out" && chmod 755 "$tmp" "$sec" && chmod 1777 "$sec/out" &&
    cp "$tmp/proj/demo" "$sec/demo-suid" && cp "$tmp/proj/demo" "$sec/demo" &&
    chown nobody "$sec/demo-suid" && chmod 4755 "$sec/demo-suid" || return 1
    local v
    for v in demo demo-suid; do
        (cd "$sec" && VTHREAD_SCHED=random:1 \
            VTHREAD_SCHED_REPORT="$sec/out/$v.report" \
            VTHREAD_TRACE="$sec/out/$v.json" \
            timeout 60 "./$v" >/dev/null 2>&1) || return 1
    done
    [ -s "$sec/out/demo.report" ] || { echo "no report without setuid"; return 1; }
    [ ! -e "$sec/out/demo-suid.report" ] || { echo "setuid program wrote its report"; return 1; }
    [ -s "$sec/out/demo.json" ] || { echo "no trace without setuid"; return 1; }
    [ ! -e "$sec/out/demo-suid.json" ] || { echo "setuid program wrote its trace"; return 1; }
}
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    step secure-execution secure
else
    echo "skip secure-execution: needs root (to make a program setuid to nobody)"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
