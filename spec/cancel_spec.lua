-- cancel_spec.lua: task:cancel() -- in every kind of wait (recv, send above
-- the high-water mark, accept, sleep, join, netio.wait, a semaphore, a
-- queue, thread:join), with <close> variables and pcall cleanups observed
-- to run, the object waited on left usable; a task that ended, that never
-- started, that cancels itself; join and status of a canceled task; no log
-- of its error (through the host, NETIO_HOST). And netio.wait(t1, ...).
local H = require "helper"
local netio = H.netio
local raised, is_error = H.raised, H.is_error

local HOST = os.getenv("NETIO_HOST")
local Q = H.quote

-- Let the other tasks run until they wait (a few turns of the loop).
local function settle()
  for _ = 1, 5 do netio.sleep(0) end
end

-- Run `wait` in a new task that records, in the returned table `log`, the
-- error its <close> variable saw (log.closed) and the error a pcall around
-- the wait caught (log.caught), then raises it again. Returns task, log.
local function waiter(wait)
  local log = {}
  local t = netio.spawn(function()
    local _ <close> = setmetatable({}, { __close = function(_, err)
      log.closed = err == nil and "(no error)" or tostring(err)
    end })
    local ok, err = pcall(wait)
    log.caught = ok and "(no error)" or tostring(err)
    log.returned = ok
    error(err, 0)
  end)
  return t, log
end

-- Cancel t, which must be waiting, and check what it went through.
local function cancel_and_check(t, log, what)
  settle()
  assert.are.equal("waiting", t:status(), what .. ": the task should be waiting")
  assert.are.equal(true, t:cancel(), what .. ": cancel() of a waiting task")
  local r = table.pack(t:join(2))
  assert.are.same({ n = 2, nil, "canceled" }, r, what .. ": join of the canceled task")
  assert.are.equal("canceled", t:status(), what .. ": status after the cancel")
  assert.are.equal("canceled", log.caught, what .. ": the wait should raise \"canceled\"")
  assert.are.equal("canceled", log.closed, what .. ": the <close> variable should run")
end

describe("task:cancel", function()
  describe("in a wait", function()
    it("recv_raises_canceled_and_the_connection_reads_on", function()
      local got = H.run(function()
        local c, s = H.pair()
        local t, log = waiter(function() return s:recv(10) end)
        settle()
        assert(c:send("abc"))
        cancel_and_check(t, log, "recv")
        assert(c:send("defgh"))
        -- The reader's place is free again: no "busy".
        local d, err = s:recv(8, 2)
        return d or err
      end)
      assert.are.equal("abcdefgh", got, "the bytes around a canceled recv")
    end)

    it("send_above_the_high_water_mark_raises_canceled_and_keeps_the_bytes", function()
      local n = 16 * 1024 * 1024
      local payload = H.data(n, 21)
      local r = H.run(function()
        local c, s = H.pair()
        local t, log = waiter(function() return c:send(payload) end)
        settle()
        local queued = c:getstats().queued
        cancel_and_check(t, log, "send")
        -- The writer's place is free again: a send above the mark waits
        -- (a second writer while one waits would get "busy").
        local u = netio.spawn(function() return c:send("tail") end)
        settle()
        local ust = u:status()
        local d = H.recv_all(s, n + 4, 10)
        return { queued = queued, ust = ust, u = table.pack(u:join(5)), d = d }
      end, 30)
      assert.is_true(r.queued > 1024 * 1024, "queued while the send waited: " .. r.queued)
      assert.are.equal("waiting", r.ust, "a send after the canceled one should wait its turn")
      assert.are.same({ n = 2, true, 4 }, r.u,
        "the send after the canceled one should return the bytes it queued")
      H.same(payload .. "tail", r.d, "bytes after a canceled send")
    end)

    it("accept_raises_canceled_and_the_listener_accepts_on", function()
      local ok = H.run(function()
        local l, port = H.listen()
        local t, log = waiter(function() return l:accept() end)
        cancel_and_check(t, log, "accept")
        local k = netio.spawn(function()
          return H.connect("127.0.0.1:" .. port)
        end)
        local s, err = l:accept(2)
        assert(s, "accept after a canceled accept: " .. tostring(err))
        H.track(s)
        assert(k:join(2))
        return true
      end)
      assert.is_true(ok, "the listener should accept after a canceled accept")
    end)

    it("sleep_raises_canceled_at_once", function()
      local dt = H.run(function()
        local t, log = waiter(function() netio.sleep(30) end)
        local t0 = netio.now()
        cancel_and_check(t, log, "sleep")
        return netio.now() - t0
      end)
      assert.is_true(dt < 1, "the canceled sleep ended after " .. dt .. " s")
    end)

    it("join_raises_canceled_and_the_joined_task_goes_on", function()
      local r = H.run(function()
        local u = netio.spawn(function() netio.sleep(0.1) return "u" end)
        local t, log = waiter(function() return u:join() end)
        cancel_and_check(t, log, "join")
        return { st = u:status(), u = table.pack(u:join(2)) }
      end)
      assert.are.equal("waiting", r.st, "the joined task should still run")
      assert.are.same({ n = 2, true, "u" }, r.u, "the joined task's results")
    end)

    it("netio_wait_raises_canceled_and_the_tasks_end_normally", function()
      local r = H.run(function()
        local a = netio.spawn(function() netio.sleep(0.05) return "a" end)
        local b = netio.spawn(function() netio.sleep(0.1) return "b" end)
        local t, log = waiter(function() return netio.wait(a, b) end)
        cancel_and_check(t, log, "netio.wait")
        local first = table.pack(netio.wait(b, a))
        return { first = first[1] == a, rest = { first[2], first[3] },
                 b = table.pack(b:join(2)) }
      end)
      assert.is_true(r.first, "a later netio.wait should see the task ending first")
      assert.are.same({ true, "a" }, r.rest, "the results of the task that ended first")
      assert.are.same({ n = 2, true, "b" }, r.b, "the other task's results")
    end)

    it("semaphore_acquire_raises_canceled_and_no_permit_is_lost", function()
      local count = H.run(function()
        local sem = netio.semaphore(0)
        local t, log = waiter(function() return sem:acquire() end)
        cancel_and_check(t, log, "acquire")
        sem:release()
        return sem:count()
      end)
      assert.are.equal(1, count, "the permit released after the cancel")
    end)

    it("queue_pop_raises_canceled_and_no_value_is_lost", function()
      local v = H.run(function()
        local q = netio.queue()
        local t, log = waiter(function() return q:pop() end)
        cancel_and_check(t, log, "pop")
        q:push("kept")
        return q:pop(0)
      end)
      assert.are.equal("kept", v, "the value pushed after the canceled pop")
    end)

    it("queue_push_on_a_full_queue_raises_canceled_and_its_value_stays_out", function()
      local r = H.run(function()
        local q = netio.queue(1)
        q:push(1)
        local t, log = waiter(function() return q:push(2) end)
        cancel_and_check(t, log, "push")
        return { q:pop(0), table.pack(q:pop(0)) }
      end)
      assert.are.equal(1, r[1], "the value queued before")
      assert.are.same({ n = 2, nil, "timeout" }, r[2], "the canceled push's value got in")
    end)

    it("thread_join_raises_canceled_and_the_thread_goes_on", function()
      local r = H.run(function()
        local th = netio.thread(function()
          return require("netio").receive(10)
        end)
        local t, log = waiter(function() return th:join() end)
        cancel_and_check(t, log, "thread:join")
        assert(th:post("go"))
        return table.pack(th:join(5))
      end)
      assert.are.same({ n = 2, true, "go" }, r, "the thread's results after the cancel")
    end)
  end)

  describe("cleanup", function()
    it("a_task_that_catches_canceled_runs_its_cleanup_but_cannot_wait_again", function()
      local r = H.run(function()
        local log = {}
        local t = netio.spawn(function()
          local ok, err = pcall(netio.sleep, 30)
          log.first = { ok, err }
          log.cleanup = "done" -- code that does not wait still runs
          local ok2, err2 = pcall(netio.sleep, 0)
          log.second = { ok2, err2 }
          return "returned anyway"
        end)
        settle()
        t:cancel()
        log.join = table.pack(t:join(2))
        return log
      end)
      assert.are.same({ false, "canceled" }, r.first, "pcall around the canceled wait")
      assert.are.equal("done", r.cleanup, "cleanup code that does not wait should run")
      assert.are.same({ false, "canceled" }, r.second, "every later wait raises canceled")
      assert.are.same({ n = 2, nil, "canceled" }, r.join,
        "a canceled task joins as canceled however it ended")
    end)

    it("close_variables_of_every_scope_run_innermost_first", function()
      local order = H.run(function()
        local order = {}
        local function mark(name)
          return setmetatable({}, { __close = function(_, err)
            order[#order + 1] = name .. ":" .. tostring(err)
          end })
        end
        local t = netio.spawn(function()
          local _ <close> = mark("outer")
          local function inner()
            local _ <close> = mark("inner")
            netio.sleep(30)
          end
          inner()
        end)
        settle()
        t:cancel()
        t:join(2)
        return order
      end)
      assert.are.same({ "inner:canceled", "outer:canceled" }, order,
        "<close> variables should close innermost first, with the error \"canceled\"")
    end)
  end)

  describe("states", function()
    it("cancel_of_a_task_that_ended_returns_false_and_changes_nothing", function()
      local r = H.run(function()
        local done = netio.spawn(function() return 1, 2 end)
        local failed = netio.spawn(function() error("boom", 0) end)
        failed:join(2) -- joined while it raises: its error is not logged
        done:join(2)
        return { done:cancel(), done:status(), table.pack(done:join()),
                 failed:cancel(), failed:status(), table.pack(failed:join()) }
      end)
      assert.are.equal(false, r[1], "cancel of a task that returned")
      assert.are.equal("done", r[2], "status of the task that returned")
      assert.are.same({ n = 3, true, 1, 2 }, r[3], "join of the task that returned, after cancel()")
      assert.are.equal(false, r[4], "cancel of a task that raised")
      assert.are.equal("failed", r[5], "status of the task that raised")
      assert.are.equal(2, r[6].n, "join of the task that raised should give nil, err")
      assert.is_nil(r[6][1])
      assert.is_truthy(tostring(r[6][2]):match("^boom\nstack traceback:"),
        "join of the failed task should give its error: " .. tostring(r[6][2]))
    end)

    it("cancel_of_a_task_canceled_before_returns_false_once_it_ended", function()
      local r = H.run(function()
        local t = netio.spawn(function() netio.sleep(30) end)
        settle()
        local first, again = t:cancel(), t:cancel()
        t:join(2)
        return { first, again, t:cancel() }
      end)
      assert.are.same({ true, true, false }, r,
        "cancel twice before the end (it will end canceled), then after it")
    end)

    it("a_task_canceled_before_it_started_never_runs", function()
      local r = H.run(function()
        local ran = false
        local t = netio.spawn(function() ran = true end)
        local c = t:cancel()
        local st = t:status()
        local j = table.pack(t:join(2))
        return { c = c, st = st, j = j, ran = ran, after = t:status() }
      end)
      assert.are.equal(true, r.c, "cancel() of a task that has not started")
      assert.are.equal("ready", r.st, "status right after the cancel")
      assert.are.same({ n = 2, nil, "canceled" }, r.j, "join of a task canceled before it started")
      assert.is_false(r.ran, "a task canceled before it started ran")
      assert.are.equal("canceled", r.after, "status once it ended")
    end)

    it("a_task_canceling_itself_goes_on_until_its_next_wait", function()
      local r = H.run(function()
        local log = {}
        local me
        me = netio.spawn(function()
          log.cancel = me:cancel()
          log.status = me:status()
          log.ran_on = true
          netio.sleep(0)
          log.never = true
        end)
        log.join = table.pack(me:join(2))
        return log
      end)
      assert.are.equal(true, r.cancel, "cancel() of itself")
      assert.are.equal("running", r.status, "status() of itself after the cancel")
      assert.is_true(r.ran_on, "the code after the cancel, before a wait, should run")
      assert.is_nil(r.never, "the wait after a cancel of itself should raise")
      assert.are.same({ n = 2, nil, "canceled" }, r.join, "join of a task that canceled itself")
    end)

    it("a_task_waiting_in_join_on_a_canceled_task_gets_nil_canceled", function()
      local r = H.run(function()
        local t = netio.spawn(function() netio.sleep(30) end)
        local j = netio.spawn(function() return t:join(5) end)
        settle()
        t:cancel()
        return table.pack(j:join(2))
      end)
      assert.are.same({ n = 3, true, nil, "canceled" }, r,
        "the joiner's join should give nil, \"canceled\"")
    end)

    it("cancel_after_the_run_returns_false", function()
      local t = H.run(function()
        return netio.spawn(function() return "x" end)
      end)
      assert.are.equal(false, t:cancel(), "cancel() after the run")
      assert.are.equal("done", t:status(), "status after the run")
    end)

    it("raises_on_a_call_with_a_dot", function()
      H.run(function()
        local t = netio.spawn(function() end)
        is_error("bad argument #1 to 'cancel' (netio.task expected, got no value)",
          raised(function() t.cancel() end))
        is_error("bad argument #1 to 'cancel' (netio.task expected, got number)",
          raised(function() t.cancel(1) end))
      end)
    end)
  end)

  describe("the log", function()
    local temps = {}
    teardown(function()
      for _, p in ipairs(temps) do os.remove(p) end
    end)

    it("an_error_of_a_canceled_task_is_never_logged", function()
      if not HOST or HOST == "" then pending("NETIO_HOST is not set") return end
      local path = H.write(H.tmpname(), [[
local netio = require "netio"
-- Raises after catching the cancel; nobody joins it while it ends.
local a = netio.spawn(function()
  pcall(netio.sleep, 30)
  error("cleanup failed")
end)
-- The cancel goes through uncaught.
local b = netio.spawn(function() netio.sleep(30) end)
-- A control: an uncaught error of a task that was not canceled.
local c = netio.spawn(function() netio.sleep(0.05) error("control failure") end)
netio.sleep(0.01)
a:cancel()
b:cancel()
netio.sleep(0.2)
local _, ea = a:join()
local _, eb = b:join()
local _, ec = c:join()
print(ea, eb, ec:find("control failure", 1, true) ~= nil)
]])
      temps[#temps + 1] = path
      local code, out, err = H.sh(Q(HOST) .. " " .. Q(path), 20)
      assert.are.equal(0, code, "host exit status; stderr: " .. tostring(err))
      assert.are.equal("canceled\tcanceled\ttrue\n", out,
        "both canceled tasks should join as canceled")
      local n = select(2, err:gsub("uncaught error in task", ""))
      assert.are.equal(1, n, "only the control's error should be logged; stderr: " .. err)
      assert.is_truthy(err:find("control failure", 1, true), "stderr: " .. err)
      assert.is_falsy(err:find("cleanup failed", 1, true),
        "a canceled task's error was logged: " .. err)
      assert.is_falsy(err:find("canceled", 1, true), "a cancel was logged: " .. err)
    end)
  end)
end)

describe("netio.wait", function()
  it("returns_the_first_task_to_end_and_its_join_results", function()
    local r = H.run(function()
      local slow = netio.spawn(function() netio.sleep(0.3) return "slow" end)
      local fast = netio.spawn(function() netio.sleep(0.02) return "fast", 2 end)
      local t0 = netio.now()
      local res = table.pack(netio.wait(slow, fast))
      local dt = netio.now() - t0
      slow:cancel()
      return { first = res[1] == fast, rest = table.pack(table.unpack(res, 2, res.n)),
               dt = dt, slow = slow:status() }
    end)
    assert.is_true(r.first, "netio.wait should return the task that ended first")
    assert.are.same({ n = 3, true, "fast", 2 }, r.rest, "the results of the task that ended first")
    assert.is_true(r.dt < 0.25, "netio.wait returned after " .. r.dt .. " s")
  end)

  it("gives_nil_and_the_error_of_a_failed_or_canceled_task", function()
    local r = H.run(function()
      local failed = netio.spawn(function() error("boom", 0) end)
      local other = netio.spawn(function() netio.sleep(30) end)
      -- Joined while it raises, so that its error is not logged (a task
      -- waiting in netio.wait does not count as joining: see docs/api.md).
      failed:join(2)
      local a = table.pack(netio.wait(other, failed))
      local b = table.pack(netio.wait(other, failed))
      local waiting = netio.spawn(function() return netio.wait(other) end)
      settle()
      other:cancel()
      local c = table.pack(waiting:join(2))
      return { a1 = a[1] == failed, a = { a[2], (a[3]:match("^boom\n")) }, b1 = b[1] == failed,
               c1 = c[2] == other, c = { c[3], c[4] } }
    end)
    assert.is_true(r.a1)
    assert.are.same({ nil, "boom\n" }, r.a, "netio.wait on a failed task: nil, error + traceback")
    assert.is_true(r.b1, "a task that had ended is returned at once")
    assert.is_true(r.c1)
    assert.are.same({ nil, "canceled" }, r.c, "netio.wait on a canceled task")
  end)

  it("returns_the_first_in_argument_order_when_several_had_ended", function()
    local r = H.run(function()
      local a = netio.spawn(function() return "a" end)
      local b = netio.spawn(function() return "b" end)
      local pending_task = netio.spawn(function() netio.sleep(30) end)
      b:join(2)
      a:join(2)
      local x = { netio.wait(pending_task, b, a) }
      local y = { netio.wait(a, b) }
      pending_task:cancel()
      return { x[1] == b, x[3], y[1] == a, y[3] }
    end)
    assert.are.same({ true, "b", true, "a" }, r,
      "netio.wait with several ended: the first in argument order")
  end)

  it("works_outside_a_task_when_a_task_had_ended", function()
    local t = H.run(function() return netio.spawn(function() return 7 end) end)
    local r = table.pack(netio.wait(t))
    assert.is_true(r[1] == t)
    assert.are.same({ true, 7 }, { r[2], r[3] },
      "netio.wait outside a task on an ended task: true and its results")
  end)

  it("raises_on_bad_arguments", function()
    H.run(function()
      is_error("bad argument #1 to 'wait' (task expected, got no value)",
        raised(function() netio.wait() end))
      local t = netio.spawn(function() netio.sleep(30) end)
      is_error("bad argument #2 to 'wait' (netio.task expected, got number)",
        raised(function() netio.wait(t, 5) end))
      is_error("bad argument #1 to 'wait' (netio.task expected, got table)",
        raised(function() netio.wait({}) end))
      local me
      me = netio.spawn(function()
        return raised(function() netio.wait(t, me) end)
      end)
      local _, msg = me:join(2)
      is_error("bad argument #2 to 'wait' (a task cannot wait for itself)", msg)
      t:cancel()
    end)
  end)
end)
