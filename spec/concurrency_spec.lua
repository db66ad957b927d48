-- concurrency_spec.lua: hundreds of tasks and connections at once.
local H = require "helper"
local netio = H.netio

describe("many tasks", function()
  it("500_clients_echo_5_messages_each_through_one_server", function()
    local clients, messages = 500, 5
    local r = H.run(function()
      local _, port = H.server(H.echo)
      local live, peak = 0, 0
      local tasks = {}
      for i = 1, clients do
        tasks[i] = netio.spawn(function()
          local c, err = netio.connect("127.0.0.1:" .. port, { timeout = 10 })
          if not c then return 0, "connect: " .. tostring(err) end
          c:settimeout(10)
          live = live + 1
          if live > peak then peak = live end
          local good = 0
          for m = 1, messages do
            -- Lengths vary so lines cross segment boundaries differently.
            local msg = ("%d:%d:"):format(i, m) .. ("x"):rep((i * 31 + m * 17) % 700)
            if not c:send(msg .. "\n") then break end
            if c:recv("*l") ~= msg then break end
            good = good + 1
            -- Let every client hold its connection until all are open.
            if m == 1 then netio.sleep(0.2) end
          end
          live = live - 1
          c:close()
          return good
        end)
      end
      local total, failures = 0, {}
      for i = 1, clients do
        local ok, good, why = tasks[i]:join(30)
        if ok and good then total = total + good end
        if why and #failures < 5 then failures[#failures + 1] = why end
      end
      return { total = total, peak = peak, why = table.concat(failures, "; ") }
    end, 60)
    assert.are.equal(clients * messages, r.total, r.why)
    assert.is_true(r.peak >= 400,
      "only " .. r.peak .. " connections were open at once")
  end)

  it("1000_sleeping_tasks_all_wake_and_join", function()
    -- Wake order across tasks is pinned in run_spec (a few tasks, far
    -- apart); here 1000 timers in 10 groups must all fire, each once.
    local r = H.run(function()
      local tasks, woke = {}, {}
      for i = 1, 1000 do
        tasks[i] = netio.spawn(function()
          netio.sleep(0.005 * (i % 10))
          woke[i] = (woke[i] or 0) + 1
          return i
        end)
      end
      local joined, once = 0, 0
      for i = 1, 1000 do
        local ok, v = tasks[i]:join(10)
        if ok and v == i then joined = joined + 1 end
        if woke[i] == 1 then once = once + 1 end
      end
      return { joined = joined, once = once }
    end, 30)
    assert.are.equal(1000, r.joined)
    assert.are.equal(1000, r.once)
  end)

  it("500_tasks_wait_on_one_listener_and_each_gets_one_connection", function()
    local got = H.run(function()
      local l, port = H.listen("127.0.0.1:0", { backlog = 1024 })
      local waiting = {}
      for i = 1, 500 do
        waiting[i] = netio.spawn(function()
          local s = l:accept(10)
          if not s then return nil end
          H.track(s)
          local d = s:recv("*l", 5)
          s:send("ok " .. tostring(d) .. "\n")
          return d
        end)
      end
      local clients = {}
      for i = 1, 500 do
        clients[i] = netio.spawn(function()
          local c = H.connect("127.0.0.1:" .. port)
          c:send("c" .. i .. "\n")
          local reply = c:recv("*l", 5)
          c:close()
          return reply == "ok c" .. i
        end)
      end
      local served, replied = {}, 0
      for i = 1, 500 do
        local _, d = waiting[i]:join(10)
        if d then served[d] = (served[d] or 0) + 1 end
        local _, okr = clients[i]:join(10)
        if okr then replied = replied + 1 end
      end
      local distinct = 0
      for _, count in pairs(served) do
        if count == 1 then distinct = distinct + 1 end
      end
      return { distinct = distinct, replied = replied }
    end, 60)
    assert.are.equal(500, got.distinct)
    assert.are.equal(500, got.replied)
  end)
end)
