-- examples/https_get.lua: fetch one page over HTTPS and print its body.
--
--   netio examples/https_get.lua URL [CAFILE]
--   netio examples/https_get.lua https://localhost:8443/ /tmp/ca/ca.pem
--
-- The server's certificate is verified, always: against CAFILE when given
-- (a test CA, say from bash tools/test-ca.sh /tmp/ca), else against the
-- system's store; its name is checked against the URL's host (an IP
-- address against the certificate's IP addresses). HTTP/1.1 with
-- "Connection: close": the body is read by Content-Length, chunked, or
-- until the server closes. The status line and headers go to stderr, the
-- body to stdout; a failure (connect, verification, a status other than
-- 2xx) ends the script with an error.
local netio = require "netio"

local url, cafile = ...
if not url then
  io.stderr:write("usage: netio examples/https_get.lua URL [CAFILE]\n")
  os.exit(2)
end
if not netio.tls then error("this netio was built without TLS") end

-- https://host[:port][/path]; host may be [v6].
local host, port, path = url:match("^https://(%[[^%]]+%])(:?%d*)(.*)$")
if not host then host, port, path = url:match("^https://([^/:]+)(:?%d*)(.*)$") end
if not host then error("not an https:// URL: " .. url) end
port = tonumber(port:sub(2)) or 443
if path == "" then path = "/" end
local name = host:gsub("^%[(.*)%]$", "%1")

local ctx = assert(netio.tls.context({ ca = cafile }))  -- nil ca: the system store
-- The connect returns once the handshake and the verification are done.
local conn = assert(netio.connect(("%s:%d"):format(host, port),
  { tls = ctx, servername = name, timeout = 10 }))
conn:settimeout(10)
assert(conn:send(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: netio\r\n"
  .. "Connection: close\r\n\r\n"):format(path, host)))

local status = assert(conn:recv("*l"))
io.stderr:write(status, "\n")
local code = tonumber(status:match("^HTTP/%d%.%d (%d%d%d)"))
local length, chunked
while true do
  local h = assert(conn:recv("*l"))
  if h == "" then break end
  io.stderr:write(h, "\n")
  local k, v = h:match("^([^:]+):%s*(.-)%s*$")
  k = k and k:lower()
  if k == "content-length" then length = tonumber(v)
  elseif k == "transfer-encoding" and v:lower():find("chunked") then chunked = true end
end

local out = io.stdout
if chunked then
  while true do
    local size = tonumber(assert(conn:recv("*l")):match("^%x+"), 16)
    if not size then error("bad chunk size") end
    if size == 0 then break end
    out:write(assert(conn:recv(size)))
    assert(conn:recv("*l"))  -- the CRLF after the chunk
  end
elseif length then
  while length > 0 do
    local d = assert(conn:recv(math.min(length, 65536)))
    out:write(d)
    length = length - #d
  end
else
  while true do
    local d, err = conn:recv()
    if not d then
      if err ~= "closed" then error(err) end
      break
    end
    out:write(d)
  end
end
conn:close()
if not code or code < 200 or code > 299 then error("HTTP status: " .. status) end
