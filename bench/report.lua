-- bench/report.lua: turns bench/run.sh's results.tsv into markdown tables
-- (medians over rounds; ratios are medians of per-round ratios) and a list
-- of the issue's targets with PASS/MISS.
--   lua5.4 bench/report.lua results.tsv [header.txt]
local L = dofile(((arg and arg[0]) or ""):match("^(.-)[^/\\]*$")
  .. "benchlib.lua")
local median, fmt, collect, ratio = L.median, L.fmt, L.col, L.ratio

-- report.lua results.tsv [header.txt] [--outside=tsv] [--https=tsv]
--   [--targets-only]: the targets also read bench/outside.sh's and
--   bench/https.sh's results when given; --targets-only prints only them.
local res_path, header_path, outside_path, https_path, targets_only
for _, a in ipairs(arg) do
  if a:match("^%-%-outside=") then outside_path = a:match("=(.*)")
  elseif a:match("^%-%-https=") then https_path = a:match("=(.*)")
  elseif a == "--targets-only" then targets_only = true
  elseif not res_path then res_path = a
  else header_path = a end
end

local NAMES = {
  uring = "raw liburing (C)", engine = "engine API (C, no Lua)",
  luafloor = "Lua floor (engine + bare coroutine)",
  epoll = "raw epoll (C)", ["netio-uring"] = "netio Lua, uring",
  ["netio-epoll"] = "netio Lua, epoll", luv = "luv (Lua 5.4)",
  ["netio-server-uring"] = "netio.server Lua, uring",
  ["netio-server-epoll"] = "netio.server Lua, epoll",
  cqueues = "cqueues (Lua 5.4)", copas = "copas (Lua 5.2)",
  ["nginx-lua"] = "nginx + Lua module", ["nginx-static"] = "nginx static",
}
local ECHO_ORDER = { "uring", "engine", "luafloor", "epoll", "netio-uring",
  "netio-epoll", "luv", "cqueues", "copas" }
local HTTP_ORDER = { "netio-uring", "netio-server-uring", "netio-epoll",
  "netio-server-epoll", "luv", "nginx-lua", "nginx-static" }

-- ---- read -----------------------------------------------------------------
local echo, http, ab, idle = {}, {}, {}, {}
for _, f in ipairs(L.rows(res_path)) do
  local kind = f[1]
  if kind == "echo" then
    local n = tonumber
    local msgs, secs = n(f[6]), n(f[7])
    echo[#echo + 1] = { size = n(f[2]), conns = n(f[3]), srv = f[4],
      round = n(f[5]), rate = msgs / secs, p50 = n(f[8]), p99 = n(f[9]),
      cpu = n(f[10]) / msgs, proc = n(f[11]) / msgs, errors = n(f[12]) }
  elseif kind == "http" then
    local reqs = tonumber(f[4])
    http[#http + 1] = { srv = f[2], round = tonumber(f[3]),
      rate = reqs / tonumber(f[5]), p50 = tonumber(f[6]),
      p99 = tonumber(f[7]), cpu = tonumber(f[8]) / reqs,
      proc = tonumber(f[9]) / reqs }
  elseif kind == "ab" then
    local done = tonumber(f[5])
    ab[#ab + 1] = { srv = f[2], round = tonumber(f[3]), rate = tonumber(f[4]),
      done = done, failed = tonumber(f[6]),
      cpu = done > 0 and tonumber(f[7]) / done or nil, c = f[9], n = f[10] }
  elseif kind == "idle" then
    idle[#idle + 1] = { srv = f[2], target = tonumber(f[3]),
      conns = tonumber(f[4]), r0 = tonumber(f[5]), r1 = tonumber(f[6]) }
  end
end

-- rows[key][srv] = list of records; find(rows, key, srv, round)
local function group(list, keyf)
  local g = {}
  for _, r in ipairs(list) do
    local k = keyf(r)
    g[k] = g[k] or {}
    g[k][r.srv] = g[k][r.srv] or {}
    table.insert(g[k][r.srv], r)
  end
  return g
end
local out = {}
local function p(s) out[#out + 1] = s or "" end
if header_path then
  for l in io.lines(header_path) do p((l:gsub("^# ", ""))) p() end
end

-- ---- echo ---------------------------------------------------------------------
local targets = {}
local function target(name, value, goal, pass)
  local status -- nil: no data; "info": a figure beside the targets
  if value ~= nil then
    status = pass == "info" and "info" or (pass and true or false)
  end
  targets[#targets + 1] = { name, value, goal, status }
end

local eg = group(echo, function(r) return r.size .. "x" .. r.conns end)
local ekeys = {}
for k in pairs(eg) do ekeys[#ekeys + 1] = k end
table.sort(ekeys, function(a, b)
  local sa, ca = a:match("(%d+)x(%d+)")
  local sb, cb = b:match("(%d+)x(%d+)")
  sa, ca, sb, cb = tonumber(sa), tonumber(ca), tonumber(sb), tonumber(cb)
  if sa ~= sb then return sa < sb end
  return ca < cb
end)
if #ekeys > 0 then
  p("### Echo (one server thread on CPU 0, `bench/loadgen` on CPU 1)")
  p()
  p("| size × conns | server | msgs/s | p50 µs | p99 µs | CPU0 µs/msg "
    .. "| proc µs/msg | × liburing | × liburing (proc) |")
  p("|---|---|--:|--:|--:|--:|--:|--:|--:|")
  for _, k in ipairs(ekeys) do
    local size, conns = k:match("(%d+)x(%d+)")
    local label = (size == "16384" and "16 KiB" or size .. " B") .. " × " .. conns
    local base = eg[k].uring
    for _, srv in ipairs(ECHO_ORDER) do
      local recs = eg[k][srv]
      if recs then
        local errs = 0
        for _, r in ipairs(recs) do errs = errs + r.errors end
        p(string.format("| %s | %s%s | %s | %s | %s | %s | %s | %s | %s |",
          label, NAMES[srv] or srv, errs > 0 and " (errors!)" or "",
          fmt(median(collect(recs, "rate"))), fmt(median(collect(recs, "p50"))),
          fmt(median(collect(recs, "p99"))),
          fmt(median(collect(recs, "cpu")), 2),
          fmt(median(collect(recs, "proc")), 2),
          fmt(ratio(recs, base, "cpu"), 2), fmt(ratio(recs, base, "proc"), 2)))
      end
    end
  end
  p()
  for _, k in ipairs({ "64x50", "64x500", "16384x50" }) do
    if eg[k] then
      local v = ratio(eg[k]["netio-uring"], eg[k].uring, "cpu")
      target("echo " .. k:gsub("16384", "16KiB") .. ": netio uring CPU/msg ÷ "
        .. "raw liburing", v and fmt(v, 2) .. "×", "≤ 1.05×", v and v <= 1.05)
      -- What any Lua coroutine per connection costs on this engine
      -- (bench/echo_luafloor.c): the part of the target Lua itself takes.
      local f = ratio(eg[k].luafloor, eg[k].uring, "cpu")
      if f then
        target("echo " .. k:gsub("16384", "16KiB") .. ": Lua floor (engine + "
          .. "bare coroutine, uring) CPU/msg ÷ raw liburing", fmt(f, 2) .. "×",
          "", "info")
      end
    end
  end
  for _, k in ipairs(ekeys) do
    local v = ratio(eg[k]["netio-uring"], eg[k]["netio-epoll"], "cpu")
    target("echo " .. k:gsub("16384", "16KiB") .. ": netio uring CPU/msg ÷ "
      .. "netio epoll", v and fmt(v, 2) .. "×", "≤ 1.00×", v and v <= 1.0)
  end
end

-- ---- HTTP --------------------------------------------------------------------
local hg = group(http, function() return "all" end).all
if hg then
  p("### HTTP hello world, keep-alive (`wrk -t1 --latency` on CPU 1)")
  p()
  p("| server | req/s | p50 µs | p99 µs | CPU0 µs/req | proc µs/req "
    .. "| × luv (CPU0) | × nginx+Lua (CPU0) |")
  p("|---|--:|--:|--:|--:|--:|--:|--:|")
  for _, srv in ipairs(HTTP_ORDER) do
    local recs = hg[srv]
    if recs then
      p(string.format("| %s | %s | %s | %s | %s | %s | %s | %s |", NAMES[srv],
        fmt(median(collect(recs, "rate"))), fmt(median(collect(recs, "p50"))),
        fmt(median(collect(recs, "p99"))), fmt(median(collect(recs, "cpu")), 2),
        fmt(median(collect(recs, "proc")), 2),
        fmt(ratio(recs, hg.luv, "cpu"), 2),
        fmt(ratio(recs, hg["nginx-lua"], "cpu"), 2)))
    end
  end
  p()
  -- netio.server (bench/http_server.lua) against the same server written
  -- with bare listen/accept (bench/http_netio.lua), same backend and round.
  local pairs_line = {}
  for _, be in ipairs({ "uring", "epoll" }) do
    local s, b = hg["netio-server-" .. be], hg["netio-" .. be]
    local c, pr = ratio(s, b, "cpu"), ratio(s, b, "proc")
    if s and b then
      pairs_line[#pairs_line + 1] = string.format("%s %s× CPU0 (%s× proc)",
        be, fmt(c, 3), fmt(pr, 3))
    end
  end
  if #pairs_line > 0 then
    p("netio.server ÷ bare listen/accept, CPU per request, medians of "
      .. "per-round ratios: " .. table.concat(pairs_line, "; ") .. ".")
    p()
  end
  local v = ratio(hg["netio-uring"], hg.luv, "cpu")
  target("HTTP hello: netio uring CPU/request ÷ luv (both parse every "
    .. "header line)", v and fmt(v, 2) .. "×", "≤ 0.90×", v and v <= 0.9)
  for _, be in ipairs({ "uring", "epoll" }) do
    local s, b = hg["netio-server-" .. be], hg["netio-" .. be]
    if s or b then
      v = ratio(s, b, "cpu")
      target("HTTP: netio.server CPU/request ÷ bare listen/accept (same "
        .. "backend), " .. be, v and fmt(v, 3) .. "×", "≤ 1.05×",
        v and v <= 1.05)
    end
  end
end

-- ---- ab ----------------------------------------------------------------------
local ag = group(ab, function() return "all" end).all
if ag then
  local any = select(2, next(ag))[1]
  p(string.format("### The seed's test: `ab -k -c %s -n %s` (HTTP hello, CPU 1)",
    any.c or "?", any.n or "?"))
  p()
  p("| server | req/s | complete | failed | CPU0 µs/req |")
  p("|---|--:|--:|--:|--:|")
  for _, srv in ipairs(HTTP_ORDER) do
    local recs = ag[srv]
    if recs then
      p(string.format("| %s | %s | %s | %s | %s |", NAMES[srv],
        fmt(median(collect(recs, "rate"))), fmt(median(collect(recs, "done"))),
        fmt(median(collect(recs, "failed"))),
        fmt(median(collect(recs, "cpu")), 2)))
    end
  end
  p()
  p("(The seed's IOCP echo server reported 48,230 req/s on this test.)")
  p()
end

-- ---- idle ----------------------------------------------------------------------
if #idle > 0 then
  p("### Idle memory (server RSS growth per idle connection)")
  p()
  p("| server | connections | RSS before KiB | RSS after KiB | bytes / conn |")
  p("|---|--:|--:|--:|--:|")
  local ig = {}
  for _, r in ipairs(idle) do ig[r.srv] = r end
  local order = { table.unpack(ECHO_ORDER) }
  order[#order + 1] = "nginx-lua"
  for _, srv in ipairs(order) do
    local r = ig[srv]
    if r then
      local per = r.conns > 0 and (r.r1 - r.r0) * 1024 / r.conns or nil
      r.per = per
      p(string.format("| %s | %d%s | %d | %d | %s |", NAMES[srv], r.conns,
        r.conns < r.target and (" of " .. r.target) or "", r.r0, r.r1,
        fmt(per)))
    end
  end
  p()
  if ig.copas then
    p("copas waits in select(), which cannot watch descriptors ≥ 1024: it is "
      .. "measured with " .. ig.copas.target .. " connections.")
    p()
  end
  for _, be in ipairs({ "uring", "epoll" }) do
    local r = ig["netio-" .. be]
    if r then
      target("idle: netio " .. be .. " bytes per connection, coroutine "
        .. "included (" .. r.conns .. " connections)",
        r.per and fmt(r.per), "≤ 1,280", r.per and r.per <= 1280)
    end
  end
  if ig.luafloor and ig.luafloor.per then
    target("idle: Lua floor (engine connection + bare coroutine) bytes per "
      .. "connection", fmt(ig.luafloor.per), "", "info")
  end
end

-- ---- outside threads (bench/outside.sh's results) -------------------------------
if outside_path then
  local flat = {} -- flat[threads][srv] = records (rate 0: flat out)
  for _, f in ipairs(L.rows(outside_path)) do
    if f[1] == "outside" and tonumber(f[4]) == 0 then
      local th = tonumber(f[3])
      flat[th] = flat[th] or {}
      flat[th][f[2]] = flat[th][f[2]] or {}
      table.insert(flat[th][f[2]], { round = tonumber(f[5]),
        mps = tonumber(f[6]) / tonumber(f[7]) })
    end
  end
  local ths = {}
  for th in pairs(flat) do ths[#ths + 1] = th end
  table.sort(ths)
  -- nio_send from C threads against the raw queue from C threads; netio.send
  -- from Lua threads against the raw queue from the same Lua loop (lua-raw),
  -- its ratio to the C queue shown beside (mostly the Lua VM's cost).
  for _, th in ipairs(ths) do
    for _, srv in ipairs({ "nio-uring", "nio-epoll", "lua-uring",
      "lua-epoll" }) do
      local be = srv:match("%-(%a+)$")
      local recs = flat[th][srv]
      if recs and srv:match("^nio") then
        local v = ratio(recs, flat[th].baseline, "mps")
        target(string.format("outside: nio_send (C) from %d thread(s), "
          .. "msgs/s ÷ raw C queue, %s", th, be),
          v and fmt(v, 2) .. "×", "≥ 0.80×", v and v >= 0.8)
      elseif recs then
        local v = ratio(recs, flat[th]["lua-raw"], "mps")
        target(string.format("outside: netio.send (Lua) from %d thread(s), "
          .. "msgs/s ÷ raw queue from Lua threads (lua-raw), %s", th, be),
          v and fmt(v, 2) .. "×", "≥ 0.80×", v and v >= 0.8)
        local c = ratio(recs, flat[th].baseline, "mps")
        target(string.format("outside: netio.send (Lua) from %d thread(s), "
          .. "msgs/s ÷ raw C queue from C threads, %s", th, be),
          c and fmt(c, 2) .. "×", "-", "info")
      end
    end
  end
end

-- ---- TLS (bench/https.sh's results) ---------------------------------------------
if https_path then
  local hs = {} -- hs[srv] = records; fields: round srv rps us c0us hs hsus
  for _, f in ipairs(L.rows(https_path)) do
    if tonumber(f[1]) then
      hs[f[2]] = hs[f[2]] or {}
      table.insert(hs[f[2]], { round = tonumber(f[1]), us = tonumber(f[4]) })
    end
  end
  for _, be in ipairs({ "uring", "epoll" }) do
    if hs["netio-" .. be] then
      local v = ratio(hs["netio-" .. be], hs.nginx, "us")
      target("TLS hello: netio " .. be .. " CPU/request ÷ nginx with TLS "
        .. "(server's own CPU)", v and fmt(v, 2) .. "×", "≤ 1.10×",
        v and v <= 1.1)
    end
  end
end

-- ---- targets -------------------------------------------------------------------
if targets_only then
  out = {}
  if #targets > 0 then
    p("### Targets (issue 13)")
    p()
    p(L.targets_table(targets))
  end
  io.write(table.concat(out, "\n"), "\n")
  return
end
p("CPU0 = busy time of CPU 0 (/proc/stat: user+nice+system+irq+softirq) "
  .. "over the measured window ÷ messages; it includes the kernel's softirq "
  .. "work on the server's core. proc = the server processes' utime+stime. "
  .. "Ratios are medians of per-round ratios (same round). Medians over "
  .. "rounds elsewhere.")
io.write(table.concat(out, "\n"), "\n")
