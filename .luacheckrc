-- luacheck configuration: `luacheck lua spec bench examples tests/win/shims`
-- (tools/test.sh).
std = "lua54"
max_line_length = 100
files["spec/"] = { std = "+busted" }
