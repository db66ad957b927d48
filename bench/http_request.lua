-- bench/http_request.lua: the HTTP/1.1 hello-world request handling both
-- netio benchmark servers share (bench/http_netio.lua, bench/http_server.lua):
-- request line and headers read with recv("*l"), "hello world" with a
-- Content-Length. HTTP/1.0 clients (ab -k) get keep-alive only when they ask
-- for it. Returns request(conn): false when the connection must end.
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

return request
