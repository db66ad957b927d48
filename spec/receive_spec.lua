-- receive_spec.lua: conn:receiveany, OpenResty's cosocket read of
-- whatever has arrived.
local H = require "helper"
local netio = H.netio

local function with_pair(body, limit)
  return H.run(function()
    local c, s = H.pair()
    c:settimeout(5)
    s:settimeout(5)
    return body(c, s)
  end, limit)
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

-- Assert that a call returned exactly the values in want (n values).
local function returns(what, want, ...)
  local got = table.pack(...)
  local ok = got.n == want.n
  for i = 1, math.max(got.n, want.n) do
    if got[i] ~= want[i] then ok = false end
  end
  if not ok then
    local g, w = {}, {}
    for i = 1, got.n do g[i] = show(got[i]) end
    for i = 1, want.n do w[i] = show(want[i]) end
    error(("%s: expected (%s), got (%s)"):format(what, table.concat(w, ", "),
      table.concat(g, ", ")), 2)
  end
end

local function R(...) return table.pack(...) end

describe("conn:receiveany()", function()
  it("receiveany_returns_what_has_arrived_up_to_max", function()
    with_pair(function(c, s)
      assert(c:send("hello world"))
      c:flush()
      netio.sleep(0.05)
      returns("receiveany(5)", R("hello"), s:receiveany(5))
      returns("receiveany(100)", R(" world"), s:receiveany(100))
    end)
  end)

  it("receiveany_waits_for_data_and_times_out", function()
    with_pair(function(c, s)
      netio.spawn(function() netio.sleep(0.05) c:send("late") end)
      returns("receiveany(10)", R("late"), s:receiveany(10))
      returns("receiveany timeout", R(nil, "timeout", ""), s:receiveany(10, 0.05))
      c:close()
      returns("receiveany at EOF", R(nil, "closed", ""), s:receiveany(10))
    end)
  end)

  it("receiveany_rejects_a_bad_max", function()
    with_pair(function(_, s)
      local function ra(...)
        local args = table.pack(...)
        return H.raised(function() return s:receiveany(table.unpack(args, 1, args.n)) end)
      end
      H.has("bad argument #1 to 'receiveany' (max must be positive)", ra(0))
      H.has("bad argument #1 to 'receiveany' (max must be positive)", ra(-3))
      H.has("bad argument #1 to 'receiveany' (number has no integer representation)",
        ra(2.5))
      H.has("bad argument #1 to 'receiveany' (number expected, got no value)", ra())
      H.has("bad argument #1 to 'receiveany' (number expected, got string)", ra("10"))
      H.has("bad argument #2 to 'receiveany' (", ra(10, "soon"))
    end)
  end)
end)
