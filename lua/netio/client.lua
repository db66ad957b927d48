-- netio.client(addr, handler[, opts]) -> client: a connection that makes
-- itself. Returns at once; handler(conn) runs for every successful connect.
-- client:send(data) and netio.send(client:id(), data) (from any thread)
-- work at once: what they queue while not connected is sent, in order,
-- once connected. client:id() does not change across reconnects.
--   opts.reconnect   true (back-off 0.1 .. 30 s), or { min = s, max = s }:
--                    connect again after a failure or after the handler
--                    returned, waiting min, then twice as long each time up
--                    to max (back to min after a connection worked);
--                    false/nil: one connection only
--   opts.timeout     seconds for each connect (default: none)
-- client:close() ends it for good (the current connection is closed, queued
-- output flushed as by conn:close()). Output queued on a connection that
-- broke is dropped (counted in netio.stats().dropped_bytes); what is sent
-- while disconnected waits for the next connection.
local core = require "netio.core"
local ratelog = require "netio.ratelog"

local KNOWN = { reconnect = true, timeout = true }

local Client = {}
Client.__index = Client

local function argerror(n, msg)
  error(("bad argument #%d to 'client' (%s)"):format(n, msg), 3)
end

local function check_opts(opts)
  if opts == nil then return {}, nil, nil end
  if type(opts) ~= "table" then argerror(3, "table expected, got " .. type(opts)) end
  for k in pairs(opts) do
    if not KNOWN[k] then argerror(3, ("unknown option '%s'"):format(tostring(k))) end
  end
  local t = opts.timeout
  -- not (t >= 0), not t < 0: NaN must fail too.
  if t ~= nil and (type(t) ~= "number" or not (t >= 0)) then -- luacheck: ignore 581
    argerror(3, "field 'timeout' must be a non-negative number")
  end
  local r, rmin, rmax = opts.reconnect, nil, nil
  if r == true then
    rmin, rmax = 0.1, 30
  elseif type(r) == "table" then
    rmin, rmax = r.min or 0.1, r.max or 30
    for k in pairs(r) do
      if k ~= "min" and k ~= "max" then
        argerror(3, ("unknown option 'reconnect.%s'"):format(tostring(k)))
      end
    end
    -- not (x > y), not x <= y: NaN must fail too.
    if type(rmin) ~= "number" or not (rmin > 0) or type(rmax) ~= "number" -- luacheck: ignore 581
        or not (rmax >= rmin) then -- luacheck: ignore 581
      argerror(3, "field 'reconnect' needs 0 < min <= max")
    end
  elseif r ~= nil and r ~= false then
    argerror(3, "field 'reconnect' must be a boolean or a table")
  end
  return opts, rmin, rmax
end

local function run(self, addr, handler, opts, rmin, rmax)
  local delay = rmin
  local logerr = ratelog.new(("netio.client %s: "):format(addr))
  while not self.closed do
    local c = self.conn
    local ok, err = c:dial(addr, { timeout = opts.timeout })
    if ok then
      delay = rmin
      local hok, herr = xpcall(handler, debug.traceback, c)
      if not hok and herr ~= "canceled" then logerr("handler error: " .. tostring(herr)) end
    elseif not self.closed then
      core.log.debug("netio.client %s: connect failed: %s", addr, tostring(err))
    end
    if self.closed or not rmin then break end
    -- The id goes to a fresh connection; this one closes.
    local n = c:successor()
    if not n then
      -- The handler closed it: the id could not be kept.
      core.log.warn("netio.client %s: the handler closed the client's " ..
        "connection; its id changes", addr)
      n = core.detached()
      self._id = n:id()
    end
    self.conn = n
    core.sleep(delay)
    delay = math.min(delay * 2, rmax)
  end
  self.closed = true
  self.conn:close()
end

-- client:send(data): as conn:send on the current connection, connected or
-- not (queued until it is); nil, "closed" once the client is closed.
function Client:send(data)
  if self.closed then return nil, "closed" end
  return self.conn:send(data)
end

-- The connection id, for netio.send from any thread.
function Client:id()
  return self._id
end

-- Whether a connection is up now.
function Client:connected()
  return not self.closed and self.conn:getpeername() ~= nil
end

function Client:close()
  if self.closed then return true end
  self.closed = true
  self.conn:close()
  self.task:cancel() -- out of its back-off, or its handler's wait
  return true
end

Client.__close = Client.close

return function(addr, handler, opts)
  if type(addr) ~= "string" then argerror(1, "string expected, got " .. type(addr)) end
  if type(handler) ~= "function" then
    argerror(2, "function expected, got " .. type(handler))
  end
  local rmin, rmax
  opts, rmin, rmax = check_opts(opts)
  local conn = core.detached() -- raises outside a task
  local self = setmetatable({ conn = conn, _id = conn:id(), closed = false }, Client)
  self.task = core.spawn(run, self, addr, handler, opts, rmin, rmax)
  return self
end
