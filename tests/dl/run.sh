#!/usr/bin/env bash
# tests/dl/run.sh — dlopen under the preload: glibc must search from the
# real caller (its RUNPATH $ORIGIN/plug, not libvthread's), and threads
# that exist before the dlopen must see an initial-exec TLS module's
# initial values.  Builds main + plugin in a temporary directory, runs the
# program natively and with LD_PRELOAD, compares.  Ends with the summary
# line "N passed, N failed".
set -u
cd "$(dirname "$0")"
lib=${VTHREAD_LIB:-$(cd ../.. && pwd)/.libs/libvthread.so}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/plug"
pass=0 fail=0
if ! gcc -O2 -fPIC -shared -o "$d/plug/libdlplugin.so" plugin.c ||
   ! gcc -O2 -pthread -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/plug' \
       -o "$d/main" main.c -ldl; then
    echo "FAIL: cannot build the test program"
    echo "0 passed, 1 failed"
    exit 1
fi
native=$(timeout 60 "$d/main" 2>&1); nrc=$?
vt=$(LD_PRELOAD=$lib timeout 60 "$d/main" 2>&1); vrc=$?
if [ $nrc -ne 0 ]; then
    echo "FAIL: native run: status $nrc"; printf '%s\n' "$native" | sed 's/^/#   /'
    fail=1
elif [ $vrc -ne 0 ] || [ "$native" != "$vt" ]; then
    echo "FAIL: under vthread: status $vrc"; printf '%s\n' "$vt" | sed 's/^/#   /'
    fail=1
else
    echo "ok dlopen (RUNPATH of the caller, initial-exec TLS in 64 threads)"
    pass=1
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
