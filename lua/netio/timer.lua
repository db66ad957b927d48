-- netio.timer(sec, fn[, {every = true}]) -> timer: runs fn() in a new task
-- after sec seconds (with every: every sec seconds, each run in its own
-- task); timer:cancel() -> true if it was still armed. docs/api.md is the
-- reference.
--
-- A timer is a hidden task waiting on a waitq of its own with a timeout:
--   * the timeout passing is the tick: fn is spawned (an error in it is
--     the task's normal uncaught-error log, and the timer goes on);
--   * cancel() closes the waitq, which ends the wait at once with
--     "closed"; netio.stop() closes it too (every waitq of the run), so an
--     armed timer never holds a stopping run for its grace period;
--   * when the tick and the cancel fall in the same turn, the waitq says
--     "closed" first: a cancel that returned true is never followed by a
--     run of fn.
-- An armed timer keeps its run going, as a sleeping task does.
-- every: the ticks are at start + k * sec, so they do not drift; ticks
-- that passed while the loop was busy are skipped, not run in a burst.
local core = require "netio.core"
local A = require("netio.sync")._args

local now, spawn = core.now, core.spawn
local floor = math.floor

local Timer = {}
local TIMER = { __name = "netio.timer", __index = Timer, __tostring = A.tostring }

local function driver(self, sec, fn, every)
  local wq = self._wq
  local start, k = now(), 0
  while true do
    local delay = sec
    if every then
      local t = now()
      k = k + 1
      if start + k * sec < t then k = floor((t - start) / sec) + 1 end
      delay = start + k * sec - t
      if delay < 0 then delay = 0 end
    end
    local _, err = wq:wait(delay)
    if err == "timeout" then
      if not every then self._armed = false end
      spawn(fn)
      if not every then return end
    elseif err == "closed" then
      self._armed = false -- canceled, or the run stops
      return
    end
  end
end

local function timer(sec, fn, opts)
  sec = A.checknumber(sec, 1, "timer")
  if not (sec >= 0) then -- luacheck: ignore 581 (NaN too)
    A.argerror(1, "timer", "non-negative number expected")
  end
  if type(fn) ~= "function" then A.typeerror(2, "timer", "function", fn, 0, fn == nil) end
  local every = false
  if opts ~= nil then
    if type(opts) ~= "table" then A.typeerror(3, "timer", "table", opts) end
    for key, v in pairs(opts) do
      if key == "every" then
        if type(v) ~= "boolean" then
          A.argerror(3, "timer", "field 'every' must be a boolean")
        end
        every = v
      else
        A.argerror(3, "timer", ("unknown option '%s'"):format(tostring(key)))
      end
    end
  end
  if every and sec == 0 then
    A.argerror(1, "timer", "positive number expected with 'every'")
  end
  local self = setmetatable({ _armed = true, _wq = A.waitq("timer") }, TIMER)
  local ok, err = pcall(spawn, driver, self, sec, fn, every)
  if not ok then
    if type(err) == "string" and err:find("must be called from a netio task", 1, true) then
      error("netio: timer must be called from a netio task", 0)
    end
    error(err, 0)
  end
  return self
end

function Timer.cancel(self)
  A.checkself(self, TIMER, "cancel")
  if not self._armed then return false end
  self._armed = false
  self._wq:close()
  return true
end

return timer
