-- receive_spec.lua: conn:receiveuntil (its reader, fuzzed against a plain
-- Lua reference) and conn:receiveany, OpenResty's cosocket reads.
local H = require "helper"
local netio = H.netio

local function with_pair(body, limit)
  return H.run(function()
    local c, s = H.pair()
    c:settimeout(5)
    s:settimeout(5)
    return body(c, s)
  end, limit)
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

-- Assert that a call returned exactly the values in want (n values).
local function returns(what, want, ...)
  local got = table.pack(...)
  local ok = got.n == want.n
  for i = 1, math.max(got.n, want.n) do
    if got[i] ~= want[i] then ok = false end
  end
  if not ok then
    local g, w = {}, {}
    for i = 1, got.n do g[i] = show(got[i]) end
    for i = 1, want.n do w[i] = show(want[i]) end
    error(("%s: expected (%s), got (%s)"):format(what, table.concat(w, ", "),
      table.concat(g, ", ")), 2)
  end
end

local function R(...) return table.pack(...) end

describe("conn:receiveuntil()", function()
  it("reader_returns_the_data_before_the_pattern_and_consumes_it", function()
    with_pair(function(c, s)
      assert(c:send("hello, world\r\n--abc rest"))
      local reader = s:receiveuntil("\r\n--abc")
      returns("reader()", R("hello, world"), reader())
      returns("recv(5) after the pattern", R(" rest"), s:recv(5))
    end)
  end)

  it("reader_inclusive_returns_the_pattern_too", function()
    with_pair(function(c, s)
      assert(c:send("hello world _END_ blah"))
      local reader = s:receiveuntil("_END_", { inclusive = true })
      returns("reader()", R("hello world _END_"), reader())
      returns("recv(5)", R(" blah"), s:recv(5))
    end)
  end)

  it("reader_with_size_returns_pieces_then_nil_at_the_pattern", function()
    with_pair(function(c, s)
      assert(c:send("hello, world! -agentzh\r\n--abcedhb blah blah"))
      local reader = s:receiveuntil("\r\n--abcedhb")
      for _, want in ipairs({ "hell", "o, w", "orld", "! -a", "gent", "zh" }) do
        returns("reader(4)", R(want), reader(4))
      end
      returns("reader(4) at the pattern", R(nil, nil), reader(4))
      -- The next call starts the next search.
      assert(c:send("\r\n--abcedhb"))
      returns("the next search", R(" blah blah"), reader())
    end)
  end)

  it("reader_with_size_when_the_data_is_a_multiple_of_size", function()
    with_pair(function(c, s)
      assert(c:send("abcdXY"))
      local reader = s:receiveuntil("XY")
      returns("reader(2)", R("ab"), reader(2))
      returns("reader(2)", R("cd"), reader(2))
      returns("reader(2) at the pattern", R(nil, nil), reader(2))
    end)
  end)

  it("reader_finds_a_pattern_split_across_receives", function()
    with_pair(function(c, s)
      netio.spawn(function()
        for _, piece in ipairs({ "data--ab", "c--a", "bd", "tail" }) do
          c:send(piece)
          c:flush()
          netio.sleep(0.02)
        end
      end)
      local reader = s:receiveuntil("--abc--abd")
      returns("reader()", R("data"), reader())
      returns("recv(4)", R("tail"), s:recv(4))
    end)
  end)

  it("reader_matches_patterns_with_repeated_prefixes", function()
    with_pair(function(c, s)
      assert(c:send("x--abc--abc--abd!aaab!"))
      returns("--abc--abd", R("x--abc"), s:receiveuntil("--abc--abd")())
      returns("aab", R("!a"), s:receiveuntil("aab")())
      returns("the rest", R("!"), s:recv(1))
    end)
  end)

  it("reader_at_eof_returns_closed_and_the_partial", function()
    with_pair(function(c, s)
      assert(c:send("no pattern --ab"))
      c:close()
      local reader = s:receiveuntil("--abc")
      returns("reader() at EOF", R(nil, "closed", "no pattern --ab"), reader())
      returns("reader() again", R(nil, "closed", ""), reader())
    end)
  end)

  it("reader_timeout_returns_timeout_and_the_partial", function()
    with_pair(function(c, s)
      assert(c:send("partial --a"))
      s:settimeout(0.05)
      local reader = s:receiveuntil("--abc")
      returns("reader() timeout", R(nil, "timeout", "partial --a"), reader())
      -- What it returned is consumed: the stream goes on after it.
      s:settimeout(5)
      assert(c:send("bc more--abc"))
      returns("reader() after the timeout", R("bc more"), reader())
    end)
  end)

  it("reader_over_max_input_returns_too_large", function()
    with_pair(function(c, s)
      assert(s:setoption("max-input", 10))
      assert(c:send("0123456789ABCDEF|tail|"))
      local reader = s:receiveuntil("|")
      returns("reader() over max-input", R(nil, "too large", "0123456789"),
        reader())
      returns("the rest of the data", R("ABCDEF"), reader())
      returns("the next search", R("tail"), reader())
      -- A size above the cap is capped the same way.
      assert(s:setoption("max-input", 3))
      assert(c:send("abcdefg|"))
      returns("reader(5) over max-input", R(nil, "too large", "abc"), reader(5))
      returns("reader(2)", R("de"), reader(2))
    end)
  end)

  it("reader_fails_with_what_it_holds_when_max_input_is_lowered_under_it", function()
    with_pair(function(c, s)
      local reader = s:receiveuntil("|")
      local t = netio.spawn(function() return reader() end)
      assert(c:send("0123456789"))
      netio.sleep(0.05)
      assert(s:setoption("max-input", 5))
      assert(c:send("x"))
      local ok, a, b, p = t:join(5)
      assert(ok, "the reader's task did not end")
      returns("the waiting reader", R(nil, "too large", "0123456789"), a, b, p)
      assert(c:send("|"))
      returns("the next reader() call", R("x"), reader())
    end)
  end)

  it("reader_of_a_large_body_across_many_receives", function()
    with_pair(function(c, s)
      local body = H.data(3 * 1024 * 1024, 7):gsub("%-%-", "==")
      netio.spawn(function() c:send({ body, "--END--", "after" }) end)
      local got = s:receiveuntil("--END--")()
      H.same(body, got, "a 3 MiB body before the pattern")
      returns("recv(5)", R("after"), s:recv(5))
    end, 20)
  end)

  it("reader_with_a_64_KiB_pattern", function()
    with_pair(function(c, s)
      local pat = H.data(64 * 1024, 3)
      netio.spawn(function() c:send({ "head", pat:sub(1, 100), pat, "tail" }) end)
      local got = s:receiveuntil(pat)()
      H.same("head" .. pat:sub(1, 100), got, "the data before a 64 KiB pattern")
      returns("recv(4)", R("tail"), s:recv(4))
    end)
  end)

  it("receiveuntil_rejects_bad_patterns_and_options", function()
    with_pair(function(_, s)
      local function ru(...)
        local args = table.pack(...)
        return H.raised(function() return s:receiveuntil(table.unpack(args, 1, args.n)) end)
      end
      H.has("bad argument #1 to 'receiveuntil' (empty pattern)", ru(""))
      H.has("bad argument #1 to 'receiveuntil' (string expected, got number)", ru(12))
      H.has("bad argument #1 to 'receiveuntil' (string expected, got table)", ru({}))
      H.has("bad argument #1 to 'receiveuntil' (string expected, got no value)", ru())
      H.has("bad argument #1 to 'receiveuntil' (pattern longer than 64 KiB)",
        ru(("x"):rep(64 * 1024 + 1)))
      H.has("bad argument #2 to 'receiveuntil' (unknown option 'inclusiv')",
        ru("x", { inclusiv = true }))
      H.has("bad argument #2 to 'receiveuntil' (table expected, got boolean)",
        ru("x", true))
      assert(s:receiveuntil(("x"):rep(64 * 1024)), "a 64 KiB pattern is refused")
      local reader = s:receiveuntil("x")
      H.has("bad argument #1 to 'reader' (size must be positive)",
        H.raised(function() return reader(0) end))
      H.has("(size must be positive)", H.raised(function() return reader(-1) end))
      H.has("(number has no integer representation)",
        H.raised(function() return reader(1.5) end))
      H.has("(number expected, got string)", H.raised(function() return reader("4") end))
    end)
  end)

  it("reader_after_close_returns_closed", function()
    with_pair(function(c, s)
      local reader = s:receiveuntil("x")
      s:close()
      returns("reader() after close", R(nil, "closed", ""), reader())
      returns("receiveuntil after close", R(nil, "closed"), s:receiveuntil("x"))
      c:close()
    end)
  end)

  it("reader_waiting_gets_closed_when_its_connection_closes", function()
    with_pair(function(c, s)
      local reader = s:receiveuntil("--")
      local t = netio.spawn(function() return reader() end)
      assert(c:send("abc-"))
      netio.sleep(0.05)
      s:close()
      local ok, a, b, p = t:join(5)
      assert(ok, "the reader's task did not end")
      returns("reader() closed while waiting", R(nil, "closed", "abc-"), a, b, p)
    end)
  end)

  it("a_canceled_reader_leaves_its_bytes_for_the_next_read", function()
    with_pair(function(c, s)
      local reader = s:receiveuntil("--abc")
      local t = netio.spawn(function() return reader() end)
      assert(c:send("0123456789--ab"))
      netio.sleep(0.05)
      t:cancel()
      local ok, err = t:join(5)
      assert(ok == nil and err == "canceled", "the reader's task was not canceled: "
        .. tostring(err))
      returns("recv(14) after the cancel", R("0123456789--ab"), s:recv(14))
    end)
  end)

  it("two_readers_interleaved_share_the_stream", function()
    with_pair(function(c, s)
      assert(c:send("a1;b1|a2;b2|"))
      local ra, rb = s:receiveuntil(";"), s:receiveuntil("|")
      returns("ra", R("a1"), ra())
      returns("rb", R("b1"), rb())
      returns("ra", R("a2"), ra())
      returns("rb", R("b2"), rb())
    end)
  end)

  it("a_second_concurrent_reader_is_busy", function()
    with_pair(function(c, s)
      local reader = s:receiveuntil("|")
      local t = netio.spawn(function() return reader() end)
      netio.sleep(0.02)
      returns("reader() in a second task", R(nil, "busy", ""), reader())
      returns("recv() in a second task", R(nil, "busy", ""), s:recv())
      assert(c:send("done|"))
      local ok, v = t:join(5)
      assert(ok and v == "done", "the first reader did not get its data")
    end)
  end)

  it("reader_outside_a_task_raises", function()
    local reader = with_pair(function(_, s) return s:receiveuntil("x") end)
    H.has("must be called from a netio task", H.raised(reader))
  end)
end)

-- The fuzz's own code reads no globals: busted's environment makes every
-- global lookup a chain of metatables.
local find, sub, char, unpack, pack = string.find, string.sub, string.char,
  table.unpack, table.pack
local huge, select_ = math.huge, select

-- The reference: what a reader call returns, from the whole input st.s at
-- st.pos (the input holds the pattern at or after st.pos).
local function ref_call(st, size)
  if st.done then
    st.done = false
    return nil, nil
  end
  local a, b = find(st.s, st.pat, st.pos, true)
  local d = a - st.pos
  local max = st.max or huge
  local piece = size ~= nil and size <= max
  local stop = piece and size or max + 1
  if d >= stop then
    if piece then
      local r = sub(st.s, st.pos, st.pos + size - 1)
      st.pos = st.pos + size
      return r
    end
    local r = sub(st.s, st.pos, st.pos + max - 1)
    st.pos = st.pos + max
    return nil, "too large", r
  end
  local data = sub(st.s, st.pos, st.incl and b or a - 1)
  st.pos = b + 1
  if size then
    if d == 0 and not st.incl then return nil, nil end
    st.done = true
  end
  return data
end

-- A random case: a pattern, an input and the calls with what each returns
-- (calls[k] = { size, n, v1, v2, v3 }).
local codes = {}
local function make_case(rnd)
  local k = rnd(2) + 1 -- "ab" or "abc": the pattern occurs often
  local function word(n)
    for i = 1, n do codes[i] = 96 + rnd(k) end
    return char(unpack(codes, 1, n))
  end
  local pat = word(rnd(5))
  local st = {
    pat = pat, pos = 1, done = false, incl = rnd(2) == 1,
    max = rnd(5) == 1 and rnd(12) or nil,
  }
  st.s = word(rnd(40) - 1) .. (rnd(2) == 1 and "#" or "") .. pat
  local calls = {}
  while st.done or st.pos <= #st.s do
    -- Overlaps may leave a tail with no pattern: end it with one.
    if not st.done and not find(st.s, pat, st.pos, true) then
      st.s = st.s .. "#" .. pat
    end
    local size = rnd(3) > 1 and rnd(8) or nil
    local r = pack(ref_call(st, size))
    calls[#calls + 1] = { size, r.n, r[1], r[2], r[3] }
  end
  return { pat = pat, incl = st.incl, max = st.max, input = st.s, calls = calls }
end

-- Compare a reader's returns with the reference's; false, message if not.
local function check(call, ...)
  local n, v1, v2, v3 = select_("#", ...), ...
  if n == call[2] and v1 == call[3] and v2 == call[4] and v3 == call[5] then
    return true
  end
  local g, w = table.pack(...), {}
  for v = 1, g.n do g[v] = show(g[v]) end
  for v = 1, call[2] do w[v] = show(call[v + 2]) end
  return false, ("expected (%s), got (%s)"):format(table.concat(w, ", "),
    table.concat(g, ", ", 1, g.n))
end

describe("receiveuntil fuzzed against a reference", function()
  it("every_reader_return_matches_the_reference_over_random_splits", function()
    -- Under Wine every send and flush is many times slower (40 s for 100k
    -- cases): the matcher gets its 100k cases on Linux, the IOCP receive
    -- path a quarter of them.
    local ncases = tonumber(os.getenv("NETIO_RU_FUZZ_CASES"))
      or (H.wine and 25000 or 100000)
    local seed = tonumber(os.getenv("NETIO_RU_FUZZ_SEED")) or os.time()
    math.randomseed(seed)
    local rnd = math.random
    local ncalls, done = 0, 0
    with_pair(function(c, s)
      while done < ncases do
        -- A batch of cases whose inputs the peer sends back to back, in
        -- random pieces (a piece boundary may fall anywhere in a pattern),
        -- each pushed to the kernel before the next.
        local cases, stream = {}, {}
        for i = 1, math.min(2000, ncases - done) do
          cases[i] = make_case(rnd)
          stream[i] = cases[i].input
        end
        stream = table.concat(stream)
        local sender = netio.spawn(function()
          local pos = 1
          while pos <= #stream do
            local n = rnd(4) == 1 and rnd(200) or rnd(24)
            assert(c:send(stream:sub(pos, pos + n - 1)))
            assert(c:flush())
            pos = pos + n
          end
        end)
        for i, case in ipairs(cases) do
          assert(s:setoption("max-input", case.max or 16 * 1024 * 1024))
          local reader = s:receiveuntil(case.pat, { inclusive = case.incl })
          for k, call in ipairs(case.calls) do
            local ok, msg = check(call, reader(call[1]))
            if not ok then
              error(("seed %d, case %d (pattern %q, inclusive %s, max-input %s,"
                .. " input %q), call %d reader(%s): %s")
                :format(seed, done + i, case.pat, tostring(case.incl),
                  tostring(case.max), case.input, k, tostring(call[1]), msg))
            end
          end
          ncalls = ncalls + #case.calls
        end
        assert(sender:join(5), "the sender did not end")
        done = done + #cases
      end
    end, 120)
    assert(done == ncases and ncalls >= ncases, "not every case ran")
  end)
end)
describe("conn:receiveany()", function()
  it("receiveany_returns_what_has_arrived_up_to_max", function()
    with_pair(function(c, s)
      assert(c:send("hello world"))
      c:flush()
      netio.sleep(0.05)
      returns("receiveany(5)", R("hello"), s:receiveany(5))
      returns("receiveany(100)", R(" world"), s:receiveany(100))
    end)
  end)

  it("receiveany_waits_for_data_and_times_out", function()
    with_pair(function(c, s)
      netio.spawn(function() netio.sleep(0.05) c:send("late") end)
      returns("receiveany(10)", R("late"), s:receiveany(10))
      returns("receiveany timeout", R(nil, "timeout", ""), s:receiveany(10, 0.05))
      c:close()
      returns("receiveany at EOF", R(nil, "closed", ""), s:receiveany(10))
    end)
  end)

  it("receiveany_rejects_a_bad_max", function()
    with_pair(function(_, s)
      local function ra(...)
        local args = table.pack(...)
        return H.raised(function() return s:receiveany(table.unpack(args, 1, args.n)) end)
      end
      H.has("bad argument #1 to 'receiveany' (max must be positive)", ra(0))
      H.has("bad argument #1 to 'receiveany' (max must be positive)", ra(-3))
      H.has("bad argument #1 to 'receiveany' (number has no integer representation)",
        ra(2.5))
      H.has("bad argument #1 to 'receiveany' (number expected, got no value)", ra())
      H.has("bad argument #1 to 'receiveany' (number expected, got string)", ra("10"))
      H.has("bad argument #2 to 'receiveany' (", ra(10, "soon"))
    end)
  end)
end)
