-- options_spec.lua: setoption, getpeername/getsockname, id, getstats.
local H = require "helper"
local netio = H.netio

local function with_pair(body, limit)
  return H.run(function()
    local c, s = H.pair()
    return body(c, s)
  end, limit)
end

describe("conn:setoption", function()
  it("setoption_accepts_the_luasocket_boolean_options", function()
    local r = with_pair(function(c)
      local out = {}
      for _, name in ipairs({ "tcp-nodelay", "keepalive", "reuseaddr" }) do
        out[name .. "=true"] = c:setoption(name, true)
        out[name .. "=false"] = c:setoption(name, false)
      end
      -- The connection still works after all of them.
      assert(c:send("x"))
      return out
    end)
    for k, v in pairs(r) do
      assert.truthy(v, "setoption " .. k .. " returned " .. tostring(v))
    end
  end)

  it("setoption_linger_accepts_a_number_or_a_luasocket_table", function()
    local by_number, by_table = with_pair(function(c)
      local ok1, r1 = pcall(function() return c:setoption("linger", 0) end)
      local ok2, r2 = pcall(function()
        return c:setoption("linger", { on = true, timeout = 0 })
      end)
      return ok1 and r1, ok2 and r2
    end)
    assert.truthy(by_number or by_table,
      "setoption('linger', ...) accepted neither 0 nor {on=true, timeout=0}")
  end)

  it("setoption_sndbuf_and_rcvbuf_take_positive_byte_counts", function()
    with_pair(function(c, s)
      for _, name in ipairs({ "sndbuf", "rcvbuf" }) do
        local ok, err = c:setoption(name, 65536)
        assert(ok == true, ("setoption(%q, 65536): expected true, got %s, %s")
          :format(name, tostring(ok), tostring(err)))
        for _, bad in ipairs({ 0, -1, 1.5, "big", true, 2 ^ 31 }) do
          local raised, msg = pcall(function() return c:setoption(name, bad) end)
          assert(not raised and tostring(msg):find("bad argument #2 to 'setoption'", 1, true),
            ("setoption(%q, %s) should raise a bad argument #2, got %s")
              :format(name, tostring(bad), tostring(msg)))
        end
      end
      -- The connection still carries data both ways.
      assert(c:send("ping"))
      assert(s:recv(4, 5) == "ping", "no data after setting the buffer sizes")
      c:close()
      local ok, err = c:setoption("sndbuf", 65536)
      assert(ok == nil and err == "closed",
        "setoption on a closed conn: expected nil, \"closed\", got " .. tostring(err))
    end)
  end)

  it("setoption_with_an_unknown_name_raises", function()
    local ok, err = with_pair(function(c)
      return pcall(function() return c:setoption("no-such-option", true) end)
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("setoption", 1, true), tostring(err))
  end)
end)

describe("conn:getpeername and conn:getsockname", function()
  it("the_two_ends_of_a_pair_mirror_each_other", function()
    local r = with_pair(function(c, s)
      local t = {}
      t.cip, t.cport = c:getsockname()
      t.cpip, t.cpport = c:getpeername()
      t.sip, t.sport = s:getsockname()
      t.spip, t.spport = s:getpeername()
      return t
    end)
    assert.are.equal("127.0.0.1", r.cip)
    assert.are.equal("127.0.0.1", r.cpip)
    assert.are.equal("integer", math.type(r.cport))
    assert.are.equal(r.cport, r.spport)
    assert.are.equal(r.sport, r.cpport)
    assert.are.equal(r.cip, r.spip)
    assert.are.equal(r.sip, r.cpip)
  end)

  it("getpeername_after_a_reset_before_accept_is_closed", function()
    -- The client resets (linger 0) before the script accepts: the engine
    -- accepted the socket ahead, so the conn exists but its peer is gone.
    local r = H.run(function()
      local l, port = H.listen()
      local c = H.connect("127.0.0.1:" .. port)
      assert(c:setoption("linger", 0))
      c:close()
      netio.sleep(0.2)
      local s = assert(l:accept(2))
      H.track(s)
      return table.pack(s:getpeername())
    end)
    assert(r[1] == nil and r[2] == "closed" and r.n == 2,
      ("expected nil, \"closed\", got %s, %s, %s"):format(tostring(r[1]),
        tostring(r[2]), tostring(r[3])))
  end)

  it("ipv6_ends_report_ipv6_addresses", function()
    if not H.has_ipv6() then
      pending("no IPv6 loopback on this machine")
      return
    end
    local cip, sip, port_ok = H.run(function()
      local c, s = H.pair("[::1]:0")
      local a = c:getsockname()
      local b, p = s:getpeername()
      return a, b, p == select(2, c:getsockname())
    end)
    assert.are.equal("::1", cip)
    assert.are.equal("::1", sip)
    assert.is_true(port_ok)
  end)
end)

describe("conn:id", function()
  it("id_is_an_integer_stable_and_unique_per_connection", function()
    local r = H.run(function()
      local l, port = H.listen()
      local ids, out = {}, { unique = true, stable = true, integer = true }
      for _ = 1, 10 do
        local c = H.connect("127.0.0.1:" .. port)
        local s = H.track(assert(l:accept(2)))
        for _, x in ipairs({ c, s }) do
          local id = x:id()
          if math.type(id) ~= "integer" then out.integer = false end
          if ids[id] then out.unique = false end
          if x:id() ~= id then out.stable = false end
          ids[id] = true
        end
      end
      return out
    end)
    assert.is_true(r.integer, "id() is not an integer")
    assert.is_true(r.unique, "two connections share an id")
    assert.is_true(r.stable, "id() changed between calls")
  end)

  it("a_new_connection_never_reuses_the_id_of_a_closed_one", function()
    local reused = H.run(function()
      local l, port = H.listen()
      local seen = {}
      for _ = 1, 20 do
        local c = assert(netio.connect("127.0.0.1:" .. port))
        local s = assert(l:accept(2))
        if seen[c:id()] or seen[s:id()] then return true end
        seen[c:id()], seen[s:id()] = true, true
        c:close()
        s:close()
      end
      return false
    end)
    assert.is_false(reused)
  end)
end)

describe("conn:getstats", function()
  it("getstats_counts_bytes_in_and_out_and_queued", function()
    local cs, ss = with_pair(function(c, s)
      local payload = H.data(100000, 51)
      assert(c:send(payload))
      assert(c:flush(5))
      assert(s:recv(#payload, 5))
      assert(s:send("ack"))
      assert(c:recv(3, 2))
      return c:getstats(), s:getstats()
    end)
    assert.are.equal(100000, cs.bytes_out)
    assert.are.equal(3, cs.bytes_in)
    assert.are.equal(0, cs.queued)
    assert.are.equal(100000, ss.bytes_in)
    assert.are.equal(3, ss.bytes_out)
  end)

  it("getstats_queued_reports_unsent_output", function()
    local queued = with_pair(function(c)
      local chunk = H.data(256 * 1024, 52)
      for _ = 1, 64 do
        assert(c:send(chunk))
        netio.sleep(0.01)
        if c:getstats().queued > 0 then break end
      end
      return c:getstats().queued
    end, 20)
    assert.is_true(queued > 0, "queued = " .. tostring(queued))
    assert.is_true(queued <= 1024 * 1024 + 256 * 1024,
      "queued above the high-water mark plus one send: " .. queued)
  end)
end)
