-- nested_spec.lua: netio calls that wait inside a plain coroutine of a task
-- (coroutine.wrap / coroutine.resume) wait for the whole task, as in
-- OpenResty, and the coroutine goes on where it was; other yields pass
-- through unchanged.

local H = require "helper"
local netio = H.netio

describe("a netio call in a plain coroutine inside a task", function()
  it("an_iterator_made_with_coroutine_wrap_reads_a_socket", function()
    local got = H.run(function()
      local c, s = H.pair()
      netio.spawn(function()
        for i = 1, 5 do
          netio.sleep(0.01)
          c:send(("line %d\n"):format(i))
        end
        c:close()
      end)
      local function lines(conn)
        return coroutine.wrap(function()
          while true do
            local l = conn:recv("*l")
            if not l then return end
            coroutine.yield(l)
          end
        end)
      end
      local out = {}
      for l in lines(s) do out[#out + 1] = l end
      return out
    end)
    assert.are.same({ "line 1", "line 2", "line 3", "line 4", "line 5" }, got,
      "the iterator should give every line, in order")
  end)

  it("other_tasks_run_while_it_waits", function()
    local order = H.run(function()
      local o = {}
      netio.spawn(function() o[#o + 1] = "other" end)
      coroutine.wrap(function()
        netio.sleep(0.02)
        o[#o + 1] = "nested woke"
      end)()
      return o
    end)
    assert.are.same({ "other", "nested woke" }, order)
  end)

  it("waits_through_two_levels_of_coroutines_and_passes_plain_yields", function()
    local r = H.run(function()
      local co = coroutine.create(function(a)
        local inner = coroutine.wrap(function()
          netio.sleep(0.01)
          coroutine.yield("inner")
          netio.sleep(0.01)
          return "done"
        end)
        local x = inner()
        local y = coroutine.yield(a .. x)
        return y .. inner()
      end)
      local r1 = table.pack(coroutine.resume(co, "A"))
      local r2 = table.pack(coroutine.resume(co, "B"))
      return { r1, r2, coroutine.status(co) }
    end)
    assert.are.same({ n = 2, true, "Ainner" }, r[1])
    assert.are.same({ n = 2, true, "Bdone" }, r[2])
    assert.are.equal("dead", r[3])
  end)

  it("an_error_after_a_wait_goes_to_the_resumer", function()
    local ok, err = H.run(function()
      return pcall(coroutine.wrap(function()
        netio.sleep(0.01)
        error("boom")
      end))
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("boom", 1, true), tostring(err))
    local ok2, err2 = H.run(function()
      local co = coroutine.create(function()
        netio.sleep(0.01)
        error({ code = 7 })
      end)
      return coroutine.resume(co)
    end)
    assert.is_false(ok2)
    assert.are.same({ code = 7 }, err2)
  end)

  it("a_resumer_that_cannot_yield_gets_a_clear_error_and_the_task_goes_on", function()
    local r = H.run(function()
      local w = coroutine.wrap(function() netio.sleep(0.01) return 1 end)
      local ok, err = pcall(table.sort, { 3, 2, 1 }, function(a, b)
        w()
        return a < b
      end)
      netio.sleep(0.01) -- the task still works
      return { ok = ok, err = tostring(err) }
    end)
    assert.is_false(r.ok)
    assert.truthy(r.err:find("cannot yield", 1, true), r.err)
  end)

  it("the_task_can_be_canceled_while_a_coroutine_of_it_waits", function()
    local r = H.run(function()
      local closed = false
      local t = netio.spawn(function()
        coroutine.wrap(function()
          local _ <close> = setmetatable({}, { __close = function() closed = true end })
          netio.sleep(10)
        end)()
      end)
      netio.sleep(0.02)
      t:cancel()
      return { table.pack(t:join(2)), closed }
    end)
    assert.are.same({ n = 2, nil, "canceled" }, r[1])
    assert.is_true(r[2], "the coroutine's <close> variable should have run")
  end)

  it("intask_is_false_in_a_plain_coroutine", function()
    local v = H.run(function()
      return coroutine.wrap(function() return netio.intask() end)()
    end)
    assert.is_false(v)
  end)
end)
