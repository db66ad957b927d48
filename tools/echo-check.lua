-- tools/echo-check.lua [backend]: the smoke test of an installed or built
-- netio module that tools/luarocks-check.sh and tools/minimal-build.sh
-- share: require "netio" from the paths given (LUA_PATH_5_4,
-- LUA_CPATH_5_4), echo one line over loopback, print where netio.core came
-- from. With a backend name, the run must use that backend.
--   lua5.4 tools/echo-check.lua [epoll|uring|iocp]
local netio = require "netio"
local want = ...
local where = package.searchpath("netio.core", package.cpath) or "?"
assert(netio.run(function()
  if want then
    assert(netio.backend() == want, "backend " .. netio.backend()
      .. ", expected " .. want)
  end
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
print("netio " .. netio._VERSION .. " (" .. where .. ", backend "
  .. netio.backend() .. "): echo ok")
