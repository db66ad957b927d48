-- message_spec.lua: the run's mailbox -- netio.post from tasks and netio
-- threads, netio.receive in tasks: values copied, FIFO among waiting
-- tasks, timeouts, "busy", misuse, and the order of many messages from
-- several threads.
local H = require "helper"
local netio = H.netio
local raised, is_error = H.raised, H.is_error

describe("netio.post and netio.receive", function()
  describe("between tasks", function()
    it("a_posted_message_is_received_with_copies_of_its_values", function()
      local r = H.run(function()
        local tab = { 1, 2.0, inner = { "x" } }
        local receiver = netio.spawn(function() return table.pack(netio.receive(5)) end)
        netio.sleep(0)
        local posted = table.pack(netio.post("s", 7, 7.0, tab, true, nil))
        tab.inner[1] = "changed after post"
        local _, got = receiver:join(5)
        return { posted = posted, got = got, same = rawequal(got[4], tab) }
      end)
      assert.are.same({ n = 1, true }, r.posted, "netio.post in a task should return true")
      local g = r.got
      assert.are.equal(6, g.n, "every value should arrive, the trailing nil included")
      assert.are.equal("s", g[1], "a string")
      assert.are.equal("integer", math.type(g[2]), "7 should stay an integer")
      assert.are.equal("float", math.type(g[3]), "7.0 should stay a float")
      assert.are.same({ 1, 2.0, inner = { "x" } }, g[4],
        "the table should arrive as it was when posted")
      assert.are.equal("float", math.type(g[4][2]), "a float in a table stays a float")
      assert.is_false(r.same, "the receiver should get a copy, not the table itself")
      assert.are.equal(true, g[5], "a boolean")
      assert.is_nil(g[6], "the trailing nil")
    end)

    it("a_task_may_receive_its_own_message_at_once", function()
      local r = H.run(function()
        assert(netio.post("mine"))
        return table.pack(H.timed(netio.receive, 5))
      end)
      assert.are.equal("mine", r[2], "the message waiting should be returned")
      assert.is_true(r[1] < 0.5, "receive should not wait for a message already there")
    end)

    it("messages_are_received_in_the_order_posted", function()
      local r = H.run(function()
        for i = 1, 500 do assert(netio.post(i)) end
        local got = {}
        for i = 1, 500 do got[i] = netio.receive(1) end
        return got
      end)
      for i = 1, 500 do
        assert.are.equal(i, r[i], "message " .. i .. " should be received " .. i .. "th")
      end
    end)

    it("waiting_tasks_get_messages_in_the_order_they_began_to_wait", function()
      local r = H.run(function()
        local order, tasks = {}, {}
        for i = 1, 4 do
          tasks[i] = netio.spawn(function()
            order[#order + 1] = i
            return netio.receive(5)
          end)
        end
        netio.sleep(0.05) -- all four wait now, in spawn order
        for _, m in ipairs({ "a", "b", "c", "d" }) do assert(netio.post(m)) end
        local got = {}
        for i = 1, 4 do got[i] = select(2, tasks[i]:join(5)) end
        return { order = order, got = got }
      end)
      assert.are.same({ 1, 2, 3, 4 }, r.order, "the receivers began to wait in spawn order")
      assert.are.same({ "a", "b", "c", "d" }, r.got,
        "the first task to wait should get the first message, and so on")
    end)

    it("waiting_tasks_get_messages_from_a_thread_in_the_order_they_began_to_wait", function()
      local r = H.run(function()
        local tasks = {}
        for i = 1, 3 do tasks[i] = netio.spawn(function() return netio.receive(5) end) end
        netio.sleep(0.05)
        local t = netio.thread(function()
          local n = require "netio"
          for _, m in ipairs({ "x", "y", "z" }) do assert(n.post(m)) end
        end)
        local got = {}
        for i = 1, 3 do got[i] = select(2, tasks[i]:join(5)) end
        t:join(5)
        return got
      end)
      assert.are.same({ "x", "y", "z" }, r,
        "messages from a thread should go to the waiting tasks in their order")
    end)

    it("a_receiver_that_timed_out_takes_no_message", function()
      local r = H.run(function()
        local early = netio.spawn(function() return table.pack(netio.receive(0.05)) end)
        local late = netio.spawn(function() netio.sleep(0.01) return netio.receive(5) end)
        local _, e = early:join(5)
        assert(netio.post("for late"))
        local _, l = late:join(5)
        return { early = e, late = l }
      end)
      assert.are.same({ n = 2, nil, "timeout" }, r.early, "receive(0.05): nil, 'timeout'")
      assert.are.equal("for late", r.late, "the message should go to the task still waiting")
    end)

    it("receive_times_out", function()
      local r = H.run(function()
        local dt, v, err = H.timed(netio.receive, 0.2)
        local zero = table.pack(H.timed(netio.receive, 0))
        return { dt = dt, v = v, err = err, zero = zero }
      end)
      assert.is_nil(r.v, "receive(0.2) with no message should fail")
      assert.are.equal("timeout", r.err, "receive(0.2) with no message: nil, 'timeout'")
      assert.is_true(r.dt >= 0.18 and r.dt < 1.5, "receive(0.2) waited " .. r.dt .. " s")
      assert.is_nil(r.zero[2], "receive(0) with no message should fail")
      assert.are.equal("timeout", r.zero[3], "receive(0) with no message: nil, 'timeout'")
      assert.is_true(r.zero[1] < 0.5, "receive(0) should not wait, took " .. r.zero[1] .. " s")
    end)

    it("messages_left_at_the_end_of_a_run_do_not_reach_the_next_run", function()
      H.run(function() assert(netio.post("stale")) end)
      local r = H.run(function() return table.pack(netio.receive(0.05)) end)
      assert.are.same({ n = 2, nil, "timeout" }, r,
        "a new run's receive should not get a message of an earlier run")
    end)

    it("post_answers_busy_when_64_MiB_wait_unreceived", function()
      local big = ("p"):rep(33 * 1024 * 1024)
      local r = H.run(function()
        local res = { first = table.pack(netio.post(big)),
                      second = table.pack(netio.post(big)) }
        local got = netio.receive(1)
        res.got = got and #got
        res.again = table.pack(netio.post(big))
        local again = netio.receive(1)
        res.got_again = again and #again
        return res
      end, 30)
      assert.are.same({ n = 1, true }, r.first, "the first 33 MiB post: true")
      assert.are.same({ n = 2, nil, "busy" }, r.second,
        "a second 33 MiB post while the first waits unreceived: nil, 'busy'")
      assert.are.equal(33 * 1024 * 1024, r.got, "the first message should be received whole")
      assert.are.same({ n = 1, true }, r.again, "once received, there is room again")
      assert.are.equal(33 * 1024 * 1024, r.got_again, "the later message should arrive")
    end)
  end)

  describe("from netio threads", function()
    it("many_messages_from_3_threads_keep_per_thread_order", function()
      local per_thread = 3000
      local r = H.run(function()
        local ts = {}
        for k = 1, 3 do
          ts[k] = netio.thread(function(id, count)
            local n = require "netio"
            local refused = 0
            for i = 1, count do
              local ok, err = n.post(id, i, { i })
              while not ok and err == "busy" do
                n.receive(0.001)
                ok, err = n.post(id, i, { i })
              end
              if not ok then refused = refused + 1 end
            end
            return refused
          end, k, per_thread)
        end
        local last, total, bad = {}, 0, nil
        while total < 3 * per_thread do
          local k, i, tab = netio.receive(10)
          if k == nil then bad = bad or ("receive: " .. tostring(i)) break end
          if i ~= (last[k] or 0) + 1 or tab[1] ~= i then
            bad = bad or ("thread %d: message %s after %d"):format(k, tostring(i), last[k] or 0)
          end
          last[k] = i
          total = total + 1
        end
        local refused = {}
        for k = 1, 3 do refused[k] = select(2, ts[k]:join(10)) end
        return { total = total, bad = bad, refused = refused, last = last }
      end, 30)
      assert.are.same({ 0, 0, 0 }, r.refused,
        "every netio.post from the threads should be accepted")
      assert.is_nil(r.bad, "each thread's messages should arrive in order")
      assert.are.equal(3 * per_thread, r.total, "every message should arrive once")
      assert.are.same({ per_thread, per_thread, per_thread }, r.last,
        "the last message of each thread should arrive")
    end)

    it("post_from_a_thread_returns_closed_once_its_run_ended", function()
      local ok, t = netio.run(function()
        return netio.thread(function()
          local n = require "netio"
          local v, err = n.receive() -- nil, "closed" at the end of the run
          return v, err, n.post("too late")
        end)
      end)
      assert.is_true(ok, "the run should end normally")
      assert.are.same({ n = 5, true, nil, "closed", nil, "closed" }, table.pack(t:join()),
        "after its run ended, netio.post in the thread should return nil, 'closed'")
    end)

    it("post_from_a_thread_raises_without_a_value_and_on_values_that_cannot_be_copied", function()
      local r = H.run(function()
        local t = netio.thread(function()
          local n = require "netio"
          return select(2, pcall(function() return n.post() end)),
                 select(2, pcall(function() return n.post(1, print) end)),
                 select(2, pcall(function() return n.post({ {}, coroutine.create(print) }) end))
        end)
        return table.pack(t:join(5))
      end)
      assert.are.equal(true, r[1], "the thread should run: " .. tostring(r[2]))
      is_error("bad argument #1 to 'post' (value expected)", r[2])
      is_error("bad argument #2 to 'post' (cannot copy a function)", r[3])
      is_error("bad argument #1 to 'post' (cannot copy a coroutine (in a table))", r[4])
    end)
  end)

  describe("misuse", function()
    it("post_raises_without_a_value_or_with_values_that_cannot_be_copied", function()
      local r = H.run(function()
        local c = H.pair()
        return { raised(function() return netio.post() end),
                 raised(function() return netio.post(print) end),
                 raised(function() return netio.post(1, c) end),
                 raised(function() return netio.post(1, 2, { x = coroutine.create(print) }) end) }
      end)
      is_error("bad argument #1 to 'post' (value expected)", r[1])
      is_error("bad argument #1 to 'post' (cannot copy a function)", r[2])
      is_error("bad argument #2 to 'post' (cannot copy a userdata)", r[3])
      is_error("bad argument #3 to 'post' (cannot copy a coroutine (in a table))", r[4])
    end)

    it("receive_raises_on_a_bad_timeout", function()
      local r = H.run(function()
        return { raised(function() return netio.receive(-1) end),
                 raised(function() return netio.receive("soon") end) }
      end)
      is_error("bad argument #1 to 'receive' (timeout must be a non-negative number)", r[1])
      is_error("bad argument #1 to 'receive' (number expected, got string)", r[2])
    end)

    it("post_outside_a_run_raises", function()
      local ok, err = pcall(netio.post, "x")
      assert.is_false(ok, "netio.post outside a run should raise")
      assert.are.equal("netio: post must be called from a netio task or thread", err)
    end)

    it("receive_outside_a_run_raises", function()
      local ok, err = pcall(netio.receive, 0)
      assert.is_false(ok, "netio.receive outside a run should raise")
      assert.are.equal("netio: receive must be called from a netio task", err)
    end)

    it("receive_in_a_plain_coroutine_inside_a_task_waits_for_the_task", function()
      local r = H.run(function()
        netio.spawn(function() netio.sleep(0.02) netio.post("late") end)
        return table.pack(coroutine.wrap(function() return netio.receive(2) end)())
      end)
      assert.are.same({ n = 1, "late" }, r,
        "netio.receive in a plain coroutine inside a task should wait for the message")
    end)

    it("post_in_a_plain_coroutine_inside_a_task_works", function()
      -- It does not wait, so a coroutine of the run may call it too.
      local r = H.run(function()
        local ok = coroutine.wrap(function() return netio.post("x") end)()
        return table.pack(ok, netio.receive(1))
      end)
      assert.are.same({ n = 2, true, "x" }, r,
        "netio.post in a plain coroutine inside a task should post")
    end)
  end)
end)
