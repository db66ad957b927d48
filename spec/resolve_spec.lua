-- resolve_spec.lua: netio.resolve -- every address of a name, off the loop.
-- Only loopback names: "localhost" (from /etc/hosts here) and names the
-- test switch NETIO_TEST_RESOLVE answers in a child netio process, so no
-- lookup leaves the machine.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")

-- Run src in a child `netio -e` with the environment vars; its stdout.
local function child(vars, src, limit)
  local code, out, err = H.sh(H.env(vars) .. H.quote(HOST) .. " -e "
    .. H.quote(src), limit or 20)
  assert.are.equal(0, code, "stdout: " .. tostring(out) .. " stderr: "
    .. tostring(err))
  return out
end

local function is_loopback(ip)
  return ip == "::1" or ip:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

describe("netio.resolve", function()
  it("resolve_localhost_returns_its_loopback_addresses_without_duplicates",
     function()
    local ips = H.run(function() return netio.resolve("localhost") end)
    assert.is_table(ips)
    assert.is_true(#ips >= 1, "expected at least one address")
    local seen = {}
    for _, ip in ipairs(ips) do
      assert.is_true(is_loopback(ip), "not a loopback address: " .. ip)
      assert.is_nil(seen[ip], "duplicate address " .. ip)
      seen[ip] = true
    end
  end)

  it("resolve_an_ip_literal_returns_it", function()
    local a, b, c = H.run(function()
      return netio.resolve("127.0.0.1"), netio.resolve("::1"),
        netio.resolve("[::1]")
    end)
    assert.are.same({ "127.0.0.1" }, a)
    assert.are.same({ "::1" }, b)
    assert.are.same({ "::1" }, c)
  end)

  it("resolve_an_ip_literal_outside_a_task_answers_at_once", function()
    assert.are.same({ "127.0.0.1" }, netio.resolve("127.0.0.1"))
  end)

  it("resolve_a_name_outside_a_task_raises", function()
    local ok, err = pcall(netio.resolve, "localhost")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("must be called from a netio task", 1,
      true), tostring(err))
  end)

  it("resolve_a_non_string_raises_bad_argument", function()
    local errs = H.run(function()
      local r = {}
      for _, v in ipairs({ 127, true, {} }) do
        local ok, e = pcall(function() return netio.resolve(v) end)
        r[#r + 1] = ok and "no error" or tostring(e)
      end
      local ok, e = pcall(function() return netio.resolve() end)
      r[#r + 1] = ok and "no error" or tostring(e)
      return r
    end)
    for i, e in ipairs(errs) do
      assert.truthy(e:find("bad argument #1 to 'resolve' (string expected",
        1, true), ("case %d: %s"):format(i, e))
    end
  end)

  it("resolve_an_unknown_option_raises_naming_it", function()
    local err = H.run(function()
      local ok, e = pcall(function()
        return netio.resolve("localhost", { timout = 1 })
      end)
      return ok and "no error" or tostring(e)
    end)
    assert.truthy(err:find("bad argument #2 to 'resolve' (unknown option "
      .. "'timout')", 1, true), err)
  end)

  for _, host in ipairs({ "", "a b", "host:80", "[::1", "[localhost]",
                          "[1.2.3.4]", "::g", "h\xc3\xa9", "a\0b",
                          ("a"):rep(300) }) do
    it("resolve_" .. ("%q"):format(host):sub(1, 40)
       .. "_returns_nil_message_EBADADDR", function()
      local ips, msg, code = H.run(function() return netio.resolve(host) end)
      assert.is_nil(ips)
      assert.is_string(msg)
      assert.truthy(msg:find("malformed host name", 1, true), msg)
      assert.are.equal("EBADADDR", code)
    end)
  end

  it("resolve_a_zone_naming_no_interface_returns_ENODEV", function()
    local ips, _, code = H.run(function()
      return netio.resolve("fe80::1%no-such-if")
    end)
    assert.is_nil(ips)
    assert.are.equal("ENODEV", code)
  end)

  it("resolve_returns_every_address_in_the_resolvers_order_deduplicated",
     function()
    if not HOST then pending("NETIO_HOST is not set") return end
    local out = child({ NETIO_TEST_RESOLVE =
                          "multi=::1,127.0.0.1,::1,127.0.0.2,127.0.0.1" },
      "print(table.concat(assert(require('netio').resolve('multi')), ' '))")
    assert.are.equal("::1 127.0.0.1 127.0.0.2\n", out)
  end)

  it("resolve_does_not_block_the_loop", function()
    if not HOST then pending("NETIO_HOST is not set") return end
    -- The lookup takes 0.3 s (test switch); a ticker task keeps running.
    local out = child({ NETIO_TEST_RESOLVE_DELAY = "0.3" }, table.concat({
      "local netio = require 'netio'",
      "local ticks, done = 0, false",
      "netio.spawn(function() while not done do ticks = ticks + 1",
      "  netio.sleep(0.01) end end)",
      "local t0 = netio.now()",
      "local ips = netio.resolve('localhost')",
      "done = true",
      "print(ips and #ips > 0, netio.now() - t0 >= 0.25, ticks >= 10)",
    }, " "))
    assert.are.equal("true\ttrue\ttrue\n", out)
  end)

  it("resolve_with_a_timeout_returns_nil_timeout", function()
    if not HOST then pending("NETIO_HOST is not set") return end
    local out = child({ NETIO_TEST_RESOLVE_DELAY = "5" }, table.concat({
      "local netio = require 'netio'",
      "local t0 = netio.now()",
      "local ips, msg, code = netio.resolve('localhost', { timeout = 0.1 })",
      "print(ips, msg, code, netio.now() - t0 < 2)",
      "netio.stop()",
    }, " "))
    assert.are.equal("nil\ttimeout\tETIMEDOUT\ttrue\n", out)
  end)

  it("resolve_beyond_4_running_and_1024_waiting_returns_nil_busy", function()
    if not HOST then pending("NETIO_HOST is not set") return end
    -- Every lookup takes 10 s: of 1100 at once, 4 may run (fewer while
    -- the threads start), 1024 wait, the rest are refused at once. The
    -- run then stops without waiting for them.
    local out = child({ NETIO_TEST_RESOLVE_DELAY = "10" }, table.concat({
      "local netio = require 'netio'",
      "local busy, other = 0, {}",
      "for i = 1, 1100 do netio.spawn(function()",
      "  local ips, msg, code = netio.resolve('localhost')",
      "  if msg == 'busy' and code == 'EBUSY' then busy = busy + 1",
      "  else other[#other + 1] = tostring(msg) end",
      "end) end",
      "netio.sleep(0.3)",
      "print(busy, #other)",
      "netio.stop()",
    }, " "), 30)
    local busy, other = out:match("^(%d+)\t(%d+)\n$")
    busy = tonumber(busy)
    assert.is_number(busy, out)
    assert.are.equal("0", other, "lookups ended otherwise: " .. out)
    assert.is_true(busy >= 1100 - 1024 - 4 and busy <= 1100 - 1024,
      "expected 72 to 76 lookups refused as busy, got " .. busy)
  end)

end)
