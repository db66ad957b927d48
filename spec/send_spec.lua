-- send_spec.lua: conn:send, water marks, send timeout, conn:flush.
local H = require "helper"
local netio = H.netio

local function with_pair(body, limit)
  return H.run(function()
    local c, s = H.pair()
    return body(c, s)
  end, limit)
end

describe("conn:send", function()
  it("send_string_returns_its_length_and_the_peer_gets_it", function()
    local n, got = with_pair(function(c, s)
      local sent = c:send("twelve bytes")
      return sent, s:recv(12, 2)
    end)
    assert.are.equal(12, n)
    assert.are.equal("twelve bytes", got)
  end)

  it("send_array_of_strings_sends_their_concatenation", function()
    local n, got = with_pair(function(c, s)
      local sent = c:send({ "one ", "two ", "", "three" })
      return sent, s:recv(13, 2)
    end)
    assert.are.equal(13, n)
    assert.are.equal("one two three", got)
  end)

  it("send_empty_string_and_empty_array_send_nothing", function()
    local a, b, got = with_pair(function(c, s)
      local n1 = c:send("")
      local n2 = c:send({})
      assert(c:send("!"))
      return n1, n2, s:recv(1, 2)
    end)
    assert.are.equal(0, a)
    assert.are.equal(0, b)
    assert.are.equal("!", got)
  end)

  it("send_keeps_the_order_of_many_small_sends", function()
    local got, want = with_pair(function(c, s)
      local t = {}
      for i = 1, 2000 do
        t[i] = i .. ","
        assert(c:send(t[i]))
      end
      local w = table.concat(t)
      return s:recv(#w, 5), w
    end)
    assert.are.equal(want, got)
  end)

  it("send_binary_bytes_intact", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local bytes = table.concat(all):rep(4)
    local got = with_pair(function(c, s)
      assert(c:send(bytes))
      return s:recv(#bytes, 2)
    end)
    assert.are.equal(bytes, got)
  end)

  it("send_huge_32_MiB_payload_arrives_intact", function()
    local n = 32 * 1024 * 1024
    local payload = H.data(n, 32)
    local sent, got = with_pair(function(c, s)
      local w = netio.spawn(function()
        local r = c:send(payload)
        c:close()
        return r
      end)
      -- Above the 16 MiB a recv may gather by default.
      assert(s:setoption("max-input", n))
      local d = s:recv("*a", 20)
      local _, r = w:join(5)
      return r, d
    end, 40)
    assert.are.equal(n, sent)
    H.same(payload, got, "32 MiB payload")
  end)

  it("send_huge_array_of_strings_arrives_intact", function()
    local parts = {}
    for i = 1, 64 do parts[i] = H.data(65536, i) end
    local want = table.concat(parts)
    local sent, got = with_pair(function(c, s)
      local w = netio.spawn(function() return c:send(parts) end)
      local d = s:recv(#want, 10)
      local _, r = w:join(5)
      return r, d
    end, 20)
    assert.are.equal(#want, sent)
    H.same(want, got, "array of 64 x 64 KiB")
  end)

  it("send_above_high_water_waits_until_the_peer_reads", function()
    -- 16 MiB is more than the kernel buffers of a loopback pair can hold,
    -- so more than the 1 MiB high-water mark stays queued.
    local n = 16 * 1024 * 1024
    local payload = H.data(n, 16)
    local r = with_pair(function(c, s)
      local done = false
      local w = netio.spawn(function()
        local x = c:send(payload)
        done = true
        return x
      end)
      netio.sleep(0.1)
      local res = { waiting = not done, queued = c:getstats().queued }
      res.data = s:recv(n, 10)
      local _, sent = w:join(5)
      res.sent = sent
      res.done = done
      return res
    end, 30)
    assert.is_true(r.waiting, "send returned while the peer was not reading")
    assert.is_true(r.queued > 256 * 1024,
      "queued while waiting: " .. tostring(r.queued))
    assert.is_true(r.done)
    assert.are.equal(n, r.sent)
    H.same(payload, r.data, "16 MiB after a high-water wait")
  end)

  it("send_below_high_water_returns_at_once_without_a_reader", function()
    local dt, n = with_pair(function(c)
      return H.timed(c.send, c, H.data(512 * 1024, 4))
    end)
    assert.are.equal(512 * 1024, n)
    assert.is_true(dt < 0.2, "send of 512 KiB took " .. dt .. " s")
  end)

  it("send_times_out_when_the_peer_does_not_read", function()
    local dt, n, err = with_pair(function(c)
      c:settimeout(0.1)
      local payload = H.data(32 * 1024 * 1024, 7)
      return H.timed(c.send, c, payload)
    end, 20)
    assert.is_nil(n)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.08 and dt < 3, "send gave up after " .. dt .. " s")
  end)

  it("send_after_close_returns_nil_closed", function()
    local n, err = with_pair(function(c)
      c:close()
      return c:send("late")
    end)
    assert.is_nil(n)
    assert.are.equal("closed", err)
  end)

  it("send_after_the_peer_closed_eventually_returns_nil_closed", function()
    local r = with_pair(function(c, s)
      s:close()
      assert(c:recv(nil, 2) == nil, "expected EOF")
      for i = 1, 200 do
        local n, err = c:send(("x"):rep(1024))
        if not n then return { err = err, i = i } end
        netio.sleep(0.005)
      end
      return { i = 200 }
    end)
    assert.are.equal("closed", r.err,
      "after " .. r.i .. " sends to a closed peer: " .. tostring(r.err))
  end)
end)

describe("conn:flush", function()
  it("flush_returns_true_once_everything_reached_the_kernel", function()
    local ok, queued, got = with_pair(function(c, s)
      local payload = H.data(4 * 1024 * 1024, 12)
      local reader = netio.spawn(function()
        return s:recv(#payload, 10)
      end)
      assert(c:send(payload))
      local f = c:flush(10)
      local q = c:getstats().queued
      local _, d = reader:join(10)
      H.same(payload, d, "flushed payload")
      return f, q, #d
    end, 20)
    assert.is_true(ok)
    assert.are.equal(0, queued)
    assert.are.equal(4 * 1024 * 1024, got)
  end)

  it("flush_with_nothing_queued_returns_true_at_once", function()
    local dt, ok = with_pair(function(c)
      return H.timed(c.flush, c, 1)
    end)
    assert.is_true(ok)
    assert.is_true(dt < 0.5)
  end)

  it("flush_times_out_when_the_peer_does_not_read", function()
    local dt, ok, err = with_pair(function(c)
      -- Fill the kernel buffers in steps below the high-water mark until
      -- output stays queued.
      H.clog(c, 13)
      return H.timed(c.flush, c, 0.1)
    end, 20)
    assert.is_nil(ok)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.08 and dt < 3, "flush gave up after " .. dt .. " s")
  end)

  it("a_big_send_while_a_flush_waits_does_not_take_the_flush_s_wake_up", function()
    local flushed, dt, sent = H.run(function()
      local c, s = H.pair()
      H.clog(c, 17)
      local t0 = netio.now()
      local f = netio.spawn(function()
        local ok, err = c:flush(8)
        return ok, err, netio.now() - t0
      end)
      netio.sleep(0.05)
      -- Above the high-water mark while the flush holds the writer slot:
      -- queued, and this send does not wait.
      local n = assert(c:send(H.data(2 * 1024 * 1024, 19)))
      local got = 0
      while got < 64 * 1024 * 1024 do
        local d = s:recv(65536, 0.5)
        if not d then break end
        got = got + #d
      end
      local _, ok, err, took = f:join(10)
      return ok or err, took, n
    end, 20)
    assert.are.equal(true, flushed)
    assert.are.equal(2 * 1024 * 1024, sent)
    assert.is_true(dt < 6, "the flush returned after " .. dt .. " s, its timeout was 8 s")
  end)

  it("flush_after_close_returns_nil_closed", function()
    local ok, err = with_pair(function(c)
      c:close()
      return c:flush(1)
    end)
    assert.is_nil(ok)
    assert.are.equal("closed", err)
  end)
end)
