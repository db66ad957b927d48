-- run_spec.lua: netio.run, spawn, join, sleep, now, stop, backend.
local H = require "helper"
local netio = H.netio

describe("netio.run", function()
  it("run_returns_true_and_the_results_of_fn", function()
    local ok, a, b = netio.run(function(x, y) return x + y, "two" end, 40, 2)
    assert.are.equal(true, ok)
    assert.are.equal(42, a)
    assert.are.equal("two", b)
  end)

  it("run_passes_its_extra_arguments_to_fn", function()
    local ok, n, first, last = netio.run(function(...)
      return select("#", ...), (...), select(3, ...)
    end, "a", "b", "c")
    assert.are.equal(true, ok)
    assert.are.equal(3, n)
    assert.are.equal("a", first)
    assert.are.equal("c", last)
  end)

  it("run_reraises_an_error_of_fn_with_its_traceback", function()
    local ok, err = pcall(netio.run, function()
      netio.sleep(0)
      error("boom-run-1234")
    end)
    assert.is_false(ok)
    assert.is_string(err)
    assert.truthy(err:find("boom-run-1234", 1, true), err)
    assert.truthy(err:find("traceback", 1, true),
      "expected a traceback in: " .. err)
  end)

  it("run_waits_until_every_spawned_task_has_ended", function()
    local finished = false
    local ok = netio.run(function()
      netio.spawn(function()
        netio.sleep(0.05)
        finished = true
      end)
    end)
    assert.are.equal(true, ok)
    assert.is_true(finished)
  end)

  it("run_can_be_called_again_after_it_returned", function()
    for i = 1, 3 do
      local ok, v = netio.run(function() netio.sleep(0.001) return i end)
      assert.are.equal(true, ok)
      assert.are.equal(i, v)
    end
  end)

  it("run_inside_a_task_runs_fn_as_a_task_and_waits_for_it", function()
    local ok, inner_ok, v, order = netio.run(function()
      local log = {}
      local iok, iv = netio.run(function()
        netio.sleep(0.02)
        log[#log + 1] = "inner"
        return 7
      end)
      log[#log + 1] = "outer"
      return iok, iv, table.concat(log, ",")
    end)
    assert.are.equal(true, ok)
    assert.are.equal(true, inner_ok)
    assert.are.equal(7, v)
    assert.are.equal("inner,outer", order)
  end)

  it("nested_run_reraises_the_inner_error_in_the_outer_task", function()
    local ok, caught, msg = netio.run(function()
      local cok, cerr = pcall(netio.run, function() error("inner-boom-77") end)
      return cok, cerr
    end)
    assert.are.equal(true, ok)
    assert.is_false(caught)
    assert.truthy(tostring(msg):find("inner-boom-77", 1, true), tostring(msg))
  end)
end)

describe("netio.spawn and task:join", function()
  it("join_returns_true_and_the_task_results", function()
    local ok, a, b = H.run(function()
      local t = netio.spawn(function(x)
        netio.sleep(0.01)
        return x * 2, "x"
      end, 21)
      return t:join(2)
    end)
    assert.are.equal(true, ok)
    assert.are.equal(42, a)
    assert.are.equal("x", b)
  end)

  it("join_without_timeout_waits_for_the_task", function()
    local ok, v = H.run(function()
      local t = netio.spawn(function() netio.sleep(0.03) return "late" end)
      return t:join()
    end)
    assert.are.equal(true, ok)
    assert.are.equal("late", v)
  end)

  it("join_on_a_finished_task_returns_its_results", function()
    local ok, v = H.run(function()
      local t = netio.spawn(function() return "done" end)
      netio.sleep(0.02)
      return t:join()
    end)
    assert.are.equal(true, ok)
    assert.are.equal("done", v)
  end)

  it("join_on_a_failed_task_returns_nil_and_the_error", function()
    local ok, err = H.run(function()
      local t = netio.spawn(function()
        netio.sleep(0)
        error("task-failed-99")
      end)
      return t:join(2)
    end)
    assert.is_nil(ok)
    assert.truthy(tostring(err):find("task-failed-99", 1, true), tostring(err))
  end)

  it("join_timeout_returns_nil_timeout_before_the_task_ends", function()
    local dt, ok, err, still = H.run(function()
      local t = netio.spawn(function() netio.sleep(0.3) return 1 end)
      local dt, jok, jerr = H.timed(t.join, t, 0.05)
      -- The task keeps running after a timed-out join.
      local again = table.pack(t:join(2))
      return dt, jok, jerr, again[1] == true and again[2] == 1
    end)
    assert.is_nil(ok)
    assert.are.equal("timeout", err)
    assert.is_true(dt >= 0.04, "join returned after " .. dt .. " s")
    assert.is_true(dt < 0.25, "join returned after " .. dt .. " s")
    assert.is_true(still, "a second join should get the task's results")
  end)

  it("an_error_in_a_spawned_task_does_not_stop_the_engine", function()
    local ok, v = netio.run(function()
      netio.spawn(function() error("logged-not-fatal") end)
      netio.sleep(0.02)
      local t = netio.spawn(function() netio.sleep(0.01) return "alive" end)
      return select(2, t:join(2))
    end)
    assert.are.equal(true, ok)
    assert.are.equal("alive", v)
  end)

  it("spawn_passes_arguments_to_the_task", function()
    local ok, a, b = H.run(function()
      return netio.spawn(function(x, y) return y, x end, "p", "q"):join(1)
    end)
    assert.is_true(ok)
    assert.are.equal("q", a)
    assert.are.equal("p", b)
  end)
end)

describe("netio.sleep and netio.now", function()
  it("sleeping_tasks_wake_in_order_of_their_deadlines", function()
    local order = H.run(function()
      local log = {}
      local ts = {}
      for _, spec in ipairs({ { "a", 0.06 }, { "b", 0.02 }, { "c", 0.04 } }) do
        ts[#ts + 1] = netio.spawn(function()
          netio.sleep(spec[2])
          log[#log + 1] = spec[1]
        end)
      end
      for _, t in ipairs(ts) do t:join(2) end
      return table.concat(log)
    end)
    assert.are.equal("bca", order)
  end)

  it("time_is_the_wall_clock_in_seconds_with_a_fraction", function()
    -- os.time() has whole seconds: netio.time() lies within the second
    -- os.time() names at the moment of the call. glibc's time() reads the
    -- kernel's coarse clock, up to a tick (a few ms) behind: 50 ms of slack.
    local before = os.time()
    local t = netio.time()
    local after = os.time()
    assert.are.equal("float", math.type(t), "netio.time() should be a float")
    assert.is_true(t >= before and t < after + 1.05,
      ("netio.time() gave %.3f, os.time() %d..%d"):format(t, before, after))
    -- It has more than whole seconds: two readings 50 ms apart differ by
    -- about 50 ms.
    local dt = H.run(function()
      local a = netio.time()
      netio.sleep(0.05)
      return netio.time() - a
    end)
    assert.is_true(dt >= 0.04 and dt < 1, "50 ms of sleep moved netio.time() by " .. dt)
  end)

  it("sleep_suspends_the_task_for_at_least_the_time_given", function()
    local dt = H.run(function()
      return (H.timed(netio.sleep, 0.05))
    end)
    assert.is_true(dt >= 0.045, "slept " .. dt .. " s")
    assert.is_true(dt < 1, "slept " .. dt .. " s")
  end)

  it("sleep_zero_yields_to_other_ready_tasks", function()
    local log = H.run(function()
      local out = {}
      local function worker(name)
        for i = 1, 3 do
          out[#out + 1] = name .. i
          netio.sleep(0)
        end
      end
      local a = netio.spawn(worker, "a")
      local b = netio.spawn(worker, "b")
      a:join(2)
      b:join(2)
      return out
    end)
    assert.are.equal(6, #log)
    local pos = {}
    for i, v in ipairs(log) do pos[v] = i end
    assert.is_true(pos.b1 < pos.a3,
      "b never ran while a was yielding: " .. table.concat(log, " "))
    assert.is_true(pos.a1 < pos.b3,
      "a never ran while b was yielding: " .. table.concat(log, " "))
  end)

  it("sleep_zero_lets_a_busy_loop_share_the_engine", function()
    local ticks = H.run(function()
      local n, stop = 0, false
      local t = netio.spawn(function()
        while not stop and n < 100000 do
          n = n + 1
          netio.sleep(0)
        end
      end)
      netio.sleep(0.02)
      stop = true
      t:join(2)
      return n
    end)
    assert.is_true(ticks > 1, "the yielding loop ran " .. ticks .. " times")
    assert.is_true(ticks < 100000, "the sleeping task never woke up")
  end)

  it("now_is_a_float_of_monotonic_seconds", function()
    local ok, samples, slept = H.run(function()
      local s = {}
      for i = 1, 50 do
        s[i] = netio.now()
        netio.sleep(0)
      end
      local before = netio.now()
      netio.sleep(0.03)
      return true, s, netio.now() - before
    end)
    assert.is_true(ok)
    assert.are.equal("float", math.type(samples[1]))
    for i = 2, #samples do
      assert.is_true(samples[i] >= samples[i - 1],
        ("now() went back: %.9f after %.9f"):format(samples[i], samples[i - 1]))
    end
    assert.is_true(slept >= 0.025 and slept < 1, "now() advanced " .. slept)
  end)
end)

describe("netio.stop", function()
  it("stop_wakes_a_waiting_accept_with_closed_and_run_returns", function()
    local t0 = os.time()
    local ok, a, err, dt = netio.run(function()
      local l = assert(netio.listen("127.0.0.1:0"))
      netio.spawn(function()
        netio.sleep(0.03)
        netio.stop()
      end)
      local dt, c, e = H.timed(l.accept, l, 5)
      return c, e, dt
    end)
    assert.are.equal(true, ok)
    assert.is_nil(a)
    assert.are.equal("closed", err)
    assert.is_true(dt < 2, "accept woke after " .. dt .. " s")
    assert.is_true(os.time() - t0 < 5)
  end)

  it("stop_lets_running_tasks_finish", function()
    local finished = false
    local ok, v = netio.run(function()
      netio.spawn(function()
        netio.sleep(0.05)
        finished = true
      end)
      netio.stop()
      return "main"
    end)
    assert.are.equal(true, ok)
    assert.are.equal("main", v)
    assert.is_true(finished, "a sleeping task was cut short by stop()")
  end)

  it("stop_delivers_queued_output_before_closing", function()
    local payload = H.data(300000, 3)
    local ok, got = netio.run(function()
      local l = assert(netio.listen("127.0.0.1:0"))
      local _, port = l:getsockname()
      local reader = netio.spawn(function()
        local c = assert(netio.connect("127.0.0.1:" .. port))
        local d, err, partial = c:recv("*a", 5)
        c:close()
        return d or partial or err
      end)
      local s = assert(l:accept(5))
      assert(s:send(payload))
      netio.stop()
      s:close()
      return select(2, reader:join(5))
    end)
    assert.are.equal(true, ok)
    H.same(payload, got, "output sent before stop()")
  end)
end)

describe("netio.backend", function()
  it("available_says_the_fallback_works_and_unknown_names_do_not", function()
    -- netio.available is the binding's addition (used by spec/helper.lua).
    -- The fallback: epoll on Linux, iocp on Windows.
    assert.is_function(netio.available)
    assert.is_true(netio.available(H.fallback_backend))
    assert.is_false(netio.available("no-such-backend"))
  end)

  it("backend_names_the_backend_in_use", function()
    local b = H.run(function() return netio.backend() end)
    if H.backend then
      assert.are.equal(H.backend, b)
    else
      assert.truthy(b == "uring" or b == "epoll" or b == "iocp", tostring(b))
    end
  end)
end)
