-- tls_spec.lua: netio.tls -- contexts, TLS connect and listen, STARTTLS,
-- verification and its failures, SNI, ALPN, client certificates, session
-- resumption, close_notify, large transfers, outside senders; against
-- netio itself and against openssl s_server / s_client on loopback (Linux
-- programs, started through H.job: under Wine with `start /unix`). The
-- certificates come from tools/test-ca.sh (NETIO_TEST_CA, made by ctest's
-- test_ca fixture; made here into a temporary directory otherwise).
local H = require "helper"
local netio = H.netio

local CA = os.getenv("NETIO_TEST_CA")
if netio.tls and (CA == nil or CA == "") and not H.windows then
  CA = os.tmpname()
  os.remove(CA)
  assert(os.execute("bash " .. H.quote(H.root .. "/tools/test-ca.sh") .. " "
    .. H.quote(CA) .. " >/dev/null 2>&1"), "tools/test-ca.sh failed")
end
local function f(name) return CA .. "/" .. name end

local function server_ctx(extra)
  local o = { mode = "server", cert = f("server.pem"), key = f("server.key") }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(netio.tls.context(o))
end

local function client_ctx(extra)
  local o = { ca = f("ca.pem") }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(netio.tls.context(o))
end

-- A TLS echo server on 127.0.0.1:0 with ctx (or the test server context).
local function tls_echo(ctx, opts)
  opts = opts or {}
  opts.tls = ctx or server_ctx()
  return H.server(H.echo, opts)
end

if not netio.tls then
  describe("netio built without TLS", function()
    it("tls_option_raises_built_without_tls", function()
      local c, l = H.run(function()
        return H.raised(netio.connect, "127.0.0.1:1", { tls = true }),
          H.raised(netio.listen, "127.0.0.1:0", { tls = true })
      end)
      H.has("netio: built without TLS", c)
      H.has("netio: built without TLS", l)
    end)
    pending("the TLS specs: netio was built without OpenSSL (Windows until"
      .. " its OpenSSL build lands)")
  end)
  return
end


-- ---- peers: openssl s_server / s_client in the background -------------

-- Background jobs (H.job: Linux programs, from Wine too) the current
-- with_procs body started; each is stopped by its pid afterwards.
local procs = {}

-- A test CA file's path for the Linux programs' command lines, quoted.
local function uf(name) return H.sq(H.host_path(f(name))) end

-- Start sh command cmd in the background (stdout and stderr to one file,
-- stdin from the string stdin); returns its job (H.job), stopped at the
-- end of with_procs.
local function bg(cmd, stdin)
  local j = assert(H.job(cmd, stdin))
  procs[j] = true
  return j
end

-- Wait (in a task, without blocking the engine) for job j to end; false
-- when it still runs after limit seconds.
local function wait_exit(j, limit)
  return j:wait(limit or 5) ~= nil
end

-- Stop job j (if it still runs) and remove its files; its output.
local function stop(j)
  local out = j:output()
  if procs[j] then
    j:stop()
    procs[j] = nil
  end
  return out
end

-- The port of the openssl s_server job j listens on: started with
-- `-accept 127.0.0.1:0`, it prints "ACCEPT 127.0.0.1:<port>" once it
-- listens. Read from its output rather than found by connecting to a port
-- given out and taken back: that port may meanwhile be another spec's
-- listener (the specs run in parallel), which would get stray connections.
local function accept_port(j)
  local deadline = netio.now() + 10
  repeat
    local port = (j:output() or ""):match("ACCEPT [%d%.]+:(%d+)")
    if port then return tonumber(port) end
    if not j:running() then break end
    netio.sleep(0.05)
  until netio.now() > deadline
  error("openssl s_server did not listen; it wrote: " .. tostring(j:output()))
end

-- openssl s_server with args on a port of the kernel's choice.
local function s_server(args)
  local j = bg("exec openssl s_server -accept 127.0.0.1:0 " .. args)
  return accept_port(j), j
end

-- Run body(...) with every background process stopped afterwards.
local function with_procs(body, limit)
  local ok, a, b, c, d = pcall(H.run, body, limit)
  for j in pairs(procs) do stop(j) end
  if not ok then error(a, 0) end
  return a, b, c, d
end

-- Connect with TLS; returns conn or nil, err (nothing tracked on failure).
local function tls_connect(addr, opts)
  local c, err = netio.connect(addr, opts)
  if c then H.track(c) end
  return c, err
end

describe("netio.tls", function()
  it("tls_connect_handshakes_and_echoes_over_tls", function()
    local got, info = H.run(function()
      local _, port = tls_echo()
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      assert(c:send("hello\n"))
      return c:recv("*l", 5), c:tlsinfo()
    end)
    assert.are.equal("hello", got)
    assert.is_table(info, "tlsinfo() of a TLS connection")
    assert.are.equal("TLSv1.3", info.protocol)
    assert.is_string(info.cipher)
    assert.are.equal("/CN=localhost", info.peer_subject)
    assert.are.equal("localhost", info.servername)
    assert.is_false(info.resumed)
  end)

  -- ---- contexts ---------------------------------------------------------

  it("context_missing_cert_file_returns_nil_and_reason", function()
    local ctx, err = netio.tls.context{ mode = "server",
      cert = f("nonexistent.pem"), key = f("server.key") }
    assert.is_nil(ctx)
    H.has("cert: cannot open " .. f("nonexistent.pem"), err)
    H.has("No such file", err)
  end)

  it("context_missing_key_file_returns_nil_and_reason", function()
    local ctx, err = netio.tls.context{ mode = "server",
      cert = f("server.pem"), key = f("nonexistent.key") }
    assert.is_nil(ctx)
    H.has("key: cannot open", err)
  end)

  it("context_bad_pem_returns_nil_and_reason", function()
    local ctx, err = netio.tls.context{ mode = "server",
      cert = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
      key = f("server.key") }
    assert.is_nil(ctx)
    assert.is_truthy(err:match("^cert: .+"), "expected cert: <reason>, got " .. err)
    local ctx2, err2 = netio.tls.context{ mode = "server",
      cert = f("server.key"), key = f("server.key") }
    assert.is_nil(ctx2)
    assert.is_truthy(err2:match("^cert: .+"), "a key file as cert: " .. err2)
  end)

  it("context_key_not_matching_cert_returns_nil_and_reason", function()
    local ctx, err = netio.tls.context{ mode = "server",
      cert = f("server.pem"), key = f("other.key") }
    assert.is_nil(ctx)
    H.has("key: ", err)
    H.has("mismatch", err)
  end)

  it("context_server_without_cert_returns_nil", function()
    local ctx, err = netio.tls.context{ mode = "server" }
    assert.is_nil(ctx)
    H.has("cert", err)
  end)

  it("context_unknown_option_raises_naming_it", function()
    H.has("unknown option 'certfile'", H.raised(netio.tls.context,
      { certfile = "x" }))
    H.has("mode", H.raised(netio.tls.context, { mode = "both" }))
    H.has("protocols", H.raised(netio.tls.context, { protocols = "sslv3" }))
  end)

  it("context_takes_pem_strings", function()
    local got = H.run(function()
      local sctx = assert(netio.tls.context{ mode = "server",
        cert = H.read(f("server.pem")), key = H.read(f("server.key")) })
      local _, port = tls_echo(sctx)
      local c = H.connect("localhost:" .. port, { timeout = 5,
        tls = assert(netio.tls.context{ ca = H.read(f("ca.pem")) }) })
      assert(c:send("pem\n"))
      return c:recv("*l", 5)
    end)
    assert.are.equal("pem", got)
  end)

  it("tls_option_that_is_not_a_context_raises", function()
    local msg = H.run(function()
      return H.raised(netio.connect, "127.0.0.1:1", { tls = "yes" })
    end)
    H.has("tls", msg)
    msg = H.run(function()
      return H.raised(netio.listen, "127.0.0.1:0", { tls = client_ctx() })
    end)
    H.has("server context", msg)
  end)

  -- ---- verification -----------------------------------------------------

  local function verify_err(cert, key, addr, cctx, opts)
    return H.run(function()
      local _, port = tls_echo(netio.tls.context{ mode = "server",
        cert = f(cert), key = f(key) })
      local o = { tls = cctx or client_ctx(), timeout = 5 }
      for k, v in pairs(opts or {}) do o[k] = v end
      local c, err = tls_connect((addr or "localhost") .. ":" .. port, o)
      return c, err
    end)
  end

  it("tls_true_verifies_against_the_system_store", function()
    local c, err = verify_err("server.pem", "server.key", nil, true)
    assert.is_nil(c)
    H.is_error("certificate verify failed: unable to get local issuer"
      .. " certificate", err)
  end)

  it("expired_peer_fails_verification", function()
    local c, err = verify_err("expired.pem", "expired.key")
    assert.is_nil(c)
    H.is_error("certificate verify failed: certificate has expired", err)
  end)

  it("self_signed_peer_fails_verification", function()
    local c, err = verify_err("self.pem", "self.key")
    assert.is_nil(c)
    H.has("certificate verify failed: self", err)
    H.has("signed certificate", err)
  end)

  it("rogue_ca_peer_fails_verification", function()
    local c, err = verify_err("rogue.pem", "rogue.key")
    assert.is_nil(c)
    H.is_error("certificate verify failed: unable to get local issuer"
      .. " certificate", err)
  end)

  it("server_whose_certificate_the_client_refuses_hears_why", function()
    -- The client's alert reaches the server before the connection closes:
    -- the server's handshake fails with the client's reason, not with a
    -- bare close.
    local cerr, serr = H.run(function()
      local l, port = H.listen("127.0.0.1:0")
      local t = netio.spawn(function()
        local s = H.track(assert(l:accept(5)))
        local ok, err = s:starttls(netio.tls.context{ mode = "server",
          cert = f("rogue.pem"), key = f("rogue.key") }, { timeout = 5 })
        assert(not ok, "the server's handshake should fail")
        return err
      end)
      local _, err = tls_connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      local _, e2 = t:join(10)
      return err, e2
    end)
    H.has("certificate verify failed", cerr)
    H.has("alert", serr, "the server's error should carry the client's alert")
    H.has("unknown ca", serr)
  end)

  it("hostname_mismatch_fails_verification", function()
    local c, err = verify_err("other.pem", "other.key")
    assert.is_nil(c)
    H.is_error("certificate verify failed: hostname mismatch", err)
  end)

  it("servername_option_is_checked_instead_of_the_host", function()
    local c, err = verify_err("server.pem", "server.key", "127.0.0.1", nil,
      { servername = "other.example" })
    assert.is_nil(c)
    H.is_error("certificate verify failed: hostname mismatch", err)
    c, err = verify_err("other.pem", "other.key", "127.0.0.1", nil,
      { servername = "other.example" })
    assert.is_truthy(c, "servername other.example against its certificate: "
      .. tostring(err))
  end)

  it("ip_address_is_checked_against_the_certificate_ip_san", function()
    local c, err = verify_err("server.pem", "server.key", "127.0.0.1")
    assert.is_truthy(c, "127.0.0.1 is in server.pem: " .. tostring(err))
    c, err = verify_err("other.pem", "other.key", "127.0.0.1")
    assert.is_nil(c)
    H.is_error("certificate verify failed: IP address mismatch", err)
  end)

  it("ipv6_address_is_checked_against_the_certificate_ip_san", function()
    if not H.has_ipv6() then
      pending("no IPv6 loopback on this machine")
      return
    end
    local info, err = H.run(function()
      local l6, port6 = H.listen("[::1]:0", { tls = server_ctx() })
      netio.spawn(function()
        local s = l6:accept()
        if s then H.track(s) end
      end)
      local c, e = tls_connect("[::1]:" .. port6, { tls = client_ctx(),
        timeout = 5 })
      return c and c:tlsinfo(), e
    end)
    assert.is_table(info, "::1 is in server.pem: " .. tostring(err))
    assert.is_nil(info.servername, "no SNI is sent for an IP address")
  end)

  it("verify_false_accepts_any_peer", function()
    local c, err = verify_err("self.pem", "self.key", nil, nil,
      { verify = false })
    assert.is_truthy(c, "verify = false: " .. tostring(err))
    c, err = verify_err("rogue.pem", "rogue.key", nil,
      client_ctx{ verify = false })
    assert.is_truthy(c, "a context with verify = false: " .. tostring(err))
  end)

  -- ---- handshake failures and hostile peers ------------------------------

  it("plaintext_peer_to_a_tls_listener_is_dropped_and_the_listener_serves_on",
    function()
    local plain_err, got, accepted = H.run(function()
      local n = 0
      local l, port = H.listen("127.0.0.1:0", { tls = server_ctx() })
      netio.spawn(function()
        while true do
          local s = l:accept()
          if not s then return end
          n = n + 1
          H.track(s)
          netio.spawn(H.echo, s)
        end
      end)
      local p = H.connect("127.0.0.1:" .. port)
      assert(p:send("GET / HTTP/1.0\r\n\r\n"))
      local d, err = p:recv("*a", 5)
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      assert(c:send("after\n"))
      assert(d ~= nil, "recv('*a') failed: " .. tostring(err))
      return d, c:recv("*l", 5), n
    end)
    assert.is_nil(plain_err:find("HTTP", 1, true), "plaintext came back")
    assert.are.equal("after", got)
    assert.are.equal(1, accepted, "accept returned only the TLS connection")
  end)

  it("tls_to_a_plaintext_server_fails_the_handshake", function()
    local c, err = H.run(function()
      local _, port = H.server(function(s)
        s:send("220 plain text server ready\r\n")
        s:recv("*a", 2)
      end)
      return tls_connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
    end)
    assert.is_nil(c)
    H.has("handshake failed: ", err)
  end)

  it("peer_closing_mid_handshake_is_reported_as_such_not_as_another_failure",
    function()
    local a_err, b_err = H.run(function()
      local _, slow = H.server(function(s) s:recv(10, 0.3) end)
      local _, plain = H.server(function(s)
        s:send("220 plain text server ready\r\n")
        s:recv("*a", 2)
      end)
      local a = netio.spawn(function()
        return select(2, tls_connect("localhost:" .. slow, {
          tls = client_ctx(), timeout = 5 }))
      end)
      -- B fails while A waits for its server: its reason stays in the
      -- thread's OpenSSL error queue.
      local _, eb = tls_connect("localhost:" .. plain, { tls = client_ctx(),
        timeout = 5 })
      local _, ea = a:join(5)
      return ea, eb
    end)
    H.has("handshake failed: ", b_err)
    assert.are.equal("handshake failed: the peer closed the connection", a_err)
  end)

  it("server_that_stalls_mid_handshake_times_out_within_the_connect_timeout",
    function()
    local took, c, err = H.run(function()
      local _, port = H.server(function(s) s:recv("*a", 5) end)
      return H.timed(tls_connect, "localhost:" .. port, { tls = client_ctx(),
        timeout = 0.3 })
    end)
    assert.is_nil(c)
    assert.are.equal("timeout", err)
    assert.is_true(took >= 0.25 and took < 2, "timed out after " .. took .. " s")
  end)

  -- The server's timer starts when it accepts, which is after the client
  -- began to connect: timed from before the connect, the client sees at
  -- least the timeout, less the engine's clock step (its instant is taken
  -- once a turn; Windows' timers are coarse), for which 0.1 s is allowed.
  -- "At once" would be near 0 and "never" is the 5 s recv timeout.
  it("client_that_stalls_mid_handshake_is_dropped_after_handshake_timeout",
    function()
    local took, got = H.run(function()
      local l, port = H.listen("127.0.0.1:0", { tls = server_ctx(),
        handshake_timeout = 0.5 })
      netio.spawn(function()
        while true do
          local s = l:accept()
          if not s then return end
          H.track(s)
          netio.spawn(H.echo, s)
        end
      end)
      local t0 = netio.now()
      local p = H.connect("127.0.0.1:" .. port)
      assert(p:send("\22\3\1\0\200")) -- a record header, then silence
      local d, err = p:recv("*a", 5)
      local took = netio.now() - t0
      assert(d == "", ("the stalled client: expected the server to close"
        .. " (\"\"), got %s, %s"):format(tostring(d), tostring(err)))
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      assert(c:send("next\n"))
      return took, c:recv("*l", 5)
    end)
    assert.is_true(took >= 0.4 and took < 2, "dropped after " .. took
      .. " s (handshake_timeout 0.5 s)")
    assert.are.equal("next", got)
  end)

  -- A plain TCP relay between a client and a TLS server that lets through
  -- whole TLS records, and cuts the first record larger than `cut` bytes
  -- from server to client in half, then closes (or resets).
  local function cutting_relay(target_port, cut, reset)
    return H.server(function(a)
      local b = H.connect("127.0.0.1:" .. target_port)
      netio.spawn(function()
        while true do
          local d = a:recv()
          if not d or not b:send(d) then return end
        end
      end)
      local buf = ""
      while true do
        local d = b:recv()
        if not d then return end
        buf = buf .. d
        while #buf >= 5 do
          local len = (buf:byte(4) << 8) | buf:byte(5)
          if #buf < 5 + len then break end
          if len > cut then
            if reset then
              a:setoption("linger", 0)
            else
              a:send(buf:sub(1, 5 + len // 2))
            end
            a:close()
            b:close()
            return
          end
          a:send(buf:sub(1, 5 + len))
          buf = buf:sub(6 + len)
        end
      end
    end)
  end

  it("truncated_record_fails_the_read_and_leaks_no_plaintext", function()
    local d, err, partial = H.run(function()
      local _, tport = H.server(function(s)
        s:recv("*l", 5)
        s:send(("A"):rep(5000))
        netio.sleep(1)
      end, { tls = server_ctx() })
      local _, rport = cutting_relay(tport, 4000)
      local c = H.connect("localhost:" .. rport, { tls = client_ctx(),
        timeout = 5 })
      assert(c:send("go\n"))
      return c:recv(5000, 5)
    end)
    assert.is_nil(d)
    assert.are.equal("truncated record", err)
    assert.are.equal("", partial, "no plaintext of the cut record")
  end)

  it("peer_reset_after_the_handshake_is_closed", function()
    local d, err = H.run(function()
      local _, tport = H.server(function(s)
        s:recv("*l", 5)
        s:send(("A"):rep(5000))
        netio.sleep(1)
      end, { tls = server_ctx() })
      local _, rport = cutting_relay(tport, 4000, true)
      local c = H.connect("localhost:" .. rport, { tls = client_ctx(),
        timeout = 5 })
      assert(c:send("go\n"))
      return c:recv(5000, 5)
    end)
    assert.is_nil(d)
    assert.are.equal("closed", err)
  end)

  it("starttls_twice_returns_nil_already_started", function()
    local ok, err = H.run(function()
      local _, port = tls_echo()
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      return c:starttls(client_ctx())
    end)
    assert.is_nil(ok)
    assert.are.equal("TLS already started", err)
  end)

  -- ---- transfers --------------------------------------------------------

  it("integrity_64_MiB_each_way", function()
    local N = 64 << 20
    local up, down = H.run(function()
      local data = H.data(N, 7)
      local _, port = H.server(function(s)
        local got = H.recv_all(s, N, 30)
        s:send(got == data and "same\n" or "DIFFERENT\n")
        assert(s:send(data))
        s:flush(30)
      end, { tls = server_ctx() })
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      assert(c:send(data)) -- one 64 MiB send
      local verdict = c:recv("*l", 30)
      local back = H.recv_all(c, N, 30)
      H.same(data, back, "64 MiB from the server")
      return verdict, #back
    end, 90)
    assert.are.equal("same", up, "64 MiB from the client")
    assert.are.equal(N, down)
  end)

  it("a_flood_of_records_is_not_received_past_the_reader", function()
    local N = 16 << 20
    local held, total = H.run(function()
      local data = H.data(N, 3)
      local _, port = H.server(function(s)
        assert(s:send(data))
        s:flush(30)
      end, { tls = server_ctx() })
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      netio.sleep(0.5) -- not reading: the sender fills the socket buffers
      local held = c:getstats().bytes_in
      local back = H.recv_all(c, N, 30)
      H.same(data, back)
      return held, #back
    end, 60)
    assert.is_true(held < (1 << 20), ("%d bytes received while nobody read"
      .. " (input must stay bounded)"):format(held))
    assert.are.equal(N, total)
  end)

  it("a_line_longer_than_the_input_window_arrives_whole", function()
    local got = H.run(function()
      local line = ("L"):rep(300000)
      local _, port = H.server(function(s)
        s:send(line .. "\nnext\n")
        s:recv("*a", 5)
      end, { tls = server_ctx() })
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      netio.sleep(0.2) -- everything arrived before the recv
      local l = c:recv("*l", 5)
      return l and #l, c:recv("*l", 5)
    end)
    assert.are.equal(300000, got)
  end)

  it("outside_sends_from_a_thread_are_encrypted", function()
    local got = H.run(function()
      local l, port = H.listen("127.0.0.1:0", { tls = server_ctx() })
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      local s = H.track(assert(l:accept(5)))
      local th = netio.thread(function(id)
        local n = require "netio"
        for i = 1, 100 do
          assert(n.send(id, ("line %d\n"):format(i)))
        end
        return true
      end, s:id())
      assert(th:join(10))
      local lines = {}
      for i = 1, 100 do lines[i] = c:recv("*l", 5) end
      return table.concat(lines, ",")
    end)
    local want = {}
    for i = 1, 100 do want[i] = "line " .. i end
    assert.are.equal(table.concat(want, ","), got)
  end)

  -- ---- STARTTLS, SNI, ALPN, client certificates, sessions -----------------

  it("starttls_after_a_plaintext_exchange_with_pipelined_hello", function()
    local cgot, sgot, sinfo = H.run(function()
      local l, port = H.listen("127.0.0.1:0")
      local srv = netio.spawn(function()
        local s = H.track(assert(l:accept(5)))
        assert(s:recv("*l", 5) == "EHLO x")
        s:send("250 ok\r\n")
        assert(s:recv("*l", 5) == "STARTTLS")
        assert(s:starttls(server_ctx()))
        local line = s:recv("*l", 5)
        s:send("secret:" .. line .. "\n")
        return line, s:tlsinfo()
      end)
      local c = H.connect("127.0.0.1:" .. port)
      c:send("EHLO x\r\n")
      assert(c:recv("*l", 5) == "250 ok")
      -- The ClientHello follows the command at once, in the same turn.
      c:send("STARTTLS\r\n")
      assert(c:starttls(client_ctx(), { servername = "localhost" }))
      c:send("hello\n")
      local got = c:recv("*l", 5)
      local _, line, info = srv:join(5)
      return got, line, info
    end)
    assert.are.equal("secret:hello", cgot)
    assert.are.equal("hello", sgot)
    assert.are.equal("localhost", sinfo.servername)
  end)

  local function sni_subject(sni, servername)
    return H.run(function()
      local _, port = tls_echo(server_ctx{ sni = sni })
      local c = H.connect("127.0.0.1:" .. port, { tls = client_ctx(),
        servername = servername, timeout = 5 })
      return c:tlsinfo().peer_subject
    end)
  end

  it("sni_table_chooses_the_server_certificate", function()
    local other = function()
      return assert(netio.tls.context{ mode = "server", cert = f("other.pem"),
        key = f("other.key") })
    end
    assert.are.equal("/CN=other.example",
      sni_subject({ ["other.example"] = other() }, "other.example"))
    assert.are.equal("/CN=localhost",
      sni_subject({ ["other.example"] = other() }, "localhost"))
  end)

  it("sni_function_chooses_the_server_certificate", function()
    local asked = {}
    local function pick(name)
      asked[#asked + 1] = name
      if name == "other.example" then
        return assert(netio.tls.context{ mode = "server",
          cert = f("other.pem"), key = f("other.key") })
      end
    end
    assert.are.equal("/CN=other.example", sni_subject(pick, "other.example"))
    assert.are.equal("/CN=localhost", sni_subject(pick, "localhost"))
    assert.are.same({ "other.example", "localhost" }, asked)
  end)

  it("alpn_selects_the_common_protocol_on_both_ends", function()
    local calpn, salpn = H.run(function()
      local l, port = H.listen("127.0.0.1:0", { tls = server_ctx{
        alpn = { "h2", "http/1.1" } } })
      local c = H.connect("localhost:" .. port, { timeout = 5,
        tls = client_ctx{ alpn = { "http/1.1" } } })
      local s = H.track(assert(l:accept(5)))
      return c:tlsinfo().alpn, s:tlsinfo().alpn
    end)
    assert.are.equal("http/1.1", calpn)
    assert.are.equal("http/1.1", salpn)
  end)

  it("client_certificate_required_by_a_verifying_server", function()
    local subject, nocert_accepted, nocert_err = H.run(function()
      local l, port = H.listen("127.0.0.1:0", { tls = server_ctx{
        verify = true, ca = f("ca.pem") } })
      local c = H.connect("localhost:" .. port, { timeout = 5,
        tls = client_ctx{ cert = f("client.pem"), key = f("client.key") } })
      local s = H.track(assert(l:accept(5)))
      assert(c)
      local subj = s:tlsinfo().peer_subject
      -- Without a certificate: the server refuses it (TLS 1.3 tells the
      -- client after its side of the handshake is done).
      local c2, err = tls_connect("localhost:" .. port, { timeout = 5,
        tls = client_ctx() })
      if c2 then
        local d
        d, err = c2:recv("*l", 5)
        assert(d == nil, "a client without a certificate got data")
      end
      local s2 = l:accept(0.5)
      return subj, s2 ~= nil, err
    end)
    assert.is_truthy(subject and subject:match("CN="), "client subject: "
      .. tostring(subject))
    assert.is_false(nocert_accepted, "accept returned a client without a"
      .. " certificate")
    -- The server's alert reached the client: it says why.
    H.has("certificate required", nocert_err,
      "the client's error should carry the server's alert")
  end)

  it("client_sessions_are_resumed", function()
    local first, second = H.run(function()
      local _, port = tls_echo()
      local ctx = client_ctx()
      local function once()
        local c = H.connect("localhost:" .. port, { tls = ctx, timeout = 5 })
        assert(c:send("x\n"))
        assert(c:recv("*l", 5) == "x") -- the session ticket came meanwhile
        local r = c:tlsinfo().resumed
        c:close()
        return r
      end
      return once(), once()
    end)
    assert.is_false(first)
    assert.is_true(second, "the second connection resumed the session")
  end)

  it("close_sends_close_notify_and_the_peer_sees_a_clean_eof", function()
    local d, err = H.run(function()
      local _, port = H.server(function(s)
        s:send("bye")
      end, { tls = server_ctx() })
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      return c:recv("*a", 5)
    end)
    assert.are.equal("bye", d, "recv('*a') ends cleanly: " .. tostring(err))
  end)

  it("tls_connections_are_pooled_apart_from_plain_ones", function()
    local plain_reused, plain_tls, again, again_tls, echoed = H.run(function()
      local _, port = tls_echo()
      local addr = "localhost:" .. port
      -- A plain connection to the same address, idle in the pool ...
      local p = H.connect(addr)
      assert(p:setkeepalive(10))
      -- ... is not what a connect with tls gets.
      local c = H.connect(addr, { tls = client_ctx(), timeout = 5 })
      local r1, t1 = c:getreusedtimes(), c:tlsinfo() ~= nil
      assert(c:send("x\n"))
      assert(c:recv("*l", 5) == "x")
      assert(c:setkeepalive(10))
      local c2 = H.connect(addr, { tls = client_ctx(), timeout = 5 })
      assert(c2:send("again\n"))
      return r1, t1, c2:getreusedtimes(), c2:tlsinfo() ~= nil,
        c2:recv("*l", 5)
    end)
    assert.are.equal(0, plain_reused, "a TLS connect took a plain pooled one")
    assert.is_true(plain_tls)
    assert.are.equal(1, again, "the pooled TLS connection is reused")
    assert.is_true(again_tls)
    assert.are.equal("again", echoed)
  end)

  -- ---- openssl as the peer ----------------------------------------------

  it("client_against_openssl_s_server", function()
    local got, info = with_procs(function()
      local port = s_server(("-cert %s -key %s -rev"):format(
        uf("server.pem"), uf("server.key")))
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      assert(c:send("hello netio\n"))
      return c:recv("*l", 5), c:tlsinfo()
    end, 20)
    assert.are.equal("oiten olleh", got)
    assert.are.equal("/CN=localhost", info.peer_subject)
  end)

  it("client_against_openssl_s_server_with_tls12", function()
    local info = with_procs(function()
      local port = s_server(("-cert %s -key %s -rev -tls1_2"):format(
        uf("server.pem"), uf("server.key")))
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      assert(c:send("x\n"))
      assert(c:recv("*l", 5) == "x")
      return c:tlsinfo()
    end, 20)
    assert.are.equal("TLSv1.2", info.protocol)
  end)

  it("client_against_an_untrusted_openssl_s_server_fails_verification",
    function()
    local c, err = with_procs(function()
      local port = s_server(("-cert %s -key %s -rev"):format(
        uf("rogue.pem"), uf("rogue.key")))
      return tls_connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
    end, 20)
    assert.is_nil(c)
    H.has("certificate verify failed", err)
  end)

  it("server_against_openssl_s_client", function()
    local out, line = with_procs(function()
      local l, port = H.listen("127.0.0.1:0", { tls = server_ctx() })
      local j = bg(("exec openssl s_client -connect 127.0.0.1:%d"
        .. " -CAfile %s -verify_return_error -servername localhost -quiet")
        :format(port, uf("ca.pem")), "ping from s_client\n")
      local s = H.track(assert(l:accept(5)))
      local got = s:recv("*l", 5)
      s:send("pong from netio\n")
      s:close()
      assert(wait_exit(j, 5), "s_client still runs after the close")
      local o = stop(j)
      return o, got
    end, 20)
    assert.are.equal("ping from s_client", line)
    H.has("pong from netio", out)
  end)

  -- ---- netio.ngx ----------------------------------------------------------

  it("ngx_sslhandshake_upgrades_a_cosocket", function()
    local ngx = require "netio.ngx"
    local sess, line, bad, good_err, noverify = H.run(function()
      local _, port = tls_echo()
      local _, rport = tls_echo(netio.tls.context{ mode = "server",
        cert = f("rogue.pem"), key = f("rogue.key") })
      ngx.ssl_trusted_certificate = f("ca.pem")
      local s = ngx.socket.tcp()
      s:settimeout(5000)
      assert(s:connect("127.0.0.1", port))
      local sess, err = s:sslhandshake(nil, "localhost", true)
      assert(sess, "sslhandshake: " .. tostring(err))
      assert(s:send("via ngx\n"))
      local l = s:receive()
      s:close()
      -- ssl_verify true against an untrusted server fails ...
      local s2 = ngx.socket.tcp()
      s2:settimeout(5000)
      assert(s2:connect("127.0.0.1", rport))
      local ok, e = s2:sslhandshake(false, "localhost", true)
      -- ... and is off by default.
      local s3 = ngx.socket.tcp()
      s3:settimeout(5000)
      assert(s3:connect("127.0.0.1", rport))
      local ok3 = s3:sslhandshake(false, "localhost")
      s3:close()
      ngx.ssl_trusted_certificate = nil
      return sess, l, ok, e, ok3
    end)
    assert.is_truthy(sess)
    assert.are.equal("via ngx", line)
    assert.is_nil(bad)
    H.has("certificate verify failed", good_err)
    assert.is_true(noverify, "ssl_verify defaults to false; reused_session"
      .. " false gives true")
  end)

  it("close_sends_close_notify_to_openssl_s_client", function()
    local out = with_procs(function()
      local l, port = H.listen("127.0.0.1:0", { tls = server_ctx() })
      local j = bg(("exec openssl s_client -connect 127.0.0.1:%d"
        .. " -CAfile %s -servername localhost -msg -quiet")
        :format(port, uf("ca.pem")))
      local s = assert(l:accept(5))
      s:send("bye\n")
      s:close()
      assert(wait_exit(j, 5), "s_client still runs after the close")
      local o = stop(j)
      return o
    end, 20)
    H.has("bye", out)
    H.has("<<< TLS 1.3, Alert [length 0002], warning close_notify", out)
  end)

  it("renegotiation_asked_by_the_client_is_refused", function()
    local out, err = with_procs(function()
      local l, port = H.listen("127.0.0.1:0", { tls = server_ctx() })
      -- "R" read on its own makes s_client renegotiate (TLS 1.2).
      local j = bg(("(printf 'hello\\n'; sleep 1.5; printf 'R\\n';"
        .. " sleep 2) | timeout 10 openssl s_client -connect 127.0.0.1:%d"
        .. " -CAfile %s -servername localhost -tls1_2 -msg")
        :format(port, uf("ca.pem")))
      local s = assert(l:accept(5))
      assert(s:recv("*l", 5) == "hello")
      local d, e = s:recv("*l", 5)
      assert(d == nil, "got " .. tostring(d) .. " after the renegotiation")
      s:close()
      assert(wait_exit(j, 5), "s_client still runs")
      local o = stop(j)
      return o, e
    end, 20)
    H.has("warning no_renegotiation", out)
    H.has("tls: ", err)
  end)

  it("renegotiation_asked_by_the_server_is_refused", function()
    local out, d, err = with_procs(function()
      -- "r" read on its own makes s_server renegotiate (TLS 1.2), once
      -- the client is connected.
      local j = bg(("(sleep 2; printf 'r\\n'; sleep 2) | timeout 10"
        .. " openssl s_server -accept 127.0.0.1:0 -cert %s -key %s -tls1_2"
        .. " -msg"):format(uf("server.pem"), uf("server.key")))
      local port = accept_port(j)
      local c = H.connect("localhost:" .. port, { tls = client_ctx(),
        timeout = 5 })
      local got, e = c:recv("*l", 5)
      c:close()
      wait_exit(j, 5)
      local o = stop(j)
      return o, got, e
    end, 20)
    H.has("warning no_renegotiation", out)
    assert.is_nil(d)
    assert.is_string(err)
  end)
end)
