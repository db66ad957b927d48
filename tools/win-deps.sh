#!/usr/bin/env bash
# win-deps.sh: fetch Lua 5.4 and cmocka with `apt-get source` and build them
# for Windows (x86_64-w64-mingw32) into a prefix the cross build uses.
#
#   tools/win-deps.sh [prefix-dir]     (default: build-win/deps)
#
# Result: <prefix>/include (Lua and cmocka headers), <prefix>/lib
# (liblua54.dll.a, libcmocka.a), <prefix>/bin (lua54.dll, lua.exe).
# Nothing third-party enters the tree: sources come from Debian's archive
# at build time. Re-running is cheap: a finished prefix is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
prefix=$(realpath -m "${1:-build-win/deps}")
cc=${NETIO_MINGW_CC:-x86_64-w64-mingw32-gcc}
stamp="$prefix/.done-v1"
[ -f "$stamp" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v "$cc" >/dev/null || ! command -v dpkg-source >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mingw-w64 dpkg-dev
fi

# apt-get source needs a deb-src entry.
bash tools/deb-src.sh lua5.4

work="$prefix/src"
rm -rf "$work"
mkdir -p "$work" "$prefix/include" "$prefix/lib" "$prefix/bin"
cd "$work"
# As root apt-get cannot drop to _apt for a directory it cannot write;
# the warning is harmless.
apt-get source -qq lua5.4 cmocka 2>&1 | grep -v "^W: Download is performed unsandboxed" || true

# ---- Lua: lua54.dll + import library, and lua.exe for running specs --------
luasrc=$(find "$work" -maxdepth 1 -type d -name 'lua5.4-*' | head -n1)/src
[ -f "$luasrc/lapi.c" ] || { echo "win-deps: Lua sources not found" >&2; exit 1; }
mkdir -p "$work/lua-obj"
objs=()
for f in "$luasrc"/*.c; do
  b=$(basename "$f" .c)
  case $b in lua | luac) continue ;; esac
  "$cc" -O2 -std=gnu99 -DLUA_COMPAT_5_3 -DLUA_BUILD_AS_DLL -c "$f" \
    -o "$work/lua-obj/$b.o"
  objs+=("$work/lua-obj/$b.o")
done
"$cc" -shared -o "$prefix/bin/lua54.dll" "${objs[@]}" \
  -Wl,--out-implib,"$prefix/lib/liblua54.dll.a" -static-libgcc
"$cc" -O2 -DLUA_COMPAT_5_3 -DLUA_BUILD_AS_DLL "$luasrc/lua.c" \
  -o "$prefix/bin/lua.exe" "$prefix/lib/liblua54.dll.a" -static-libgcc
cp "$luasrc"/lua.h "$luasrc"/luaconf.h "$luasrc"/lualib.h \
  "$luasrc"/lauxlib.h "$luasrc"/lua.hpp "$prefix/include/"

# ---- cmocka: one C file, built as a static library ---------------------------
cmsrc=$(find "$work" -maxdepth 1 -type d -name 'cmocka-*' | head -n1)
[ -f "$cmsrc/src/cmocka.c" ] || { echo "win-deps: cmocka sources not found" >&2; exit 1; }
# The defines its CMake would detect for MinGW.
"$cc" -O2 -c "$cmsrc/src/cmocka.c" -o "$work/cmocka.o" -I"$cmsrc/include" \
  -DHAVE_SIGNAL_H -DHAVE_STRINGS_H -DHAVE_MALLOC_H -DHAVE_INTTYPES_H \
  -DHAVE_STDINT_H -DHAVE_SETJMP_H -DHAVE_STDARG_H -DHAVE_STDDEF_H \
  -DHAVE_TIME_H -DHAVE_STRUCT_TIMESPEC -DHAVE_GETTIMEOFDAY \
  -DHAVE__SNPRINTF_S -DHAVE__VSNPRINTF_S -DHAVE_CLOCK_GETTIME_REALTIME=0 \
  -DCMOCKA_STATIC
x86_64-w64-mingw32-ar rcs "$prefix/lib/libcmocka.a" "$work/cmocka.o"
cp "$cmsrc"/include/cmocka.h "$prefix/include/"

cd "$root"
touch "$stamp"
echo "win-deps: Lua and cmocka for Windows in $prefix"
