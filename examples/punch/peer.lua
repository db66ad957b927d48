-- examples/punch/peer.lua: one peer of TCP hole punching (netio.punch).
--
--   netio examples/punch/peer.lua RENDEZVOUS_ADDR NAME [LOCAL_PORT]
--       e.g., with examples/punch/rendezvous.lua running on 127.0.0.1:7400:
--       netio examples/punch/peer.lua 127.0.0.1:7400 alice &
--       netio examples/punch/peer.lua 127.0.0.1:7400 bob
--
-- The peer connects to the rendezvous from LOCAL_PORT (default 0: a port
-- the system picks), bound with netio.connect's `bind` so that the port is
-- its own and can be bound again; it sends "HELLO NAME" and waits for
-- "PEER <name> <ip:port>", the other peer's address as the rendezvous saw
-- it. Then netio.punch closes the rendezvous connection and connects to
-- that address from the same local address, while the other peer does the
-- same towards this one: their SYNs cross (a TCP simultaneous open) or one
-- lands on the other's listener, and the NATs on the way have seen
-- outgoing traffic for the pair of addresses, so they let it through.
-- The two peers then exchange three lines, printed as "NAME: got '...'",
-- and exit with status 0 (1 on any failure, with the reason on stderr).
local netio = require "netio"

local rendezvous, name, local_port = arg and arg[1], arg and arg[2], arg and arg[3]
if not rendezvous or not name or not name:match("^%S+$") then
  io.stderr:write("usage: netio peer.lua RENDEZVOUS_ADDR NAME [LOCAL_PORT]\n")
  os.exit(2)
end
local LINES = 3

local function say(fmt, ...)
  io.stdout:write(name, ": ", fmt:format(...), "\n")
  io.stdout:flush()
end

-- ip, port as an address string.
local function addr(ip, port)
  return (ip:find(":", 1, true) and "[%s]:%d" or "%s:%d"):format(ip, port)
end

local function fail(fmt, ...)
  io.stderr:write(name, ": ", fmt:format(...), "\n")
  os.exit(1)
end

-- The local address: any IP (the system picks the one that reaches the
-- rendezvous), of the rendezvous's family.
local any = rendezvous:match("^%[") and "[::]" or "0.0.0.0"
local conn, err, code = netio.connect(rendezvous,
  { bind = any .. ":" .. (local_port or "0"), timeout = 5 })
if not conn then fail("cannot reach the rendezvous %s: %s (%s)", rendezvous, err, code) end
conn:send(("HELLO %s\n"):format(name))
local line, rerr = conn:recv("*l", 30) -- the partner may come later
if not line then fail("no answer from the rendezvous: %s", rerr) end
local other, peer_addr = line:match("^PEER (%S+) (%S+)$")
if not other then fail("unexpected answer from the rendezvous: %s", line) end
say("%s is at %s; punching from %s", other, peer_addr, addr(conn:getsockname()))

local c, perr, pcode = netio.punch(conn, peer_addr, { timeout = 10 })
if not c then fail("cannot punch through to %s: %s (%s)", peer_addr, perr, pcode) end
say("connected to %s (%s)", other, addr(c:getpeername()))

-- Both directions at once: a task writes while this one reads.
c:settimeouts(nil, 10, 10)
local writer = netio.spawn(function()
  for i = 1, LINES do
    assert(c:send(("%s says hello %d\n"):format(name, i)))
  end
  assert(c:shutdown()) -- the other side reads the end after our lines
end)
for _ = 1, LINES do
  local got, gerr = c:recv("*l")
  if not got then fail("reading from %s: %s", other, gerr) end
  say("got '%s'", got)
end
local ok, werr = writer:join(10)
if not ok then fail("writing to %s: %s", other, werr) end
-- Wait for the other side's end of stream, so that neither closes (and
-- resets) while the other still has lines coming.
local rest, eerr = c:recv("*a")
if not rest then fail("waiting for %s to finish: %s", other, eerr) end
c:close()
say("done")
