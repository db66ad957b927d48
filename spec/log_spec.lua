-- log_spec.lua: netio.log -- levels, the line format on stderr (checked
-- through the host, NETIO_HOST), level() get/set, NETIO_LOG, bad level
-- names, and logging from netio threads.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")
local Q = H.quote

local temps = {}

-- Run `src` on the host with NETIO_LOG set to `level` (false: unset).
-- Returns exit code, stdout, stderr.
local function run(src, level)
  local path = H.write(H.tmpname(), src)
  temps[#temps + 1] = path
  return H.sh(H.env({ NETIO_LOG = level or false }) .. Q(HOST) .. " " .. Q(path), 20)
end

-- Parse one log line: YYYY-MM-DD HH:MM:SS.mmm <level> <pid> <thread> <message>.
local function parse(line)
  local y, mo, d, h, mi, s, ms, level, pid, tid, msg = line:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)%.(%d%d%d) (%a+) +(%d+) +(%d+) (.*)$")
  if not y then return nil end
  return { time = os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d),
                            hour = tonumber(h), min = tonumber(mi), sec = tonumber(s) }),
           ms = tonumber(ms), level = level, pid = pid, tid = tid, msg = msg }
end

-- Every line of stderr, parsed; raises on a line that is not a log line.
local function lines(err)
  local out = {}
  for line in err:gmatch("[^\n]+") do
    local p = parse(line)
    if not p then
      error(("expected a log line 'YYYY-MM-DD HH:MM:SS.mmm <level> <pid> <thread>"
        .. " <message>', got %q"):format(line), 2)
    end
    out[#out + 1] = p
  end
  return out
end

-- Script prelude: the host's pid on Linux ("?" elsewhere).
local PID = [[
local netio = require "netio"
local function pid()
  -- Under Wine /proc/self is the Linux process, not the Windows pid netio logs.
  if package.config:sub(1, 1) == "\\" then return "?" end
  local f = io.open("/proc/self/stat", "r")
  if not f then return "?" end
  local p = f:read("n")
  f:close()
  return p
end
]]

describe("netio.log", function()
  describe("level() in this process", function()
    local saved
    before_each(function() saved = netio.log.level() end)
    after_each(function() netio.log.level(saved) end)

    it("returns_the_current_level_name", function()
      local name = netio.log.level()
      assert.is_truthy(({ error = 1, warn = 1, info = 1, debug = 1 })[name],
        "level() should return one of error, warn, info, debug, got " .. tostring(name))
    end)

    it("sets_the_level_and_returns_the_previous_one", function()
      local set = netio.log.level("debug")
      local now = netio.log.level()
      local set2 = netio.log.level("error")
      local now2 = netio.log.level()
      assert.are.equal("debug", now, "level() after level('debug')")
      assert.are.equal("error", now2, "level() after level('error')")
      -- It returns the level it replaced, so that it can be put back.
      assert.is_truthy(({ error = 1, warn = 1, info = 1, debug = 1 })[set],
        "level('debug') should return the previous level's name, got " .. tostring(set))
      assert.are.equal("debug", set2,
        "level('error') should return the level it replaced, 'debug'")
    end)

    it("nil_only_reads_the_level", function()
      netio.log.level("warn")
      assert.are.equal("warn", netio.log.level(nil), "level(nil) returns the level")
      assert.are.equal("warn", netio.log.level(), "level(nil) does not change it")
    end)

    it("raises_on_a_bad_level_name_and_keeps_the_level", function()
      netio.log.level("warn")
      local bad = {}
      for _, name in ipairs({ "bogus", "INFO", "", "warning" }) do
        local ok, err = pcall(function() return netio.log.level(name) end)
        bad[#bad + 1] = { name = name, ok = ok, err = tostring(err) }
      end
      for _, b in ipairs(bad) do
        assert.is_false(b.ok, "level(" .. ("%q"):format(b.name) .. ") should raise")
        assert.is_truthy(b.err:find("bad argument #1 to 'level' (level name expected", 1, true),
          "level(" .. ("%q"):format(b.name) .. "): expected 'bad argument #1 to 'level'"
          .. " (level name expected ...)', got " .. b.err)
      end
      assert.are.equal("warn", netio.log.level(), "a failed level() should not change the level")
    end)

    it("enable_raises_on_a_bad_name_or_switch", function()
      for _, args in ipairs({ { "bogus" }, { nil }, { "warn", "yes" }, { "warn", 1 } }) do
        local ok, err = pcall(netio.log.enable, table.unpack(args, 1, 2))
        assert.is_false(ok, "enable(" .. tostring(args[1]) .. ", " .. tostring(args[2])
          .. ") should raise")
        assert.is_truthy(tostring(err):find("bad argument #", 1, true),
          "a bad argument error, got " .. tostring(err))
      end
      assert.is_true(netio.log.enable("warn"), "a failed enable() changes nothing")
    end)

    it("is_the_same_level_in_a_netio_thread", function()
      local r = H.run(function()
        netio.log.level("debug") -- once the engine logged its start
        local t = netio.thread(function()
          local n = require "netio"
          local seen = n.log.level()
          n.log.level("error")
          return seen
        end)
        local ok, seen = t:join(5)
        return { ok = ok, seen = seen, after = netio.log.level() }
      end)
      assert.are.equal(true, r.ok, "the thread should run")
      assert.are.equal("debug", r.seen, "the thread should see the level the task set")
      assert.are.equal("error", r.after, "the task should see the level the thread set")
    end)
  end)

  describe("through the host", function()
    if not HOST or HOST == "" then
      it("needs NETIO_HOST", function() pending("NETIO_HOST is not set") end)
      return
    end

    teardown(function()
      for _, p in ipairs(temps) do os.remove(p) end
    end)

    it("writes_lines_with_date_time_ms_level_pid_thread_and_message", function()
      local code, out, err = run(PID .. [[
        print(os.time(), pid())
        netio.log.info("hello %d %s", 42, "x")
        netio.log.debug("hidden debug")
        netio.log.warn("a warning")
        netio.log.error("an error")
        print(os.time())
      ]])
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      local t0, pid, t1 = out:match("^(%d+)%s+(%S+)\n(%d+)\n$")
      assert(t0, "unexpected stdout: " .. out)
      local l = lines(err)
      assert.are.equal(3, #l, "info, warn and error should be logged, debug not: " .. err)
      assert.are.same({ "info", "warn", "error" }, { l[1].level, l[2].level, l[3].level },
        "the levels, in order")
      assert.are.same({ "hello 42 x", "a warning", "an error" }, { l[1].msg, l[2].msg, l[3].msg },
        "the messages, formatted")
      for i, p in ipairs(l) do
        assert.is_true(p.time >= tonumber(t0) - 1 and p.time <= tonumber(t1) + 1,
          ("line %d: the date and time should be the local time of the call"):format(i))
        assert.is_true(p.ms >= 0 and p.ms <= 999, "milliseconds")
        if pid ~= "?" then
          assert.are.equal(pid, p.pid, ("line %d: the pid should be the host's"):format(i))
        end
        assert.are.equal(l[1].tid, p.tid, "one task thread: the same thread id on every line")
      end
    end)

    it("logs_fmt_itself_through_tostring_without_other_arguments", function()
      local code, _, err = run([[
        local netio = require "netio"
        netio.log.info("100% sure %s")
        netio.log.info(42)
        netio.log.info(1.5)
        netio.log.info(true)
        netio.log.info(nil)
        netio.log.info(setmetatable({}, { __tostring = function() return "custom" end }))
        netio.log.info({})
        netio.log.info("%5.1f|%s|%d", 1.25, "s", 7)
      ]])
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      local l = lines(err)
      assert.are.equal(8, #l, "every call should log one line: " .. err)
      assert.are.equal("100% sure %s", l[1].msg, "fmt alone is not formatted")
      assert.are.equal("42", l[2].msg, "an integer")
      assert.are.equal("1.5", l[3].msg, "a float")
      assert.are.equal("true", l[4].msg, "a boolean")
      assert.are.equal("nil", l[5].msg, "nil")
      assert.are.equal("custom", l[6].msg, "a table with __tostring")
      assert.is_truthy(l[7].msg:match("^table: "), "a table: " .. l[7].msg)
      assert.are.equal(string.format("%5.1f|%s|%d", 1.25, "s", 7), l[8].msg,
        "with arguments: string.format(fmt, ...)")
    end)

    it("levels_filter_and_level_sets_them", function()
      local code, out, err = run([[
        local netio = require "netio"
        print(netio.log.level())
        netio.log.debug("d1")
        netio.log.level("debug")
        netio.log.debug("d2")
        netio.log.level("warn")
        netio.log.info("i3")
        netio.log.warn("w3")
        netio.log.level("error")
        netio.log.warn("w4")
        netio.log.error("e4")
        print(netio.log.level())
      ]])
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      assert.are.equal("info\nerror\n", out, "the default level is info")
      local msgs = {}
      for _, p in ipairs(lines(err)) do msgs[#msgs + 1] = p.level .. " " .. p.msg end
      assert.are.same({ "debug d2", "warn w3", "error e4" }, msgs,
        "only the calls at or below the current level should log")
    end)

    it("enable_switches_each_level_on_its_own", function()
      local code, out, err = run([[
        local netio = require "netio"
        netio.log.level("debug")
        print(netio.log.enable("warn"), netio.log.enable("warn", false),
              netio.log.enable("warn"))
        netio.log.debug("d1")
        netio.log.info("i1")
        netio.log.warn("w1")
        netio.log.error("e1")
        print(netio.log.enable("error", false), netio.log.enable("debug", false))
        netio.log.debug("d2")
        netio.log.info("i2")
        netio.log.warn("w2")
        netio.log.error("e2")
        print(netio.log.enable("warn", true), netio.log.enable("error", true))
        netio.log.level("warn")
        netio.log.enable("debug", true)
        netio.log.debug("d3")
        netio.log.warn("w3")
        print(netio.log.level())
      ]])
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      assert.are.equal("true\ttrue\tfalse\ntrue\ttrue\nfalse\tfalse\nwarn\n", out,
        "enable(name) reads the switch; enable(name, on) returns what it was")
      local msgs = {}
      for _, p in ipairs(lines(err)) do
        if not p.msg:match("^netio: ") then msgs[#msgs + 1] = p.msg end
      end
      assert.are.same({ "d1", "i1", "e1", "i2", "w3" }, msgs,
        "a level switched off is not logged; one switched on is, when at or below the level")
    end)

    it("NETIO_LOG_sets_the_initial_level", function()
      local src = [[
        local netio = require "netio"
        print(netio.log.level())
        netio.log.debug("d")
        netio.log.info("i")
        netio.log.warn("w")
      ]]
      local want = { debug = { "d", "i", "w" }, warn = { "w" }, error = {},
                     bogus = { "i", "w" } }
      local names = { debug = "debug", warn = "warn", error = "error", bogus = "info" }
      for _, level in ipairs({ "debug", "warn", "error", "bogus" }) do
        local code, out, err = run(src, level)
        assert.are.equal(0, code, "the host should exit with 0: " .. err)
        assert.are.equal(names[level] .. "\n", out,
          "NETIO_LOG=" .. level .. ": level() should be " .. names[level])
        local msgs = {}
        for _, p in ipairs(lines(err)) do
          -- At debug, the engine logs lines of its own ("netio: ...").
          if not p.msg:match("^netio: ") then msgs[#msgs + 1] = p.msg end
        end
        assert.are.same(want[level], msgs, "NETIO_LOG=" .. level .. ": the script's lines logged")
      end
    end)

    it("a_netio_thread_logs_with_its_own_thread_id", function()
      local code, out, err = run(PID .. [[
        print(pid())
        netio.log.warn("from the task")
        local t = netio.thread(function()
          local n = require "netio"
          n.log.warn("from the thread %d", 7)
          n.log.info("info %s", "too")
          n.log.debug("hidden")
          return true
        end)
        print(t:join(5))
      ]])
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      local pid = out:match("^(%S+)\n")
      assert.is_truthy(out:find("\ntrue\ttrue\n", 1, true), "the thread should end: " .. out)
      local l = lines(err)
      assert.are.equal(3, #l, "the task's line and the thread's two lines: " .. err)
      assert.are.equal("from the task", l[1].msg, "the task's line")
      assert.are.same({ "warn", "from the thread 7" }, { l[2].level, l[2].msg },
        "the thread's warning, formatted")
      assert.are.same({ "info", "info too" }, { l[3].level, l[3].msg }, "the thread's info")
      assert.are_not.equal(l[1].tid, l[2].tid,
        "the thread's lines should carry another thread id than the task's")
      assert.are.equal(l[2].tid, l[3].tid, "one thread: one thread id")
      if pid ~= "?" then
        assert.are.equal(pid, l[2].pid, "the thread's lines should carry the host's pid")
      end
    end)

    it("open_sends_lines_to_a_file_with_an_optional_copy_to_stdout", function()
      local path = H.tmpname()
      local code, out, err = run(([[
        local netio = require "netio"
        assert(netio.log.open(%q, { stdout = true }))
        netio.log.info("to the file and stdout %%d", 1)
        assert(netio.log.open(%q))
        netio.log.warn("to the file only")
        assert(netio.log.open())
        netio.log.error("to stderr again")
        print(select(3, netio.log.open(%q)))
        print(pcall(netio.log.open, %q, { stdot = true }))
      ]]):format(path, path,
        H.windows and "Z:\\no\\such\\dir\\x.log" or "/no/such/dir/x.log", path))
      local file = H.read(path) or ""
      os.remove(path)
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      -- Text mode: lines end in CRLF on Windows.
      assert.truthy(file:find("info  %d+ %d+ to the file and stdout 1\r?\n"), "file: " .. file)
      assert.truthy(file:find("warn  %d+ %d+ to the file only\r?\n"), "file: " .. file)
      assert.is_nil(file:find("stderr again", 1, true), "file: " .. file)
      assert.truthy(out:find("to the file and stdout 1", 1, true), "stdout copy: " .. out)
      assert.is_nil(out:find("file only", 1, true), "no stdout copy without it: " .. out)
      assert.truthy(err:find("to stderr again", 1, true), "back to stderr: " .. err)
      assert.is_nil(err:find("file only", 1, true), "the file only: " .. err)
      assert.truthy(out:find("ENOENT", 1, true), "a missing directory: " .. out)
      assert.truthy(out:find("unknown option 'stdot'", 1, true), out)
    end)

    it("lines_from_several_threads_at_once_stay_whole", function()
      local code, out, err = run([[
        local netio = require "netio"
        local ts = {}
        for k = 1, 4 do
          ts[k] = netio.thread(function(id)
            local n = require "netio"
            local pad = ("x"):rep(200)
            for i = 1, 200 do n.log.info("thread %d line %d %s", id, i, pad) end
          end, k)
        end
        local pad = ("y"):rep(200)
        for i = 1, 200 do netio.log.info("thread 0 line %d %s", i, pad) end
        for k = 1, 4 do assert(ts[k]:join(10)) end
        print("ok")
      ]])
      assert.are.equal(0, code, "the host should exit with 0: " .. err)
      assert.are.equal("ok\n", out, "the script should end")
      local l = lines(err)
      assert.are.equal(1000, #l, "every call should give one whole line")
      local next_line = {}
      for _, p in ipairs(l) do
        local k, i, pad = p.msg:match("^thread (%d) line (%d+) ([xy]+)$")
        assert(k and #pad == 200, "a line should be whole, got " .. p.msg:sub(1, 80))
        k, i = tonumber(k), tonumber(i)
        assert.are.equal((next_line[k] or 0) + 1, i, "thread " .. k .. ": lines in order")
        next_line[k] = i
      end
    end)
  end)
end)
