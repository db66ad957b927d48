-- tls_examples_spec.lua: examples/https_get.lua and examples/tls_echo_server.lua
-- through the host, with the test CA the CMake fixture makes (NETIO_TEST_CA):
-- the client fetches a page from a TLS server in this spec and refuses one
-- whose certificate the CA did not sign; the echo server echoes over TLS and
-- refuses a key that does not match its certificate.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")
local CA, ca_missing = H.test_ca()
local missing = (not netio.tls and "netio built without TLS")
  or (not HOST and "NETIO_HOST is not set (the CMake test run sets it)")
  or ca_missing

local function script(name)
  return H.root .. (H.windows and "\\examples\\" or "/examples/") .. name
end

-- Start the host on `args` with its output in files, without waiting:
-- returns wait(), which waits for its end and gives code, stdout, stderr.
local function start_host(args)
  local out, err = H.tmpname(), H.tmpname()
  local q = {}
  for i, a in ipairs(args) do q[i] = H.quote(a) end
  local cmd = ("%s %s >%s 2>%s"):format(H.quote(HOST), table.concat(q, " "),
    H.quote(out), H.quote(err))
  if H.windows then
    cmd = '"' .. cmd .. '"'
  else
    cmd = "timeout -k 2 30 " .. cmd  -- the bound; CTest's is the one on Windows
  end
  local proc = assert(io.popen(cmd, "w"))
  return function()
    local _, _, code = proc:close()
    local o, e = H.read(out), H.read(err)
    os.remove(out)
    os.remove(err)
    if H.windows then o, e = o and o:gsub("\r\n", "\n"), e and e:gsub("\r\n", "\n") end
    return code, o, e
  end
end

-- A TLS HTTP server with `name`.pem/key answering any GET with `body`
-- (Connection: close); returns its port and a table counting requests.
local function https_server(name, body)
  local seen = { requests = 0 }
  local ctx = assert(netio.tls.context({ mode = "server", cert = CA[name .. ".pem"],
    key = CA[name .. ".key"] }))
  local _, port = H.server(function(c)
    local line = c:recv("*l", 10)
    if not line then return end
    seen.line = line
    repeat local h = c:recv("*l", 10) until not h or h == ""
    seen.requests = seen.requests + 1
    c:send(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
      :format(#body, body))
  end, { tls = ctx })
  return port, seen
end

describe("examples/https_get.lua", function()
  it("fetches_a_page_verified_against_the_test_ca", function()
    if missing then pending(missing) return end
    local body = "hello over TLS\n" .. ("x"):rep(100000) .. "\nend\n"
    local seen
    local wait = H.run(function()
      local port
      port, seen = https_server("server", body)
      local w = start_host({ script("https_get.lua"),
        ("https://localhost:%d/page?x=1"):format(port), CA["ca.pem"] })
      -- Serve until the example has been answered (the spec's server runs
      -- in this process while the host runs in its own).
      local deadline = netio.now() + 20
      while seen.requests == 0 and netio.now() < deadline do netio.sleep(0.05) end
      netio.sleep(0.2)
      return w
    end, 30)
    local code, out, err = wait()
    assert.are.equal(0, code, "https_get should exit with 0: " .. tostring(err))
    H.same(body, out, "the page on stdout")
    H.has("HTTP/1.1 200 OK", err, "the status line on stderr")
    assert.are.equal("GET /page?x=1 HTTP/1.1", seen.line, "the request line")
  end)

  it("refuses_a_server_whose_certificate_the_ca_did_not_sign", function()
    if missing then pending(missing) return end
    local seen
    local wait = H.run(function()
      local port
      port, seen = https_server("rogue", "secret")
      local w = start_host({ script("https_get.lua"),
        ("https://localhost:%d/"):format(port), CA["ca.pem"] })
      netio.sleep(1.5)
      return w
    end, 30)
    local code, out, err = wait()
    assert.are_not.equal(0, code, "https_get must fail: " .. tostring(out))
    H.has("certificate verify failed", err, "the example's error")
    assert.are.equal("", out, "nothing on stdout")
    assert.are.equal(0, seen.requests, "no request reached the server")
  end)
end)

describe("examples/tls_echo_server.lua", function()
  it("echoes_over_tls_to_a_client_that_trusts_the_test_ca", function()
    if missing then pending(missing) return end
    if H.windows then
      pending("not applicable on Windows: the test starts and stops the server with sh")
      return
    end
    local log, pidf = H.tmpname(), H.tmpname()
    os.execute(("%s %s %s %s 127.0.0.1:0 >%s 2>&1 & echo $! >%s"):format(H.quote(HOST),
      H.quote(script("tls_echo_server.lua")), H.quote(CA["server.pem"]),
      H.quote(CA["server.key"]), log, pidf))
    local pid = tonumber((H.read(pidf) or ""):match("%d+"))
    os.remove(pidf)
    assert(pid, "the server's pid")
    local ok, res = pcall(H.run, function()
      local port
      for _ = 1, 200 do
        port = (H.read(log) or ""):match("TLS echo server on 127%.0%.0%.1:(%d+)")
        if port then break end
        netio.sleep(0.05)
      end
      assert(port, "expected the server to print its port: " .. tostring(H.read(log)))
      local ctx = assert(netio.tls.context({ ca = CA["ca.pem"] }))
      local r = {}
      for i = 1, 3 do
        local c = H.connect("127.0.0.1:" .. port, { tls = ctx, timeout = 10 })
        local payload = H.data(200000, i)
        local sender = netio.spawn(function() return c:send(payload) end)
        r[i] = H.recv_all(c, #payload, 10) == payload
        sender:join(10)
        c:close()
      end
      -- A client that does not trust it is refused; the server goes on.
      local bad, err = netio.connect("127.0.0.1:" .. port,
        { tls = assert(netio.tls.context({ ca = CA["ca2.pem"] })), timeout = 10 })
      if bad then bad:close() end
      r.refused = bad == nil and err
      local c = H.connect("127.0.0.1:" .. port, { tls = ctx, timeout = 10 })
      c:send("still here\n")
      r.after = c:recv("*l", 10)
      return r
    end, 60)
    os.execute("kill " .. pid)
    local out = H.read(log) or ""
    os.remove(log)
    assert(ok, tostring(res) .. "\nserver log:\n" .. out)
    for i = 1, 3 do assert.is_true(res[i], "connection " .. i .. " echoed 200,000 bytes") end
    H.has("certificate verify failed", res.refused, "the untrusting client")
    assert.are.equal("still here", res.after, "the server serves after a refused client")
  end)

  it("exits_with_an_error_for_a_key_that_does_not_match_the_certificate", function()
    if missing then pending(missing) return end
    local code, _, err = H.sh(H.quote(HOST) .. " " .. H.quote(script("tls_echo_server.lua"))
      .. " " .. H.quote(CA["server.pem"]) .. " " .. H.quote(CA["other.key"])
      .. " 127.0.0.1:0", 20)
    assert.are_not.equal(0, code, "the server must not start: " .. tostring(err))
    H.has("key", tostring(err):lower(), "the error names the key")
  end)
end)
