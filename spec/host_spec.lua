-- host_spec.lua: the `netio` executable (NETIO_HOST): options, arg, exit
-- codes, tracebacks, signals, the demo.
local H = require "helper"
local netio = H.netio

local HOST = os.getenv("NETIO_HOST")
local Q = H.quote

-- Scripts written for a test, removed at the end of the file.
local temps = {}
local function script(src)
  local path = H.tmpname()
  temps[#temps + 1] = path
  return H.write(path, src)
end

-- Run the host with a shell-quoted argument string.
local function host(args, limit, stdin)
  return H.sh(Q(HOST) .. " " .. args, limit or 20, stdin)
end

local function sleep(sec)
  os.execute("sleep " .. sec)
end

-- Start the host in the background on `path`. Returns a handle with the
-- host's pid and files for stdout, stderr and the exit status (written by
-- the waiting sh when the host exits).
local function start(path)
  local h = { out = os.tmpname(), err = os.tmpname(), pidf = os.tmpname(),
              rcf = os.tmpname() }
  for _, f in ipairs({ h.pidf, h.rcf }) do os.remove(f) end
  -- A non-interactive sh starts background commands with SIGINT ignored;
  -- env --default-signal gives the host the default dispositions back.
  local inner = ("env --default-signal=INT,TERM %s %s >%s 2>%s </dev/null & "
    .. "echo $! >%s; wait $!; echo $? >%s")
    :format(Q(HOST), Q(path), h.out, h.err, h.pidf, h.rcf)
  os.execute("sh -c " .. Q(inner) .. " >/dev/null 2>&1 </dev/null &")
  for _ = 1, 100 do
    local p = H.read(h.pidf)
    if p and p:match("%d+") then h.pid = tonumber(p:match("%d+")) break end
    sleep(0.02)
  end
  assert(h.pid, "the host did not start")
  return h
end

-- Wait up to `limit` seconds for the host started by start() to exit;
-- returns its exit status or nil.
local function wait_exit(h, limit)
  local deadline = os.time() + limit + 1
  local tries = math.ceil(limit / 0.05)
  for _ = 1, tries do
    local rc = H.read(h.rcf)
    if rc and rc:match("%d+") then return tonumber(rc:match("%d+")) end
    if os.time() > deadline then break end
    sleep(0.05)
  end
  return nil
end

-- Wait until the host's stdout contains `what`.
local function wait_output(h, what, limit)
  for _ = 1, math.ceil(limit / 0.05) do
    local o = H.read(h.out) or ""
    if o:find(what, 1, true) then return o end
    if wait_exit(h, 0) then break end
    sleep(0.05)
  end
  return nil
end

-- Kill the host if it is still running (by its pid only) and remove files.
local function finish(h)
  if not H.read(h.rcf) or H.read(h.rcf) == "" then
    os.execute("kill -KILL " .. h.pid .. " 2>/dev/null")
    wait_exit(h, 2)
  end
  for _, f in ipairs({ h.out, h.err, h.pidf, h.rcf }) do os.remove(f) end
end

describe("the netio host", function()
  if not HOST or HOST == "" then
    it("needs NETIO_HOST", function() pending("NETIO_HOST is not set") end)
    return
  end

  teardown(function()
    for _, p in ipairs(temps) do os.remove(p) end
  end)

  describe("options", function()
    it("e_runs_a_string", function()
      local code, out = host("-e " .. Q("print(6 * 7)"))
      assert.are.equal(0, code)
      assert.are.equal("42\n", out)
    end)

    it("e_may_call_yielding_functions_directly", function()
      local code, out, err = host("-e " ..
        Q("local n = require 'netio'; n.sleep(0.01); print('slept', n.now() > 0)"))
      assert.are.equal(0, code, err)
      assert.are.equal("slept\ttrue\n", out)
    end)

    it("several_e_run_in_order_before_the_script", function()
      local s = script("print(A .. B)")
      local code, out, err = host("-e " .. Q("A = 'x'") .. " -e " .. Q("B = 'y'")
        .. " " .. Q(s))
      assert.are.equal(0, code, err)
      assert.are.equal("xy\n", out)
    end)

    it("l_requires_a_module_into_a_global", function()
      local code, out, err = host("-l netio -e " ..
        Q("print(type(netio), type(netio.run), type(netio.connect))"))
      assert.are.equal(0, code, err)
      assert.are.equal("table\tfunction\tfunction\n", out)
    end)

    it("l_of_a_missing_module_fails_with_status_1", function()
      local code, _, err = host("-l no_such_module_xyz -e " .. Q("print(1)"))
      assert.are.equal(1, code)
      assert.truthy(err:find("no_such_module_xyz", 1, true), err)
    end)

    it("b_forces_a_backend", function()
      -- -b wins over NETIO_BACKEND; the fallback is always available.
      local code, out, err = H.sh(H.env({ NETIO_BACKEND = "uring" }) .. Q(HOST)
        .. " -b " .. H.fallback_backend .. " -e "
        .. Q("print(require('netio').backend())"))
      assert.are.equal(0, code, err)
      assert.are.equal(H.fallback_backend .. "\n", out)
    end)

    it("b_with_the_backend_of_this_run", function()
      if not H.backend then pending("NETIO_BACKEND is not set") return end
      local code, out, err = host("-b " .. H.backend .. " -e "
        .. Q("print(require('netio').backend())"))
      assert.are.equal(0, code, err)
      assert.are.equal(H.backend .. "\n", out)
    end)

    it("b_with_an_unknown_backend_fails", function()
      local code, _, err = host("-b nosuchbackend -e " .. Q("print(1)"))
      assert.are_not.equal(0, code)
      assert.truthy(#err > 0, "no message on stderr")
    end)

    -- The host knows the backends from the library's one list: another
    -- system's backend is unknown here, not a run that fails to start.
    it("b_with_another_systems_backend_is_unknown", function()
      local other = H.windows and "uring" or "iocp"
      local code, _, err = host("-b " .. other .. " -e " .. Q("print(1)"))
      assert.are.equal(2, code, "expected the usage status 2, stderr: " .. err)
      assert.truthy(err:find("unknown backend '" .. other .. "'", 1, true),
        "expected unknown backend '" .. other .. "' in: " .. err)
    end)

    it("host_follows_NETIO_BACKEND", function()
      if not H.backend then pending("NETIO_BACKEND is not set") return end
      local code, out, err = host("-e " .. Q("print(require('netio').backend())"))
      assert.are.equal(0, code, err)
      assert.are.equal(H.backend .. "\n", out)
    end)

    it("v_prints_netio_lua_and_backend_versions", function()
      local code, out, err = host("-v")
      local text = out .. err
      assert.are.equal(0, code)
      assert.truthy(text:find("netio", 1, true), text)
      assert.truthy(text:find("Lua 5.4", 1, true), text)
      assert.truthy(text:find("0.1.0", 1, true), text)
      if H.backend then
        assert.truthy(text:find(H.backend, 1, true),
          "backend " .. H.backend .. " not in: " .. text)
      else
        assert.truthy(text:find("uring", 1, true) or text:find("epoll", 1, true)
          or text:find("iocp", 1, true),
          "no backend in: " .. text)
      end
    end)

    -- A Linux build without liburing has epoll only, and -v says so (the
    -- build's backends come from cmake/tests.cmake); a build with it
    -- does not.
    it("v_says_epoll_only_exactly_in_a_build_without_liburing", function()
      local built = os.getenv("NETIO_BUILD_BACKENDS")
      if H.windows or not built then pending("a Linux build under ctest") return end
      local code, out, err = host("-v")
      assert.are.equal(0, code, err)
      local note = "(epoll only: built without liburing)"
      if built == "epoll" then
        assert.truthy(out:find(note, 1, true),
          "expected '" .. note .. "' in netio -v of an epoll-only build: " .. out)
      else
        assert.falsy(out:find(note, 1, true),
          "expected no '" .. note .. "' in netio -v of a build with " .. built .. ": " .. out)
      end
    end)

    it("h_prints_usage_and_exits_0", function()
      local code, out, err = host("-h")
      local text = out .. err
      assert.are.equal(0, code)
      for _, opt in ipairs({ "-e", "-l", "-b", "-v", "-h", "-i", "-E", "-W" }) do
        assert.truthy(text:find(opt, 1, true), opt .. " missing from: " .. text)
      end
      local names = H.windows and "(iocp)"
        or "(" .. (os.getenv("NETIO_BUILD_BACKENDS") or "uring, epoll") .. ")"
      assert.truthy(text:find("force the backend " .. names, 1, true),
        "the backends of this build " .. names .. " missing from: " .. text)
    end)

    it("dash_reads_the_script_from_stdin", function()
      local code, out, err = host("- one two", 20,
        "local n = require 'netio'\nn.sleep(0.01)\nprint('stdin', ...)\n")
      assert.are.equal(0, code, err)
      assert.are.equal("stdin\tone\ttwo\n", out)
    end)
  end)

  describe("bad usage exits with status 2", function()
    for _, args in ipairs({ "-Z", "-e", "-l", "-b", "--bogus" }) do
      it("usage_error_for_" .. args, function()
        local code, out, err = host(args)
        assert.are.equal(2, code, "stdout: " .. out .. " stderr: " .. err)
        assert.truthy(#err > 0, "no message on stderr")
      end)
    end
  end)

  describe("scripts", function()
    it("script_args_are_in_arg_and_in_dots", function()
      local s = script([[
        print(arg[0], #arg, arg[1], arg[2])
        print(select("#", ...), ...)
      ]])
      local code, out, err = host(Q(s) .. " a " .. Q("b c"))
      assert.are.equal(0, code, err)
      assert.are.equal(("%s\t2\ta\tb c\n2\ta\tb c\n"):format(s), out)
    end)

    it("arg_negative_indices_hold_the_host_and_its_options", function()
      local s = script("print(arg[-1], arg[-2] ~= nil)")
      local code, out, err = host("-b " .. H.fallback_backend .. " " .. Q(s))
      assert.are.equal(0, code, err)
      assert.are.equal(H.fallback_backend .. "\ttrue\n", out)
    end)

    it("top_level_of_a_script_may_call_yielding_functions", function()
      local s = script([[
        local netio = require "netio"
        local l = assert(netio.listen("127.0.0.1:0"))
        local _, port = l:getsockname()
        netio.spawn(function()
          local c = assert(netio.connect("127.0.0.1:" .. port))
          c:send("hello from a task\n")
          c:close()
        end)
        local s = assert(l:accept(5))
        print(s:recv("*l", 5))
        s:close()
        l:close()
      ]])
      local code, out, err = host(Q(s))
      assert.are.equal(0, code, err)
      assert.are.equal("hello from a task\n", out)
    end)

    it("the_host_returns_when_every_task_has_ended", function()
      local s = script([[
        local netio = require "netio"
        netio.spawn(function()
          netio.sleep(0.2)
          print("late task")
        end)
        print("main done")
      ]])
      local code, out, err = host(Q(s))
      assert.are.equal(0, code, err)
      assert.are.equal("main done\nlate task\n", out)
    end)

    it("an_error_in_the_main_chunk_exits_1_with_a_traceback", function()
      local s = script([[
        local function deeper() error("main-chunk-boom") end
        deeper()
      ]])
      local code, _, err = host(Q(s))
      assert.are.equal(1, code)
      assert.truthy(err:find("main-chunk-boom", 1, true), err)
      assert.truthy(err:find("traceback", 1, true), err)
      assert.truthy(err:find("deeper", 1, true), "traceback without the function: " .. err)
    end)

    it("an_error_in_e_exits_1", function()
      local code, _, err = host("-e " .. Q("error('e-boom')"))
      assert.are.equal(1, code)
      assert.truthy(err:find("e-boom", 1, true), err)
    end)

    it("a_non_string_error_exits_1_without_crashing", function()
      local s = script("error(setmetatable({}, {}))")
      local code, _, err = host(Q(s))
      assert.are.equal(1, code)
      assert.truthy(#err > 0)
    end)

    it("a_syntax_error_exits_1", function()
      local s = script("this is not lua")
      local code, _, err = host(Q(s))
      assert.are.equal(1, code)
      assert.truthy(#err > 0)
    end)

    it("a_missing_script_exits_1_naming_it", function()
      local code, _, err = host(Q("/nonexistent/netio-spec-missing.lua"))
      assert.are.equal(1, code)
      assert.truthy(err:find("netio-spec-missing", 1, true), err)
    end)

    it("an_error_in_a_task_is_logged_with_a_traceback_and_the_engine_goes_on", function()
      local s = script([[
        local netio = require "netio"
        local function failing() error("task-boom-42") end
        netio.spawn(failing)
        netio.sleep(0.05)
        print("still running")
      ]])
      local code, out, err = host(Q(s))
      assert.are.equal(0, code, err)
      assert.are.equal("still running\n", out)
      assert.truthy(err:find("task-boom-42", 1, true), err)
      assert.truthy(err:find("traceback", 1, true), err)
    end)

    it("the_host_runs_from_any_directory_without_lua_paths", function()
      local code, out, err = H.sh(H.cd(H.windows and "C:\\" or "/")
        .. H.env({ LUA_PATH = false, LUA_PATH_5_4 = false, LUA_CPATH = false,
                   LUA_CPATH_5_4 = false }) .. Q(HOST) .. " -e "
        .. Q("local n = require 'netio' print(type(n.run), type(n.connect))"))
      assert.are.equal(0, code, err)
      assert.are.equal("function\tfunction\n", out)
    end)

    it("run_inside_the_host_runs_fn_as_a_task_and_waits", function()
      -- One line: cmd.exe cannot pass a line break in an argument.
      local code, out, err = host("-e " .. Q("local netio = require 'netio'; "
        .. "local ok, v = netio.run(function() netio.sleep(0.01) return 'inner' end); "
        .. "print(ok, v)"))
      assert.are.equal(0, code, err)
      assert.are.equal("true\tinner\n", out)
    end)
  end)

  -- What lua.c does and netio does the same way: -i, -E, -W, LUA_INIT,
  -- arg. The interactive mode is driven through a pipe: stdin is not a
  -- terminal, so no banner or prompt is written and stdout holds only the
  -- values printed.
  describe("lua.c parity", function()
    it("i_prints_the_values_of_expressions_without_a_prompt_on_a_pipe", function()
      local code, out, err = host("-i", 20, "1 + 1\n'a', nil, 3\nx = 5\nx\n")
      assert.are.equal(0, code, err)
      assert.are.equal("2\na\tnil\t3\n5\n", out,
        "expected each expression's values and nothing else (no prompt)")
    end)

    it("i_runs_each_line_as_a_task_so_yielding_calls_work", function()
      local code, out, err = host("-i", 20, table.concat({
        "netio = require 'netio'",
        "l = assert(netio.listen('127.0.0.1:0'))",
        "t = netio.spawn(function() local c = l:accept(5) c:send('hi\\n') c:close() end)",
        "c = assert(netio.connect('127.0.0.1:' .. select(2, l:getsockname())))",
        "c:recv('*l', 5)",
        "netio.sleep(0.05) return 'slept'",
        "" }, "\n"))
      assert.are.equal(0, code, err)
      assert.are.equal("hi\nslept\n", out)
    end)

    it("i_continues_an_incomplete_chunk_on_the_next_lines", function()
      local code, out, err = host("-i", 20,
        "function f(a,\nb)\nreturn a +\nb end\nf(40, 2)\n")
      assert.are.equal(0, code, err)
      assert.are.equal("42\n", out)
    end)

    it("i_reports_an_error_with_its_traceback_and_goes_on", function()
      local code, out, err = host("-i", 20,
        "error('repl-boom')\nthis is not lua\nprint('after')\n")
      assert.are.equal(0, code, err)
      assert.are.equal("after\n", out)
      assert.truthy(err:find("stdin:1: repl-boom", 1, true), "expected the error in: " .. err)
      assert.truthy(err:find("traceback", 1, true), "expected a traceback in: " .. err)
      assert.truthy(err:find("syntax error near 'is'", 1, true) or err:find("near 'is'", 1, true),
        "expected the syntax error in: " .. err)
    end)

    it("i_after_a_script_runs_the_script_then_reads_lines", function()
      local s = script("X = 41 print('script', ...)")
      local code, out, err = host("-i " .. Q(s) .. " a", 20, "X + 1\n")
      assert.are.equal(0, code, err)
      assert.are.equal("script\ta\n42\n", out)
    end)

    it("i_end_of_input_stops_the_run_and_its_tasks", function()
      local t0 = os.time()
      local code, out, err = host("-i", 30, table.concat({
        "netio = require 'netio'",
        "l = assert(netio.listen('127.0.0.1:0'))",
        "t = netio.spawn(function() print('accept', l:accept()) end)",
        "" }, "\n"))
      assert.are.equal(0, code, err)
      assert.are.equal("accept\tnil\tclosed\n", out,
        "expected the listener closed by the stop at the end of the input")
      assert.is_true(os.time() - t0 <= 10, "the host ran " .. os.time() - t0 .. " s")
    end)

    -- A terminal from script(1) (util-linux): the banner, the prompts and,
    -- when the build has readline, line editing; Ctrl-D ends the session.
    it("i_on_a_terminal_shows_the_banner_and_prompts_and_ctrl_d_ends", function()
      if H.windows then pending("no pseudo-terminal to drive from a spec on Windows") return end
      if not os.execute("command -v script >/dev/null 2>&1") then
        pending("script(1) is not installed") return
      end
      local cmd = "(printf '1+1\\nfunction f()\\nreturn 3 end\\nf()\\n'; sleep 1; "
        .. "printf '\\004'; sleep 1) | script -qec " .. Q(Q(HOST) .. " -i") .. " /dev/null"
      local code, out, err = H.sh(cmd, 20)
      assert.are.equal(0, code, err)
      out = out:gsub("\27%[%?2004[hl]", ""):gsub("\r", "")
      assert.truthy(out:find("netio 0.1.0", 1, true), "expected the banner in: " .. out)
      if os.execute("ldd " .. Q(HOST) .. " 2>/dev/null | grep -q libreadline") then
        -- readline echoes each line after its prompt, as it is asked for.
        assert.truthy(out:find("> 1+1\n2\n", 1, true), "expected the prompt and 2 in: " .. out)
        assert.truthy(out:find(">> return 3 end\n", 1, true),
          "expected the continuation prompt in: " .. out)
        assert.truthy(out:find("> f()\n3\n", 1, true), "expected 3 in: " .. out)
      else
        -- Without it the terminal echoes the typed-ahead lines at once.
        assert.truthy(out:find("> 2\n> >> > 3\n", 1, true), "expected prompts and values in: "
          .. out)
      end
    end)

    it("without_a_script_or_e_stdin_not_a_terminal_is_the_script", function()
      local code, out, err = host("-l netio", 20, "print(type(netio), arg[0] ~= nil)\n")
      assert.are.equal(0, code, err)
      assert.are.equal("table\ttrue\n", out)
    end)

    it("LUA_INIT_runs_before_e_and_the_script", function()
      local s = script("print('script', INIT)")
      local code, out, err = H.sh(H.env({ LUA_INIT = "INIT = 'set'" }) .. Q(HOST)
        .. " -e " .. Q("print('e', INIT)") .. " " .. Q(s))
      assert.are.equal(0, code, err)
      assert.are.equal("e\tset\nscript\tset\n", out)
    end)

    it("LUA_INIT_5_4_wins_over_LUA_INIT", function()
      local code, out, err = H.sh(H.env({ LUA_INIT = "V = 'plain'",
        LUA_INIT_5_4 = "V = 'versioned'" }) .. Q(HOST) .. " -e " .. Q("print(V)"))
      assert.are.equal(0, code, err)
      assert.are.equal("versioned\n", out)
    end)

    it("LUA_INIT_at_a_file_runs_the_file", function()
      local f = script("FROM_FILE = 7")
      local code, out, err = H.sh(H.env({ LUA_INIT = "@" .. f }) .. Q(HOST)
        .. " -e " .. Q("print(FROM_FILE)"))
      assert.are.equal(0, code, err)
      assert.are.equal("7\n", out)
    end)

    it("an_error_in_LUA_INIT_exits_1_naming_it", function()
      local code, out, err = H.sh(H.env({ LUA_INIT = "error('init-boom')" }) .. Q(HOST)
        .. " -e " .. Q("print('ran')"))
      assert.are.equal(1, code, "stdout: " .. out)
      assert.are.equal("", out, "expected nothing run after LUA_INIT failed")
      assert.truthy(err:find("LUA_INIT:1: init-boom", 1, true), err)
    end)

    it("E_ignores_LUA_INIT_and_LUA_PATH", function()
      local code, out, err = H.sh(H.env({ LUA_INIT = "INIT = 'set'",
        LUA_PATH_5_4 = "/netio-spec-nowhere/?.lua", LUA_PATH = "/netio-spec-nowhere/?.lua",
        LUA_CPATH_5_4 = "/netio-spec-nowhere/?.so", LUA_CPATH = "/netio-spec-nowhere/?.so" })
        .. Q(HOST) .. " -E -e "
        .. Q("print(INIT, package.path:find('netio-spec-nowhere', 1, true), "
        .. "package.cpath:find('netio-spec-nowhere', 1, true), "
        .. "type(require('netio').run))"))
      assert.are.equal(0, code, err)
      assert.are.equal("nil\tnil\tnil\tfunction\n", out)
    end)

    it("without_E_LUA_PATH_is_used", function()
      local code, out, err = H.sh(H.env({ LUA_PATH_5_4 = "/netio-spec-nowhere/?.lua" })
        .. Q(HOST) .. " -e " .. Q("print(package.path)"))
      assert.are.equal(0, code, err)
      assert.are.equal("/netio-spec-nowhere/?.lua\n", out)
    end)

    it("W_turns_warnings_on", function()
      local code, _, err = host("-W -e " .. Q("warn('spec-warning')"))
      assert.are.equal(0, code, err)
      assert.truthy(err:find("Lua warning: spec-warning", 1, true),
        "expected the warning on stderr with -W, got: " .. err)
      code, _, err = host("-e " .. Q("warn('spec-warning')"))
      assert.are.equal(0, code, err)
      assert.falsy(err:find("spec-warning", 1, true), "expected no warning without -W: " .. err)
    end)

    it("arg_with_only_e_has_the_executable_at_0_and_the_options_after", function()
      local code, out, err = host("-e " .. Q("print(arg[0], arg[1], arg[-1], #arg)"))
      assert.are.equal(0, code, err)
      assert.are.equal(HOST .. "\t-e\tnil\t2\n", out)
    end)

    it("arg_for_dash_has_dash_at_0", function()
      local code, out, err = host("-W - x", 20, "print(arg[0], arg[-1], arg[-2], arg[1])\n")
      assert.are.equal(0, code, err)
      assert.are.equal("-\t-W\t" .. HOST .. "\tx\n", out)
    end)

    it("double_dash_ends_options_before_the_script", function()
      local s = script("print(arg[-1], arg[1], ...)")
      local code, out, err = host("-- " .. Q(s) .. " -e", 20)
      assert.are.equal(0, code, err)
      assert.are.equal("--\t-e\t-e\n", out, "expected -e after the script to be its argument")
    end)
  end)

  describe("signals", function()
    -- Windows has no SIGTERM or SIGINT to send to another process: a console
    -- program gets Ctrl+C/Ctrl+Break only from a process sharing its console
    -- (GenerateConsoleCtrlEvent), which plain Lua cannot call.
    local function no_signals()
      if not H.windows then return false end
      pending("not applicable on Windows: no signal can be sent to the host")
      return true
    end

    it("sigterm_stops_a_running_server_gracefully", function()
      if no_signals() then return end
      local s = script([[
        local netio = require "netio"
        local l = assert(netio.listen("127.0.0.1:0"))
        netio.spawn(function()
          while true do
            local c, err = l:accept()
            if not c then
              print("accept:", err)
              io.stdout:flush()
              return
            end
            c:send("hi\n")
            c:close()
          end
        end)
        print("ready", (select(2, l:getsockname())))
        io.stdout:flush()
      ]])
      local h = start(s)
      local ok, why = pcall(function()
        local out = wait_output(h, "ready", 10)
        assert(out, "the server did not start: " .. tostring(H.read(h.err)))
        local port = tonumber(out:match("ready%s+(%d+)"))
        -- The main chunk has returned; the server task keeps it running.
        sleep(0.2)
        assert.is_nil(wait_exit(h, 0), "the host exited while a task was alive")
        local line = H.run(function()
          local c = H.connect("127.0.0.1:" .. port)
          return c:recv("*l", 5)
        end)
        assert.are.equal("hi", line)
        os.execute("kill -TERM " .. h.pid)
        local rc = wait_exit(h, 10)
        assert.are.equal(0, rc, "exit status after SIGTERM; stderr: "
          .. tostring(H.read(h.err)))
        assert.truthy(H.read(h.out):find("accept:\tclosed", 1, true), H.read(h.out))
      end)
      finish(h)
      assert(ok, why)
    end)

    it("a_second_sigterm_exits_at_once", function()
      if no_signals() then return end
      local s = script([[
        local netio = require "netio"
        print("ready")
        io.stdout:flush()
        for _ = 1, 600 do netio.sleep(0.05) end
      ]])
      local h = start(s)
      local ok, why = pcall(function()
        assert(wait_output(h, "ready", 10), "the script did not start")
        os.execute("kill -TERM " .. h.pid)
        sleep(0.2)
        local early = wait_exit(h, 0)
        if not early then os.execute("kill -TERM " .. h.pid) end
        local rc = early or wait_exit(h, 3)
        assert(rc, "the host was still running 3 s after a second SIGTERM")
      end)
      finish(h)
      assert(ok, why)
    end)

    it("sigint_stops_gracefully_too", function()
      if no_signals() then return end
      local s = script([[
        local netio = require "netio"
        local l = assert(netio.listen("127.0.0.1:0"))
        print("ready")
        io.stdout:flush()
        print("accept:", select(2, l:accept()))
      ]])
      local h = start(s)
      local ok, why = pcall(function()
        assert(wait_output(h, "ready", 10), "the script did not start")
        os.execute("kill -INT " .. h.pid)
        local rc = wait_exit(h, 10)
        assert.are.equal(0, rc)
        assert.truthy(H.read(h.out):find("accept:\tclosed", 1, true), H.read(h.out))
      end)
      finish(h)
      assert(ok, why)
    end)
  end)

  describe("heap", function()
    -- The run's allocator keeps freed small blocks for reuse, up to twice
    -- the Lua heap (256 KiB at least). A burst of small strings, dropped
    -- and collected, leaves more than that in its lists (a sweep keeps
    -- blocks while the heap is still large); the next turn gives the
    -- surplus back.
    it("freed_blocks_over_twice_the_heap_are_given_back_at_the_next_turn", function()
      local s = script([[
        local netio = require "netio"
        local t = {}
        for i = 1, 200000 do t[i] = ("x"):rep(48) .. i end
        t = nil
        collectgarbage()
        collectgarbage()
        netio.sleep(0)
        local kept = netio.stats().heap_kept
        local cap = math.max(262144, 2 * collectgarbage("count") * 1024)
        print(math.type(kept), kept <= cap, kept, cap)
      ]])
      local code, out, err = host(Q(s))
      assert.are.equal(0, code, err)
      assert.matches("^integer\ttrue\t", out)
    end)
  end)

  describe("examples", function()
    it("demo_exits_0_within_seconds", function()
      local t0 = os.time()
      local code, out, err = H.sh(H.cd(H.root) .. Q(HOST) .. " examples/demo.lua", 30)
      assert.are.equal(0, code, "stdout: " .. out .. "\nstderr: " .. err)
      assert.is_true(os.time() - t0 <= 15, "the demo ran " .. os.time() - t0 .. " s")
      assert.truthy(#out > 0, "the demo printed nothing")
    end)
  end)
end)

-- Keep `netio` referenced: the helper loaded it and checked the backend.
assert(netio)
