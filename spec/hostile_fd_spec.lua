-- spec/hostile_fd_spec.lua: attacks on the process's file descriptors --
-- connect storms against a small backlog, fd exhaustion under a lowered
-- `ulimit -n`, thousands of connections a script forgets to close -- and
-- after each, no descriptor leaked (Linux: /proc/self/fd counted before
-- and after) and the server still serving.
local H = require "helper"
local netio = H.netio

local SCALE = H.windows and 0.25 or 1

-- The number of open descriptors of this process (Linux), or nil.
local lfs_ok, lfs = pcall(require, "lfs")
local function nfds()
  if H.windows or not lfs_ok then return nil end
  local n = 0
  for name in lfs.dir("/proc/self/fd") do
    if name ~= "." and name ~= ".." then n = n + 1 end
  end
  return n
end

-- Wait (at most `limit` seconds) for the descriptor count to come back to
-- `base` (closes complete on the loop, after close() returns); returns the
-- last count.
local function settle(base, limit)
  local t0, n = netio.now(), nfds()
  while n and n > base and netio.now() - t0 < (limit or 3) do
    collectgarbage()
    netio.sleep(0.02)
    n = nfds()
  end
  return n
end

local function assert_no_leak(base, what)
  if not base then return end
  local n = settle(base)
  assert(n <= base, ("%s: expected the descriptor count back at %d, it is %d")
    :format(what, base, n))
end

describe("hostile fds", function()
  it("a_connect_storm_on_a_small_backlog_is_served_or_refused_cleanly", function()
    H.run(function()
      collectgarbage()
      local base = nfds()
      local l, port = H.listen("127.0.0.1:0", { backlog = 8 })
      local accepted, served = 0, 0
      netio.spawn(function()
        while true do
          local c = l:accept()
          if not c then return end
          accepted = accepted + 1
          if c:send("hi\n") then served = served + 1 end
          c:close()
        end
      end)
      local n = math.floor(2000 * SCALE)
      local got, failed, pending = 0, {}, n
      for _ = 1, n do
        netio.spawn(function()
          local c, err, code = netio.connect("127.0.0.1:" .. port, { timeout = 3 })
          if c then
            c:settimeout(3)
            local line
            line, err = c:recv("*l")
            c:close()
            if line == "hi" then
              got = got + 1
            else
              code = "recv " .. tostring(err)
            end
          end
          if not (c and err == nil) then
            failed[#failed + 1] = tostring(code) .. ": " .. tostring(err)
          end
          pending = pending - 1
        end)
      end
      local t0 = netio.now()
      while pending > 0 and netio.now() - t0 < 10 do netio.sleep(0.05) end
      assert(pending == 0, ("%d of %d storm connects never ended"):format(pending, n))
      -- Every accepted connection served; a connect that failed failed
      -- with a plain error (refused, reset, timed out), never EUNKNOWN or
      -- a descriptor shortage.
      assert(accepted == served, ("accepted %d, served %d"):format(accepted, served))
      for _, f in ipairs(failed) do
        assert(not f:find("EUNKNOWN") and not f:find("unknown error")
          and not f:find("EMFILE") and not f:find("ENFILE"),
          "a storm connect failed with " .. f)
      end
      assert(got > 0, "no storm connect was served")
      assert(got + #failed == n, ("%d served + %d failed ~= %d"):format(got, #failed, n))
      -- The listener still serves.
      local c = H.connect("127.0.0.1:" .. port)
      assert(c:recv("*l", 3) == "hi", "the listener no longer serves after the storm")
      c:close()
      l:close()
      assert_no_leak(base, "after a connect storm")
      local kinds = {}
      for _, f in ipairs(failed) do kinds[f] = (kinds[f] or 0) + 1 end
      local list = {}
      for k, v in pairs(kinds) do list[#list + 1] = ("%d %s"):format(v, k) end
      table.sort(list)
      io.stderr:write(("connect storm (%s): %d connects, %d served, %d failed (%s)\n")
        :format(netio.backend(), n, got, #failed, table.concat(list, ", ")))
    end, 30)
  end)

  it("forgotten_connections_are_closed_by_the_collector", function()
    H.run(function()
      collectgarbage()
      collectgarbage()
      local base = nfds()
      local l, port = H.listen("127.0.0.1:0", { backlog = 1024 })
      local round = H.windows and 250 or 500
      local n = round * (H.windows and 3 or 6)
      local accepted = 0
      -- Accepted connections are dropped at once, without close().
      netio.spawn(function()
        while true do
          local c = l:accept()
          if not c then return end
          accepted = accepted + 1
          c:send("x") -- queued output still goes out on collection
        end
      end)
      for _ = 1, n // round do
        for _ = 1, round do
          local c = netio.connect("127.0.0.1:" .. port, { timeout = 3 })
          assert(c, "connect failed while forgetting connections")
          -- dropped without close()
        end
        collectgarbage()
        collectgarbage()
      end
      local t0 = netio.now()
      while accepted < n and netio.now() - t0 < 5 do netio.sleep(0.02) end
      assert(accepted == n, ("expected %d accepted, got %d"):format(n, accepted))
      l:close()
      collectgarbage()
      collectgarbage()
      assert_no_leak(base, ("after %d forgotten connections"):format(n))
    end, 30)
  end)

  it("fd_exhaustion_under_ulimit_leaves_the_server_accepting_again", function()
    if H.windows then
      pending("ulimit -n is POSIX: Windows has no per-process descriptor limit")
      return
    end
    local host = os.getenv("NETIO_HOST")
    if not host then
      pending("NETIO_HOST (the netio executable) is not set")
      return
    end
    -- The script runs in the netio host with 64 descriptors. It holds
    -- every connection it accepts while connecting to itself until
    -- connect or accept fails for want of descriptors, then lets them all
    -- go and checks that the listener accepts and serves again.
    local script = H.write(H.tmpname(), [=[
local netio = require "netio"
local l = assert(netio.listen("127.0.0.1:0"))
local _, port = l:getsockname()
local held, errs = {}, {}
netio.spawn(function()
  while true do
    local c, err = l:accept()
    if c then
      held[#held + 1] = c
      c:send("hi\n")
    elseif err == "closed" then
      return
    end
  end
end)
local clients = {}
for _ = 1, 200 do
  local c, err, code = netio.connect("127.0.0.1:" .. port, { timeout = 0.5 })
  if c then
    clients[#clients + 1] = c
  else
    errs[#errs + 1] = tostring(code) .. " " .. tostring(err)
    if #errs > 10 then break end
  end
end
netio.sleep(0.2)
print("held", #clients, #held, "errors", #errs, errs[1] or "")
assert(#errs > 0, "64 descriptors never ran out")
for _, c in ipairs(clients) do c:close() end
for _, c in ipairs(held) do c:close() end
clients, held = {}, {}
collectgarbage()
netio.sleep(0.5) -- the accept rests a moment after EMFILE
local ok = 0
for _ = 1, 20 do
  local c, err, code = netio.connect("127.0.0.1:" .. port, { timeout = 3 })
  assert(c, "connect after the descriptors came back: " .. tostring(code) .. " " .. tostring(err))
  c:settimeout(3)
  local line, e2 = c:recv("*l")
  assert(line == "hi", "served after the descriptors came back: " .. tostring(e2))
  ok = ok + 1
  c:close()
  for _, s in ipairs(held) do s:close() end
  held = {}
end
l:close()
print("served again", ok)
]=])
    local code, out, err = H.sh(("ulimit -n 64 && exec %s %s"):format(H.quote(host),
      H.quote(script)), 30)
    os.remove(script)
    assert(code == 0, ("the netio host under ulimit -n 64 exited %s:\n%s%s")
      :format(tostring(code), out or "", err or ""))
    assert(out:find("served again\t20", 1, true), "expected \"served again 20\", got: " .. out)
    assert(not (out .. err):find("EUNKNOWN", 1, true), "an EUNKNOWN among:\n" .. out .. err)
  end)
end)
