#!/usr/bin/env bash
# win-openssl.sh: OpenSSL's libcrypto and libssl for Windows
# (x86_64-w64-mingw32), cross-built from Debian's source package into a
# cache outside the clone, for the MinGW build of netio (tools/test-win.sh).
#
#   tools/win-openssl.sh [prefix]
#       (default: ${NETIO_CACHE:-/var/cache/netio}/openssl-mingw-<version>)
#
# Prints the prefix, and only that, on standard output; the rest goes to
# standard error. Result: <prefix>/include/openssl, <prefix>/lib/libcrypto.a
# and libssl.a (static: no DLL to ship next to the programs). A prefix whose
# stamp names the same Debian version and options is reused as it is (the
# warm case costs a few apt look-ups); a new Debian version is a new prefix.
# Nothing third-party enters the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
cross=${NETIO_MINGW_TRIPLE:-x86_64-w64-mingw32}
cache=${NETIO_CACHE:-/var/cache/netio}
jobs=$(nproc)
log() { echo "win-openssl: $*" >&2; }

# Only the libraries: no DLLs, no loadable modules or engines (so no DSO
# loader either), no tests; the programs (apps/) are never made, as only
# the library targets are (3.0 has no no-apps). Assembly stays on: it is most of
# the speed of AES-GCM and ChaCha20 (the perlasm "mingw64" flavour is
# assembled by gcc, no nasm). Changing this list changes the stamp, so a
# cache built with other options is rebuilt.
opts=(no-shared no-module no-engine no-dso no-comp no-tests)
stamp_text="netio-openssl-mingw v1 ${cross} ${opts[*]}"

complete() { # prefix version
  [ -f "$1/lib/libssl.a" ] && [ -f "$1/lib/libcrypto.a" ] &&
    [ -f "$1/include/openssl/ssl.h" ] &&
    [ "$(cat "$1/.netio-stamp" 2>/dev/null)" = "$stamp_text $2" ]
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in mingw-w64 dpkg-dev perl make; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi
bash tools/deb-src.sh openssl >&2

# The versions of the source package, the one apt-get source would take
# first, then the others newest first: a mirror may list a version whose
# files it does not have (seen here: the security update's .dsc 404s).
candidate=$(apt-get source --print-uris openssl 2>/dev/null |
  sed -n "s/.* openssl_\(.*\)\.dsc .*/\1/p" | head -n1)
mapfile -t versions < <({
  [ -n "$candidate" ] && echo "$candidate"
  apt-cache showsrc openssl 2>/dev/null |
    awk '/^Package: /{p = ($2 == "openssl")} /^Version: /{if (p) print $2}' |
    sort -rV
} | awk '!seen[$0]++')
[ ${#versions[@]} -gt 0 ] || { log "apt knows no source package openssl"; exit 1; }

# One build at a time per cache: parallel Windows builds wait for the first.
$SUDO mkdir -p "$cache"
[ -w "$cache" ] || $SUDO chown "$(id -u):$(id -g)" "$cache"
exec 9>"$cache/.openssl-mingw.lock"
flock 9

for v in "${versions[@]}"; do
  prefix=$(realpath -m "${1:-$cache/openssl-mingw-$v}")
  if complete "$prefix" "$v"; then
    log "OpenSSL $v for Windows, cached in $prefix"
    echo "$prefix"
    exit 0
  fi
  # Is this version's .dsc on the mirror? (A few hundred bytes; the
  # tarball comes only with the version chosen.)
  dsc=$(apt-get source --print-uris "openssl=$v" 2>/dev/null |
    awk -F"'" '/\.dsc/{print $2; exit}')
  probe=$(mktemp)
  if [ -n "$dsc" ] &&
    /usr/lib/apt/apt-helper download-file "$dsc" "$probe" >/dev/null 2>&1; then
    rm -f "$probe"
    break
  fi
  rm -f "$probe"
  log "OpenSSL $v: source not on the mirror, trying an older version"
  v=""
done
[ -n "${v:-}" ] || { log "no version of OpenSSL's source could be fetched"; exit 1; }

log "building OpenSSL $v for Windows into $prefix (once; -j$jobs)"
work=$(mktemp -d "$cache/openssl-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$SECONDS
(
  cd "$work"
  # As root apt-get cannot drop to _apt for a directory it cannot write;
  # the warning is harmless.
  apt-get source -qq "openssl=$v" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
) >&2
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'openssl-*' | head -n1)
[ -f "$src/Configure" ] || { log "OpenSSL sources not found"; exit 1; }
rm -rf "$prefix"
(
  cd "$src"
  # build_libs: libcrypto.a, libssl.a and the headers they generate;
  # install_dev installs those (and the .pc files), nothing else. (&&: set
  # -e does not hold inside a subshell on the left of ||.)
  ./Configure mingw64 --cross-compile-prefix="$cross-" \
    --prefix="$prefix" --libdir=lib "${opts[@]}" &&
    make -j"$jobs" build_libs &&
    make install_dev
) >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log" >&2
  log "OpenSSL build failed"
  exit 1
}
echo "$stamp_text $v" >"$prefix/.netio-stamp"
# Older versions' caches are never used again.
if [ -z "${1:-}" ]; then
  for old in "$cache"/openssl-mingw-*; do
    [ "$old" = "$prefix" ] || [ ! -d "$old" ] || rm -rf "$old"
  done
fi
log "OpenSSL $v for Windows built in $((SECONDS - start)) s"
echo "$prefix"
