-- chat.lua: a chat server -- every line a member sends goes to every other
-- member. A member that stops reading cannot stall the others nor eat the
-- server's memory: each member has a queue of lines and a writer task of
-- its own; a full queue (4096 lines) disconnects the member ("too slow"),
-- and max_output caps what may sit in its connection's output.
--
--   netio examples/chat.lua [port]        (default 7200; 0 picks one)
--   then:  nc 127.0.0.1 7200   (first line: your name)
-- The end of the server's standard input (Ctrl-D) stops it.
local netio = require "netio"

local QUEUE = 4096
local members = {} -- member -> true

local function broadcast(from, line)
  for m in pairs(members) do
    -- push(v, 0): never waits; a member that does not keep up is dropped.
    if m ~= from and not m.q:push(line, 0) then
      netio.log.info("chat: %s is too slow, disconnected", m.name)
      members[m] = nil
      m.conn:close()
    end
  end
end

local server = assert(netio.server("127.0.0.1:" .. (tonumber(arg and arg[1]) or 7200),
  function(c)
    c:send("name? ")
    local name = c:recv("*l", 30)
    if not name or name == "" then return end
    local m = { conn = c, name = name, q = netio.queue(QUEUE) }
    local writer = netio.spawn(function()
      while true do
        local line = m.q:pop()
        if not line or not c:send(line) then return end
      end
    end)
    members[m] = true
    broadcast(m, ("* %s joined\n"):format(name))
    while members[m] do
      local line = c:recv("*l")
      if not line then break end
      broadcast(m, ("%s: %s\n"):format(name, line))
    end
    members[m] = nil
    m.q:close()
    writer:join(1)
    broadcast(nil, ("* %s left\n"):format(name))
  end, { max_output = 1024 * 1024, idle_timeout = 600 }))

local _, port = server:getsockname()
io.stdout:write(("chat: listening on 127.0.0.1:%d\n"):format(port))
io.stdout:flush()

netio.stdin():recv("*a")
server:close()
for m in pairs(members) do m.conn:close() end
