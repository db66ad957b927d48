-- console_spec.lua: examples/console_broadcast.lua, the seed's main.cpp in
-- Lua -- lines typed on the host's standard input reach every connected
-- client, in order; the end of the input ends the program cleanly.

local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")

describe("examples/console_broadcast.lua", function()
  if not HOST then
    it("needs the netio host", function()
      pending("NETIO_HOST is not set (the CMake test run sets it)")
    end)
    return
  end

  it("sends every typed line to every client, in order", function()
    local out = H.tmpname()
    local script = H.root .. (H.windows and "\\examples\\console_broadcast.lua"
      or "/examples/console_broadcast.lua")
    local cmd = ("%s %s 0 >%s"):format(H.quote(HOST), H.quote(script), H.quote(out))
    -- cmd.exe /c drops the first and the last quote of the line.
    if H.windows then cmd = '"' .. cmd .. '"' end
    local console = assert(io.popen(cmd, "w"))
    local lines, got = 50, {}
    H.run(function()
      -- The port, from the program's first line.
      local port
      for _ = 1, 200 do
        local s = H.read(out) or ""
        port = s:match("listening on 127%.0%.0%.1:(%d+)")
        if port then break end
        netio.sleep(0.05)
      end
      assert(port, "expected the example to print the port it listens on")
      local clients = {}
      for i = 1, 3 do clients[i] = H.connect("127.0.0.1:" .. port) end
      -- Every client is known to the server before the first line: the
      -- server's accept loop runs as soon as they connect.
      netio.sleep(0.3)
      local readers = {}
      for i, c in ipairs(clients) do
        readers[i] = netio.spawn(function()
          local all = {}
          while true do
            local l, err = c:recv("*l", 10)
            if not l then
              assert(err == "closed", "expected the server to close, got " .. tostring(err))
              return all
            end
            all[#all + 1] = l
          end
        end)
      end
      for k = 1, lines do
        console:write(("line %d of the console\n"):format(k))
        console:flush()
        if k % 10 == 0 then netio.sleep(0.01) end
      end
      assert(console:close(), "expected the example to exit with status 0")
      console = nil
      for i, r in ipairs(readers) do
        local ok, all = r:join(15)
        assert(ok, "client " .. i .. ": " .. tostring(all))
        got[i] = all
      end
    end, 30)
    if console then console:close() end
    for i = 1, 3 do
      assert.are.equal(lines, #got[i], "client " .. i .. ": lines received")
      for k = 1, lines do
        assert.are.equal(("line %d of the console"):format(k), got[i][k])
      end
    end
    local s = H.read(out) or ""
    os.remove(out)
    assert.truthy(s:find("150 lines delivered, 0 dropped", 1, true),
      "expected the summary line, got: " .. s)
  end)
end)
