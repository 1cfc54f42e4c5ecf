#!/usr/bin/env bash
# tests/e2e/echo10k.sh — issue 4's acceptance test: a thread-per-connection
# echo server (plain pthread C, blocking sockets: tools/bench/c/echo_server.c)
# holds 10,000 concurrent loopback connections under the preload, every
# echo of 10 messages each is verified, and the server process runs on at
# most VTHREAD_PROCS + 8 OS threads (the e2e runner's bound).  The 10,000
# client threads run in a second process (a process may only have 20,000
# descriptors); its OS threads are reported, not bounded: its blocking
# connect() calls, which cannot park, block OS threads when the accept
# queue is full (sysmon hands their Ps on).  Ends with "N passed, N failed".
#
#   tests/e2e/echo10k.sh [--lib PATH] [--conns N]
set -u
cd "$(dirname "$0")/../.."
lib=${VTHREAD_LIB:-$(pwd)/.libs/libvthread.so}
conns=10000
while [ $# -gt 0 ]; do
    case $1 in
        --lib) lib=$2; shift ;;
        --conns) conns=$2; shift ;;
        *) echo "usage: $0 [--lib PATH] [--conns N]" >&2; exit 2 ;;
    esac
    shift
done
procs=${VTHREAD_PROCS:-$(nproc)}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
if ! cc -O2 -pthread -std=c11 -Wall -Wextra -o "$d/echo_server" \
        tools/bench/c/echo_server.c; then
    echo "FAIL echo10k: cannot build tools/bench/c/echo_server.c"
    echo "0 passed, 1 failed"
    exit 1
fi
out=$(LD_PRELOAD=$lib timeout -k 5 300 "$d/echo_server" "$conns" 10 2>"$d/err")
rc=$?
json=$(printf '%s\n' "$out" | grep '^{' | tail -1)
num() { printf '%s' "$json" | sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
srv=$(num peak_os_threads)
cli=$(num client_peak_os_threads)
rate=$(num msgs_per_s)
limit=$((procs + 8)) # the bound tests/e2e/run uses for many_blocked and io_more
if [ $rc -ne 0 ] || [ -z "$json" ] || [ -z "$srv" ] || [ -z "$cli" ]; then
    echo "FAIL echo10k: status $rc"
    sed 's/^/#   /' "$d/err" | tail -5
    echo "0 passed, 1 failed"
    exit 1
fi
if [ "$srv" -gt "$limit" ]; then
    echo "FAIL echo10k: the server held $conns connections on $srv OS" \
         "threads; at most $limit allowed (client: $cli)"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "ok echo10k: $conns connections x 10 messages verified; OS threads:" \
     "server $srv (limit $limit), client $cli; $rate msgs/s"
echo "1 passed, 0 failed"
