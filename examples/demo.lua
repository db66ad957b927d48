-- examples/demo.lua: a server and a few clients in one script, printing
-- what happens: connects, a line protocol, a timeout, a bulk transfer, a
-- refused connect, closes. Ends by itself in about two seconds.
--
--   netio examples/demo.lua
--   lua5.4 -e 'require"netio".run(dofile, "examples/demo.lua")'
local netio = require "netio"

local t0 = netio.now()
local function say(who, fmt, ...)
  print(("[%5.3f] %-7s " .. fmt):format(netio.now() - t0, who, ...))
end

-- The server speaks a line protocol: PING, ECHO <text>, SUM <n> (then n
-- raw bytes follow; it answers with their byte sum), QUIT. A client that
-- stays silent for a second is dropped (the read timeout).
local server = assert(netio.listen("127.0.0.1:0"))
local ip, port = server:getsockname()
local address = ip .. ":" .. port
say("server", "listening on %s (backend %s)", address, netio.backend())

local function handle(conn, n)
  local pip, pport = conn:getpeername()
  say("server", "client #%d connected from %s:%d", n, pip, pport)
  conn:settimeout(1)
  while true do
    local line, err = conn:recv("*l")
    if not line then
      say("server", "client #%d: %s, closing it", n, err)
      break
    end
    local cmd, rest = line:match("^(%u+)%s*(.*)$")
    if cmd == "PING" then
      conn:send("PONG\n")
    elseif cmd == "ECHO" then
      conn:send({rest, "\n"})
    elseif cmd == "SUM" then
      local data = conn:recv(tonumber(rest))
      local sum = 0
      for i = 1, #data do sum = sum + data:byte(i) end
      conn:send(("SUM %d bytes = %d\n"):format(#data, sum))
    elseif cmd == "QUIT" then
      conn:send("BYE\n")
      break
    else
      conn:send("ERR unknown command\n")
    end
  end
  conn:close()
end

local acceptor = netio.spawn(function()
  local n = 0
  while true do
    local conn, err = server:accept()
    if not conn then
      say("server", "accept: %s", err)
      return n
    end
    n = n + 1
    netio.spawn(handle, conn, n)
  end
end)

local function talk(name, conn, line)
  conn:send(line .. "\n")
  local reply, err = conn:recv("*l")
  say(name, "%-22s -> %s", ("%q"):format(line), reply or err)
end

local clients = {
  netio.spawn(function()
    local conn <close> = assert(netio.connect(address))
    say("alice", "connected")
    talk("alice", conn, "PING")
    talk("alice", conn, "ECHO hello, netio")
    talk("alice", conn, "HELLO?")
    talk("alice", conn, "QUIT")
    say("alice", "then recv -> %s", select(2, conn:recv()))
  end),
  netio.spawn(function()
    local conn <close> = assert(netio.connect(address))
    say("bob", "connected; goes silent")
    local data, err = conn:recv("*l", 0.25)
    say("bob", "recv with a 0.25 s timeout -> %s, %s", data, err)
    data, err = conn:recv()
    say("bob", "the server dropped the silent client -> %s, %s", data, err)
  end),
  netio.spawn(function()
    local conn <close> = assert(netio.connect(address))
    local blob = {}
    for i = 1, 100000 do blob[i] = string.char(i % 251) end
    blob = table.concat(blob)
    local sum = 0
    for i = 1, #blob do sum = sum + blob:byte(i) end
    say("carol", "sends %d bytes, expects sum %d", #blob, sum)
    conn:send({"SUM ", tostring(#blob), "\n", blob})
    say("carol", "-> %s", conn:recv("*l"))
    talk("carol", conn, "QUIT")
  end),
}
for _, t in ipairs(clients) do assert(t:join()) end

local conn, err, code = netio.connect("127.0.0.1:1")
say("main", "connect to a closed port -> %s, %s, %s", conn, err, code)
server:close()
say("main", "server closed after %d clients; done", select(2, acceptor:join()))
