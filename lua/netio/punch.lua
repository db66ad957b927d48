-- netio.punch: TCP hole punching, as the seed library had it.
--
--   netio.punch(conn, peer_addr[, {timeout = 10, interval = 0.02}])
--     -> conn | nil, err[, code]
--
-- conn is a connection to a rendezvous server; peer_addr is the other
-- peer's address as that server saw it. punch takes conn's local address,
-- closes conn and connects to peer_addr from a new socket bound to that
-- same address (netio.connect's `bind`: SO_REUSEADDR, and SO_REUSEPORT on
-- Linux), again and again until it connects or `timeout` passes. While the
-- two peers' SYNs have not crossed yet, an attempt fails at once
-- (ECONNREFUSED, ECONNRESET; EADDRNOTAVAIL while the same four-tuple is
-- still taken): the next one follows after a pause of `interval` seconds,
-- growing by half each time up to 0.1 s (or `interval` if larger).
--
-- Beyond the seed: meanwhile a listener (reuseport) on the same local
-- address takes the peer's SYN when it arrives between two attempts. A SYN
-- that meets no socket in SYN-SENT is answered with a reset at once, which
-- on loopback, on a LAN and behind NATs that reset (instead of dropping)
-- unsolicited SYNs leaves a window of microseconds for a simultaneous open:
-- without the listener two peers retrying on loopback practically never
-- connect. Only a connection from peer_addr's port (and IP, for a numeric
-- peer_addr) is taken; others are closed. Where the system does not let a
-- connecting socket bind the address the listener holds (Wine: EACCES),
-- the listener is dropped and punch goes on connecting only.
--
-- The local address must be bindable again while conn's socket lingers
-- (FIN-WAIT, TIME-WAIT): punch sets "reuseaddr" on conn before closing it,
-- which is all Linux needs when conn's socket is the only one on its port.
-- A connection made with `bind` (port 0 included) always is; one made
-- without `bind` got its port from connect(), which Linux shares between
-- connections to different destinations (and their TIME-WAIT leftovers,
-- without reuse): then punch fails at once with nil, "address already in
-- use", "EADDRINUSE".
--
-- Returns the new connection (no timeouts set, as from netio.connect) or
-- nil, err[, code]:
--   nil, "closed"                        conn was closed
--   nil, 'malformed address "..."', "EBADADDR"   (conn is left open)
--   nil, "timeout", "ETIMEDOUT"          no attempt succeeded in time
--   nil, message, code                   another failure of getsockname,
--                                        of binding or of connecting
-- Raises for a first argument that is not a netio.conn, a peer_addr that
-- is not a string or number, bad options (an unknown key included), and
-- outside a task ("netio: punch must be called from a netio task").
local core = require "netio.core"

local DEFAULT_TIMEOUT = 10
local DEFAULT_INTERVAL = 0.02
local MAX_INTERVAL = 0.1

-- Failures of one attempt that a later attempt may not meet.
local RETRY = {
  ECONNREFUSED = true,  -- the peer's socket is not connecting yet
  ECONNRESET = true,
  ECONNABORTED = true,
  EADDRNOTAVAIL = true, -- the four-tuple is still taken (e.g. just accepted)
}

-- The type name of luaL_typeerror: __name, or the basic type.
local function typename(v, given)
  if not given then return "no value" end
  local mt = getmetatable(v)
  if type(mt) == "table" and type(rawget(mt, "__name")) == "string" then
    return mt.__name
  end
  return type(v)
end

local function argerror(n, msg)
  error(("bad argument #%d to 'punch' (%s)"):format(n, msg), 3)
end

-- The split of netio's address parser (csrc/engine/addr.c): host, port, or
-- nil when malformed. The host comes without brackets.
local function split(s)
  s = s:match("^[^\0]*") -- C sees the string up to its first NUL
  local host, port
  if s:sub(1, 1) == "[" then
    host, port = s:match("^%[([%w%.%-_:%%]+)%]:(.*)$")
  else
    host, port = s:match("^(.*):(.*)$")
    if host == "*" then
      host = ""
    elseif host and not host:match("^[%w%.%-_]*$") then
      host = nil
    end
  end
  if not host or #host >= 256 or not port:match("^%d%d?%d?%d?%d?$")
      or tonumber(port) > 65535 then
    return nil
  end
  return host, tonumber(port)
end

-- The groups of hex digits of one side of an IPv6 "::", appended to out;
-- false when one is not 1 to 4 hex digits.
local function hex_groups(part, out)
  if part == "" then return true end
  for g in (part .. ":"):gmatch("([^:]*):") do
    if not g:match("^%x%x?%x?%x?$") then return false end
    out[#out + 1] = ("%x"):format(tonumber(g, 16))
  end
  return true
end

-- Two IPv6 groups for a dotted IPv4 address, or nil.
local function v4_groups(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return ("%x:%x"):format(a * 256 + b, c * 256 + d)
end

-- An IP literal in one spelling: its 8 IPv6 groups (IPv4 as IPv4-mapped
-- IPv6, as getpeername reports a mapped address as plain IPv4), or nil for
-- anything else (a host name). A zone ("%eth0") is ignored.
local function canon_ip(ip)
  ip = ip:gsub("%%.*$", "")
  local four = v4_groups(ip)
  if four then return "0:0:0:0:0:ffff:" .. four end
  if not ip:find(":", 1, true) then return nil end
  local tail = ip:match(":(%d+%.%d+%.%d+%.%d+)$")
  if tail then
    local t = v4_groups(tail)
    if not t then return nil end
    ip = ip:sub(1, #ip - #tail) .. t
  end
  local g, head, rest = {}, ip:match("^(.-)::(.*)$")
  if head then
    local a, b = {}, {}
    if not hex_groups(head, a) or not hex_groups(rest, b)
        or #a + #b > 7 then
      return nil
    end
    table.move(a, 1, #a, 1, g)
    for _ = 1, 8 - #a - #b do g[#g + 1] = "0" end
    table.move(b, 1, #b, #g + 1, g)
  elseif not hex_groups(ip, g) then
    return nil
  end
  if #g ~= 8 then return nil end
  return table.concat(g, ":")
end

local function addr_string(ip, port)
  if ip:find(":", 1, true) then return ("[%s]:%d"):format(ip, port) end
  return ("%s:%d"):format(ip, port)
end

local function punch(...)
  local nargs = select("#", ...)
  local conn, peer, opts = ...
  local mt = getmetatable(conn)
  if type(conn) ~= "userdata" or type(mt) ~= "table"
      or rawget(mt, "__name") ~= "netio.conn" then
    argerror(1, "netio.conn expected, got " .. typename(conn, nargs >= 1))
  end
  if type(peer) == "number" then
    peer = tostring(peer)
  elseif type(peer) ~= "string" then
    argerror(2, "string expected, got " .. typename(peer, nargs >= 2))
  end
  local timeout, interval = DEFAULT_TIMEOUT, DEFAULT_INTERVAL
  if opts ~= nil then
    if type(opts) ~= "table" then
      argerror(3, "table expected, got " .. typename(opts, true))
    end
    for k in pairs(opts) do
      if k ~= "timeout" and k ~= "interval" then
        argerror(3, ("unknown option '%s'"):format(tostring(k)))
      end
    end
    if opts.timeout ~= nil then
      timeout = opts.timeout
      if type(timeout) ~= "number" or timeout ~= timeout then
        argerror(3, "field 'timeout' must be a number")
      end
      if timeout < 0 then argerror(3, "field 'timeout' must not be negative") end
    end
    if opts.interval ~= nil then
      interval = opts.interval
      if type(interval) ~= "number" or interval ~= interval or interval <= 0 then
        argerror(3, "field 'interval' must be a positive number")
      end
    end
  end
  if not core.intask() then
    error("netio: punch must be called from a netio task", 0)
  end

  local phost, pport = split(peer)
  if not phost then
    return nil, ('malformed address "%s"'):format(peer:match("^[^\0]*")),
      "EBADADDR"
  end
  local ip, port, code = conn:getsockname()
  if not ip then
    if code then return nil, port, code end
    return nil, port -- "closed"
  end
  local bind = addr_string(ip, port)
  local want_ip = canon_ip(phost)
  local deadline = core.now() + timeout

  -- Let a socket bind the address while conn's lingers (its SO_REUSEADDR
  -- is read when the new socket binds, and kept by its TIME-WAIT).
  conn:setoption("reuseaddr", true)
  conn:close()

  -- A listener on the same address takes the peer's SYN if it arrives
  -- between two attempts; its catch is handed over to the loop below.
  local listener = core.listen(bind, { reuseport = true })
  local caught, done
  local function drop_listener()
    if listener then listener:close() end
    listener = nil
  end
  local _ <close> = setmetatable({}, { __close = drop_listener })
  if listener then
    local l = listener
    core.spawn(function()
      while true do
        local c = l:accept()
        if not c then return end
        local cip, cport = c:getpeername()
        if done or cport ~= pport
            or (want_ip and (not cip or canon_ip(cip) ~= want_ip)) then
          c:close()
        else
          caught = c
          return
        end
      end
    end)
  end

  local function finish(c, ...)
    done = true
    drop_listener()
    if caught and caught ~= c then caught:close() end
    if c then c:settimeouts(nil, nil, nil) end
    return c, ...
  end

  local pause, max_pause = interval, math.max(interval, MAX_INTERVAL)
  while true do
    if caught then return finish(caught) end
    local left = deadline - core.now()
    if left <= 0 then return finish(nil, "timeout", "ETIMEDOUT") end
    local c, err, ecode = core.connect(peer, { bind = bind, timeout = left })
    if c then return finish(c) end
    if listener and (ecode == "EADDRINUSE" or ecode == "EACCES") then
      -- The system does not let a connecting socket share the listener's
      -- address (Wine): connect only, at once.
      drop_listener()
    elseif not RETRY[ecode] then
      return finish(nil, err, ecode)
    else
      core.sleep(0) -- a connection just accepted is taken first
      if not caught then
        core.sleep(math.min(pause, math.max(deadline - core.now(), 0)))
        pause = math.min(pause * 1.5, max_pause)
      end
    end
  end
end

return punch
