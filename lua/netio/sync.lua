-- netio.sync: coordination objects between the tasks of a run, on the C
-- primitive netio.core.waitq (csrc/binding/waitq.c). docs/api.md is the
-- reference.
--
--   netio.semaphore(n)  sem:acquire([timeout]) -> true | nil, "timeout" |
--                       nil, "closed"; sem:release([k]); sem:count()
--   netio.queue([max])  q:push(v[, timeout]) -> true | nil, "timeout" |
--                       nil, "closed"; q:pop([timeout]) -> v | nil, err;
--                       q:close() -> true; #q (values queued)
--   netio.cond()        cv:wait([timeout]) -> true | nil, "timeout" |
--                       nil, "closed"; cv:signal(), cv:broadcast() -> how
--                       many were woken
--
-- How the guarantees are kept:
--   * A permit or a value is never left lying for whoever comes first: a
--     release hands the permit to the first waiter (waitq:wake), and a pop
--     that frees a slot of a full queue moves the first waiting pusher's
--     value into the queue there and then (each waiting pusher has a waitq
--     of its own, so the popper knows whose value it moves). So a task
--     arriving later never takes what a waiting task was due (no
--     barging), and the order of values is the order of the pushes.
--   * The waitq never hands anything to a waiter whose timeout fired or
--     that was canceled, and a waiter that was handed something returns it
--     even if its timeout or a cancel came too: a permit or a value is
--     never lost nor given twice. A cancel raises "canceled" out of the
--     wait; the permit or value then stays with the object.
--   * Invariants: permits are counted only while nobody waits for one;
--     values are queued only while no pop waits; pushes wait only while
--     the queue is full. So the fast paths need not look at the waiters.
--   * Each object belongs to the run that created it: when the run stops
--     (netio.stop(), or every task ended) its waitqs are closed, waiting
--     calls return nil, "closed", and so does every call that would have
--     to wait from then on. Calls that need not wait go on working.
--   * A call that has to wait (acquire, push, pop, cv:wait) must be made
--     where the C module lets a call wait (a netio task); the waitq decides,
--     and its refusal is reworded with the call's name. A call that need
--     not wait, and release, count, close, signal, broadcast and #q, work
--     anywhere.
local core = require "netio.core"

local M = {}

local getinfo, dgetmetatable = debug.getinfo, debug.getmetatable
local tointeger, maxinteger = math.tointeger, math.maxinteger
local type, tonumber, select = type, tonumber, select
local error, pcall, setmetatable, rawequal = error, pcall, setmetatable, rawequal
local newwq = core.waitq

-- ---- argument errors in the form of the C module -------------------------

-- The name a function is known by in the netio module, as Lua's
-- luaL_argerror finds it when the call site does not name it
-- (pcall(netio.queue, 0) -> 'netio.queue').
local function globalname(fn)
  local netio = package.loaded.netio
  if type(netio) == "table" then
    for k, v in pairs(netio) do
      if rawequal(v, fn) and type(k) == "string" then return "netio." .. k end
    end
  end
  return nil
end

-- Raise "bad argument #arg to 'name' (msg)" as luaL_argerror does, for the
-- API function `depth` frames above the caller of argerror (0: the caller
-- is the API function): the name comes from the call site, `self` is not
-- counted in a method call made with ':' (and an error in it reads
-- "calling 'name' on bad self"), and the position is the API function's
-- caller.
local function argerror(arg, fname, msg, depth)
  depth = depth or 0
  local ar = getinfo(2 + depth, "nf")
  local name = ar and ar.name
  if ar and ar.namewhat == "method" then
    arg = arg - 1
    if arg == 0 then
      error(("calling '%s' on bad self (%s)"):format(name or fname, msg), 3 + depth)
    end
  end
  if name == nil then name = (ar and globalname(ar.func)) or fname end
  error(("bad argument #%d to '%s' (%s)"):format(arg, name, msg), 3 + depth)
end

-- The type name luaL_typeerror uses: the __name metafield, else the type.
local function typename(v)
  local mt = dgetmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(v)
end

-- "<want> expected, got <type>"; `none` when the argument was absent.
local function typeerror(arg, fname, want, v, depth, none)
  argerror(arg, fname, ("%s expected, got %s"):format(want,
    none and "no value" or typename(v)), (depth or 0) + 1)
end

-- luaL_checknumber: a number, or a string that converts to one.
local function checknumber(v, arg, fname, depth)
  local n = type(v) == "number" and v or (type(v) == "string" and tonumber(v))
  if not n then typeerror(arg, fname, "number", v, (depth or 0) + 1, v == nil) end
  return n
end

-- luaL_checkinteger: a number with an integer value (or such a string).
local function checkinteger(v, arg, fname, depth)
  local n = checknumber(v, arg, fname, (depth or 0) + 1)
  local i = tointeger(n)
  if not i then
    argerror(arg, fname, "number has no integer representation", (depth or 0) + 1)
  end
  return i
end

-- A timeout as the C calls take it: nil (none), or a number >= 0 (1e9 or
-- more, math.huge included, is none: the waitq decides that).
local function checktimeout(v, arg, fname, depth)
  if v == nil then return nil end
  local n = checknumber(v, arg, fname, (depth or 0) + 1)
  if not (n >= 0) then -- luacheck: ignore 581 (NaN too)
    argerror(arg, fname, "timeout must be a non-negative number", (depth or 0) + 1)
  end
  return n
end

-- The object of a method: a table with metatable mt.
local function checkself(self, mt, fname, depth)
  if not rawequal(dgetmetatable(self), mt) then
    typeerror(1, fname, mt.__name, self, (depth or 0) + 1, self == nil)
  end
end

-- wq:wait(timeout) for the call `fname`: the C decides whether the caller
-- may wait (a netio task), and its refusal is reworded with our name
-- ("netio: pop must be called from a netio task", no position). Other
-- errors ("canceled") go through unchanged.
local WAIT_REFUSED = "netio: wait must be called from a netio task"
local function wait(wq, timeout, fname)
  local ok, v, err = pcall(wq.wait, wq, timeout)
  if ok then return v, err end
  if v == WAIT_REFUSED then
    error(("netio: %s must be called from a netio task"):format(fname), 0)
  end
  error(v, 0)
end

-- A waitq of the current run, or the C module's error under our name.
local function waitq(fname)
  local ok, wq = pcall(newwq)
  if ok then return wq end
  if type(wq) == "string" and wq:find("must be called from a netio task", 1, true) then
    error(("netio: %s must be called from a netio task"):format(fname), 0)
  end
  error(wq, 0)
end

local function tostr(self)
  return ("%s (%p)"):format(dgetmetatable(self).__name, self)
end

-- For the other Lua files of netio (netio.timer); not part of the API.
M._args = {
  argerror = argerror, typeerror = typeerror, checknumber = checknumber,
  checkinteger = checkinteger, checktimeout = checktimeout,
  checkself = checkself, wait = wait, waitq = waitq, tostring = tostr,
}

-- ---- netio.semaphore ------------------------------------------------------

local Semaphore = {}
local SEM = { __name = "netio.semaphore", __index = Semaphore, __tostring = tostr }

-- netio.semaphore(n): n permits (an integer >= 0).
function M.semaphore(n)
  n = checkinteger(n, 1, "semaphore")
  if n < 0 then argerror(1, "semaphore", "count must be a non-negative integer") end
  -- _n: permits available; while a task waits it is 0.
  return setmetatable({ _n = n, _wq = waitq("semaphore") }, SEM)
end

function Semaphore.acquire(self, timeout)
  checkself(self, SEM, "acquire")
  timeout = checktimeout(timeout, 2, "acquire")
  local n = self._n
  if n > 0 then
    self._n = n - 1
    return true
  end
  -- A release hands its permit to the first waiter: true, or the wait's
  -- failure ("timeout", "closed"; a cancel raises "canceled").
  local ok, err = wait(self._wq, timeout, "acquire")
  if ok then return true end
  return nil, err
end

function Semaphore.release(self, k)
  checkself(self, SEM, "release")
  if k == nil then
    k = 1
  else
    k = checkinteger(k, 2, "release")
    if k < 1 then argerror(2, "release", "count must be a positive integer") end
  end
  -- (While a task waits, _n is 0: the check never stops a hand-over.)
  if k > maxinteger - self._n then argerror(2, "release", "too many permits") end
  local wq = self._wq
  while k > 0 and wq:wake() do k = k - 1 end
  self._n = self._n + k
end

function Semaphore.count(self)
  checkself(self, SEM, "count")
  return self._n
end

-- ---- netio.queue ------------------------------------------------------------

local Queue = {}
local QUEUE = { __name = "netio.queue", __index = Queue, __tostring = tostr }

function QUEUE.__len(self)
  return self._last - self._first + 1
end

-- A push waiting for a slot: its value, and a waitq for its task alone.
-- Linked in the queue's list of pending pushes (_phead.._ptail). As a
-- to-be-closed value, it leaves the list when its push returns or raises.
local PENDING = {}

local function unlink(q, e)
  if not e.linked then return end
  e.linked = false
  if e.prev then e.prev.next = e.next else q._phead = e.next end
  if e.next then e.next.prev = e.prev else q._ptail = e.prev end
  e.prev, e.next = nil, nil
end

function PENDING.__close(e)
  unlink(e.q, e)
end

local function append(q, v)
  local last = q._last + 1
  q._last = last
  q._buf[last] = v
end

-- A slot is free: move the first waiting pushes' values in, in order.
-- A push whose timeout fired or that was canceled cannot be woken: its
-- value is dropped (its push fails) and the next one is tried.
local function refill(q)
  local max = q._max
  while q._phead and q._last - q._first + 1 < max do
    local e = q._phead
    unlink(q, e)
    if e.wq:wake() then append(q, e.v) end
  end
end

-- netio.queue([max]): max, when given, an integer >= 1.
function M.queue(max)
  if max ~= nil then
    max = checkinteger(max, 1, "queue")
    if max < 1 then argerror(1, "queue", "max must be a positive integer") end
  end
  return setmetatable({
    _buf = {}, _first = 1, _last = 0, -- values queued: _buf[_first.._last]
    _max = max or math.huge,
    _popq = waitq("queue"),           -- pops waiting for a value
    _phead = nil, _ptail = nil,       -- pushes waiting for a slot
    _closed = false,
  }, QUEUE)
end

function Queue.push(self, ...)
  checkself(self, QUEUE, "push")
  local v, timeout = ...
  if v == nil then
    argerror(2, "push", select("#", ...) == 0 and "value expected"
      or "non-nil value expected")
  end
  timeout = checktimeout(timeout, 3, "push")
  if self._closed then return nil, "closed" end
  local n = self._last - self._first + 1
  -- A pop waits only while nothing is queued: hand it the value.
  if n == 0 and self._popq:wake(v) then return true end
  if n < self._max then
    append(self, v)
    return true
  end
  -- Full: wait, with the value, for a pop to move it in.
  local e <close> = setmetatable({ q = self, v = v, wq = waitq("push"),
                                   linked = true }, PENDING)
  local tail = self._ptail
  e.prev = tail
  if tail then tail.next = e else self._phead = e end
  self._ptail = e
  local ok, err = wait(e.wq, timeout, "push")
  if ok then return true end
  return nil, err
end

function Queue.pop(self, timeout)
  checkself(self, QUEUE, "pop")
  timeout = checktimeout(timeout, 2, "pop")
  local first = self._first
  if first <= self._last then
    local buf = self._buf
    local v = buf[first]
    buf[first] = nil
    if first == self._last then
      self._first, self._last = 1, 0
    else
      self._first = first + 1
    end
    if self._phead then refill(self) end
    return v
  end
  if self._closed then return nil, "closed" end
  -- A push hands its value to the first waiting pop (false included).
  local v, err = wait(self._popq, timeout, "pop")
  if err then return nil, err end
  return v
end

function Queue.close(self)
  checkself(self, QUEUE, "close")
  if self._closed then return true end
  self._closed = true
  self._popq:close()
  while self._phead do
    local e = self._phead
    unlink(self, e)
    e.wq:close()
  end
  return true
end

-- ---- netio.cond -------------------------------------------------------------

local Cond = {}
local COND = { __name = "netio.cond", __index = Cond, __tostring = tostr }

function M.cond()
  return setmetatable({ _wq = waitq("cond") }, COND)
end

function Cond.wait(self, timeout)
  checkself(self, COND, "wait")
  timeout = checktimeout(timeout, 2, "wait")
  local ok, err = wait(self._wq, timeout, "wait")
  if ok then return true end
  return nil, err
end

function Cond.signal(self)
  checkself(self, COND, "signal")
  return self._wq:wake() and 1 or 0
end

function Cond.broadcast(self)
  checkself(self, COND, "broadcast")
  return self._wq:wakeall()
end

return M
