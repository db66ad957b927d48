#!/usr/bin/env bash
# win-spec-deps.sh: build what Debian's busted needs to run on the Windows
# Lua that tools/win-deps.sh made, so the spec files run under Wine.
#
#   tools/win-spec-deps.sh [prefix-dir]     (default: build-win/deps)
#
# Busted's Lua parts are read from Debian's /usr/share/lua/5.4 (Wine sees
# them through its Z: drive). Its C modules: lfs (penlight) is cross-built
# here from `apt-get source lua-filesystem` into <prefix>/clib/lfs.dll;
# `system.core` and `term.core` are small Lua shims in tests/win/shims (the
# Debian sources of lua-system and lua-term are not always on the mirror,
# and busted only needs a clock and isatty from them). No third-party code
# enters the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(realpath -m "${1:-build-win/deps}")
cc=${NETIO_MINGW_CC:-x86_64-w64-mingw32-gcc}
stamp="$prefix/.spec-done-v1"
[ -f "$stamp" ] && exit 0
[ -f "$prefix/lib/liblua54.dll.a" ] || bash tools/win-deps.sh "$prefix"

work="$prefix/src-spec"
rm -rf "$work"
mkdir -p "$work" "$prefix/clib"
cd "$work"
# win-deps.sh has made sure a deb-src entry exists.
apt-get source -qq lua-filesystem 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
lfs=$(find "$work" -maxdepth 1 -type d -name 'lua-filesystem-*' | head -n1)/src
[ -f "$lfs/lfs.c" ] || { echo "win-spec-deps: lfs sources not found" >&2; exit 1; }
"$cc" -O2 -shared -o "$prefix/clib/lfs.dll" "$lfs/lfs.c" -I"$prefix/include" \
  "$prefix/lib/liblua54.dll.a" -static-libgcc
touch "$stamp"
echo "win-spec-deps: lfs for Windows in $prefix/clib"
