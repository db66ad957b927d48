-- pool_spec.lua: the connection pool -- conn:setkeepalive(), netio.connect
-- taking an idle connection back, conn:getreusedtimes() (OpenResty's
-- cosocket pool).
local H = require "helper"
local netio = H.netio

-- A line server that counts what it accepted. Each accepted connection gets
-- a number n (1, 2, ...); lines it understands:
--   "who"        -> n
--   "twolines"   -> "a\nb\n"
--   "closelater" -> "ok", then it closes that connection 50 ms later
--   "pokelater"  -> "ok", then 50 ms later an unasked "junk" line
--   anything else is echoed.
-- st.accepted counts connections, st.gone[n] is set once connection n
-- ended (the client closed it, or the server did).
local function counting_server()
  local st = { accepted = 0, gone = {}, ngone = 0 }
  local l, port = H.listen()
  netio.spawn(function()
    while true do
      local c = l:accept()
      if not c then break end
      H.track(c)
      st.accepted = st.accepted + 1
      local n = st.accepted
      netio.spawn(function()
        while true do
          local line = c:recv("*l")
          if not line then break end
          if line == "who" then
            c:send(n .. "\n")
          elseif line == "twolines" then
            c:send("a\nb\n")
          elseif line == "closelater" then
            c:send("ok\n")
            netio.sleep(0.05)
            break
          elseif line == "pokelater" then
            c:send("ok\n")
            netio.sleep(0.05)
            c:send("junk\n")
          else
            c:send(line .. "\n")
          end
        end
        st.gone[n] = true
        st.ngone = st.ngone + 1
        c:close()
      end)
    end
  end)
  return st, "127.0.0.1:" .. port
end

-- The server connection number c talks to.
local function who(c)
  assert(c:send("who\n"))
  local n, err = c:recv("*l", 2)
  assert(n, "no answer to who: " .. tostring(err))
  return tonumber(n)
end

-- The command line that runs the host on script `path` with argument
-- `port`, for os.execute in a netio.thread (which cannot use H.sh: that
-- waits in the calling thread). cmd.exe drops the first and the last quote
-- of the line, so on Windows the whole line is quoted once more.
local function host_line(host, path, port)
  local line = H.quote(host) .. " " .. H.quote(path) .. " " .. port
  return H.windows and ('"' .. line .. '"') or line
end

-- Wait (bounded) until cond() holds.
local function until_true(cond, limit)
  local t0 = netio.now()
  while not cond() do
    if netio.now() - t0 > (limit or 2) then return false end
    netio.sleep(0.01)
  end
  return true
end

describe("conn:setkeepalive", function()
  it("setkeepalive_then_connect_reuses_the_same_server_connection", function()
    H.run(function()
      local st, addr = counting_server()
      local c1 = H.connect(addr)
      assert.are.equal(0, c1:getreusedtimes())
      local n1 = who(c1)
      assert.is_true(c1:setkeepalive())
      local c2 = H.connect(addr)
      assert.are.equal(1, c2:getreusedtimes(), "taken from the pool once")
      assert.are.equal(n1, who(c2), "the same server connection")
      assert.is_true(c2:setkeepalive())
      local c3 = H.connect(addr)
      assert.are.equal(2, c3:getreusedtimes())
      assert.are.equal(n1, who(c3))
      assert.are.equal(1, st.accepted, "the server accepted one connection")
    end)
  end)

  it("setkeepalive_closes_the_conn_for_its_caller", function()
    local r = H.run(function()
      local _, addr = counting_server()
      local c = H.connect(addr)
      who(c)
      assert.is_true(c:setkeepalive())
      return { { c:send("x\n") }, { c:recv("*l") }, { c:getreusedtimes() },
        { c:setkeepalive() }, tostring(c), c:close() }
    end)
    assert.are.same({ nil, "closed" }, r[1])
    assert.are.same({ nil, "closed", "" }, r[2])
    assert.are.same({ nil, "closed" }, r[3])
    assert.are.same({ nil, "closed" }, r[4])
    assert.are.equal("netio.conn (closed)", r[5])
    assert.is_true(r[6])
  end)

  it("setkeepalive_on_a_closed_conn_returns_nil_closed", function()
    local ok, err = H.run(function()
      local _, addr = counting_server()
      local c = H.connect(addr)
      c:close()
      return c:setkeepalive()
    end)
    assert.is_nil(ok)
    assert.are.equal("closed", err)
  end)

  it("pooled_connection_gets_a_new_id_the_old_one_reaches_nothing", function()
    local sent, err, same, n1, n2 = H.run(function()
      local _, addr = counting_server()
      local c1 = H.connect(addr)
      local n = who(c1)
      local id1 = c1:id()
      assert.is_true(c1:setkeepalive())
      local ok, e = netio.send(id1, "stray\n")
      local c2 = H.connect(addr)
      -- What was sent to the old id must not reach the new owner's stream.
      return ok, e, c2:id() == id1, n, who(c2)
    end)
    assert.is_nil(sent)
    assert.are.equal("closed", err)
    assert.is_false(same)
    assert.are.equal(n1, n2)
  end)

  it("pool_option_names_the_pool_instead_of_the_address", function()
    H.run(function()
      local st, addr = counting_server()
      local a = H.connect(addr, { pool = "A" })
      local na = who(a)
      assert.is_true(a:setkeepalive())
      -- Same address, no pool name: not pool "A".
      local b = H.connect(addr)
      assert.are.equal(0, b:getreusedtimes())
      assert.are_not.equal(na, who(b))
      assert.is_true(b:setkeepalive())
      -- Pool "A" again: its connection.
      local a2 = H.connect(addr, { pool = "A" })
      assert.are.equal(1, a2:getreusedtimes())
      assert.are.equal(na, who(a2))
      -- And the address's own pool still has b's.
      local b2 = H.connect(addr)
      assert.are.equal(1, b2:getreusedtimes())
      assert.are.equal(2, st.accepted)
    end)
  end)

  it("pools_are_per_address", function()
    H.run(function()
      local st1, addr1 = counting_server()
      local st2, addr2 = counting_server()
      local c = H.connect(addr1)
      who(c)
      assert.is_true(c:setkeepalive())
      local d = H.connect(addr2)
      assert.are.equal(0, d:getreusedtimes())
      who(d)
      assert.are.equal(1, st1.accepted)
      assert.are.equal(1, st2.accepted)
    end)
  end)

  it("a_bound_connect_does_not_take_an_unbound_pooled_connection", function()
    H.run(function()
      local st, addr = counting_server()
      local c = H.connect(addr)
      who(c)
      assert.is_true(c:setkeepalive())
      local d = H.connect(addr, { bind = "127.0.0.1:0" })
      assert.are.equal(0, d:getreusedtimes())
      who(d)
      assert.are.equal(2, st.accepted)
    end)
  end)

  it("a_full_pool_closes_its_least_recently_used_connection", function()
    H.run(function()
      local st, addr = counting_server()
      local c, n = {}, {}
      for i = 1, 3 do
        c[i] = H.connect(addr)
        n[i] = who(c[i])
      end
      for i = 1, 3 do assert.is_true(c[i]:setkeepalive(60, 2)) end
      -- c[1] went in first and was used least recently: closed.
      assert.is_true(until_true(function() return st.gone[n[1]] end),
        "the least recently used pooled connection was not closed")
      assert.is_nil(st.gone[n[2]])
      assert.is_nil(st.gone[n[3]])
      -- Taken most recently used first, as OpenResty does.
      local d1, d2 = H.connect(addr), H.connect(addr)
      assert.are.equal(n[3], who(d1))
      assert.are.equal(n[2], who(d2))
      local d3 = H.connect(addr)
      assert.are.equal(0, d3:getreusedtimes())
      assert.are.equal(4, who(d3))
    end)
  end)

  it("pool_size_is_the_one_given_when_the_pool_was_made", function()
    H.run(function()
      local st, addr = counting_server()
      local c, n = {}, {}
      for i = 1, 3 do
        c[i] = H.connect(addr)
        n[i] = who(c[i])
      end
      assert.is_true(c[1]:setkeepalive(60, 1))
      -- A larger size later does not grow it.
      assert.is_true(c[2]:setkeepalive(60, 10))
      assert.is_true(until_true(function() return st.gone[n[1]] end),
        "the pool of size 1 kept two connections")
      assert.is_true(c[3]:setkeepalive(60, 10))
      assert.is_true(until_true(function() return st.gone[n[2]] end))
      assert.is_nil(st.gone[n[3]])
    end)
  end)

  it("an_idle_pooled_connection_is_closed_after_its_idle_time", function()
    H.run(function()
      local st, addr = counting_server()
      local c = H.connect(addr)
      local n = who(c)
      local t0 = netio.now()
      assert.is_true(c:setkeepalive(0.1))
      assert.is_true(until_true(function() return st.gone[n] end),
        "the pooled connection outlived its idle time")
      local dt = netio.now() - t0
      assert.is_true(dt >= 0.09 and dt < 1.5, "closed after " .. dt .. " s")
      local d = H.connect(addr)
      assert.are.equal(0, d:getreusedtimes())
      assert.are.equal(2, who(d))
    end)
  end)

  it("idle_time_0_means_no_limit", function()
    H.run(function()
      local st, addr = counting_server()
      local c = H.connect(addr)
      local n = who(c)
      assert.is_true(c:setkeepalive(0))
      netio.sleep(0.3)
      assert.is_nil(st.gone[n])
      local d = H.connect(addr)
      assert.are.equal(1, d:getreusedtimes())
    end)
  end)

  it("taking_a_connection_restarts_its_idle_time", function()
    H.run(function()
      local st, addr = counting_server()
      local c = H.connect(addr)
      local n = who(c)
      assert.is_true(c:setkeepalive(0.2))
      netio.sleep(0.1)
      local d = H.connect(addr)
      assert.are.equal(1, d:getreusedtimes())
      -- In use past the first idle time: nothing closes it.
      netio.sleep(0.2)
      assert.is_nil(st.gone[n])
      assert.are.equal(n, who(d))
    end)
  end)

  it("a_pooled_connection_the_peer_closes_is_dropped_at_once", function()
    H.run(function()
      local st, addr = counting_server()
      local c = H.connect(addr)
      local n = who(c)
      local conns = netio.core.stats().conns
      assert(c:send("closelater\n"))
      assert.are.equal("ok", c:recv("*l", 2))
      assert.is_true(c:setkeepalive())
      assert.is_true(until_true(function() return st.gone[n] end))
      -- Both ends are gone: the server's, and the pooled one, noticed
      -- without anyone asking for it.
      assert.is_true(until_true(function()
        return netio.core.stats().conns == conns - 2
      end), "the pooled connection the peer closed is still open")
      local d = H.connect(addr)
      assert.are.equal(0, d:getreusedtimes(), "a dead connection was handed out")
      assert.are.equal(2, who(d))
    end)
  end)

  it("a_peer_close_not_yet_delivered_is_seen_when_taking", function()
    -- The peer (the host, in another process) closes while this engine
    -- has no turn to hear of it (the task busy-waits): the FIN is in the
    -- kernel only. Taking the connection looks at the socket itself.
    local HOST = os.getenv("NETIO_HOST")
    if not HOST then
      pending("NETIO_HOST is not set")
      return
    end
    local path = H.write(H.tmpname(), [[
      local netio = require "netio"
      local l = assert(netio.listen("127.0.0.1:" .. arg[1]))
      local c = assert(l:accept(10))
      l:close()
      assert(c:recv("*l", 10))
      c:send("ok\n")
      netio.sleep(0.1)
      c:close()
    ]])
    local reused, ran
    H.run(function()
      local l, port = H.listen()
      l:close()
      local addr = "127.0.0.1:" .. port
      local t = netio.thread(function(line) return os.execute(line) end,
        host_line(HOST, path, port))
      local c
      for _ = 1, 200 do
        c = netio.connect(addr)
        if c then break end
        netio.sleep(0.025)
      end
      assert(c, "the host's server did not come up")
      assert(c:send("hi\n"))
      assert.are.equal("ok", c:recv("*l", 5))
      assert.is_true(c:setkeepalive())
      -- No engine turn for 0.6 s: the host closes meanwhile.
      local t0 = os.clock()
      while os.clock() - t0 < 0.6 do end
      local d = netio.connect(addr)
      reused = d and d:getreusedtimes() or 0
      ran = select(2, t:join(20))
    end, 30)
    os.remove(path)
    assert.is_true(ran, "the host script failed")
    assert.are.equal(0, reused, "a connection the peer had closed was handed out")
  end)

  it("a_pooled_connection_that_gets_unasked_data_is_dropped", function()
    H.run(function()
      local st, addr = counting_server()
      local c = H.connect(addr)
      local n = who(c)
      assert(c:send("pokelater\n"))
      assert.are.equal("ok", c:recv("*l", 2))
      assert.is_true(c:setkeepalive())
      -- The junk line arrives 50 ms later; the pool closes the connection.
      assert.is_true(until_true(function() return st.gone[n] end),
        "the pooled connection that got unasked data is still open")
      local d = H.connect(addr)
      assert.are.equal(0, d:getreusedtimes())
      assert.are.equal(2, who(d), "the next owner would have read junk")
    end)
  end)

  it("setkeepalive_with_unread_input_returns_nil_and_keeps_it_open", function()
    local ok, err, rest, ok2, reused = H.run(function()
      local _, addr = counting_server()
      local c = H.connect(addr)
      assert(c:send("twolines\n"))
      assert.are.equal("a", c:recv("*l", 2))
      -- "b\n" is buffered (it came with "a\n", or comes right after).
      assert.is_true(until_true(function()
        return select(2, c:setkeepalive()) == "unread data in buffer"
      end))
      local a, b = c:setkeepalive()
      local line = c:recv("*l", 2)
      local a2 = c:setkeepalive()
      local d = H.connect(addr)
      return a, b, line, a2, d:getreusedtimes()
    end)
    assert.is_nil(ok)
    assert.are.equal("unread data in buffer", err)
    assert.are.equal("b", rest)
    assert.is_true(ok2)
    assert.are.equal(1, reused)
  end)

  it("setkeepalive_waits_for_queued_output_to_reach_the_kernel", function()
    H.run(function()
      local l, port = H.listen()
      local got, total = 0, nil
      netio.spawn(function()
        local s = H.track(l:accept(5))
        -- Read nothing until the client's output is stuck in its queue.
        while not total do netio.sleep(0.01) end
        netio.sleep(0.2)
        while got < total do
          local d = s:recv()
          if not d then return end
          got = got + #d
        end
        s:send("all\n")
      end)
      local c = H.connect("127.0.0.1:" .. port)
      H.clog(c)
      local st = c:getstats()
      assert.is_true(st.queued > 0)
      total = st.bytes_out + st.queued
      local dt, ok, err = H.timed(c.setkeepalive, c)
      assert.is_true(ok, tostring(err))
      assert.is_true(dt >= 0.1, "setkeepalive returned before the output left: "
        .. dt .. " s")
      local d = H.connect("127.0.0.1:" .. port)
      assert.are.equal(1, d:getreusedtimes())
      assert.are.equal(0, d:getstats().queued)
      assert.are.equal("all", d:recv("*l", 5))
      assert.are.equal(total, got)
    end)
  end)

  it("setkeepalive_gives_up_after_the_send_timeout_and_keeps_it_open", function()
    H.run(function()
      local l, port = H.listen()
      netio.spawn(function()
        H.track(l:accept(5)) -- never reads
      end)
      local c = H.connect("127.0.0.1:" .. port)
      H.clog(c)
      c:settimeouts(nil, 0.2, nil)
      local dt, ok, err = H.timed(c.setkeepalive, c)
      assert.is_nil(ok)
      assert.are.equal("timeout", err)
      assert.is_true(dt >= 0.15 and dt < 2, "gave up after " .. dt .. " s")
      assert.is_table(c:getstats(), "the connection stays open")
    end)
  end)

  it("setkeepalive_while_another_task_reads_returns_nil_busy", function()
    local ok, err = H.run(function()
      local _, addr = counting_server()
      local c = H.connect(addr)
      local reader = netio.spawn(function() return c:recv("*l", 1) end)
      netio.sleep(0.05)
      local a, b = c:setkeepalive()
      reader:join(2)
      return a, b
    end)
    assert.is_nil(ok)
    assert.are.equal("busy", err)
  end)

  it("setkeepalive_after_the_peer_closed_closes_and_returns_nil_closed", function()
    local ok, err = H.run(function()
      local _, addr = counting_server()
      local c = H.connect(addr)
      assert(c:send("closelater\n"))
      assert.are.equal("ok", c:recv("*l", 2))
      local r, e = c:recv("*l", 2)
      assert.is_nil(r)
      assert.are.equal("closed", e)
      return c:setkeepalive()
    end)
    assert.is_nil(ok)
    assert.are.equal("closed", err)
  end)

  it("a_run_that_ends_with_pooled_connections_ends_promptly", function()
    local dt = H.timed(netio.run, function()
      -- The kernel completes connects into the backlog: no accept needed.
      local l = netio.listen("127.0.0.1:0")
      local _, port = l:getsockname()
      for _ = 1, 3 do
        local c = assert(netio.connect("127.0.0.1:" .. port))
        assert(c:setkeepalive(100))
      end
    end)
    assert.is_true(dt < 1.5, "the run took " .. dt .. " s")
  end)

  it("the_end_of_a_run_closes_its_pooled_connections", function()
    -- The run that pools is the host's, in another process, talking to
    -- this run's server: the server sees the close when that run ends.
    local HOST = os.getenv("NETIO_HOST")
    if not HOST then
      pending("NETIO_HOST is not set")
      return
    end
    local path = H.write(H.tmpname(), [[
      local netio = require "netio"
      local c = assert(netio.connect("127.0.0.1:" .. arg[1]))
      assert(c:send("who\n"))
      assert(c:recv("*l", 5))
      assert(c:setkeepalive(100))
      print("pooled")
    ]])
    local ran, seen, dt
    H.run(function()
      local st, addr = counting_server()
      local cmd = host_line(HOST, path, addr:match(":(%d+)$"))
      -- os.execute waits: in a thread of its own, so this run serves.
      local t = netio.thread(function(line)
        local t0 = os.time()
        local ok = os.execute(line)
        return ok, os.time() - t0
      end, cmd)
      local joined
      joined, ran, dt = t:join(20)
      assert(joined, "the host did not end")
      seen = until_true(function() return st.gone[1] end, 5)
    end, 30)
    os.remove(path)
    assert.is_true(ran, "the host script failed")
    assert.is_true(dt <= 3, "the host took " .. tostring(dt) .. " s to end")
    assert.is_true(seen, "the pooled connection outlived its run")
  end)

  it("many_tasks_cycling_connect_and_setkeepalive_reuse_connections", function()
    local accepted, ok_replies = H.run(function()
      local st, addr = counting_server()
      local tasks, replies = {}, 0
      for i = 1, 50 do
        tasks[i] = netio.spawn(function()
          for j = 1, 20 do
            local c = assert(netio.connect(addr))
            local msg = i .. ":" .. j
            assert(c:send(msg .. "\n"))
            local r = c:recv("*l", 5)
            if r == msg then replies = replies + 1 end
            assert(c:setkeepalive())
          end
        end)
      end
      for i = 1, 50 do assert(tasks[i]:join(20)) end
      return st.accepted, replies
    end, 30)
    assert.are.equal(1000, ok_replies)
    assert.is_true(accepted <= 30 + 50,
      "the server accepted " .. accepted .. " connections for 1000 cycles")
  end)

  it("bad_arguments_raise", function()
    local msgs = H.run(function()
      local _, addr = counting_server()
      local c = H.connect(addr)
      local m = {}
      m[1] = H.raised(function() return c:setkeepalive(-1) end)
      m[2] = H.raised(function() return c:setkeepalive("soon") end)
      m[3] = H.raised(function() return c:setkeepalive(10, 0) end)
      m[4] = H.raised(function() return c:setkeepalive(10, -5) end)
      m[5] = H.raised(function() return c:setkeepalive(10, 2.5) end)
      m[6] = H.raised(function() return c:setkeepalive(0 / 0) end)
      m[7] = H.raised(function() return netio.connect(addr, { pool = 1 }) end)
      m[8] = H.raised(function() return netio.connect(addr, { pool = true }) end)
      -- Misuse raises whatever the state: a closed conn too.
      c:close()
      m[9] = H.raised(function() return c:setkeepalive(10, 0) end)
      return m
    end)
    H.has("bad argument #1 to 'setkeepalive' (idle time must be a non-negative number)",
      msgs[1])
    H.has("bad argument #1 to 'setkeepalive' (number expected, got string)", msgs[2])
    H.has("bad argument #2 to 'setkeepalive' (pool size must be positive)", msgs[3])
    H.has("bad argument #2 to 'setkeepalive' (pool size must be positive)", msgs[4])
    H.has("bad argument #2 to 'setkeepalive' (number has no integer representation)",
      msgs[5])
    H.has("bad argument #1 to 'setkeepalive'", msgs[6])
    H.has("bad argument #2 to 'connect' (field 'pool' must be a string)", msgs[7])
    H.has("bad argument #2 to 'connect' (field 'pool' must be a string)", msgs[8])
    H.has("bad argument #2 to 'setkeepalive' (pool size must be positive)", msgs[9])
  end)

  it("setkeepalive_on_an_accepted_connection_raises", function()
    local msg = H.run(function()
      local _, s = H.pair()
      return H.raised(s.setkeepalive, s)
    end)
    H.has("only connections made by netio.connect can be pooled", msg)
  end)
end)
