-- bench/outside_lua.lua: netio.send() from netio threads, for the
-- outside-threads benchmark (bench/outside.sh). Run by the host:
--
--   netio bench/outside_lua.lua ip:port conns threads rate send_limit
--     backoff_us [raw rawq_dir]
--
-- Listens, prints "ready", accepts `conns` connections, then starts
-- `threads` netio.thread()s that each loop over the connections
-- round-robin calling netio.send(id, msg) with the 64-byte message of
-- bench/outside_common.h, built per message with string.pack. Flat out
-- (rate 0), or `rate` messages per second in all. On "busy" a thread
-- pauses backoff_us (netio.receive with a timeout: netio.sleep is for
-- tasks only) and retries with a fresh time stamp; on "closed" (the
-- reader is gone) it ends. The script then prints the threads' counts.
--
-- With `raw` (server lua-raw), the same threads run the same loop but hand
-- each message to rawq.push(i, msg): the raw C queue + epoll writer of
-- outside_baseline.c (bench/outside_bq.h) as a Lua module, rawq.so in
-- `rawq_dir` (the build directory), which then listens and accepts; the
-- connections are its 0-based indices instead of netio ids. lua-raw ÷ the
-- C baseline is what the Lua VM costs; netio.send ÷ lua-raw is what
-- netio.send costs over a raw queue.
--
-- Time stamps: netio.now() is CLOCK_MONOTONIC in seconds as a double. At an
-- uptime of T seconds its resolution is T * 2^-52 s (0.5 ns at 4 weeks),
-- far below the microseconds measured, so floor(now() * 1e9) serves as the
-- nanosecond stamp the C senders write.
local netio = require "netio"

local addr, nconn, nthreads, rate, limit, backoff_us, mode, rawq_dir = ...
nconn = tonumber(nconn or 100)
nthreads = tonumber(nthreads or 1)
rate = tonumber(rate or 0)
limit = tonumber(limit or 0)
backoff_us = tonumber(backoff_us or 50)
local raw = mode == "raw"
if raw then
  -- The netio.thread()s start with this state's package.cpath.
  package.cpath = (rawq_dir or ".") .. "/?.so;" .. package.cpath
end

-- Runs on a thread of its own (a fresh Lua state): the upvalues it shadows
-- are not there, so it takes them as arguments and requires netio again.
-- luacheck: push ignore 431
local function sender(tid, nthreads, ids, rate, backoff, raw)
  local netio = require "netio"
  local send, now, receive = netio.send, netio.now, netio.receive
  if raw then send = require("rawq").push end
  local pack, floor = string.pack, math.floor
  local FILL, M1, M2 = string.rep("x", 36), 0x586f696e, 0x21646e65
  local n = #ids
  local seq = {}
  for k = 1, n do seq[k] = 0 end
  local i = tid * n // nthreads + 1
  local sent, busy = 0, 0
  local interval = rate > 0 and 1 / rate or 0
  local due = now()
  while true do
    if interval > 0 then
      local t = now()
      if t < due then
        receive(due - t)
      elseif t - due > 0.01 then
        due = t -- fell behind (the server is saturated): no burst
      end
      due = due + interval
    end
    local id, s = ids[i], seq[i]
    local ok, err
    while true do
      ok, err = send(id, pack("<i8I4I2I2i8c36I4", floor(now() * 1e9), M1, tid,
        i - 1, s, FILL, M2))
      if ok or err ~= "busy" then break end
      busy = busy + 1
      receive(backoff)
    end
    if not ok then
      if err ~= "closed" then error("send: " .. tostring(err)) end
      break
    end
    seq[i] = s + 1
    sent = sent + 1
    i = i + 1
    if i > n then i = 1 end
  end
  return sent, busy
end
-- luacheck: pop

local conns, ids = {}, {}
local rawq
if raw then
  rawq = require "rawq"
  assert(rawq.listen(addr))
  io.stdout:write("ready\n")
  io.stdout:flush()
  -- Blocks this task until all are there: nothing else runs yet.
  assert(rawq.start(nconn, limit))
  for i = 1, nconn do ids[i] = i - 1 end
else
  local l = assert(netio.listen(addr))
  io.stdout:write("ready\n")
  io.stdout:flush()
  for i = 1, nconn do
    local c = assert(l:accept())
    c:setoption("tcp-nodelay", true)
    if limit > 0 then c:setoption("send-limit", limit) end
    conns[i], ids[i] = c, c:id()
    -- Closes the connection at the reader's end: netio.send answers
    -- "closed" only once the owner closed it, not when a write failed.
    netio.spawn(function()
      while c:recv() do end
      c:close()
    end)
  end
  l:close()
end

local threads = {}
for t = 1, nthreads do
  threads[t] = assert(netio.thread(sender, t - 1, nthreads, ids,
    rate / nthreads, backoff_us / 1e6, raw))
end
local sent, busy = 0, 0
for t = 1, nthreads do
  local ok, s, b = threads[t]:join()
  if not ok then error("sender thread: " .. tostring(s)) end
  sent, busy = sent + s, busy + b
end
print(("senders=%d sent=%d busy=%d outside_dropped=%d"):format(nthreads,
  sent, busy, netio.stats().outside_dropped or 0))
if rawq then rawq.stop() end
for _, c in ipairs(conns) do c:close() end
