-- echo_copas.lua: the copas echo server for the benchmark. Lua 5.2: Debian 12
-- packages copas (1.2.0, on LuaSocket and select()) only for Lua 5.1/5.2.
-- One coroutine per connection; select() caps it below 1024 sockets.
--   lua5.2 bench/echo_copas.lua ip:port
local copas = require "copas"
local socket = require "socket"

local ip, port = (arg[1] or "127.0.0.1:7000"):match("^(.*):(%d+)$")
local server = assert(socket.bind(ip, tonumber(port), 1024))

copas.addserver(server, function(sock)
  sock:setoption("tcp-nodelay", true)
  while true do
    -- receivePartial returns as soon as any bytes arrived (the partial)
    local data, _, part = copas.receivePartial(sock, 65536)
    data = data or (part ~= "" and part)
    if not data then break end
    if not copas.send(sock, data) then break end
  end
  sock:close()
end)
copas.loop()
