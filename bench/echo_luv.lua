-- echo_luv.lua: the luv (libuv) echo server for the benchmark, Lua 5.4, one
-- thread: every chunk read is written straight back (callbacks, no coroutine).
--   lua5.4 bench/echo_luv.lua ip:port
local uv = require "luv"

local ip, port = (arg[1] or "127.0.0.1:7000"):match("^(.*):(%d+)$")
local server = uv.new_tcp()
assert(server:bind(ip, tonumber(port)))
assert(server:listen(4096, function(err)
  assert(not err, err)
  local client = uv.new_tcp()
  server:accept(client)
  client:nodelay(true)
  client:read_start(function(rerr, data)
    if rerr or not data then
      client:close()
    else
      client:write(data)
    end
  end)
end))
uv.run()
