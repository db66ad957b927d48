-- examples/udp_echo.lua: a UDP echo server and a client in one script. The
-- server answers every datagram with the same bytes; the client sends a
-- few, checks each reply and tells the server to stop. It ends by itself.
--
--   netio examples/udp_echo.lua [count]                       (default 5)
--   lua5.4 -e 'require"netio".run(loadfile"examples/udp_echo.lua")'
local netio = require "netio"

local count = tonumber((...)) or 5

-- The server: bound to a port the system picks.
local server = assert(netio.udp("127.0.0.1:0"))
local ip, port = server:getsockname()
print(("udp echo server on %s:%d, backend %s"):format(ip, port,
  netio.backend()))

local serving = netio.spawn(function()
  while true do
    local data, from, from_port = server:recvfrom()
    if not data then break end -- "closed"
    if data == "bye" then break end
    server:sendto(data, from .. ":" .. from_port)
  end
  server:close()
end)

-- The client: unbound, so the first datagram gives it a port; connected,
-- so send/recv talk to the server only.
local client = assert(netio.udp())
assert(client:connect(ip .. ":" .. port))
local echoed = 0
for i = 1, count do
  local msg = ("datagram %d of %d"):format(i, count)
  assert(client:send(msg))
  local reply, err = client:recv(nil, 2)
  if reply ~= msg then
    error(("reply %d: expected %q, got %s"):format(i, msg, reply or err))
  end
  echoed = echoed + 1
  print("echoed: " .. reply)
end
client:send("bye")
client:close()
-- A datagram may be lost: if "bye" was, closing the server ends it too.
if not serving:join(2) then server:close() end
serving:join()
print(("%d datagrams echoed"):format(echoed))
