-- udp_echo_luv.lua: luv's (libuv's) UDP echo server for the UDP echo
-- benchmark (bench/udp_echo.sh), Lua 5.4 (Debian lua-luv), one thread: each
-- datagram is sent straight back from the receive callback with udp:send,
-- luv's ordinary send (libuv tries it at once and queues it on EAGAIN).
-- new_udp() without `mmsgs`: libuv receives one datagram per recvmsg, no
-- recvmmsg, like the other servers of the benchmark.
--   lua5.4 bench/udp_echo_luv.lua ip:port        ("[::1]:7000" for IPv6)
local uv = require "luv"

local addr = arg[1] or "127.0.0.1:7000"
local ip, port = addr:match("^%[(.*)%]:(%d+)$")
if not ip then ip, port = addr:match("^(.*):(%d+)$") end
assert(ip, "address must be ip:port or [v6]:port")

local udp = uv.new_udp(ip:find(":", 1, true) and "inet6" or "inet")
assert(udp:bind(ip, tonumber(port)))
assert(udp:recv_start(function(err, data, peer)
  assert(not err, err)
  -- data == nil: the read found nothing more (libuv's nread == 0)
  if data then udp:send(data, peer.ip, peer.port) end
end))
io.stdout:write("ready\n")
io.stdout:flush()
uv.run()
