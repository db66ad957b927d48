-- ngx_spec.lua: netio.ngx, OpenResty's ngx API on netio -- time, log,
-- threads, timers, ngx.semaphore, URI and base64 coding, ngx.null, the
-- "not available in netio" errors, and cosockets (ngx.socket.tcp/udp)
-- against netio servers. resty.redis on it: ngx_redis_spec.lua.
local H = require "helper"
local netio = H.netio
local ngx = require "netio.ngx"

-- Lines the test server understands (one per line, each connection
-- numbered n = 1, 2, ... in accept order):
--   "who"       -> n
--   "bye"       -> "bye", then the server closes the connection
--   "silent"    -> nothing
--   "poke"      -> "ok", then 50 ms later an unasked "junk" line
--   "all"       -> "a\nb\n" then close
--   other       -> echoed with its LF
local function line_server()
  local st = { accepted = 0 }
  local l, port = H.listen()
  netio.spawn(function()
    while true do
      local c = l:accept()
      if not c then break end
      H.track(c)
      st.accepted = st.accepted + 1
      local n = st.accepted
      netio.spawn(function()
        while true do
          local line = c:recv("*l")
          if not line then break end
          if line == "who" then
            c:send(n .. "\n")
          elseif line == "bye" then
            c:send("bye\n")
            break
          elseif line == "silent" then -- luacheck: ignore 542
          elseif line == "poke" then
            c:send("ok\n")
            netio.sleep(0.05)
            c:send("junk\n")
          elseif line == "all" then
            c:send("a\nb\n")
            break
          else
            c:send(line .. "\n")
          end
        end
        c:close()
      end)
    end
  end)
  return port, st
end

describe("netio.ngx basics", function()
  it("require_returns_the_ngx_table_and_install_sets_the_global", function()
    assert.are.equal("table", type(ngx.socket), "ngx.socket should be a table")
    local old = rawget(_G, "ngx")
    local got = ngx.install()
    assert.are.equal(ngx, got, "install() should return the ngx table")
    assert.are.equal(ngx, rawget(_G, "ngx"), "install() should set the global ngx")
    _G.ngx = old
    for k in pairs(ngx) do
      assert.are_not.equal("install", k, "install should not be one of ngx's fields")
    end
  end)

  it("null_is_the_light_userdata_null_and_unique", function()
    assert.are.equal("userdata", type(ngx.null), "ngx.null should be a light userdata")
    assert.are.equal(netio.core.null, ngx.null, "ngx.null should be netio.core.null")
    assert.are_not.equal(nil, ngx.null)
    assert.is_nil(netio.null, "netio.null should not be part of the netio module")
  end)

  it("semaphore_module_is_preloaded_by_netio_ngx", function()
    local sema = require "ngx.semaphore"
    assert.are.equal("function", type(sema.new), "ngx.semaphore should have new()")
  end)

  it("constants_have_openresty_values", function()
    assert.are.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8 },
      { ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR, ngx.WARN, ngx.NOTICE,
        ngx.INFO, ngx.DEBUG })
    assert.are.same({ 0, -1, -2, -4, -5 },
      { ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED })
  end)
end)

describe("ngx time", function()
  it("now_is_epoch_seconds_with_milliseconds_and_time_whole_seconds", function()
    -- glibc's time() (os.time()) reads the kernel's coarse clock, up to a
    -- tick behind the clock netio reads: 50 ms of slack across a second.
    local before = os.time()
    local now, t = ngx.now(), ngx.time()
    local after = os.time()
    assert.is_true(now >= before and now < after + 1.05,
      ("ngx.now() gave %.3f, os.time() %d..%d"):format(now, before, after))
    assert.are.equal("integer", math.type(t), "ngx.time() should be an integer")
    assert.is_true(t >= before and t <= after + 1, "ngx.time() gave " .. t)
    assert.are.equal(now, math.floor(now * 1000 + 0.5) / 1000,
      "ngx.now() should have millisecond resolution, got " .. now)
    ngx.update_time()
    assert.are.equal(os.date("%Y-%m-%d", ngx.time()), ngx.today())
    assert.is_truthy(ngx.localtime():match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"),
      "ngx.localtime() gave " .. ngx.localtime())
    assert.are.equal(os.date("!%Y-%m-%d %H:%M:%S", ngx.time()), ngx.utctime())
  end)

  it("sleep_takes_seconds_and_now_moves_with_it", function()
    local dt, moved = H.run(function()
      local t0 = ngx.now()
      local d = H.timed(ngx.sleep, 0.1)
      return d, ngx.now() - t0
    end)
    assert.is_true(dt >= 0.095 and dt < 1, "ngx.sleep(0.1) slept " .. dt .. " s")
    assert.is_true(moved >= 0.09 and moved < 1, "ngx.now() moved " .. moved .. " s")
  end)
end)

describe("ngx.log", function()
  local function logged(fn)
    local path = H.tmpname()
    local old = netio.log.level("info")
    assert(netio.log.open(path))
    local ok, err = pcall(fn)
    netio.log.open()
    netio.log.level(old)
    local text = H.read(path) or ""
    os.remove(path)
    assert(ok, err)
    return text
  end

  it("log_writes_each_level_at_its_netio_level_with_the_callers_position", function()
    local line
    local text = logged(function()
      line = debug.getinfo(1, "l").currentline + 1
      ngx.log(ngx.ERR, "boom ", 42, " ", nil, " ", true, " ", ngx.null)
      ngx.log(ngx.WARN, "careful")
      ngx.log(ngx.NOTICE, "notice")
      ngx.log(ngx.INFO, "info")
      ngx.log(ngx.DEBUG, "hidden at level info")
      ngx.log(ngx.CRIT, "crit")
    end)
    H.has(("error %s"):format(""), text, "ngx.ERR")
    assert.is_truthy(text:find(("error [^\n]*%[lua%] ngx_spec%.lua:" .. line
      .. ": boom 42 nil true null\r?\n")), "the ERR line, got: " .. text)
    assert.is_truthy(text:find("warn  [^\n]*%[lua%] ngx_spec%.lua:%d+: careful\r?\n"),
      "the WARN line, got: " .. text)
    assert.is_truthy(text:find("info  [^\n]*notice\r?\n"), "NOTICE at info, got: " .. text)
    assert.is_truthy(text:find("info  [^\n]*: info\r?\n"), "INFO at info, got: " .. text)
    assert.is_truthy(text:find("error [^\n]*: crit\r?\n"), "CRIT at error, got: " .. text)
    assert.is_nil(text:find("hidden", 1, true), "DEBUG should be below level info")
  end)

  it("log_rejects_a_bad_level_and_values_it_cannot_write", function()
    H.has("bad argument #1 to 'log' (log level expected", H.raised(ngx.log, "x", "m"))
    H.has("bad argument #1 to 'log' (log level expected", H.raised(ngx.log, 99, "m"))
    H.has("bad argument #3 to 'log' (string, number, boolean, or nil expected, got function)",
      H.raised(ngx.log, ngx.ERR, "m", print))
  end)
end)

describe("ngx.thread", function()
  it("spawn_and_wait_return_the_threads_results", function()
    local r = table.pack(H.run(function()
      local t = ngx.thread.spawn(function(a, b)
        ngx.sleep(0.01)
        return a + b, "x"
      end, 1, 2)
      return ngx.thread.wait(t)
    end))
    assert.are.same({ n = 3, true, 3, "x" }, r)
  end)

  it("wait_returns_the_first_to_end_and_false_with_the_error_of_a_raising_thread", function()
    local ok, err, second = H.run(function()
      local slow = ngx.thread.spawn(function() ngx.sleep(0.5) return "slow" end)
      local bad = ngx.thread.spawn(function() ngx.sleep(0.01) error("boom") end)
      local o, e = ngx.thread.wait(slow, bad)
      ngx.thread.kill(slow)
      return o, e, select(2, ngx.thread.kill(slow))
    end)
    assert.are.equal(false, ok, "wait should return false for a thread that raised")
    assert.is_truthy(tostring(err):match("boom$"),
      "the error without traceback expected, got " .. tostring(err))
    assert.are.equal("already waited or killed", second)
  end)

  it("kill_stops_a_waiting_thread_and_reports_one_that_ended", function()
    local killed, reached, ended_ok, ended_err = H.run(function()
      local hit = false
      local t = ngx.thread.spawn(function() ngx.sleep(0.2) hit = true end)
      ngx.sleep(0.01)
      local k = ngx.thread.kill(t)
      ngx.sleep(0.3)
      local done = ngx.thread.spawn(function() return 1 end)
      ngx.sleep(0.01)
      local o, e = ngx.thread.kill(done)
      return k, hit, o, e
    end)
    assert.are.equal(true, killed, "kill should return true")
    assert.are.equal(false, reached, "a killed thread should not go on")
    assert.is_nil(ended_ok)
    assert.are.equal("already terminated", ended_err)
  end)
end)

describe("ngx.timer", function()
  it("at_calls_back_after_the_delay_with_premature_false_and_the_arguments", function()
    local got, dt, pend = H.run(function()
      local t0, r = netio.now(), nil
      local ok = assert(ngx.timer.at(0.05, function(premature, a, b)
        r = { premature, a, b, netio.now() - t0 }
      end, "a", nil))
      assert.are.equal(true, ok)
      local p = ngx.timer.pending_count()
      ngx.sleep(0.3)
      return r, r and r[4], p
    end)
    assert.is_table(got, "the timer's callback did not run")
    assert.are.equal(false, got[1], "premature should be false")
    assert.are.equal("a", got[2])
    assert.is_nil(got[3])
    assert.is_true(dt >= 0.045 and dt < 0.3, "the callback ran after " .. tostring(dt) .. " s")
    assert.are.equal(1, pend, "one timer should be pending before it fired")
  end)

  it("every_calls_back_repeatedly_until_the_run_stops_then_once_premature", function()
    local calls = {}
    local ok = netio.run(function()
      ngx.timer.every(0.03, function(premature)
        calls[#calls + 1] = premature
        assert.is_true(ngx.timer.running_count() >= 1)
      end)
      ngx.sleep(0.2)
      netio.stop()
    end)
    assert.is_true(ok)
    assert.is_true(#calls >= 3, "expected at least 3 ticks in 0.2 s, got " .. #calls)
    assert.are.equal(false, calls[1])
    assert.are.equal(true, calls[#calls], "the last call should be premature (the stop)")
    for i = 1, #calls - 1 do
      assert.are.equal(false, calls[i], "only the last call may be premature")
    end
  end)

  it("at_runs_premature_when_the_run_stops_before_the_delay", function()
    local premature
    netio.run(function()
      ngx.timer.at(30, function(p) premature = p end)
      ngx.sleep(0.02)
      netio.stop()
    end)
    assert.are.equal(true, premature, "a timer pending at the stop should run premature")
  end)

  it("timers_reject_bad_arguments", function()
    H.run(function()
      H.has("bad argument #1 to 'at' (number expected, got string)",
        H.raised(ngx.timer.at, "1", print))
      H.has("bad argument #1 to 'at' (non-negative number expected)",
        H.raised(ngx.timer.at, -1, print))
      H.has("bad argument #1 to 'every' (positive number expected)",
        H.raised(ngx.timer.every, 0, print))
      H.has("bad argument #2 to 'at' (function expected, got nil)",
        H.raised(ngx.timer.at, 1))
    end)
  end)
end)

describe("ngx.semaphore", function()
  local semaphore = require "ngx.semaphore"

  it("post_wakes_a_waiter_and_count_goes_negative_while_threads_wait", function()
    local got = H.run(function()
      local s = assert(semaphore.new(0))
      local out = {}
      local t = ngx.thread.spawn(function()
        out.ok, out.err = s:wait(2)
      end)
      ngx.sleep(0.02)
      out.waiting = s:count()
      assert.are.equal(true, s:post())
      ngx.thread.wait(t)
      out.after = s:count()
      s:post(2)
      out.two = s:count()
      out.take = s:wait(0)
      return out
    end)
    assert.are.equal(-1, got.waiting, "count() should be -1 with one waiter")
    assert.are.equal(true, got.ok, "the waiter should get the post")
    assert.are.equal(0, got.after)
    assert.are.equal(2, got.two)
    assert.are.equal(true, got.take, "wait(0) should take an available resource")
  end)

  it("wait_timeout_is_in_seconds_and_zero_does_not_wait", function()
    local ok0, err0, dt0, ok1, err1, dt1 = H.run(function()
      local s = semaphore.new()
      local t0 = netio.now()
      local a, b = s:wait(0)
      local d0 = netio.now() - t0
      t0 = netio.now()
      local c, d = s:wait(0.1)
      return a, b, d0, c, d, netio.now() - t0
    end)
    assert.is_nil(ok0)
    assert.are.equal("timeout", err0)
    assert.is_true(dt0 < 0.05, "wait(0) took " .. dt0 .. " s")
    assert.is_nil(ok1)
    assert.are.equal("timeout", err1)
    assert.is_true(dt1 >= 0.09 and dt1 < 1, "wait(0.1) took " .. dt1 .. " s")
  end)

  it("new_and_wait_reject_bad_arguments", function()
    H.run(function()
      H.has("bad argument #1 to 'new'", H.raised(semaphore.new, -1))
      H.has("bad argument #1 to 'new'", H.raised(semaphore.new, 1.5))
      assert.are.equal(2, semaphore.new(2.0):count(), "a float with an integer value")
      local s = semaphore.new(1)
      H.has("bad argument #1 to 'wait'", H.raised(s.wait, s))
      H.has("bad argument #1 to 'wait'", H.raised(s.wait, s, -1))
    end)
  end)
end)

describe("ngx URI and base64 coding", function()
  it("escape_uri_escapes_all_but_unreserved_by_default_and_less_with_type_0", function()
    assert.are.equal("a%20b%2Fc%3Fd%3De%26f~g.h_i-j", ngx.escape_uri("a b/c?d=e&f~g.h_i-j"))
    assert.are.equal("%00%0A%FF%25", ngx.escape_uri("\0\n\255%"))
    assert.are.equal("/a%20b%23c%3Fd=e&f%25/%7F", ngx.escape_uri("/a b#c?d=e&f%/\127", 0))
    assert.are.equal("", ngx.escape_uri(nil))
    assert.are.equal("12", ngx.escape_uri(12))
  end)

  it("unescape_uri_decodes_escapes_and_plus_and_keeps_bad_escapes", function()
    assert.are.equal("b r56 7", ngx.unescape_uri("b%20r56+7"))
    assert.are.equal("try %search% %again%", ngx.unescape_uri("try %search%%20%again%"))
    assert.are.equal("\0\255/", ngx.unescape_uri("%00%ff%2F"))
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    assert.are.equal(all, ngx.unescape_uri(ngx.escape_uri(all)), "every byte round-trips")
  end)

  it("base64_matches_the_rfc_4648_vectors", function()
    local vectors = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                      { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
                      { "foobar", "Zm9vYmFy" } }
    for _, v in ipairs(vectors) do
      assert.are.equal(v[2], ngx.encode_base64(v[1]), "encode " .. v[1])
      assert.are.equal(v[1], ngx.decode_base64(v[2]), "decode " .. v[2])
    end
    assert.are.equal("Zm9vYg", ngx.encode_base64("foob", true), "no_padding")
    assert.are.equal("foob", ngx.decode_base64("Zm9vYg"), "padding may be left out")
    assert.are.equal("+/8=", ngx.encode_base64("\251\255"))
    local bin = H.data(1000, 3)
    assert.are.equal(bin, ngx.decode_base64(ngx.encode_base64(bin)), "binary round trip")
  end)

  it("decode_base64_gives_nil_for_bad_input", function()
    assert.is_nil(ngx.decode_base64("Zm9v!"), "a byte outside the alphabet")
    assert.is_nil(ngx.decode_base64("Zm9vY"), "one lone character")
    assert.is_nil(ngx.decode_base64("Zm 9v"), "a space")
    H.has("bad argument #1 to 'decode_base64' (string expected, got nil)",
      H.raised(ngx.decode_base64))
  end)
end)

describe("what netio cannot offer", function()
  it("request_apis_raise_not_available_in_netio", function()
    H.has("ngx.var.remote_addr is not available in netio",
      H.raised(function() return ngx.var.remote_addr end))
    local find = ngx.re.find -- a library's top level may take it
    H.has("ngx.re.find is not available in netio", H.raised(find, "a", "a"))
    H.has("ngx.re.match is not available in netio", H.raised(ngx.re.match, "a", "a"))
    H.has("ngx.req.get_headers is not available in netio", H.raised(ngx.req.get_headers))
    H.has("ngx.say is not available in netio", H.raised(ngx.say, "hi"))
    H.has("ngx.shared.cache is not available in netio",
      H.raised(function() return ngx.shared.cache end))
    H.has("ngx.ctx.x is not available in netio",
      H.raised(function() ngx.ctx.x = 1 end))
    assert.is_nil(ngx.no_such_thing, "an unknown name should be nil")
  end)
end)

describe("ngx.socket.tcp", function()
  it("send_takes_strings_numbers_and_nested_tables_and_receive_defaults_to_a_line", function()
    local r = H.run(function()
      local port = line_server()
      local s = ngx.socket.tcp()
      s:settimeout(2000)
      assert.are.equal(1, s:connect("127.0.0.1", port))
      local out = {}
      out.sent = s:send({ "a", 1, { "b", { 2.5, true, false } }, ngx.null, "\n" })
      out.line = s:receive()
      s:send(42)
      s:send("\n")
      out.n = s:receive("*l")
      s:send("hello\n")
      out.five = s:receive(5)
      out.lf = s:receive(1)
      s:send("x\n")
      out.any = s:receiveany(10)
      s:send("all\n")
      out.all = s:receive("*a")
      s:close()
      return out
    end)
    assert.are.equal(#"a1b2.5truefalsenull\n", r.sent, "send returns the bytes sent")
    assert.are.equal("a1b2.5truefalsenull", r.line)
    assert.are.equal("42", r.n)
    assert.are.equal("hello", r.five)
    assert.are.equal("\n", r.lf)
    assert.are.equal("x\n", r.any)
    assert.are.equal("a\nb\n", r.all)
  end)

  it("receiveuntil_reads_up_to_the_pattern", function()
    local a, b, c = H.run(function()
      local port = line_server()
      local s = assert(ngx.socket.connect("127.0.0.1", port))
      s:send("one--two--\n")
      local reader = s:receiveuntil("--")
      local x, y = reader(), reader()
      local z = s:receive()
      s:close()
      return x, y, z
    end)
    assert.are.same({ "one", "two", "" }, { a, b, c })
  end)

  it("settimeout_before_connect_is_in_milliseconds_and_a_read_timeout_keeps_the_socket", function()
    local err, dt, after = H.run(function()
      local port = line_server()
      local s = ngx.socket.tcp()
      s:settimeout(100)
      assert(s:connect("127.0.0.1", port))
      s:send("silent\n")
      local t0 = netio.now()
      local _, e = s:receive()
      local d = netio.now() - t0
      s:send("still\n")
      local line = s:receive()
      s:close()
      return e, d, line
    end)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.09 and dt < 1, "a 100 ms read timeout took " .. dt .. " s")
    assert.are.equal("still", after, "the socket should still work after a read timeout")
  end)

  it("settimeouts_sets_the_read_timeout_separately", function()
    local err, dt = H.run(function()
      local port = line_server()
      local s = ngx.socket.tcp()
      s:settimeouts(1000, 1000, 50)
      assert(s:connect("127.0.0.1", port))
      local t0 = netio.now()
      local _, e = s:receive()
      return e, netio.now() - t0
    end)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.045 and dt < 0.5, "a 50 ms read timeout took " .. dt .. " s")
  end)

  it("peer_close_gives_closed_with_the_partial_data_and_closes_the_socket", function()
    local line, err, partial, send_err, close_err = H.run(function()
      local port = line_server()
      local s = assert(ngx.socket.connect("127.0.0.1", port))
      s:send("bye\n")
      local l = s:receive()
      local _, e, p = s:receive()
      local _, se = s:send("x")
      local _, ce = s:close()
      return l, e, p, se, ce
    end)
    assert.are.equal("bye", line)
    assert.are.equal("closed", err)
    assert.are.equal("", partial)
    assert.are.equal("closed", send_err, "send after a failed receive should say closed")
    assert.are.equal("closed", close_err, "close after a failed receive should say closed")
  end)

  it("unconnected_socket_methods_return_closed", function()
    local r = H.run(function()
      local s = ngx.socket.tcp()
      return { s:receive(), select(2, s:receive()), select(2, s:send("x")),
               select(2, s:close()), select(2, s:setkeepalive()),
               select(2, s:getreusedtimes()), select(2, s:receiveuntil("x")()) }
    end)
    assert.are.same({ nil, "closed", "closed", "closed", "closed", "closed", "closed" },
      { r[1], r[2], r[3], r[4], r[5], r[6], r[7] })
  end)

  it("setkeepalive_pools_the_connection_and_connect_takes_it_back", function()
    local r = H.run(function()
      local port, st = line_server()
      local s = ngx.socket.tcp()
      assert(s:connect("127.0.0.1", port))
      local out = { first = s:getreusedtimes() }
      s:send("who\n")
      out.who1 = s:receive()
      out.keep = s:setkeepalive(10000, 5)
      out.after = select(2, s:send("x"))
      assert(s:connect("127.0.0.1", port)) -- the same object, again
      out.second = s:getreusedtimes()
      s:send("who\n")
      out.who2 = s:receive()
      -- A named pool is another pool.
      local n = ngx.socket.tcp()
      assert(n:connect("127.0.0.1", port, { pool = "other", pool_size = 2 }))
      out.named = n:getreusedtimes()
      assert.are.equal(1, n:setkeepalive())
      assert(n:connect("127.0.0.1", port, { pool = "other" }))
      out.named2 = n:getreusedtimes()
      ngx.sleep(0.05) -- the server's accept task runs
      out.accepted = st.accepted
      n:close()
      s:close()
      return out
    end)
    assert.are.equal(0, r.first)
    assert.are.equal("1", r.who1)
    assert.are.equal(1, r.keep, "setkeepalive should return 1")
    assert.are.equal("closed", r.after, "the object is closed once pooled")
    assert.are.equal(1, r.second, "the pooled connection should be taken back")
    assert.are.equal("1", r.who2, "the same server connection should answer")
    assert.are.equal(0, r.named, "a named pool should not hand out the default pool's")
    assert.are.equal(1, r.named2)
    assert.are.equal(2, r.accepted)
  end)

  it("backlog_limits_a_pools_open_connections_and_queues_the_next_connects", function()
    local r = H.run(function()
      local port, st = line_server()
      local opts = { pool = "lim", pool_size = 2, backlog = 1 }
      local a, b = ngx.socket.tcp(), ngx.socket.tcp()
      assert(a:connect("127.0.0.1", port, opts))
      assert(b:connect("127.0.0.1", port, opts))
      local out = {}
      -- A third waits for a slot; a fourth finds the queue full.
      local third = ngx.socket.tcp()
      local waiter = ngx.thread.spawn(function()
        local t0 = netio.now()
        local ok, err = third:connect("127.0.0.1", port, opts)
        return ok, err, netio.now() - t0
      end)
      ngx.sleep(0.05)
      local fourth = ngx.socket.tcp()
      out.full_ok, out.full_err = fourth:connect("127.0.0.1", port, opts)
      out.accepted_before = st.accepted
      a:close() -- frees a slot: the third connects
      local _, ok, err, waited = ngx.thread.wait(waiter)
      out.third_ok, out.third_err, out.waited = ok, err, waited
      -- setkeepalive frees a slot too; a connect that waits past its
      -- connect timeout gives "timeout".
      fourth:settimeout(100)
      local t0 = netio.now()
      out.late_ok, out.late_err = fourth:connect("127.0.0.1", port, opts)
      out.late_dt = netio.now() - t0
      assert.are.equal(1, b:setkeepalive())
      out.after_keep = fourth:connect("127.0.0.1", port, opts)
      out.reused = fourth:getreusedtimes()
      -- A connection the peer closed leaves the count by itself.
      third:send("bye\n")
      third:receive()
      out.peer_closed = select(2, third:receive())
      local fifth = ngx.socket.tcp()
      fifth:settimeout(1000)
      out.fifth = fifth:connect("127.0.0.1", port, opts)
      fourth:close()
      fifth:close()
      return out
    end)
    assert.is_nil(r.full_ok)
    assert.are.equal("too many waiting connect operations", r.full_err)
    assert.are.equal(2, r.accepted_before, "the third should not have connected yet")
    assert.are.equal(1, r.third_ok, "the queued connect should get the freed slot: "
      .. tostring(r.third_err))
    assert.is_true(r.waited >= 0.04, "the third connect waited " .. r.waited .. " s")
    assert.is_nil(r.late_ok)
    assert.are.equal("timeout", r.late_err)
    assert.is_true(r.late_dt >= 0.09 and r.late_dt < 1, "a 100 ms wait took " .. r.late_dt)
    assert.are.equal(1, r.after_keep, "setkeepalive should free a slot")
    assert.are.equal(1, r.reused, "and the connect take the pooled connection")
    assert.are.equal("closed", r.peer_closed)
    assert.are.equal(1, r.fifth, "a connection closed by the peer should free its slot")
  end)

  it("setkeepalive_refuses_unread_data_and_keeps_the_socket", function()
    local ok, err, line = H.run(function()
      local port = line_server()
      local s = assert(ngx.socket.connect("127.0.0.1", port))
      s:send("all\n")
      ngx.sleep(0.05)
      local o, e = s:setkeepalive()
      local l = s:receive()
      s:close()
      return o, e, l
    end)
    assert.is_nil(ok)
    assert.are.equal("unread data in buffer", err)
    assert.are.equal("a", line, "the socket should stay usable")
  end)

  it("connect_failures_return_nil_and_a_message", function()
    local refused, badport, ssl = H.run(function()
      local s = ngx.socket.tcp()
      local _, e1 = s:connect("127.0.0.1", H.DEAD_PORT)
      local _, e2 = s:connect("127.0.0.1", 70000)
      local p2 = line_server()
      assert(s:connect("127.0.0.1", p2))
      s:settimeout(500)
      local _, e3 = s:sslhandshake()
      s:close()
      return e1, e2, e3
    end)
    assert.are.equal("connection refused", refused)
    assert.are.equal("bad port number: 70000", badport)
    -- A plaintext peer: the handshake fails, or times out waiting.
    if netio.tls then
      assert.is_truthy(ssl == "timeout" or ssl:match("^handshake failed: "),
        "sslhandshake with a plaintext peer: " .. tostring(ssl))
    else
      H.has("built without TLS", ssl)
    end
  end)

  it("connect_takes_an_ipv6_literal_without_brackets", function()
    if not H.has_ipv6() then
      pending("no IPv6 loopback on this machine")
      return
    end
    local line = H.run(function()
      local l, port = H.listen("[::1]:0")
      netio.spawn(function()
        local c = l:accept()
        if c then c:send("six\n") c:close() end
      end)
      local s = ngx.socket.tcp()
      assert(s:connect("::1", port))
      local got = s:receive()
      s:close()
      return got
    end)
    assert.are.equal("six", line)
  end)

  it("connect_takes_a_unix_socket_path", function()
    if H.windows then
      pending("no Unix sockets in netio on Windows")
      return
    end
    local line = H.run(function()
      local path = H.tmpname()
      os.remove(path)
      local l = H.track(assert(netio.listen("unix:" .. path)))
      netio.spawn(function()
        local c = l:accept()
        if c then c:send("unix\n") c:close() end
      end)
      local s = ngx.socket.tcp()
      assert(s:connect("unix:" .. path, { pool = "u" }))
      local got = s:receive()
      s:close()
      return got
    end)
    assert.are.equal("unix", line)
  end)

  it("setoption_sets_known_options_and_refuses_others", function()
    local a, b, c = H.run(function()
      local port = line_server()
      local s = assert(ngx.socket.connect("127.0.0.1", port))
      local x = s:setoption("keepalive", true)
      local _, y = s:setoption("bogus", 1)
      s:close()
      local _, z = s:setoption("keepalive", true)
      return x, y, z
    end)
    assert.are.equal(1, a)
    assert.are.equal("unsupported option bogus", b)
    assert.are.equal("closed", c)
  end)

  it("settimeout_rejects_values_openresty_rejects", function()
    local s = ngx.socket.tcp()
    H.has("bad timeout value", H.raised(s.settimeout, s, 2 ^ 31))
    H.has("bad argument #1 to 'settimeout' (number expected, got table)",
      H.raised(s.settimeout, s, {}))
    H.has("bad argument #1 to 'send'", H.raised(function()
      H.run(function() return s:send(print) end)
    end))
  end)
end)

describe("ngx.socket.udp", function()

  -- A netio UDP echo on loopback: each datagram goes back to its sender.
  local function udp_echo()
    local u = H.track(assert(netio.udp("127.0.0.1:0")))
    netio.spawn(function()
      while true do
        local d, ip, port = u:recvfrom()
        if not d then break end
        u:sendto(d, ip .. ":" .. port)
      end
    end)
    local _, port = u:getsockname()
    return port
  end

  it("setpeername_send_and_receive_go_through_a_udp_echo", function()
    local ok, sent, got, closed = H.run(function()
      local port = udp_echo()
      local s = ngx.socket.udp()
      s:settimeout(1000)
      local o = s:setpeername("localhost", port)
      local n = s:send({ "da", { "ta" }, 1 })
      local d = s:receive()
      local _, c = s:close()
      return o, n, d, select(2, s:close()) or c
    end)
    assert.are.equal(1, ok, "setpeername should return 1")
    assert.are.equal(1, sent, "send should return 1")
    assert.are.equal("data1", got)
    assert.are.equal("closed", closed)
  end)

  it("receive_cuts_a_longer_datagram_to_size_silently", function()
    local got = H.run(function()
      local port = udp_echo()
      local s = ngx.socket.udp()
      s:settimeout(1000)
      assert(s:setpeername("127.0.0.1", port))
      s:send(("x"):rep(100))
      local d = s:receive(10)
      s:close()
      return d
    end)
    assert.are.equal(("x"):rep(10), got)
  end)

  it("receive_times_out_in_milliseconds", function()
    local err, dt = H.run(function()
      local u = H.track(assert(netio.udp("127.0.0.1:0")))
      local _, port = u:getsockname()
      local s = ngx.socket.udp()
      s:settimeout(100)
      assert(s:setpeername("127.0.0.1", port))
      local t0 = netio.now()
      local _, e = s:receive()
      s:close()
      return e, netio.now() - t0
    end)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.09 and dt < 1, "a 100 ms timeout took " .. dt .. " s")
  end)

  it("unconnected_udp_socket_returns_closed", function()
    local r = H.run(function()
      local s = ngx.socket.udp()
      return { select(2, s:send("x")), select(2, s:receive()), select(2, s:close()) }
    end)
    assert.are.same({ "closed", "closed", "closed" }, r)
  end)
end)
