-- bench/outside_report.lua: bench/outside.sh's results.tsv -> a markdown
-- table (medians over rounds; "x baseline" is the median of per-round
-- ratios to the baseline with as many threads, "x lua-raw" the same
-- against lua-raw for the Lua-thread rows) and the issue's targets.
--   lua5.4 bench/outside_report.lua results.tsv [header.txt]
-- results.tsv rows: outside srv threads rate round msgs secs p50 p99
-- errors busy sent  (rate 0: flat out; busy and sent count the server's
-- whole life, -1: the server did not report)
local res_path, header_path = arg[1], arg[2]

local NAMES = {
  baseline = "raw C: mutex queue + eventfd + epoll writer",
  ["nio-uring"] = "nio_send (C threads), uring",
  ["nio-epoll"] = "nio_send (C threads), epoll",
  ["lua-raw"] = "raw queue (Lua threads): rawq.push, same Lua loop",
  ["lua-uring"] = "netio.send (Lua threads), uring",
  ["lua-epoll"] = "netio.send (Lua threads), epoll",
}
local ORDER = { "baseline", "nio-uring", "nio-epoll", "lua-raw", "lua-uring",
  "lua-epoll" }
-- The Lua-thread servers, compared with lua-raw too.
local LUA = { ["lua-raw"] = true, ["lua-uring"] = true, ["lua-epoll"] = true }
local GOAL = 0.8

local L = dofile(((arg and arg[0]) or ""):match("^(.-)[^/\\]*$")
  .. "benchlib.lua")
local median, fmt, col, ratio = L.median, L.fmt, L.col, L.ratio

-- runs[mode][threads][srv] = { records }, mode "flat" or "paced"
local runs, threads_seen, rate_seen, srv_seen = { flat = {}, paced = {} }, {}, nil, {}
local errors = {}
for _, f in ipairs(L.rows(res_path)) do
  if f[1] == "outside" then
    local n = tonumber
    local r = { srv = f[2], threads = n(f[3]), rate = n(f[4]), round = n(f[5]),
      msgs = n(f[6]), secs = n(f[7]), p50 = n(f[8]), p99 = n(f[9]),
      errors = n(f[10]), busy = n(f[11]), sent = n(f[12]) or -1 }
    r.mps = r.msgs / r.secs
    local mode = r.rate == 0 and "flat" or "paced"
    if mode == "paced" then rate_seen = r.rate end
    runs[mode][r.threads] = runs[mode][r.threads] or {}
    local t = runs[mode][r.threads]
    t[r.srv] = t[r.srv] or {}
    table.insert(t[r.srv], r)
    threads_seen[r.threads] = true
    srv_seen[r.srv] = true
    if r.errors > 0 then
      errors[#errors + 1] = string.format("%s, %d thread(s), %s, round %d: %d",
        r.srv, r.threads, mode == "flat" and "flat out" or r.rate .. "/s",
        r.round, r.errors)
    end
  end
end

local threads = {}
for k in pairs(threads_seen) do threads[#threads + 1] = k end
table.sort(threads)

if header_path then
  for l in io.lines(header_path) do print(l) end
  print()
end
print("#### Messages from outside threads into connections (64 B, server on " ..
  "CPU 0, `outside_reader` on CPU 1)")
print()
local paced = rate_seen and string.format(" @ %d/s", rate_seen) or nil
local head = "| server | threads | msgs/s | p50 µs | p99 µs | × baseline "
  .. "| × lua-raw | busy ‰"
local rule = "|---|--:|--:|--:|--:|--:|--:|--:"
if paced then
  head = head .. " | p50 µs" .. paced .. " | p99 µs" .. paced
  rule = rule .. "|--:|--:"
end
print(head .. " |")
print(rule .. "|")
local targets = {}
for _, t in ipairs(threads) do
  local flat = runs.flat[t] or {}
  local pc = runs.paced[t] or {}
  for _, srv in ipairs(ORDER) do
    if srv_seen[srv] and (flat[srv] or pc[srv]) then
      local recs = flat[srv]
      local x = ratio(recs, flat.baseline, "mps")
      local xr = LUA[srv] and ratio(recs, flat["lua-raw"], "mps")
      local busy = {}
      for _, r in ipairs(recs or {}) do
        if r.busy >= 0 and r.sent > 0 then
          busy[#busy + 1] = 1000 * r.busy / r.sent
        end
      end
      local row = string.format("| %s | %d | %s | %s | %s | %s | %s | %s",
        NAMES[srv], t, fmt(median(col(recs, "mps"))),
        fmt(median(col(recs, "p50"))), fmt(median(col(recs, "p99"))),
        fmt(x, 2), LUA[srv] and fmt(xr, 2) or "", fmt(median(busy), 2))
      if paced then
        local prec = pc[srv]
        local p50, p99 = fmt(median(col(prec, "p50"))), fmt(median(col(prec, "p99")))
        local got = median(col(prec, "mps"))
        if got and got < 0.95 * rate_seen then
          p99 = p99 .. string.format(" (only %.0f/s)", got)
        end
        row = row .. " | " .. p50 .. " | " .. p99
      end
      print(row .. " |")
      if srv == "nio-uring" or srv == "nio-epoll" then
        targets[#targets + 1] = { srv = srv, t = t, x = x, base = "baseline" }
      elseif srv == "lua-uring" or srv == "lua-epoll" then
        targets[#targets + 1] = { srv = srv, t = t, x = xr, base = "lua-raw" }
        targets[#targets + 1] = { srv = srv, t = t, x = x, base = "baseline",
          info = true }
      end
    end
  end
end
print()
print("msgs/s: messages the reader got and checked per second, flat out " ..
  "(senders never pause but after \"busy\"); p50/p99: send call → the " ..
  "reader's recv, at that saturation" ..
  (paced and (", then with the senders paced at " .. rate_seen ..
    " msgs/s in all") or "") ..
  ". busy ‰: the senders' retries after \"busy\" per 1000 messages " ..
  "accepted (flat out). " ..
  "Medians over rounds; × baseline: median of per-round ratios; " ..
  "× lua-raw: the same against lua-raw, whose threads run the same Lua " ..
  "loop as lua-uring/lua-epoll but push into the baseline's queue: what " ..
  "netio.send costs beyond a raw queue, the Lua VM's share being the same.")
if #targets > 0 then
  local rows = {}
  for _, g in ipairs(targets) do
    local pass = g.x and g.x >= GOAL
    if g.info then pass = g.x and "info" end
    rows[#rows + 1] = { string.format("%s, %d thread(s): msgs/s ÷ %s",
      NAMES[g.srv], g.t, g.base == "lua-raw"
        and "raw queue from Lua threads (lua-raw)"
        or (g.srv:match("^lua") and "raw C queue from C threads (baseline)"
          or "baseline")),
      g.x and fmt(g.x, 2) .. "×",
      g.info and "-" or string.format("≥ %.1f×", GOAL), pass }
  end
  print()
  print(L.targets_table(rows))
end
if #errors > 0 then
  print()
  print("**Broken streams** (lost, repeated or torn messages; those " ..
    "connections were not counted further): " .. table.concat(errors, "; "))
end
