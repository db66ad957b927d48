-- bench/http_netio.lua: the netio HTTP/1.1 hello-world server for the
-- benchmark: keep-alive, one task per connection, request line and headers
-- read with recv("*l"), "hello world" with a Content-Length.
--   netio bench/http_netio.lua [address]     (default 127.0.0.1:8080)
local netio = require "netio"

local address = ... or "127.0.0.1:8080"
-- ab -k -c 10000 opens every connection at once: a deep accept queue (the
-- kernel clamps it to net.core.somaxconn).
local server = assert(netio.listen(address, { backlog = 65535 }))

-- request(conn) from bench/http_request.lua, next to this script.
local request = dofile((arg and arg[0] or ""):match("^(.-)[^/\\]*$")
  .. "http_request.lua")

local function serve(conn)
  while request(conn) do end
  conn:close()  -- queued output is still sent
end

while true do
  local conn = server:accept()
  if not conn then break end  -- "closed": the server is stopping
  netio.spawn(serve, conn)
end
