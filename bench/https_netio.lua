-- bench/https_netio.lua: the netio HTTPS hello-world server for
-- bench/https.sh: bench/http_netio.lua over TLS -- the same request handling
-- (bench/http_request.lua: keep-alive, request line and headers read with
-- recv("*l"), "hello world" with a Content-Length), one task per connection,
-- on a listener whose accept returns connections already handshaken.
--   netio bench/https_netio.lua ADDRESS CERT KEY
local netio = require "netio"

local address, cert, key = ...
assert(address and cert and key, "usage: netio bench/https_netio.lua ADDRESS CERT KEY")
assert(netio.tls, "this netio was built without TLS")
local ctx = assert(netio.tls.context({ mode = "server", cert = cert, key = key }))
local server = assert(netio.listen(address, { tls = ctx, backlog = 65535 }))

local request = dofile((arg and arg[0] or ""):match("^(.-)[^/\\]*$")
  .. "http_request.lua")

local function serve(conn)
  while request(conn) do end
  conn:close()  -- queued output is still sent, then close_notify
end

while true do
  local conn = server:accept()
  if not conn then break end
  netio.spawn(serve, conn)
end
