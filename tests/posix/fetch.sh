#!/usr/bin/env bash
# tests/posix/fetch.sh [DIR] - get the Open POSIX Test Suite 1.5.2 from
# Debian's source package posixtestsuite (bookworm) into DIR (default
# tests/posix/build, or $POSIX_BUILD) as DIR/posixtestsuite, with Debian's
# patches (debian/patches/series) applied.  Does nothing when
# DIR/posixtestsuite/.fetched exists.
#
# apt-get runs with a private configuration (a deb-src entry, lists and
# cache under DIR/apt, deleted afterwards): the machine's /etc/apt and
# /var/lib/apt are neither read for sources nor changed.  apt checks the
# downloaded files against the signed Sources index as usual.  Needs
# network access to deb.debian.org (or $POSIX_MIRROR, a Debian mirror's
# URL), apt-get, tar, xz and patch.
# Exit status 0 when the sources are there, 1 (with a one-line message on
# stderr) when not.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:-${POSIX_BUILD:-$here/build}}
src=$dir/posixtestsuite
[ -f "$src/.fetched" ] && exit 0

die() { echo "fetch.sh: cannot get the Open POSIX Test Suite sources: $*" >&2; exit 1; }
for t in apt-get tar xz patch; do
    command -v $t >/dev/null || die "$t not found"
done
mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd); src=$dir/posixtestsuite
apt=$dir/apt
rm -rf "$apt" "$src"
mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/dl" ||
    die "cannot create $apt"
cat > "$apt/parts/debian-src.sources" <<SRC
Types: deb-src
URIs: ${POSIX_MIRROR:-http://deb.debian.org/debian}
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/parts"
      -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
      -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
      -o "APT::Sandbox::User=root" -o "Acquire::Retries=3")
[ "$(id -u)" = 0 ] || opts+=(-o "Debug::NoLocking=1")
log=$apt/log
# apt-get update exits 0 when the mirror is unreachable: look for the index.
if ! apt-get "${opts[@]}" -qq update >"$log" 2>&1 ||
   ! ls "$apt"/lists/*_source_Sources* >/dev/null 2>&1; then
    die "apt-get update (deb-src bookworm) failed: $(grep -m1 -E '^(E|W):' "$log" || tail -n1 "$log")"
fi
if ! (cd "$apt/dl" && apt-get "${opts[@]}" -qq source --download-only posixtestsuite) >>"$log" 2>&1; then
    die "apt-get source posixtestsuite failed: $(grep -m1 -E '^E:' "$log" || tail -n1 "$log")"
fi
orig=$apt/dl/posixtestsuite_1.5.2.orig.tar.gz
deb=$(ls "$apt"/dl/posixtestsuite_1.5.2-*.debian.tar.xz 2>/dev/null | head -n1)
[ -f "$orig" ] && [ -n "$deb" ] || die "no posixtestsuite 1.5.2 source in $apt/dl: $(ls "$apt/dl" | tr '\n' ' ')"
tar -C "$dir" -xzf "$orig" && [ -d "$src" ] || die "cannot extract $orig"
tar -C "$apt" -xJf "$deb" || die "cannot extract $deb"
while read -r p; do
    case $p in ''|'#'*) continue ;; esac
    patch -d "$src" -p1 -s -N < "$apt/debian/patches/$p" >>"$log" 2>&1 ||
        die "patch $p failed"
done < "$apt/debian/patches/series"
echo "posixtestsuite $(basename "$deb" .debian.tar.xz | sed 's/^posixtestsuite_//')" > "$src/.fetched"
rm -rf "$apt"
exit 0
