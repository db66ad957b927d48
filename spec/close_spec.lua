-- close_spec.lua: conn:close, shutdown, peer close and reset, <close>, __gc.
local H = require "helper"
local netio = H.netio

local function with_pair(body, limit)
  return H.run(function()
    local c, s = H.pair()
    return body(c, s)
  end, limit)
end

describe("conn:close", function()
  it("close_returns_true_and_is_idempotent", function()
    local a, b = with_pair(function(c)
      return c:close(), c:close()
    end)
    assert.are.equal(true, a)
    assert.are.equal(true, b)
  end)

  it("methods_after_close_return_nil_closed", function()
    local r = with_pair(function(c)
      c:close()
      local out = {}
      local calls = {
        recv = function() return c:recv(1, 0.1) end,
        recv_line = function() return c:recv("*l", 0.1) end,
        recv_all = function() return c:recv("*a", 0.1) end,
        send = function() return c:send("x") end,
        flush = function() return c:flush(0.1) end,
        getpeername = function() return c:getpeername() end,
        getsockname = function() return c:getsockname() end,
        setoption = function() return c:setoption("tcp-nodelay", true) end,
        shutdown = function() return c:shutdown() end,
      }
      for name, f in pairs(calls) do out[name] = table.pack(pcall(f)) end
      return out
    end)
    for name, res in pairs(r) do
      assert.is_true(res[1], name .. " raised after close: " .. tostring(res[2]))
      assert.is_nil(res[2], name .. " after close returned " .. tostring(res[2]))
      assert.are.equal("closed", res[3], name .. " after close")
    end
  end)

  it("close_wakes_a_reader_in_another_task_with_nil_closed", function()
    local d, err, dt = with_pair(function(c)
      local reader = netio.spawn(function()
        return H.timed(c.recv, c, 10, 5)
      end)
      netio.spawn(function()
        netio.sleep(0.03)
        c:close()
      end)
      local _, rdt, rd, rerr = reader:join(3)
      return rd, rerr, rdt
    end)
    assert.is_nil(d)
    assert.are.equal("closed", err)
    assert.is_true(dt < 1, "reader woke after " .. tostring(dt) .. " s")
  end)

  it("close_wakes_a_line_reader_with_its_partial", function()
    local d, err, partial = with_pair(function(c, s)
      assert(s:send("unfinished"))
      local reader = netio.spawn(function() return c:recv("*l", 5) end)
      netio.sleep(0.05)
      c:close()
      return select(2, reader:join(3))
    end)
    assert.is_nil(d)
    assert.are.equal("closed", err)
    assert.are.equal("unfinished", partial)
  end)

  it("close_flushes_queued_output_first", function()
    local payload = H.data(4 * 1024 * 1024, 21)
    local got = with_pair(function(c, s)
      local reader = netio.spawn(function() return s:recv("*a", 10) end)
      assert(c:send(payload))
      c:close()
      return select(2, reader:join(10))
    end, 20)
    H.same(payload, got, "output queued before close")
  end)

  it("close_by_the_peer_makes_recv_return_nil_closed", function()
    local d, err = with_pair(function(c, s)
      s:close()
      return c:recv(1, 2)
    end)
    assert.is_nil(d)
    assert.are.equal("closed", err)
  end)

  it("peer_close_wakes_a_waiting_reader", function()
    local d, err, dt = with_pair(function(c, s)
      netio.spawn(function()
        netio.sleep(0.03)
        s:close()
      end)
      local dt0, rd, rerr = H.timed(c.recv, c, 1, 5)
      return rd, rerr, dt0
    end)
    assert.is_nil(d)
    assert.are.equal("closed", err)
    assert.is_true(dt < 1, "reader woke after " .. dt .. " s")
  end)

  it("peer_reset_makes_recv_and_send_fail_without_crashing", function()
    -- Closing a socket with unread bytes in the kernel makes it send RST.
    local r = with_pair(function(c, s)
      local blob = H.data(256 * 1024, 22)
      c:settimeout(2)
      for _ = 1, 64 do
        local n = c:send(blob)
        if not n then break end
        netio.sleep(0.005)
        if c:getstats().queued > 0 then break end
      end
      s:close()
      local out = {}
      out.dt, out.d, out.err = H.timed(c.recv, c, 1, 2)
      for i = 1, 100 do
        local n, e = c:send("more")
        if not n then out.serr = e break end
        out.sends = i
        netio.sleep(0.005)
      end
      return out
    end, 20)
    assert.is_nil(r.d)
    -- A connection closed by either side (a reset included)
    -- gives nil, "closed" -- at once, not at the recv timeout.
    assert.are.equal("closed", r.err)
    assert.is_true(r.dt < 1, "recv noticed the reset after " .. r.dt .. " s")
    assert.are.equal("closed", r.serr)
  end)

  it("close_on_a_conn_with_a_blocked_writer_ends_the_writer", function()
    local r = with_pair(function(c)
      c:settimeouts(nil, 0.3, nil)
      local w = netio.spawn(function()
        return H.timed(c.send, c, H.data(32 * 1024 * 1024, 23))
      end)
      netio.sleep(0.05)
      c:close()
      local ok, dt, n, err = w:join(3)
      return { ok = ok, dt = dt, n = n, err = err }
    end, 20)
    assert.is_true(r.ok, "writer task did not end")
    assert.is_nil(r.n)
    assert.truthy(r.err == "closed" or r.err == "timeout", tostring(r.err))
    assert.is_true(r.dt < 1.5, "writer ended after " .. tostring(r.dt) .. " s")
  end)
end)

describe("conn:shutdown", function()
  it("shutdown_half_closes_the_peer_sees_eof_and_can_still_reply", function()
    local req, resp = with_pair(function(c, s)
      local server = netio.spawn(function()
        local r = s:recv("*a", 2)
        s:send("reply to " .. tostring(r))
        s:close()
        return r
      end)
      assert(c:send("request"))
      c:shutdown()
      local answer = c:recv("*a", 2)
      return select(2, server:join(3)), answer
    end)
    assert.are.equal("request", req)
    assert.are.equal("reply to request", resp)
  end)

  it("shutdown_sends_queued_output_before_the_fin", function()
    local payload = H.data(2 * 1024 * 1024, 24)
    local got = with_pair(function(c, s)
      local reader = netio.spawn(function() return s:recv("*a", 10) end)
      netio.spawn(function()
        c:send(payload)
        c:shutdown()
      end)
      return select(2, reader:join(10))
    end, 20)
    H.same(payload, got, "output queued before shutdown")
  end)

  it("send_after_shutdown_is_closed_even_when_it_has_nothing_to_send", function()
    local r = with_pair(function(c)
      assert(c:shutdown())
      return { table.pack(c:send("x")), table.pack(c:send("")), table.pack(c:send({})) }
    end)
    assert.are.same({ n = 2, nil, "closed" }, r[1], "send after shutdown")
    assert.are.same({ n = 2, nil, "closed" }, r[2], "an empty send after shutdown")
    assert.are.same({ n = 2, nil, "closed" }, r[3], "an empty array after shutdown")
  end)
end)

describe("<close> and __gc", function()
  it("a_close_variable_closes_the_connection_at_scope_end", function()
    local after, eof = H.run(function()
      local l, port = H.listen()
      local kept
      do
        local c <close> = H.connect("127.0.0.1:" .. port)
        assert(c:send("scoped"))
        kept = c
      end
      local s = H.track(assert(l:accept(2)))
      local n, err = kept:send("after")
      return { n, err }, s:recv("*a", 2)
    end)
    assert.is_nil(after[1])
    assert.are.equal("closed", after[2])
    assert.are.equal("scoped", eof)
  end)

  it("a_close_variable_closes_on_error_unwinding", function()
    local ok, eof = H.run(function()
      local l, port = H.listen()
      local pok = pcall(function()
        local c <close> = assert(netio.connect("127.0.0.1:" .. port))
        assert(c:send("then error"))
        error("unwind")
      end)
      local s = H.track(assert(l:accept(2)))
      return pok, s:recv("*a", 2)
    end)
    assert.is_false(ok)
    assert.are.equal("then error", eof)
  end)

  it("a_forgotten_connection_is_closed_by_gc_and_the_peer_sees_eof", function()
    local got, err = H.run(function()
      local l, port = H.listen()
      -- In a function of its own so no stack slot keeps the conn alive.
      local function forget()
        local c = assert(netio.connect("127.0.0.1:" .. port))
        assert(c:send("bye from gc"))
      end
      forget()
      local s = H.track(assert(l:accept(2)))
      for _ = 1, 5 do collectgarbage("collect") end
      return s:recv("*a", 3)
    end)
    assert.are.equal("bye from gc", got, tostring(err))
  end)

  it("a_forgotten_listener_is_closed_by_gc", function()
    local code = H.run(function()
      local function forget()
        local l = assert(netio.listen("127.0.0.1:0"))
        return (select(2, l:getsockname()))
      end
      local port = forget()
      for _ = 1, 5 do collectgarbage("collect") end
      netio.sleep(0.02)
      local c, _, e = netio.connect("127.0.0.1:" .. port)
      if c then c:close() return "connected" end
      return e
    end)
    assert.are.equal("ECONNREFUSED", code)
  end)

  it("many_forgotten_connections_are_collected_without_crashing", function()
    local n = H.run(function()
      local _, port = H.server(H.echo)
      local good = 0
      for i = 1, 50 do
        local c = assert(netio.connect("127.0.0.1:" .. port))
        if c:send("g" .. i .. "\n") and c:recv("*l", 2) == "g" .. i then
          good = good + 1
        end
        if i % 10 == 0 then collectgarbage("collect") end
      end
      collectgarbage("collect")
      return good
    end)
    assert.are.equal(50, n)
  end)
end)
