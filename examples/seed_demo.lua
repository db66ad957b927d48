-- seed_demo.lua: the seed library's main.cpp, in Lua -- an echo server that
-- acknowledges each line, two clients that reconnect by themselves, and the
-- console: every line typed goes to both clients (netio.send on their ids,
-- which works before they are connected), each sends it to the server and
-- prints the acknowledgement. The end of the input (Ctrl-D) ends it.
--
--   netio examples/seed_demo.lua [port]        (default 7100; 0 picks one)
local netio = require "netio"

local server = assert(netio.server("127.0.0.1:" .. (tonumber(arg and arg[1]) or 7100),
  function(c)
    while true do
      local line = c:recv("*l")
      if not line then return end
      c:send("ack " .. line .. "\n")
    end
  end, { max_clients = 100, idle_timeout = 300 }))
local _, port = server:getsockname()
io.stdout:write(("seed_demo: server on 127.0.0.1:%d, type lines\n"):format(port))
io.stdout:flush()

local clients, acks = {}, 0
for i = 1, 2 do
  clients[i] = netio.client("127.0.0.1:" .. port, function(c)
    netio.log.info("client %d connected", i)
    while true do
      local ack = c:recv("*l")
      if not ack then return end
      acks = acks + 1
      io.stdout:write(("client %d: %s\n"):format(i, ack))
      io.stdout:flush()
    end
  end, { reconnect = { min = 0.1, max = 2 } })
end

local console, typed = netio.stdin(), 0
while true do
  local line = console:recv("*l")
  if not line then break end
  typed = typed + 1
  for _, cl in ipairs(clients) do netio.send(cl:id(), line .. "\n") end
end

-- The input ended: the last acknowledgements, then everything closes.
local deadline = netio.now() + 2
while acks < 2 * typed and netio.now() < deadline do netio.sleep(0.02) end
for _, cl in ipairs(clients) do cl:close() end
server:close()
io.stdout:write(("seed_demo: %d lines, %d acknowledgements\n"):format(typed, acks))
