-- examples/echo_server.lua: a TCP echo server, one task per connection.
--
--   netio examples/echo_server.lua [address]        (default 127.0.0.1:7000)
--   lua5.4 -e 'require"netio".run(loadfile"examples/echo_server.lua", "127.0.0.1:7000")'
--
-- Under the host the script's top level is already a task, so it calls
-- accept() directly. It serves until stopped (Ctrl-C: the first stops
-- gracefully, the second at once).
local netio = require "netio"

local address = ... or "127.0.0.1:7000"
local server = assert(netio.listen(address))
local ip, port = server:getsockname()
io.stderr:write(("echo server on %s:%d, backend %s\n"):format(ip, port,
  netio.backend()))

local function serve(conn)
  conn:setoption("tcp-nodelay", true)
  while true do
    local data = conn:recv()  -- whatever has arrived, up to 64 KiB
    if not data or not conn:send(data) then break end
  end
  conn:close()
end

while true do
  local conn = server:accept()
  if not conn then break end  -- "closed": the server is stopping
  netio.spawn(serve, conn)
end
