#!/usr/bin/env bash
# tests/sdt.sh — the USDT probes documented in docs/perf.md are in the
# built library (when configure found sys/sdt.h).  Ends with the summary
# line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
lib=.libs/libvthread.so
if ! grep -q "define VT_HAVE_SDT 1" config.h; then
    echo "skip: built without sys/sdt.h (install systemtap-sdt-dev)"
    echo "0 passed, 0 failed"
    exit 0
fi
names=$(readelf -n "$lib" | awk '/stapsdt/ { p = 1; next } p && /Name:/ { print $2; p = 0 }')
pass=0 fail=0
for probe in g_create g_exit park unpark steal handoff retake preempt; do
    if printf '%s\n' "$names" | grep -qx "$probe"; then
        pass=$((pass + 1))
    else
        echo "FAIL: probe $probe missing from $lib"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
