-- examples/tls_echo_server.lua: a TLS echo server, one task per connection.
--
--   netio examples/tls_echo_server.lua CERT KEY [address]   (default 127.0.0.1:7443)
--
-- CERT and KEY are PEM files (the certificate may be followed by its chain).
-- Try it with the test CA (bash tools/test-ca.sh /tmp/ca):
--   netio examples/tls_echo_server.lua /tmp/ca/server.pem /tmp/ca/server.key
--   openssl s_client -connect 127.0.0.1:7443 -CAfile /tmp/ca/ca.pem -verify_return_error
--
-- accept() returns only connections whose handshake succeeded: a client
-- that does not trust the certificate, speaks plaintext or stalls never
-- reaches serve(), and the listener keeps serving the others. It serves
-- until stopped (Ctrl-C: the first stops gracefully, the second at once).
local netio = require "netio"

local cert, key, address = ...
if not (cert and key) then
  io.stderr:write("usage: netio examples/tls_echo_server.lua CERT KEY [address]\n")
  os.exit(2)
end
if not netio.tls then error("this netio was built without TLS") end

-- A bad file or a key that does not match the certificate is reported here,
-- once, before anything listens.
local ctx = assert(netio.tls.context({ mode = "server", cert = cert, key = key }))
local server = assert(netio.listen(address or "127.0.0.1:7443", { tls = ctx }))
local ip, port = server:getsockname()
io.stderr:write(("TLS echo server on %s:%d, backend %s\n"):format(ip, port,
  netio.backend()))

local function serve(conn)
  local info = conn:tlsinfo()
  io.stderr:write(("client with %s %s\n"):format(info.protocol, info.cipher))
  while true do
    local data = conn:recv()  -- plaintext, whatever has arrived
    if not data or not conn:send(data) then break end
  end
  conn:close()  -- sends close_notify after the queued output
end

while true do
  local conn = server:accept()
  if not conn then break end  -- "closed": the server is stopping
  netio.spawn(serve, conn)
end
