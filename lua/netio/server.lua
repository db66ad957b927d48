-- netio.server(addr, handler[, opts]): a task per connection running
-- handler(conn), the connection closed when handler returns, its errors
-- logged (repeats rate-limited) and the server serving on.
--   opts.backlog       the listen backlog (511)
--   opts.reuseport     SO_REUSEPORT (several processes on one port)
--   opts.max_clients   at most this many handlers at once; more connections
--                      wait in the backlog until one ends
--   opts.accepts       accepts kept posted where the backend pre-posts them
--                      (iocp): max_clients (at most 1024) when not given
--   opts.idle_timeout  seconds without a byte in or out: the connection is
--                      closed (its handler's recv gets nil, "closed")
--   opts.max_output    bytes queued for one connection above which it is
--                      aborted (reset): a slow or dead reader cannot eat
--                      memory
--   opts.max_input     bytes one recv of a handler may gather (n bytes,
--                      "*a") before it fails with "too large" (16 MiB)
-- Returns the listener (close it to stop accepting) | nil, err, code.
local core = require "netio.core"
local sync = require "netio.sync"
local ratelog = require "netio.ratelog"

local KNOWN = { backlog = true, reuseport = true, max_clients = true, accepts = true,
                idle_timeout = true, max_output = true, max_input = true }

local function argerror(n, msg)
  error(("bad argument #%d to 'server' (%s)"):format(n, msg), 3)
end

local function check_opts(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then argerror(3, "table expected, got " .. type(opts)) end
  for k in pairs(opts) do
    if not KNOWN[k] then argerror(3, ("unknown option '%s'"):format(tostring(k))) end
  end
  local mc, it, mo = opts.max_clients, opts.idle_timeout, opts.max_output
  if mc ~= nil and (math.type(mc) ~= "integer" or mc < 1) then
    argerror(3, "field 'max_clients' must be a positive integer")
  end
  local ac = opts.accepts
  if ac ~= nil and (math.type(ac) ~= "integer" or ac < 1 or ac > 1024) then
    argerror(3, "field 'accepts' must be an integer from 1 to 1024")
  end
  -- not (it > 0), not it <= 0: NaN must fail too.
  if it ~= nil and (type(it) ~= "number" or not (it > 0)) then -- luacheck: ignore 581
    argerror(3, "field 'idle_timeout' must be a positive number")
  end
  if mo ~= nil and (math.type(mo) ~= "integer" or mo < 1) then
    argerror(3, "field 'max_output' must be a positive integer")
  end
  local mi = opts.max_input
  if mi ~= nil and (math.type(mi) ~= "integer" or mi < 1) then
    argerror(3, "field 'max_input' must be a positive integer")
  end
  return opts
end

-- Close the connections idle for `idle` seconds; ends once the server
-- stopped accepting and its last connection went.
local function sweep(active, idle, state)
  local period = math.max(0.02, math.min(idle / 4, 1))
  while not state.done or next(active) do
    core.sleep(period)
    local now = core.now()
    for c, a in pairs(active) do
      local st = c:getstats()
      if not st then
        active[c] = nil
      elseif st.bytes_in ~= a.i or st.bytes_out ~= a.o then
        a.i, a.o, a.t = st.bytes_in, st.bytes_out, now
      elseif now - a.t >= idle then
        core.log.debug("netio.server: closing %s, idle for %.1f s", tostring(c), now - a.t)
        active[c] = nil
        c:close()
      end
    end
  end
end

return function(addr, handler, opts)
  if type(addr) ~= "string" then argerror(1, "string expected, got " .. type(addr)) end
  if type(handler) ~= "function" then
    argerror(2, "function expected, got " .. type(handler))
  end
  opts = check_opts(opts)
  local accepts = opts.accepts
  if accepts == nil and opts.max_clients then accepts = math.min(opts.max_clients, 1024) end
  local l, err, code = core.listen(addr,
    { backlog = opts.backlog, reuseport = opts.reuseport, accepts = accepts })
  if not l then return nil, err, code end
  local sem = opts.max_clients and sync.semaphore(opts.max_clients)
  local idle, maxout, maxin = opts.idle_timeout, opts.max_output, opts.max_input
  local active, state = {}, { done = false }
  local logerr = ratelog.new(("netio.server %s: "):format(addr))

  local function serve(c)
    local ok, e = xpcall(handler, debug.traceback, c)
    if not ok and e ~= "canceled" then logerr("handler error: " .. tostring(e)) end
    active[c] = nil
    c:close()
    if sem then sem:release() end
  end

  core.spawn(function()
    while true do
      if sem and not sem:acquire() then break end -- the run stops
      local c = l:accept()
      if not c then
        if sem then sem:release() end
        break
      end
      if maxout then c:setoption("max-output", maxout) end
      if maxin then c:setoption("max-input", maxin) end
      if idle then active[c] = { t = core.now(), i = 0, o = 0 } end
      core.spawn(serve, c)
    end
    state.done = true
  end)
  if idle then core.spawn(sweep, active, idle, state) end
  return l
end
