-- udp_echo_netio.lua: netio's UDP echo server for the UDP echo benchmark
-- (bench/udp_echo.sh). Run by the host (the script's top level is a task):
-- one task looping recvfrom -> sendto on one socket, as a user would write
-- it. NETIO_BACKEND chooses the backend.
--   netio bench/udp_echo_netio.lua ip:port       ("[::1]:7000" for IPv6)
-- A build without netio.udp prints "skip: ..." and exits 3, so the
-- harness reports the row as skipped.
local netio = require "netio"

local addr = ... or "127.0.0.1:7000"
if type(netio.udp) ~= "function" then
  io.stderr:write("skip: netio.udp is not in this build\n")
  os.exit(3)
end
local udp, err = netio.udp(addr)
if not udp then
  io.stderr:write("udp_echo_netio: cannot bind ", addr, ": ", tostring(err), "\n")
  os.exit(1)
end
io.stdout:write("ready\n")
io.stdout:flush()

local recvfrom, sendto = udp.recvfrom, udp.sendto
local find = string.find
while true do
  -- the default size (65536) holds any datagram: never "truncated"
  local data, ip, port = recvfrom(udp)
  if not data then
    if ip ~= "closed" then io.stderr:write("recvfrom: ", tostring(ip), "\n") end
    break
  end
  -- sendto takes one numeric "ip:port" / "[v6]:port" string
  local peer = find(ip, ":", 1, true) and "[" .. ip .. "]:" .. port
    or ip .. ":" .. port
  sendto(udp, data, peer) -- a failed send loses the datagram, as UDP may
end
