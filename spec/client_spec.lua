-- client_spec.lua: netio.client -- written to before it is connected, from
-- tasks and other threads, in order; reconnects with back-off after the
-- server restarts, keeping its id; close ends it for good; bad input.

local H = require "helper"
local netio = H.netio

-- Read lines from s until n came or the timeout.
local function lines(s, n, timeout)
  local out = {}
  while #out < n do
    local l = s:recv("*l", timeout or 5)
    if not l then break end
    out[#out + 1] = l
  end
  return out
end

describe("netio.client", function()
  it("delivers_what_was_sent_before_the_first_connect_in_order", function()
    local r = H.run(function()
      -- A port nobody listens on yet: the client retries until it does.
      local l0, port = H.listen()
      l0:close()
      local cl = netio.client("127.0.0.1:" .. port, function(c)
        while c:recv() do end
      end, { reconnect = { min = 0.02, max = 0.05 } })
      local id = cl:id()
      assert(cl:send("one\n"))
      local t = netio.thread(function(cid)
        local n = require "netio"
        for i = 1, 3 do assert(n.send(cid, ("thread %d\n"):format(i))) end
        return true
      end, id)
      assert(t:join(5))
      assert(cl:send({ "two", "\n" }))
      netio.sleep(0.1)
      local l = H.listen("127.0.0.1:" .. port)
      local s = assert(l:accept(5))
      H.track(s)
      local got = lines(s, 5)
      cl:close()
      return got
    end)
    assert.are.same({ "one", "thread 1", "thread 2", "thread 3", "two" }, r,
      "everything sent before the connect, in the order it was sent")
  end)

  it("reconnects_after_the_server_restarts_and_keeps_its_id", function()
    local r = H.run(function()
      local l, port = H.listen()
      local connects = 0
      local cl = netio.client("127.0.0.1:" .. port, function(c)
        connects = connects + 1
        while c:recv() do end
      end, { reconnect = { min = 0.02, max = 0.1 } })
      local id = cl:id()
      local s1 = H.track(assert(l:accept(5)))
      cl:send("first\n")
      local a = s1:recv("*l", 5)
      -- The server goes away, then comes back on the same port.
      s1:close()
      l:close()
      netio.sleep(0.2)
      assert(netio.send(id, "while down\n"))
      local l2 = H.listen("127.0.0.1:" .. port)
      local s2 = H.track(assert(l2:accept(5)))
      local b = s2:recv("*l", 5)
      cl:send("second\n")
      local c = s2:recv("*l", 5)
      local same = cl:id() == id
      cl:close()
      return { a = a, b = b, c = c, same = same, connects = connects }
    end, 20)
    assert.are.equal("first", r.a)
    assert.are.equal("while down", r.b, "sent while disconnected, delivered on reconnect")
    assert.are.equal("second", r.c)
    assert.is_true(r.same, "the id stays the same across reconnects")
    assert.is_true(r.connects >= 2, "the handler ran for each connection")
  end)

  it("without_reconnect_connects_once_and_then_is_closed", function()
    local r = H.run(function()
      local l, port = H.listen()
      local ran = 0
      local cl = netio.client("127.0.0.1:" .. port, function()
        ran = ran + 1
      end)
      local s = H.track(assert(l:accept(5)))
      local _, err = s:recv(1, 5)
      netio.sleep(0.05)
      return { ran = ran, err = err, send = table.pack(cl:send("x")) }
    end)
    assert.are.equal(1, r.ran)
    assert.are.equal("closed", r.err, "the connection closes when the handler returns")
    assert.are.same({ n = 2, nil, "closed" }, r.send, "the client is done")
  end)

  it("close_ends_it_for_good", function()
    local r = H.run(function()
      local l, port = H.listen()
      local cl = netio.client("127.0.0.1:" .. port, function(c)
        while c:recv() do end
      end, { reconnect = { min = 0.01, max = 0.02 } })
      local s = H.track(assert(l:accept(5)))
      cl:close()
      local _, err = s:recv(1, 5)
      local again = l:accept(0.3)
      return { err = err, again = again, send = table.pack(cl:send("x")),
               close = cl:close() }
    end)
    assert.are.equal("closed", r.err)
    assert.is_nil(r.again, "no reconnect after close")
    assert.are.same({ n = 2, nil, "closed" }, r.send)
    assert.is_true(r.close, "closing twice is fine")
  end)

  it("an_address_that_never_resolves_only_keeps_retrying", function()
    local took, r = H.timed(H.run, function()
      local cl = netio.client("no-such-host.invalid:80", function() end,
        { reconnect = { min = 0.01, max = 0.02 }, timeout = 1 })
      netio.sleep(0.2)
      local ok = cl:send("queued meanwhile")
      cl:close()
      return { ok = ok, connected = cl:connected() }
    end)
    assert.are.equal(16, r.ok, "sends queue while it cannot connect")
    assert.is_false(r.connected)
    -- What it queued has nowhere to go once closed: dropped at once, the
    -- run does not wait the engine's 5 s flush grace for it.
    assert(took < 3, ("the run should end without the flush grace, took %.2f s"):format(took))
  end)

  it("raises_on_bad_arguments", function()
    local errs = H.run(function()
      local function e(...)
        local ok, m = pcall(netio.client, ...)
        return ok and "no error" or m
      end
      local f = function() end
      return {
        e(42, f),
        e("127.0.0.1:1", "nope"),
        e("127.0.0.1:1", f, { reconect = true }),
        e("127.0.0.1:1", f, { reconnect = { min = 2, max = 1 } }),
        e("127.0.0.1:1", f, { reconnect = { min = -1 } }),
        e("127.0.0.1:1", f, { reconnect = "yes" }),
        e("127.0.0.1:1", f, { timeout = -1 }),
      }
    end)
    local want = {
      "bad argument #1 to 'client' (string expected, got number)",
      "bad argument #2 to 'client' (function expected, got string)",
      "bad argument #3 to 'client' (unknown option 'reconect')",
      "bad argument #3 to 'client' (field 'reconnect' needs 0 < min <= max)",
      "bad argument #3 to 'client' (field 'reconnect' needs 0 < min <= max)",
      "bad argument #3 to 'client' (field 'reconnect' must be a boolean or a table)",
      "bad argument #3 to 'client' (field 'timeout' must be a non-negative number)",
    }
    for i, w in ipairs(want) do
      assert.truthy(tostring(errs[i]):find(w, 1, true),
        ("case %d: expected %q, got %q"):format(i, w, tostring(errs[i])))
    end
    local ok, err = pcall(netio.client, "127.0.0.1:1", function() end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("must be called from a netio task", 1, true), err)
  end)
end)
