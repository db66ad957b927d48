-- bench/benchlib.lua: what the benchmark reports share (bench/report.lua,
-- outside_report.lua, udp_report.lua): reading a results.tsv, medians,
-- per-round ratios and number formatting. Loaded with
--   local L = dofile(<this directory> .. "benchlib.lua")
local L = {}

-- The directory of the running script (arg[0]), with its trailing slash.
function L.dir()
  return ((arg and arg[0]) or ""):match("^(.-)[^/\\]*$")
end

-- The tab-separated fields of every line of path, as arrays of strings.
-- A missing file gives no rows.
function L.rows(path)
  local t = {}
  local fh = path and io.open(path)
  if not fh then return t end
  for line in fh:lines() do
    local f = {}
    for v in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = v end
    t[#t + 1] = f
  end
  fh:close()
  return t
end

function L.median(t)
  if #t == 0 then return nil end
  local s = { table.unpack(t) }
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- v with digits decimals (0 by default); "-" for nil.
function L.fmt(v, digits)
  if v == nil then return "-" end
  return string.format("%." .. (digits or 0) .. "f", v)
end

-- The values of field in recs (nil and negative values left out: a
-- negative figure means "not measured").
function L.col(recs, field)
  local t = {}
  for _, r in ipairs(recs or {}) do
    local v = r[field]
    if v and v >= 0 then t[#t + 1] = v end
  end
  return t
end

function L.sum(recs, field)
  local s = 0
  for _, r in ipairs(recs or {}) do s = s + (r[field] or 0) end
  return s
end

-- The median over rounds of recs[field] / base[field], each record divided
-- by the base record of its own round (drift between rounds cancels).
function L.ratio(recs, base, field)
  if not recs or not base then return nil end
  local by, t = {}, {}
  for _, b in ipairs(base) do by[b.round] = b end
  for _, r in ipairs(recs) do
    local b = by[r.round]
    if b and b[field] and b[field] > 0 and r[field] then
      t[#t + 1] = r[field] / b[field]
    end
  end
  return L.median(t)
end

-- A markdown table of targets: rows of { name, figure, goal, pass } where
-- pass is true, false, nil (no data), or "info" (a figure shown beside the
-- targets, not one of them).
function L.targets_table(rows)
  local out = { "| target | figure | goal | status |", "|---|--:|--:|---|" }
  for _, t in ipairs(rows) do
    local status = t[4] == "info" and "info" or t[4] == nil and "no data"
      or (t[4] and "PASS" or "MISS")
    out[#out + 1] = string.format("| %s | %s | %s | %s |", t[1], t[2] or "-",
      t[3], status)
  end
  return table.concat(out, "\n")
end

return L
