-- examples/http_client.lua: an HTTP/1.1 client. GETs each URL given, in
-- order, reusing one keep-alive connection per host and port; reads
-- bodies sized by Content-Length, sent chunked, or ended by the server's
-- close. Each body goes to stdout; a line per response goes to stderr:
-- "GET <url>: <status> <reason>, <n> bytes, connection <k> (new|reused)".
--
--   netio examples/http_client.lua http://127.0.0.1:8080/ [url ...]
--
-- Plain http:// only (no TLS); IPv6 hosts in brackets (http://[::1]:8080/).
-- Exits 1 at the first URL that fails.
local netio = require "netio"

local TIMEOUT = 10
local MAX_BODY = 64 * 1024 * 1024

local function parse_url(url)
  local host, port, path = url:match("^http://(%[[^%]]+%]):?(%d*)(.*)$")
  if not host then host, port, path = url:match("^http://([^/:]+):?(%d*)(.*)$") end
  if not host then return nil, "not an http:// URL: " .. url end
  if path == "" then path = "/" end
  return host, tonumber(port) or 80, path
end

-- The response head: status, reason, headers (names lower-cased).
local function read_head(c)
  local line, err = c:recv("*l", TIMEOUT)
  if not line then return nil, "status line: " .. err end
  local version, status, reason = line:match("^HTTP/(%d%.%d) (%d%d%d) ?(.*)$")
  if not version then return nil, "bad status line: " .. line end
  local headers = {}
  while true do
    local h
    h, err = c:recv("*l", TIMEOUT)
    if not h then return nil, "headers: " .. err end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if not name then return nil, "bad header: " .. h end
    name = name:lower()
    -- Repeated headers are joined with commas, as HTTP allows.
    headers[name] = headers[name] and headers[name] .. ", " .. value or value
  end
  return tonumber(status), reason, headers, version
end

-- A chunked body: hex size lines (extensions after ';' ignored), each
-- chunk followed by CRLF, a 0 chunk, then trailers up to an empty line.
local function read_chunked(c)
  local parts, total = {}, 0
  while true do
    local line, err = c:recv("*l", TIMEOUT)
    if not line then return nil, "chunk size: " .. err end
    local size = tonumber(line:match("^%x+"), 16)
    if not size then return nil, "bad chunk size: " .. line end
    if size == 0 then break end
    total = total + size
    if total > MAX_BODY then return nil, "body too large" end
    local data
    data, err = c:recv(size, TIMEOUT)
    if not data then return nil, "chunk: " .. err end
    parts[#parts + 1] = data
    local crlf = c:recv("*l", TIMEOUT)
    if crlf ~= "" then return nil, "no CRLF after a chunk" end
  end
  repeat -- trailers
    local line, err = c:recv("*l", TIMEOUT)
    if not line then return nil, "trailer: " .. err end
  until line == ""
  return table.concat(parts)
end

-- The body, and whether the connection can carry another request.
local function read_body(c, status, headers, version)
  local te, len = headers["transfer-encoding"], headers["content-length"]
  local conn = (headers["connection"] or ""):lower()
  local keep = conn ~= "close" and (version == "1.1" or conn == "keep-alive")
  if status == 204 or status == 304 or status < 200 then return "", keep end
  if te and te:lower():find("chunked", 1, true) then
    local body, err = read_chunked(c)
    return body, keep, err
  elseif len then
    local n = tonumber(len)
    if not n or n < 0 or n > MAX_BODY then return nil, false, "bad Content-Length: " .. len end
    local body, err = c:recv(n, TIMEOUT)
    return body, keep, err
  end
  -- Neither: the body ends when the server closes.
  local body, err = c:recv("*a", TIMEOUT)
  return body, false, err
end

local conns = {} -- "host:port" -> { conn = c, n = its number }
local opened = 0

local function get(url)
  local host, port, path = parse_url(url)
  if not host then return nil, port end
  local key = host .. ":" .. port
  local entry, reused = conns[key], true
  if not entry then
    local c, err = netio.connect(key, { timeout = TIMEOUT })
    if not c then return nil, "connect " .. key .. ": " .. err end
    opened = opened + 1
    entry, reused = { conn = c, n = opened }, false
    conns[key] = entry
  end
  local c = entry.conn
  local hostheader = port == 80 and host or key
  local ok, err = c:send({ "GET ", path, " HTTP/1.1\r\nHost: ", hostheader,
    "\r\nUser-Agent: netio-example\r\nAccept: */*\r\n\r\n" })
  local status, reason, headers, version
  if ok then status, reason, headers, version = read_head(c) end
  if not status then
    -- A kept-alive connection the server closed meanwhile: once more on a
    -- new one.
    c:close()
    conns[key] = nil
    if reused then return get(url) end
    return nil, ok and reason or err
  end
  local body, keep
  body, keep, err = read_body(c, status, headers, version)
  if not body then
    c:close()
    conns[key] = nil
    return nil, err
  end
  if not keep then
    c:close()
    conns[key] = nil
  end
  return status, reason, body, entry.n, reused
end

local urls = { ... }
if #urls == 0 then
  io.stderr:write("usage: netio examples/http_client.lua URL [URL ...]\n")
  os.exit(2)
end
for _, url in ipairs(urls) do
  local status, reason, body, n, reused = get(url)
  if not status then
    io.stderr:write(("GET %s: %s\n"):format(url, reason))
    os.exit(1)
  end
  io.stdout:write(body)
  io.stderr:write(("GET %s: %d %s, %d bytes, connection %d (%s)\n"):format(url, status,
    reason, #body, n, reused and "reused" or "new"))
end
io.stdout:flush()
for _, entry in pairs(conns) do entry.conn:close() end
