-- console_broadcast.lua: every line typed on the console is sent to every
-- connected client -- the seed library's main.cpp, in Lua.
--
--   netio examples/console_broadcast.lua [port]      (default 7001; 0 picks one)
--   then, elsewhere:  nc 127.0.0.1 7001
--
-- Standard input is read with netio.stdin(), without blocking the clients;
-- the lines go out with netio.send, which never waits: a client that stopped
-- reading gets its lines dropped ("busy") instead of stalling the others.
-- The end of the input (Ctrl-D) closes everything; queued lines still go out.
local netio = require "netio"

local port = tonumber(arg and arg[1]) or 7001
local server = assert(netio.listen("127.0.0.1:" .. port))
local clients = {} -- conn -> true
io.stdout:write(("console_broadcast: listening on 127.0.0.1:%d\n")
  :format(select(2, server:getsockname())))
io.stdout:flush()

netio.spawn(function()
  while true do
    local c = server:accept()
    if not c then return end
    clients[c] = true
    netio.spawn(function() -- until the client goes
      while c:recv() do end
      clients[c] = nil
      c:close()
    end)
  end
end)

local console = netio.stdin()
local sent, busy = 0, 0
while true do
  local line = console:recv("*l")
  if not line then break end
  for c in pairs(clients) do
    local ok, err = netio.send(c:id(), line .. "\n")
    if ok then sent = sent + 1 elseif err == "busy" then busy = busy + 1 end
  end
end

server:close()
for c in pairs(clients) do c:close() end
io.stdout:write(("console_broadcast: %d lines delivered, %d dropped (busy)\n")
  :format(sent, busy))
