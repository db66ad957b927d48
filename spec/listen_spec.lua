-- listen_spec.lua: netio.listen, listener:accept/getsockname/close.
local H = require "helper"
local netio = H.netio

describe("netio.listen", function()
  it("listen_on_port_zero_picks_a_port_reported_by_getsockname", function()
    local ip, port, peer_port, client_port = H.run(function()
      local l, p = H.listen("127.0.0.1:0")
      local lip, lport = l:getsockname()
      assert.are.equal(p, lport)
      local c = H.connect("127.0.0.1:" .. lport)
      local s = H.track(assert(l:accept(5)))
      local _, pp = s:getpeername()
      local _, cp = c:getsockname()
      return lip, lport, pp, cp
    end)
    assert.are.equal("127.0.0.1", ip)
    assert.are.equal("integer", math.type(port))
    assert.is_true(port > 0 and port < 65536, tostring(port))
    assert.are.equal(client_port, peer_port)
  end)

  it("listen_on_ipv6_loopback_accepts_ipv6_clients", function()
    if not H.has_ipv6() then
      pending("no IPv6 loopback on this machine")
      return
    end
    local ip, data, peer = H.run(function()
      local l, port = H.listen("[::1]:0")
      local lip = l:getsockname()
      local c = H.connect("[::1]:" .. port)
      local s = H.track(assert(l:accept(5)))
      assert(c:send("v6"))
      local pip = s:getpeername()
      return lip, s:recv(2, 2), pip
    end)
    assert.are.equal("::1", ip)
    assert.are.equal("v6", data)
    assert.are.equal("::1", peer)
  end)

  it("listen_on_star_binds_the_any_address", function()
    local ip, data = H.run(function()
      local l, port = H.listen("*:0")
      local lip = l:getsockname()
      local c = H.connect("127.0.0.1:" .. port)
      local s = H.track(assert(l:accept(5)))
      assert(c:send("any"))
      return lip, s:recv(3, 2)
    end)
    assert.truthy(ip == "0.0.0.0" or ip == "::", "getsockname gave " .. tostring(ip))
    assert.are.equal("any", data)
  end)

  it("listen_accepts_backlog_and_reuseport_options", function()
    if H.wine then
      -- Wine keeps SO_REUSEADDR (reuseport on Windows) in its own books
      -- only: the Linux socket underneath cannot bind a port another one
      -- listens on, so the second listen fails with EACCES under Wine.
      pending("not applicable under Wine: two TCP sockets cannot share a port")
      return
    end
    local ok1, ok2, port1, port2 = H.run(function()
      local a, pa = H.listen("127.0.0.1:0", { backlog = 16, reuseport = true })
      local b, pb = H.listen("127.0.0.1:" .. pa, { reuseport = true })
      return a ~= nil, b ~= nil, pa, pb
    end)
    assert.is_true(ok1)
    assert.is_true(ok2, "a second reuseport listener on the same port")
    assert.are.equal(port1, port2)
  end)

  it("listen_with_accepts_serves_every_client", function()
    -- accepts: AcceptEx calls kept posted on iocp; uring and epoll take no
    -- such count. Each size must accept every client.
    local got = H.run(function()
      local r = {}
      for _, n in ipairs({ 1, 64, 1024 }) do
        local l, port = H.listen("127.0.0.1:0", { accepts = n })
        local cs = {}
        for i = 1, 80 do cs[i] = H.connect("127.0.0.1:" .. port) end
        local ok = 0
        for i = 1, 80 do
          local s = H.track(assert(l:accept(5)))
          assert(cs[i]:send("x"))
          if s:recv(1, 5) == "x" then ok = ok + 1 end
        end
        r[#r + 1] = ok
        l:close()
      end
      return r
    end)
    assert.are.same({ 80, 80, 80 }, got, "clients accepted and served with accepts = 1, 64, 1024")
  end)

  it("listen_rejects_bad_options", function()
    local errs = H.run(function()
      local r = {}
      for _, o in ipairs({ { accepts = 0 }, { accepts = 1025 }, { accepts = 1.5 },
                           { accepts = "4" }, { backlog = 0 }, { backlog = 70000 },
                           { backlog_ = 1 } }) do
        local ok, e = pcall(function() return netio.listen("127.0.0.1:0", o) end)
        r[#r + 1] = ok and "no error" or tostring(e)
      end
      return r
    end)
    local want = {
      "bad argument #2 to 'listen' (field 'accepts' must be an integer from 1 to 1024)",
      "bad argument #2 to 'listen' (field 'accepts' must be an integer from 1 to 1024)",
      "bad argument #2 to 'listen' (field 'accepts' must be an integer from 1 to 1024)",
      "bad argument #2 to 'listen' (field 'accepts' must be an integer from 1 to 1024)",
      "bad argument #2 to 'listen' (field 'backlog' must be a positive integer)",
      "bad argument #2 to 'listen' (field 'backlog' must be a positive integer)",
      "bad argument #2 to 'listen' (unknown option 'backlog_')",
    }
    for i, w in ipairs(want) do
      assert.truthy(errs[i]:find(w, 1, true),
        ("case %d: expected %q, got %q"):format(i, w, errs[i]))
    end
  end)

  it("listen_on_a_port_in_use_returns_nil_message_EADDRINUSE", function()
    local l2, msg, code = H.run(function()
      local _, port = H.listen("127.0.0.1:0")
      return netio.listen("127.0.0.1:" .. port)
    end)
    assert.is_nil(l2)
    assert.is_string(msg)
    assert.is_true(#msg > 0)
    assert.are.equal("EADDRINUSE", code)
  end)

  it("listen_without_reuseport_does_not_share_a_reuseport_port", function()
    local l2, _, code = H.run(function()
      local _, port = H.listen("127.0.0.1:0", { reuseport = true })
      return netio.listen("127.0.0.1:" .. port)
    end)
    assert.is_nil(l2)
    assert.are.equal("EADDRINUSE", code)
  end)

  it("listen_on_a_non_local_address_returns_nil_message_code", function()
    -- 192.0.2.1 (TEST-NET-1) is not an address of this machine.
    local l, msg, code = H.run(function()
      return netio.listen("192.0.2.1:0")
    end)
    assert.is_nil(l)
    assert.is_string(msg)
    assert.are.equal("EADDRNOTAVAIL", code)
  end)

  it("listen_with_a_malformed_address_returns_nil_message_code", function()
    local results = H.run(function()
      local r = {}
      for _, addr in ipairs({ "", "nohostport", "127.0.0.1:99999", "[::1",
                              "127.0.0.1:-1", "127.0.0.1:abc" }) do
        r[addr] = table.pack(netio.listen(addr))
      end
      return r
    end)
    for addr, r in pairs(results) do
      assert.is_nil(r[1], "listen(" .. addr .. ") should fail")
      assert.is_string(r[2], "listen(" .. addr .. ") message")
      assert.is_string(r[3], "listen(" .. addr .. ") code")
      assert.truthy(r[3]:match("^E[A-Z_]+$"), "code " .. tostring(r[3]))
    end
  end)

  -- The parser answers for every address it refuses: EBADADDR for what is
  -- malformed, ENODEV for a zone that names no interface; none of them
  -- reaches the OS to come back as an unknown error.
  it("listen_with_a_malformed_ipv6_literal_or_zone_returns_ebadaddr", function()
    local results = H.run(function()
      local r = {}
      for _, addr in ipairs({ "[fe80::1%]:0", "[%lo]:0", "[fe80::1%%lo]:0",
                              "[1.2.3.4]:0", "[abc]:0", "[::g]:0",
                              "[1::2::3]:0", "[localhost]:0" }) do
        r[addr] = table.pack(netio.listen(addr))
      end
      return r
    end)
    for addr, r in pairs(results) do
      assert.is_nil(r[1], "listen(" .. addr .. ") should fail")
      assert.are.equal(('malformed address "%s"'):format(addr), r[2])
      assert.are.equal("EBADADDR", r[3], "listen(" .. addr .. ") code")
    end
  end)

  it("listen_with_an_unknown_interface_returns_enodev", function()
    local results = H.run(function()
      local r = {}
      for _, addr in ipairs({ "[fe80::1%999]:0", "[fe80::1%no-such-if]:0",
                              "[fe80::1%4294967296]:0", "[::1%999]:0" }) do
        r[addr] = table.pack(netio.listen(addr))
      end
      return r
    end)
    for addr, r in pairs(results) do
      local zone = addr:match("%%(.*)%]")
      assert.is_nil(r[1], "listen(" .. addr .. ") should fail")
      assert.are.equal(('unknown interface "%s" in address "%s"'):format(zone,
        addr), r[2])
      assert.are.equal("ENODEV", r[3], "listen(" .. addr .. ") code")
    end
  end)
end)

describe("listener:accept", function()
  it("accept_returns_each_pending_connection", function()
    local n, ports_match = H.run(function()
      local l, port = H.listen()
      local clients, seen = {}, {}
      for i = 1, 5 do
        local c = H.connect("127.0.0.1:" .. port)
        local _, cp = c:getsockname()
        clients[cp] = i
      end
      local count = 0
      for _ = 1, 5 do
        local s = H.track(assert(l:accept(5)))
        local _, pp = s:getpeername()
        if clients[pp] and not seen[pp] then
          seen[pp] = true
          count = count + 1
        end
      end
      return count, true
    end)
    assert.are.equal(5, n)
    assert.is_true(ports_match)
  end)

  it("accept_times_out_with_nil_timeout", function()
    local dt, c, err = H.run(function()
      local l = H.listen()
      return H.timed(l.accept, l, 0.05)
    end)
    assert.is_nil(c)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.04 and dt < 1, "accept waited " .. dt .. " s")
  end)

  it("accept_waits_for_a_connection_that_comes_later", function()
    local got = H.run(function()
      local l, port = H.listen()
      netio.spawn(function()
        netio.sleep(0.05)
        local c = assert(netio.connect("127.0.0.1:" .. port))
        c:send("later")
        c:close()
      end)
      local s = H.track(assert(l:accept(2)))
      return s:recv("*a", 2)
    end)
    assert.are.equal("later", got)
  end)

  it("close_wakes_a_waiting_accept_with_nil_closed", function()
    local c, err, dt = H.run(function()
      local l = H.listen()
      local t = netio.spawn(function()
        return H.timed(l.accept, l, 5)
      end)
      netio.sleep(0.03)
      l:close()
      local ok, adt, ac, aerr = t:join(2)
      assert(ok, "accept task did not end")
      return ac, aerr, adt
    end)
    assert.is_nil(c)
    assert.are.equal("closed", err)
    assert.is_true(dt < 1, "accept woke after " .. dt .. " s")
  end)

  it("accept_after_close_returns_nil_closed", function()
    local c, err, gc, gerr = H.run(function()
      local l = H.listen()
      l:close()
      local a, e = l:accept(0.05)
      local g, ge = l:getsockname()
      return a, e, g, ge
    end)
    assert.is_nil(c)
    assert.are.equal("closed", err)
    assert.is_nil(gc)
    assert.are.equal("closed", gerr)
  end)

  it("listener_close_is_idempotent", function()
    local ok = H.run(function()
      local l = H.listen()
      l:close()
      l:close()
      return true
    end)
    assert.is_true(ok)
  end)

  it("listener_close_frees_the_port", function()
    local again = H.run(function()
      local l, port = H.listen()
      l:close()
      local l2 = netio.listen("127.0.0.1:" .. port)
      if l2 then l2:close() end
      return l2 ~= nil
    end)
    assert.is_true(again)
  end)

  -- More listeners than any fixed table of closed sockets would hold, all
  -- closed at once with a task waiting in accept on each, round after
  -- round: every port is free right after close, and every waiting accept
  -- ends once with nil, "closed".
  it("closing_many_listeners_with_waiting_accepts_frees_each_port", function()
    local failures = H.run(function()
      local bad = {}
      for round = 1, 3 do
        local ls, ports, tasks, woke = {}, {}, {}, {}
        for i = 1, 100 do
          ls[i], ports[i] = H.listen()
          woke[i] = 0
          tasks[i] = netio.spawn(function()
            local c, err = ls[i]:accept(5)
            woke[i] = woke[i] + 1
            return c, err
          end)
        end
        netio.sleep(0.02)
        for i = 1, 100 do
          -- Listen again right after the close: a port left free for long
          -- may be taken by another process's listen on port 0 (the other
          -- backend's run of this spec, in parallel).
          ls[i]:close()
          local l2, err = netio.listen("127.0.0.1:" .. ports[i])
          if not l2 then
            bad[#bad + 1] = ("round %d: port of listener %d not free after "
              .. "close: %s"):format(round, i, tostring(err))
          else
            l2:close()
          end
        end
        for i = 1, 100 do
          local ok, c, err = tasks[i]:join(2)
          if not ok or c ~= nil or err ~= "closed" then
            bad[#bad + 1] = ("round %d: accept %d gave %s, %s, %s"):format(
              round, i, tostring(ok), tostring(c), tostring(err))
          end
        end
        netio.sleep(0.02)
        for i = 1, 100 do
          if woke[i] ~= 1 then
            bad[#bad + 1] = ("round %d: accept %d woke %d times"):format(
              round, i, woke[i])
          end
        end
      end
      return bad
    end, 30)
    assert.are.same({}, failures)
  end)

  it("listener_closed_by_a_close_variable", function()
    local err = H.run(function()
      local port
      do
        local l <close> = assert(netio.listen("127.0.0.1:0"))
        port = select(2, l:getsockname())
      end
      local c, _, code = netio.connect("127.0.0.1:" .. port)
      if c then c:close() end
      return c and "connected" or code
    end)
    assert.are.equal("ECONNREFUSED", err)
  end)
end)
