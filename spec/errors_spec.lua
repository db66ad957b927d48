-- errors_spec.lua: misuse raises an error naming the function and the
-- argument; yielding calls outside a netio task raise; nothing a script
-- does crashes the process.
local H = require "helper"
local netio = H.netio

-- pcall f and return the error message (raising if f did not fail).
local function err_of(f)
  local ok, err = pcall(f)
  if ok then return nil end
  return tostring(err)
end

-- Check that err names `fname` and argument `argn`.
local function assert_argerr(err, fname, argn, what)
  assert.is_string(err, (what or fname) .. " did not raise")
  local want = ("bad argument #%d to '%s'"):format(argn, fname)
  assert.truthy(err:find(want, 1, true),
    ("%s: expected %q in: %s"):format(what or fname, want, err))
end

describe("argument errors", function()
  it("run_with_a_non_function_raises", function()
    assert_argerr(err_of(function() netio.run(42) end), "run", 1)
    assert_argerr(err_of(function() netio.run() end), "run", 1)
  end)

  it("spawn_with_a_non_function_raises", function()
    local err = H.run(function() return err_of(function() netio.spawn("x") end) end)
    assert_argerr(err, "spawn", 1)
  end)

  it("sleep_with_a_non_number_raises", function()
    local e1, e2 = H.run(function()
      return err_of(function() netio.sleep("soon") end),
             err_of(function() netio.sleep({}) end)
    end)
    assert_argerr(e1, "sleep", 1)
    assert_argerr(e2, "sleep", 1)
  end)

  it("join_with_a_bad_timeout_raises", function()
    local err = H.run(function()
      local t = netio.spawn(function() end)
      return err_of(function() t:join("later") end)
    end)
    assert_argerr(err, "join", 1)
  end)

  it("listen_with_a_non_string_address_raises", function()
    local r = H.run(function()
      return {
        err_of(function() netio.listen() end),
        err_of(function() netio.listen({}) end),
        err_of(function() netio.listen(true) end),
        err_of(function() netio.listen("127.0.0.1:0", "opts") end),
      }
    end)
    assert_argerr(r[1], "listen", 1, "listen()")
    assert_argerr(r[2], "listen", 1, "listen({})")
    assert_argerr(r[3], "listen", 1, "listen(true)")
    assert_argerr(r[4], "listen", 2, "listen(addr, 'opts')")
  end)

  it("connect_with_a_non_string_address_raises", function()
    local r = H.run(function()
      return {
        err_of(function() netio.connect() end),
        err_of(function() netio.connect({}) end),
        err_of(function() netio.connect(false) end),
        err_of(function() netio.connect("127.0.0.1:1", 5) end),
      }
    end)
    assert_argerr(r[1], "connect", 1, "connect()")
    assert_argerr(r[2], "connect", 1, "connect({})")
    assert_argerr(r[3], "connect", 1, "connect(false)")
    assert_argerr(r[4], "connect", 2, "connect(addr, 5)")
  end)

  it("options_of_the_wrong_type_raise", function()
    local r = H.run(function()
      return {
        backlog = err_of(function() netio.listen("127.0.0.1:0", { backlog = "x" }) end),
        timeout = err_of(function() netio.connect("127.0.0.1:1", { timeout = "x" }) end),
        bind = err_of(function() netio.connect("127.0.0.1:1", { bind = {} }) end),
      }
    end)
    assert_argerr(r.backlog, "listen", 2, "listen backlog='x'")
    assert_argerr(r.timeout, "connect", 2, "connect timeout='x'")
    assert_argerr(r.bind, "connect", 2, "connect bind={}")
  end)

  it("accept_with_a_bad_timeout_raises", function()
    local err = H.run(function()
      local l = H.listen()
      return err_of(function() l:accept("x") end)
    end)
    assert_argerr(err, "accept", 1)
  end)

  it("recv_with_a_bad_pattern_raises_number_or_pattern_expected", function()
    local r = H.run(function()
      local c = H.pair()
      return {
        tbl = err_of(function() c:recv({}) end),
        bool = err_of(function() c:recv(true) end),
        unknown = err_of(function() c:recv("*x") end),
        neg = err_of(function() c:recv(-1) end),
        frac = err_of(function() c:recv(1.5) end),
        timeout = err_of(function() c:recv(1, "soon") end),
      }
    end)
    for k, e in pairs(r) do
      assert_argerr(e, "recv", k == "timeout" and 2 or 1, "recv " .. k)
    end
    assert.truthy(r.tbl:find("number or pattern expected", 1, true), r.tbl)
  end)

  it("send_with_bad_data_raises", function()
    local r = H.run(function()
      local c = H.pair()
      return {
        none = err_of(function() c:send() end),
        nil_ = err_of(function() c:send(nil) end),
        bool = err_of(function() c:send(true) end),
        func = err_of(function() c:send(print) end),
        tbl_bool = err_of(function() c:send({ "ok", true }) end),
        tbl_tbl = err_of(function() c:send({ {} }) end),
        tbl_func = err_of(function() c:send({ "a", "b", print }) end),
      }
    end)
    for k, e in pairs(r) do assert_argerr(e, "send", 1, "send " .. k) end
  end)

  it("a_rejected_send_queues_nothing", function()
    local got = H.run(function()
      local c, s = H.pair()
      pcall(function() c:send({ "AAA", {}, "BBB" }) end)
      assert(c:send("ok"))
      return s:recv(2, 2)
    end)
    assert.are.equal("ok", got)
  end)

  it("settimeout_and_settimeouts_with_non_numbers_raise", function()
    local e1, e2, e3 = H.run(function()
      local c = H.pair()
      return err_of(function() c:settimeout("x") end),
             err_of(function() c:settimeouts(1, {}, 1) end),
             err_of(function() c:settimeouts(1, 1, "x") end)
    end)
    assert_argerr(e1, "settimeout", 1)
    assert_argerr(e2, "settimeouts", 2)
    assert_argerr(e3, "settimeouts", 3)
  end)

  it("flush_with_a_bad_timeout_raises", function()
    local err = H.run(function()
      local c = H.pair()
      return err_of(function() c:flush("x") end)
    end)
    assert_argerr(err, "flush", 1)
  end)

  it("setoption_with_a_bad_name_raises", function()
    local e1, e2 = H.run(function()
      local c = H.pair()
      return err_of(function() c:setoption(42, true) end),
             err_of(function() c:setoption("bogus", true) end)
    end)
    assert_argerr(e1, "setoption", 1)
    assert.truthy(e2 and e2:find("setoption", 1, true), tostring(e2))
  end)

  it("methods_called_on_the_wrong_object_raise", function()
    local e1, e2 = H.run(function()
      local l = H.listen()
      local c = H.pair()
      return err_of(function() return c.recv(l, 1) end),
             err_of(function() return l.accept(c, 0) end)
    end)
    assert.truthy(e1 and e1:find("netio.conn", 1, true), tostring(e1))
    assert.truthy(e2 and e2:find("netio.listener", 1, true), tostring(e2))
  end)

  -- Every method and metamethod of netio.conn and netio.listener knows its
  -- self (a conn by the tag at the start of its payload, else by its
  -- metatable's name; a listener by metatable identity): a table, another
  -- library's userdata, an object of another netio class -- even one with
  -- the class's own methods copied into its metatable -- is refused with
  -- the standard message.
  it("class_methods_refuse_every_self_that_is_not_of_their_class", function()
    local got = H.run(function()
      local c = H.pair()
      local l = H.listen()
      local t = netio.spawn(function() end)
      t:join(1)
      local impostor = setmetatable({}, getmetatable(c))
      local out = {}
      for _, cls in ipairs({ { "netio.conn", c, l }, { "netio.listener", l, c } }) do
        local name, obj, other = cls[1], cls[2], cls[3]
        local mt = getmetatable(obj)
        local fns = {}
        for k in pairs(mt.__index) do fns[#fns + 1] = { "__index." .. k, k } end
        for _, k in ipairs({ "__gc", "__close", "__tostring" }) do
          fns[#fns + 1] = { k, k }
        end
        local selves = { { {}, "table" }, { io.stdout, "FILE*" },
                         { other, getmetatable(other).__name },
                         { t, "netio.task" }, { impostor, "netio.conn" },
                         { 42, "number" } }
        for _, f in ipairs(fns) do
          -- A call through a field, so the message names the function.
          local call = load("local mt, self = ... return mt." .. f[1] .. "(self)")
          for _, s in ipairs(selves) do
            local bad, gotname = s[1], s[2]
            -- (Lua names a value by its metatable's __name: the impostor
            -- table reads "netio.conn".)
            local ok, err = pcall(call, mt, bad)
            local want = ("bad argument #1 to '%s' (%s expected, got %s)")
              :format(f[2], name, gotname)
            if ok or not tostring(err):find(want, 1, true) then
              out[#out + 1] = ("%s(%s): expected %q, got %s"):format(
                f[1], gotname, want, ok and "no error" or tostring(err))
            end
          end
        end
      end
      return out
    end)
    assert.are.same({}, got)
  end)
end)

describe("yielding calls outside a netio task", function()
  local rule = "must be called from a netio task"

  local function assert_rule(err, name)
    assert.is_string(err, name .. " did not raise")
    local want = ("netio: %s %s"):format(name, rule)
    assert.truthy(err:find(want, 1, true),
      ("expected %q in: %s"):format(want, err))
  end

  it("sleep_outside_any_task_raises", function()
    assert_rule(err_of(function() netio.sleep(0) end), "sleep")
  end)

  it("connect_outside_any_task_raises", function()
    assert_rule(err_of(function() netio.connect("127.0.0.1:1") end), "connect")
  end)

  it("yielding_calls_from_a_plain_coroutine_inside_a_task_wait_for_the_task", function()
    -- As in OpenResty: the task waits as a whole (spec/nested_spec.lua).
    local r = H.run(function()
      local c, s = H.pair()
      local l, port = H.listen()
      local t = netio.spawn(function() netio.sleep(0.01) return "joined" end)
      local function in_coroutine(f)
        local co = coroutine.create(f)
        return select(2, assert(coroutine.resume(co)))
      end
      netio.spawn(function() netio.sleep(0.01) s:send("x") end)
      local out = {
        sleep = in_coroutine(function() netio.sleep(0) return "slept" end),
        recv = in_coroutine(function() return c:recv(1) end),
        accept = in_coroutine(function()
          H.track(netio.connect("127.0.0.1:" .. port))
          return l:accept(2) and "accepted"
        end),
        join = in_coroutine(function() return select(2, t:join()) end),
        flush = in_coroutine(function() return c:flush() end),
      }
      assert(s:send("still"))
      out.after = c:recv(5, 2)
      return out
    end)
    assert.are.same({ sleep = "slept", recv = "x", accept = "accepted", join = "joined",
      flush = true, after = "still" }, r)
  end)

  it("intask_tells_tasks_from_other_coroutines", function()
    -- netio.intask() is the binding's addition (lua/netio/init.lua).
    local outside = netio.intask()
    local in_task, in_co = H.run(function()
      return netio.intask(), coroutine.wrap(function() return netio.intask() end)()
    end)
    assert.is_false(outside)
    assert.is_true(in_task)
    assert.is_false(in_co)
  end)

  it("a_coroutine_wrap_inside_a_task_may_wait_too", function()
    local r = H.run(function()
      return coroutine.wrap(function() netio.sleep(0.01) return "woke" end)()
    end)
    assert.are.equal("woke", r)
  end)

  it("a_task_may_still_use_its_own_coroutines_that_do_not_call_netio", function()
    local sum = H.run(function()
      local gen = coroutine.wrap(function()
        for i = 1, 3 do coroutine.yield(i) end
      end)
      local total = 0
      for _ = 1, 3 do
        total = total + gen()
        netio.sleep(0)
      end
      return total
    end)
    assert.are.equal(6, sum)
  end)
end)

describe("nothing crashes the process", function()
  it("every_method_survives_every_kind_of_bad_argument", function()
    local weird = { false, true, -1, 0, 1.5, math.huge, -math.huge, 0 / 0,
                    math.mininteger, math.maxinteger, "", "*", "*z", "x",
                    {}, { "a", 1, {} }, print, coroutine.create(print) }
    local calls, survived = H.run(function()
      local c, s = H.pair()
      local l = H.listen()
      local t = netio.spawn(function() end)
      t:join(1)
      local targets = {
        { c, { "recv", "send", "settimeout", "settimeouts", "setoption",
               "getstats", "id", "getpeername", "getsockname" } },
        { l, { "accept", "getsockname" } },
        { t, { "join" } },
      }
      -- Where the first argument is a timeout, a number could legitimately
      -- mean "wait long" (or, LuaSocket-style, negative = forever): only
      -- non-numbers and 0 go there.
      local first_is_timeout = { accept = true, join = true, settimeout = true,
                                 settimeouts = true }
      local n = 0
      for _, tg in ipairs(targets) do
        local obj, methods = tg[1], tg[2]
        for _, m in ipairs(methods) do
          for _, a in ipairs(weird) do
            if not (first_is_timeout[m] and type(a) == "number" and a ~= 0) then
              for _, b in ipairs({ 0.001, "x" }) do
                pcall(function() return obj[m](obj, a, b) end)
                n = n + 1
              end
            end
          end
        end
      end
      for _, a in ipairs(weird) do
        pcall(function() return netio.connect(a, { timeout = 0.01 }) end)
        pcall(function() return netio.connect("127.0.0.1:1", a) end)
        pcall(function()
          local x = netio.listen(a)
          if x then x:close() end
        end)
        pcall(function()
          local x = netio.listen("127.0.0.1:0", a)
          if x then x:close() end
        end)
        if type(a) ~= "number" then
          pcall(function() return netio.sleep(a) end)
        end
        n = n + 5
      end
      c:settimeout(nil)
      -- After all that, the pair still carries data both ways.
      c:recv(0)
      assert(s:send("alive\n"))
      local line = c:recv("*l", 2)
      return n, line
    end, 30)
    assert.is_true(calls > 300, "only " .. calls .. " calls made")
    assert.are.equal("alive", survived)
  end)

  it("garbage_from_the_network_does_not_break_a_line_reader", function()
    local blob = H.data(200000, 61)
    local lines, total = H.run(function()
      local c, s = H.pair()
      netio.spawn(function()
        s:send(blob)
        s:close()
      end)
      local n, bytes = 0, 0
      for _ = 1, 200000 do
        local line, err, partial = c:recv("*l", 5)
        if not line then
          bytes = bytes + #(partial or "")
          assert(err == "closed", err)
          break
        end
        n = n + 1
        bytes = bytes + #line
      end
      return n, bytes
    end, 20)
    local want_lines, want_bytes = 0, 0
    for line in blob:gmatch("([^\n]*)\n") do
      want_lines = want_lines + 1
      want_bytes = want_bytes + #line:gsub("\r$", "")
    end
    -- The bytes after the last LF come back as the partial at EOF.
    want_bytes = want_bytes + ((blob:reverse():find("\n", 1, true) or #blob + 1) - 1)
    assert.are.equal(want_lines, lines)
    assert.are.equal(want_bytes, total)
  end)
end)
