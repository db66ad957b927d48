#!/usr/bin/env bash
# minimal-build.sh [build-dir]: the configure a user without test tools
# gets. pkg-config sees only lua5.4 (no liburing, no cmocka), OpenSSL and
# busted are hidden: a plain `cmake -S . -B dir` must still configure and
# build, say at configure time that it is epoll-only and builds no tests,
# and give a netio whose `-v` says epoll only, a module for which
# netio.available("uring") is false and that echoes on loopback, and an
# install (tools/install-check.sh) whose netio.pc names neither liburing
# nor OpenSSL. Run by tools/test.sh; about a minute on two cores.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build-minimal}
fail() { echo "minimal-build: $*" >&2; exit 1; }

pc=$(mktemp -d)
trap 'rm -rf "$pc"' EXIT
luapc=$(pkg-config --variable=pcfiledir lua5.4)/lua5.4.pc
cp "$luapc" "$pc/"
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
PKG_CONFIG_LIBDIR="$pc" PKG_CONFIG_PATH="" \
  cmake -S "$src" -B "$dir" -DNETIO_WERROR=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON -DBUSTED=BUSTED-NOTFOUND \
  >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; fail "configure failed"; }
grep 'netio:' "$dir/configure.log"
for want in "io_uring backend: OFF" "epoll-only" "TLS: OFF" "tests: OFF (cmocka not found"; do
  grep -qF "$want" "$dir/configure.log" ||
    fail "expected '$want' in the configure output"
done
cmake --build "$dir" -j"$(nproc)" >/dev/null
[ ! -e "$dir/test_engine" ] || fail "a test was built without cmocka"
[ ! -e "$dir/echo_uring" ] || fail "echo_uring was built without liburing"

v=$("$dir/netio" -v)
echo "netio -v: $v"
case $v in *"backend epoll (epoll only: built without liburing)"*) ;;
  *) fail "expected 'backend epoll (epoll only: built without liburing)' in netio -v" ;;
esac

LUA_PATH_5_4="$src/lua/?.lua;$src/lua/?/init.lua" LUA_CPATH_5_4="$dir/lib/?.so" \
  timeout 30 lua5.4 -e '
local netio = require "netio"
assert(netio.available("uring") == false, "netio.available(\"uring\") should be false in an epoll-only build")
assert(netio.available("epoll"), "epoll should be available")'
LUA_PATH_5_4="$src/lua/?.lua;$src/lua/?/init.lua" LUA_CPATH_5_4="$dir/lib/?.so" \
  timeout 30 lua5.4 "$src/tools/echo-check.lua" epoll

# The installed package of this build: netio.pc without liburing or OpenSSL.
PKG_CONFIG_LIBDIR="$pc" PKG_CONFIG_PATH="" bash "$src/tools/install-check.sh" "$dir"
grep -q '^Requires: lua5.4$' "$dir/netio.pc" ||
  fail "expected 'Requires: lua5.4' alone in $dir/netio.pc, got: $(grep Requires "$dir/netio.pc")"
echo "minimal-build: ok"
