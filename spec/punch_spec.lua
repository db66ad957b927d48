-- punch_spec.lua: netio.punch, TCP hole punching on loopback -- between two
-- tasks of one run that met at a rendezvous listener of the same run, and
-- between two `netio` processes through examples/punch -- and its bad
-- input.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")

-- Wine keeps SO_REUSEADDR in its own books: the Linux socket underneath
-- cannot bind a port that a listener holds (EACCES), so punch connects
-- only, and on loopback a SYN that meets no connecting socket is refused
-- at once: the peers' attempts never overlap.
local WINE_WHY = "not applicable under Wine: a connecting socket cannot"
  .. " share its port with a listener, and connect-only punching never"
  .. " meets on loopback"

local function addr(ip, port)
  if ip and ip:find(":", 1, true) then return ("[%s]:%d"):format(ip, port) end
  return ("%s:%s"):format(tostring(ip), tostring(port))
end

-- Two peers meet at a rendezvous listener of this run on `host` ("127.0.0.1"
-- or "::1"), connecting with `opts` (default: bind to port 0 of host).
-- Returns a, b (their connections to the rendezvous) and addr_a, addr_b
-- (their addresses as the rendezvous saw them).
local function meet(host, opts)
  local bracketed = host:find(":", 1, true) and "[" .. host .. "]" or host
  local l, port = H.listen(bracketed .. ":0")
  opts = opts or { bind = bracketed .. ":0" }
  local a = H.connect(bracketed .. ":" .. port, opts)
  local b = H.connect(bracketed .. ":" .. port, opts)
  local seen = {}
  for _ = 1, 2 do
    local s = H.track(assert(l:accept(5), "the rendezvous should accept both peers"))
    local ip, p = s:getpeername()
    seen[p] = addr(ip, p)
  end
  l:close()
  local _, pa = a:getsockname()
  local _, pb = b:getsockname()
  assert(seen[pa] and seen[pb], "the rendezvous should see both peers' ports")
  return a, b, seen[pa], seen[pb]
end

-- Punch a -> addr_b and b -> addr_a at once, in two tasks; returns the
-- results of each as packed tables.
local function punch_both(a, b, addr_a, addr_b, opts)
  local ta = netio.spawn(function() return table.pack(netio.punch(a, addr_b, opts)) end)
  local tb = netio.spawn(function() return table.pack(netio.punch(b, addr_a, opts)) end)
  local oka, ra = ta:join(15)
  local okb, rb = tb:join(15)
  assert(oka, "peer a's punch should return, got " .. tostring(ra))
  assert(okb, "peer b's punch should return, got " .. tostring(rb))
  if ra[1] then H.track(ra[1]) end
  if rb[1] then H.track(rb[1]) end
  return ra, rb
end

local function result(r)
  return ("%s, %s, %s"):format(tostring(r[1]), tostring(r[2]), tostring(r[3]))
end

-- Lines and a payload both ways at once over a punched pair.
local function exchange(ca, cb)
  local big = 256 * 1024
  local wa = netio.spawn(function()
    assert(ca:send({ "from a\n", H.data(big, 7) }))
  end)
  local wb = netio.spawn(function()
    assert(cb:send({ "from b\n", H.data(big, 8) }))
  end)
  assert.are.equal("from a", cb:recv("*l", 5), "b should read a's line")
  assert.are.equal("from b", ca:recv("*l", 5), "a should read b's line")
  H.same(H.data(big, 7), H.recv_all(cb, big, 5), "a's payload as read by b")
  H.same(H.data(big, 8), H.recv_all(ca, big, 5), "b's payload as read by a")
  assert(wa:join(5), "a's writer should end")
  assert(wb:join(5), "b's writer should end")
end

describe("netio.punch", function()
  it("connects two tasks that met at a rendezvous, data both ways", function()
    if H.wine then pending(WINE_WHY) return end
    H.run(function()
      local a, b, addr_a, addr_b = meet("127.0.0.1")
      local la = addr(a:getsockname())
      local lb = addr(b:getsockname())
      local t0 = netio.now()
      local ra, rb = punch_both(a, b, addr_a, addr_b, { timeout = 5 })
      local took = netio.now() - t0
      assert(ra[1], "peer a should get a connection, got " .. result(ra))
      assert(rb[1], "peer b should get a connection, got " .. result(rb))
      assert(took < 3, ("both punches should succeed well within 3 s, took %.2f s")
        :format(took))
      assert.are.equal("netio.conn (closed)", tostring(a),
        "the rendezvous connection of a should be closed")
      assert.are.equal("netio.conn (closed)", tostring(b),
        "the rendezvous connection of b should be closed")
      local ca, cb = ra[1], rb[1]
      assert.are.equal(la, addr(ca:getsockname()),
        "a's new connection should use a's old local address")
      assert.are.equal(lb, addr(cb:getsockname()),
        "b's new connection should use b's old local address")
      assert.are.equal(addr_b, addr(ca:getpeername()), "a should be connected to b")
      assert.are.equal(addr_a, addr(cb:getpeername()), "b should be connected to a")
      exchange(ca, cb)
    end)
  end)

  it("connects two tasks over IPv6 loopback", function()
    if H.wine then pending(WINE_WHY) return end
    if not H.has_ipv6() then pending("no IPv6 loopback on this machine") return end
    H.run(function()
      local a, b, addr_a, addr_b = meet("::1")
      local ra, rb = punch_both(a, b, addr_a, addr_b, { timeout = 5 })
      assert(ra[1], "peer a should get a connection, got " .. result(ra))
      assert(rb[1], "peer b should get a connection, got " .. result(rb))
      assert.are.equal(addr_b, addr(ra[1]:getpeername()), "a should be connected to b")
      exchange(ra[1], rb[1])
    end)
  end)

  it("punches from connections made without bind, or fails at once with EADDRINUSE", function()
    -- Linux shares the port connect() picks between connections to
    -- different destinations; when another socket without address reuse
    -- (a TIME-WAIT left by an earlier connection) shares it, the port
    -- cannot be bound again: punch says so at once.
    if H.wine then pending(WINE_WHY) return end
    H.run(function()
      local a, b, addr_a, addr_b = meet("127.0.0.1", {})
      local ra, rb = punch_both(a, b, addr_a, addr_b, { timeout = 1.5 })
      if ra[1] and rb[1] then
        exchange(ra[1], rb[1])
        return
      end
      local function inuse(r)
        return r[1] == nil and r[2] == "address already in use" and r[3] == "EADDRINUSE"
      end
      assert(inuse(ra) or inuse(rb), "when a punch fails, one of them should be"
        .. " nil, \"address already in use\", \"EADDRINUSE\"; got " .. result(ra)
        .. " and " .. result(rb))
      for _, r in ipairs({ ra, rb }) do
        assert(inuse(r) or (r[1] == nil and r[2] == "timeout"),
          "the other should be EADDRINUSE or time out, got " .. result(r))
      end
    end)
  end)

  it("returns nil, \"timeout\" when the peer never answers", function()
    H.run(function()
      local dport = H.DEAD_PORT
      local a = meet("127.0.0.1")
      local took, c, err, code = H.timed(netio.punch, a, "127.0.0.1:" .. dport,
        { timeout = 0.5, interval = 0.02 })
      assert.is_nil(c, "no connection should come from a port nobody uses")
      assert.are.equal("timeout", err, "the error should be \"timeout\"")
      assert.are.equal("ETIMEDOUT", code, "the code should be \"ETIMEDOUT\"")
      assert(took >= 0.45 and took < 2.5,
        ("punch should give up after its 0.5 s timeout, took %.2f s"):format(took))
      assert.are.equal("netio.conn (closed)", tostring(a),
        "the rendezvous connection should be closed")
    end)
  end)

  it("closes a connection to its local address that is not from the peer", function()
    H.run(function()
      local dport = H.DEAD_PORT
      local a = meet("127.0.0.1")
      local local_addr = addr(a:getsockname())
      local t = netio.spawn(function()
        return table.pack(netio.punch(a, "127.0.0.1:" .. dport, { timeout = 1 }))
      end)
      netio.sleep(0.1) -- punch is retrying now
      local stranger, err = netio.connect(local_addr, { timeout = 2 })
      if stranger then
        H.track(stranger)
        local data, rerr = stranger:recv(1, 2)
        assert.is_nil(data, "a stranger should get nothing from the punching peer")
        assert.are.equal("closed", rerr, "the stranger's connection should be closed")
      else
        assert.are.equal("connection refused", err,
          "a stranger should be refused or closed, got " .. tostring(err))
      end
      local ok, r = t:join(5)
      assert(ok, "punch should return")
      assert.is_nil(r[1], "punch should not return the stranger's connection")
      assert.are.equal("timeout", r[2], "punch should go on until its timeout")
    end)
  end)

  it("fails at once with EADDRINUSE when a listener holds the local address", function()
    -- Linux: a listener without reuseport may bind the port of a
    -- connection bound with reuse, and then no other socket may.
    if H.windows then
      pending("not applicable on Windows: the second listener cannot bind the port")
      return
    end
    H.run(function()
      local a = meet("127.0.0.1")
      local other = H.listen(addr(a:getsockname()))
      local took, c, err, code = H.timed(netio.punch, a, "127.0.0.1:9", { timeout = 5 })
      assert.is_nil(c, "punch should fail")
      assert.are.equal("address already in use", err, "the bind should fail")
      assert.are.equal("EADDRINUSE", code, "the code should be EADDRINUSE")
      assert(took < 1, ("the failure should come at once, took %.2f s"):format(took))
      other:close()
    end)
  end)

  describe("bad input", function()
    it("returns nil, \"closed\" for a closed connection", function()
      local r = H.run(function()
        local a = meet("127.0.0.1")
        a:close()
        return table.pack(netio.punch(a, "127.0.0.1:9", { timeout = 5 }))
      end)
      assert.are.equal(2, r.n, "two values: nil, \"closed\"")
      assert.is_nil(r[1], "no connection from a closed one")
      assert.are.equal("closed", r[2], "the error should be \"closed\"")
    end)

    it("raises for a first argument that is not a connection", function()
      H.run(function()
        local l = H.listen("127.0.0.1:0")
        local cases = {
          { "netio.conn expected, got number", 42, "127.0.0.1:9" },
          { "netio.conn expected, got nil", nil, "127.0.0.1:9" },
          { "netio.conn expected, got table", {}, "127.0.0.1:9" },
          { "netio.conn expected, got string", "127.0.0.1:1", "127.0.0.1:9" },
          { "netio.conn expected, got netio.listener", l, "127.0.0.1:9" },
        }
        for _, case in ipairs(cases) do
          local ok, err = pcall(netio.punch, case[2], case[3])
          assert.is_false(ok, "punch should raise for " .. tostring(case[2]))
          assert.are.equal("bad argument #1 to 'punch' (" .. case[1] .. ")", err)
        end
        local ok, err = pcall(netio.punch)
        assert.is_false(ok, "punch() should raise")
        assert.are.equal("bad argument #1 to 'punch' (netio.conn expected, got no value)", err)
        -- Raised at the caller's line, as from a C function.
        ok, err = pcall(function() netio.punch(42, "127.0.0.1:9") end)
        assert.is_false(ok, "punch should raise")
        assert.truthy(err:match("^.-punch_spec%.lua:%d+: bad argument #1 to 'punch'"),
          "the error should name the caller's line, got " .. err)
      end)
    end)

    it("raises for a peer address that is neither a string nor a number", function()
      H.run(function()
        local a = meet("127.0.0.1")
        for _, case in ipairs({ { "nil", nil }, { "table", {} }, { "boolean", true } }) do
          local ok, err = pcall(netio.punch, a, case[2])
          assert.is_false(ok, "punch should raise for a " .. case[1])
          assert.are.equal("bad argument #2 to 'punch' (string expected, got "
            .. case[1] .. ")", err)
        end
        local ok, err = pcall(netio.punch, a)
        assert.is_false(ok, "punch without a peer address should raise")
        assert.are.equal("bad argument #2 to 'punch' (string expected, got no value)", err)
        assert(a:getsockname(), "the connection should stay open")
      end)
    end)

    it("returns netio.connect's error for a malformed address and leaves conn open", function()
      H.run(function()
        local l, port = H.listen("127.0.0.1:0")
        local a = H.connect("127.0.0.1:" .. port, { bind = "127.0.0.1:0" })
        local s = H.track(assert(l:accept(5)))
        local bad = { "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
          "127.0.0.1:123456", "127.0.0.1:8o", "[::1:80", "[]:80", "a b:80",
          "[::1]80", 80, 1.5 }
        for _, peer in ipairs(bad) do
          local want = table.pack(netio.connect(peer))
          assert.is_nil(want[1], "netio.connect should refuse " .. tostring(peer))
          local got = table.pack(netio.punch(a, peer))
          assert.are.same(want, got, "punch should fail for " .. tostring(peer)
            .. " as netio.connect does")
          assert.are.equal(('malformed address "%s"'):format(tostring(peer)), got[2])
          assert.are.equal("EBADADDR", got[3])
        end
        assert(a:send("still open\n"), "the connection should stay open")
        assert.are.equal("still open", s:recv("*l", 2), "and carry data")
      end)
    end)

    it("raises for bad options", function()
      H.run(function()
        local a = meet("127.0.0.1")
        local cases = {
          { 5, "table expected, got number" },
          { "fast", "table expected, got string" },
          { { x = 1 }, "unknown option 'x'" },
          { { timeout = 1, bind = "127.0.0.1:0" }, "unknown option 'bind'" },
          { { timeout = "1" }, "field 'timeout' must be a number" },
          { { timeout = 0 / 0 }, "field 'timeout' must be a number" },
          { { timeout = -1 }, "field 'timeout' must not be negative" },
          { { interval = 0 }, "field 'interval' must be a positive number" },
          { { interval = -0.1 }, "field 'interval' must be a positive number" },
          { { interval = "x" }, "field 'interval' must be a positive number" },
        }
        for _, case in ipairs(cases) do
          local ok, err = pcall(netio.punch, a, "127.0.0.1:9", case[1])
          assert.is_false(ok, "punch should raise for option " .. case[2])
          assert.are.equal("bad argument #3 to 'punch' (" .. case[2] .. ")", err)
        end
        assert(a:getsockname(), "the connection should stay open")
      end)
    end)

    it("raises outside a task", function()
      H.run(function()
        local a = meet("127.0.0.1")
        local ok, err = pcall(coroutine.wrap(function()
          return netio.punch(a, "127.0.0.1:9")
        end))
        assert.is_false(ok, "punch in a plain coroutine should raise")
        assert.are.equal("netio: punch must be called from a netio task", err)
        assert(a:getsockname(), "the connection should stay open")
      end)
    end)
  end)

  describe("examples/punch through the host", function()
    if not HOST or HOST == "" then
      it("needs NETIO_HOST", function() pending("NETIO_HOST is not set") end)
      return
    end

    it("introduces two peers that punch through and exchange lines", function()
      if H.wine then pending(WINE_WHY) return end
      if H.windows then
        pending("not applicable on Windows: the test starts processes with sh")
        return
      end
      -- The rendezvous (one pair, then it exits) and two peers, in the
      -- background of one sh; H.sh bounds the whole group in time.
      local base = H.tmpname()
      local script = H.write(base .. ".sh", [[
H=$1; D=$2; O=$3
"$H" "$D/rendezvous.lua" 127.0.0.1:0 1 >"$O.r" 2>&1 & r=$!
port=
i=0
while [ $i -lt 200 ]; do
  port=$(sed -n 's/^rendezvous: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$O.r")
  [ -n "$port" ] && break
  sleep 0.05
  i=$((i + 1))
done
if [ -z "$port" ]; then kill $r; echo "no port"; exit 1; fi
"$H" "$D/peer.lua" "127.0.0.1:$port" alice >"$O.a" 2>&1 & a=$!
"$H" "$D/peer.lua" "127.0.0.1:$port" bob >"$O.b" 2>&1 & b=$!
wait $a; ra=$?
wait $b; rb=$?
wait $r; rr=$?
echo "alice=$ra bob=$rb rendezvous=$rr"
]])
      local code, out = H.sh(("sh %s %s %s %s"):format(H.quote(script), H.quote(HOST),
        H.quote(H.root .. "/examples/punch"), H.quote(base)), 40)
      local outs = {}
      for _, k in ipairs({ "r", "a", "b" }) do
        outs[k] = H.read(base .. "." .. k) or ""
        os.remove(base .. "." .. k)
      end
      os.remove(script)
      os.remove(base)
      local all = ("sh status %s, %s\nrendezvous:\n%s\nalice:\n%s\nbob:\n%s")
        :format(tostring(code), tostring(out), outs.r, outs.a, outs.b)
      assert.are.equal(0, code, "the script should end in time: " .. all)
      assert.are.equal("alice=0 bob=0 rendezvous=0\n", out,
        "every process should exit with 0: " .. all)
      for me, other in pairs({ alice = "bob", bob = "alice" }) do
        local o = outs[me:sub(1, 1)]
        assert.truthy(o:find(me .. ": connected to " .. other .. " (127.0.0.1:", 1, true),
          me .. " should connect to " .. other .. ": " .. all)
        for i = 1, 3 do
          assert.truthy(o:find(("%s: got '%s says hello %d'"):format(me, other, i), 1, true),
            me .. " should get " .. other .. "'s line " .. i .. ": " .. all)
        end
        assert.truthy(o:find(me .. ": done", 1, true), me .. " should finish: " .. all)
      end
      assert.truthy(outs.r:find("alice (127.0.0.1:", 1, true)
        and outs.r:find("bob (127.0.0.1:", 1, true) and outs.r:find(" <-> ", 1, true),
        "the rendezvous should introduce alice and bob: " .. all)
    end)
  end)
end)
