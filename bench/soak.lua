-- bench/soak.lua: the two sides of bench/soak.sh, run by the netio host.
--   netio bench/soak.lua server <portfile>
--     a line server on netio.server (idle_timeout 2 s, max_output 1 MiB)
--     on 127.0.0.1:0; writes its port to <portfile>.
--   netio bench/soak.lua client <port> <seconds> [concurrency]
--     churns connections for <seconds>: connect, a few lines and their
--     replies, close; one in 10 resets (SO_LINGER 0) midway, one in 20
--     stays idle until the server cuts it, one in 20 sends a line of
--     2 MiB (too long). Prints its counts at the end; exits 1 when a
--     well-behaved exchange failed.
local netio = require "netio"
local mode = arg[1]

if mode == "server" then
  local l = assert(netio.server("127.0.0.1:0", function(c)
    c:settimeout(10)
    while true do
      local line, err = c:recv("*l")
      if not line then
        if err == "line too long" then c:send("too long\n") end
        return
      end
      if not c:send(("%d %s\n"):format(#line, line)) then return end
    end
  end, { idle_timeout = 2, max_output = 1024 * 1024, backlog = 1024 }))
  local _, port = l:getsockname()
  local f = assert(io.open(arg[2], "w"))
  f:write(port, "\n")
  f:close()
  -- Serves until killed.
  while true do netio.sleep(3600) end
end

assert(mode == "client", "usage: soak.lua server <portfile> | client <port> <seconds> [n]")
local port, secs, conc = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4] or 64)
local addr = "127.0.0.1:" .. port
local stop = netio.now() + secs
local count = { ok = 0, reset = 0, idle = 0, long = 0, failed = 0, refused = 0 }
local big = string.rep("z", 2 * 1024 * 1024)

local function one(i)
  local c = netio.connect(addr, { timeout = 5 })
  if not c then
    count.refused = count.refused + 1
    return
  end
  c:settimeout(5)
  local kind = i % 20
  if kind == 0 then -- idle: the server's idle timeout cuts it
    c:settimeout(5)
    local d, e = c:recv(1)
    if not d and e == "closed" then
      count.idle = count.idle + 1
    else
      count.failed = count.failed + 1
    end
  elseif kind == 10 then -- a line too long
    c:send(big)
    c:send("\n")
    local r = c:recv("*l")
    if r == "too long" then count.long = count.long + 1 else count.failed = count.failed + 1 end
  elseif kind % 10 == 5 then -- a reset midway
    c:send("half a line")
    c:setoption("linger", 0)
    count.reset = count.reset + 1
  else
    for k = 1, 1 + i % 4 do
      local msg = ("line %d of %d"):format(k, i)
      c:send(msg .. "\n")
      local r, e = c:recv("*l")
      if r ~= ("%d %s"):format(#msg, msg) then
        io.stderr:write(("exchange %d failed: %s, %s\n"):format(i, tostring(r), tostring(e)))
        count.failed = count.failed + 1
        c:close()
        return
      end
    end
    count.ok = count.ok + 1
  end
  c:close()
end

local next_i = 0
local tasks = {}
for w = 1, conc do
  tasks[w] = netio.spawn(function()
    while netio.now() < stop do
      next_i = next_i + 1
      one(next_i)
    end
  end)
end
for _, t in ipairs(tasks) do t:join() end
print(("client: %d ok, %d reset, %d idle cut, %d too long, %d refused, %d failed")
  :format(count.ok, count.reset, count.idle, count.long, count.refused, count.failed))
if count.failed > 0 then os.exit(1) end
