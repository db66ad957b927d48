-- unix_spec.lua: "unix:/path" addresses for netio.listen and netio.connect
-- (Unix domain stream sockets), their names, their errors and the socket
-- file's life. Windows refuses them for now (EAFNOSUPPORT): the iocp
-- backend's AcceptEx/ConnectEx are not documented for AF_UNIX and Wine
-- has no AF_UNIX to test them on.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")

-- A fresh path in the temporary directory, nothing there yet.
local function sock_path()
  local p = H.tmpname()
  os.remove(p)
  return p .. ".sock"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  -- A socket file cannot be opened: ask the shell.
  return os.execute("test -e " .. H.quote(path)) == true
end

describe("unix sockets", function()
  if H.windows then
    it("listen_and_connect_on_unix_addresses_return_EAFNOSUPPORT_on_windows",
       function()
      local l, lmsg, lcode, c, cmsg, ccode = H.run(function()
        local l, lm, lc = netio.listen("unix:C:/netio-test.sock")
        local c, cm, cc = netio.connect("unix:C:/netio-test.sock")
        return l, lm, lc, c, cm, cc
      end)
      assert.is_nil(l)
      assert.are.equal("EAFNOSUPPORT", lcode)
      assert.truthy(lmsg:find("address family not supported", 1, true), lmsg)
      assert.is_nil(c)
      assert.are.equal("EAFNOSUPPORT", ccode)
      assert.truthy(cmsg:find("address family not supported", 1, true), cmsg)
    end)
    it("unix_sockets_on_windows", function()
      pending("not on Windows yet: AcceptEx/ConnectEx are not documented for"
        .. " AF_UNIX, and Wine has no AF_UNIX to test them on")
    end)
    return
  end

  it("listen_and_connect_on_a_unix_path_carry_data_both_ways", function()
    local path = sock_path()
    local reply = H.run(function()
      local l = H.listen("unix:" .. path)
      netio.spawn(function()
        local s = l:accept(5)
        if s then H.track(s) H.echo(s) end
      end)
      local c = H.connect("unix:" .. path)
      assert(c:send("over unix\n"))
      return c:recv("*l", 2)
    end)
    assert.are.equal("over unix", reply)
  end)

  it("unix_names_are_unix_colon_path_with_a_nil_port", function()
    local path = sock_path()
    local r = H.run(function()
      local l = H.listen("unix:" .. path)
      local got = {}
      netio.spawn(function()
        local s = l:accept(5)
        H.track(s)
        got.speer, got.speerport = s:getpeername()
        got.sname, got.snameport = s:getsockname()
      end)
      local c = H.connect("unix:" .. path)
      got.lname, got.lport = l:getsockname()
      got.cpeer, got.cpeerport = c:getpeername()
      netio.sleep(0.05)
      return got
    end)
    local want = "unix:" .. path
    assert.are.equal(want, r.lname)
    assert.is_nil(r.lport)
    assert.are.equal(want, r.cpeer)
    assert.is_nil(r.cpeerport)
    assert.are.equal(want, r.sname)
    -- The client never bound a name: its server sees it unnamed.
    assert.are.equal("unix:", r.speer)
    assert.is_nil(r.speerport)
  end)

  it("tcp_nodelay_on_a_unix_connection_is_a_harmless_yes", function()
    local path = sock_path()
    local ok, err = H.run(function()
      H.listen("unix:" .. path)
      local c = H.connect("unix:" .. path)
      return c:setoption("tcp-nodelay", true)
    end)
    assert.is_true(ok, tostring(err))
  end)

  it("listener_close_removes_its_socket_file", function()
    local path = sock_path()
    local before, after, again = H.run(function()
      local l = assert(netio.listen("unix:" .. path))
      local b = exists(path)
      l:close()
      local a = exists(path)
      -- The path is free again for the next server.
      local l2, msg = netio.listen("unix:" .. path)
      if l2 then l2:close() end
      return b, a, l2 ~= nil or msg
    end)
    assert.is_true(before, "expected the socket file while listening")
    assert.is_false(after, "expected close to remove the socket file")
    assert.is_true(again)
  end)

  it("listener_close_leaves_a_file_that_replaced_its_socket", function()
    local path = sock_path()
    local kept_file, kept_sock, reply = H.run(function()
      -- A plain file put in its place.
      local l = assert(netio.listen("unix:" .. path))
      os.remove(path)
      H.write(path, "someone else's")
      l:close()
      local f = exists(path)
      os.remove(path)
      -- Another listener's socket file in its place: still served after
      -- the first listener closes.
      l = assert(netio.listen("unix:" .. path))
      os.remove(path)
      local l2 = H.listen("unix:" .. path)
      netio.spawn(function()
        local s = l2:accept(5)
        if s then H.track(s) s:send("second") end
      end)
      l:close()
      local sk = exists(path)
      local c = H.connect("unix:" .. path, { timeout = 2 })
      return f, sk, c:recv(6, 2)
    end)
    os.remove(path)
    assert.is_true(kept_file, "close removed a file that was not its socket")
    assert.is_true(kept_sock, "close removed another listener's socket file")
    assert.are.equal("second", reply)
  end)

  it("listen_on_a_path_that_exists_returns_EADDRINUSE_and_removes_nothing",
     function()
    local path = sock_path()
    H.write(path, "a plain file")
    local l, msg, code = H.run(function()
      return netio.listen("unix:" .. path)
    end)
    local still = exists(path)
    os.remove(path)
    if l then l:close() end
    assert.is_nil(l)
    assert.are.equal("address already in use", msg)
    assert.are.equal("EADDRINUSE", code)
    assert.is_true(still, "listen removed the file in its way")
  end)

  it("listen_on_a_stale_socket_file_returns_EADDRINUSE", function()
    if not HOST then pending("NETIO_HOST is not set") return end
    local path = sock_path()
    -- A server that ends without closing its listener leaves the file.
    local code, out, err = H.sh(H.quote(HOST) .. " -e " .. H.quote(
      "assert(require('netio').listen('unix:" .. path .. "')) os.exit(0)"),
      10)
    assert.are.equal(0, code, tostring(out) .. tostring(err))
    assert.is_true(exists(path), "the child left no socket file")
    local l, msg, ecode = H.run(function()
      return netio.listen("unix:" .. path)
    end)
    os.remove(path)
    if l then l:close() end
    assert.is_nil(l)
    assert.are.equal("address already in use", msg)
    assert.are.equal("EADDRINUSE", ecode)
  end)

  it("connect_to_a_missing_path_returns_ENOENT", function()
    local c, msg, code = H.run(function()
      return netio.connect("unix:" .. sock_path(), { timeout = 2 })
    end)
    assert.is_nil(c)
    assert.are.equal("no such file or directory", msg)
    assert.are.equal("ENOENT", code)
  end)

  it("connect_to_a_stale_socket_file_returns_ECONNREFUSED", function()
    if not HOST then pending("NETIO_HOST is not set") return end
    local path = sock_path()
    H.sh(H.quote(HOST) .. " -e " .. H.quote(
      "assert(require('netio').listen('unix:" .. path .. "')) os.exit(0)"),
      10)
    local c, _, code = H.run(function()
      return netio.connect("unix:" .. path, { timeout = 2 })
    end)
    os.remove(path)
    assert.is_nil(c)
    assert.are.equal("ECONNREFUSED", code)
  end)

  it("connect_to_a_unix_listener_with_a_full_backlog_returns_EAGAIN_at_once",
     function()
    -- Linux refuses a non-blocking Unix connect when the backlog is full
    -- (no SYN to retry as with TCP): every backend says so at once.
    local path = sock_path()
    local r = H.run(function()
      H.listen("unix:" .. path, { backlog = 1 })
      for i = 1, 64 do
        local dt, c, msg, code = H.timed(netio.connect, "unix:" .. path,
          { timeout = 2 })
        if not c then return { i = i, dt = dt, msg = msg, code = code } end
        H.track(c)
      end
      return { i = 65 }
    end)
    assert.is_true(r.i <= 64, "64 connects all succeeded on a backlog of 1")
    assert.are.equal("EAGAIN", r.code, tostring(r.msg))
    assert.is_true(r.dt < 1, "the refusal took " .. tostring(r.dt) .. " s")
  end)

  for _, case in ipairs({
    { "unix:/" .. ("x"):rep(107), "ENAMETOOLONG", "name too long" },
    { "unix:@" .. ("x"):rep(107), "ENAMETOOLONG", "name too long" },
    { "unix:", "EINVAL", "empty Unix socket path" },
    { "unix:@", "EINVAL", "empty Unix socket path" },
    { "unix:/tmp/a\0b", "EBADADDR", "malformed address" },
  }) do
    local addr, want, text = case[1], case[2], case[3]
    it("listen_and_connect_on_" .. ("%q"):format(addr):sub(1, 30)
       .. "_return_" .. want, function()
      local l, lmsg, lcode, c, cmsg, ccode = H.run(function()
        local l, lm, lc = netio.listen(addr)
        local c, cm, cc = netio.connect(addr, { timeout = 2 })
        return l, lm, lc, c, cm, cc
      end)
      assert.is_nil(l)
      assert.are.equal(want, lcode)
      assert.truthy(lmsg:find(text, 1, true), lmsg)
      assert.is_nil(c)
      assert.are.equal(want, ccode)
      assert.truthy(cmsg:find(text, 1, true), cmsg)
    end)
  end

  it("a_path_of_107_bytes_fits", function()
    -- sun_path holds 108 bytes with the NUL: build a path of 107 in a
    -- directory of our own.
    local dir = sock_path()
    assert(os.execute("mkdir -p " .. H.quote(dir)))
    local path = dir .. "/" .. ("s"):rep(107 - #dir - 1)
    assert.are.equal(107, #path)
    local reply = H.run(function()
      local l = H.listen("unix:" .. path)
      netio.spawn(function()
        local s = l:accept(5)
        if s then H.track(s) s:send("fits") end
      end)
      return H.connect("unix:" .. path):recv(4, 2)
    end)
    os.execute("rm -rf " .. H.quote(dir))
    assert.are.equal("fits", reply)
  end)

  it("abstract_names_listen_and_connect_without_a_file", function()
    local name = "@netio-spec-" .. tostring(os.time()) .. "-"
      .. tostring(math.random(1e9))
    local reply, lname = H.run(function()
      local l = H.listen("unix:" .. name)
      netio.spawn(function()
        local s = l:accept(5)
        if s then H.track(s) s:send("abstract") end
      end)
      return H.connect("unix:" .. name):recv(8, 2), l:getsockname()
    end)
    assert.are.equal("abstract", reply)
    assert.are.equal("unix:" .. name, lname)
  end)

  it("many_connections_to_one_unix_listener", function()
    local path = sock_path()
    local good = H.run(function()
      local l = H.listen("unix:" .. path)
      netio.spawn(function()
        while true do
          local s = l:accept()
          if not s then break end
          H.track(s)
          netio.spawn(function() H.echo(s) s:close() end)
        end
      end)
      local ts = {}
      for i = 1, 20 do
        ts[i] = netio.spawn(function()
          local c = H.connect("unix:" .. path)
          assert(c:send("u" .. i .. "\n"))
          local r = c:recv("*l", 2)
          c:close()
          return r == "u" .. i
        end)
      end
      local n = 0
      for _, t in ipairs(ts) do
        local ok, r = t:join(5)
        if ok and r then n = n + 1 end
      end
      return n
    end)
    assert.are.equal(20, good)
  end)
end)
