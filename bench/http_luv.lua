-- bench/http_luv.lua: the luv (libuv) HTTP/1.1 hello-world server for the
-- benchmark, Lua 5.4, one thread, callbacks. Like the netio servers it reads
-- every header line (Connection and Content-Length are acted on) and answers
-- "hello world" with a Content-Length; keep-alive as in bench/http_request.lua.
--   lua5.4 bench/http_luv.lua ip:port
local uv = require "luv"

local BODY = "hello world"
local HEAD = "HTTP/1.1 200 OK\r\nServer: luv\r\nContent-Type: text/plain\r\n"
  .. "Content-Length: " .. #BODY .. "\r\n"
local KEEP = HEAD .. "\r\n" .. BODY
local KEEP10 = HEAD .. "Connection: keep-alive\r\n\r\n" .. BODY
local CLOSE = HEAD .. "Connection: close\r\n\r\n" .. BODY

-- Parse the complete requests at the start of buf; answer each. Returns the
-- unparsed rest, or nil when the connection must end.
local function serve(client, buf)
  local pos = 1
  while true do
    local e = buf:find("\r\n", pos, true)
    if not e then break end
    if e == pos then -- stray CRLF between requests
      pos = e + 2
    else
      -- the whole head must be here before it is parsed
      local stop = buf:find("\r\n\r\n", pos, true)
      if not stop then break end
      local line = buf:sub(pos, e - 1)
      local http10 = line:sub(-8) == "HTTP/1.0"
      local keep, length = not http10, 0
      local p = e + 2
      while p < stop + 2 do
        local le = buf:find("\r\n", p, true)
        local h = buf:sub(p, le - 1)
        p = le + 2
        local c = h:byte(1)
        if c == 67 or c == 99 then -- 'C'/'c': Connection, Content-Length
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
      local body_end = stop + 3 + length
      if body_end > #buf then break end -- the body is not all here yet
      pos = body_end + 1
      if not keep then
        client:write(CLOSE)
        return nil
      end
      client:write(http10 and KEEP10 or KEEP)
    end
  end
  return buf:sub(pos)
end

local ip, port = (arg[1] or "127.0.0.1:8080"):match("^(.*):(%d+)$")
local server = uv.new_tcp()
assert(server:bind(ip, tonumber(port)))
assert(server:listen(65535, function(err)
  assert(not err, err)
  local client = uv.new_tcp()
  server:accept(client)
  client:nodelay(true)
  local rest = ""
  client:read_start(function(rerr, data)
    if rerr or not data then
      client:close()
      return
    end
    rest = serve(client, rest .. data)
    if not rest then
      client:shutdown(function() client:close() end)
      client:read_stop()
    end
  end)
end))
uv.run()
