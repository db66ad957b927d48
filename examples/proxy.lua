-- examples/proxy.lua: a TCP proxy. Every connection accepted on LISTEN is
-- joined to a new connection to UPSTREAM, and bytes flow both ways at once:
-- two tasks per connection, one for each direction. When one side
-- half-closes (its sending side ends), the proxy half-closes the other
-- side with shutdown(), so that request-then-EOF protocols work through
-- it; when a side fails, both connections are closed.
--
--   netio examples/proxy.lua LISTEN UPSTREAM [CONNECTIONS]
--   netio examples/proxy.lua 127.0.0.1:8080 example.com:80
--
-- LISTEN may have port 0 (the line "proxy <ip>:<port> -> UPSTREAM" says
-- which). With CONNECTIONS, the proxy stops after serving that many
-- connections (the tests use it); without, it runs until Ctrl-C.
local netio = require "netio"

local listen_at, upstream, limit = ...
if not upstream then
  io.stderr:write("usage: netio examples/proxy.lua LISTEN UPSTREAM [CONNECTIONS]\n")
  os.exit(2)
end
limit = tonumber(limit)

-- Copy from `src` to `dst` until `src` ends, then half-close `dst` so that
-- its reader sees the end as well. send() waits while more than 1 MiB is
-- queued on `dst`, so a slow reader slows the writer down instead of
-- filling the proxy's memory. Returns true, or nil and the error.
local function pump(src, dst, name)
  while true do
    local data, err = src:recv()
    if not data then
      if err ~= "closed" then return nil, name .. ": receive: " .. err end
      -- Every byte handed to the system first, then the FIN: nothing is
      -- left queued when the connection is closed, even if the process
      -- ends right after.
      local ok, ferr = dst:flush()
      if not ok then return nil, name .. ": flush: " .. ferr end
      return dst:shutdown()
    end
    local ok, serr = dst:send(data)
    if not ok then return nil, name .. ": send: " .. serr end
  end
end

local served = 0

local function proxy(client)
  local server, err = netio.connect(upstream, { timeout = 10 })
  if not server then
    io.stderr:write(("proxy: cannot connect to %s: %s\n"):format(upstream, err))
    client:close()
    return
  end
  local up = netio.spawn(pump, client, server, "client -> upstream")
  local down = netio.spawn(pump, server, client, "upstream -> client")
  local first, ok, pumped, perr = netio.wait(up, down)
  if not (ok and pumped) then
    -- One direction failed: close both ends, which ends the other task.
    io.stderr:write(("proxy: %s\n"):format(tostring(ok and perr or pumped)))
    client:close()
    server:close()
  end
  local other = first == up and down or up
  other:join()
  -- Both directions ended (or failed): close sends what is still queued.
  client:close()
  server:close()
end

local l = assert(netio.listen(listen_at))
local ip, port = l:getsockname()
print(("proxy %s:%d -> %s"):format(ip, port, upstream))
io.stdout:flush()

local handlers = {}
while not limit or served < limit do
  local client, err = l:accept()
  if not client then
    io.stderr:write("proxy: accept: " .. tostring(err) .. "\n")
    break
  end
  served = served + 1
  local h = netio.spawn(proxy, client)
  if limit then handlers[#handlers + 1] = h end -- to wait for them below
end
l:close()
for _, h in ipairs(handlers) do h:join() end
print(("proxy: %d connections served"):format(served))
