-- netio: the public shape of the netio module. The work is done by the C
-- module netio.core (csrc/binding); this file re-exports it. docs/api.md
-- is the reference; below are the choices a Lua programmer might not
-- expect.
--
-- Running
--   netio.run(fn, ...)      true, fn's results once every task ended (or
--                           after netio.stop()); fn's error is re-raised
--                           with the task's traceback, and then the run
--                           ends at once (other tasks are abandoned).
--                           Inside a task (e.g. under the host) it runs fn
--                           as a task and waits for it.
--   netio.spawn(fn, ...)    -> task; task:join([timeout]) -> true, results
--                           | nil, err ("timeout"; the error + traceback;
--                           "closed" if the run ended first).
--                           task:status() -> "running", "ready", "waiting",
--                           "done", "failed" or "abandoned".
--   netio.sleep(sec), netio.now(), netio.stop(), netio.backend()
--   netio.time()            wall-clock seconds since the epoch (float)
--   netio.available(name)   whether backend `name` can run here
--   netio.intask()          whether the caller is a netio task
--   A bare coroutine.yield() in a task lets the others run (like sleep(0)).
--   netio.stop(): listeners and UDP sockets close (waiting accepts and
--   recvfroms get nil, "closed"), tasks get 2 s to end, then connections
--   close and the run ends.
--
-- TCP (conn:receive is an alias of conn:recv)
--   recv failures always return three values: nil, err, partial ("" when
--   nothing was consumed); err is "closed" (either side closed, a reset
--   included), "timeout", "busy" (another task is reading), "line too
--   long", or readable text.
--   "*l" and "*L" lines are limited to 1 MiB (without the EOL): a longer
--   line gives nil, "line too long", partial (what arrived of that line, up
--   to its LF; never the lines after it), and the connection stays usable.
--   receiveuntil(pattern) readers and receiveany(max) follow OpenResty's
--   cosockets (docs/api.md).
--   send accepts strings, numbers and arrays of them; it returns the bytes
--   queued; above 1 MiB queued it waits for 256 KiB (send timeout: nil,
--   "timeout", bytes queued). A second task that would have to wait too
--   gets nil, "busy" (flush likewise).
--   close() never waits: queued output is sent by the engine afterwards
--   (within its NETIO_GRACE period, default 5 s), then the socket closes.
--   `<close>` and __gc do the same.
--   Connections start with TCP_NODELAY on (as Go does): setoption(
--   "tcp-nodelay", false) turns Nagle back on.
--   Methods of a closed conn or listener return nil, "closed", except
--   close() (true) and id() (the old id).
--   conn:setkeepalive([idle_sec[, size]]) pools a connection made by
--   netio.connect (keyed by its address or connect's `pool` option) and
--   closes the object; netio.connect takes it back (getreusedtimes() + 1).
--   It refuses unread input (nil, "unread data in buffer", still open),
--   waits for queued output to leave first, and gives the connection a new
--   id. Idle pooled connections that the peer closes or writes to are
--   closed at once; they do not keep a run alive.
--
-- UDP (netio.udp([bind_addr[, opts]]))
--   Addresses are numeric only ("ip:port", "[v6]:port"): a host name gives
--   nil, "address must be numeric (use netio.resolve): ...". One datagram
--   per recvfrom([size[, timeout]]) -> data, ip, port; a datagram longer
--   than size (default 65536: never) gives nil, "truncated", data, ip,
--   port. Over 65,507 bytes (IPv4) or 65,527 (IPv6): nil, "message too
--   long". A datagram that arrives after a timeout waits for the next
--   recvfrom. Connected form: connect, send, recv (nil, "connection
--   refused" after the peer's port unreachable).
--
-- Other threads
--   netio.send(id, data) works from any Lua state in any thread and never
--   waits: true | nil, "closed" | nil, "busy" (the bytes waiting for the
--   connection -- from netio.send and from conn:send -- reach its
--   "send-limit", 4 MiB by default). A reset connection is "closed" too.
--   netio.thread(fn, ...): fn travels as bytecode; an upvalue other than
--   _ENV is refused at the call. Values are copied (nil, booleans, numbers,
--   strings, tables); join gives the results again at every call.
--   netio.post(...) also works in a task (a message to its own run);
--   netio.receive() in a task gets a nio_post() from C as one string.
--   netio.stdin() is a read-only connection fed by a reader thread through
--   a socket pair: its buffers are the back-pressure.
--
-- Tasks working together
--   task:cancel() makes the task's current or next wait raise "canceled";
--   join then gives nil, "canceled" however it ended. netio.wait(t1, ...)
--   returns the first to end and its join results. Semaphores, queues,
--   conds and timers (sync.lua, timer.lua) hand permits and values over
--   FIFO, never lose one to a timeout or a cancel, and answer nil, "closed"
--   once the run stops.
--   A netio call waiting in a plain coroutine of a task waits for the task
--   (coroutine.resume and coroutine.wrap are replaced below to pass the
--   wait up).
--   netio.server / netio.client log their handlers' errors once per
--   repeat window (ratelog.lua); a client keeps its id across reconnects
--   (conn:successor), and what it had queued before its first connect goes
--   out once connected.
local core = require "netio.core"

local netio = {}
for k, v in pairs(core) do
  netio[k] = v
end
netio.core = core
netio._THREAD = nil
-- Building blocks of this file and of the Lua layer, not the public API
-- (netio.core still has them: docs/api.md, "Building blocks").
netio.nested, netio.nested_abort, netio.waitq, netio.detached = nil, nil, nil, nil
netio.null = nil -- netio.ngx's ngx.null

-- In a netio thread's Lua state: the thread-side calls only.
if core._THREAD then return netio end

-- A netio call that waits inside a plain coroutine of a task (an iterator
-- made with coroutine.wrap that reads a socket) waits for the whole task,
-- as in OpenResty: the coroutine yields a mark, and coroutine.resume (and
-- wrap), replaced here, yield the task until the wait is over, then resume
-- the coroutine where it was. Other yields pass through unchanged.
do
  local MARK = core.nested()
  local co_resume, co_yield, co_create = coroutine.resume, coroutine.yield, coroutine.create
  local co_close, co_status, co_isyieldable = coroutine.close, coroutine.status,
    coroutine.isyieldable
  local abort = core.nested_abort

  local function pass(co, ok, first, ...)
    if ok and first == MARK and select("#", ...) == 0 then
      if not co_isyieldable() then
        abort()
        error("netio: a coroutine waits in a netio call, but its resumer "
          .. "cannot yield (it runs under a C call)", 3)
      end
      co_yield(MARK)
      return pass(co, co_resume(co))
    end
    return ok, first, ...
  end

  function coroutine.resume(co, ...) -- luacheck: ignore 122
    return pass(co, co_resume(co, ...))
  end

  local function unwrap(co, ok, ...)
    if ok then return ... end
    local err = ...
    if co_status(co) == "dead" then co_close(co) end
    if type(err) == "string" then error(err, 2) end
    error(err, 0)
  end

  function coroutine.wrap(f) -- luacheck: ignore 122
    local co = co_create(f)
    return function(...)
      return unwrap(co, coroutine.resume(co, ...))
    end
  end
end

-- The pure-Lua layer, one file per idea, on the C primitives.
local sync = require "netio.sync"
netio.semaphore, netio.queue, netio.cond = sync.semaphore, sync.queue, sync.cond
netio.timer = require "netio.timer"
netio.server = require "netio.server"
netio.client = require "netio.client"
netio.punch = require "netio.punch"

return netio
