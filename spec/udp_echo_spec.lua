-- udp_echo_spec.lua: examples/udp_echo.lua through the host -- every
-- datagram comes back whole and the script ends by itself.

local H = require "helper"

local HOST = os.getenv("NETIO_HOST")

describe("examples/udp_echo.lua", function()
  it("echoes_every_datagram_and_ends_by_itself", function()
    if not HOST then pending("NETIO_HOST is not set (the CMake test run sets it)") return end
    local script = H.root .. (H.windows and "\\examples\\udp_echo.lua"
      or "/examples/udp_echo.lua")
    local code, out, err = H.sh(H.quote(HOST) .. " " .. H.quote(script) .. " 7", 30)
    assert.are.equal(0, code, "the example should exit with 0: " .. tostring(err))
    for i = 1, 7 do
      assert.truthy(out:find(("echoed: datagram %d of 7\n"):format(i), 1, true), out)
    end
    assert.truthy(out:find("7 datagrams echoed", 1, true), out)
  end)
end)
