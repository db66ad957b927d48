-- bench/redis_netio.lua: OpenResty's resty.redis (Debian's lua-nginx-redis,
-- unmodified) on netio.ngx, as redis-benchmark -P 1 -t set,get measures
-- Redis: C tasks, each with one connection, send SET (then GET) of the same
-- key and value as redis-benchmark's default ("key:__rand_int__", "xxx")
-- one at a time for SECS seconds per command, every reply checked.
--   netio bench/redis_netio.lua PORT [CONNS [SECS [MODE]]]
-- MODE "conn" (default) keeps each task's connection, as redis-benchmark
-- does; "pool" takes it from the pool (connect) and gives it back
-- (set_keepalive) around every command. Prints one line:
--   set_rps=<ops/s> get_rps=<ops/s> ops=<total checked>
local netio = require "netio"
local ngx = require("netio.ngx").install()
_G.unpack = _G.unpack or table.unpack
package.path = (os.getenv("NETIO_RESTY_DIR") or "/usr/share/lua/5.1/") .. "?.lua;"
  .. package.path
local ok, redis = pcall(require, "resty.redis")
if not ok then redis = require "nginx.redis" end

local port = assert(tonumber(arg[1]), "usage: redis_netio.lua PORT [CONNS [SECS [MODE]]]")
local conns = tonumber(arg[2]) or 50
local secs = tonumber(arg[3]) or 5
local mode = arg[4] or "conn"
local KEY, VAL = "key:__rand_int__", "xxx"

local function connect()
  local r = redis:new()
  r:set_timeout(5000)
  assert(r:connect("127.0.0.1", port))
  return r
end

-- One command for `secs` seconds from `conns` tasks; returns ops/s.
local function phase(cmd)
  local deadline = netio.now() + secs
  local t0 = netio.now()
  local threads = {}
  for i = 1, conns do
    threads[i] = ngx.thread.spawn(function()
      local n = 0
      local r = mode == "conn" and connect() or nil
      while netio.now() < deadline do
        if mode == "pool" then r = connect() end
        local res, err
        if cmd == "set" then
          res, err = r:set(KEY, VAL)
          assert(res == "OK", err)
        else
          res, err = r:get(KEY)
          assert(res == VAL, err)
        end
        n = n + 1
        if mode == "pool" then assert(r:set_keepalive(60000, conns)) end
      end
      if mode == "conn" then r:set_keepalive(60000, conns) end
      return n
    end)
  end
  local total = 0
  for i = 1, conns do
    local done, n = ngx.thread.wait(threads[i])
    assert(done, n)
    total = total + n
  end
  return total / (netio.now() - t0), total
end

local set_rps, set_n = phase("set")
local get_rps, get_n = phase("get")
print(("set_rps=%.0f get_rps=%.0f ops=%d"):format(set_rps, get_rps, set_n + get_n))
