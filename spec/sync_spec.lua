-- sync_spec.lua: netio.semaphore, netio.queue and netio.cond -- their
-- semantics, FIFO order with several waiters (no barging), back-pressure of
-- a bounded queue, timeouts, the races between a timeout or a cancel and a
-- hand-over (built deterministically: see `spin`), close, the run's stop
-- releasing waiters, and bad input.
local H = require "helper"
local netio = H.netio
local raised, is_error = H.raised, H.is_error

-- Keep the loop busy (no yield) for `sec` seconds: a timer that expires
-- meanwhile is seen only when the running task yields, so what the task
-- does before yielding happens "at the same time" as the timeout.
local function spin(sec)
  local deadline = netio.now() + sec
  while netio.now() < deadline do end
end

-- Let the other tasks run until they wait (a few turns of the loop).
local function settle()
  for _ = 1, 5 do netio.sleep(0) end
end

-- A to-be-closed value that calls fn when its scope ends.
local function defer(fn)
  return setmetatable({}, { __close = function(_, err) fn(err) end })
end

describe("netio.semaphore", function()
  it("acquire_takes_permits_until_none_are_left_then_times_out", function()
    local r = H.run(function()
      local s = netio.semaphore(2)
      local a, b = s:acquire(), s:acquire(1)
      local dt, ok, err = H.timed(s.acquire, s, 0.05)
      return { a = a, b = b, count = s:count(), ok = ok, err = err, dt = dt }
    end)
    assert.are.equal(true, r.a, "first acquire of 2 permits")
    assert.are.equal(true, r.b, "second acquire of 2 permits")
    assert.are.equal(0, r.count, "count() after taking both permits")
    assert.is_nil(r.ok, "acquire with no permit should fail after its timeout")
    assert.are.equal("timeout", r.err, "acquire(0.05) with no permit should give nil, \"timeout\"")
    assert.is_true(r.dt >= 0.04 and r.dt < 2, "acquire(0.05) gave up after " .. r.dt .. " s")
  end)

  it("acquire_zero_on_no_permit_returns_nil_timeout_on_the_next_turn", function()
    local ok, err = H.run(function()
      local s = netio.semaphore(0)
      return s:acquire(0)
    end)
    assert.is_nil(ok, "acquire(0) with no permit should fail")
    assert.are.equal("timeout", err, "acquire(0) with no permit should give nil, \"timeout\"")
  end)

  it("release_hands_the_permit_to_the_waiter_not_to_the_count", function()
    local r = H.run(function()
      local s = netio.semaphore(0)
      local w = netio.spawn(function() return s:acquire(5) end)
      settle()
      local st = w:status()
      s:release()
      local count = s:count()
      return { st = st, count = count, join = table.pack(w:join(2)) }
    end)
    assert.are.equal("waiting", r.st, "the acquiring task should wait for a permit")
    assert.are.equal(0, r.count, "a released permit should go to the waiter, not to count()")
    assert.are.same({ n = 2, true, true }, r.join, "the waiter's acquire should return true")
  end)

  it("waiters_get_permits_in_the_order_they_began_to_wait", function()
    local order = H.run(function()
      local s = netio.semaphore(0)
      local got, tasks = {}, {}
      for i = 1, 5 do
        tasks[i] = netio.spawn(function()
          assert(s:acquire(5))
          got[#got + 1] = i
        end)
        settle() -- task i waits before task i + 1 starts
      end
      for _ = 1, 5 do
        s:release()
        settle()
      end
      for i = 1, 5 do tasks[i]:join(2) end
      return got
    end)
    assert.are.same({ 1, 2, 3, 4, 5 }, order, "permits should be handed in FIFO order")
  end)

  it("a_task_arriving_after_a_release_does_not_take_the_waiters_permit", function()
    local r = H.run(function()
      local s = netio.semaphore(0)
      local w = netio.spawn(function() return s:acquire(5) end)
      settle()
      s:release()
      -- Before the waiter ran: this task and a new one try to take it.
      local late = netio.spawn(function() return s:acquire(0) end)
      local ok, err = s:acquire(0)
      return { ok = ok, err = err, w = table.pack(w:join(2)),
               late = table.pack(late:join(2)), count = s:count() }
    end)
    assert.is_nil(r.ok, "the releasing task took the permit handed to a waiter")
    assert.are.equal("timeout", r.err, "the releasing task's acquire(0) should time out")
    assert.are.same({ n = 3, true, nil, "timeout" }, r.late,
      "a task spawned after the release took the waiter's permit")
    assert.are.same({ n = 2, true, true }, r.w, "the waiter should get the permit")
    assert.are.equal(0, r.count, "no permit should be left counted")
  end)

  it("release_k_wakes_up_to_k_waiters_and_counts_the_rest", function()
    local r = H.run(function()
      local s = netio.semaphore(0)
      local a = netio.spawn(function() return s:acquire(5) end)
      local b = netio.spawn(function() return s:acquire(5) end)
      settle()
      s:release(5)
      return { count = s:count(), a = table.pack(a:join(2)), b = table.pack(b:join(2)) }
    end)
    assert.are.same({ n = 2, true, true }, r.a, "waiter a should get a permit")
    assert.are.same({ n = 2, true, true }, r.b, "waiter b should get a permit")
    assert.are.equal(3, r.count, "release(5) with 2 waiters should leave 3 permits")
  end)

  it("release_beyond_the_initial_count_adds_permits", function()
    local n, m = H.run(function()
      local s = netio.semaphore(1)
      s:release()
      s:release(2)
      local c = s:count()
      for _ = 1, 4 do assert(s:acquire(0)) end
      return c, s:count()
    end)
    assert.are.equal(4, n, "semaphore(1) + release() + release(2)")
    assert.are.equal(0, m, "count() after taking every permit")
  end)

  it("a_timeout_firing_before_the_release_keeps_the_permit_counted", function()
    local r = H.run(function()
      local s = netio.semaphore(0)
      local w = netio.spawn(function() return s:acquire(0.05) end)
      settle()
      spin(0.1)
      -- The loop sees the expired timer at this yield; this task runs
      -- again before the waiter does, and releases in the same turn.
      netio.sleep(0)
      s:release()
      return { w = table.pack(w:join(2)), count = s:count() }
    end)
    assert.are.same({ n = 3, true, nil, "timeout" }, r.w, "the waiter whose timeout fired")
    assert.are.equal(1, r.count, "the permit released to a timed-out waiter was lost")
  end)

  it("a_release_before_the_timeout_is_seen_gives_the_waiter_the_permit", function()
    local r = H.run(function()
      local s = netio.semaphore(0)
      local w = netio.spawn(function() return s:acquire(0.05) end)
      settle()
      spin(0.1) -- the timeout has passed, but nothing has seen it yet
      s:release()
      return { w = table.pack(w:join(2)), count = s:count() }
    end)
    assert.are.same({ n = 2, true, true }, r.w,
      "a waiter handed the permit should return true even though its timeout passed too")
    assert.are.equal(0, r.count, "the permit was given twice")
  end)

  it("a_canceled_waiter_is_skipped_and_the_permit_kept", function()
    local r = H.run(function()
      local s = netio.semaphore(0)
      local a = netio.spawn(function() return s:acquire(5) end)
      local b = netio.spawn(function() return s:acquire(5) end)
      settle()
      a:cancel()
      s:release()
      local after_one = s:count()
      s:release()
      return { a = table.pack(a:join(2)), b = table.pack(b:join(2)),
               after_one = after_one, count = s:count() }
    end)
    assert.are.same({ n = 2, nil, "canceled" }, r.a, "the canceled waiter should join as canceled")
    assert.are.same({ n = 2, true, true }, r.b, "the next waiter should get the first permit")
    assert.are.equal(0, r.after_one,
      "the first permit should go to the next waiter, not to the count")
    assert.are.equal(1, r.count, "the second permit should be counted")
  end)

  it("a_waiter_handed_a_permit_then_canceled_gets_it_and_can_give_it_back", function()
    local r = H.run(function()
      local s = netio.semaphore(0)
      local got
      local w = netio.spawn(function()
        local ok = s:acquire(5)
        got = ok
        local _ <close> = defer(function() s:release() end)
        netio.sleep(5) -- the cancel hits this wait
      end)
      settle()
      s:release()
      w:cancel() -- same turn: the permit was already handed
      return { join = table.pack(w:join(2)), got = got, count = s:count() }
    end)
    assert.are.equal(true, r.got, "acquire should return the permit it was handed")
    assert.are.same({ n = 2, nil, "canceled" }, r.join, "the canceled task should join as canceled")
    assert.are.equal(1, r.count, "the <close> handler should have released the permit")
  end)

  it("the_stop_of_the_run_releases_waiters_with_closed", function()
    local t0 = netio.now()
    local ok, r = netio.run(function()
      local s = netio.semaphore(0)
      local w = netio.spawn(function() return s:acquire() end)
      settle()
      netio.stop()
      local res = { w = table.pack(w:join(2)) }
      res.after = table.pack(s:acquire(5))
      s:release()
      res.with_permit = table.pack(s:acquire(5))
      return res
    end)
    assert.is_true(ok, "netio.run should return true")
    assert.are.same({ n = 3, true, nil, "closed" }, r.w, "a waiting acquire at the stop")
    assert.are.same({ n = 2, nil, "closed" }, r.after,
      "an acquire that would wait after the stop should fail at once")
    assert.are.same({ n = 1, true }, r.with_permit,
      "an acquire with a permit available should still succeed after the stop")
    assert.is_true(netio.now() - t0 < 1.5, "the run should end without its stop grace")
  end)

  it("tostring_names_the_object", function()
    local s = H.run(function() return tostring(netio.semaphore(1)) end)
    assert.is_truthy(s:match("^netio%.semaphore %(0?x?%x+%)$"), "got " .. s)
  end)

  describe("bad input", function()
    it("raises_on_bad_counts", function()
      H.run(function()
        is_error("bad argument #1 to 'semaphore' (count must be a non-negative integer)",
          raised(function() netio.semaphore(-1) end))
        is_error("bad argument #1 to 'semaphore' (number has no integer representation)",
          raised(function() netio.semaphore(0 / 0) end))
        is_error("bad argument #1 to 'semaphore' (number has no integer representation)",
          raised(function() netio.semaphore(1.5) end))
        is_error("bad argument #1 to 'semaphore' (number expected, got string)",
          raised(function() netio.semaphore("two") end))
        is_error("bad argument #1 to 'semaphore' (number expected, got no value)",
          raised(function() netio.semaphore() end))
        local s = netio.semaphore(0)
        is_error("bad argument #1 to 'release' (count must be a positive integer)",
          raised(function() s:release(0) end))
        is_error("bad argument #1 to 'release' (count must be a positive integer)",
          raised(function() s:release(-2) end))
        is_error("bad argument #1 to 'release' (number has no integer representation)",
          raised(function() s:release(1.5) end))
        is_error("bad argument #1 to 'release' (number expected, got table)",
          raised(function() s:release({}) end))
        assert.are.equal(0, s:count(), "a bad release changed the count")
      end)
    end)

    it("raises_on_bad_timeouts", function()
      H.run(function()
        local s = netio.semaphore(1)
        is_error("bad argument #1 to 'acquire' (timeout must be a non-negative number)",
          raised(function() s:acquire(-1) end))
        is_error("bad argument #1 to 'acquire' (timeout must be a non-negative number)",
          raised(function() s:acquire(0 / 0) end))
        is_error("bad argument #1 to 'acquire' (number expected, got boolean)",
          raised(function() s:acquire(true) end))
        assert.are.equal(1, s:count(), "a bad acquire took a permit")
        assert.are.equal(true, s:acquire("0.5"), "a numeric string is a timeout")
      end)
    end)

    it("raises_on_calls_with_a_dot_or_on_another_object", function()
      H.run(function()
        local s, q = netio.semaphore(1), netio.queue()
        is_error("bad argument #1 to 'acquire' (netio.semaphore expected, got no value)",
          raised(function() s.acquire() end))
        is_error("bad argument #1 to 'release' (netio.semaphore expected, got number)",
          raised(function() s.release(2) end))
        is_error("bad argument #1 to 'count' (netio.semaphore expected, got netio.queue)",
          raised(function() s.count(q) end))
        is_error("calling 'acquire' on bad self (netio.semaphore expected, got netio.queue)",
          raised(function() q.acquire = s.acquire; q:acquire() end))
      end)
    end)

    it("acquire_that_has_to_wait_outside_a_task_raises", function()
      local s = H.run(function() return netio.semaphore(0) end)
      -- After its run: no task can wait.
      assert.are.equal("netio: acquire must be called from a netio task",
        raised(s.acquire, s))
      s:release()
      assert.are.equal(true, s:acquire(), "an acquire that need not wait works anywhere")
      assert.are.equal(0, s:count(), "count() after the acquire")
    end)

    it("semaphore_outside_a_run_raises", function()
      assert.are.equal("netio: semaphore must be called from a netio task",
        raised(netio.semaphore, 1))
    end)
  end)
end)

describe("netio.queue", function()
  it("pop_returns_values_in_push_order_false_included", function()
    local r = H.run(function()
      local q = netio.queue()
      local pushed = { q:push(1), q:push(false), q:push("three"), q:push({ 4 }) }
      local len = #q
      local got = { q:pop(), q:pop(), q:pop(), (q:pop())[1] }
      return { pushed = pushed, len = len, got = got, after = #q }
    end)
    assert.are.same({ true, true, true, true }, r.pushed, "push results")
    assert.are.equal(4, r.len, "#q after 4 pushes")
    assert.are.same({ 1, false, "three", 4 }, r.got, "values popped")
    assert.are.equal(0, r.after, "#q after popping everything")
  end)

  it("an_unbounded_queue_never_makes_push_wait", function()
    local n, dt = H.run(function()
      local q = netio.queue()
      local t0 = netio.now()
      for i = 1, 100000 do assert(q:push(i, 0)) end
      return #q, netio.now() - t0
    end)
    assert.are.equal(100000, n, "#q after 100000 pushes")
    assert.is_true(dt < 5, "100000 pushes took " .. dt .. " s")
  end)

  it("pop_waits_for_a_push_and_push_hands_the_value_over", function()
    local r = H.run(function()
      local q = netio.queue()
      local w = netio.spawn(function() return q:pop(5) end)
      settle()
      local st = w:status()
      local ok = q:push(false)
      return { st = st, ok = ok, len = #q, join = table.pack(w:join(2)) }
    end)
    assert.are.equal("waiting", r.st, "a pop on an empty queue should wait")
    assert.are.equal(true, r.ok, "push to a waiting pop should return true")
    assert.are.equal(0, r.len, "a value handed to a waiting pop should not be queued")
    assert.are.same({ n = 2, true, false }, r.join, "the waiting pop should return false")
  end)

  it("waiting_pops_are_served_in_order", function()
    local got = H.run(function()
      local q = netio.queue()
      local tasks = {}
      for i = 1, 4 do
        tasks[i] = netio.spawn(function() return q:pop(5) end)
        settle()
      end
      for i = 1, 4 do q:push("v" .. i) end
      local out = {}
      for i = 1, 4 do out[i] = select(2, tasks[i]:join(2)) end
      return out
    end)
    assert.are.same({ "v1", "v2", "v3", "v4" }, got, "pop i should get the i-th value")
  end)

  it("a_pop_arriving_after_a_push_does_not_take_the_waiters_value", function()
    local r = H.run(function()
      local q = netio.queue()
      local w = netio.spawn(function() return q:pop(5) end)
      settle()
      q:push("x")
      local v, err = q:pop(0)
      return { v = v, err = err, w = table.pack(w:join(2)) }
    end)
    assert.is_nil(r.v, "the pushing task popped the value handed to a waiter")
    assert.are.equal("timeout", r.err, "the pushing task's pop(0) should time out")
    assert.are.same({ n = 2, true, "x" }, r.w, "the waiting pop should get the value")
  end)

  it("pop_times_out_on_an_empty_queue", function()
    local dt, v, err = H.run(function()
      local q = netio.queue()
      return H.timed(q.pop, q, 0.05)
    end)
    assert.is_nil(v, "pop(0.05) on an empty queue should fail")
    assert.are.equal("timeout", err, "pop(0.05) on an empty queue should give nil, \"timeout\"")
    assert.is_true(dt >= 0.04 and dt < 2, "pop(0.05) gave up after " .. dt .. " s")
  end)

  describe("bounded", function()
    it("push_waits_while_the_queue_is_full_and_goes_on_after_a_pop", function()
      local r = H.run(function()
        local q = netio.queue(2)
        assert(q:push(1, 0))
        assert(q:push(2, 0))
        local t0
        local p = netio.spawn(function()
          t0 = netio.now()
          local ok = q:push(3, 5)
          return ok, netio.now() - t0
        end)
        netio.sleep(0.1)
        local res = { st = p:status(), len = #q }
        res.first = q:pop()
        res.len_after = #q
        res.join = table.pack(p:join(2))
        res.rest = { q:pop(0), q:pop(0) }
        return res
      end)
      assert.are.equal("waiting", r.st, "a push on a full queue should wait")
      assert.are.equal(2, r.len, "#q should not count a waiting push")
      assert.are.equal(1, r.first, "the first value queued")
      assert.are.equal(2, r.len_after, "the pop should have moved the waiting value in")
      assert.are.equal(true, r.join[2], "the waiting push should return true")
      assert.is_true(r.join[3] >= 0.08, "the push returned after " .. r.join[3] .. " s")
      assert.are.same({ 2, 3 }, r.rest, "values should come out in push order")
    end)

    it("waiting_pushes_go_in_in_the_order_they_began_to_wait", function()
      local got = H.run(function()
        local q = netio.queue(1)
        assert(q:push("first"))
        local tasks = {}
        for i = 1, 4 do
          tasks[i] = netio.spawn(function() return q:push("p" .. i, 5) end)
          settle()
        end
        local out = {}
        for i = 1, 5 do out[i] = q:pop(2) end
        for i = 1, 4 do assert(tasks[i]:join(2)) end
        return out
      end)
      assert.are.same({ "first", "p1", "p2", "p3", "p4" }, got,
        "values in the order of the pushes, waiting ones in turn")
    end)

    it("a_push_arriving_after_a_slot_freed_does_not_pass_a_waiting_push", function()
      local r = H.run(function()
        local q = netio.queue(1)
        assert(q:push("a"))
        local w = netio.spawn(function() return q:push("waiting", 5) end)
        settle()
        local first = q:pop()
        -- The freed slot went to the waiting push, though it has not run.
        local ok, err = q:push("late", 0)
        return { first = first, ok = ok, err = err, len = #q, w = table.pack(w:join(2)),
                 next = q:pop(0) }
      end)
      assert.are.equal("a", r.first, "the value queued first")
      assert.is_nil(r.ok, "a later push took the slot due to the waiting push")
      assert.are.equal("timeout", r.err, "the late push(..., 0) should time out on a full queue")
      assert.are.equal(1, r.len, "#q with the waiting push's value in")
      assert.are.same({ n = 2, true, true }, r.w, "the waiting push should return true")
      assert.are.equal("waiting", r.next, "the next pop should get the waiting push's value")
    end)

    it("push_times_out_on_a_full_queue_and_its_value_is_not_queued", function()
      local r = H.run(function()
        local q = netio.queue(1)
        assert(q:push(1))
        local dt, ok, err = H.timed(q.push, q, 2, 0.05)
        return { dt = dt, ok = ok, err = err, len = #q, a = q:pop(0), b = table.pack(q:pop(0)) }
      end)
      assert.is_nil(r.ok, "push on a full queue should fail after its timeout")
      assert.are.equal("timeout", r.err,
        "push(v, 0.05) on a full queue should give nil, \"timeout\"")
      assert.is_true(r.dt >= 0.04 and r.dt < 2, "push(v, 0.05) gave up after " .. r.dt .. " s")
      assert.are.equal(1, r.len, "#q after a push that timed out")
      assert.are.equal(1, r.a, "the value queued before")
      assert.are.same({ n = 2, nil, "timeout" }, r.b, "the timed-out value was queued")
    end)

    it("a_push_timeout_seen_before_the_pop_drops_only_that_value", function()
      local r = H.run(function()
        local q = netio.queue(1)
        assert(q:push(1))
        local w = netio.spawn(function() return q:push(2, 0.05) end)
        local w2 = netio.spawn(function() return q:push(3, 5) end)
        settle()
        spin(0.1)
        netio.sleep(0) -- the loop sees w's timeout; this task runs first
        local a = q:pop()
        return { a = a, w = table.pack(w:join(2)), w2 = table.pack(w2:join(2)),
                 b = q:pop(0), rest = table.pack(q:pop(0)) }
      end)
      assert.are.equal(1, r.a, "the value queued before")
      assert.are.same({ n = 3, true, nil, "timeout" }, r.w, "the push whose timeout fired")
      assert.are.same({ n = 2, true, true }, r.w2, "the next waiting push should take the slot")
      assert.are.equal(3, r.b, "the value of the next waiting push")
      assert.are.same({ n = 2, nil, "timeout" }, r.rest, "the timed-out value got in")
    end)

    it("a_pop_before_the_push_timeout_is_seen_queues_the_value_once", function()
      local r = H.run(function()
        local q = netio.queue(1)
        assert(q:push(1))
        local w = netio.spawn(function() return q:push(2, 0.05) end)
        settle()
        spin(0.1) -- the timeout passed, nothing saw it yet
        local a = q:pop()
        return { a = a, w = table.pack(w:join(2)), b = q:pop(0), rest = table.pack(q:pop(0)) }
      end)
      assert.are.equal(1, r.a, "the value queued before")
      assert.are.same({ n = 2, true, true }, r.w,
        "a push whose value went in should return true though its timeout passed too")
      assert.are.equal(2, r.b, "the waiting push's value, once")
      assert.are.same({ n = 2, nil, "timeout" }, r.rest, "the value was queued twice")
    end)

    it("a_canceled_push_is_skipped_and_leaves_nothing_behind", function()
      local r = H.run(function()
        local q = netio.queue(1)
        assert(q:push(1))
        local a = netio.spawn(function() return q:push("canceled", 5) end)
        local b = netio.spawn(function() return q:push("b", 5) end)
        settle()
        a:cancel()
        local first = q:pop()
        local res = { first = first, a = table.pack(a:join(2)), b = table.pack(b:join(2)) }
        res.second = q:pop(0)
        -- Nothing of the canceled push stays in the queue's waiting list.
        assert(q:push("c", 0))
        local c = netio.spawn(function() return q:push("d", 5) end)
        settle()
        res.third = q:pop(0)
        res.c = table.pack(c:join(2))
        res.fourth = q:pop(0)
        return res
      end)
      assert.are.equal(1, r.first, "the value queued before")
      assert.are.same({ n = 2, nil, "canceled" }, r.a, "the canceled push should join as canceled")
      assert.are.same({ n = 2, true, true }, r.b, "the next waiting push should get the slot")
      assert.are.equal("b", r.second, "the canceled push's value got in")
      assert.are.equal("c", r.third, "a push after the canceled one, with room")
      assert.are.same({ n = 2, true, true }, r.c,
        "a push waiting behind no canceled entry should return true")
      assert.are.equal("d", r.fourth, "the last value pushed")
    end)

    it("a_push_canceled_after_its_value_went_in_returns_true", function()
      local r = H.run(function()
        local q = netio.queue(1)
        assert(q:push(1))
        local res = {}
        local w = netio.spawn(function()
          res.push = table.pack(q:push(2, 5))
          netio.sleep(5)
        end)
        settle()
        res.a = q:pop()
        w:cancel()
        res.join = table.pack(w:join(2))
        res.b = q:pop(0)
        res.rest = table.pack(q:pop(0))
        return res
      end)
      assert.are.same({ n = 1, true }, r.push, "the push whose value went in")
      assert.are.same({ n = 2, nil, "canceled" }, r.join,
        "the canceled task should join as canceled")
      assert.are.equal(2, r.b, "the value of the push, queued once")
      assert.are.same({ n = 2, nil, "timeout" }, r.rest, "nothing else should be queued")
    end)
  end)

  it("a_pop_timeout_seen_before_the_push_leaves_the_value_queued", function()
    local r = H.run(function()
      local q = netio.queue()
      local w = netio.spawn(function() return q:pop(0.05) end)
      settle()
      spin(0.1)
      netio.sleep(0)
      q:push("v")
      return { w = table.pack(w:join(2)), len = #q, v = q:pop(0) }
    end)
    assert.are.same({ n = 3, true, nil, "timeout" }, r.w,
      "the pop whose timeout fired should give nil, \"timeout\"")
    assert.are.equal(1, r.len, "a value pushed to a timed-out pop was lost")
    assert.are.equal("v", r.v, "the value pushed after the timed-out pop")
  end)

  it("a_push_before_the_pop_timeout_is_seen_gives_the_pop_the_value", function()
    local r = H.run(function()
      local q = netio.queue()
      local w = netio.spawn(function() return q:pop(0.05) end)
      settle()
      spin(0.1)
      q:push("v")
      return { w = table.pack(w:join(2)), len = #q }
    end)
    assert.are.same({ n = 2, true, "v" }, r.w,
      "the pop handed the value should return it though its timeout passed too")
    assert.are.equal(0, r.len, "the value was given twice")
  end)

  it("a_canceled_pop_is_skipped_and_the_value_stays_queued", function()
    local r = H.run(function()
      local q = netio.queue()
      local w = netio.spawn(function() return q:pop(5) end)
      settle()
      w:cancel()
      q:push("kept")
      return { w = table.pack(w:join(2)), len = #q, v = q:pop(0) }
    end)
    assert.are.same({ n = 2, nil, "canceled" }, r.w, "the canceled pop should join as canceled")
    assert.are.equal(1, r.len, "the value pushed after the cancel should stay queued")
    assert.are.equal("kept", r.v, "the value kept in the queue")
  end)

  it("a_pop_canceled_after_it_was_handed_a_value_returns_it", function()
    local r = H.run(function()
      local q = netio.queue()
      local got
      local w = netio.spawn(function()
        got = q:pop(5)
        netio.sleep(5)
      end)
      settle()
      q:push("mine")
      w:cancel()
      local joined = table.pack(w:join(2))
      return { got = got, w = joined, len = #q }
    end)
    assert.are.equal("mine", r.got, "the pop handed the value before its cancel should return it")
    assert.are.same({ n = 2, nil, "canceled" }, r.w, "the canceled task should join as canceled")
    assert.are.equal(0, r.len, "the handed value should not also be queued")
  end)

  describe("close", function()
    it("pops_get_the_queued_values_then_nil_closed", function()
      local r = H.run(function()
        local q = netio.queue()
        q:push(1)
        q:push(2)
        local res = { close = q:close(), again = q:close() }
        res.push = table.pack(q:push(3))
        res.a, res.b = q:pop(), q:pop()
        res.c = table.pack(q:pop(1))
        res.len = #q
        return res
      end)
      assert.are.equal(true, r.close, "close() should return true")
      assert.are.equal(true, r.again, "close() again should return true")
      assert.are.same({ n = 2, nil, "closed" }, r.push, "push after close")
      assert.are.equal(1, r.a, "the first value queued before close")
      assert.are.equal(2, r.b, "the second value queued before close")
      assert.are.same({ n = 2, nil, "closed" }, r.c, "pop of a closed, empty queue")
      assert.are.equal(0, r.len, "#q of a closed queue emptied")
    end)

    it("wakes_every_waiting_pop_and_push_with_closed", function()
      local r = H.run(function()
        local empty, full = netio.queue(), netio.queue(1)
        full:push("in")
        local pops, pushes = {}, {}
        for i = 1, 3 do
          pops[i] = netio.spawn(function() return empty:pop() end)
          pushes[i] = netio.spawn(function() return full:push(i) end)
        end
        settle()
        empty:close()
        full:close()
        local res = { pops = {}, pushes = {} }
        for i = 1, 3 do
          res.pops[i] = table.pack(pops[i]:join(2))
          res.pushes[i] = table.pack(pushes[i]:join(2))
        end
        res.left = { full:pop(0), table.pack(full:pop(0)) }
        return res
      end)
      for i = 1, 3 do
        assert.are.same({ n = 3, true, nil, "closed" }, r.pops[i], "waiting pop " .. i)
        assert.are.same({ n = 3, true, nil, "closed" }, r.pushes[i], "waiting push " .. i)
      end
      assert.are.equal("in", r.left[1], "the value queued before close")
      assert.are.same({ n = 2, nil, "closed" }, r.left[2], "a waiting push's value got in")
    end)
  end)

  it("the_stop_of_the_run_releases_waiting_pops_and_pushes", function()
    local t0 = netio.now()
    local ok, r = netio.run(function()
      local empty, full = netio.queue(), netio.queue(1)
      full:push("in")
      local p = netio.spawn(function() return empty:pop() end)
      local s = netio.spawn(function() return full:push("out") end)
      settle()
      netio.stop()
      return { p = table.pack(p:join(2)), s = table.pack(s:join(2)),
               pop = full:pop(0), push = table.pack(full:push(1)) }
    end)
    assert.is_true(ok, "netio.run should return true")
    assert.are.same({ n = 3, true, nil, "closed" }, r.p,
      "a pop waiting at the stop should get nil, \"closed\"")
    assert.are.same({ n = 3, true, nil, "closed" }, r.s,
      "a push waiting at the stop should get nil, \"closed\"")
    assert.are.equal("in", r.pop, "values queued stay poppable after the stop")
    assert.are.same({ n = 1, true }, r.push, "a push that need not wait works after the stop")
    assert.is_true(netio.now() - t0 < 1.5, "the run should end without its stop grace")
  end)

  describe("bad input", function()
    it("raises_on_a_bad_max", function()
      H.run(function()
        is_error("bad argument #1 to 'queue' (max must be a positive integer)",
          raised(function() netio.queue(0) end))
        is_error("bad argument #1 to 'queue' (max must be a positive integer)",
          raised(function() netio.queue(-3) end))
        is_error("bad argument #1 to 'queue' (number has no integer representation)",
          raised(function() netio.queue(2.5) end))
        is_error("bad argument #1 to 'queue' (number has no integer representation)",
          raised(function() netio.queue(0 / 0) end))
        is_error("bad argument #1 to 'queue' (number expected, got table)",
          raised(function() netio.queue({}) end))
      end)
    end)

    it("raises_on_pushing_nil_and_on_bad_timeouts", function()
      H.run(function()
        local q = netio.queue(1)
        is_error("bad argument #1 to 'push' (non-nil value expected)",
          raised(function() q:push(nil) end))
        is_error("bad argument #1 to 'push' (value expected)",
          raised(function() q:push() end))
        is_error("bad argument #2 to 'push' (timeout must be a non-negative number)",
          raised(function() q:push(1, -1) end))
        is_error("bad argument #2 to 'push' (timeout must be a non-negative number)",
          raised(function() q:push(1, 0 / 0) end))
        is_error("bad argument #1 to 'pop' (timeout must be a non-negative number)",
          raised(function() q:pop(-0.5) end))
        is_error("bad argument #1 to 'pop' (number expected, got string)",
          raised(function() q:pop("soon") end))
        assert.are.equal(0, #q, "a bad push queued something")
      end)
    end)

    it("raises_on_calls_with_a_dot_or_on_another_object", function()
      H.run(function()
        local q, s = netio.queue(), netio.semaphore(0)
        is_error("bad argument #1 to 'pop' (netio.queue expected, got no value)",
          raised(function() q.pop() end))
        is_error("bad argument #1 to 'push' (netio.queue expected, got number)",
          raised(function() q.push(1) end))
        is_error("bad argument #1 to 'close' (netio.queue expected, got netio.semaphore)",
          raised(function() q.close(s) end))
      end)
    end)

    it("push_and_pop_that_have_to_wait_outside_a_task_raise", function()
      local q = H.run(function()
        local q = netio.queue(1)
        q:push(1)
        return q
      end)
      -- After its run: no task can wait.
      assert.are.equal("netio: push must be called from a netio task", raised(q.push, q, 2),
        "a push that has to wait, outside a task")
      assert.are.equal(1, q:pop(), "a pop that need not wait works anywhere")
      assert.are.equal("netio: pop must be called from a netio task", raised(q.pop, q),
        "a pop that has to wait, outside a task")
      assert.are.equal(true, q:push(3), "a push that need not wait works anywhere")
      assert.are.equal(1, #q, "#q after the push outside a task")
    end)
  end)
end)

describe("netio.cond", function()
  it("signal_wakes_one_waiter_and_says_how_many", function()
    local r = H.run(function()
      local cv = netio.cond()
      local none = cv:signal()
      local w = netio.spawn(function() return cv:wait(5) end)
      settle()
      return { none = none, one = cv:signal(), w = table.pack(w:join(2)) }
    end)
    assert.are.equal(0, r.none, "signal with nobody waiting")
    assert.are.equal(1, r.one, "signal with one waiter should say 1")
    assert.are.same({ n = 2, true, true }, r.w, "the signaled waiter's wait should return true")
  end)

  it("signal_wakes_waiters_in_order_and_broadcast_wakes_them_all", function()
    local r = H.run(function()
      local cv = netio.cond()
      local order, tasks = {}, {}
      for i = 1, 4 do
        tasks[i] = netio.spawn(function()
          assert(cv:wait(5))
          order[#order + 1] = i
        end)
        settle()
      end
      cv:signal()
      settle()
      local n = cv:broadcast()
      for i = 1, 4 do tasks[i]:join(2) end
      return { order = order, n = n, after = cv:broadcast() }
    end)
    assert.are.equal(3, r.n, "broadcast should wake the 3 tasks left")
    assert.are.same({ 1, 2, 3, 4 }, r.order,
      "waiters should be woken in the order they began to wait")
    assert.are.equal(0, r.after, "broadcast with nobody waiting should say 0")
  end)

  it("wait_times_out_and_a_timed_out_waiter_is_not_counted", function()
    local r = H.run(function()
      local cv = netio.cond()
      local dt, ok, err = H.timed(cv.wait, cv, 0.05)
      local w = netio.spawn(function() return cv:wait(0.05) end)
      settle()
      spin(0.1)
      netio.sleep(0) -- the loop sees w's timeout; this task runs first
      return { dt = dt, ok = ok, err = err, signal = cv:signal(), w = table.pack(w:join(2)) }
    end)
    assert.is_nil(r.ok, "cv:wait(0.05) should fail")
    assert.are.equal("timeout", r.err, "cv:wait(0.05) should give nil, \"timeout\"")
    assert.is_true(r.dt >= 0.04 and r.dt < 2, "wait(0.05) gave up after " .. r.dt .. " s")
    assert.are.equal(0, r.signal, "signal should skip a waiter whose timeout fired")
    assert.are.same({ n = 3, true, nil, "timeout" }, r.w,
      "the waiter whose timeout fired should give nil, \"timeout\"")
  end)

  it("a_canceled_waiter_is_skipped", function()
    local r = H.run(function()
      local cv = netio.cond()
      local a = netio.spawn(function() return cv:wait(5) end)
      local b = netio.spawn(function() return cv:wait(5) end)
      settle()
      a:cancel()
      return { n = cv:signal(), a = table.pack(a:join(2)), b = table.pack(b:join(2)) }
    end)
    assert.are.equal(1, r.n, "signal should wake the one waiter left")
    assert.are.same({ n = 2, nil, "canceled" }, r.a, "the canceled waiter should join as canceled")
    assert.are.same({ n = 2, true, true }, r.b, "the signal should go to the next waiter")
  end)

  it("the_stop_of_the_run_releases_waiters_with_closed", function()
    local ok, r = netio.run(function()
      local cv = netio.cond()
      local w = netio.spawn(function() return cv:wait() end)
      settle()
      netio.stop()
      return { w = table.pack(w:join(2)), after = table.pack(cv:wait(5)) }
    end)
    assert.is_true(ok, "netio.run should return true")
    assert.are.same({ n = 3, true, nil, "closed" }, r.w,
      "a wait at the stop should get nil, \"closed\"")
    assert.are.same({ n = 2, nil, "closed" }, r.after, "wait after the stop")
  end)

  it("raises_on_bad_input", function()
    H.run(function()
      local cv = netio.cond()
      is_error("bad argument #1 to 'wait' (timeout must be a non-negative number)",
        raised(function() cv:wait(-1) end))
      is_error("bad argument #1 to 'wait' (netio.cond expected, got no value)",
        raised(function() cv.wait() end))
      is_error("bad argument #1 to 'signal' (netio.cond expected, got netio.queue)",
        raised(function() cv.signal(netio.queue()) end))
      is_error("bad argument #1 to 'broadcast' (netio.cond expected, got number)",
        raised(function() cv.broadcast(1) end))
    end)
    local cv = H.run(function() return netio.cond() end)
    assert.are.equal("netio: wait must be called from a netio task", raised(cv.wait, cv),
      "cv:wait outside a task")
    assert.are.equal("netio: cond must be called from a netio task", raised(netio.cond),
      "netio.cond outside a run")
  end)
end)

-- The C building block under the three objects (netio.core.waitq): what
-- they rely on, checked directly.
describe("netio.core.waitq", function()
  it("counts_only_waiters_that_can_still_take_a_value", function()
    local r = H.run(function()
      local wq = netio.core.waitq()
      local res = { empty = { #wq, wq:wake(), wq:wakeall() } }
      local a = netio.spawn(function() return wq:wait(0.05) end)
      local b = netio.spawn(function() return wq:wait(5) end)
      local c = netio.spawn(function() return wq:wait(5) end)
      settle()
      res.three = #wq
      b:cancel()
      res.after_cancel = #wq
      spin(0.1)
      netio.sleep(0) -- the loop sees a's timeout
      res.after_timeout = #wq
      res.wake = wq:wake(false)
      res.left = #wq
      res.a, res.b, res.c = table.pack(a:join(2)), table.pack(b:join(2)), table.pack(c:join(2))
      return res
    end)
    assert.are.same({ 0, false, 0 }, r.empty, "#wq, wake(), wakeall() with nobody waiting")
    assert.are.equal(3, r.three, "#wq with three waiters")
    assert.are.equal(2, r.after_cancel, "a canceled waiter should not be counted")
    assert.are.equal(1, r.after_timeout, "a waiter whose timeout fired should not be counted")
    assert.are.equal(true, r.wake, "wake() with one waiter left")
    assert.are.equal(0, r.left, "#wq after the last waiter was woken")
    assert.are.same({ n = 3, true, nil, "timeout" }, r.a, "the waiter whose timeout fired")
    assert.are.same({ n = 2, nil, "canceled" }, r.b, "the canceled waiter")
    assert.are.same({ n = 2, true, false }, r.c, "the value handed, false included")
  end)

  it("wakeall_hands_the_value_to_every_waiter_and_close_ends_every_wait", function()
    local r = H.run(function()
      local wq = netio.core.waitq()
      local t = {}
      for i = 1, 3 do t[i] = netio.spawn(function() return wq:wait(5) end) end
      settle()
      local res = { n = wq:wakeall("x"), got = {} }
      for i = 1, 3 do res.got[i] = select(2, t[i]:join(2)) end
      local w = netio.spawn(function() return wq:wait(5) end)
      settle()
      wq:close()
      res.closed = table.pack(w:join(2))
      res.later = table.pack(wq:wait(5))
      res.after = { wq:wake(), wq:wakeall(), #wq }
      return res
    end)
    assert.are.equal(3, r.n, "wakeall should say how many it woke")
    assert.are.same({ "x", "x", "x" }, r.got, "every waiter should get the value of wakeall")
    assert.are.same({ n = 3, true, nil, "closed" }, r.closed, "a wait when close() is called")
    assert.are.same({ n = 2, nil, "closed" }, r.later, "a wait after close()")
    assert.are.same({ false, 0, 0 }, r.after, "wake, wakeall and # of a closed waitq")
  end)

  it("a_value_handed_before_the_stop_is_still_returned", function()
    local ok, r = netio.run(function()
      local wq = netio.core.waitq()
      local a = netio.spawn(function() return wq:wait() end)
      local b = netio.spawn(function() return wq:wait() end)
      settle()
      wq:wake("mine")
      netio.stop() -- closes the waitq before a ran
      settle()
      return { a = table.pack(a:join(2)), b = table.pack(b:join(2)) }
    end)
    assert.is_true(ok, "netio.run should return true")
    assert.are.same({ n = 2, true, "mine" }, r.a,
      "the waiter handed a value before the stop should return it")
    assert.are.same({ n = 3, true, nil, "closed" }, r.b,
      "the other waiter should get nil, \"closed\"")
  end)
end)
