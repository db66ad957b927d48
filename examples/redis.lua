-- examples/redis.lua: OpenResty's Redis client, resty.redis, unmodified, on
-- netio through netio.ngx: commands, a pipeline, publish/subscribe between
-- two tasks, and pooled connections shared by 10 tasks.
--
-- It needs a Redis server and the library (Debian: apt-get install
-- redis-server lua-nginx-redis; the library lands in /usr/share/lua/5.1 as
-- nginx/redis.lua). Start a throw-away server in another terminal:
--
--   redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no
--
-- then run (arguments: host and port, default 127.0.0.1 6379):
--
--   netio examples/redis.lua [host [port]]
--   lua5.4 -e 'require"netio".run(loadfile"examples/redis.lua")'
--
-- The keys it writes start with "netio-example:". Exits with an error if a
-- reply is not the one expected.
local netio = require "netio"
local ngx = require("netio.ngx").install() -- also the global the library reads
_G.unpack = _G.unpack or table.unpack -- a Lua 5.1 global the library uses

-- Debian's lua-nginx-redis installs the module as nginx.redis (upstream:
-- resty.redis) in Lua 5.1's directory: add that to the path, not a copy
-- (NETIO_RESTY_DIR names another directory).
package.path = package.path .. ";" .. (os.getenv("NETIO_RESTY_DIR") or "/usr/share/lua/5.1/")
  .. "?.lua"
local found, redis = pcall(require, "resty.redis")
if not found then redis = require "nginx.redis" end

local host, port = ...
host, port = host or "127.0.0.1", tonumber(port) or 6379

local function connect()
  local r = redis:new()
  r:set_timeout(2000) -- milliseconds, as in OpenResty
  local ok, err = r:connect(host, port)
  if not ok then error(("cannot connect to redis at %s:%d: %s"):format(host, port, err), 0) end
  return r
end

-- Commands: every reply as resty.redis gives it.
local r = connect()
assert(r:set("netio-example:greeting", "hello from netio"))
print("get:", r:get("netio-example:greeting"))
print("missing key is ngx.null:", r:get("netio-example:none") == ngx.null)
r:del("netio-example:counter")

-- A pipeline: the commands go out in one send, the replies come back in order.
r:init_pipeline()
for _ = 1, 5 do r:incr("netio-example:counter") end
local replies = assert(r:commit_pipeline())
print("pipeline:", table.concat(replies, " "))

-- Publish/subscribe: a subscriber task reads while this one publishes.
local sub = connect()
assert(sub:subscribe("netio-example:news"))
local listener = ngx.thread.spawn(function()
  for _ = 1, 3 do
    local msg = assert(sub:read_reply())
    print("subscriber got:", msg[3])
  end
  sub:unsubscribe("netio-example:news")
  sub:close()
end)
ngx.sleep(0.05)
for i = 1, 3 do r:publish("netio-example:news", "message " .. i) end
assert(ngx.thread.wait(listener))

-- Pooled connections: 10 tasks, 100 increments each, every connection put
-- back with set_keepalive (max idle 10 s, at most 10 in the pool) and taken
-- again by the next connect.
assert(r:set_keepalive(10000, 10))
local tasks = {}
for t = 1, 10 do
  tasks[t] = ngx.thread.spawn(function()
    local reused = 0
    for _ = 1, 100 do
      local c = connect()
      if c:get_reused_times() > 0 then reused = reused + 1 end
      assert(c:incr("netio-example:counter"))
      assert(c:set_keepalive(10000, 10))
    end
    return reused
  end)
end
local reused = 0
for t = 1, 10 do
  local ok, n = ngx.thread.wait(tasks[t])
  assert(ok, n)
  reused = reused + n
end
local last = connect()
local total = tonumber(last:get("netio-example:counter"))
print(("pool: counter %d, %d of 1000 connects reused a pooled connection"):format(
  total, reused))
assert(total == 1005, "expected the counter at 1005")
last:del("netio-example:greeting", "netio-example:counter")
last:close()
print("done on " .. netio.backend())
