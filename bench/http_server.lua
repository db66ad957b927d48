-- bench/http_server.lua: bench/http_netio.lua written with netio.server:
-- the same HTTP/1.1 keep-alive hello world (same parsing, same response
-- bytes, same backlog), but the accept loop, the task per connection and
-- the close are netio.server's; the handler is the per-connection loop.
-- bench/run.sh runs it next to http_netio.lua (servers netio-server-*) to
-- measure what the helper costs per request.
--   netio bench/http_server.lua [address]     (default 127.0.0.1:8080)
-- HTTP/1.0 clients (ab -k) get keep-alive only when they ask for it.
local netio = require "netio"

local address = ... or "127.0.0.1:8080"

local BODY = "hello world"
local HEAD = "HTTP/1.1 200 OK\r\nServer: netio\r\nContent-Type: text/plain\r\n"
  .. "Content-Length: " .. #BODY .. "\r\n"
local KEEP = HEAD .. "\r\n" .. BODY                      -- 1.1 default
local KEEP10 = HEAD .. "Connection: keep-alive\r\n\r\n" .. BODY
local CLOSE = HEAD .. "Connection: close\r\n\r\n" .. BODY

-- One request: false when the connection must end (closed, bad request or
-- "Connection: close").
local function request(conn)
  local line = conn:recv("*l")
  while line == "" do line = conn:recv("*l") end  -- stray CRLF between requests
  if not line then return false end
  local http10 = line:sub(-8) == "HTTP/1.0"
  local keep, length = not http10, 0
  while true do
    local h = conn:recv("*l")
    if not h then return false end
    if h == "" then break end
    local c = h:byte(1)
    if c == 67 or c == 99 then  -- 'C'/'c': Connection, Content-Length
      local name, value = h:match("^([^:]*):%s*(.-)%s*$")
      name = name and name:lower()
      if name == "connection" then
        value = value:lower()
        if value == "close" then keep = false
        elseif value == "keep-alive" then keep = true end
      elseif name == "content-length" then
        length = tonumber(value) or 0
      end
    end
  end
  if length > 0 and not conn:recv(length) then return false end
  if not keep then
    conn:send(CLOSE)
    return false
  end
  conn:send(http10 and KEEP10 or KEEP)
  return true
end

-- netio.server closes the connection when this returns (queued output is
-- still sent). ab -k -c 10000 opens every connection at once: a deep accept
-- queue (the kernel clamps it to net.core.somaxconn), as http_netio.lua.
assert(netio.server(address, function(conn)
  while request(conn) do end
end, { backlog = 65535 }))
