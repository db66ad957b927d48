-- netio.ngx: the part of OpenResty's `ngx` API that pure-Lua client
-- libraries (lua-resty-*) use, built on netio's own calls, so that such a
-- library runs unmodified on Lua 5.4. docs/api.md ("OpenResty
-- compatibility") is the reference.
--
--   local ngx = require "netio.ngx"     -- the table
--   require("netio.ngx").install()      -- also sets the global `ngx`
--   require "ngx.semaphore"             -- preloaded by the above
--
-- Choices where OpenResty and netio differ:
--   * Cosocket timeouts are milliseconds (settimeout, settimeouts,
--     setkeepalive), as in OpenResty; 0 or nil means OpenResty's default
--     of 60 s (lua_socket_*_timeout). ngx.sleep, ngx.timer.* and
--     sema:wait take seconds, as in OpenResty.
--   * A failed receive or send closes the cosocket, except a read timeout
--     (OpenResty's rule); "closed" and "timeout" are netio's exact strings.
--   * ngx.thread.spawn starts the thread on a later turn of the loop, not
--     inside spawn (netio.spawn's rule).
--   * Timers run while the run lasts (an armed timer keeps it going);
--     netio.stop() runs every armed timer's callback at once with
--     premature = true, as nginx does when a worker exits.
--   * What needs a request or nginx itself (ngx.var, ngx.re, ngx.req,
--     ngx.say, ngx.shared, ...) raises "ngx.<name> is not available in
--     netio" when used.
local netio = require "netio"
local core = require "netio.core"

local type, tostring, tonumber, select, error, pcall = type, tostring, tonumber, select,
  error, pcall
local setmetatable, rawequal = setmetatable, rawequal
local floor, tointeger = math.floor, math.tointeger
local concat, unpack, pack = table.concat, table.unpack, table.pack
local byte, char, sub, find, gsub, format = string.byte, string.char, string.sub,
  string.find, string.gsub, string.format
local nconnect, nspawn, nwait, nsleep = netio.connect, netio.spawn, netio.wait, netio.sleep
local wallclock = core.time

local ngx = {}

ngx.null = core.null

ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED = 0, -1, -2, -4, -5

-- ---- time ---------------------------------------------------------------

function ngx.sleep(sec)
  return nsleep(sec)
end

-- Seconds since the epoch with milliseconds, as nginx's cached time.
function ngx.now()
  return floor(wallclock() * 1000) / 1000
end

function ngx.time()
  return floor(wallclock())
end

-- nginx refreshes its cached time here; netio's clock is read at each call.
function ngx.update_time() end

function ngx.today()
  return os.date("%Y-%m-%d", ngx.time())
end

function ngx.localtime()
  return os.date("%Y-%m-%d %H:%M:%S", ngx.time())
end

function ngx.utctime()
  return os.date("!%Y-%m-%d %H:%M:%S", ngx.time())
end

-- ---- log ----------------------------------------------------------------

ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR = 0, 1, 2, 3, 4
ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG = 5, 6, 7, 8

local log = netio.log
local LEVEL = { [0] = log.error, log.error, log.error, log.error, log.error, log.warn,
                log.info, log.info, log.debug }

-- Values are written as nginx's log writes them: strings and numbers as
-- they are, nil and booleans by name, ngx.null as "null", a table through
-- its __tostring; anything else raises.
function ngx.log(level, ...)
  local fn = type(level) == "number" and LEVEL[level]
  if not fn then
    error("bad argument #1 to 'log' (log level expected, got " .. tostring(level) .. ")", 2)
  end
  local parts = {}
  for i = 1, select("#", ...) do
    local v = (select(i, ...))
    local t = type(v)
    if t == "string" then
      parts[i] = v
    elseif t == "number" or t == "boolean" or t == "nil" then
      parts[i] = tostring(v)
    elseif rawequal(v, ngx.null) then
      parts[i] = "null"
    elseif t == "table" and type(getmetatable(v)) == "table" and getmetatable(v).__tostring then
      parts[i] = tostring(v)
    else
      error(("bad argument #%d to 'log' (string, number, boolean, or nil expected, got %s)")
        :format(i + 1, t), 2)
    end
  end
  -- "[lua] file:line: " as OpenResty starts its lines.
  local ar = debug.getinfo(2, "Sl")
  local where = ar and ("%s:%d: "):format(ar.short_src:match("[^/\\]*$"), ar.currentline)
  fn("[lua] " .. (where or "") .. concat(parts))
end

-- ---- uri and base64 -----------------------------------------------------

-- type 2 (the default, a URI component): everything but ALPHA DIGIT - . _ ~;
-- type 0 (a whole URI): space, #, %, ?, control bytes and bytes >= 0x7F.
local function hex(c)
  return format("%%%02X", byte(c))
end

function ngx.escape_uri(s, kind)
  if s == nil then return "" end
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    error("bad argument #1 to 'escape_uri' (string expected, got " .. type(s) .. ")", 2)
  end
  if kind == 0 then return (gsub(s, "[%z\1-\32#%%?\127-\255]", hex)) end
  if kind ~= nil and kind ~= 2 then
    error("bad argument #2 to 'escape_uri' (0 or 2 expected)", 2)
  end
  return (gsub(s, "[^%w%-%._~]", hex))
end

-- "+" becomes a space; a % not followed by two hex digits stays as it is.
function ngx.unescape_uri(s)
  if s == nil then return "" end
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    error("bad argument #1 to 'unescape_uri' (string expected, got " .. type(s) .. ")", 2)
  end
  s = gsub(s, "+", " ")
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local ENC, DEC = {}, {}
for i = 1, 64 do
  ENC[i - 1] = sub(B64, i, i)
  DEC[byte(B64, i)] = i - 1
end

function ngx.encode_base64(s, no_padding)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    error("bad argument #1 to 'encode_base64' (string expected, got " .. type(s) .. ")", 2)
  end
  local out, n = {}, #s
  for i = 1, n - 2, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. ENC[v >> 6 & 63] .. ENC[v & 63]
  end
  local rest = n % 3
  if rest == 1 then
    local v = byte(s, n) << 16
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. (no_padding and "" or "==")
  elseif rest == 2 then
    local a, b = byte(s, n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. ENC[v >> 6 & 63]
      .. (no_padding and "" or "=")
  end
  return concat(out)
end

-- nginx's decoder: the data ends at the first "=" (what follows is not
-- looked at); any other byte outside the alphabet, or a length that leaves
-- one lone character, makes it nil. Padding may be left out.
function ngx.decode_base64(s)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    error("bad argument #1 to 'decode_base64' (string expected, got " .. type(s) .. ")", 2)
  end
  local len = (find(s, "=", 1, true) or #s + 1) - 1
  if len % 4 == 1 then return nil end
  local out, acc, bits = {}, 0, 0
  for i = 1, len do
    local d = DEC[byte(s, i)]
    if not d then return nil end
    acc, bits = (acc << 6 | d) & 0xFFFFFF, bits + 6
    if bits >= 8 then
      bits = bits - 8
      out[#out + 1] = char(acc >> bits & 255)
    end
  end
  return concat(out)
end

-- ---- threads ------------------------------------------------------------

-- What ngx.thread.kill must tell apart: a thread already waited for or
-- killed ("already waited or killed") from one that ended by itself.
local gone = setmetatable({}, { __mode = "k" })

ngx.thread = {}

function ngx.thread.spawn(fn, ...)
  return nspawn(fn, ...)
end

-- netio.wait's "task, true, ..." | "task, nil, err" as OpenResty's
-- "true, ..." | "false, err" (the error without netio's traceback).
local function waited(t, ok, ...)
  gone[t] = true
  if ok then return true, ... end
  local err = ...
  if type(err) == "string" then err = gsub(err, "\nstack traceback:\n.*$", "") end
  return false, err
end

function ngx.thread.wait(...)
  return waited(nwait(...))
end

function ngx.thread.kill(t)
  if gone[t] then return nil, "already waited or killed" end
  if t:cancel() then
    gone[t] = true
    return true
  end
  return nil, "already terminated"
end

-- ---- timers ---------------------------------------------------------------

ngx.timer = {}

local running, pending = 0, 0

local function fire(cb, premature, args)
  running = running + 1
  local r = pack(pcall(cb, premature, unpack(args, 1, args.n)))
  running = running - 1
  if not r[1] then error(r[2], 0) end
end

-- One task per timer, waiting on a waitq of its own: the timeout passing
-- is the tick; the waitq closing means the run stops (nothing else closes
-- it), and the callback then runs once more with premature = true.
local function driver(delay, every, cb, args)
  local wq = core.waitq()
  while true do
    local _, err = wq:wait(delay)
    if err == "timeout" then
      if not every then
        pending = pending - 1
        return fire(cb, false, args)
      end
      nspawn(fire, cb, false, args)
    else
      pending = pending - 1
      return fire(cb, true, args)
    end
  end
end

local function timer(name, delay, cb, ...)
  if type(delay) ~= "number" then
    error(("bad argument #1 to '%s' (number expected, got %s)"):format(name, type(delay)), 3)
  end
  if not (delay >= 0) or (name == "every" and delay == 0) then -- luacheck: ignore 581
    error(("bad argument #1 to '%s' (%s)"):format(name, name == "every"
      and "positive number expected" or "non-negative number expected"), 3)
  end
  if type(cb) ~= "function" then
    error(("bad argument #2 to '%s' (function expected, got %s)"):format(name, type(cb)), 3)
  end
  local ok, err = pcall(nspawn, driver, delay, name == "every", cb, pack(...))
  if not ok then return nil, tostring(err) end
  pending = pending + 1
  return true
end

function ngx.timer.at(delay, cb, ...)
  return timer("at", delay, cb, ...)
end

function ngx.timer.every(delay, cb, ...)
  return timer("every", delay, cb, ...)
end

function ngx.timer.running_count()
  return running
end

function ngx.timer.pending_count()
  return pending
end

-- ---- semaphore (require "ngx.semaphore") ------------------------------------

local semaphore = { version = "0.1.0" }
local Sema = {}
local SEMA = { __name = "ngx.semaphore", __index = Sema }

function semaphore.new(n)
  n = tointeger(n or 0)
  if not n or n < 0 then
    error("bad argument #1 to 'new' (non-negative integer expected)", 2)
  end
  return setmetatable({ sem = netio.semaphore(n) }, SEMA)
end

-- timeout in seconds, as OpenResty's: 0 does not wait.
function Sema.wait(self, timeout)
  local t = tonumber(timeout)
  if not t or t < 0 then
    error("bad argument #1 to 'wait' (non-negative number of seconds expected)", 2)
  end
  local sem = self.sem
  if t == 0 and sem:count() == 0 then return nil, "timeout" end
  local ok, err = sem:acquire(t)
  if ok then return true end
  return nil, err
end

function Sema.post(self, n)
  self.sem:release(n or 1)
  return true
end

-- As OpenResty's: the resources available, or minus the waiting threads.
function Sema.count(self)
  local sem = self.sem
  local n = sem:count()
  if n > 0 then return n end
  return -#sem._wq
end

-- ---- cosockets --------------------------------------------------------------

local DEFAULT_MS = 60000 -- lua_socket_connect/send/read_timeout

-- A timeout in ms as OpenResty's settimeout takes it: 0 or nil is the
-- default; seconds for netio.
local function ms(v, arg, fname)
  local n = v == nil and 0 or tonumber(v)
  if not n then
    error(("bad argument #%d to '%s' (number expected, got %s)"):format(arg, fname, type(v)), 3)
  end
  if n >= 2 ^ 31 or n < 0 then error("bad timeout value", 3) end
  n = floor(n)
  return n > 0 and n or DEFAULT_MS
end

-- send's data: a string, a number, or a (nested) table of strings, numbers,
-- booleans and nulls, flattened into one array for conn:send.
local function flatten(t, out, depth)
  if depth > 100 then error("bad argument #1 to 'send' (table nested too deep)", 4) end
  for i = 1, #t do
    local v = t[i]
    local tv = type(v)
    if tv == "string" or tv == "number" then
      out[#out + 1] = v
    elseif tv == "table" then
      flatten(v, out, depth + 1)
    elseif tv == "boolean" or tv == "nil" then
      out[#out + 1] = tostring(v)
    elseif rawequal(v, ngx.null) then
      out[#out + 1] = "null"
    else
      error(("bad argument #1 to 'send' (bad data type %s found)"):format(tv), 4)
    end
  end
  return out
end

local function senddata(data)
  local td = type(data)
  if td == "string" or td == "number" then return data end
  if td == "table" then
    -- The common case (resty.redis's requests): strings and numbers only.
    for i = 1, #data do
      local tv = type(data[i])
      if tv ~= "string" and tv ~= "number" then return flatten(data, {}, 1) end
    end
    return data
  end
  if td == "boolean" or td == "nil" then return tostring(data) end
  error(("bad argument #1 to 'send' (string, number, boolean, nil, or array table"
    .. " expected, got %s)"):format(td), 3)
end

local Tcp = {}
local TCP = { __name = "ngx.socket.tcp", __index = Tcp }

function TCP.__tostring(self)
  return ("ngx.socket.tcp (%s)"):format(self.conn and "connected" or "closed")
end

local function applytimeouts(self)
  local c = self.conn
  if c then c:settimeouts(self.ct / 1000, self.st / 1000, self.rt / 1000) end
end

local function tcp()
  return setmetatable({ ct = DEFAULT_MS, st = DEFAULT_MS, rt = DEFAULT_MS }, TCP)
end

local CONNECT_OPTS = { pool = true, pool_size = true, backlog = true }

-- Pools limited by connect's backlog option, as OpenResty's: name ->
--   size     the most connections open at once (pool_size, default 30)
--   members  the objects holding one of its connections, or connecting
--            (weak: a collected object's connection is closed anyway)
--   waiting  connects queued for a slot (at most backlog)
--   cv       wakes the first queued connect when a slot frees
-- In use is counted, not kept as a number: a connection that the peer or
-- the end of a run closed leaves the count by itself, and a pool of an
-- ended run starts again empty.
local limited = {}

local function inuse(lim)
  local n = 0
  for s in pairs(lim.members) do
    local c = s.conn
    if s.connecting or (c and c:getstats()) then
      n = n + 1
    else
      lim.members[s] = nil
    end
  end
  return n
end

-- The object no longer holds a connection of its limited pool.
local function release(self)
  local lim = self.lim
  if lim then
    self.lim = nil
    lim.members[self] = nil
    if lim.cv then lim.cv:signal() end
  end
end

local function unwait(lim)
  return setmetatable({}, { __close = function() lim.waiting = lim.waiting - 1 end })
end

-- Take a slot of the pool `name` for self, waiting within `timeout`
-- seconds in a queue of at most `backlog` connects.
local function admit(self, name, size, backlog, timeout)
  local lim = limited[name]
  if not lim then
    lim = { size = size or 30, members = setmetatable({}, { __mode = "k" }), waiting = 0 }
    limited[name] = lim
  end
  if inuse(lim) >= lim.size then
    if lim.waiting >= backlog then return nil, "too many waiting connect operations" end
    lim.waiting = lim.waiting + 1
    local _ <close> = unwait(lim) -- a cancel too
    local deadline, stale = netio.now() + timeout, true
    while inuse(lim) >= lim.size do
      local left = deadline - netio.now()
      if left <= 0 then return nil, "timeout" end
      if not lim.cv then lim.cv = netio.cond() end
      local ok, err = lim.cv:wait(left)
      if not ok and err == "closed" and stale then
        -- The cond of an ended run: a new one for this run, once.
        lim.cv, stale = nil, false
      elseif not ok then
        return nil, err
      end
    end
  end
  lim.members[self] = true
  self.lim = lim
  return true
end

function Tcp.connect(self, host, port, opts)
  if type(host) ~= "string" then
    error("bad argument #1 to 'connect' (string expected, got " .. type(host) .. ")", 2)
  end
  local addr
  if sub(host, 1, 5) == "unix:" then
    if type(port) == "table" and opts == nil then opts = port end
    addr = host
  else
    local p = tointeger(tonumber(port))
    if not p then
      error("bad argument #2 to 'connect' (number expected, got " .. type(port) .. ")", 2)
    end
    if p < 0 or p > 65535 then return nil, "bad port number: " .. tostring(port) end
    if find(host, ":", 1, true) and sub(host, 1, 1) ~= "[" then host = "[" .. host .. "]" end
    addr = host .. ":" .. p
  end
  local pool, size, backlog
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #3 to 'connect' (table expected, got " .. type(opts) .. ")", 2)
    end
    for k in pairs(opts) do
      if not CONNECT_OPTS[k] then
        error(("bad argument #3 to 'connect' (unknown option '%s')"):format(tostring(k)), 2)
      end
    end
    pool = opts.pool
    if pool ~= nil and type(pool) ~= "string" then
      error('bad argument #3 to \'connect\' (bad "pool" option type: ' .. type(pool) .. ")", 2)
    end
    size = opts.pool_size
    if size ~= nil and (math.type(size) ~= "integer" or size < 1) then
      error('bad argument #3 to \'connect\' (bad "pool_size" option value: '
        .. tostring(size) .. ")", 2)
    end
    backlog = opts.backlog
    if backlog ~= nil and (math.type(backlog) ~= "integer" or backlog < 0) then
      error('bad argument #3 to \'connect\' (bad "backlog" option value: '
        .. tostring(backlog) .. ")", 2)
    end
  end
  -- OpenResty closes the current connection of the object first.
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
  release(self)
  local t0 = netio.now()
  if backlog then
    local ok, err = admit(self, pool or addr, size, backlog, self.ct / 1000)
    if not ok then return nil, err end
  end
  -- The connect timeout bounds the wait for a slot and the connect together.
  local left = self.ct / 1000 - (netio.now() - t0)
  self.connecting = true
  local done, c, err = pcall(nconnect, addr, { timeout = left > 0 and left or 0, pool = pool })
  self.connecting = nil
  if not done then -- "canceled": the slot is free again
    release(self)
    error(c, 0)
  end
  if not c then
    release(self)
    return nil, err
  end
  self.conn, self.pool_size = c, size
  applytimeouts(self)
  return 1
end

-- TLS contexts of sslhandshake, made on first use: verifying (against
-- ngx.ssl_trusted_certificate, the stand-in for OpenResty's
-- lua_ssl_trusted_certificate directive, else the system store) or not.
local tls_ctx = {}
local function sslctx(verify)
  local key = verify and (ngx.ssl_trusted_certificate or true) or false
  local ctx = tls_ctx[key]
  if not ctx then
    local err
    ctx, err = netio.tls.context{ verify = verify,
      ca = verify and ngx.ssl_trusted_certificate or nil }
    if not ctx then return nil, err end
    tls_ctx[key] = ctx
  end
  return ctx
end

-- What sslhandshake returns for a session: opaque, as OpenResty's
-- userdata; netio resumes sessions by itself (per context and name).
local Session = { __name = "netio.ngx.sslsession" }

-- OpenResty: sslhandshake(reused_session, server_name, ssl_verify,
-- send_status_req) -> session (true when reused_session is false) |
-- nil, err. ssl_verify defaults to false; the read timeout bounds the
-- handshake; a connection taken from the pool that is TLS already
-- answers at once. send_status_req (OCSP stapling) is not supported and
-- ignored.
function Tcp.sslhandshake(self, reused_session, server_name, ssl_verify)
  local c = self.conn
  if not c then return nil, "closed" end
  if not netio.tls then return nil, "ssl is not available in netio (built without TLS)" end
  if not c:tlsinfo() then
    local ctx, err = sslctx(ssl_verify and true or false)
    if not ctx then return nil, err end
    local ok
    ok, err = c:starttls(ctx, { servername = server_name,
      timeout = self.rt / 1000 })
    if not ok then
      if self.conn == c then
        release(self)
        self.conn = nil
      end
      return nil, err
    end
  end
  if reused_session == false then return true end
  return setmetatable({}, Session)
end

function Tcp.settimeout(self, t)
  local v = ms(t, 1, "settimeout")
  self.ct, self.st, self.rt = v, v, v
  applytimeouts(self)
end

function Tcp.settimeouts(self, c, s, r)
  self.ct, self.st, self.rt = ms(c, 1, "settimeouts"), ms(s, 2, "settimeouts"),
    ms(r, 3, "settimeouts")
  applytimeouts(self)
end

-- A failure other than a read timeout ends the connection (OpenResty
-- finalizes the cosocket).
local function failed(self, c, err, partial)
  if err ~= "timeout" then
    c:close()
    if self.conn == c then
      self.conn = nil
      release(self)
    end
  end
  return nil, err, partial
end

function Tcp.send(self, data)
  local c = self.conn
  data = senddata(data)
  if not c then return nil, "closed" end
  local n, err = c:send(data)
  if not n then
    -- A send timeout closes it too.
    c:close()
    self.conn = nil
    release(self)
    return nil, err
  end
  return n
end

function Tcp.receive(self, pattern)
  local c = self.conn
  if pattern == nil then pattern = "*l" end
  if not c then return nil, "closed" end
  local d, err, partial = c:recv(pattern)
  if d then return d end
  return failed(self, c, err, partial)
end

function Tcp.receiveany(self, max)
  local c = self.conn
  if not c then return nil, "closed" end
  local d, err, partial = c:receiveany(max)
  if d then return d end
  return failed(self, c, err, partial)
end

function Tcp.receiveuntil(self, pattern, opts)
  local c = self.conn
  if not c then
    return function() return nil, "closed" end
  end
  local reader = c:receiveuntil(pattern, opts)
  return function(size)
    local d, err, partial = reader(size)
    if d or err == nil then return d, err end
    return failed(self, c, err, partial)
  end
end

local OPTIONS = { keepalive = true, reuseaddr = true, ["tcp-nodelay"] = true,
                  sndbuf = true, rcvbuf = true }

function Tcp.setoption(self, name, value)
  local c = self.conn
  if not c then return nil, "closed" end
  if not OPTIONS[name] then return nil, "unsupported option " .. tostring(name) end
  local ok, err = c:setoption(name, value)
  if not ok then return nil, err end
  return 1
end

function Tcp.getpeername(self)
  local c = self.conn
  if not c then return nil, "closed" end
  return c:getpeername()
end

-- timeout in ms: nil is OpenResty's default, 60 s; 0 keeps it idle for ever.
function Tcp.setkeepalive(self, timeout, size)
  local c = self.conn
  if not c then return nil, "closed" end
  local idle = 60
  if timeout ~= nil then
    local t = tonumber(timeout)
    if not t or t < 0 then
      error("bad argument #1 to 'setkeepalive' (non-negative number of ms expected)", 2)
    end
    idle = t / 1000
  end
  local ok, err = c:setkeepalive(idle, size or self.pool_size)
  if not ok then
    if err == "closed" then
      self.conn = nil
      release(self)
    end
    return nil, err
  end
  self.conn = nil
  release(self)
  return 1
end

function Tcp.getreusedtimes(self)
  local c = self.conn
  if not c then return nil, "closed" end
  return c:getreusedtimes()
end

function Tcp.close(self)
  local c = self.conn
  if not c then return nil, "closed" end
  self.conn = nil
  c:close()
  release(self)
  return 1
end

TCP.__gc = function(self)
  if self.conn then self.conn:close() end
  release(self)
end

-- ---- UDP cosockets (on netio.udp) -------------------------------------------

local Udp = {}
local UDP = { __name = "ngx.socket.udp", __index = Udp }

local function udp()
  return setmetatable({ rt = DEFAULT_MS }, UDP)
end

-- A host name is resolved with netio.resolve; the first address is used.
function Udp.setpeername(self, host, port)
  if type(host) ~= "string" then
    error("bad argument #1 to 'setpeername' (string expected, got " .. type(host) .. ")", 2)
  end
  if sub(host, 1, 5) == "unix:" then
    return nil, "unix datagram sockets are not available in netio"
  end
  local p = tointeger(tonumber(port))
  if not p then
    error("bad argument #2 to 'setpeername' (number expected, got " .. type(port) .. ")", 2)
  end
  if p < 0 or p > 65535 then return nil, "bad port number: " .. tostring(port) end
  if not netio.udp then return nil, "UDP is not available in this netio" end
  if self.u then
    self.u:close()
    self.u = nil
  end
  local ips, err = netio.resolve(host)
  if not ips then return nil, err end
  local ip = ips[1]
  local addr = (find(ip, ":", 1, true) and "[" .. ip .. "]" or ip) .. ":" .. p
  local u
  u, err = netio.udp()
  if not u then return nil, err end
  local ok
  ok, err = u:connect(addr)
  if not ok then
    u:close()
    return nil, err
  end
  u:settimeout(self.rt / 1000)
  self.u = u
  return 1
end

function Udp.settimeout(self, t)
  self.rt = ms(t, 1, "settimeout")
  if self.u then self.u:settimeout(self.rt / 1000) end
end

function Udp.send(self, data)
  data = senddata(data)
  local u = self.u
  if not u then return nil, "closed" end
  if type(data) == "table" then data = concat(data) end
  local n, err = u:send(data)
  if not n then return nil, err end
  return 1
end

-- size: the most bytes returned (1..65536, default 8192); a longer
-- datagram is cut to it without a word, as OpenResty does.
function Udp.receive(self, size)
  local u = self.u
  local n = 8192
  if size ~= nil then
    n = tointeger(tonumber(size))
    if not n then
      error("bad argument #1 to 'receive' (number expected, got " .. type(size) .. ")", 2)
    end
    if n < 1 then n = 1 elseif n > 65536 then n = 65536 end
  end
  if not u then return nil, "closed" end
  local d, err, partial = u:recv(n)
  if d then return d end
  if err == "truncated" then return partial end
  return nil, err
end

function Udp.close(self)
  local u = self.u
  if not u then return nil, "closed" end
  self.u = nil
  u:close()
  return 1
end

UDP.__gc = function(self)
  if self.u then self.u:close() end
end

ngx.socket = { tcp = tcp, stream = tcp, udp = udp }

function ngx.socket.connect(host, port, opts)
  local s = tcp()
  local ok, err = s:connect(host, port, opts)
  if not ok then return nil, err end
  return s
end

-- ---- what needs nginx ---------------------------------------------------------

ngx.config = { subsystem = "netio", debug = false }

function ngx.get_phase()
  return "timer"
end

local function unavailable(name)
  error(("ngx.%s is not available in netio"):format(name), 3)
end

-- A table whose every field is a function raising when called (so that
-- `local find = ngx.re.find` at a module's top still loads), or, with
-- `values`, whose every read raises (ngx.var.x).
local function missing(name, values)
  return setmetatable({}, {
    __index = function(_, k)
      if values then unavailable(name .. "." .. tostring(k)) end
      return function() unavailable(name .. "." .. tostring(k)) end
    end,
    __newindex = function(_, k) unavailable(name .. "." .. tostring(k)) end,
  })
end

ngx.re, ngx.req, ngx.resp, ngx.location = missing("re"), missing("req"), missing("resp"),
  missing("location")
ngx.var, ngx.shared, ngx.header, ngx.arg, ngx.ctx = missing("var", true),
  missing("shared", true), missing("header", true), missing("arg", true), missing("ctx", true)

for _, name in ipairs({ "say", "print", "flush", "eof", "exit", "exec", "redirect",
                        "send_headers", "md5", "md5_bin", "sha1_bin", "hmac_sha1",
                        "crc32_short", "crc32_long", "encode_args", "decode_args",
                        "quote_sql_str", "http_time", "cookie_time", "parse_http_time",
                        "on_abort" }) do
  ngx[name] = function() unavailable(name) end
end

-- ---- the module ------------------------------------------------------------------

package.preload["ngx.semaphore"] = function() return semaphore end

-- Sets the global `ngx` (what lua-resty-* libraries read at load time).
local function install()
  _G.ngx = ngx
  return ngx
end

return setmetatable(ngx, { __index = { install = install } })
