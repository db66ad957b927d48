-- timeout_spec.lua: conn:settimeout, conn:settimeouts, per-call timeouts.
local H = require "helper"
local netio = H.netio

local function with_pair(body, limit)
  return H.run(function()
    local c, s = H.pair()
    return body(c, s)
  end, limit)
end

-- Fill c's output until bytes stay queued (the peer does not read), in
-- steps that never reach the high-water mark.
local function clog(c)
  return H.clog(c, 31)
end

describe("conn:settimeout", function()
  it("settimeout_limits_recv", function()
    local dt, d, err = with_pair(function(c)
      c:settimeout(0.05)
      return H.timed(c.recv, c, 1)
    end)
    assert.is_nil(d)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.04 and dt < 1, "recv waited " .. dt .. " s")
  end)

  it("settimeout_limits_every_recv_pattern", function()
    local r = with_pair(function(c)
      c:settimeout(0.03)
      local out = {}
      for _, p in ipairs({ "*l", "*a", 5 }) do
        out[#out + 1] = select(2, c:recv(p))
      end
      out[#out + 1] = select(2, c:recv())
      return out
    end)
    assert.are.same({ "timeout", "timeout", "timeout", "timeout" }, r)
  end)

  it("settimeout_nil_means_no_limit", function()
    local dt, d = with_pair(function(c, s)
      c:settimeout(0.01)
      c:settimeout(nil)
      netio.spawn(function()
        netio.sleep(0.15)
        s:send("eventually")
      end)
      return H.timed(c.recv, c, 10)
    end)
    assert.are.equal("eventually", d)
    assert.is_true(dt >= 0.1, "recv returned after " .. dt .. " s")
  end)

  it("default_is_no_limit", function()
    local d = with_pair(function(c, s)
      netio.spawn(function()
        netio.sleep(0.15)
        s:send("no limit")
      end)
      return c:recv(8)
    end)
    assert.are.equal("no limit", d)
  end)

  it("settimeout_does_not_break_a_recv_that_succeeds_in_time", function()
    local d = with_pair(function(c, s)
      c:settimeout(1)
      netio.spawn(function()
        netio.sleep(0.03)
        s:send("in time")
      end)
      return c:recv(7)
    end)
    assert.are.equal("in time", d)
  end)

  it("settimeout_limits_send_above_high_water", function()
    local dt, n, err = with_pair(function(c)
      c:settimeout(0.1)
      return H.timed(c.send, c, H.data(32 * 1024 * 1024, 32))
    end, 20)
    assert.is_nil(n)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.08 and dt < 3, "send waited " .. dt .. " s")
  end)

  it("a_timed_out_recv_leaves_the_connection_usable", function()
    local a, b = with_pair(function(c, s)
      local _, e = c:recv(4, 0.02)
      assert(s:send("good"))
      return e, c:recv(4, 2)
    end)
    assert.are.equal("timeout", a)
    assert.are.equal("good", b)
  end)
end)

describe("conn:settimeouts", function()
  it("settimeouts_read_limits_recv_only", function()
    local dt, d, err, sent = with_pair(function(c, s)
      c:settimeouts(nil, nil, 0.05)
      local t, rd, re = H.timed(c.recv, c, 1)
      -- The send side has no limit: a big send completes once read.
      local reader = netio.spawn(function() return s:recv(4 * 1024 * 1024, 10) end)
      local n = c:send(H.data(4 * 1024 * 1024, 33))
      reader:join(10)
      return t, rd, re, n
    end, 20)
    assert.is_nil(d)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.04 and dt < 1)
    assert.are.equal(4 * 1024 * 1024, sent)
  end)

  it("settimeouts_send_limits_send_only", function()
    local r = with_pair(function(c, s)
      c:settimeouts(nil, 0.1, nil)
      local out = {}
      out.dt, out.n, out.err = H.timed(c.send, c, H.data(32 * 1024 * 1024, 34))
      -- recv has no limit: it waits for data that comes after 0.25 s.
      netio.spawn(function()
        netio.sleep(0.25)
        s:send("late")
      end)
      out.rdt, out.d = H.timed(c.recv, c, 4)
      return out
    end, 20)
    assert.is_nil(r.n)
    assert.are.equal("timeout", r.err)
    assert.is_true(r.dt >= 0.08 and r.dt < 3, "send waited " .. r.dt .. " s")
    assert.are.equal("late", r.d)
    assert.is_true(r.rdt >= 0.2, "recv returned after " .. r.rdt .. " s")
  end)

  it("settimeouts_send_bounds_flush", function()
    local dt, ok, err = with_pair(function(c)
      clog(c)
      c:settimeouts(nil, 0.1, nil)
      return H.timed(c.flush, c)
    end, 20)
    assert.is_nil(ok)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.08 and dt < 3, "flush waited " .. dt .. " s")
  end)

  it("settimeouts_send_bounds_close_with_a_stuck_peer", function()
    local dt, ok = with_pair(function(c)
      clog(c)
      c:settimeouts(nil, 0.1, nil)
      return H.timed(c.close, c)
    end, 20)
    assert.are.equal(true, ok)
    assert.is_true(dt < 3, "close waited " .. dt .. " s")
  end)
end)

describe("per-call timeouts", function()
  it("recv_timeout_argument_overrides_a_longer_settimeout", function()
    local dt, d, err = with_pair(function(c)
      c:settimeout(5)
      return H.timed(c.recv, c, 1, 0.05)
    end)
    assert.is_nil(d)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.04 and dt < 1, "recv waited " .. dt .. " s")
  end)

  it("recv_timeout_argument_overrides_a_shorter_settimeout", function()
    local d = with_pair(function(c, s)
      c:settimeout(0.05)
      netio.spawn(function()
        netio.sleep(0.15)
        s:send("slow")
      end)
      return c:recv(4, 2)
    end)
    assert.are.equal("slow", d)
  end)

  it("recv_timeout_zero_returns_buffered_data_or_times_out_at_once", function()
    local r = with_pair(function(c, s)
      local out = {}
      out.dt1, out.d1, out.e1 = H.timed(c.recv, c, 3, 0)
      assert(s:send("now"))
      netio.sleep(0.05)
      out.d2 = c:recv(3, 0)
      return out
    end)
    assert.is_nil(r.d1)
    assert.are.equal("timeout", r.e1)
    assert.is_true(r.dt1 < 0.5)
    assert.are.equal("now", r.d2)
  end)

  it("flush_timeout_argument_overrides_settimeout", function()
    local dt, ok, err = with_pair(function(c)
      clog(c)
      c:settimeout(5)
      return H.timed(c.flush, c, 0.05)
    end, 20)
    assert.is_nil(ok)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.04 and dt < 1, "flush waited " .. dt .. " s")
  end)

  it("accept_and_join_timeouts_are_independent_of_connections", function()
    local e1, e2 = H.run(function()
      local l = H.listen()
      local t = netio.spawn(function() netio.sleep(0.2) end)
      return select(2, l:accept(0.02)), select(2, t:join(0.02))
    end)
    assert.are.equal("timeout", e1)
    assert.are.equal("timeout", e2)
  end)
end)

-- A timeout the engine cannot arm (its timer heap cannot grow: the test
-- switch NETIO_TEST_TIMER_HEAP=0 refuses every timer) fails the call with
-- "not enough memory" at once; it never becomes a wait without a limit.
describe("a timeout that cannot be armed", function()
  local HOST = os.getenv("NETIO_HOST")

  it("timeouts_that_cannot_be_armed_fail_with_not_enough_memory", function()
    if not HOST then pending("NETIO_HOST is not set") return end
    local src = table.concat({
      "local netio = require 'netio'",
      "local l = assert(netio.listen('127.0.0.1:0'))",
      "local _, port = l:getsockname()",
      "local addr = '127.0.0.1:' .. port",
      "local c = assert(netio.connect(addr))",
      "local s = assert(l:accept())",
      "print('recv', c:recv(1, 0.05))",
      "c:settimeout(0.05)",
      "print('settimeout', c:recv('*l'))",
      "print('sleep', netio.sleep(0.05))",
      "print('accept', l:accept(0.05))",
      "print('connect', netio.connect(addr, { timeout = 0.05 }))",
      "print('receive', netio.receive(0.05))",
      "print('join', netio.spawn(function() end):join(0.05))",
      "c:settimeout(nil)",
      "s:send('x\\n')",
      "print('no timeout', c:recv('*l'))",
      "c:close() s:close() l:close()",
    }, " ")
    local t0 = netio.now()
    local code, out, err = H.sh(H.env({ NETIO_TEST_TIMER_HEAP = "0" })
      .. H.quote(HOST) .. " -e " .. H.quote(src), 20)
    assert.are.equal(0, code, "stdout: " .. tostring(out) .. " stderr: " .. tostring(err))
    assert.are.equal("", err)
    assert.are.equal(table.concat({
      "recv\tnil\tnot enough memory\t",
      "settimeout\tnil\tnot enough memory\t",
      "sleep\tnil\tnot enough memory",
      "accept\tnil\tnot enough memory",
      "connect\tnil\tnot enough memory\tENOMEM",
      "receive\tnil\tnot enough memory",
      "join\tnil\tnot enough memory",
      "no timeout\tx",
      "" }, "\n"), out)
    assert.is_true(netio.now() - t0 < 10, "the script took " .. (netio.now() - t0) .. " s")
  end)

  -- netio.stop() gives tasks a grace period on a timer; without the timer
  -- the grace ends at once instead of never (a task waiting without a
  -- timeout would keep the run alive forever).
  it("a_stop_whose_grace_cannot_be_armed_ends_the_run_at_once", function()
    if not HOST then pending("NETIO_HOST is not set") return end
    local src = table.concat({
      "local netio = require 'netio'",
      "local l = assert(netio.listen('127.0.0.1:0'))",
      "local c = assert(netio.connect('127.0.0.1:' .. select(2, l:getsockname())))",
      "local s = assert(l:accept())",
      "netio.spawn(function() c:recv() print('recv returned') end)",
      "netio.spawn(function() netio.stop() end)",
    }, " ")
    local t0 = netio.now()
    local code, out, err = H.sh(H.env({ NETIO_TEST_TIMER_HEAP = "0" })
      .. H.quote(HOST) .. " -e " .. H.quote(src), 20)
    assert.are.equal(0, code, "stdout: " .. tostring(out) .. " stderr: " .. tostring(err))
    assert.is_true(netio.now() - t0 < 10, "the stop took " .. (netio.now() - t0) .. " s")
  end)
end)
