-- examples/echo_client.lua: connects to an echo server, sends messages and
-- checks every echo, then prints a summary (messages per second).
--
--   netio examples/echo_client.lua [address [messages [connections [size]]]]
--   defaults: 127.0.0.1:7000, 1000 messages, 1 connection, 64 bytes
--   lua5.4 -e 'require"netio".run(loadfile"examples/echo_client.lua", "127.0.0.1:7000", 1000)'
--
-- Each connection does ping-pong: send one message, read exactly its size
-- back, compare. Exits with status 1 (an error) if an echo was wrong.
local netio = require "netio"

local address, messages, connections, size = ...
address = address or "127.0.0.1:7000"
messages = math.tointeger(tonumber(messages or 1000)) or 1000
connections = math.tointeger(tonumber(connections or 1)) or 1
size = math.max(16, math.tointeger(tonumber(size or 64)) or 64)

local echoed, wrong = 0, 0

local function client(n)
  local conn = assert(netio.connect(address, {timeout = 5}))
  conn:setoption("tcp-nodelay", true)
  conn:settimeouts(5, 5, 5)
  local filler = string.rep(string.char(65 + n % 26), size - 16)
  for i = 1, messages do
    local msg = ("%07d:%07d|"):format(n, i) .. filler
    assert(conn:send(msg))
    local echo, err = conn:recv(#msg)
    if not echo then error(("connection %d: %s"):format(n, err)) end
    if echo == msg then echoed = echoed + 1 else wrong = wrong + 1 end
  end
  conn:close()
end

local t0 = netio.now()
local tasks = {}
for n = 1, connections do tasks[n] = netio.spawn(client, n) end
local failed = 0
for _, t in ipairs(tasks) do
  local ok, err = t:join()
  if not ok then
    failed = failed + 1
    io.stderr:write(err, "\n")
  end
end
local dt = netio.now() - t0
print(("%d connection(s) x %d messages of %d bytes: %d echoed, %d wrong, " ..
  "%d failed, %.3f s, %.0f messages/s (%s)"):format(connections, messages,
  size, echoed, wrong, failed, dt, echoed / dt, netio.backend()))
if wrong > 0 or failed > 0 then error("echo client: failures") end
