-- spec/hostile_spec.lua: peers that attack a server the way a hostile
-- network does -- slowloris, resets right after a send, half closes, lines
-- of several MiB, garbage bytes, zero-length writes -- and the server, all
-- the while, still serving a well-behaved client. The peers are netio
-- connections in the same run (raw enough: they send whatever bytes the
-- test wants, reset with SO_LINGER 0 and half-close with shutdown).
-- Each test is bounded to a few seconds.
local H = require "helper"
local netio = H.netio

-- Hundreds of peers on Linux; fewer under Wine, whose sockets are slower.
local SCALE = H.windows and 0.25 or 1

-- A line server on netio.server: replies "you said <line>" to each line.
-- Records how each handler ended in `ends` (the error of its last recv),
-- and counts the handlers started in ends.started.
local function line_server(opts, ends)
  ends.started = 0
  local l = assert(netio.server("127.0.0.1:0", function(c)
    ends.started = ends.started + 1
    while true do
      local line, err, partial = c:recv("*l")
      if not line then
        ends[#ends + 1] = { err = err, partial = partial }
        return
      end
      local ok, serr = c:send("you said " .. line .. "\n")
      if not ok then
        ends[#ends + 1] = { err = serr, partial = "", sending = true }
        return
      end
    end
  end, opts))
  H.track(l)
  local _, port = l:getsockname()
  return l, port
end

-- A well-behaved client: one line, its reply, within `limit` seconds.
local function good_client(port, limit)
  local t0 = netio.now()
  local c = H.connect("127.0.0.1:" .. port, { timeout = limit })
  c:settimeout(limit)
  assert(c:send("ping\n"))
  local reply, err = c:recv("*l")
  c:close()
  assert(reply == "you said ping", ("a well-behaved client under attack expected"
    .. " its reply, got %s, %s"):format(tostring(reply), tostring(err)))
  return netio.now() - t0
end

describe("hostile peers", function()
  it("slowloris_peers_are_cut_by_idle_timeout_while_a_good_client_is_served", function()
    H.run(function()
      local ends = {}
      local _, port = line_server({ idle_timeout = 0.5 }, ends)
      local n = math.floor(300 * SCALE)
      local cut, pending = 0, n
      local t0 = netio.now()
      for i = 1, n do
        netio.spawn(function()
          local c = H.connect("127.0.0.1:" .. port)
          -- One byte of a line that never ends, then one more each 0.8 s:
          -- slower than the server's idle timeout.
          for k = 1, 10 do
            if not c:send(string.char(65 + (i + k) % 26)) then break end
            local d, err = c:recv(1, 0.8)
            if not d and err == "closed" then break end
          end
          local d, err = c:recv(1, 0)
          if not d and err == "closed" then cut = cut + 1 end
          c:close()
          pending = pending - 1
        end)
      end
      -- Meanwhile a good client is served, promptly, several times.
      netio.sleep(0.2)
      for _ = 1, 5 do
        local dt = good_client(port, 2)
        assert(dt < 1, ("a good client waited %.2f s for its reply under"
          .. " slowloris"):format(dt))
        netio.sleep(0.1)
      end
      while pending > 0 and netio.now() - t0 < 8 do netio.sleep(0.05) end
      assert(pending == 0, ("%d slowloris peers still running after 8 s"):format(pending))
      assert(cut == n, ("expected the server to cut all %d slowloris peers"
        .. " (idle_timeout 0.5 s), it cut %d"):format(n, cut))
      for _, e in ipairs(ends) do
        assert(e.err == "closed", "a cut handler's recv expected \"closed\", got "
          .. tostring(e.err))
      end
    end, 15)
  end)

  it("peers_that_reset_right_after_sending_leave_the_server_serving", function()
    H.run(function()
      local ends = {}
      local _, port = line_server(nil, ends)
      local n = math.floor(200 * SCALE)
      local done = 0
      for i = 1, n do
        netio.spawn(function()
          local c = H.connect("127.0.0.1:" .. port)
          -- A request, maybe half a line, then a reset (SO_LINGER 0).
          c:send(i % 2 == 0 and "hello\n" or ("half a li" .. i))
          if i % 3 == 0 then netio.sleep(0.01) end
          assert(c:setoption("linger", 0))
          c:close()
          done = done + 1
        end)
      end
      -- A connection reset before the server accepted it may be dropped by
      -- the system (Windows drops it; Linux hands it over): every
      -- connection accepted has its handler end.
      local t0 = netio.now()
      while (done < n or #ends < ends.started) and netio.now() - t0 < 5 do
        netio.sleep(0.02)
      end
      assert(done == n and #ends == ends.started and #ends > 0, ("expected %d reset"
        .. " peers and every handler (%d started) to end, got %d peers, %d handlers")
        :format(n, ends.started, done, #ends))
      for _, e in ipairs(ends) do
        assert(e.err == "closed", "a reset peer's handler expected \"closed\", got "
          .. tostring(e.err))
      end
      good_client(port, 2)
    end, 15)
  end)

  it("a_reset_while_the_server_sends_a_big_reply_ends_only_that_connection", function()
    H.run(function()
      local results = {}
      local big = H.data(16 * 1024 * 1024, 5)
      local l, port = H.listen()
      netio.spawn(function()
        while true do
          local c = l:accept()
          if not c then return end
          H.track(c)
          netio.spawn(function()
            c:settimeout(3)
            local ok, err = c:send(big)
            if ok then ok, err = c:flush() end
            results[#results + 1] = ok and "sent" or err
            c:close()
          end)
        end
      end)
      local n = math.floor(40 * SCALE)
      for _ = 1, n do
        local c = H.connect("127.0.0.1:" .. port)
        assert(c:recv(1000, 2))
        assert(c:setoption("linger", 0))
        c:close()
      end
      local t0 = netio.now()
      while #results < n and netio.now() - t0 < 5 do netio.sleep(0.02) end
      assert(#results == n, ("expected %d server sends to end, %d did"):format(n, #results))
      -- The kernel may have taken all 16 MiB before the reset ("sent");
      -- otherwise the send ends "closed". Never a hang or another error.
      local closed = 0
      for _, r in ipairs(results) do
        assert(r == "closed" or r == "sent", "a send to a peer that reset expected"
          .. " \"closed\" (or \"sent\"), got " .. tostring(r))
        if r == "closed" then closed = closed + 1 end
      end
      assert(closed > 0, "no send of 16 MiB to a peer that reset failed")
      local c = H.connect("127.0.0.1:" .. port)
      assert(c:recv(10, 2), "the server no longer serves after the resets")
    end, 15)
  end)

  it("a_half_closed_peer_still_reads_the_whole_reply", function()
    H.run(function()
      local _, port = H.server(function(c)
        c:settimeout(5)
        local req = assert(c:recv("*a")) -- until the peer's shutdown
        -- A reply much bigger than the socket buffers: the peer reads it
        -- after it closed its sending side.
        assert(c:send(("%d\n"):format(#req)))
        assert(c:send(H.data(2 * 1024 * 1024, #req % 7 + 1)))
      end)
      for i = 1, 20 do
        local c = H.connect("127.0.0.1:" .. port)
        c:settimeout(5)
        local n = 1000 * i
        assert(c:send(H.data(n, 3)))
        assert(c:shutdown())
        assert(c:send("late") == nil, "send after shutdown must fail")
        local head, err = c:recv("*l")
        assert(head == tostring(n), ("a half-closed peer expected the length"
          .. " line %d, got %s, %s"):format(n, tostring(head), tostring(err)))
        local body = assert(c:recv("*a"))
        H.same(H.data(2 * 1024 * 1024, n % 7 + 1), body, "reply to a half-closed peer")
        c:close()
      end
    end, 20)
  end)

  it("over_long_lines_fail_with_a_bounded_partial_and_the_server_stays_up", function()
    H.run(function()
      local ends = {}
      local _, port = line_server(nil, ends)
      local mib = 1024 * 1024
      for round = 1, 3 do
        local c = H.connect("127.0.0.1:" .. port)
        c:settimeout(5)
        -- 16 MiB with no LF, sent while the server reads; the server
        -- gives up on the line and closes.
        local flood = string.rep("x", 16 * mib)
        netio.spawn(function() c:send(flood) end)
        -- (The good clients' handlers end too, with "closed".)
        local function long_ends()
          local k = {}
          for _, e in ipairs(ends) do
            if e.err ~= "closed" then k[#k + 1] = e end
          end
          return k
        end
        local t0 = netio.now()
        while #long_ends() < round and netio.now() - t0 < 5 do netio.sleep(0.02) end
        local got = long_ends()
        assert(#got == round, ("round %d: the server's recv(\"*l\") never gave"
          .. " up on a 16 MiB line"):format(round))
        local e = got[round]
        assert(e.err == "line too long", "expected \"line too long\", got " .. tostring(e.err))
        assert(#e.partial >= mib and #e.partial <= 8 * mib,
          ("the partial of \"line too long\" should hold the 1 MiB line and"
          .. " what was buffered past it, at most 8 MiB of the 16; got %d bytes")
          :format(#e.partial))
        assert(not e.partial:find("[^x]"), "the partial holds bytes the peer never sent")
        c:setoption("linger", 0)
        c:close()
        good_client(port, 2)
      end
    end, 30)
  end)

  it("a_line_too_long_leaves_the_connection_usable", function()
    H.run(function()
      local c, s = H.pair()
      s:settimeout(5)
      local mib = 1024 * 1024
      local stream = string.rep("y", mib + 10) .. "\nnext line\n"
      netio.spawn(function() c:send(stream) end)
      local line, err, partial = s:recv("*l")
      assert(line == nil and err == "line too long",
        "expected \"line too long\", got " .. tostring(err))
      -- The partial is every byte buffered then, maybe past the long line;
      -- the next reads start right after it.
      H.same(stream:sub(1, #partial), partial, "the partial of \"line too long\"")
      local rest = stream:sub(#partial + 1)
      for want in rest:gmatch("([^\n]*)\n") do
        local got, e2 = s:recv("*l")
        assert(got == want, ("after \"line too long\" expected the line %q, got %s, %s")
          :format(want:sub(1, 40), tostring(got and got:sub(1, 40)), tostring(e2)))
      end
      -- And the connection still carries lines both ways.
      assert(c:send("third\n"))
      assert(s:recv("*l") == "third", "the connection is not usable after \"line too long\"")
      assert(s:send("back\n"))
      assert(c:recv("*l", 5) == "back", "the connection is not usable after \"line too long\"")
    end, 15)
  end)

  it("garbage_bytes_do_not_hurt_the_server", function()
    H.run(function()
      local ends = {}
      local _, port = line_server(nil, ends)
      local n = math.floor(50 * SCALE)
      local done = 0
      for i = 1, n do
        netio.spawn(function()
          local c = H.connect("127.0.0.1:" .. port)
          c:settimeout(5)
          -- Every byte value, NULs, CRs and LFs among them; then half close
          -- and drain the replies.
          c:send(H.data(4096 + i * 997, i % 5 + 1))
          c:shutdown()
          local rest, err = c:recv("*a")
          assert(rest, "a garbage peer's drain failed: " .. tostring(err))
          c:close()
          done = done + 1
        end)
      end
      local t0 = netio.now()
      while (done < n or #ends < n) and netio.now() - t0 < 8 do netio.sleep(0.02) end
      assert(done == n and #ends == n, ("expected %d garbage peers served, %d"
        .. " peers and %d handlers ended"):format(n, done, #ends))
      for _, e in ipairs(ends) do
        assert(e.err == "closed", "a garbage peer's handler expected \"closed\", got "
          .. tostring(e.err))
      end
      good_client(port, 2)
    end, 20)
  end)

  it("zero_length_writes_queue_nothing_and_keep_the_stream_intact", function()
    H.run(function()
      local c, s = H.pair()
      s:settimeout(5)
      local want = {}
      for i = 1, 200 do
        assert(c:send("") == 0, "send(\"\") must return 0")
        assert(c:send({}) == 0, "send({}) must return 0")
        assert(c:send({ "", "" }) == 0, "send({\"\", \"\"}) must return 0")
        local piece = tostring(i) .. ","
        assert(c:send({ "", piece, "" }) == #piece)
        want[#want + 1] = piece
      end
      assert(c:send("") == 0)
      c:shutdown()
      local got = assert(s:recv("*a"))
      H.same(table.concat(want), got, "the stream with zero-length writes among it")
      local st = c:getstats()
      assert(st.bytes_out == #got, ("bytes_out expected %d, got %d"):format(#got,
        st.bytes_out))
    end)
  end)

  it("peers_that_connect_and_write_nothing_end_their_handlers_cleanly", function()
    H.run(function()
      local ends = {}
      local _, port = line_server(nil, ends)
      local n = math.floor(200 * SCALE)
      for i = 1, n do
        local c = H.connect("127.0.0.1:" .. port)
        if i % 2 == 0 then c:shutdown() end
        if i % 3 == 0 then c:setoption("linger", 0) end
        c:close()
      end
      local t0 = netio.now()
      while #ends < n and netio.now() - t0 < 5 do netio.sleep(0.02) end
      assert(#ends == n, ("expected %d handlers to end, %d did"):format(n, #ends))
      for _, e in ipairs(ends) do
        assert(e.err == "closed" and e.partial == "",
          ("a silent peer's handler expected nil, \"closed\", \"\"; got %s, %q")
          :format(tostring(e.err), tostring(e.partial)))
      end
      good_client(port, 2)
    end, 15)
  end)
end)
