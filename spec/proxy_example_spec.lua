-- proxy_example_spec.lua: examples/proxy.lua through the host. The spec
-- runs an upstream server in its own run and the proxy as a child process
-- (H.sh_async), pushes 16 MiB each way through it at once and compares
-- what arrives with what was sent, and checks that a half-close crosses
-- the proxy and that a failed side gets the other closed.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")
local MiB = 1024 * 1024

local function example()
  return H.root .. (H.windows and "\\examples\\proxy.lua" or "/examples/proxy.lua")
end

-- The test stream of a seed: 64 KiB blocks, each a fixed pseudo-random
-- block whose last 8 bytes are the block's number, so that a lost,
-- repeated or reordered block shows.
local BLOCK = 65536

local function stream_block(seed, i)
  return H.data(BLOCK, seed):sub(1, BLOCK - 8) .. string.pack("<I8", i)
end

-- Sends `total` bytes (a multiple of BLOCK) of the stream with `send`.
local function produce(total, seed, send)
  for i = 0, total // BLOCK - 1 do send(stream_block(seed, i)) end
end

-- A checker of the stream as it arrives in pieces of any size: each
-- piece is compared with the bytes expected at its offset (string
-- comparisons, fast enough for 16 MiB). Called without a piece, returns
-- the bytes seen and the offset of the first wrong byte's piece, or nil.
local function checker(seed)
  local pos, bad, cur, cur_i = 0, nil, nil, -1
  return function(piece)
    if piece == nil then return pos, bad end
    local i = 1
    while i <= #piece do
      local bi, off = pos // BLOCK, pos % BLOCK
      if bi ~= cur_i then cur, cur_i = stream_block(seed, bi), bi end
      local take = math.min(BLOCK - off, #piece - i + 1)
      if not bad and piece:sub(i, i + take - 1) ~= cur:sub(off + 1, off + take) then
        bad = pos
      end
      pos, i = pos + take, i + take
    end
  end
end

-- Start the proxy to `upstream`, serving `count` connections; returns the
-- task that runs it (its results: H.sh's) and the proxy's address. Its
-- stdout goes to `out` (H.sh removes the file when the proxy exits).
local function start_proxy(upstream, count, out)
  local cmd = H.quote(HOST) .. " " .. H.quote(example()) .. " 127.0.0.1:0 "
    .. upstream .. " " .. count
  local t = netio.spawn(H.sh_async, cmd, 120, nil, out)
  for _ = 1, 400 do
    local o = H.read(out) or ""
    local port = o:match("proxy 127%.0%.0%.1:(%d+)")
    if port then return t, "127.0.0.1:" .. port end
    local st = t:status()
    if st ~= "ready" and st ~= "waiting" then break end
    netio.sleep(0.05)
  end
  error("the proxy did not print its address: " .. tostring(H.read(out))
    .. " " .. tostring(select(3, t:join(0))))
end

describe("examples/proxy.lua", function()
  if not HOST then
    it("needs NETIO_HOST", function() pending("NETIO_HOST is not set") end)
    return
  end

  it("carries_16_MiB_each_way_at_once_unchanged", function()
    local out = H.tmpname()
    local up_check, down_check = checker(1), checker(2)
    local o
    H.run(function()
      -- Upstream: reads everything the client sends while it sends its own
      -- 16 MiB, then closes when both are done.
      local l = H.listen("127.0.0.1:0")
      local _, uport = l:getsockname()
      local upstream = netio.spawn(function()
        local c = assert(l:accept(30))
        local writer = netio.spawn(function()
          produce(16 * MiB, 2, function(p) assert(c:send(p)) end)
          assert(c:shutdown())
        end)
        while true do
          local d, err = c:recv(nil, 60)
          if not d then assert(err == "closed", err) break end
          up_check(d)
        end
        assert(writer:join())
        c:close()
      end)
      local proxy, addr = start_proxy("127.0.0.1:" .. uport, 1, out)
      local c = H.connect(addr)
      local writer = netio.spawn(function()
        produce(16 * MiB, 1, function(p) assert(c:send(p)) end)
        assert(c:shutdown())
      end)
      while true do
        local d, err = c:recv(nil, 60)
        if not d then assert(err == "closed", err) break end
        down_check(d)
      end
      assert(writer:join())
      assert(upstream:join(60))
      c:close()
      local ok, code, pout, perr = proxy:join(120)
      assert(ok, code)
      assert.are.equal(0, code, "the proxy's exit status; stderr: " .. tostring(perr)
        .. " stdout: " .. tostring(pout))
      o = pout .. "\nstderr: " .. tostring(perr)
    end, 180)
    local n, bad = up_check()
    assert.are.equal(16 * MiB, n, "bytes the upstream received; the proxy's output: " .. o)
    assert.is_nil(bad, "the upstream received wrong bytes from offset " .. tostring(bad))
    n, bad = down_check()
    assert.are.equal(16 * MiB, n, "bytes the client received")
    assert.is_nil(bad, "the client received wrong bytes from offset " .. tostring(bad))
    assert.truthy(o:find("proxy: 1 connections served", 1, true), o)
  end)

  it("a_half_close_crosses_the_proxy_and_the_reply_comes_back", function()
    local out = H.tmpname()
    local reply
    H.run(function()
      local l = H.listen("127.0.0.1:0")
      local _, uport = l:getsockname()
      local upstream = netio.spawn(function()
        local c = assert(l:accept(30))
        -- Reads until the client's end of stream, then answers: works
        -- only if the proxy passed the half-close on.
        local all = assert(c:recv("*a", 30))
        assert(c:send("got " .. #all .. " bytes: " .. all))
        c:close()
      end)
      local proxy, addr = start_proxy("127.0.0.1:" .. uport, 1, out)
      local c = H.connect(addr)
      assert(c:send("request"))
      assert(c:shutdown())
      reply = c:recv("*a", 30)
      c:close()
      assert(upstream:join(30))
      assert(proxy:join(60))
    end, 90)
    assert.are.equal("got 7 bytes: request", reply,
      "expected the upstream to see the end of the request and answer")
  end)

  it("when_one_side_fails_the_proxy_closes_the_other", function()
    local out = H.tmpname()
    local failed
    H.run(function()
      local l = H.listen("127.0.0.1:0")
      local _, uport = l:getsockname()
      local upstream = netio.spawn(function()
        local c = assert(l:accept(30))
        assert(c:recv(5, 30))
        c:close() -- the upstream goes away while the client still sends
      end)
      local proxy, addr = start_proxy("127.0.0.1:" .. uport, 1, out)
      local c = H.connect(addr)
      assert(c:send("hello"))
      -- Sends to the gone upstream fail in the proxy, which must then close
      -- the client's connection: the client's own sends start failing.
      for _ = 1, 200 do
        local ok, err = c:send(("x"):rep(4096))
        if not ok then failed = err break end
        netio.sleep(0.05)
      end
      c:close()
      assert(upstream:join(30))
      assert(proxy:join(60))
    end, 90)
    assert.are.equal("closed", failed,
      "expected the client's connection closed by the proxy within 10 s")
  end)
end)

assert(netio)
