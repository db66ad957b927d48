-- spec/helper.lua: what every netio spec shares. Loads netio, skips the
-- whole file (exit 77) when NETIO_BACKEND names a backend this machine cannot
-- run, and gives bounded ways to run a test body on the engine, start
-- servers on loopback, make connection pairs and compare large payloads.
--
-- Every helper that starts something (listener, connection, server task)
-- records it so that H.run closes it once the body returns: no server
-- outlives its test, and no test waits on a task it forgot.

local netio = require "netio"

local H = { netio = netio }

-- A loopback TCP port nothing listens on, for "connection refused": below
-- the ephemeral range that every listener bound to port 0 draws from, so
-- no test running in parallel can be given it (a port freed by closing a
-- listener could be, and would then get the connections meant to fail).
H.DEAD_PORT = 1

-- The same spec files run on Linux and, from the MinGW cross build, on
-- Windows (under Wine in CI). The few helpers that touch the OS (shell
-- commands, quoting, temporary files) have a Windows branch; a test that
-- cannot apply on Windows says why with pending().
H.windows = package.config:sub(1, 1) == "\\"

-- Windows emulated by Wine (which sets WINECONFIGDIR in every process): a
-- test that Wine cannot pass, though Windows would, says so with pending().
H.wine = H.windows and os.getenv("WINECONFIGDIR") ~= nil

-- A backend every machine of this OS can run: epoll on Linux (io_uring may
-- be forbidden), IOCP on Windows.
H.fallback_backend = H.windows and "iocp" or "epoll"

-- How much longer than plain builds the bounds of CPU-bound tests may be:
-- NETIO_TIME_SCALE, which TSan builds set (cmake/tests.cmake); 1 otherwise.
H.time_scale = math.max(1, tonumber(os.getenv("NETIO_TIME_SCALE")) or 1)

H.backend = os.getenv("NETIO_BACKEND")
if H.backend == "" then H.backend = nil end

-- Whether the engine can run on the backend named `name` here.
local function available(name)
  if type(netio.available) == "function" then
    return netio.available(name) and true or false
  end
  -- No netio.available(): try to run an engine (NETIO_BACKEND forces it).
  local ok, ran, got = pcall(netio.run, function() return netio.backend() end)
  return ok and ran == true and got == name
end

-- In a netio thread (H.sh_async) the engine calls are not there; the
-- spec's own state has checked the backend.
H.in_thread = require("netio.core")._THREAD and true or false

if H.backend and not H.in_thread and not available(H.backend) then
  io.stderr:write(("netio spec: backend %q is not available on this machine;"
    .. " skipping\n"):format(H.backend))
  os.exit(77)
end

-- The repository root (the parent of spec/), absolute.
do
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)[/\\]spec[/\\][^/\\]*$") or "."
  if not (dir:match("^[/\\]") or dir:match("^%a:[/\\]")) then
    local p = io.popen(H.windows and "cd" or "pwd")
    local cwd = p:read("l")
    p:close()
    dir = (dir == "." and cwd) or (cwd .. "/" .. dir)
  end
  -- cmd.exe's cd wants backslashes.
  H.root = H.windows and dir:gsub("/", "\\") or dir
end

-- Things to close when the current H.run body ends (LIFO).
local closers = {}

-- Remember a listener or connection so H.run closes it after the body.
function H.track(obj)
  closers[#closers + 1] = obj
  return obj
end

local function close_all()
  for i = #closers, 1, -1 do
    local obj = closers[i]
    closers[i] = nil
    -- A connection whose peer stopped reading must not hold the close
    -- (which flushes, bounded by the send timeout) forever.
    if obj.settimeout then pcall(obj.settimeout, obj, 0.2) end
    pcall(obj.close, obj)
  end
end

-- Run body() as a task on a fresh engine and return its results.
-- The body is bounded by `limit` seconds (default 10): past it, everything
-- it tracked is closed, netio.stop() is called and H.run raises. An error
-- in the body is re-raised here with the task's traceback.
function H.run(body, limit)
  limit = limit or 10
  local expired = false
  -- The body runs in a task of its own that the first task joins with a
  -- timeout: nothing polls, so the engine sleeps exactly as it would
  -- without the harness.
  local ok, res = netio.run(function()
    local t = netio.spawn(function()
      return table.pack(xpcall(body, debug.traceback))
    end)
    local joined, r = t:join(limit)
    if joined ~= true then
      expired = true
      close_all()
      netio.stop()
      return { n = 2, false, "(no result)" }
    end
    close_all()
    return r
  end)
  if expired then
    error(("test body did not finish within %g s"):format(limit), 2)
  end
  if ok ~= true or type(res) ~= "table" then
    error(("netio.run returned %s, %s instead of true, results")
      :format(tostring(ok), tostring(res)), 2)
  end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- Listen (default "127.0.0.1:0"), tracked; returns listener, port.
function H.listen(addr, opts)
  local l, err, code = netio.listen(addr or "127.0.0.1:0", opts)
  if not l then
    error(("listen(%s) failed: %s (%s)"):format(addr or "127.0.0.1:0",
      tostring(err), tostring(code)), 2)
  end
  H.track(l)
  local _, port = l:getsockname()
  return l, port
end

-- Connect, tracked; raises on failure.
function H.connect(addr, opts)
  local c, err, code = netio.connect(addr, opts)
  if not c then
    error(("connect(%s) failed: %s (%s)"):format(addr, tostring(err),
      tostring(code)), 2)
  end
  return H.track(c)
end

-- A server on 127.0.0.1:0 running handler(conn) in its own task for each
-- connection and closing the connection when handler returns. Returns
-- listener, port. It stops when the listener is closed (at the latest when
-- the H.run body ends).
function H.server(handler, opts)
  local l, port = H.listen("127.0.0.1:0", opts)
  netio.spawn(function()
    while true do
      local c = l:accept()
      if not c then break end
      H.track(c)
      netio.spawn(function()
        handler(c)
        c:close()
      end)
    end
  end)
  return l, port
end

-- Echo everything back until the peer closes.
function H.echo(c)
  while true do
    local d = c:recv()
    if not d then return end
    if not c:send(d) then return end
  end
end

-- A connected pair on loopback: client, server (accepted), both tracked.
function H.pair(addr)
  local l, port = H.listen(addr)
  local host = (addr and addr:match("^%[")) and "[::1]" or "127.0.0.1"
  local c = H.connect(host .. ":" .. port)
  local s, err = l:accept(5)
  if not s then error("accept failed: " .. tostring(err), 2) end
  H.track(s)
  l:close()
  return c, s
end

-- Run fn() and return the seconds it took followed by its results.
function H.timed(fn, ...)
  local t0 = netio.now()
  local r = table.pack(fn(...))
  return netio.now() - t0, table.unpack(r, 1, r.n)
end

-- Deterministic pseudo-random bytes: n bytes from seed (no period shorter
-- than 64 KiB, all 256 byte values, NULs, CRs and LFs included).
local blocks = {}
local function block(seed)
  if not blocks[seed] then
    local x, t = seed * 2654435761 % 4294967296 + 1, {}
    for i = 1, 65536 do
      x = (x * 1103515245 + 12345) % 2147483648
      t[i] = string.char((x >> 16) & 255)
    end
    blocks[seed] = table.concat(t)
  end
  return blocks[seed]
end

function H.data(n, seed)
  local b = block(seed or 1)
  local parts, have, i = {}, 0, 0
  while have < n do
    local k = (i * 7919) % 65536
    local piece = b:sub(k + 1) .. b:sub(1, k)
    if have + #piece > n then piece = piece:sub(1, n - have) end
    parts[#parts + 1] = piece
    have = have + #piece
    i = i + 1
  end
  return table.concat(parts)
end

-- Raise unless a == b, saying where two large strings first differ instead
-- of printing them.
function H.same(a, b, what)
  if a == b then return true end
  what = what or "data"
  if type(a) ~= "string" or type(b) ~= "string" then
    error(("%s: expected a string of %s bytes, got %s"):format(what,
      type(a) == "string" and #a or "?", tostring(b)), 2)
  end
  local n = math.min(#a, #b)
  local at = n + 1
  for i = 1, n, 4096 do
    if a:sub(i, i + 4095) ~= b:sub(i, i + 4095) then
      for j = i, math.min(i + 4095, n) do
        if a:byte(j) ~= b:byte(j) then at = j break end
      end
      break
    end
  end
  error(("%s: expected %d bytes, got %d; first difference at byte %d")
    :format(what, #a, #b, at), 2)
end

-- Read exactly n bytes in chunks of whatever arrives (for big payloads).
function H.recv_all(c, n, timeout)
  local parts, have = {}, 0
  while have < n do
    local d, err, partial = c:recv(math.min(n - have, 65536), timeout)
    if not d then
      if partial and #partial > 0 then parts[#parts + 1] = partial end
      return nil, err, table.concat(parts)
    end
    parts[#parts + 1] = d
    have = have + #d
  end
  return table.concat(parts)
end

-- A temporary file name. On Windows the C runtime's tmpnam() names a file
-- in the root of the current drive ("\s1a2."), so the name goes under %TEMP%.
function H.tmpname()
  local name = os.tmpname()
  if H.windows then
    name = (os.getenv("TEMP") or os.getenv("TMP") or ".") .. name
  end
  return name
end

-- Queue output on c until the kernel takes no more (its peer must not be
-- reading), in sends below the high-water mark. Output queued right after a
-- send may only be on its way into the kernel (IOCP under Wine hands a
-- send over up to ~0.2 s later), so it must still be queued a moment later.
function H.clog(c, seed)
  local chunk = H.data(256 * 1024, seed or 31)
  for _ = 1, 64 do
    assert(c:send(chunk))
    netio.sleep(0.01)
    if c:getstats().queued > 0 then
      netio.sleep(0.25)
      if c:getstats().queued > 0 then return true end
    end
  end
  error("the kernel took 16 MiB unread", 2)
end

-- Run a shell command, bounded by `limit` seconds (default 20) through
-- coreutils timeout. Returns exit code, stdout, stderr.
-- On Windows the command line is cmd.exe's (build it with H.quote, H.env
-- and H.cd): there is no `timeout` to bound it, so CTest's per-file timeout
-- does, and text output comes back with CRLF turned into LF.
function H.sh(cmd, limit, stdin, out_path)
  local out, err, inp = out_path or H.tmpname(), H.tmpname(), nil
  local full, rcf
  if H.windows then
    full = ("%s >%s 2>%s"):format(cmd, H.quote(out), H.quote(err))
  else
    full = ("timeout -k 2 %g sh -c %s >%s 2>%s"):format(limit or 20,
      H.quote(cmd), out, err)
  end
  if stdin then
    inp = H.tmpname()
    H.write(inp, stdin)
    full = full .. " <" .. H.quote(inp)
  else
    full = full .. (H.windows and " <NUL" or " </dev/null")
  end
  local code
  if H.windows then
    -- The C runtime's system() may leave errno set, and os.execute then
    -- reports errno instead of the exit status: cmd.exe writes the status
    -- to a file (%^errorlevel% is expanded only by `call`, after the
    -- command ran). cmd /c drops the first and the last quote of the line,
    -- so the whole line is wrapped to keep the command's own quotes.
    rcf = H.tmpname()
    os.execute(('"%s & call echo %%^errorlevel%% >%s"'):format(full, H.quote(rcf)))
    code = tonumber((H.read(rcf) or ""):match("%-?%d+"))
    os.remove(rcf)
  else
    code = select(3, os.execute(full))
  end
  local o, e = H.read(out), H.read(err)
  os.remove(out)
  os.remove(err)
  if inp then os.remove(inp) end
  if H.windows then
    o, e = o and o:gsub("\r\n", "\n"), e and e:gsub("\r\n", "\n")
  end
  return code, o, e
end

-- ---- Linux programs in the background (also from Wine) -------------------

-- A Unix path as this process opens it (under Wine through drive Z:), and
-- back: a path this process opens as a Linux program sees it.
function H.unix_path(p)
  return H.windows and ("Z:" .. p):gsub("/", "\\") or p
end

function H.host_path(p)
  if not H.windows then return p end
  return (p:gsub("^[Zz]:", ""):gsub("\\", "/"))
end

-- Single-quote s for /bin/sh (also under Wine, where H.sh_bg's line goes
-- through cmd.exe inside double quotes).
function H.sq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Run a /bin/sh command line in the background without waiting for it:
-- under Wine as a Linux program through `start /unix` (the line may hold no
-- double quote: cmd.exe reads it first). Callers poll for its effect.
function H.sh_bg(cmd)
  if H.windows then
    assert(not cmd:find('"', 1, true), "no double quotes under cmd.exe: " .. cmd)
    -- os.execute's status is not reliable there (see H.sh).
    os.execute(('start /unix /bin/sh -c "%s"'):format(cmd))
    return true
  end
  local ok, how, code = os.execute("/bin/sh -c " .. H.quote(cmd) .. " >/dev/null 2>&1 &")
  assert(ok, ("could not start a shell (%s %s) for: %s"):format(tostring(how),
    tostring(code), cmd))
  return true
end

-- Wait s seconds: netio.sleep inside a task, a blocking pause outside.
local function pause(s)
  if coroutine.isyieldable() then
    netio.sleep(s)
  elseif H.windows then
    os.execute("ping -n 1 127.0.0.1 >NUL")
  else
    os.execute("sleep " .. s)
  end
end

-- Names for jobs' files that the Linux programs and this process both
-- open, unique among the processes running specs at once. On Linux a
-- fresh mkstemp file per job (removed with the job's files). On Windows
-- os.tmpname gives names of this process's own ("\s1a2."), made into one
-- token; the files go to the Linux /tmp.
local job_token, job_seq = nil, 0
local function job_stem()
  if not H.windows then return os.tmpname() end
  job_token = job_token or os.tmpname():gsub("[^%w]", "")
  job_seq = job_seq + 1
  return ("/tmp/netio-job-%s-%d"):format(job_token, job_seq)
end

-- Start `cmd` (a /bin/sh command line; from Wine too) in the background,
-- stdin from the string `stdin` (or /dev/null), stdout and stderr to one
-- file. A shell waits for it and writes its exit status to a file, so that
-- whether it still runs is known without asking the kernel about a pid
-- that may have been reused. Returns a job (nil, reason when no pid came
-- within 10 s):
--   j.pid            the Linux pid of cmd's subshell (`exec` in cmd makes
--                    it the program's own)
--   j:running()      true until cmd ended
--   j:wait(limit)    poll (from a task: netio.sleep) for the end, `limit`
--                    seconds (default 5); its exit status, or nil
--   j:output()       what cmd wrote so far
--   j:stop()         kill it and what it started (TERM, then KILL after
--                    2 s) if it still runs,
--                    wait for the end and remove the job's files
function H.job(cmd, stdin)
  local s = job_stem()
  local j = { out = s .. ".out", rc = s .. ".rc", pidf = s .. ".pid",
    base = s }
  local inp = "/dev/null"
  if stdin then
    j.inp = s .. ".in"
    inp = j.inp
    H.write(H.unix_path(j.inp), stdin)
  end
  H.sh_bg(("PATH=/usr/local/bin:/usr/bin:/bin; export PATH; (%s) >%s 2>&1 <%s"
    .. " & p=$!; echo $p >%s.tmp; mv %s.tmp %s; wait $p; echo $? >%s.tmp;"
    .. " mv %s.tmp %s"):format(cmd, H.sq(j.out), H.sq(inp), H.sq(j.pidf),
    H.sq(j.pidf), H.sq(j.pidf), H.sq(j.rc), H.sq(j.rc), H.sq(j.rc)))
  for _ = 1, 200 do
    local p = H.read(H.unix_path(j.pidf))
    j.pid = p and tonumber(p:match("%d+"))
    if j.pid then break end
    pause(0.05)
  end
  function j.running(self)
    return H.read(H.unix_path(self.rc)) == nil
  end
  function j.wait(self, limit)
    local deadline = os.time() + (limit or 5) + 1
    local t0 = coroutine.isyieldable() and netio.now()
    repeat
      local rc = H.read(H.unix_path(self.rc))
      if rc and rc:match("%d") then return tonumber(rc:match("%d+")) end
      pause(0.05)
    until (t0 and netio.now() - t0 > (limit or 5)) or os.time() > deadline
    return nil
  end
  function j.output(self)
    return H.read(H.unix_path(self.out))
  end
  -- cmd may be a pipeline or start programs of its own (timeout runs its
  -- command in a process group of its own): its whole tree is signalled,
  -- children first, found by parent pid.
  local function kill_tree(pid, sig)
    H.sh_bg(("k() { for c in $(pgrep -P $1); do k $c; done; kill -%s $1"
      .. " 2>/dev/null; }; k %d"):format(sig, pid))
  end
  function j.stop(self)
    if self.pid and self:running() then
      kill_tree(self.pid, "TERM")
      if not self:wait(2) and self:running() then
        kill_tree(self.pid, "KILL")
        self:wait(2)
      end
    end
    local files = { self.out, self.rc, self.pidf, self.inp or false,
      not H.windows and self.base }
    for _, f in ipairs(files) do
      if f then os.remove(H.unix_path(f)) end
    end
  end
  if not j.pid then
    return nil, "no pid within 10 s for: " .. cmd
  end
  return j
end

-- H.sh in a task without blocking the run: the command runs from a netio
-- thread (which loads this helper in its own state) while the run's tasks
-- go on, so a spec can serve the program it starts. Returns what H.sh
-- returns; raises if the thread fails. With `out_path`, stdout goes to
-- that file (read while the command runs; H.sh removes it at the end).
function H.sh_async(cmd, limit, stdin, out_path)
  local t = assert(netio.thread(function(path, cpath, c, l, i, o)
    package.path, package.cpath = path, cpath
    return require("helper").sh(c, l, i, o)
  end, package.path, package.cpath, cmd, limit or 20, stdin, out_path))
  local r = table.pack(t:join((limit or 20) + 30))
  assert(r[1], "H.sh_async: " .. tostring(r[2]))
  return table.unpack(r, 2, r.n)
end

-- Quote one argument for H.sh: single quotes for sh; on Windows double
-- quotes, with a run of backslashes at the end doubled so that the C
-- runtime does not read it as escaping the closing quote. cmd.exe reads
-- the line first: it ends a command at a line break and would take an
-- escaped quote for the end of a quoted part, so neither may be in an
-- argument there (the specs use single quotes inside Lua code).
function H.quote(s)
  s = tostring(s)
  if not H.windows then
    return "'" .. s:gsub("'", "'\\''") .. "'"
  end
  assert(not s:find('[\r\n"]'), "cmd.exe cannot pass a line break or a"
    .. " double quote in an argument: " .. s)
  return '"' .. s:gsub("(\\+)$", "%1%1") .. '"'
end

-- A prefix for an H.sh command line that sets environment variables for
-- the command: vars maps a name to a string, or to false to unset it.
function H.env(vars)
  local names = {}
  for name in pairs(vars) do names[#names + 1] = name end
  table.sort(names)
  local unset, set = {}, {}
  for _, name in ipairs(names) do
    local v = vars[name]
    if H.windows then
      set[#set + 1] = ("set %s&& "):format(H.quote(name .. "=" .. (v or "")))
    elseif v then
      set[#set + 1] = name .. "=" .. H.quote(v) .. " "
    else
      unset[#unset + 1] = "-u " .. name .. " "
    end
  end
  -- env takes its options before the assignments.
  return (H.windows and "" or "env ") .. table.concat(unset) .. table.concat(set)
end

-- A prefix for an H.sh command line that runs the command in `dir`.
function H.cd(dir)
  return (H.windows and "cd /d %s && " or "cd %s && "):format(H.quote(dir))
end

function H.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  return path
end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Whether a file this process can open exists at path.
function H.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- A loopback TCP port that was free a moment ago, for a server a spec
-- starts outside this process (which binds it itself).
function H.free_port()
  local _, port = netio.run(function()
    local l = assert(netio.listen("127.0.0.1:0"))
    local _, p = l:getsockname()
    l:close()
    return p
  end)
  return port
end

-- Whether IPv6 loopback is configured (no listen needed).
function H.has_ipv6()
  if H.windows then
    -- No /proc: see whether ::1 takes a listener.
    local ok, ran, got = pcall(netio.run, function()
      local l = netio.listen("[::1]:0")
      if l then l:close() end
      return l ~= nil
    end)
    return ok and ran == true and got == true
  end
  local f = io.open("/proc/net/if_inet6", "r")
  if not f then return false end
  local s = f:read("a")
  f:close()
  return s:find("00000000000000000000000000000001", 1, true) ~= nil
end

-- The test CA's directory (tools/test-ca.sh: ca.pem, server.pem/key, ...)
-- and the path of file `name` in it: NETIO_TEST_CA, which the CMake test run
-- sets (its fixture made the files); without it, on Linux, the script is
-- run once into a temporary directory. nil, reason when there is none.
local test_ca
function H.test_ca()
  if test_ca then return test_ca end
  local dir = os.getenv("NETIO_TEST_CA")
  if not dir or dir == "" then
    if H.windows then
      return nil, "NETIO_TEST_CA is not set (the CMake test run sets it)"
    end
    dir = H.tmpname()
    os.remove(dir)
    local code, _, err = H.sh("bash " .. H.quote(H.root .. "/tools/test-ca.sh")
      .. " " .. H.quote(dir), 60)
    if code ~= 0 then
      return nil, "tools/test-ca.sh failed: " .. tostring(err)
    end
  end
  local sep = H.windows and "\\" or "/"
  if not H.read(dir .. sep .. "ca.pem") then
    return nil, "no ca.pem in NETIO_TEST_CA=" .. dir
  end
  test_ca = setmetatable({ dir = dir }, { __index = function(_, name)
    return dir .. sep .. name
  end })
  return test_ca
end

-- The message of the error fn(...) raises; fails the test when it returns.
function H.raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, the call returned normally")
  return tostring(err)
end

-- Assert that msg is want, or "<position>: want" (the error of a call with
-- that text, whatever the call site).
function H.is_error(want, msg, what)
  assert(type(msg) == "string" and (msg == want
      or (msg:sub(-#want - 2) == ": " .. want)),
    ("%sexpected the error %q, got %q"):format(what and (what .. ": ") or "",
      want, tostring(msg)))
end

-- Assert that msg contains want.
function H.has(want, msg, what)
  assert(type(msg) == "string" and msg:find(want, 1, true),
    ("%sexpected a message containing %q, got %q"):format(
      what and (what .. ": ") or "", want, tostring(msg)))
end

return H
