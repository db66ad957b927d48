-- luacheck settings for lua/netio (run from lua/: luacheck netio).
std = "lua54"
max_line_length = 100
-- 581: `not (x > y)` is how the checks refuse NaN; it stays.
ignore = { "581" }
