-- seed_demo_spec.lua: examples/seed_demo.lua end to end through the host --
-- console lines reach both reconnecting clients (sent before they are even
-- connected) and come back acknowledged by the server.

local H = require "helper"

local HOST = os.getenv("NETIO_HOST")

describe("examples/seed_demo.lua", function()
  it("acknowledges_every_console_line_on_both_clients", function()
    if not HOST then pending("NETIO_HOST is not set (the CMake test run sets it)") return end
    local script = H.root .. (H.windows and "\\examples\\seed_demo.lua"
      or "/examples/seed_demo.lua")
    local input = {}
    for i = 1, 20 do input[#input + 1] = ("line %d"):format(i) end
    local code, out, err = H.sh(H.quote(HOST) .. " " .. H.quote(script) .. " 0", 30,
      table.concat(input, "\n") .. "\n")
    assert.are.equal(0, code, "the demo should exit with 0: " .. tostring(err))
    for c = 1, 2 do
      local got = {}
      for l in out:gmatch(("client %d: ack ([^\n]*)"):format(c)) do got[#got + 1] = l end
      assert.are.same(input, got, "client " .. c .. ": every line acknowledged, in order")
    end
    assert.truthy(out:find("20 lines, 40 acknowledgements", 1, true), out)
  end)
end)
