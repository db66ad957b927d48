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
(cd / && TREE="$tree" timeout 30 lua5.4 -e '
local netio = require "netio"
local where = package.searchpath("netio.core", package.cpath)
assert(where and where:find(os.getenv("TREE"), 1, true), "netio.core from " .. tostring(where))
assert(netio.run(function()
  local l = assert(netio.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  netio.spawn(function()
    local c = assert(l:accept(5))
    c:send(assert(c:recv("*l")) .. "\n")
    c:close()
  end)
  local c = assert(netio.connect("127.0.0.1:" .. port, { timeout = 5 }))
  c:send("ping\n")
  assert(c:recv("*l", 5) == "ping", "the echo came back wrong")
  c:close()
  l:close()
end))
print("luarocks tree: netio " .. netio._VERSION .. " (" .. where .. "): echo ok")')
"$tree/bin/netio" -v
echo "luarocks-check: ok"
