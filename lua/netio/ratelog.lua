-- netio.ratelog: an error logger that does not flood. A message that
-- repeats is logged the first time, then counted, with one summary line per
-- window (default 10 s); the count of repeats is logged when another
-- message comes. Used by netio.server and netio.client for handler errors.
local core = require "netio.core"

local M = {}

function M.new(prefix, window)
  window = window or 10
  local last, count, since = nil, 0, 0
  return function(msg)
    local now = core.now()
    msg = tostring(msg)
    if msg == last then
      count = count + 1
      if now - since >= window then
        core.log.error("%s%s [repeated %d times in the last %.0f s]", prefix, msg,
          count, now - since)
        count, since = 0, now
      end
      return
    end
    if count > 0 then
      core.log.error("%s[the previous error repeated %d more times]", prefix, count)
    end
    core.log.error("%s%s", prefix, msg)
    last, count, since = msg, 0, now
  end
end

return M
