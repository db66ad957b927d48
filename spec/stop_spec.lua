-- stop_spec.lua: a graceful stop (netio.stop(), or SIGTERM to the host)
-- while tasks still have output queued to peers: the peers that keep
-- reading get every byte send() accepted; output a peer does not take
-- within NETIO_GRACE is dropped, counted and logged, in bounded time.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")
local NCONN = 4
local PIECE = 64 * 1024

-- The server under test, run by the host: it accepts NCONN connections
-- and gives each a task sending `mib` MiB in 64 KiB pieces (piece k is the
-- letter k % 26 repeated), printing what its send() calls accepted when it
-- ends. mode "stop": netio.stop() 0.5 s after the last accept; "signal":
-- prints its pid and waits for SIGTERM.
local SERVER = [[
local netio = require "netio"
local mode, mib = arg[1], tonumber(arg[2])
local pieces = {}
for k = 0, 25 do pieces[k] = string.char(65 + k):rep(65536) end
local l = assert(netio.listen("127.0.0.1:0"))
local _, port = l:getsockname()
io.write("port ", port, "\n")
io.flush()
for _ = 1, 4 do
  local c = assert(l:accept(10))
  netio.spawn(function()
    local total = 0
    for k = 0, mib * 16 - 1 do
      if not c:send(pieces[k % 26]) then break end
      total = total + 65536
    end
    io.write("accepted ", total, "\n")
    io.flush()
  end)
end
if mode == "stop" then
  netio.sleep(0.5)
  netio.stop()
else
  local f = assert(io.open("/proc/self/stat"))
  io.write("pid ", f:read("n"), "\n")
  f:close()
  io.flush()
end
]]

local temps = {}
local function tmpfile(content)
  local path = H.tmpname()
  temps[#temps + 1] = path
  if content then H.write(path, content) end
  return path
end

teardown(function()
  for _, p in ipairs(temps) do os.remove(p) end
end)

-- Start the server script under the host; returns a handle with the popen
-- process and the files of its stdout and stderr.
local function start_server(mode, mib, env)
  local out, err = tmpfile(), tmpfile()
  local script = tmpfile(SERVER)
  local cmd = ("%s%s %s %s %d >%s 2>%s"):format(H.env(env or {}), H.quote(HOST),
    H.quote(script), mode, mib, H.quote(out), H.quote(err))
  if H.windows then cmd = '"' .. cmd .. '"' end
  return { proc = assert(io.popen(cmd, "w")), out = out, err = err }
end

local function wait_line(h, pattern)
  for _ = 1, 200 do
    local v = (H.read(h.out) or ""):match(pattern)
    if v then return v end
    netio.sleep(0.05)
  end
  error(("expected the server to print %q; stdout: %s; stderr: %s")
    :format(pattern, tostring(H.read(h.out)), tostring(H.read(h.err))), 2)
end

-- A peer reading at `rate` bytes/s until the end of the stream, or only
-- `stop_after` bytes and then nothing until `done()` holds. Returns the
-- bytes it got, and the first offset where the stream was not the
-- server's pattern (nil when all was).
local function reader(c, rate, stop_after, done)
  local got, bad, t0 = 0, nil, netio.now()
  while true do
    if stop_after and got >= stop_after then
      while not done() do netio.sleep(0.05) end
      return got, bad
    end
    local d = c:recv(nil, 15)
    if not d then return got, bad end
    -- The first and last byte of each piece received must be its letter.
    local function check(i)
      local off = got + i - 1
      local want = 65 + (off // PIECE) % 26
      if not bad and d:byte(i) ~= want then bad = off end
    end
    check(1)
    check(#d)
    got = got + #d
    local ahead = got / rate - (netio.now() - t0)
    if ahead > 0 then netio.sleep(ahead) end
  end
end

local function sum_accepted(out)
  local sum, n = 0, 0
  for v in (out or ""):gmatch("accepted (%d+)") do
    sum, n = sum + tonumber(v), n + 1
  end
  return sum, n
end

-- Run the server in `mode`, with NCONN peers reading at `rate`; returns
-- what they got, the server's output, its exit and the seconds it took
-- from the stop.
local function scenario(mode, opts)
  local h = start_server(mode, opts.mib, opts.env)
  local r = H.run(function()
    local port = wait_line(h, "port (%d+)")
    local conns, tasks, exited = {}, {}, false
    for i = 1, NCONN do conns[i] = H.connect("127.0.0.1:" .. port) end
    for i = 1, NCONN do
      tasks[i] = netio.spawn(reader, conns[i], opts.rate, opts.stop_after,
        function() return exited end)
    end
    if mode == "signal" then
      local pid = wait_line(h, "pid (%d+)")
      netio.sleep(0.5)
      os.execute("kill -TERM " .. pid)
    end
    local t0 = netio.now()
    -- The server ends by itself: its stdout closes once the host exited.
    local res = { got = 0, bad = {} }
    if opts.stop_after then
      -- The peers that stopped reading hold their connections open until
      -- the server gives up on them.
      for _ = 1, 400 do
        if (H.read(h.err) or ""):find("unsent", 1, true) then break end
        netio.sleep(0.05)
      end
      exited = true
    end
    for i = 1, NCONN do
      local ok, got, bad = tasks[i]:join(30)
      assert(ok, "a reader did not end")
      res.got = res.got + got
      if bad then res.bad[#res.bad + 1] = bad end
    end
    res.secs = netio.now() - t0
    return res
  end, 40)
  local ok, how, code = h.proc:close()
  r.exit = ok and 0 or code or how
  r.out, r.err = H.read(h.out), H.read(h.err)
  return r
end

describe("graceful stop with output queued", function()
  if not HOST then
    it("needs NETIO_HOST", function() pending("NETIO_HOST is not set") end)
    return
  end

  local function check_delivered(r)
    local sum, n = sum_accepted(r.out)
    assert.are.equal(0, r.exit, "the server's exit status; stderr: " .. tostring(r.err))
    assert.are.equal(NCONN, n, "every sending task reports what send accepted; stdout: "
      .. tostring(r.out))
    assert.are.same({}, r.bad, "offsets where a peer got bytes out of the stream")
    -- A send waiting above the high-water mark when the grace ended had
    -- its piece queued already: the peer gets it too.
    assert(r.got >= sum and r.got <= sum + NCONN * PIECE,
      ("the peers that kept reading: expected every byte send() accepted "
        .. "(%d, and at most one more piece per connection), got %d"):format(sum, r.got))
    assert.is_nil(r.err:find("unsent", 1, true), "nothing is dropped: " .. r.err)
  end

  it("stop_flushes_queued_output_to_peers_that_read", function()
    -- 32 MiB per task at 4 MB/s per peer: the tasks still wait in send
    -- when the 2 s task grace ends, with output queued.
    local r = scenario("stop", { mib = 32, rate = 4e6, env = { NETIO_GRACE = "10" } })
    check_delivered(r)
  end)

  it("sigterm_flushes_queued_output_to_peers_that_read", function()
    if H.windows then
      pending("not applicable on Windows: no signal can be sent to the host")
      return
    end
    local r = scenario("signal", { mib = 32, rate = 4e6, env = { NETIO_GRACE = "10" } })
    check_delivered(r)
  end)

  it("stop_drops_counts_and_logs_what_a_peer_does_not_read_within_the_grace", function()
    local r = scenario("stop", { mib = 32, rate = 4e6, stop_after = 256 * 1024,
                                  env = { NETIO_GRACE = "1" } })
    assert.are.equal(0, r.exit, "the server's exit status; stderr: " .. tostring(r.err))
    local n = tonumber((r.err or ""):match(
      "warn.-the run ended with (%d+) bytes of queued output unsent"))
    assert(n and n > 0, "expected a warn line counting the dropped bytes; stderr: "
      .. tostring(r.err))
    -- 0.5 s to the stop, 2 s of task grace, 1 s of NETIO_GRACE.
    assert(r.secs < 8, ("the server ended %.1f s after the stop began, expected"
      .. " the grace periods to bound it"):format(r.secs))
  end)
end)
