-- examples/framing.lua: a length-prefixed binary protocol with
-- string.pack/string.unpack, a server and a client in one script.
--
-- A frame is a 4-byte big-endian length, then that many bytes of payload;
-- the payload here is a 1-byte type, a 2-byte big-endian sequence number
-- and a string (">B I2 s2"). The reader takes the length first and refuses
-- a frame above MAX_FRAME before reading it, so a peer cannot make the
-- server buffer what it likes; that frame is answered with an error frame
-- and the connection is closed. The client sends a few requests, checks the
-- answers, then sends one oversized frame to show the limit. Ends by itself.
--
--   netio examples/framing.lua [count]                        (default 5)
local netio = require "netio"

local MAX_FRAME = 64 * 1024
local ECHO, REPLY, ERROR = 1, 2, 3

-- One frame: the length prefix and the payload in one send.
local function send_frame(c, kind, seq, text)
  local payload = string.pack(">B I2 s2", kind, seq, text)
  return c:send(string.pack(">s4", payload))
end

-- The next frame: kind, seq, text; or nil and why ("closed", "timeout",
-- "frame of N bytes exceeds the limit of M").
local function recv_frame(c, timeout)
  local head, err = c:recv(4, timeout)
  if not head then return nil, err end
  local n = string.unpack(">I4", head)
  if n > MAX_FRAME then
    return nil, ("frame of %d bytes exceeds the limit of %d"):format(n, MAX_FRAME)
  end
  local payload
  payload, err = c:recv(n, timeout)
  if not payload then return nil, err end
  local ok, kind, seq, text = pcall(string.unpack, ">B I2 s2", payload)
  if not ok then return nil, "malformed frame: " .. kind end
  return kind, seq, text
end

-- The server: answers ECHO frames with REPLY frames (the text reversed)
-- until the client closes or breaks the protocol.
local function serve(c)
  while true do
    local kind, seq, text = recv_frame(c, 10)
    if not kind then
      if seq ~= "closed" then send_frame(c, ERROR, 0, seq) end
      break
    end
    send_frame(c, REPLY, seq, text:reverse())
  end
  c:close()
end

local l = assert(netio.listen("127.0.0.1:0"))
local _, port = l:getsockname()
local server = netio.spawn(function()
  local c = assert(l:accept(10))
  l:close()
  serve(c)
end)

local count = tonumber((...)) or 5
local c = assert(netio.connect("127.0.0.1:" .. port))
for seq = 1, count do
  local text = ("message %d %s"):format(seq, ("x"):rep(seq * 100))
  assert(send_frame(c, ECHO, seq, text))
  local kind, rseq, reply = assert(recv_frame(c, 10))
  assert(kind == REPLY and rseq == seq and reply == text:reverse(), "a wrong reply")
  print(("frame %d: sent %d bytes, reply ok"):format(seq, #text))
end

-- Too big: the server refuses it from its length alone.
assert(c:send(string.pack(">I4", MAX_FRAME + 1) .. ("y"):rep(100)))
local kind, _, why = recv_frame(c, 10)
print(("oversized frame: %s"):format(kind == ERROR and why or "not refused"))
c:close()
server:join()
