-- examples/punch/rendezvous.lua: the meeting point of TCP hole punching
-- (netio.punch). Two peers behind NATs cannot connect to each other
-- directly; each connects here, learns the other's address as this server
-- sees it (after its NAT: the public address and port its NAT mapped the
-- peer's local port to), and then both punch through to that address from
-- the local port they used to come here.
--
--   netio examples/punch/rendezvous.lua [address|port [pairs]]
--       address: where to listen (default *:7400; a bare port means *:port,
--       0 picks a free port); pairs: exit after introducing that many pairs
--       (default: serve until Ctrl-C)
--   then from two machines (or two shells, on loopback):
--       netio examples/punch/peer.lua RENDEZVOUS_IP:7400 alice
--       netio examples/punch/peer.lua RENDEZVOUS_IP:7400 bob
--
-- The protocol is lines of text. A peer sends "HELLO <name>"; peers are
-- paired in the order they come, and each gets "PEER <name> <ip:port>"
-- about the other; then this server closes both connections (it closes
-- first, so the TIME-WAIT stays here and the peers' ports are free at
-- once). A peer that leaves while waiting is forgotten. The first line
-- printed is "rendezvous: listening on <ip>:<port>".
local netio = require "netio"

local where, pairs_left = arg and arg[1] or "*:7400", tonumber(arg and arg[2])
if where:match("^%d+$") then where = "*:" .. where end
local server, err = netio.listen(where)
if not server then
  io.stderr:write(("rendezvous: cannot listen on %s: %s\n"):format(where, err))
  os.exit(1)
end

-- ip, port as an address string.
local function addr(ip, port)
  return (ip:find(":", 1, true) and "[%s]:%d" or "%s:%d"):format(ip, port)
end

io.stdout:write(("rendezvous: listening on %s\n"):format(addr(server:getsockname())))
io.stdout:flush()

local waiting -- { conn =, name =, addr = } of the peer waiting for a partner

local function introduce(a, b)
  a.conn:send(("PEER %s %s\n"):format(b.name, b.addr))
  b.conn:send(("PEER %s %s\n"):format(a.name, a.addr))
  a.paired, b.paired = true, true
  a.conn:close() -- queued lines still go out, then the FIN
  b.conn:close()
  io.stdout:write(("rendezvous: %s (%s) <-> %s (%s)\n")
    :format(a.name, a.addr, b.name, b.addr))
  io.stdout:flush()
  if pairs_left then
    pairs_left = pairs_left - 1
    if pairs_left <= 0 then server:close() end
  end
end

local function serve(conn)
  conn:settimeouts(nil, 5, 30)
  local line = conn:recv("*l")
  local name = line and line:match("^HELLO (%S+)$")
  if not name then
    conn:send("ERR expected HELLO <name>\n")
    conn:close()
    return
  end
  local ip, port = conn:getpeername()
  if not ip then -- gone already
    conn:close()
    return
  end
  local me = { conn = conn, name = name, addr = addr(ip, port) }
  if waiting then
    local other = waiting
    waiting = nil
    introduce(other, me)
    return
  end
  waiting = me
  io.stdout:write(("rendezvous: %s (%s) waits\n"):format(me.name, me.addr))
  io.stdout:flush()
  -- Wait for a partner (who closes this connection) or for the peer to go.
  conn:settimeout(nil)
  conn:recv()
  if not me.paired then
    if waiting == me then waiting = nil end
    conn:close()
  end
end

while true do
  local conn = server:accept()
  if not conn then break end -- closed: enough pairs, or stopping
  netio.spawn(serve, conn)
end
if waiting then waiting.conn:close() end
