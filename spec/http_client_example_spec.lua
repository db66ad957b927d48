-- http_client_example_spec.lua: examples/http_client.lua through the host,
-- against an HTTP/1.1 server this spec runs on loopback: Content-Length,
-- chunked and close-delimited bodies arrive whole, and requests to one
-- host share a keep-alive connection.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")

local function example()
  return H.root .. (H.windows and "\\examples\\http_client.lua"
    or "/examples/http_client.lua")
end

-- The body served for /<kind>/<n>: n bytes that differ with n.
local function body(n)
  return H.data(n, n)
end

-- Serves requests until the listener closes; counts the connections it
-- accepted in stats.conns and the requests in stats.requests.
local function serve(l, stats)
  while true do
    local c = l:accept()
    if not c then return end
    stats.conns = stats.conns + 1
    netio.spawn(function()
      while true do
        local line = c:recv("*l", 10)
        if not line then break end
        local kind, n = line:match("^GET /(%a+)/(%d+) HTTP/1%.1$")
        repeat local h = c:recv("*l", 10) until not h or h == ""
        stats.requests = stats.requests + 1
        n = tonumber(n)
        local b = body(n or 0)
        if kind == "len" then
          c:send({ "HTTP/1.1 200 OK\r\nContent-Length: ", #b, "\r\n\r\n", b })
        elseif kind == "chunked" then
          c:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
          local i, size = 1, 1
          while i <= #b do
            local piece = b:sub(i, i + size - 1)
            c:send({ ("%x;ext=1\r\n"):format(#piece), piece, "\r\n" })
            i, size = i + #piece, size * 3 + 1
          end
          c:send("0\r\nX-Trailer: yes\r\n\r\n")
        elseif kind == "close" then
          c:send({ "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b })
          break
        else
          c:send("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
        end
      end
      c:close()
    end)
  end
end

-- Runs the example on `paths` against a fresh server; returns the exit
-- status, stdout, stderr and the server's counts.
local function fetch(paths)
  local code, out, err
  local stats = { conns = 0, requests = 0 }
  H.run(function()
    local l = H.listen("127.0.0.1:0")
    local _, port = l:getsockname()
    local server = netio.spawn(serve, l, stats)
    local args = {}
    for i, p in ipairs(paths) do
      args[i] = H.quote(("http://127.0.0.1:%d%s"):format(port, p))
    end
    code, out, err = H.sh_async(H.quote(HOST) .. " " .. H.quote(example()) .. " "
      .. table.concat(args, " "), 60)
    l:close()
    server:join(5)
  end, 90)
  return code, out, err, stats
end

describe("examples/http_client.lua", function()
  if not HOST then
    it("needs NETIO_HOST", function() pending("NETIO_HOST is not set") end)
    return
  end

  it("gets_length_and_chunked_bodies_over_one_keep_alive_connection", function()
    local code, out, err, stats = fetch({ "/len/1000", "/chunked/70000", "/len/0",
      "/chunked/5", "/len/300000" })
    assert.are.equal(0, code, "exit status; stderr: " .. err)
    H.same(body(1000) .. body(70000) .. body(0) .. body(5) .. body(300000), out,
      "the bodies, in order")
    assert.are.equal(5, stats.requests, "requests the server saw")
    assert.are.equal(1, stats.conns, "expected one keep-alive connection for five requests; "
      .. "stderr: " .. err)
    local reused = select(2, err:gsub("%(reused%)", ""))
    assert.are.equal(4, reused, "expected four reused connections in: " .. err)
  end)

  it("a_body_ended_by_close_then_a_new_connection", function()
    local code, out, err, stats = fetch({ "/close/5000", "/len/10" })
    assert.are.equal(0, code, "exit status; stderr: " .. err)
    H.same(body(5000) .. body(10), out, "the bodies, in order")
    assert.are.equal(2, stats.conns, "expected a second connection after Connection: close")
    assert.truthy(err:find(": 200 OK, 5000 bytes, connection 1 (new)", 1, true), err)
    assert.truthy(err:find(": 200 OK, 10 bytes, connection 2 (new)", 1, true), err)
  end)

  it("a_refused_connection_exits_1_with_the_error", function()
    local code, _, err = H.sh(H.quote(HOST) .. " " .. H.quote(example())
      .. " http://127.0.0.1:1/", 30)
    assert.are.equal(1, code, "exit status; stderr: " .. err)
    assert.truthy(err:find("connect 127.0.0.1:1", 1, true), err)
  end)
end)

assert(netio)
