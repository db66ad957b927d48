-- echo_cqueues.lua: the cqueues echo server for the benchmark, Lua 5.4, one
-- thread, one coroutine per connection reading whatever has arrived.
--   lua5.4 bench/echo_cqueues.lua ip:port
local cqueues = require "cqueues"
local socket = require "cqueues.socket"

local ip, port = (arg[1] or "127.0.0.1:7000"):match("^(.*):(%d+)$")
local cq = cqueues.new()
local server = socket.listen { host = ip, port = tonumber(port),
  reuseaddr = true, sin_nodelay = true }

cq:wrap(function()
  for conn in server:clients { sin_nodelay = true } do
    cq:wrap(function()
      conn:setmode("b", "bn")  -- binary, unbuffered output (a write sends)
      conn:onerror(function(_, _, why) return why end)  -- return, not raise
      while true do
        local data = conn:read(-65536)  -- up to 64 KiB, whatever is there
        if not data or not conn:write(data) then break end
      end
      conn:close()
    end)
  end
end)
assert(cq:loop())
