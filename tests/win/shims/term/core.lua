-- tests/win/shims/term/core.lua: stands in for lua-term's C module
-- (`term.core`) when busted runs on the Windows Lua under Wine. Busted and
-- luassert only ask isatty() to decide on colours; saying "no terminal"
-- keeps CTest logs free of escape codes (busted turns colours off on
-- Windows without ANSICON anyway).

local term = {}

function term.isatty()
  return false
end

return term
