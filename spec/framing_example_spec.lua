-- framing_example_spec.lua: examples/framing.lua through the host: every
-- framed request gets its reply, and the oversized frame is refused with
-- the limit named, and the script ends by itself.
local H = require "helper"

local HOST = os.getenv("NETIO_HOST")

describe("examples/framing.lua", function()
  it("exchanges_frames_and_refuses_one_above_the_limit", function()
    if not HOST then pending("NETIO_HOST is not set (the CMake test run sets it)") return end
    local script = H.root .. (H.windows and "\\examples\\framing.lua"
      or "/examples/framing.lua")
    local code, out, err = H.sh(H.quote(HOST) .. " " .. H.quote(script) .. " 7", 30)
    assert.are.equal(0, code, "the example should exit with 0: " .. tostring(err))
    for i = 1, 7 do
      assert.truthy(out:find(("frame %d: sent %d bytes, reply ok\n")
        :format(i, #("message " .. i .. " ") + i * 100), 1, true), out)
    end
    assert.truthy(out:find("oversized frame: frame of 65537 bytes exceeds the limit of 65536",
      1, true), "expected the limit's error in: " .. out)
  end)
end)
