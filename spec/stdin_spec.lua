-- stdin_spec.lua: netio.stdin() -- the process's standard input as a
-- read-only stream, tested through the host (NETIO_HOST): recv patterns,
-- the end of the input, timeouts while nothing comes, one stream per run
-- until closed, read-only misuse, back-pressure on a big input nobody
-- reads.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")
local Q = H.quote

-- Prepended to every script: show(...) prints its values on one line,
-- strings quoted with control characters, quotes and backslashes as \ddd.
local SHOW = [[
local netio = require "netio"
local function show(...)
  local t = table.pack(...)
  for i = 1, t.n do
    local v = t[i]
    if type(v) == "string" then
      t[i] = '"' .. v:gsub('[%c"\\]', function(c)
        return ("\\%03d"):format(c:byte())
      end) .. '"'
    else
      t[i] = tostring(v)
    end
  end
  print(table.concat(t, " "))
  io.stdout:flush()
end
]]

-- Scripts and files made by a test, removed at the end of the file.
local temps = {}
local function temp()
  local p = H.tmpname()
  temps[#temps + 1] = p
  return p
end

local function script(src)
  return H.write(temp(), SHOW .. src)
end

-- Run `src` on the host with `input` on its standard input (a file).
-- Returns exit code, stdout, stderr.
local function run(src, input, limit)
  return H.sh(Q(HOST) .. " " .. Q(script(src)), limit or 20, input or "")
end

-- A portable short sleep for the busted process.
local function pause(sec)
  netio.run(function() netio.sleep(sec) end)
end

-- Wait until `path` exists (a script's signal that it reached a point).
local function wait_file(path, limit)
  local deadline = netio.now() + limit
  repeat
    local f = io.open(path, "rb")
    if f then f:close() return true end
    pause(0.02)
  until netio.now() > deadline
  return false
end

-- Start the host on `src` with a pipe to its standard input; the script
-- gets the path of a marker file as its first argument. Returns a handle:
-- h.p (the pipe), h.marker, h.out, h.err.
local function start(src)
  local h = { out = temp(), err = temp(), marker = temp() }
  os.remove(h.marker)
  local cmd = Q(HOST) .. " " .. Q(script(src)) .. " " .. Q(h.marker)
    .. " >" .. Q(h.out) .. " 2>" .. Q(h.err)
  if H.windows then
    cmd = '"' .. cmd .. '"' -- cmd /c drops the first and the last quote
  else
    cmd = "timeout -k 2 20 " .. cmd
  end
  h.p = assert(io.popen(cmd, "w"))
  return h
end

-- Send text to the host's standard input now.
local function feed(h, text)
  h.p:write(text)
  h.p:flush()
end

-- Close the pipe (the end of the input), wait for the host; returns its
-- exit code, stdout and stderr.
local function finish(h)
  local _, _, code = h.p:close()
  local out, err = H.read(h.out) or "", H.read(h.err) or ""
  if H.windows then out, err = out:gsub("\r\n", "\n"), err:gsub("\r\n", "\n") end
  return code, out, err
end

describe("netio.stdin", function()
  if not HOST or HOST == "" then
    it("needs NETIO_HOST", function() pending("NETIO_HOST is not set") end)
    return
  end

  teardown(function()
    for _, p in ipairs(temps) do os.remove(p) end
  end)

  it("reads_lines_without_LF_and_one_CR_then_the_rest_at_the_end", function()
    local code, out, err = run([[
      local s = netio.stdin()
      for _ = 1, 5 do show(s:recv("*l")) end
      show(s:recv("l"))
    ]], "one\r\ntwo\nthree\r\r\n\nlast")
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    assert.are.equal(table.concat({
      '"one"', '"two"', '"three\\013"', '""',
      'nil "closed" "last"',
      'nil "closed" ""', "" }, "\n"), out,
      "lines without their LF and the CR before it; at the end: nil, 'closed', the rest")
  end)

  it("reads_exactly_n_bytes_and_gives_the_rest_at_the_end", function()
    local code, out, err = run([[
      local s = netio.stdin()
      show(s:recv(3))
      show(s:recv(0))
      show(s:recv(3))
      show(s:recv(3))
      show(s:recv(3))
    ]], "abcdefgh")
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    assert.are.equal('"abc"\n""\n"def"\nnil "closed" "gh"\nnil "closed" ""\n', out,
      "recv(n) gives n bytes; at the end nil, 'closed' with the bytes left")
  end)

  it("reads_everything_with_star_a", function()
    local input = "all\nof it\r\n" .. ("x"):rep(300000) .. "\0end"
    local code, out, err = run([[
      local s = netio.stdin()
      local all = s:recv("*a")
      show(#all, all:sub(1, 11), all:sub(-4))
      show(s:recv("a"))
    ]], input)
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    assert.are.equal(('%d "all\\010of it\\013\\010" "\\000end"\n""\n'):format(#input), out,
      "recv('*a') should return the whole input, then ''")
  end)

  it("reads_whatever_arrived_with_no_pattern", function()
    local code, out, err = run([[
      local s = netio.stdin()
      show(s:recv())
      show(s:recv())
    ]], "xyz")
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    assert.are.equal('"xyz"\nnil "closed" ""\n', out,
      "recv() gives what arrived, then nil, 'closed', ''")
  end)

  it("an_empty_input_is_the_end_at_once", function()
    local code, out, err = run([[
      local s = netio.stdin()
      show(s:recv())
      show(s:recv("*l"))
      show(s:recv(1))
      show(s:recv("*a"))
    ]], "")
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    assert.are.equal('nil "closed" ""\nnil "closed" ""\nnil "closed" ""\n""\n', out,
      "every pattern at the end of an empty input")
  end)

  it("returns_the_same_stream_until_it_is_closed", function()
    local code, out, err = run([[
      local a = netio.stdin()
      local b = netio.stdin()
      show(rawequal(a, b), a:id() == b:id(), tostring(a):match("^netio%.conn %(") ~= nil)
      a:close()
      local c = netio.stdin()
      show(rawequal(a, c), c:id() ~= a:id())
      show(a:recv())
      show(c == netio.stdin())
    ]], "input\n")
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    assert.are.equal('true true true\nfalse true\nnil "closed" ""\ntrue\n', out,
      "one stream per run until closed; a closed one reads nil, 'closed', ''")
  end)

  it("send_flush_and_shutdown_raise_read_only", function()
    local code, out, err = run([[
      local s = netio.stdin()
      show(pcall(s.send, s, "x"))
      show(pcall(s.send, s, { "x" }))
      show(pcall(s.flush, s))
      show(pcall(s.shutdown, s))
      show(pcall(function() return s:recv("*x") end))
      show(s:recv("*l"))
    ]], "still readable\n")
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    local lines = {}
    for line in out:gmatch("[^\n]*\n") do lines[#lines + 1] = line:sub(1, -2) end
    assert.are.equal('false "netio: send: the stream is read-only"', lines[1], "send(string)")
    assert.are.equal('false "netio: send: the stream is read-only"', lines[2], "send(array)")
    for i, name in ipairs({ "flush", "shutdown" }) do
      local got = lines[2 + i] or ""
      local said = got:match('^false "netio: (%a+): the stream is read%-only"$')
      assert(said == "send" or said == name,
        ("%s on stdin should raise 'netio: %s: the stream is read-only', got %s")
          :format(name, name, got))
    end
    assert.is_truthy((lines[5] or ""):find("bad argument #1 to 'recv' (number or pattern expected)",
      1, true), "recv('*x') should raise the pattern error, got " .. tostring(lines[5]))
    assert.are.equal('"still readable"', lines[6], "the stream should still be readable")
  end)

  it("times_out_while_no_input_comes_without_blocking_the_run", function()
    local h = start([[
      local marker = ...
      local s = netio.stdin()
      local ticks = 0
      local ticker = netio.spawn(function()
        for _ = 1, 10 do netio.sleep(0.02) ticks = ticks + 1 end
      end)
      local t0 = netio.now()
      local a, b, c = s:recv("*l", 0.3)
      show(a, b, c, netio.now() - t0 >= 0.28, ticks >= 5)
      ticker:join()
      io.open(marker, "w"):close()
      show(s:recv("*l", 10))
      show(s:recv(5, 0.3))
      io.open(marker .. ".2", "w"):close()
      show(s:recv("*l", 10))
    ]])
    local got1 = wait_file(h.marker, 15)
    feed(h, "late\nab")
    local got2 = wait_file(h.marker .. ".2", 15)
    feed(h, "cdefg\n")
    os.remove(h.marker .. ".2")
    local code, out, err = finish(h)
    assert.is_true(got1, "the script should reach its first timeout: " .. err)
    assert.is_true(got2, "the script should reach its second timeout: " .. err)
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    assert.are.equal(table.concat({
      'nil "timeout" "" true true',
      '"late"',
      'nil "timeout" "ab"',
      '"cdefg"', "" }, "\n"), out,
      "recv with a timeout and no input: nil, 'timeout', partial; other tasks run meanwhile")
  end)

  it("a_new_stream_after_close_gets_the_input_not_yet_read", function()
    local h = start([[
      local marker = ...
      local s1 = netio.stdin()
      show(s1:recv("*l", 10))
      s1:close()
      local s2 = netio.stdin()
      show(rawequal(s1, s2))
      io.open(marker, "w"):close()
      show(s2:recv("*l", 10))
      show(s1:recv("*l", 1))
    ]])
    feed(h, "first\n")
    local reached = wait_file(h.marker, 15)
    feed(h, "second\n")
    local code, out, err = finish(h)
    assert.is_true(reached, "the script should make its second stream: " .. err)
    assert.are.equal(0, code, "the host should exit with 0: " .. err)
    assert.are.equal('"first"\nfalse\n"second"\nnil "closed" ""\n', out,
      "the second stream should get the line written after the first was closed")
  end)

  describe("a big input nobody reads", function()
    local big
    setup(function()
      big = H.write(temp(), ("0123456789abcdef"):rep(20 * 1024 * 1024 // 16))
    end)

    local function piped(src, limit)
      local path = script(src)
      local cmd
      if H.windows then
        cmd = "type " .. Q(big) .. " | " .. Q(HOST) .. " " .. Q(path)
      else
        cmd = "cat " .. Q(big) .. " | " .. Q(HOST) .. " " .. Q(path)
      end
      return H.sh(cmd, limit)
    end

    it("does_not_keep_a_script_that_never_calls_stdin_from_exiting", function()
      local t0 = netio.now()
      local code, out, err = piped([[ show("done") ]], 20)
      local dt = netio.now() - t0
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      assert.are.equal('"done"\n', out, "the script should run")
      assert.is_true(dt < 10, "the host should exit at once, it took " .. dt .. " s")
    end)

    it("does_not_keep_a_script_that_stops_reading_from_exiting", function()
      local t0 = netio.now()
      local code, out, err = piped([[
        local s = netio.stdin()
        show(s:recv(16))
        netio.sleep(0.3)
      ]], 20)
      local dt = netio.now() - t0
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      assert.are.equal('"0123456789abcdef"\n', out, "the script should read 16 bytes")
      assert.is_true(dt < 10, "the host should exit once the script ended, it took "
        .. dt .. " s")
    end)

    it("is_read_ahead_only_as_far_as_the_buffers_go", function()
      if H.windows then pending("reads /proc/self/io (Linux only)") return end
      -- What the process read(2) from standard input, not its memory (which
      -- sanitizers inflate): the reader thread must stop when the buffers
      -- between it and the stream are full.
      local code, out, err = piped([[
        local function rchar()
          for line in io.lines("/proc/self/io") do
            local n = line:match("^rchar:%s+(%d+)")
            if n then return tonumber(n) end
          end
        end
        local before = rchar()
        local s = netio.stdin()
        local first = s:recv(16)
        netio.sleep(0.5)
        show(first, (rchar() - before) // 1024)
      ]], 20)
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      local first, read = out:match('^"(%w+)" (%-?%d+)\n$')
      assert.are.equal("0123456789abcdef", first, "the script should read 16 bytes: " .. out)
      assert.is_true(tonumber(read) < 8 * 1024,
        "reading 16 bytes of a 20 MB input should not make the process read "
        .. read .. " KiB of it (no unbounded read-ahead)")
    end)
  end)

  it("raises_outside_a_task", function()
    local ok, err = pcall(netio.stdin)
    assert.is_false(ok, "netio.stdin outside a run should raise")
    assert.are.equal("netio: stdin must be called from a netio task", err)
  end)

  it("raises_in_a_netio_thread", function()
    local r = H.run(function()
      local t = netio.thread(function()
        return pcall(require("netio").stdin)
      end)
      return table.pack(t:join(5))
    end)
    assert.are.same({ n = 3, true, false, "netio: stdin must be called from a netio task" }, r,
      "netio.stdin in a netio thread should raise")
  end)
end)
