-- tests/win/shims/system/core.lua: stands in for luasystem's C module
-- (`system.core`) when busted runs on the Windows Lua under Wine. Busted
-- only takes gettime, monotime and sleep from it, to time tests for its
-- report; the specs do their own timing with netio.now().

local system = {}

-- Wall-clock seconds. Plain Lua has only whole seconds.
function system.gettime()
  return os.time()
end

-- Seconds from an arbitrary start, never going back: the Windows C
-- runtime's clock() counts wall time since the process started.
function system.monotime()
  return os.clock()
end

-- Busy-free waiting needs the OS; busted itself never calls this, so a
-- spec that does gets a clear error instead of a silent spin.
function system.sleep()
  error("system.sleep is not available in the Windows spec shim", 2)
end

return system
