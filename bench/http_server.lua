-- bench/http_server.lua: bench/http_netio.lua written with netio.server:
-- the same HTTP/1.1 keep-alive hello world (same parsing, same response
-- bytes, same backlog), but the accept loop, the task per connection and
-- the close are netio.server's; the handler is the per-connection loop.
-- bench/run.sh runs it next to http_netio.lua (servers netio-server-*) to
-- measure what the helper costs per request.
--   netio bench/http_server.lua [address]     (default 127.0.0.1:8080)
local netio = require "netio"

local address = ... or "127.0.0.1:8080"

-- request(conn) from bench/http_request.lua, next to this script.
local request = dofile((arg and arg[0] or ""):match("^(.-)[^/\\]*$")
  .. "http_request.lua")

-- netio.server closes the connection when this returns (queued output is
-- still sent). ab -k -c 10000 opens every connection at once: a deep accept
-- queue (the kernel clamps it to net.core.somaxconn), as http_netio.lua.
assert(netio.server(address, function(conn)
  while request(conn) do end
end, { backlog = 65535 }))
