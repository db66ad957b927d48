-- chat_spec.lua: examples/chat.lua end to end through the host -- members
-- that read get every line in order while a member that never reads is
-- cut off instead of stalling them.

local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")

describe("examples/chat.lua", function()
  it("a_member_that_stops_reading_is_cut_off_and_the_others_get_everything", function()
    if not HOST then pending("NETIO_HOST is not set (the CMake test run sets it)") return end
    local out = H.tmpname()
    local script = H.root .. (H.windows and "\\examples\\chat.lua" or "/examples/chat.lua")
    local cmd = ("%s %s 0 >%s 2>&1"):format(H.quote(HOST), H.quote(script), H.quote(out))
    if H.windows then cmd = '"' .. cmd .. '"' end
    -- The chat server runs until its standard input ends: closing the pipe
    -- stops it.
    local proc = assert(io.popen(cmd, "w"))
    local r = H.run(function()
      local port
      for _ = 1, 200 do
        port = (H.read(out) or ""):match("listening on 127%.0%.0%.1:(%d+)")
        if port then break end
        netio.sleep(0.05)
      end
      assert(port, "expected the chat server to print its port")
      local function member(name)
        local c = H.connect("127.0.0.1:" .. port)
        assert(c:recv(6, 5) == "name? ", "the server asks for a name")
        c:send(name .. "\n")
        return c
      end
      local alice, bob, slow = member("alice"), member("bob"), member("slow")
      netio.sleep(0.2)
      local N, line = 8000, ("y"):rep(1000)
      local got = 0
      local reader = netio.spawn(function()
        local bad = nil
        while got < N do
          local l, err = bob:recv("*l", 10)
          if not l then return got, "bob: " .. tostring(err) end
          local n = l:match("^alice: (%d+) ")
          if n then
            got = got + 1
            if tonumber(n) ~= got and not bad then bad = ("line %s at %d"):format(n, got) end
          end
        end
        return got, bad
      end)
      -- Alice keeps pace with bob (a fast sender would cut him off too, by
      -- design); the member that never reads falls behind by megabytes.
      for i = 1, N do
        alice:send(("%d %s\n"):format(i, line))
        if i % 100 == 0 then
          local deadline = netio.now() + 10
          while got < i - 200 and netio.now() < deadline do netio.sleep(0.001) end
        end
      end
      local _, n, bad = reader:join(60)
      -- The member that never read: the server gave up on it.
      local left, err = 0
      while true do
        local d, e = slow:recv(65536, 10)
        if not d then err = e break end
        left = left + #d
      end
      return { got = n, bad = bad, slow_err = err, slow_bytes = left }
    end, 90)
    proc:close()
    local log = H.read(out) or ""
    os.remove(out)
    assert.are.equal(8000, r.got, "bob should get every line: " .. tostring(r.bad))
    assert.is_nil(r.bad, "in order")
    assert.are.equal("closed", r.slow_err, "the member that never read is cut off")
    assert.is_true(r.slow_bytes < 8000 * 1000,
      "it got only what fit before the cut, " .. r.slow_bytes .. " bytes")
    assert.truthy(log:find("slow is too slow", 1, true) or r.slow_err == "closed", log)
  end)
end)
