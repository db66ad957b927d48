-- ngx_redis_spec.lua: OpenResty's resty.redis (Debian's lua-nginx-redis,
-- /usr/share/lua/5.1/nginx/redis.lua), unmodified, on netio.ngx, against a
-- real redis-server the spec starts on loopback: commands, pipelines,
-- pub/sub, pooled connections (set_keepalive), timeouts, and 10,000
-- operations from 50 concurrent threads with every reply checked.
--
-- The library is found through package.path, not copied: Debian's Lua 5.1
-- directory (NETIO_RESTY_DIR overrides it; under Wine through the Z:
-- drive). Debian names the module nginx.redis; resty.redis maps to it
-- unless a resty/redis.lua is on the path. Lua 5.1's `unpack`, which the
-- library takes from the globals, is set here, not in netio.
-- redis-server (NETIO_REDIS_SERVER overrides the path) runs on a free
-- loopback port with no persistence and is stopped by pid at the end.
-- Under Wine it is started as a Linux program (start /unix). Without
-- redis-server or the library every test is pending, saying which.
local H = require "helper"
local netio = H.netio
local ngx = require("netio.ngx").install()



-- Where the library and the server are; `missing` says what is not.
local missing
local resty_dir = os.getenv("NETIO_RESTY_DIR") or H.unix_path("/usr/share/lua/5.1/")
local server_bin = os.getenv("NETIO_REDIS_SERVER") or "/usr/bin/redis-server"
if H.windows and not H.wine then
  missing = "redis-server runs from Linux: this spec runs on Linux and under Wine"
elseif not H.exists(H.unix_path(server_bin)) then
  missing = "redis-server not installed (" .. server_bin .. "; apt-get install redis-server)"
else
  local sep = H.windows and "\\" or "/"
  if not resty_dir:match("[/\\]$") then resty_dir = resty_dir .. sep end
  package.path = resty_dir .. "?.lua;" .. package.path
  if not package.searchpath("resty.redis", package.path) then
    if package.searchpath("nginx.redis", package.path) then
      package.preload["resty.redis"] = function() return require "nginx.redis" end
    else
      missing = "resty.redis not found in " .. resty_dir
        .. " (apt-get install lua-nginx-redis)"
    end
  end
end

-- What the library expects of a Lua 5.1 (LuaJIT) global environment.
_G.unpack = _G.unpack or table.unpack

-- ---- the server -----------------------------------------------------------

local server = {}

-- Run a /bin/sh command line: directly on Linux, as a Unix program under
-- Wine (start /unix does not wait; callers poll for its effect).
local function unix_sh(cmd)
  if H.windows then
    assert(not cmd:find('"', 1, true), "no double quotes under cmd.exe: " .. cmd)
    return os.execute(('start /unix /bin/sh -c "%s"'):format(cmd))
  end
  return os.execute("/bin/sh -c " .. H.quote(cmd))
end

-- Whether a server answers PING on port, within `limit` seconds.
local function answers(port, limit)
  local ok, ran, got = pcall(netio.run, function()
    local deadline = netio.now() + limit
    repeat
      local c = netio.connect("127.0.0.1:" .. port, { timeout = 0.5 })
      if c then
        c:settimeout(1)
        c:send("PING\r\n")
        local line = c:recv("*l")
        c:close()
        if line == "+PONG" then return true end
      end
      netio.sleep(0.05)
    until netio.now() > deadline
    return false
  end)
  return ok and ran and got
end


local function read_pid(file, limit)
  local deadline = os.time() + limit
  repeat
    local s = H.read(H.unix_path(file))
    local pid = s and tonumber(s:match("%d+"))
    if pid then return pid end
    os.execute(H.windows and "ping -n 1 127.0.0.1 >NUL" or "sleep 0.05")
  until os.time() > deadline
  return nil
end

-- Start redis-server on a free loopback port; a port another process took
-- in between makes it exit at once (the log says so), and the next port
-- is tried, five at most.
function server.start()
  local base = os.getenv("TMPDIR") or "/tmp"
  for _ = 1, 5 do
    local port = H.free_port()
    local stem = ("%s/netio-redis-%d-%d"):format(base, port, math.random(1e9))
    server.log, server.pidfile = stem .. ".log", stem .. ".pid"
    unix_sh(("%s --port %d --bind 127.0.0.1 --save '' --appendonly no"
      .. " --daemonize no >%s 2>&1 & echo $! >%s"):format(server_bin, port,
      server.log, server.pidfile))
    server.pid = read_pid(server.pidfile, 5)
    if server.pid and answers(port, 5) then
      server.port = port
      return true
    end
    server.stop()
  end
  error("redis-server did not start on any of 5 ports; its last log:\n"
    .. tostring(H.read(H.unix_path(server.log))))
end

function server.stop()
  if server.pid then unix_sh("kill " .. server.pid) end
  server.pid = nil
  for _, f in ipairs({ server.log, server.pidfile }) do
    if f then os.remove(H.unix_path(f)) end
  end
end

-- ---- the tests -------------------------------------------------------------

-- Each test body runs on the engine with a resty.redis module already
-- loaded; pending when something is missing.
local redis
local function run(body, limit)
  if missing then
    pending(missing)
    return
  end
  return H.run(function() return body(server.port) end, limit)
end

-- A connected client; raises with the error otherwise.
local function client(port, timeout_ms)
  local r = assert(redis:new())
  r:set_timeout(timeout_ms or 5000)
  local ok, err = r:connect("127.0.0.1", port)
  assert(ok, "connect to redis-server: " .. tostring(err))
  return r
end

describe("resty.redis on netio.ngx", function()
  lazy_setup(function()
    if missing then return end
    redis = require "resty.redis"
    server.start()
  end)

  lazy_teardown(function()
    if not missing then server.stop() end
  end)

  it("commands_return_redis_replies", function()
    run(function(port)
      local r = client(port)
      assert.are.equal("OK", r:flushall())
      assert.are.equal("OK", r:set("k", "v"))
      assert.are.equal("v", r:get("k"))
      assert.are.equal(ngx.null, r:get("no such key"), "a missing key reads ngx.null")
      assert.are.equal(1, r:incr("n"))
      assert.are.equal(11, r:incrby("n", 10), "a command the library makes lazily")
      assert.are.equal(2, r:rpush("list", "a", "b"))
      assert.are.same({ "a", "b" }, r:lrange("list", 0, -1))
      assert.are.equal("OK", r:hmset("h", { f1 = "x", f2 = "y" }))
      local h = r:array_to_hash(r:hgetall("h"))
      assert.are.same({ f1 = "x", f2 = "y" }, h)
      local ok, err = r:incr("k")
      assert.are.equal(false, ok, "an error reply gives false")
      H.has("not an integer", err, "the error reply")
      -- Binary-safe and large: CR, LF and NUL bytes, 1 MiB.
      local blob = H.data(1024 * 1024, 7)
      assert.are.equal("OK", r:set("blob", blob))
      H.same(blob, r:get("blob"), "a 1 MiB value")
      assert.are.equal(3, r:del("k", "n", "blob"))
      assert.are.equal(1, r:close())
    end)
  end)

  it("pipeline_returns_every_reply_in_order", function()
    run(function(port)
      local r = client(port)
      r:init_pipeline()
      for i = 1, 100 do
        r:set("p" .. i, "v" .. i)
        r:get("p" .. i)
      end
      r:incr("p1") -- an error reply inside the pipeline
      local res = assert(r:commit_pipeline())
      assert.are.equal(201, #res)
      for i = 1, 100 do
        assert.are.equal("OK", res[2 * i - 1], "reply to set #" .. i)
        assert.are.equal("v" .. i, res[2 * i], "reply to get #" .. i)
      end
      assert.are.equal(false, res[201][1], "the error reply as {false, err}")
      H.has("not an integer", res[201][2])
      r:init_pipeline()
      r:get("p1")
      r:cancel_pipeline()
      local none, err = r:commit_pipeline()
      assert.is_nil(none)
      assert.are.equal("no pipeline", err)
      assert.are.equal("v2", r:get("p2"), "the connection still in step")
      r:close()
    end)
  end)

  it("pubsub_delivers_published_messages_to_a_subscriber", function()
    run(function(port)
      local sub, pub = client(port), client(port)
      assert.are.same({ "subscribe", "news", 1 }, sub:subscribe("news"))
      local none, err = sub:set_keepalive()
      assert.is_nil(none)
      assert.are.equal("subscribed state", err)
      -- read_reply waits in one thread while another publishes.
      local reader = ngx.thread.spawn(function()
        local got = {}
        for _ = 1, 3 do got[#got + 1] = assert(sub:read_reply()) end
        return got
      end)
      ngx.sleep(0.02)
      for i = 1, 3 do
        assert.are.equal(1, pub:publish("news", "m" .. i), "one subscriber got it")
      end
      local ok, got = ngx.thread.wait(reader)
      assert.is_true(ok, tostring(got))
      for i = 1, 3 do assert.are.same({ "message", "news", "m" .. i }, got[i]) end
      -- A read timeout in subscribed state leaves the connection open.
      sub:set_timeout(50)
      local _, terr = sub:read_reply()
      assert.are.equal("timeout", terr)
      assert.are.equal(1, pub:publish("news", "late"))
      assert.are.same({ "message", "news", "late" }, sub:read_reply())
      assert.are.same({ "unsubscribe", "news", 0 }, sub:unsubscribe("news"))
      assert.are.equal("PONG", sub:ping(), "back to commands after unsubscribe")
      sub:close()
      pub:close()
    end)
  end)

  it("set_keepalive_pools_the_connection_for_the_next_connect", function()
    run(function(port)
      local r = client(port)
      local id = r:client("id")
      assert.are.equal(0, r:get_reused_times())
      assert.are.equal(1, r:set_keepalive(10000, 10))
      local r2 = client(port)
      assert.are.equal(1, r2:get_reused_times(), "the second connect takes the pooled one")
      assert.are.equal(id, r2:client("id"), "the same server-side connection")
      assert.are.equal(1, r2:set_keepalive(10000, 10))
      -- A named pool does not hand out the default pool's connection.
      local r3 = assert(redis:new())
      assert(r3:connect("127.0.0.1", port, { pool = "other", pool_size = 5 }))
      assert.are.equal(0, r3:get_reused_times())
      assert.are_not.equal(id, r3:client("id"))
      r3:close()
    end)
  end)

  it("a_read_timeout_fails_the_command_and_the_library_closes_the_socket", function()
    run(function(port)
      local r = client(port, 100)
      local t0 = netio.now()
      local res, err = r:blpop("empty list", 2)
      local dt = netio.now() - t0
      assert.is_nil(res)
      assert.are.equal("timeout", err)
      assert.is_true(dt >= 0.09 and dt < 1.5, "a 100 ms read timeout took " .. dt .. " s")
      local _, err2 = r:get("k")
      assert.are.equal("closed", err2, "resty.redis closes the socket on a timeout")
    end)
  end)

  it("connect_to_a_closed_port_is_refused", function()
    run(function()
      local r = assert(redis:new())
      local ok, err = r:connect("127.0.0.1", H.DEAD_PORT)
      assert.is_nil(ok)
      assert.are.equal("connection refused", err)
    end)
  end)

  it("examples_redis_lua_runs_against_the_server", function()
    local host = os.getenv("NETIO_HOST")
    if not host and not missing then
      pending("NETIO_HOST is not set (the CMake test run sets it)")
      return
    end
    run(function(port)
      local script = H.root .. (H.windows and "\\examples\\redis.lua" or "/examples/redis.lua")
      local code, out, err = H.sh(H.env({ NETIO_RESTY_DIR = resty_dir })
        .. ("%s %s 127.0.0.1 %d"):format(H.quote(host), H.quote(script), port), 60)
      assert.are.equal(0, code, "examples/redis.lua failed: " .. tostring(out) .. tostring(err))
      H.has("get:\thello from netio\n", out)
      H.has("pipeline:\t1 2 3 4 5\n", out)
      H.has("subscriber got:\tmessage 3\n", out)
      H.has("pool: counter 1005,", out)
      H.has("done on ", out)
    end, 60)
  end)

  it("fifty_threads_do_ten_thousand_checked_operations_on_pooled_connections", function()
    run(function(port)
      local THREADS, ROUNDS = 50, 100 -- a set and a get per round
      local before = client(port)
      local function connections()
        return tonumber(before:info("stats"):match("total_connections_received:(%d+)"))
      end
      local received = connections()
      local threads = {}
      for t = 1, THREADS do
        threads[t] = ngx.thread.spawn(function()
          local ops, reused = 0, 0
          for i = 1, ROUNDS do
            local r = client(port)
            if r:get_reused_times() > 0 then reused = reused + 1 end
            local key, val = ("t%d:%d"):format(t, i), ("v%d.%d"):format(t, i)
            local ok, err = r:set(key, val)
            assert(ok == "OK", ("set %s: %s %s"):format(key, tostring(ok), tostring(err)))
            local got
            got, err = r:get(key)
            assert(got == val, ("get %s: expected %s, got %s %s"):format(key, val,
              tostring(got), tostring(err)))
            ops = ops + 2
            assert(r:set_keepalive(10000, THREADS))
          end
          return ops, reused
        end)
      end
      local ops, reused = 0, 0
      for t = 1, THREADS do
        local ok, n, k = ngx.thread.wait(threads[t])
        assert(ok, "thread " .. t .. ": " .. tostring(n))
        ops, reused = ops + n, reused + k
      end
      assert.are.equal(10000, ops)
      local made = connections() - received
      assert.is_true(made <= THREADS,
        ("the pool should hold the connections: %d made for %d threads"):format(made, THREADS))
      assert.is_true(reused >= THREADS * ROUNDS - THREADS,
        ("%d of %d connects came from the pool"):format(reused, THREADS * ROUNDS))
      -- Every key holds its value.
      local keys = before:keys("t*")
      assert.are.equal(THREADS * ROUNDS, #keys)
      before:close()
    end, 60)
  end)
end)
