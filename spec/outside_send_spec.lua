-- outside_send_spec.lua: netio.send(id, data) -- bytes for a connection by
-- its id, from a task of its own run (straight to the output queue) and
-- from netio threads (through the engine's inbox); the send limit
-- (conn:setoption("send-limit", n)) and "busy"; "closed"; misuse; sends
-- racing with close, accounted by netio.stats().
local H = require "helper"
local netio = H.netio
local has = H.has

local HOST = os.getenv("NETIO_HOST")

-- The misuse cases of netio.send and their messages (docs/api.md).
-- Each case calls n.send from a Lua function, so the name is 'send'.
-- Kept as source text: the same cases run in a task, in a netio thread
-- and outside any run.
local MISUSE_SRC = [[
  local n, id = ...
  n = n or require "netio"
  local cases = {
    { "bad argument #1 to 'send' (number has no integer representation)",
      function() return n.send(1.5, "x") end },
    { "bad argument #1 to 'send' (connection ids are positive)",
      function() return n.send(-1, "x") end },
    { "bad argument #1 to 'send' (connection ids are positive)",
      function() return n.send(0, "x") end },
    { "bad argument #1 to 'send' (connection id expected, got string)",
      function() return n.send("x", "x") end },
    { "bad argument #1 to 'send' (connection id expected, got nil)",
      function() return n.send(nil, "x") end },
    { "bad argument #1 to 'send' (connection id expected, got table)",
      function() return n.send({}, "x") end },
    { "bad argument #2 to 'send' (string expected at index 2, got boolean)",
      function() return n.send(id, { "a", true, "c" }) end },
    { "bad argument #2 to 'send' (string expected at index 1, got table)",
      function() return n.send(id, { {} }) end },
    { "bad argument #2 to 'send' (string or array of strings expected)",
      function() return n.send(id, true) end },
    { "bad argument #2 to 'send' (string or array of strings expected)",
      function() return n.send(id) end },
  }
  local out = {}
  for i, case in ipairs(cases) do
    local ok, err = pcall(case[2])
    out[i] = { want = case[1], ok = ok, err = tostring(err) }
  end
  return out
]]

local function check_misuse(results, where)
  assert.is_true(#results >= 10, where .. ": the misuse cases did not run")
  for i, r in ipairs(results) do
    assert.is_false(r.ok, ("%s, case %d: expected the error %q, the call"
      .. " returned %s"):format(where, i, r.want, r.err))
    has(r.want, r.err, where .. ", case " .. i)
  end
end

-- A 256 KiB piece numbered k: pieces in order are easy to check. Pieces
-- larger than the 64 KiB send limit of the "busy" tests fill the kernel
-- buffers in a few calls (a single call may exceed the limit when less
-- than the limit is waiting).
local PIECE = 256 * 1024
local PIECE_SRC = [[
  local function piece(k) return string.format("%08d", k):rep(32768) end
]]
local function piece(k) return string.format("%08d", k):rep(32768) end

-- The pieces 1..k, concatenated.
local function pieces(k)
  local t = {}
  for i = 1, k do t[i] = piece(i) end
  return table.concat(t)
end

-- 64 MiB where every MiB starts with its number (built in the task and in
-- the thread alike from a 1 MiB block).
local BIG_SRC = [[
  local function big(block)
    local t = {}
    for i = 1, 64 do t[i] = string.format("%07d\n", i) .. block:sub(9) end
    return table.concat(t)
  end
]]
local function big(block)
  local t = {}
  for i = 1, 64 do t[i] = string.format("%07d\n", i) .. block:sub(9) end
  return table.concat(t)
end

-- In a run: close the client c of a pair, let the server side s notice
-- (end of stream, then a send that fails once the reset came back).
-- Returns s's id and conn:send's failure message.
local function reset(c, s)
  c:close()
  assert(s:recv(nil, 2) == nil, "expected the end of the stream")
  for _ = 1, 200 do
    local n, err = s:send(("x"):rep(1024))
    if not n then return s:id(), err end
    netio.sleep(0.005)
  end
  return s:id(), "no failure after 200 sends"
end

describe("netio.send from a task of the connection's run", function()
  it("returns_true_and_the_bytes_keep_their_order_with_conn_send", function()
    local r = H.run(function()
      local c, s = H.pair()
      local id = s:id()
      local want, results = {}, {}
      for i = 1, 400 do
        local chunk = i .. ","
        want[#want + 1] = chunk
        if i % 2 == 0 then
          results[#results + 1] = netio.send(id, chunk)
        else
          assert(s:send(chunk), "conn:send failed")
        end
      end
      local w = table.concat(want)
      return { got = c:recv(#w, 5), want = w, results = results }
    end)
    for i, v in ipairs(r.results) do
      assert.are.equal(true, v, "netio.send #" .. i .. " should return true")
    end
    assert.are.equal(r.want, r.got,
      "the peer should get every piece in the order of the calls")
  end)

  it("sends_arrays_and_numbers_as_one_concatenated_piece", function()
    local r = H.run(function()
      local c, s = H.pair()
      local id = s:id()
      local a = netio.send(id, { "x", 1, 2.5, "", "y" })
      local b = netio.send(id, 42)
      local d = netio.send(id, { "z" })
      return { a = a, b = b, d = d, got = c:recv(9, 5) }
    end)
    assert.are.equal(true, r.a, "an array should be accepted")
    assert.are.equal(true, r.b, "a number should be accepted")
    assert.are.equal(true, r.d, "a one-element array should be accepted")
    assert.are.equal("x12.5y42z", r.got:sub(1, 9),
      "the elements should arrive concatenated, numbers as tostring writes them")
  end)

  it("empty_string_and_empty_array_return_true_and_send_nothing", function()
    local r = H.run(function()
      local c, s = H.pair()
      local id = s:id()
      local r1 = table.pack(netio.send(id, ""))
      local r2 = table.pack(netio.send(id, {}))
      local d, err = c:recv(1, 0.1)
      return { r1 = r1, r2 = r2, d = d, err = err }
    end)
    assert.are.same({ n = 1, true }, r.r1, "send(id, '') should return true")
    assert.are.same({ n = 1, true }, r.r2, "send(id, {}) should return true")
    assert.is_nil(r.d, "no byte should arrive after empty sends")
    assert.are.equal("timeout", r.err, "the peer's recv should time out")
  end)

  it("delivers_a_64_MiB_payload_whole_when_the_connection_is_idle", function()
    local block = H.data(1024 * 1024, 64)
    local want = big(block)
    local r = H.run(function()
      local c, s = H.pair()
      local ok = table.pack(netio.send(s:id(), want))
      local got, err = H.recv_all(c, #want, 20)
      return { ok = ok, got = got, err = err }
    end, 60)
    assert.are.same({ n = 1, true }, r.ok,
      "a 64 MiB send to an idle connection should return true")
    assert.is_nil(r.err, "the peer should read 64 MiB without error")
    H.same(want, r.got, "64 MiB from netio.send in a task")
  end)

  it("answers_busy_above_the_send_limit_and_loses_no_accepted_byte", function()
    local r = H.run(function()
      local c, s = H.pair()
      local id = s:id()
      assert.are.equal(true, s:setoption("send-limit", 64 * 1024))
      -- The peer does not read: the kernel buffers absorb some output
      -- first, so "busy" counts only once it stays after a pause (a short
      -- one lets the engine hand the queue to the kernel; a longer one
      -- confirms that the kernel takes no more).
      local k, busy_stayed = 0, false
      while k < 256 and not busy_stayed do -- at most 64 MiB
        local ok, err = netio.send(id, piece(k + 1))
        for _, pause in ipairs({ 0.02, 0.25 }) do
          if ok then break end
          assert(err == "busy", "expected true or nil, 'busy', got " .. tostring(err))
          netio.sleep(pause)
          ok, err = netio.send(id, piece(k + 1))
        end
        if ok then
          k = k + 1
        else
          assert(err == "busy", "expected nil, 'busy', got " .. tostring(err))
          busy_stayed = true
        end
      end
      local res = { k = k, busy_stayed = busy_stayed }
      res.got, res.err = H.recv_all(c, k * PIECE, 20)
      res.extra, res.extra_err = c:recv(1, 0.2)
      -- Once the peer read everything, there is room again.
      res.after = table.pack(netio.send(id, "!"))
      res.after_got = c:recv(1, 5)
      return res
    end, 60)
    assert.is_true(r.busy_stayed,
      "netio.send should answer 'busy' with a 64 KiB limit and a peer that does not read"
      .. " (accepted " .. r.k .. " pieces)")
    assert.is_nil(r.err, "the peer should read every accepted byte")
    H.same(pieces(r.k), r.got, "the accepted pieces, in order")
    assert.is_nil(r.extra, "nothing refused as 'busy' should have been sent")
    assert.are.same({ n = 1, true }, r.after,
      "netio.send should return true once the peer has read")
    assert.are.equal("!", r.after_got, "the byte sent after the drain should arrive")
  end)

  it("a_single_send_may_exceed_the_limit_when_nothing_waits", function()
    local r = H.run(function()
      local c, s = H.pair()
      assert(s:setoption("send-limit", 64 * 1024))
      local payload = H.data(1024 * 1024, 5)
      local ok = table.pack(netio.send(s:id(), payload))
      return { ok = ok, same = H.recv_all(c, #payload, 10) == payload }
    end)
    assert.are.same({ n = 1, true }, r.ok,
      "1 MiB to an idle connection with a 64 KiB limit should be accepted")
    assert.is_true(r.same, "the 1 MiB should arrive intact")
  end)

  it("a_send_limit_of_zero_refuses_every_nonempty_send", function()
    local r = H.run(function()
      local c, s = H.pair()
      assert.are.equal(true, s:setoption("send-limit", 0))
      local busy = table.pack(netio.send(s:id(), "x"))
      local empty = table.pack(netio.send(s:id(), ""))
      local d = c:recv(1, 0.1)
      return { busy = busy, empty = empty, d = d }
    end)
    assert.are.same({ n = 2, nil, "busy" }, r.busy,
      "with a send limit of 0, netio.send should answer nil, 'busy'")
    assert.are.same({ n = 1, true }, r.empty,
      "an empty string only checks the id: true")
    assert.is_nil(r.d, "nothing should be sent")
  end)

  it("returns_closed_for_a_connection_closed_by_its_owner", function()
    local r = H.run(function()
      local _, s = H.pair()
      local id = s:id()
      s:close()
      return { a = table.pack(netio.send(id, "x")),
               b = table.pack(netio.send(id, "")) }
    end)
    assert.are.same({ n = 2, nil, "closed" }, r.a,
      "netio.send to a closed connection should return nil, 'closed'")
    assert.are.same({ n = 2, nil, "closed" }, r.b,
      "an empty send to a closed connection should return nil, 'closed'")
  end)

  it("returns_closed_while_a_closed_connection_still_flushes", function()
    local r = H.run(function()
      local _, s = H.pair()
      local id = s:id()
      H.clog(s)
      s:close()
      local in_task = table.pack(netio.send(id, "x"))
      local t = netio.thread(function(cid)
        return table.pack(require("netio").send(cid, "x"))
      end, id)
      local _, in_thread = t:join(5)
      return { in_task = in_task, in_thread = in_thread }
    end, 20)
    assert.are.same({ n = 2, nil, "closed" }, r.in_task,
      "a connection closed with output still queued counts as closed (task)")
    assert.are.same({ n = 2, nil, "closed" }, r.in_thread,
      "a connection closed with output still queued counts as closed (thread)")
  end)

  it("returns_closed_for_an_id_that_was_never_valid", function()
    local r = H.run(function()
      local _ = H.pair() -- an engine with connections
      return table.pack(netio.send(12345, "x"))
    end)
    assert.are.same({ n = 2, nil, "closed" }, r,
      "netio.send(12345, 'x') should return nil, 'closed'")
  end)

  it("returns_closed_for_the_id_of_a_previous_run", function()
    local old = H.run(function()
      local _, s = H.pair()
      return s:id()
    end)
    local outside = table.pack(netio.send(old, "x"))
    local r = H.run(function()
      local c, s = H.pair()
      local res = { in_task = table.pack(netio.send(old, "stale")) }
      local t = netio.thread(function(id)
        return table.pack(require("netio").send(id, "stale"))
      end, old)
      res.in_thread = select(2, t:join(5))
      res.new_id = s:id()
      res.d = c:recv(1, 0.1)
      return res
    end)
    assert.are.same({ n = 2, nil, "closed" }, outside,
      "outside any run, the id of a previous run should give nil, 'closed'")
    assert.are.same({ n = 2, nil, "closed" }, r.in_task,
      "in a later run (task), the id of a previous run should give nil, 'closed'")
    assert.are.same({ n = 2, nil, "closed" }, r.in_thread,
      "in a later run (thread), the id of a previous run should give nil, 'closed'")
    assert.are_not.equal(old, r.new_id, "a new connection should not reuse the old id")
    assert.is_nil(r.d, "a connection of the new run should not get stale bytes")
  end)

  it("returns_closed_for_12345_outside_any_run", function()
    assert.are.same({ n = 2, nil, "closed" }, table.pack(netio.send(12345, "x")),
      "netio.send outside a run with an unknown id should return nil, 'closed'")
  end)

  it("returns_closed_once_the_peer_reset_the_connection", function()
    local r = H.run(function()
      local id, failed = reset(H.pair())
      return { failed = failed, res = table.pack(netio.send(id, "x")) }
    end)
    assert.are.equal("closed", r.failed,
      "conn:send should report the reset connection as 'closed'")
    assert.are.same({ n = 2, nil, "closed" }, r.res,
      "netio.send (task) to a connection the peer reset should return nil, 'closed'")
  end)

  it("returns_closed_in_a_thread_once_the_peer_reset_the_connection", function()
    local r = H.run(function()
      local id, failed = reset(H.pair())
      local t = netio.thread(function(cid)
        return table.pack(require("netio").send(cid, "x"))
      end, id)
      return { failed = failed, res = select(2, t:join(5)) }
    end)
    assert.are.equal("closed", r.failed,
      "conn:send should report the reset connection as 'closed'")
    assert.are.same({ n = 2, nil, "closed" }, r.res,
      "netio.send (thread) to a connection the peer reset should return nil, 'closed'")
  end)

  it("bytes_accepted_before_the_peer_reset_are_sent_or_counted", function()
    -- "they are never silently lost": every accepted byte was handed to
    -- the system (bytes_out) or is counted as dropped.
    local r = H.run(function()
      local c, s = H.pair()
      local id = s:id()
      c:close()
      assert(s:recv(nil, 2) == nil, "expected the end of the stream")
      local accepted = 0
      for _ = 1, 200 do
        local ok = netio.send(id, ("y"):rep(1000))
        if not ok then break end
        accepted = accepted + 1000
        netio.sleep(0.005)
      end
      local st = s:getstats()
      local out = st and st.bytes_out or 0
      s:close()
      netio.sleep(0.05)
      local stats = netio.stats()
      return { accepted = accepted, out = out, od = stats.outside_dropped,
               db = stats.dropped_bytes }
    end)
    assert.are.equal(r.accepted, r.out + r.od + r.db,
      ("accepted %d bytes: expected bytes_out (%d) + outside_dropped (%d) +"
       .. " dropped_bytes (%d) to account for all of them"):format(
        r.accepted, r.out, r.od, r.db))
  end)

  it("raises_on_misuse", function()
    local results = H.run(function()
      local _, s = H.pair()
      return assert(load(MISUSE_SRC))(netio, s:id())
    end)
    check_misuse(results, "in a task")
  end)

  it("raises_on_misuse_outside_any_run", function()
    check_misuse(assert(load(MISUSE_SRC))(netio, 12345), "outside a run")
  end)
end)

describe("netio.send from a netio thread", function()
  it("bytes_arrive_in_the_order_of_the_calls", function()
    local r = H.run(function()
      local c, s = H.pair()
      local t = netio.thread(function(id)
        local n = require "netio"
        local bad = 0
        for i = 1, 2000 do
          local ok, err = n.send(id, i .. ",")
          while not ok and err == "busy" do
            n.receive(0.001)
            ok, err = n.send(id, i .. ",")
          end
          if not ok then bad = bad + 1 end
        end
        return bad
      end, s:id())
      local want = {}
      for i = 1, 2000 do want[i] = i .. "," end
      want = table.concat(want)
      local got = c:recv(#want, 10)
      return { joined = table.pack(t:join(10)), got = got, want = want }
    end, 20)
    assert.are.same({ n = 2, true, 0 }, r.joined,
      "every netio.send from the thread should return true")
    assert.are.equal(r.want, r.got, "the bytes should arrive in the order of the calls")
  end)

  it("four_threads_2000_messages_into_10_connections_keep_per_thread_order", function()
    local threads, per_thread, nconns = 4, 2000, 10
    local r = H.run(function()
      local ids, readers = {}, {}
      for j = 1, nconns do
        local c, s = H.pair()
        ids[j] = s:id()
        readers[j] = netio.spawn(function()
          local last, lines, bad = {}, 0, nil
          local want = threads * per_thread // nconns
          while lines < want do
            local line, err = c:recv("*l", 10)
            if not line then
              return lines, "recv: " .. tostring(err)
            end
            local k, i = line:match("^(%d+):(%d+)$")
            k, i = tonumber(k), tonumber(i)
            if not k then return lines, "malformed line " .. line end
            if i <= (last[k] or 0) then
              bad = bad or ("thread %d: %d after %d"):format(k, i, last[k])
            end
            last[k] = i
            lines = lines + 1
          end
          return lines, bad
        end)
      end
      local ts = {}
      for k = 1, threads do
        ts[k] = netio.thread(function(k_, n_, conns)
          local n = require "netio"
          local refused = 0
          for i = 1, n_ do
            local id = conns[(i % #conns) + 1]
            local msg = k_ .. ":" .. i .. "\n"
            local ok, err = n.send(id, msg)
            while not ok and err == "busy" do
              n.receive(0.001)
              ok, err = n.send(id, msg)
            end
            if not ok then refused = refused + 1 end
          end
          return refused
        end, k, per_thread, ids)
      end
      local res = { refused = {}, lines = 0, why = {} }
      for k = 1, threads do
        local ok, refused = ts[k]:join(10)
        res.refused[k] = ok and refused or ("join: " .. tostring(refused))
      end
      for j = 1, nconns do
        local ok, lines, why = readers[j]:join(10)
        res.lines = res.lines + (ok and lines or 0)
        if why then res.why[#res.why + 1] = "conn " .. j .. ": " .. tostring(why) end
      end
      return res
    end, 30)
    for k = 1, threads do
      assert.are.equal(0, r.refused[k], "thread " .. k .. " should have every send accepted")
    end
    assert.are.equal(threads * per_thread, r.lines, "every message should arrive once")
    assert.are.same({}, r.why, "each thread's messages should keep their order")
  end)

  it("sends_arrays_numbers_and_empty_strings", function()
    local r = H.run(function()
      local c, s = H.pair()
      local id = s:id()
      local t = netio.thread(function(cid)
        local n = require "netio"
        return { table.pack(n.send(cid, { "a", 1, "", 2.5 })),
                 table.pack(n.send(cid, 7)),
                 table.pack(n.send(cid, "")),
                 table.pack(n.send(cid, {})) }
      end, id)
      local _, res = t:join(5)
      local got = c:recv(6, 5)
      local more = c:recv(1, 0.1)
      return { res = res, got = got, more = more }
    end)
    assert.are.same({ n = 1, true }, r.res[1], "an array should be accepted")
    assert.are.same({ n = 1, true }, r.res[2], "a number should be accepted")
    assert.are.same({ n = 1, true }, r.res[3], "an empty string to an open id: true")
    assert.are.same({ n = 1, true }, r.res[4], "an empty array to an open id: true")
    assert.are.equal("a12.57", r.got:sub(1, 6), "the pieces should arrive concatenated")
    assert.is_nil(r.more, "nothing more than the 6 bytes should arrive")
  end)

  it("delivers_a_64_MiB_payload_whole_when_the_connection_is_idle", function()
    local block = H.data(1024 * 1024, 65)
    local want = big(block)
    local r = H.run(function()
      local c, s = H.pair()
      local t = netio.thread(assert(load(BIG_SRC .. [[
        local id, block = ...
        return table.pack(require("netio").send(id, big(block)))
      ]])), s:id(), block)
      local got, err = H.recv_all(c, #want, 30)
      local _, res = t:join(10)
      return { res = res, got = got, err = err }
    end, 60)
    assert.are.same({ n = 1, true }, r.res,
      "a 64 MiB netio.send from a thread to an idle connection should return true")
    assert.is_nil(r.err, "the peer should read 64 MiB without error")
    H.same(want, r.got, "64 MiB from netio.send in a thread")
  end)

  it("answers_busy_above_the_send_limit_and_loses_no_accepted_byte", function()
    local r = H.run(function()
      local c, s = H.pair()
      local id = s:id()
      assert.are.equal(true, s:setoption("send-limit", 64 * 1024))
      local t = netio.thread(assert(load(PIECE_SRC .. [[
        local n = require "netio"
        local id = ...
        local k = 0
        while k < 256 do
          local ok, err = n.send(id, piece(k + 1))
          -- n.receive(t) is a sleep here: the mailbox stays empty.
          for _, pause in ipairs({ 0.02, 0.25 }) do
            if ok or err ~= "busy" then break end
            n.receive(pause)
            ok, err = n.send(id, piece(k + 1))
          end
          if ok then
            k = k + 1
          elseif err == "busy" then
            return k, "busy"
          else
            return k, "unexpected " .. tostring(err)
          end
        end
        return k, "never busy"
      ]])), id)
      local _, k, how = t:join(30)
      local res = { k = k, how = how }
      res.got, res.err = H.recv_all(c, k * PIECE, 20)
      res.extra = c:recv(1, 0.2)
      local t2 = netio.thread(function(cid)
        return table.pack(require("netio").send(cid, "!"))
      end, id)
      res.after = select(2, t2:join(5))
      res.after_got = c:recv(1, 5)
      return res
    end, 60)
    assert.are.equal("busy", r.how,
      "netio.send from a thread should answer 'busy' with a 64 KiB limit"
      .. " and a peer that does not read (accepted " .. tostring(r.k) .. " pieces)")
    assert.is_nil(r.err, "the peer should read every accepted byte")
    H.same(pieces(r.k), r.got, "the accepted pieces, in order")
    assert.is_nil(r.extra, "nothing refused as 'busy' should have been sent")
    assert.are.same({ n = 1, true }, r.after,
      "netio.send from a thread should return true once the peer has read")
    assert.are.equal("!", r.after_got, "the byte sent after the drain should arrive")
  end)

  it("returns_closed_for_a_closed_connection_and_for_12345", function()
    local r = H.run(function()
      local _, s = H.pair()
      local id = s:id()
      s:close()
      local t = netio.thread(function(cid)
        local n = require "netio"
        return { table.pack(n.send(cid, "x")), table.pack(n.send(cid, "")),
                 table.pack(n.send(12345, "x")), table.pack(n.send(12345, "")) }
      end, id)
      return select(2, t:join(5))
    end)
    assert.are.same({ n = 2, nil, "closed" }, r[1], "closed connection: nil, 'closed'")
    assert.are.same({ n = 2, nil, "closed" }, r[2],
      "empty send to a closed connection: nil, 'closed'")
    assert.are.same({ n = 2, nil, "closed" }, r[3], "id 12345: nil, 'closed'")
    assert.are.same({ n = 2, nil, "closed" }, r[4], "empty send to id 12345: nil, 'closed'")
  end)

  it("raises_on_misuse", function()
    local r = H.run(function()
      local _, s = H.pair()
      local t = netio.thread(MISUSE_SRC, nil, s:id())
      return table.pack(t:join(5))
    end)
    assert.are.equal(true, r[1], "the thread should run: " .. tostring(r[2]))
    check_misuse(r[2], "in a thread")
  end)

  it("racing_with_close_never_crashes_and_accounts_for_every_accepted_byte", function()
    -- A thread sends numbered pieces as fast as it can while a task closes
    -- the connection at a different moment in each round. The peer reads
    -- until the end of the stream.
    for round = 1, 30 do
      local r = H.run(function()
        local c, s = H.pair()
        local id = s:id()
        local reader = netio.spawn(function() return c:recv("*a", 15) end)
        local t = netio.thread(function(cid)
          local n = require "netio"
          local accepted, k = 0, 0
          local deadline = n.now() + 10
          while n.now() < deadline do
            local p = string.format("%08d", k + 1):rep(64)
            local ok, err = n.send(cid, p)
            if ok then
              k = k + 1
              accepted = accepted + #p
            elseif err == "busy" then
              n.receive(0.001)
            else
              return accepted, err
            end
          end
          return accepted, "still open after 10 s"
        end, id)
        netio.sleep(0.002 * ((round - 1) % 10))
        s:close()
        local joined, accepted, how = t:join(15)
        local _, data, err = reader:join(15)
        local st = netio.stats()
        return { joined = joined, accepted = accepted, how = how, data = data,
                 err = err, od = st.outside_dropped, db = st.dropped_bytes }
      end, 40)
      local where = "round " .. round .. ": "
      assert.are.equal(true, r.joined, where .. "the sending thread should end normally")
      assert.are.equal("closed", r.how, where .. "the thread should eventually see 'closed'")
      assert.is_nil(r.err, where .. "the peer should read until the end of the stream")
      local data = r.data
      assert.are.equal(0, #data % 512, where .. "only whole pieces should arrive")
      for i = 1, #data // 512 do
        local want = string.format("%08d", i):rep(64)
        if data:sub((i - 1) * 512 + 1, i * 512) ~= want then
          error(where .. "piece " .. i .. " should be the " .. i .. "th piece sent")
        end
      end
      assert.are.equal(r.accepted, #data + r.od + r.db,
        ("%saccepted %d bytes: expected received (%d) + outside_dropped (%d)"
         .. " + dropped_bytes (%d) to account for all"):format(
          where, r.accepted, #data, r.od, r.db))
    end
  end)
end)

describe("netio.stats", function()
  it("raises_outside_a_run", function()
    local ok, err = pcall(netio.stats)
    assert.is_false(ok, "netio.stats outside a run should raise")
    assert.are.equal("netio: stats must be called from a netio task", err)
  end)

  it("counts_open_connections_with_integer_fields", function()
    local r = H.run(function()
      local before = netio.stats()
      local c, s = H.pair()
      local during = netio.stats()
      c:close()
      s:close()
      local after = netio.stats()
      return { before = before, during = during, after = after }
    end)
    for _, name in ipairs({ "conns", "dropped_bytes", "outside_dropped" }) do
      assert.are.equal("integer", math.type(r.before[name]),
        "stats()." .. name .. " should be an integer")
    end
    assert.are.equal(0, r.before.conns, "no connection is open at the start of a run")
    assert.are.equal(2, r.during.conns, "a connected pair is 2 open connections")
    assert.are.equal(0, r.after.conns, "both closed: 0 open connections")
    assert.are.equal(0, r.after.dropped_bytes, "nothing was dropped")
    assert.are.equal(0, r.after.outside_dropped, "nothing was dropped")
    assert.are.equal("integer", math.type(r.after.inbox_kept),
      "stats().inbox_kept should be an integer")
  end)

  -- The inbox keeps a vector a flood grew while batches use it, and for a
  -- second after they stop doing so (its senders would otherwise grow the
  -- next from fresh pages); then it goes back to the allocator.
  it("inbox_kept_holds_a_flood_vector_for_a_second_then_gives_it_back", function()
    local N, SIZE = 20000, 64
    local r = H.run(function()
      local c, s = H.pair()
      local id = s:id()
      local reader = netio.spawn(function() return c:recv(N * SIZE + 2, 30) end)
      -- One batch: the thread sends everything while this task holds the
      -- worker (no yield until the thread is done).
      local flood = netio.thread(function(cid, n, size)
        local net = require "netio"
        local msg = ("m"):rep(size)
        for _ = 1, n do assert(net.send(cid, msg)) end
        return true
      end, id, N, SIZE)
      local t0 = netio.now()
      while flood:status() == "running" and netio.now() - t0 < 60 do end
      local status = flood:status()
      assert(flood:join(10))
      netio.sleep(0.05)
      local after_flood, t1 = netio.stats().inbox_kept, netio.now()
      -- Two single sends in two batches: each vector is delivered once
      -- with a small part of it used.
      for _ = 1, 2 do
        local one = netio.thread(function(cid)
          return require("netio").send(cid, "x")
        end, id)
        assert(one:join(10))
        netio.sleep(0.02)
      end
      local kept, t2 = netio.stats().inbox_kept, netio.now()
      -- Small batches for over a second: after the second, the flood's
      -- vector comes back with a small part used and goes.
      local drip = netio.thread(function(cid)
        local net = require "netio"
        local stop = net.now() + 1.3
        while net.now() < stop do
          net.receive(0.02)
          assert(net.send(cid, "y"))
        end
        return true
      end, id)
      assert(drip:join(10))
      netio.sleep(0.05)
      local given_back = netio.stats().inbox_kept
      local _, got = reader:join(30)
      c:close()
      s:close()
      return { status = status, after_flood = after_flood, kept = kept,
               within = t2 - t1, given_back = given_back,
               got = type(got) == "string" and #got or tostring(got) }
    end, 60)
    assert.are.equal("done", r.status, "the flooding thread should end within 60 s")
    assert.is_true(r.after_flood >= N * SIZE,
      ("a batch of %d sends of %d bytes needs a vector of at least %d bytes,"
       .. " inbox_kept is %d"):format(N, SIZE, N * SIZE, r.after_flood))
    if r.within < 0.9 then
      assert.is_true(r.kept >= r.after_flood,
        ("two small batches %.2f s after the flood: its vector should be kept"
         .. " (%d bytes), inbox_kept is %d"):format(r.within, r.after_flood, r.kept))
    end
    assert.is_true(r.given_back <= 256 * 1024,
      ("over a second of small batches later the vector should be given back,"
       .. " inbox_kept is %d"):format(r.given_back))
    assert.are.equal(N * SIZE + 2, r.got, "every byte sent should arrive")
  end)

  it("dropped_bytes_counts_output_left_when_the_close_grace_ran_out", function()
    if not HOST or HOST == "" then pending("NETIO_HOST is not set") return end
    local src = [[
      local netio = require "netio"
      local l = assert(netio.listen("127.0.0.1:0"))
      local _, port = l:getsockname()
      local c = assert(netio.connect("127.0.0.1:" .. port))
      local s = assert(l:accept(5))
      local chunk = ("z"):rep(256 * 1024)
      local q = 0
      for _ = 1, 64 do
        assert(s:send(chunk))
        netio.sleep(0.01)
        q = s:getstats().queued
        if q > 0 then
          netio.sleep(0.25)
          q = s:getstats().queued
          if q > 0 then break end
        end
      end
      s:close()
      netio.sleep(1)
      print(q, netio.stats().dropped_bytes)
      c:close()
    ]]
    local path = H.write(H.tmpname(), src)
    local code, out, err = H.sh(H.env({ NETIO_GRACE = "0.2" }) .. H.quote(HOST)
      .. " " .. H.quote(path), 30)
    os.remove(path)
    assert.are.equal(0, code, "the host should exit with 0: " .. tostring(err))
    local q, dropped = (out or ""):match("^(%d+)%s+(%d+)")
    q, dropped = tonumber(q), tonumber(dropped)
    assert(q and q > 0, "the script should have output left queued: " .. tostring(out))
    assert.is_true(dropped > 0 and dropped <= q,
      ("dropped_bytes should count the %d bytes left queued once NETIO_GRACE"
       .. " (0.2 s) ran out, got %d"):format(q, dropped))
  end)
end)
