-- connect_spec.lua: netio.connect and its failures.
local H = require "helper"
local netio = H.netio

-- A loopback port nobody listens on (listened on, then closed). The short
-- sleep keeps these tests independent of how soon close() releases the
-- port (listen_spec pins that).
local function dead_port()
  local l, port = H.listen("127.0.0.1:0")
  l:close()
  netio.sleep(0.05)
  return port
end

describe("netio.connect", function()
  it("connect_returns_a_connection_that_carries_data_both_ways", function()
    local reply = H.run(function()
      local _, port = H.server(H.echo)
      local c = H.connect("127.0.0.1:" .. port)
      assert(c:send("ping\n"))
      return c:recv("*l", 2)
    end)
    assert.are.equal("ping", reply)
  end)

  it("connect_to_a_closed_port_returns_nil_message_ECONNREFUSED", function()
    local c, msg, code = H.run(function()
      return netio.connect("127.0.0.1:" .. H.DEAD_PORT)
    end)
    assert.is_nil(c)
    assert.is_string(msg)
    assert.is_true(#msg > 0)
    assert.are.equal("ECONNREFUSED", code)
  end)

  it("connect_to_ipv6_loopback", function()
    if not H.has_ipv6() then
      pending("no IPv6 loopback on this machine")
      return
    end
    local reply, ip = H.run(function()
      local l, port = H.listen("[::1]:0")
      netio.spawn(function()
        local s = l:accept(5)
        if s then H.track(s) H.echo(s) end
      end)
      local c = H.connect("[::1]:" .. port)
      assert(c:send("six"))
      return c:recv(3, 2), c:getpeername()
    end)
    assert.are.equal("six", reply)
    assert.are.equal("::1", ip)
  end)

  it("connect_resolves_localhost", function()
    local reply, port_ok = H.run(function()
      local _, port = H.server(H.echo)
      local c = H.connect("localhost:" .. port)
      local _, pport = c:getpeername()
      assert(c:send("name"))
      return c:recv(4, 2), pport == port
    end)
    assert.are.equal("name", reply)
    assert.is_true(port_ok)
  end)

  it("connect_to_an_unknown_host_returns_nil_message_code", function()
    local dt, c, msg, code = H.run(function()
      return H.timed(netio.connect, "no-such-host.invalid:80", { timeout = 5 })
    end)
    assert.is_nil(c)
    assert.is_string(msg)
    assert.is_string(code)
    assert.truthy(code:match("^E[A-Z_]+$"), code)
    assert.is_true(dt < 6)
  end)

  for _, addr in ipairs({ "", "nohostport", "1.2.3.4:99999", "[::1", ":",
                          "host:-1", "host:abc", "127.0.0.1:", "[::1]:",
                          "127.0.0.1:65536", "[::1]x:80", "a:b:c" }) do
    it("connect_to_malformed_address_" .. ("%q"):format(addr)
       .. "_returns_nil_message_code", function()
      local dt, c, msg, code = H.run(function()
        return H.timed(netio.connect, addr, { timeout = 2 })
      end)
      if c then c:close() end
      assert.is_nil(c, "connect(" .. addr .. ") should fail")
      assert.is_string(msg)
      assert.is_string(code)
      assert.truthy(code:match("^E[A-Z_]+$"), "code " .. tostring(code))
      assert.is_true(dt < 2.5, "connect took " .. dt .. " s")
    end)
  end

  for _, case in ipairs({
    { "[fe80::1%999]:80", "ENODEV", "999" },
    { "[fe80::1%no-such-if]:80", "ENODEV", "no-such-if" },
    { "[fe80::1%]:80", "EBADADDR" },
    { "[1.2.3.4]:80", "EBADADDR" },
    { "[::g]:80", "EBADADDR" },
    { "[localhost]:80", "EBADADDR" },
  }) do
    local addr, want, zone = case[1], case[2], case[3]
    it("connect_to_" .. ("%q"):format(addr) .. "_returns_" .. want,
       function()
      local c, msg, code = H.run(function()
        return netio.connect(addr, { timeout = 2 })
      end)
      if c then c:close() end
      assert.is_nil(c, "connect(" .. addr .. ") should fail")
      if want == "ENODEV" then
        assert.are.equal(('unknown interface "%s" in address "%s"'):format(
          zone, addr), msg)
      else
        assert.are.equal(('malformed address "%s"'):format(addr), msg)
      end
      assert.are.equal(want, code)
    end)
  end

  it("connect_with_a_bind_on_an_unknown_interface_returns_enodev", function()
    local c, msg, code = H.run(function()
      local _, port = H.server(H.echo)
      return netio.connect("[::1]:" .. port, { bind = "[::1%999]:0" })
    end)
    if c then c:close() end
    assert.is_nil(c)
    assert.are.equal('unknown interface "999" in address "[::1%999]:0"', msg)
    assert.are.equal("ENODEV", code)
  end)

  it("connect_with_a_bind_option_uses_that_local_address", function()
    local want, got_local, got_peer, reply = H.run(function()
      local _, port = H.server(H.echo)
      local bport = dead_port()
      local c = H.connect("127.0.0.1:" .. port,
        { bind = "127.0.0.1:" .. bport })
      local _, lport = c:getsockname()
      assert(c:send("bound"))
      local r = c:recv(5, 2)
      return bport, lport, select(2, c:getpeername()), r
    end)
    assert.are.equal(want, got_local)
    assert.is_number(got_peer)
    assert.are.equal("bound", reply)
  end)

  it("connect_with_bind_port_zero_gets_some_local_port", function()
    local ip, port = H.run(function()
      local _, sport = H.server(H.echo)
      local c = H.connect("127.0.0.1:" .. sport, { bind = "127.0.0.1:0" })
      return c:getsockname()
    end)
    assert.are.equal("127.0.0.1", ip)
    assert.is_true(port > 0)
  end)

  it("connect_with_a_malformed_bind_returns_nil_message_code", function()
    local c, msg, code = H.run(function()
      local _, port = H.server(H.echo)
      return netio.connect("127.0.0.1:" .. port, { bind = "not an address" })
    end)
    if c then c:close() end
    assert.is_nil(c)
    assert.is_string(msg)
    assert.is_string(code)
  end)

  it("connect_timeout_option_gives_nil_timeout", function()
    -- A listener with a tiny backlog that never accepts: once its queues
    -- are full the kernel drops further SYNs, so a connect hangs.
    local results = H.run(function()
      local _, port = H.listen("127.0.0.1:0", { backlog = 1 })
      local r = { tries = 0 }
      for i = 1, 64 do
        r.tries = i
        local dt, c, err = H.timed(netio.connect, "127.0.0.1:" .. port,
          { timeout = 0.1 })
        if c then
          H.track(c)
        else
          r.err, r.dt = err, dt
          break
        end
      end
      return r
    end, 30)
    assert.are.equal("timeout", results.err,
      "no connect timed out in " .. results.tries .. " tries")
    assert.is_true(results.dt >= 0.08 and results.dt < 1,
      "connect gave up after " .. tostring(results.dt) .. " s")
  end)

  it("connect_many_in_parallel_tasks", function()
    local n = H.run(function()
      local _, port = H.server(H.echo)
      local ts = {}
      for i = 1, 20 do
        ts[i] = netio.spawn(function()
          local c = H.connect("127.0.0.1:" .. port)
          assert(c:send("n" .. i .. "\n"))
          local r = c:recv("*l", 2)
          c:close()
          return r == "n" .. i
        end)
      end
      local good = 0
      for _, t in ipairs(ts) do
        local ok, r = t:join(5)
        if ok and r then good = good + 1 end
      end
      return good
    end)
    assert.are.equal(20, n)
  end)
end)

-- Lookups run on the engine's pool of lookup threads. A run that ends
-- while lookups are pending (made slow with the test switch
-- NETIO_TEST_RESOLVE_DELAY) ends without waiting for them, and frees what
-- the waiting connects held (under ASan a leak fails the host's exit).
describe("connect by name as the run ends", function()
  local HOST = os.getenv("NETIO_HOST")

  it("a_run_ending_during_lookups_ends_at_once_and_leaks_nothing", function()
    if not HOST then pending("NETIO_HOST is not set") return end
    local src = table.concat({
      "local netio = require 'netio'",
      "for i = 1, 8 do",
      "  netio.spawn(function() print('connect', netio.connect('localhost:9')) end)",
      "end",
      "netio.spawn(function()",
      "  print('timeout', netio.connect('localhost:9', { timeout = 0.05 }))",
      "end)",
      "netio.sleep(0.2)",
      "netio.stop()",
    }, " ")
    local t0 = netio.now()
    local code, out, err = H.sh(H.env({ NETIO_TEST_RESOLVE_DELAY = "30" })
      .. H.quote(HOST) .. " -e " .. H.quote(src), 25)
    local dt = netio.now() - t0
    assert.are.equal(0, code, "stdout: " .. tostring(out) .. " stderr: " .. tostring(err))
    assert.are.equal("timeout\tnil\ttimeout\tETIMEDOUT\n", out)
    assert.are.equal("", err)
    assert.is_true(dt < 15, "the run waited " .. dt .. " s for its lookups")
  end)
end)

-- A name's addresses are tried in order within the one timeout. The order
-- is pinned with the test switch NETIO_TEST_RESOLVE (name=ip,ip,...) in a
-- child netio process: this machine's /etc/hosts gives localhost only
-- 127.0.0.1, and no test may look a name up off the machine.
describe("connect to every address of a name", function()
  local HOST = os.getenv("NETIO_HOST")

  local function child(vars, src, limit)
    local code, out, err = H.sh(H.env(vars) .. H.quote(HOST) .. " -e "
      .. H.quote(src), limit or 20)
    assert.are.equal(0, code, "stdout: " .. tostring(out) .. " stderr: "
      .. tostring(err))
    return out
  end

  it("connect_to_localhost_resolving_to_ipv6_first_reaches_an_ipv4_server",
     function()
    if not HOST then pending("NETIO_HOST is not set") return end
    local out = child({ NETIO_TEST_RESOLVE = "localhost=::1,127.0.0.1" },
      table.concat({
        "local netio = require 'netio'",
        "print(table.concat(netio.resolve('localhost'), ' '))",
        "local l = assert(netio.listen('127.0.0.1:0'))",
        "local _, port = l:getsockname()",
        "netio.spawn(function() local s = l:accept(5) s:send('v4') s:close() end)",
        "local c, msg, code = netio.connect('localhost:' .. port, { timeout = 5 })",
        "print(c and c:recv(2, 2), msg, code, c and c:getpeername())",
      }, " "))
    assert.are.equal("::1 127.0.0.1\nv4\tnil\tnil\t127.0.0.1\n", out)
  end)

  it("connect_when_every_address_fails_returns_the_last_addresss_error",
     function()
    if not HOST then pending("NETIO_HOST is not set") return end
    -- 127.0.0.1 on a closed port is refused; fe80::1 without a zone is an
    -- error of another kind (EINVAL on Linux). The two orders give the
    -- second address's error.
    local out = child({ NETIO_TEST_RESOLVE =
                          "ab=127.0.0.1,fe80::1;ba=fe80::1,127.0.0.1" },
      table.concat({
        "local netio = require 'netio'",
        "local l = assert(netio.listen('127.0.0.1:0'))",
        "local _, port = l:getsockname() l:close() netio.sleep(0.05)",
        "local function code(a) return select(3, netio.connect(a .. ':' .. port,",
        "  { timeout = 5 })) end",
        "print(code('127.0.0.1'), code('[fe80::1]'), code('ab'), code('ba'))",
      }, " "))
    local a, b, ab, ba = out:match("^(%S+)\t(%S+)\t(%S+)\t(%S+)\n$")
    assert.is_string(a, out)
    if a == b then
      pending("both addresses fail with " .. a .. " here")
      return
    end
    assert.are.equal(b, ab, "127.0.0.1 then fe80::1: expected fe80::1's error")
    assert.are.equal(a, ba, "fe80::1 then 127.0.0.1: expected 127.0.0.1's error")
  end)

  it("connect_across_several_addresses_stays_within_its_one_timeout",
     function()
    if not HOST then pending("NETIO_HOST is not set") return end
    -- A listener on every IPv4 address with its backlog full drops SYNs,
    -- so a connect to 127.0.0.1 or 127.0.0.2 hangs; the first address
    -- fails at once (refused on ::1 or unreachable). Three addresses, one
    -- timeout of 0.4 s: the call ends after 0.4 s, not 0.8.
    local out = child({ NETIO_TEST_RESOLVE = "hang=::1,127.0.0.2,127.0.0.1" },
      table.concat({
        "local netio = require 'netio'",
        "local l = assert(netio.listen('0.0.0.0:0', { backlog = 1 }))",
        "local _, port = l:getsockname()",
        "local keep = {}",
        "for i = 1, 64 do",
        "  local c = netio.connect('127.0.0.1:' .. port, { timeout = 0.1 })",
        "  if not c then break end keep[#keep + 1] = c",
        "end",
        "local t0 = netio.now()",
        "local c, msg = netio.connect('hang:' .. port, { timeout = 0.4 })",
        "local dt = netio.now() - t0",
        "print(c, msg, dt >= 0.35, dt < 0.7, dt)",
      }, " "), 30)
    local c, msg, lo, hi = out:match("^(%S+)\t(%S+)\t(%S+)\t(%S+)\t")
    assert.are.equal("nil", c, out)
    assert.are.equal("timeout", msg, out)
    assert.are.equal("true", lo, "ended too early: " .. out)
    assert.are.equal("true", hi, "took longer than its timeout: " .. out)
  end)
end)

describe("connect options", function()
  it("connect_with_an_unknown_option_raises_naming_it", function()
    local err = H.run(function()
      local ok, e = pcall(function()
        return netio.connect("127.0.0.1:1", { timout = 1 })
      end)
      return ok and "no error" or tostring(e)
    end)
    assert.truthy(err:find("bad argument #2 to 'connect' (unknown option "
      .. "'timout')", 1, true), err)
  end)
end)
