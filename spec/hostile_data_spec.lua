-- spec/hostile_data_spec.lua: fuzzed addresses given to netio.listen and
-- netio.connect, and full-duplex transfers with some peers resetting
-- midway: nothing crashes, every error is a clear one, and every byte
-- that arrives is a byte that was sent.
local H = require "helper"
local netio = H.netio

local SCALE = H.windows and 0.25 or 1

-- A fixed seed (NETIO_FUZZ_SEED overrides it), printed so that a failure
-- can be replayed.
local SEED = tonumber(os.getenv("NETIO_FUZZ_SEED") or "") or 20261201

-- Pieces addresses are made of, malformed ones included.
local PIECES = { "127.0.0.1", "0.0.0.0", "::1", "::", "[", "]", ":", "%", "*",
  "0", "65535", "65536", "99999", "123456", "-1", "+1", " ", "\0", "\n", ".",
  "1.2.3.4.5", "255.255.255.256", "fe80::1", "%lo", "%999", "%eth0", "::ffff:",
  "127.0.0.1", "x", "-", "_", "é", "\255", "::::", "[::1]", "0x7f.1", "00",
  "1e3", "v4", ":0", "[::1]:0", "127.0.0.1:0" }

-- A random address string: a few pieces and random bytes glued together,
-- or a known-good address with one byte changed.
local function fuzz_addr(rnd)
  local k = rnd(4)
  if k == 1 then
    local base = ({ "127.0.0.1:0", "[::1]:0", "*:0", ":0", "[::]:0" })[rnd(5)]
    local i = rnd(#base)
    return base:sub(1, i - 1) .. string.char(rnd(256) - 1) .. base:sub(i + 1)
  end
  local parts = {}
  for _ = 1, rnd(6) do
    if rnd(3) == 1 then
      parts[#parts + 1] = string.char(rnd(256) - 1)
    else
      parts[#parts + 1] = PIECES[rnd(#PIECES)]
    end
  end
  if rnd(3) == 1 then parts[#parts + 1] = ":" .. tostring(rnd(70000) - 1) end
  if rnd(50) == 1 then parts[#parts + 1] = string.rep("a", 300) end
  return table.concat(parts)
end

-- A host the system resolver would look up: a host name outside brackets
-- (brackets hold an IPv6 literal or nothing valid: never a lookup).
-- listen and connect would send DNS queries (and connect SYNs) off this
-- machine; tests stay on loopback, so those are left out.
local function would_resolve(s)
  if s:sub(1, 1) == "[" then return false end
  local host = s:match("^(.*):[^:]*$")
  if not host or host == "" or host == "*" then return false end
  return host:find("^[%w%.%-_]+$") ~= nil and host ~= "127.0.0.1" and host ~= "0.0.0.0"
end

-- Check one call's outcome: a listener/connection, nil + message + code,
-- or a raised "bad argument". Returns a word for the tally.
local function check(addr, ok, a, b, c)
  if not ok then
    assert(tostring(a):find("bad argument", 1, true),
      ("%q raised %q, not a bad argument error"):format(addr, tostring(a)))
    return "raised"
  end
  if a then
    a:close()
    return "opened"
  end
  assert(type(b) == "string" and b ~= "", ("%q: expected an error message, got %s")
    :format(addr, tostring(b)))
  assert(type(c) == "string" and c:find("^E[%u%d_]+$"), ("%q: expected an error code"
    .. " such as EBADADDR, got %s (%s)"):format(addr, tostring(c), b))
  assert(c ~= "EUNKNOWN" and b ~= "unknown error",
    ("%q: %s (%s): an address must never fail with an unknown error"):format(addr, b, c))
  return c
end

describe("hostile data", function()
  it("fuzzed_addresses_give_clear_errors_and_never_crash", function()
    io.stderr:write(("address fuzz seed %d (NETIO_FUZZ_SEED replays it)\n"):format(SEED))
    math.randomseed(SEED)
    local rnd = math.random
    local n = math.floor(10000 * SCALE)
    local tally, skipped = {}, 0
    H.run(function()
      for _ = 1, n do
        local addr = fuzz_addr(rnd)
        if would_resolve(addr) then
          skipped = skipped + 1
        else
          local what = check(addr, pcall(netio.listen, addr))
          tally[what] = (tally[what] or 0) + 1
          -- The same string given to connect must be rejected the same way
          -- when listen found it malformed (connect is not tried on a good
          -- address: it could leave the machine).
          if what == "EBADADDR" then
            local c = check(addr, pcall(netio.connect, addr, { timeout = 0.5 }))
            assert(c == "EBADADDR", ("%q: listen said EBADADDR, connect %s"):format(addr, c))
          end
        end
      end
      -- Values of other types.
      for _, v in ipairs({ 80, 1.5, true, {}, print }) do
        local ok, err = pcall(netio.listen, v)
        assert(ok or tostring(err):find("bad argument", 1, true),
          ("listen(%s) raised %s"):format(tostring(v), tostring(err)))
        local ok2, err2 = pcall(netio.connect, v)
        assert(ok2 or tostring(err2):find("bad argument", 1, true),
          ("connect(%s) raised %s"):format(tostring(v), tostring(err2)))
      end
    end, 60)
    local list = {}
    for k, v in pairs(tally) do list[#list + 1] = ("%s %d"):format(k, v) end
    table.sort(list)
    io.stderr:write(("address fuzz: %d strings, %d left out (host names), %s\n")
      :format(n, skipped, table.concat(list, ", ")))
    assert((tally.EBADADDR or 0) > n / 4, "the fuzz produced few malformed addresses")
  end)

  it("full_duplex_with_some_peers_resetting_delivers_only_bytes_that_were_sent", function()
    H.run(function()
      local server = {} -- id -> { ok = bool, err = ..., got = n }
      local _, port = H.server(function(c)
        c:settimeout(5)
        local head = c:recv("*l")
        if not head then return end
        local id, nc, ns, seed = head:match("^(%d+) (%d+) (%d+) (%d+)$")
        id, nc, ns, seed = tonumber(id), tonumber(nc), tonumber(ns), tonumber(seed)
        local r = { done = false }
        server[id] = r
        -- Send ns bytes while reading nc: both ways at once.
        local sender = netio.spawn(function()
          local ok, err = c:send(H.data(ns, seed + 1))
          if ok then ok, err = c:flush() end
          return ok, err
        end)
        local want = H.data(nc, seed)
        local got, err, partial = H.recv_all(c, nc)
        if got then
          H.same(want, got, ("connection %d, client to server"):format(id))
          r.ok = true
        else
          -- A reset peer: what arrived must be a prefix of what it sent.
          assert(want:sub(1, #partial) == partial, ("connection %d: the %d bytes"
            .. " read before the reset are not what the peer sent"):format(id, #partial))
          r.err = err
        end
        sender:join(5)
        r.done = true
      end)
      local n = math.floor(40 * SCALE)
      local client, pending = {}, n
      for id = 1, n do
        netio.spawn(function()
          local seed = id % 4 + 1
          local nc, ns = 20000 + id * 7919 % 300000, 20000 + id * 104729 % 300000
          local resets = id % 5 == 0
          local c = H.connect("127.0.0.1:" .. port)
          c:settimeout(5)
          c:send(("%d %d %d %d\n"):format(id, nc, ns, seed))
          local data = H.data(nc, seed)
          local sender = netio.spawn(function()
            if resets then
              c:send(data:sub(1, nc // 3))
              netio.sleep(0.01)
              c:setoption("linger", 0)
              c:close()
            else
              c:send(data)
            end
          end)
          local want = H.data(ns, seed + 1)
          local got, err, partial = H.recv_all(c, ns)
          if got then
            H.same(want, got, ("connection %d, server to client"):format(id))
            client[id] = "ok"
          else
            assert(resets, ("connection %d (no reset) failed: %s"):format(id, tostring(err)))
            assert(want:sub(1, #partial) == partial, ("connection %d: the bytes read"
              .. " before the reset are not what the server sent"):format(id))
            client[id] = "reset"
          end
          sender:join(5)
          c:close()
          pending = pending - 1
        end)
      end
      local t0 = netio.now()
      while pending > 0 and netio.now() - t0 < 15 do netio.sleep(0.05) end
      assert(pending == 0, ("%d duplex connections never ended"):format(pending))
      local t1 = netio.now()
      while netio.now() - t1 < 5 do
        local all = true
        for id = 1, n do
          if not (server[id] and server[id].done) then all = false end
        end
        if all then break end
        netio.sleep(0.05)
      end
      local completed = 0
      for id = 1, n do
        local r = server[id]
        assert(r and r.done, ("connection %d: the server side never ended"):format(id))
        if id % 5 ~= 0 then
          assert(r.ok and client[id] == "ok", ("connection %d (no reset): server %s,"
            .. " client %s"):format(id, tostring(r.ok or r.err), tostring(client[id])))
          completed = completed + 1
        else
          assert(r.ok or r.err == "closed", ("connection %d (reset): the server's"
            .. " read ended %s, expected \"closed\""):format(id, tostring(r.err)))
        end
      end
      assert(completed == n - n // 5)
    end, 30)
  end)
end)
