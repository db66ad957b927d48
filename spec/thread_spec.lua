-- thread_spec.lua: netio.thread -- a Lua function or chunk in an OS thread
-- with a Lua state of its own: copied arguments and results, join, status,
-- errors, what cannot be carried over, the thread's mailbox (thread:post,
-- netio.receive in the thread), the thread-side module, and the end of the
-- run with threads still running.
local H = require "helper"
local netio = H.netio
local raised, is_error, has = H.raised, H.is_error, H.has

local HOST = os.getenv("NETIO_HOST")

-- A table nested `depth` deep ({ { { ... } } }); the innermost holds "end".
local function nested(depth)
  local top = {}
  local t = top
  for _ = 2, depth do
    t[1] = {}
    t = t[1]
  end
  t[1] = "end"
  return top
end

-- Code for a thread that blocks its OS thread for `sec` seconds without
-- reading its mailbox (argument 1: sec, argument 2: whether on Windows):
-- a shell sleep where there is one, a busy wait on Windows.
local PAUSE_SRC = [[
  local function pause(sec, windows)
    if windows then
      local n = require "netio"
      local deadline = n.now() + sec
      while n.now() < deadline do end
    else
      os.execute("sleep " .. sec)
    end
  end
]]

describe("netio.thread", function()
  describe("starting", function()
    it("runs_a_function_with_its_arguments_and_returns_its_results", function()
      local r = H.run(function()
        local t = netio.thread(function(a, b) return a + b, a .. b end, 20, 22)
        return table.pack(t:join(5))
      end)
      assert.are.same({ n = 3, true, 42, "2022" }, r,
        "join should return true followed by the function's results")
    end)

    it("runs_a_source_string_with_its_arguments", function()
      local r = H.run(function()
        local t = netio.thread("local a, b = ... return a + b, math.type(a + b)", 1, 2)
        return table.pack(t:join(5))
      end)
      assert.are.same({ n = 3, true, 3, "integer" }, r,
        "a chunk should get the arguments as ... and its results should come back")
    end)

    it("returns_a_thread_object_with_tostring", function()
      local s = H.run(function()
        local t = netio.thread(function() end)
        local str = tostring(t)
        t:join(5)
        return str
      end)
      assert.is_truthy(s:match("^netio%.thread %(.+%)$"),
        "tostring(thread) should be 'netio.thread (<address>)', got " .. s)
    end)

    it("has_the_standard_libraries_and_its_own_globals", function()
      -- luacheck: globals THREAD_SPEC_GLOBAL
      THREAD_SPEC_GLOBAL = "main state"
      local r = H.run(function()
        local t = netio.thread(function()
          return { global = THREAD_SPEC_GLOBAL,
                   libs = type(string.format) .. type(table.concat) .. type(math.floor)
                     .. type(os.time) .. type(io.write) .. type(coroutine.wrap)
                     .. type(utf8.char) .. type(debug.traceback) .. type(require) }
        end)
        return table.pack(t:join(5))
      end)
      THREAD_SPEC_GLOBAL = nil
      assert.are.equal(true, r[1], "the thread should run: " .. tostring(r[2]))
      assert.is_nil(r[2].global, "the thread should not see the globals of the task's state")
      assert.are.equal(("function"):rep(9), r[2].libs,
        "the standard libraries should be open in the thread")
    end)

    it("raises_outside_a_task", function()
      local ok, err = pcall(netio.thread, function() end)
      assert.is_false(ok, "netio.thread outside a run should raise")
      assert.are.equal("netio: thread must be called from a netio task", err)
    end)

    it("works_in_a_plain_coroutine_inside_a_task", function()
      -- It does not wait, so a coroutine of the run may call it too.
      local r = H.run(function()
        local t = coroutine.wrap(function()
          return netio.thread(function() return "from a coroutine" end)
        end)()
        return table.pack(t:join(5))
      end)
      assert.are.same({ n = 2, true, "from a coroutine" }, r,
        "netio.thread in a plain coroutine inside a task should start the thread")
    end)

    it("refuses_a_function_with_an_upvalue", function()
      local err = H.run(function()
        local x = 1
        return raised(function()
          return netio.thread(function() return x end)
        end)
      end)
      is_error("bad argument #1 to 'thread' (the function uses the upvalue 'x':"
        .. " upvalues are not carried into a thread (pass values as arguments))", err)
    end)

    it("refuses_a_C_function", function()
      local a, b = H.run(function()
        return raised(function() return netio.thread(print) end),
               raised(function() return netio.thread(string.format, "%d", 1) end)
      end)
      is_error("bad argument #1 to 'thread' (a C function cannot run in a thread)", a, "print")
      is_error("bad argument #1 to 'thread' (a C function cannot run in a thread)", b,
        "string.format")
    end)

    it("refuses_a_source_string_that_does_not_compile", function()
      local src = "return +"
      local _, syntax = load(src)
      local msg = syntax:match(":%d+: (.*)$")
      local err = H.run(function()
        return raised(function() return netio.thread(src) end)
      end)
      has("bad argument #1 to 'thread' (", err, "the argument error")
      has(msg, err, "the syntax error")
    end)

    it("refuses_other_types", function()
      local r = H.run(function()
        return { raised(function() return netio.thread(42) end),
                 raised(function() return netio.thread({}) end),
                 raised(function() return netio.thread(nil) end),
                 raised(function() return netio.thread(true) end) }
      end)
      is_error("bad argument #1 to 'thread' (function or string expected, got number)", r[1])
      is_error("bad argument #1 to 'thread' (function or string expected, got table)", r[2])
      is_error("bad argument #1 to 'thread' (function or string expected, got nil)", r[3])
      is_error("bad argument #1 to 'thread' (function or string expected, got boolean)", r[4])
    end)

    it("refuses_no_argument_as_function_or_string_expected", function()
      local err = H.run(function()
        return raised(function() return netio.thread() end)
      end)
      is_error("bad argument #1 to 'thread' (function or string expected, got no value)", err)
    end)
  end)

  describe("copies", function()
    it("arguments_and_results_of_every_copyable_type", function()
      local big = H.data(8 * 1024 * 1024, 8)
      local nan = 0 / 0
      local args = table.pack(nil, true, false, 0, -7, math.maxinteger, math.mininteger,
        1.0, -0.5, 1e300, math.huge, -math.huge, nan, "", "a\0b\r\n", big,
        { 1, 2.0, nil, 4, x = { y = { z = "deep" } }, [1.5] = "float key",
          [true] = "bool key", [-3] = false }, nil)
      local r = H.run(function()
        local t = netio.thread(function(...)
          local types = {}
          for i = 1, select("#", ...) do
            local v = select(i, ...)
            types[i] = math.type(v) or type(v)
          end
          return select("#", ...), types, ...
        end, table.unpack(args, 1, args.n))
        return table.pack(t:join(10))
      end, 30)
      assert.are.equal(true, r[1], "the thread should run: " .. tostring(r[2]))
      assert.are.equal(args.n, r[2], "the thread should get every argument, nil holes included")
      assert.are.equal(args.n + 3, r.n, "join should return every result, trailing nil included")
      for i = 1, args.n do
        local want, got_type, got = args[i], r[3][i], r[3 + i]
        local want_type = math.type(want) or type(want)
        assert.are.equal(want_type, got_type,
          ("argument %d should arrive as a %s"):format(i, want_type))
        local back_type = math.type(got) or type(got)
        assert.are.equal(want_type, back_type,
          ("result %d should come back as a %s"):format(i, want_type))
        if want ~= want then
          assert.is_true(got ~= got, "NaN should stay NaN")
        elseif type(want) == "string" and #want > 1000 then
          H.same(want, got, "the 8 MiB string")
        else
          assert.are.same(want, got, ("value %d should come back equal"):format(i))
        end
      end
      assert.are.equal("integer", math.type(r[3 + 17][1]), "an integer in a table stays one")
      assert.are.equal("float", math.type(r[3 + 17][2]), "a float in a table stays one")
    end)

    it("a_table_100_deep_is_copied", function()
      local r = H.run(function()
        local t = netio.thread(function(tab)
          local depth, x = 0, tab
          while type(x) == "table" do depth, x = depth + 1, x[1] end
          return depth, x, tab
        end, nested(100))
        return table.pack(t:join(5))
      end)
      assert.are.equal(true, r[1], "a table 100 deep should be copied: " .. tostring(r[2]))
      assert.are.equal(100, r[2], "the thread should get all 100 levels")
      assert.are.equal("end", r[3], "the innermost value should arrive")
      assert.are.same(nested(100), r[4], "a result 100 deep should come back")
    end)

    it("a_table_met_twice_is_copied_twice", function()
      local r = H.run(function()
        local shared = { "s" }
        local t = netio.thread(function(pair)
          return rawequal(pair[1], pair[2]), pair[1][1], pair[2][1]
        end, { shared, shared })
        return table.pack(t:join(5))
      end)
      assert.are.same({ n = 4, true, false, "s", "s" }, r,
        "two references to one table should arrive as two equal tables")
    end)

    it("the_thread_gets_copies_not_the_tables_themselves", function()
      local r = H.run(function()
        local tab = { n = 1 }
        local t = netio.thread(function(x) x.n = 2 return x end, tab)
        local _, back = t:join(5)
        return { orig = tab.n, back = back.n, same = rawequal(tab, back) }
      end)
      assert.are.equal(1, r.orig, "the thread's change should not reach the task's table")
      assert.are.equal(2, r.back, "the result should carry the thread's change")
      assert.is_false(r.same, "the result should be a new table")
    end)
  end)

  describe("refuses_to_copy", function()
    local function refusal(make)
      return H.run(function()
        local c = H.pair()
        local args = table.pack(make(c))
        return raised(function()
          return netio.thread(function() end, table.unpack(args, 1, args.n))
        end)
      end)
    end

    it("a_function_argument", function()
      is_error("bad argument #2 to 'thread' (cannot copy a function)",
        refusal(function() return function() end end))
    end)

    it("a_userdata_argument", function()
      is_error("bad argument #2 to 'thread' (cannot copy a userdata)",
        refusal(function(c) return c end))
    end)

    it("a_coroutine_argument", function()
      is_error("bad argument #2 to 'thread' (cannot copy a coroutine)",
        refusal(function() return coroutine.create(function() end) end))
    end)

    it("a_table_that_contains_itself", function()
      is_error("bad argument #2 to 'thread' (cannot copy a table that contains itself)",
        refusal(function() local t = {} t.self = t return t end))
    end)

    it("a_table_nested_101_deep", function()
      is_error("bad argument #2 to 'thread' (cannot copy a table nested more than 100 deep)",
        refusal(function() return nested(101) end))
    end)

    it("values_inside_a_table_say_so_and_count_the_argument", function()
      is_error("bad argument #3 to 'thread' (cannot copy a function (in a table))",
        refusal(function() return 1, { 1, { f = print } } end), "function")
      is_error("bad argument #3 to 'thread' (cannot copy a userdata (in a table))",
        refusal(function(c) return 1, { c } end), "userdata")
      is_error("bad argument #3 to 'thread' (cannot copy a coroutine (in a table))",
        refusal(function() return "x", { co = coroutine.create(print) } end), "coroutine")
      is_error("bad argument #2 to 'thread' (cannot copy a function (in a table))",
        refusal(function() return { [print] = 1 } end), "function as a key")
      -- These two messages say where by themselves: no " (in a table)".
      is_error("bad argument #2 to 'thread' (cannot copy a table nested more than"
        .. " 100 deep)", refusal(function() return { nested(100) } end),
        "101 deep inside a table")
    end)

    it("a_table_that_contains_itself_inside_a_table", function()
      -- The message says where by itself: no " (in a table)".
      is_error("bad argument #3 to 'thread' (cannot copy a table that contains itself)",
        refusal(function() local t = {} t.self = t return 1, { t } end))
    end)

    it("results_that_cannot_be_copied_make_the_thread_fail", function()
      local r = H.run(function()
        local t1 = netio.thread(function() return print end)
        local t2 = netio.thread(function() return 1, { co = coroutine.create(print) } end)
        local res = { table.pack(t1:join(5)), table.pack(t2:join(5)) }
        res.status = t1:status()
        return res
      end)
      assert.are.same({ n = 2, nil, "netio: thread results: cannot copy a function" }, r[1],
        "a function result should fail the thread with the documented message")
      assert.are.same({ n = 2, nil, "netio: thread results: cannot copy a coroutine (in a table)" },
        r[2], "a coroutine in a result table should fail the thread")
      assert.are.equal("failed", r.status, "a thread whose results cannot be copied failed")
    end)
  end)

  describe("thread:join", function()
    it("returns_the_same_results_at_every_call", function()
      local r = H.run(function()
        local t = netio.thread(function() return "a", { b = 1 } end)
        local first = table.pack(t:join(5))
        local second = table.pack(t:join(5))
        local third = table.pack(t:join())
        return { first, second, third, t:status() }
      end)
      assert.are.same({ n = 3, true, "a", { b = 1 } }, r[1], "first join")
      assert.are.same(r[1], r[2], "a second join should return the same results")
      assert.are.same(r[1], r[3], "a third join should return the same results")
      assert.are.equal("done", r[4], "status of a thread that returned")
    end)


    it("returns_after_everything_the_thread_sent_reached_the_connection", function()
      local r = H.run(function()
        local c, s = H.pair()
        local t = netio.thread(function(id)
          local n = require "netio"
          for i = 1, 3 do assert(n.send(id, ("thread %d\n"):format(i))) end
        end, s:id())
        -- Spin without yielding until the thread has ended, so that its
        -- sends are still in the engine's inbox when join is called.
        local deadline = os.clock() + 5
        while t:status() == "running" and os.clock() < deadline do end
        assert(t:join(5))
        assert(s:send("after join\n"))
        local got = {}
        for i = 1, 4 do got[i] = c:recv("*l", 5) end
        return got
      end)
      assert.are.same({ "thread 1", "thread 2", "thread 3", "after join" }, r,
        "a send made after join returned should come after the thread's sends")
    end)
    it("returns_the_results_outside_a_task_once_the_thread_ended", function()
      local t = H.run(function()
        local th = netio.thread(function() return "kept" end)
        th:join(5)
        return th
      end)
      assert.are.same({ n = 2, true, "kept" }, table.pack(t:join()),
        "outside any run, join of an ended thread should return its results")
      assert.are.same({ n = 2, true, "kept" }, table.pack(t:join(0)),
        "again, with a timeout")
    end)

    it("times_out_on_a_thread_that_waits", function()
      local r = H.run(function()
        local t = netio.thread(function() return require("netio").receive(5) end)
        local dt, ok, err = H.timed(t.join, t, 0.2)
        local zero = table.pack(t:join(0))
        local status = t:status()
        t:post("go")
        return { dt = dt, ok = ok, err = err, zero = zero, status = status,
                 final = table.pack(t:join(5)) }
      end)
      assert.is_nil(r.ok, "join(0.2) on a waiting thread should fail")
      assert.are.equal("timeout", r.err, "join(0.2) on a waiting thread: nil, 'timeout'")
      assert.is_true(r.dt >= 0.18 and r.dt < 1.5,
        "join(0.2) should wait about 0.2 s, waited " .. r.dt)
      assert.are.same({ n = 2, nil, "timeout" }, r.zero, "join(0): nil, 'timeout' at once")
      assert.are.equal("running", r.status, "status of a thread that waits")
      assert.are.same({ n = 2, true, "go" }, r.final,
        "once released, join should return the thread's results")
    end)

    it("wakes_every_task_joining_at_once", function()
      local r = H.run(function()
        local t = netio.thread(function() return require("netio").receive(5) end)
        local joiners = {}
        for i = 1, 3 do
          joiners[i] = netio.spawn(function() return table.pack(t:join(5)) end)
        end
        netio.sleep(0.05)
        t:post("all")
        local res = {}
        for i = 1, 3 do res[i] = select(2, joiners[i]:join(5)) end
        return res
      end)
      for i = 1, 3 do
        assert.are.same({ n = 2, true, "all" }, r[i], "joiner " .. i .. " should get the results")
      end
    end)

    it("raises_on_a_bad_timeout", function()
      local r = H.run(function()
        local t = netio.thread(function() end)
        local res = { raised(function() return t:join(-1) end),
                      raised(function() return t:join("soon") end),
                      raised(function() return t:join(0 / 0) end) }
        t:join(5)
        return res
      end)
      is_error("bad argument #1 to 'join' (timeout must be a non-negative number)", r[1])
      is_error("bad argument #1 to 'join' (number expected, got string)", r[2])
      is_error("bad argument #1 to 'join' (timeout must be a non-negative number)", r[3])
    end)

    it("of_a_running_thread_in_a_plain_coroutine_inside_a_task_waits", function()
      local r = H.run(function()
        local t = netio.thread(function() return require("netio").receive(5) end)
        netio.spawn(function() netio.sleep(0.02) t:post("done") end)
        return table.pack(coroutine.wrap(function() return t:join(5) end)())
      end)
      assert.are.same({ n = 2, true, "done" }, r,
        "join in a plain coroutine inside a task should wait for the thread")
    end)

    it("of_a_running_thread_outside_a_run_raises", function()
      local t
      local ok = pcall(netio.run, function()
        t = netio.thread(function() return require("netio").receive(0.3) end)
      end)
      assert.is_true(ok)
      -- The run ended and the thread with it (its mailbox closed): joined.
      assert.are.same({ n = 3, true, nil, "closed" }, table.pack(t:join()))
    end)
  end)

  describe("errors", function()
    it("a_raising_thread_gives_nil_and_the_message_with_a_traceback", function()
      local r = H.run(function()
        local t = netio.thread(function() error("boom in thread") end)
        local res = { table.pack(t:join(5)), table.pack(t:join(5)), t:status() }
        local t0 = netio.thread(function() error("level zero", 0) end)
        res[4] = table.pack(t0:join(5))
        return res
      end)
      local first = r[1]
      assert.are.equal(2, first.n, "join of a failed thread: two values")
      assert.is_nil(first[1], "join of a failed thread: nil first")
      has("boom in thread", first[2], "the error message")
      has("\nstack traceback:\n", first[2], "the thread's traceback")
      assert.are.same(first, r[2], "a second join should give the same error")
      assert.are.equal("failed", r[3], "status of a thread that raised")
      local plain = "level zero\nstack traceback:\n"
      assert.are.equal(plain, r[4][2]:sub(1, #plain),
        "an error without position should be the message then the traceback")
    end)

    it("a_non_string_error_says_its_type", function()
      local r = H.run(function()
        local t = netio.thread(function() error({ code = 1 }) end)
        return table.pack(t:join(5))
      end)
      assert.is_nil(r[1], "join of a failed thread: nil first")
      local want = "(error object is a table value)"
      assert.are.equal(want, r[2]:sub(1, #want),
        "a table error should become '" .. want .. "', got " .. r[2])
    end)

    it("a_task_only_call_in_a_thread_fails_it", function()
      local r = H.run(function()
        local t = netio.thread(function() require("netio").sleep(0.01) return "slept" end)
        return table.pack(t:join(5))
      end)
      assert.is_nil(r[1], "a thread calling netio.sleep should fail")
      has("netio: sleep must be called from a netio task", r[2], "the error")
      has("stack traceback:", r[2], "the thread's traceback")
    end)

    it("task_only_calls_raise_the_exact_message_in_a_thread", function()
      local r = H.run(function()
        local t = netio.thread(function()
          local n = require "netio"
          local out = {}
          for _, name in ipairs({ "run", "spawn", "sleep", "stop", "listen", "connect",
                                  "thread", "stdin", "stats", "backend" }) do
            -- Called from a Lua function: no position prefix all the same.
            local ok, err = pcall(function() return n[name](function() end) end)
            out[#out + 1] = { name = name, ok = ok, err = tostring(err) }
          end
          return out
        end)
        return table.pack(t:join(5))
      end)
      assert.are.equal(true, r[1], "the thread should run: " .. tostring(r[2]))
      for _, c in ipairs(r[2]) do
        assert.is_false(c.ok, "netio." .. c.name .. " in a thread should raise")
        assert.are.equal("netio: " .. c.name .. " must be called from a netio task", c.err,
          "netio." .. c.name .. " in a thread")
      end
    end)
  end)

  describe("the thread's module", function()
    it("has_send_post_receive_log_now_and_intask", function()
      local r = H.run(function()
        local t = netio.thread(function()
          local n = require "netio"
          local a = n.now()
          local b = n.now()
          return { intask = table.pack(n.intask()), now = math.type(a),
                   mono = b >= a,
                   types = type(n.send) .. type(n.post) .. type(n.receive)
                     .. type(n.log) .. type(n.log.error) .. type(n.log.warn)
                     .. type(n.log.info) .. type(n.log.debug) .. type(n.log.level) }
        end)
        return table.pack(t:join(5))
      end)
      assert.are.equal(true, r[1], "the thread should run: " .. tostring(r[2]))
      assert.are.same({ n = 1, false }, r[2].intask, "netio.intask() in a thread: false")
      assert.are.equal("float", r[2].now, "netio.now() in a thread: a float")
      assert.is_true(r[2].mono, "netio.now() in a thread should not go back")
      assert.are.equal("functionfunctionfunctiontable" .. ("function"):rep(5), r[2].types,
        "send, post, receive, log (error, warn, info, debug, level)")
    end)
  end)

  describe("mailbox", function()
    it("thread_post_messages_arrive_in_order_with_their_values", function()
      local r = H.run(function()
        local t = netio.thread(function()
          local n = require "netio"
          local got = {}
          for i = 1, 200 do got[i] = n.receive(5) end
          local multi = table.pack(n.receive(5))
          return got, multi
        end)
        local posted = true
        for i = 1, 200 do posted = posted and t:post(i) end
        local last = table.pack(t:post(nil, 1, 2.0, "s", { a = { 1 } }, nil))
        return { posted = posted, last = last, res = table.pack(t:join(5)) }
      end)
      assert.are.equal(true, r.posted, "thread:post should return true")
      assert.are.same({ n = 1, true }, r.last, "thread:post with several values: true")
      assert.are.equal(true, r.res[1], "the thread should run: " .. tostring(r.res[2]))
      local want = {}
      for i = 1, 200 do want[i] = i end
      assert.are.same(want, r.res[2], "messages should arrive in the order posted")
      local m = r.res[3]
      assert.are.equal(6, m.n, "a message keeps every value, nil holes included")
      assert.is_nil(m[1], "value 1: nil")
      assert.are.equal("integer", math.type(m[2]), "value 2 stays an integer")
      assert.are.equal("float", math.type(m[3]), "value 3 stays a float")
      assert.are.same({ a = { 1 } }, m[5], "a nested table is copied")
    end)

    it("receive_times_out_in_the_thread", function()
      local r = H.run(function()
        local t = netio.thread(function()
          local n = require "netio"
          local t0 = n.now()
          local res = table.pack(n.receive(0.2))
          local dt = n.now() - t0
          local zero = table.pack(n.receive(0))
          return res, dt, zero
        end)
        return table.pack(t:join(5))
      end)
      assert.are.same({ n = 2, nil, "timeout" }, r[2], "receive(0.2): nil, 'timeout'")
      assert.is_true(r[3] >= 0.18 and r[3] < 1.5, "receive(0.2) waited " .. r[3] .. " s")
      assert.are.same({ n = 2, nil, "timeout" }, r[4], "receive(0) with nothing: nil, 'timeout'")
    end)

    it("receive_raises_on_a_bad_timeout_in_the_thread", function()
      local r = H.run(function()
        local t = netio.thread(function()
          local n = require "netio"
          return select(2, pcall(function() return n.receive(-1) end)),
                 select(2, pcall(function() return n.receive("x") end))
        end)
        return table.pack(t:join(5))
      end)
      is_error("bad argument #1 to 'receive' (timeout must be a non-negative number)", r[2])
      is_error("bad argument #1 to 'receive' (number expected, got string)", r[3])
    end)

    it("receive_returns_closed_once_the_thread_object_was_collected", function()
      local r = H.run(function()
        local function start()
          local t = netio.thread(function()
            local n = require "netio"
            local got = 0
            while true do
              local v, err = n.receive(10)
              if v == nil then
                n.post("thread saw", err, got)
                return
              end
              got = got + 1
            end
          end)
          t:post("one")
          t:post("two")
        end
        start()
        collectgarbage()
        collectgarbage()
        return table.pack(netio.receive(5))
      end, 15)
      assert.are.same({ n = 3, "thread saw", "closed", 2 }, r,
        "the thread should read both messages, then nil, 'closed' once its object was collected")
    end)

    it("a_thread_looping_on_receive_lets_the_run_end_promptly", function()
      local t0 = netio.now()
      local ok, t = netio.run(function()
        local th = netio.thread(function()
          local n = require "netio"
          local got = 0
          while true do
            local v, err = n.receive()
            if v == nil then return got, err end
            got = got + 1
          end
        end)
        th:post(1)
        return th
      end)
      local dt = netio.now() - t0
      assert.is_true(ok, "the run should end normally")
      assert.is_true(dt < 1.5, "the run should end promptly, it took " .. dt .. " s")
      assert.are.same({ n = 3, true, 1, "closed" }, table.pack(t:join()),
        "the thread should get the message, then nil, 'closed' at the end of the run")
      assert.are.equal("done", t:status(), "the thread returned")
    end)

    it("post_to_an_ended_thread_returns_closed", function()
      local r = H.run(function()
        local t = netio.thread(function() return 1 end)
        t:join(5)
        return table.pack(t:post("late"))
      end)
      assert.are.same({ n = 2, nil, "closed" }, r, "thread:post after the thread ended")
    end)

    it("post_raises_without_a_value_and_on_values_that_cannot_be_copied", function()
      local r = H.run(function()
        local t = netio.thread(function() return require("netio").receive(5) end)
        local res = { raised(function() return t:post() end),
                      raised(function() return t:post(print) end),
                      raised(function() return t:post(1, { coroutine.create(print) }) end) }
        t:post("end")
        t:join(5)
        return res
      end)
      is_error("bad argument #1 to 'post' (value expected)", r[1])
      is_error("bad argument #1 to 'post' (cannot copy a function)", r[2])
      is_error("bad argument #2 to 'post' (cannot copy a coroutine (in a table))", r[3])
    end)

    it("post_answers_busy_when_64_MiB_wait_unread", function()
      local big = ("m"):rep(33 * 1024 * 1024)
      -- The thread reads nothing until this file exists: the task makes it
      -- once its posts are done.
      local flag = H.tmpname()
      os.remove(flag)
      local r = H.run(function()
        local t = netio.thread(assert(load(PAUSE_SRC .. [[
          local windows, flag = ...
          local n = require "netio"
          local deadline = n.now() + 20
          while not io.open(flag, "rb") and n.now() < deadline do
            pause(0.02, windows)
          end
          local sizes = {}
          repeat
            local v = n.receive(10)
            sizes[#sizes + 1] = v and #v or tostring(v)
          until v == nil or v == "end"
          return sizes
        ]])), H.windows, flag)
        local res = { first = table.pack(t:post(big)),
                      second = table.pack(t:post(big)),
                      small = table.pack(t:post("small")) }
        H.write(flag, "go")
        -- Once the thread read them, there is room again.
        local deadline = netio.now() + 10
        repeat
          netio.sleep(0.05)
          res.again = table.pack(t:post(big))
        until res.again[1] or netio.now() > deadline
        t:post("end")
        res.joined = table.pack(t:join(10))
        return res
      end, 40)
      os.remove(flag)
      assert.are.same({ n = 1, true }, r.first, "the first 33 MiB post: true")
      assert.are.same({ n = 2, nil, "busy" }, r.second,
        "a second 33 MiB post while the first waits unread: nil, 'busy'")
      assert.are.same({ n = 1, true }, r.small, "a small post still fits: true")
      assert.are.same({ n = 1, true }, r.again,
        "after the thread read them, a 33 MiB post works again")
      assert.are.equal(true, r.joined[1], "the thread should end normally")
      assert.are.same({ 33 * 1024 * 1024, 5, 33 * 1024 * 1024, 3 }, r.joined[2],
        "the thread should read the big message, the small one, the later big one and 'end'")
    end)
  end)

  describe("thread:status", function()
    it("is_running_then_done_or_failed", function()
      local r = H.run(function()
        local ok_t = netio.thread(function() return require("netio").receive(5) end)
        local bad_t = netio.thread(function() error("x") end)
        local res = { running = ok_t:status() }
        ok_t:post(1)
        ok_t:join(5)
        bad_t:join(5)
        res.done, res.failed = ok_t:status(), bad_t:status()
        return res
      end)
      assert.are.equal("running", r.running, "a thread waiting in receive is running")
      assert.are.equal("done", r.done, "a thread that returned is done")
      assert.are.equal("failed", r.failed, "a thread that raised failed")
    end)
  end)

  describe("at the end of the run", function()
    it("a_thread_still_running_is_left_after_2_s_and_cannot_be_joined_any_more", function()
      -- The warning goes to stderr; the host test below checks it.
      local level = netio.log.level()
      netio.log.level("error")
      local t0 = netio.now()
      local ok, ran, t = pcall(netio.run, function(src, windows)
        return netio.thread(src, windows)
      end, PAUSE_SRC .. [[
        pause(3.5, ...)
        return "late"
      ]], H.windows)
      local dt = netio.now() - t0
      netio.log.level(level)
      assert.is_true(ok and ran, "the run should end normally: " .. tostring(ran))
      assert.is_true(dt >= 1.8 and dt < 3.2,
        "the run should wait about 2 s for the thread, it took " .. dt .. " s")
      local r = H.run(function() return table.pack(t:join(5)) end)
      assert.are.same({ n = 2, nil, "closed" }, r,
        "a thread whose run ended before it did: join gives nil, 'closed'")
    end)

    it("the_host_logs_a_warning_and_returns_within_the_grace", function()
      if not HOST or HOST == "" then pending("NETIO_HOST is not set") return end
      local path = H.write(H.tmpname(), [[
        local netio = require "netio"
        local windows = ...
        netio.thread(function(win)
          local n = require "netio"
          if win then
            local deadline = n.now() + 4
            while n.now() < deadline do end
          else
            os.execute("sleep 4")
          end
        end, windows == "windows")
        print("started")
      ]])
      local t0 = netio.now()
      local code, out, err = H.sh(H.env({ NETIO_LOG = false }) .. H.quote(HOST) .. " "
        .. H.quote(path) .. " " .. (H.windows and "windows" or "posix"), 20)
      local dt = netio.now() - t0
      os.remove(path)
      assert.are.equal(0, code, "the host should exit with 0: " .. tostring(err))
      assert.are.equal("started\n", out, "the script should have run")
      assert.is_true(dt >= 1.8 and dt < 3.5,
        "the host should return about 2 s after the script, it took " .. dt .. " s")
      local found
      for line in (err or ""):gmatch("[^\n]+") do
        if line:match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d warn +%d+ +%d+ ")
            and line:find("still running", 1, true) then
          found = line
        end
      end
      assert.is_truthy(found,
        "stderr should have a 'warn' line about a thread still running, got: " .. tostring(err))
    end)
  end)
end)
