#!/usr/bin/env bash
# luarocks-check.sh: the LuaRocks install as a user does it -- `luarocks
# --lua-version=5.4 make` from this clone into a scratch tree, then a stock
# lua5.4 with only that tree's paths requires netio and echoes a line over
# loopback, and the installed host program runs. Run by tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree" build.luarocks' EXIT
timeout 600 luarocks --lua-version=5.4 --tree "$tree" make netio-scm-1.rockspec >"$tree.log" 2>&1 ||
  { tail -40 "$tree.log"; rm -f "$tree.log"; echo "luarocks-check: luarocks make failed" >&2; exit 1; }
rm -f "$tree.log"
# Only the tree's paths (and no build or source directory of the clone).
eval "$(luarocks --lua-version=5.4 --tree "$tree" path)"
export LUA_PATH_5_4="$LUA_PATH" LUA_CPATH_5_4="$LUA_CPATH"
# From / with the tree's paths only: netio.core must come from the tree.
where=$(cd / && timeout 10 lua5.4 -e 'print(package.searchpath("netio.core", package.cpath))')
case $where in "$tree"/*) ;; *) echo "luarocks-check: netio.core from $where, not the tree" >&2; exit 1 ;; esac
root=$PWD
(cd / && timeout 30 lua5.4 "$root/tools/echo-check.lua")
"$tree/bin/netio" -v
echo "luarocks-check: ok"
