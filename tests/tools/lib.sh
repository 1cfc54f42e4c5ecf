# shellcheck shell=bash disable=SC2034  # variables are for the sourcing test
# lib.sh — helpers shared by tests/tools/test-*.sh (sourced, not run).
#
# Provides: $tools (the tools/ directory), $tmp (a scratch directory removed
# at exit), check/check_rc/check_grep to record results, build_fake_lib,
# and finish, which prints a summary and exits 0 only if every check passed.

set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=$(cd "$here/../../tools" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vthread-tools-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The tests must not see a vthread configuration from the caller.
unset VTHREAD_LIB VTHREAD_PROCS VTHREAD_STACK_SIZE VTHREAD_DEBUG \
      VTHREAD_TRACEBACK LD_PRELOAD

failures=0
checks=0

# check DESCRIPTION COMMAND...: passes if COMMAND succeeds.
check() {
    local what=$1
    shift
    checks=$((checks + 1))
    if "$@"; then
        echo "  pass: $what"
    else
        echo "  FAIL: $what"
        failures=$((failures + 1))
    fi
}

# check_rc DESCRIPTION EXPECTED ACTUAL
check_rc() {
    check "$1 (exit status $3, want $2)" test "$3" -eq "$2"
}

# check_grep DESCRIPTION PATTERN FILE: FILE has a line matching the
# extended regular expression PATTERN (the file is shown on failure).
check_grep() {
    checks=$((checks + 1))
    if grep -Eq -- "$2" "$3"; then
        echo "  pass: $1"
    else
        echo "  FAIL: $1: no line matches /$2/ in:"
        sed 's/^/      | /' "$3"
        failures=$((failures + 1))
    fi
}

# check_no_grep DESCRIPTION PATTERN FILE: no line of FILE matches.
check_no_grep() {
    checks=$((checks + 1))
    if ! grep -Eq -- "$2" "$3"; then
        echo "  pass: $1"
    else
        echo "  FAIL: $1: unexpected /$2/ in:"
        sed 's/^/      | /' "$3"
        failures=$((failures + 1))
    fi
}

# build_fake_lib PATH: compiles fake_preload.c into the shared library PATH.
build_fake_lib() {
    if ! timeout 60 "${CC:-cc}" -shared -fPIC -o "$1" "$here/fake_preload.c"; then
        echo "cannot compile $here/fake_preload.c with ${CC:-cc}" >&2
        exit 1
    fi
}

# lib_arg "$@": a test's only option, --lib PATH (the library to
# preload; default: the tree's .libs/libvthread.so).  Sets $lib and $src
# (the calling test's directory); exits 2 on bad usage, 1 without a
# library.
lib_arg() {
    lib=
    while [ $# -gt 0 ]; do
        case $1 in
            --lib) lib=$2; shift 2 ;;
            --lib=*) lib=${1#--lib=}; shift ;;
            *) echo "usage: $0 [--lib PATH]" >&2; exit 2 ;;
        esac
    done
    src=$(cd "$(dirname "$0")" && pwd)
    [ -n "$lib" ] || lib=$(cd "$src/../.." && pwd)/.libs/libvthread.so
    [ -f "$lib" ] || { echo "no library at $lib (build first)" >&2; exit 1; }
}

finish() {
    echo "$((checks - failures))/$checks checks passed"
    [ "$failures" -eq 0 ]
    exit
}
