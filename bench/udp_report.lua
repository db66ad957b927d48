-- bench/udp_report.lua: bench/udp_echo.sh's results.tsv -> a markdown table
-- (medians over rounds; "× C" columns are medians of the per-round ratios
-- to the raw C server, so drift between rounds cancels).
--   lua5.4 bench/udp_report.lua results.tsv [header.txt]
-- results.tsv rows:
--   udp srv round size dgrams secs p50 p99 lost late corrupt errors
--       cpu_busy_us srv_cpu_us lg_cpu_us
--   skip srv why
local res_path, header_path = arg[1], arg[2]

local NAMES = {
  c = "raw C (recvfrom/sendto)", luv = "luv (Lua 5.4)",
  ["netio-uring"] = "netio Lua, uring", ["netio-epoll"] = "netio Lua, epoll",
}
local ORDER = { "c", "luv", "netio-uring", "netio-epoll" }

local L = dofile(((arg and arg[0]) or ""):match("^(.-)[^/\\]*$")
  .. "benchlib.lua")
local median, fmt, col, sum, ratio = L.median, L.fmt, L.col, L.sum, L.ratio

local runs, skipped, seen, size = {}, {}, {}, nil
for _, f in ipairs(L.rows(res_path)) do
  local n = tonumber
  if f[1] == "udp" then
    local r = { srv = f[2], round = n(f[3]), dgrams = n(f[5]), secs = n(f[6]),
      p50 = n(f[7]), p99 = n(f[8]), lost = n(f[9]), late = n(f[10]),
      corrupt = n(f[11]), errors = n(f[12]), busy = n(f[13]),
      proc = n(f[14]), load = n(f[15]) }
    size = f[4]
    r.rate = r.dgrams / r.secs
    r.cpu = r.proc and r.proc / r.dgrams        -- µs per datagram
    r.cpu0 = r.busy and r.busy / r.dgrams
    r.loadpct = r.load and r.load / (r.secs * 1e4) -- % of one CPU
    runs[r.srv] = runs[r.srv] or {}
    table.insert(runs[r.srv], r)
  elseif f[1] == "skip" then
    skipped[f[2]] = f[3]
  end
  if f[2] and not seen[f[2]] then
    seen[f[2]] = true
    local known = false
    for _, s in ipairs(ORDER) do known = known or s == f[2] end
    if not known then ORDER[#ORDER + 1] = f[2] end
  end
end

local out = {}
local function p(s) out[#out + 1] = s or "" end
if header_path then
  for l in io.lines(header_path) do p((l:gsub("^# ", ""))) p() end
end
p(string.format("### UDP echo, %s-byte datagrams (server on one CPU, "
  .. "`bench/udp_loadgen` on another)", size or "?"))
p()
p("| server | datagrams/s | × C | µs CPU/datagram | × C | CPU0 µs/datagram "
  .. "| × C | p50 µs | p99 µs | lost / late / corrupt | load CPU |")
p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
local base = runs.c
for _, srv in ipairs(ORDER) do
  local recs, name = runs[srv], NAMES[srv] or srv
  if recs then
    local bad = sum(recs, "corrupt") + sum(recs, "errors")
    p(string.format("| %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s "
      .. "| %s%% |", name, bad > 0 and " (errors!)" or "",
      fmt(median(col(recs, "rate"))), fmt(ratio(recs, base, "rate"), 2),
      fmt(median(col(recs, "cpu")), 2), fmt(ratio(recs, base, "cpu"), 2),
      fmt(median(col(recs, "cpu0")), 2), fmt(ratio(recs, base, "cpu0"), 2),
      fmt(median(col(recs, "p50"))), fmt(median(col(recs, "p99"))),
      fmt(sum(recs, "lost")), fmt(sum(recs, "late")), fmt(sum(recs, "corrupt")),
      fmt(median(col(recs, "loadpct")))))
  elseif skipped[srv] then
    p(string.format("| %s | skipped: %s | | | | | | | | | |", name,
      (skipped[srv]:gsub("|", "/"))))
  end
end
p()
p("µs CPU/datagram: the server process's utime+stime (/proc/<pid>/stat) over "
  .. "the measured window ÷ datagrams echoed in it. CPU0: the busy time of the "
  .. "server's CPU (/proc/stat user+nice+system+irq+softirq), which adds "
  .. "softirq work and anything else that ran there. × C: medians of the "
  .. "per-round ratios to the raw C server (same round); other columns: "
  .. "medians over rounds; lost / late / corrupt: totals over rounds. load "
  .. "CPU: the load generator's share of its CPU (near 100%: the load, not "
  .. "the server, may be the limit).")
io.write(table.concat(out, "\n"), "\n")
