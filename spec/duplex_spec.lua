-- duplex_spec.lua: one reading task and one writing task per connection;
-- a second concurrent reader gets nil, "busy".
local H = require "helper"
local netio = H.netio

local function with_pair(body, limit)
  return H.run(function()
    local c, s = H.pair()
    return body(c, s)
  end, limit)
end

describe("full duplex", function()
  it("a_reader_and_a_writer_task_use_one_connection_at_once", function()
    -- The server echoes; the client writes 8 MiB from one task while another
    -- reads the echo. Neither side could finish if the two directions
    -- waited on each other.
    local n = 8 * 1024 * 1024
    local payload = H.data(n, 41)
    local sent, got = H.run(function()
      local _, port = H.server(H.echo)
      local c = H.connect("127.0.0.1:" .. port)
      local reader = netio.spawn(function() return H.recv_all(c, n, 10) end)
      local writer = netio.spawn(function()
        local total = 0
        for i = 1, n, 65536 do
          local k = assert(c:send(payload:sub(i, i + 65535)))
          total = total + k
        end
        return total
      end)
      local _, wn = writer:join(15)
      local _, rd = reader:join(15)
      return wn, rd
    end, 30)
    assert.are.equal(n, sent)
    H.same(payload, got, "echoed 8 MiB")
  end)

  it("a_writer_is_not_blocked_by_a_waiting_reader", function()
    local r = with_pair(function(c, s)
      local reader = netio.spawn(function() return c:recv(5, 2) end)
      netio.sleep(0.01)
      local dt, n = H.timed(c.send, c, "ping!")
      local got = s:recv(5, 2)
      assert(s:send("pong!"))
      local _, d = reader:join(3)
      return { dt = dt, n = n, got = got, d = d }
    end)
    assert.are.equal(5, r.n)
    assert.is_true(r.dt < 0.5)
    assert.are.equal("ping!", r.got)
    assert.are.equal("pong!", r.d)
  end)

  it("a_second_concurrent_reader_gets_nil_busy", function()
    local r = with_pair(function(c, s)
      local first = netio.spawn(function() return c:recv(6, 3) end)
      netio.sleep(0.02)
      local out = {}
      out.dt, out.d, out.err = H.timed(c.recv, c, 1, 1)
      local l1, l2 = c:recv("*l", 1)
      out.line_d, out.line_err = l1, l2
      assert(s:send("first!"))
      out.ok, out.first = first:join(3)
      -- Once the first reader is done, another task may read.
      assert(s:send("next"))
      local t = netio.spawn(function() return c:recv(4, 2) end)
      out.next = select(2, t:join(3))
      return out
    end)
    assert.is_nil(r.d)
    assert.are.equal("busy", r.err)
    assert.is_true(r.dt < 0.5, "busy came after " .. r.dt .. " s")
    assert.is_nil(r.line_d)
    assert.are.equal("busy", r.line_err)
    assert.is_true(r.ok)
    assert.are.equal("first!", r.first)
    assert.are.equal("next", r.next)
  end)

  it("a_second_writer_that_would_wait_gets_nil_busy", function()
    -- netio allows one writing task; the binding answers a second one
    -- that would have to wait at the high-water mark with nil, "busy"
    -- (lua/netio/init.lua).
    local r = with_pair(function(c)
      c:settimeouts(nil, 0.5, nil)
      local big = H.data(16 * 1024 * 1024, 44)
      local first = netio.spawn(function() return c:send(big) end)
      netio.sleep(0.02)
      local out = {}
      out.dt, out.n, out.err = H.timed(c.send, c, big)
      out.first = table.pack(first:join(3))
      return out
    end, 20)
    assert.is_nil(r.n)
    assert.are.equal("busy", r.err)
    assert.is_true(r.dt < 0.3, "busy came after " .. r.dt .. " s")
    assert.is_true(r.first[1], "the first writer did not end")
    assert.is_nil(r.first[2])
    assert.are.equal("timeout", r.first[3])
  end)

  it("a_reader_after_a_finished_reader_is_not_busy", function()
    local a, b = with_pair(function(c, s)
      assert(s:send("onetwo"))
      local t1 = netio.spawn(function() return c:recv(3, 2) end)
      local _, x = t1:join(2)
      local t2 = netio.spawn(function() return c:recv(3, 2) end)
      local _, y = t2:join(2)
      return x, y
    end)
    assert.are.equal("one", a)
    assert.are.equal("two", b)
  end)

  it("a_reader_that_timed_out_no_longer_holds_the_connection", function()
    local e1, d2 = with_pair(function(c, s)
      local t1 = netio.spawn(function() return select(2, c:recv(3, 0.03)) end)
      local _, e = t1:join(2)
      assert(s:send("abc"))
      local t2 = netio.spawn(function() return c:recv(3, 2) end)
      local _, d = t2:join(2)
      return e, d
    end)
    assert.are.equal("timeout", e1)
    assert.are.equal("abc", d2)
  end)

  it("both_ends_stream_at_once_without_deadlock", function()
    -- Each side writes 4 MiB while reading the other's 4 MiB: with the
    -- writer waiting at the high-water mark, only true duplex finishes.
    local n = 4 * 1024 * 1024
    local pa, pb = H.data(n, 42), H.data(n, 43)
    local ga, gb = with_pair(function(c, s)
      local ts = {
        netio.spawn(function() return c:send(pa) end),
        netio.spawn(function() return s:send(pb) end),
        netio.spawn(function() return H.recv_all(s, n, 10) end),
        netio.spawn(function() return H.recv_all(c, n, 10) end),
      }
      local res = {}
      for i, t in ipairs(ts) do res[i] = select(2, t:join(15)) end
      return res[3], res[4]
    end, 30)
    H.same(pa, ga, "client to server")
    H.same(pb, gb, "server to client")
  end)
end)
