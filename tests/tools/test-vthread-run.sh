#!/bin/bash
# test-vthread-run.sh — tools/vthread-run: option parsing, the environment it
# passes, library lookup, exit status and exec.  Uses a do-nothing library
# built from fake_preload.c, never the real libvthread.so.
# shellcheck disable=SC2016,SC2317  # $ in single quotes is for the inner sh
. "$(dirname "$0")/lib.sh"

run=$tools/vthread-run
lib=$tmp/libfake.so
other=$tmp/libother.so
build_fake_lib "$lib"
build_fake_lib "$other"

# vr ARGS...: vthread-run under a watchdog, stdout to $tmp/out, stderr to
# $tmp/err; sets rc.
vr() {
    timeout 20 "$run" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

echo "help"
vr --help
check_rc "--help" 0 "$rc"
check_grep "--help prints the usage" '^usage: vthread-run' "$tmp/out"

echo "environment passed to the program"
vr --lib "$lib" -p 3 --stack 64k --stats --trace 100 --traceback all -- env
check_rc "run env" 0 "$rc"
check_grep "-p -> VTHREAD_PROCS" '^VTHREAD_PROCS=3$' "$tmp/out"
check_grep "--stack -> VTHREAD_STACK_SIZE as given" '^VTHREAD_STACK_SIZE=64k$' "$tmp/out"
check_grep "--stats and --trace -> VTHREAD_DEBUG" '^VTHREAD_DEBUG=stats,schedtrace=100$' "$tmp/out"
check_grep "--traceback -> VTHREAD_TRACEBACK" '^VTHREAD_TRACEBACK=all$' "$tmp/out"
check_grep "LD_PRELOAD is the library" "^LD_PRELOAD=$lib\$" "$tmp/out"

vr --lib="$lib" -p4 --stack=1M --trace=50 -- env
check_rc "--opt=value forms" 0 "$rc"
check_grep "-p4" '^VTHREAD_PROCS=4$' "$tmp/out"
check_grep "--stack=1M" '^VTHREAD_STACK_SIZE=1M$' "$tmp/out"
check_grep "--trace alone" '^VTHREAD_DEBUG=schedtrace=50$' "$tmp/out"

for size in 65536 16k 2m 1G 64kb; do
    vr --lib "$lib" --stack "$size" -- env
    check_grep "--stack $size accepted" "^VTHREAD_STACK_SIZE=$size\$" "$tmp/out"
done

vr --lib "$lib" --stats -- env
check_grep "--stats alone" '^VTHREAD_DEBUG=stats$' "$tmp/out"

vr --lib "$lib" -- env
check_no_grep "no options, no VTHREAD_ variables" '^VTHREAD_' "$tmp/out"

VTHREAD_DEBUG=schedtrace=9 vr --lib "$lib" --stats -- env
check_grep "an existing VTHREAD_DEBUG is kept" '^VTHREAD_DEBUG=schedtrace=9,stats$' "$tmp/out"

LD_PRELOAD=$other vr --lib "$lib" -- env
check_grep "an existing LD_PRELOAD is kept, after the library" \
    "^LD_PRELOAD=$lib:$other\$" "$tmp/out"

vr --lib "$lib" -- cat /proc/self/maps
check_grep "the library is really preloaded" "$lib" "$tmp/out"

vr --lib "$lib" -- sh -c 'printf "%s\n" "$@"' sh -p 9 --stats -- x
printf -- '-p\n9\n--stats\n--\nx\n' >"$tmp/want"
check "the program's own options are passed untouched" cmp -s "$tmp/want" "$tmp/out"

vr --lib "$lib" env
check_rc "the program may follow the options without --" 0 "$rc"
check_grep "... and still runs with the library" "^LD_PRELOAD=$lib\$" "$tmp/out"

echo "library lookup"
VTHREAD_LIB=$lib vr -- env
check_grep "\$VTHREAD_LIB" "^LD_PRELOAD=$lib\$" "$tmp/out"

VTHREAD_LIB=$other vr --lib "$lib" -- env
check_grep "--lib wins over \$VTHREAD_LIB" "^LD_PRELOAD=$lib\$" "$tmp/out"

(cd "$tmp" && timeout 20 "$run" --lib libfake.so -- env >"$tmp/out" 2>&1)
check_grep "a relative --lib is made absolute" "^LD_PRELOAD=$tmp/libfake.so\$" "$tmp/out"

# In-tree layout: <repo>/tools/vthread-run finds <repo>/.libs/libvthread.so.
mkdir -p "$tmp/repo/tools" "$tmp/repo/.libs"
cp "$run" "$tmp/repo/tools/"
cp "$lib" "$tmp/repo/.libs/libvthread.so"
timeout 20 "$tmp/repo/tools/vthread-run" -- env >"$tmp/out" 2>&1
check_grep "in-tree build <repo>/.libs/libvthread.so" \
    "^LD_PRELOAD=$tmp/repo/.libs/libvthread.so\$" "$tmp/out"

# Installed layout: <prefix>/bin/vthread-run finds <prefix>/lib, also
# through a symlink to the script.
mkdir -p "$tmp/prefix/bin" "$tmp/prefix/lib" "$tmp/links"
cp "$run" "$tmp/prefix/bin/"
cp "$lib" "$tmp/prefix/lib/libvthread.so"
ln -s "$tmp/prefix/bin/vthread-run" "$tmp/links/vthread-run"
timeout 20 "$tmp/links/vthread-run" -- env >"$tmp/out" 2>&1
check_grep "installed <prefix>/lib/libvthread.so, via a symlink" \
    "^LD_PRELOAD=$tmp/prefix/lib/libvthread.so\$" "$tmp/out"

echo "missing library"
vr --lib "$tmp/nonexistent.so" -- true
check_rc "--lib to a missing file" 127 "$rc"
check_grep "... says which" 'vthread-run: cannot find libvthread.so: --lib .*nonexistent.so' "$tmp/err"

VTHREAD_LIB=$tmp/nonexistent.so vr -- true
check_rc "\$VTHREAD_LIB to a missing file" 127 "$rc"

# Nowhere at all: a copy of the script in a tree without a library.  The
# system directories are also searched, so this needs them empty.
if [ -e /usr/local/lib/libvthread.so ] || [ -e /usr/lib/libvthread.so ]; then
    echo "  skip: a libvthread.so is installed system-wide"
else
    mkdir -p "$tmp/empty/tools"
    cp "$run" "$tmp/empty/tools/"
    timeout 20 "$tmp/empty/tools/vthread-run" -- true >"$tmp/out" 2>"$tmp/err"
    rc=$?
    check_rc "no library anywhere" 127 "$rc"
    check "... with exactly the one-line message" test \
        "$(cat "$tmp/err")" = "vthread-run: cannot find libvthread.so (set --lib or VTHREAD_LIB)"
fi

echo "exit status and exec"
vr --lib "$lib" -- sh -c 'exit 7'
check_rc "the program's exit status 7" 7 "$rc"

vr --lib "$lib" -- false
check_rc "the program's exit status 1" 1 "$rc"

# (In an inner shell, which reports the death as 128+15 without the
# "Terminated" notice an interactive-style parent would print.)
rc=$(timeout 20 bash -c '"$0" --lib "$1" -- sh -c "kill -TERM \$\$"; echo $?' \
    "$run" "$lib" 2>/dev/null)
check_rc "a program killed by SIGTERM" 143 "$rc"

# exec: vthread-run's PID is the program's PID.
timeout 20 bash -c 'echo $$; exec "$0" --lib "$1" -- sh -c "echo \$\$"' \
    "$run" "$lib" >"$tmp/out" 2>&1
check "the program replaces vthread-run (same PID)" \
    test "$(sed -n 1p "$tmp/out")" = "$(sed -n 2p "$tmp/out")"

vr --lib "$lib" -- "$tmp/no-such-program"
check_rc "a missing program" 127 "$rc"

echo "bad options: exit 2, one line naming the option"
bad() {
    local name=$1
    shift
    vr "$@"
    check_rc "bad: $*" 2 "$rc"
    check "... one line naming '$name'" \
        test "$(wc -l <"$tmp/err")" -eq 1 -a -n "$(grep -F -- "$name" "$tmp/err")"
}
bad --bogus --lib "$lib" --bogus -- true
bad -x --lib "$lib" -x -- true
bad -p --lib "$lib" -p 0 -- true
bad -p --lib "$lib" -p abc -- true
bad --procs --lib "$lib" --procs=-1 -- true
bad --stack --lib "$lib" --stack 12q -- true
bad --stack --lib "$lib" --stack= -- true
bad --stack --lib "$lib" --stack 0 -- true
bad --trace --lib "$lib" --trace abc -- true
bad --trace --lib "$lib" --trace 0 -- true
bad --trace --lib "$lib" --trace -- true
bad --traceback --lib "$lib" --traceback 'a b' -- true
bad --stats --lib "$lib" --stats=yes -- true
bad --lib --lib
bad program --lib "$lib"

finish
