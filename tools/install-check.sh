#!/usr/bin/env bash
# install-check.sh build-dir: install the build into a scratch prefix and use
# it as a user would -- examples/embed.c built with pkg-config and with
# find_package(netio), both run; the Lua module loaded by a stock lua5.4.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(find "$tmp/prefix" -name netio.pc -printf '%h\n' | head -1)
[ -n "$libdir" ] || { echo "install-check: netio.pc was not installed" >&2; exit 1; }
test -f "$tmp/prefix/include/netio.h" ||
  { echo "install-check: netio.h was not installed" >&2; exit 1; }

# netio.pc names what this build links: liburing when it has the io_uring
# backend, OpenSSL when it has TLS (an embedding program links them too).
req=$(sed -n 's/^Requires: //p' "$libdir/netio.pc")
cache="$build/CMakeCache.txt"
if grep -q '^URING_FOUND:INTERNAL=1' "$cache" && ! grep -q '^NETIO_URING:STRING=OFF' "$cache"; then
  case " $req " in *" liburing "*) ;; *) echo "install-check: netio.pc lacks liburing: $req" >&2; exit 1 ;; esac
fi
if grep -q '^NETIO_TLS:BOOL=ON' "$cache"; then
  case " $req " in *" libssl libcrypto "*) ;; *) echo "install-check: netio.pc lacks libssl libcrypto: $req" >&2; exit 1 ;; esac
fi
echo "netio.pc Requires: $req"

echo "--- pkg-config"
export PKG_CONFIG_PATH="$libdir"
cc -O2 "$src/examples/embed.c" $(pkg-config --cflags --libs netio) -o "$tmp/embed-pc"
"$tmp/embed-pc" 2 2000

echo "--- find_package(netio)"
mkdir -p "$tmp/proj"
cat > "$tmp/proj/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(embed_user C)
find_package(netio REQUIRED)
add_executable(embed-cmake $src/examples/embed.c)
target_link_libraries(embed-cmake PRIVATE netio::netio)
CMAKE
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/proj/build" >/dev/null
"$tmp/proj/build/embed-cmake" 2 2000

echo "--- stock lua5.4"
lmod=$(find "$tmp/prefix" -path '*/lua/5.4/netio/init.lua' -printf '%h\n' | head -1)
cmod=$(find "$tmp/prefix" -path '*/lua/5.4/netio/core.so' -printf '%h\n' | head -1)
LUA_PATH_5_4="$(dirname "$lmod")/?.lua;$(dirname "$lmod")/?/init.lua" \
LUA_CPATH_5_4="$(dirname "$cmod")/?.so" \
  lua5.4 -e 'local netio = require "netio"
    assert(netio.run(function()
      local t = netio.thread(function(x) return x * 2 end, 21)
      local ok, v = t:join(5)
      assert(ok and v == 42, "thread result")
    end))
    print("stock lua5.4: netio " .. netio._VERSION .. " ok")'
echo "install-check: ok"
