-- recv_spec.lua: every conn:recv pattern, at EOF, on timeout, with big
-- and binary payloads.
local H = require "helper"
local netio = H.netio

-- Run body(client, server) on a fresh loopback pair.
local function with_pair(body, limit)
  return H.run(function()
    local c, s = H.pair()
    return body(c, s)
  end, limit)
end

describe("conn:recv()", function()
  it("recv_default_returns_what_has_arrived", function()
    local got = with_pair(function(c, s)
      assert(s:send("hello"))
      return c:recv(nil, 2)
    end)
    assert.are.equal("hello", got)
  end)

  it("recv_default_returns_at_most_64_KiB", function()
    local n1, total = with_pair(function(c, s)
      local payload = H.data(200000, 2)
      assert(s:send(payload))
      local first = assert(c:recv(nil, 2))
      local rest = assert(H.recv_all(c, #payload - #first, 2))
      H.same(payload, first .. rest)
      return #first, #first + #rest
    end)
    assert.is_true(n1 >= 1 and n1 <= 65536, "recv() gave " .. n1 .. " bytes")
    assert.are.equal(200000, total)
  end)

  it("recv_default_at_eof_returns_nil_closed", function()
    local d, err, partial = with_pair(function(c, s)
      s:close()
      return c:recv(nil, 2)
    end)
    assert.is_nil(d)
    assert.are.equal("closed", err)
    assert.truthy(partial == nil or partial == "", tostring(partial))
  end)

  it("recv_default_returns_buffered_bytes_before_reporting_eof", function()
    local a, b, err = with_pair(function(c, s)
      assert(s:send("last words"))
      s:close()
      netio.sleep(0.02)
      local d = c:recv(nil, 2)
      local d2, e2 = c:recv(nil, 2)
      return d, d2, e2
    end)
    assert.are.equal("last words", a)
    assert.is_nil(b)
    assert.are.equal("closed", err)
  end)
end)

describe("conn:recv(n)", function()
  it("recv_n_returns_exactly_n_bytes_across_segments", function()
    local a, b = with_pair(function(c, s)
      netio.spawn(function()
        for _, piece in ipairs({ "ab", "cd", "ef" }) do
          s:send(piece)
          netio.sleep(0.01)
        end
      end)
      return c:recv(4, 2), c:recv(2, 2)
    end)
    assert.are.equal("abcd", a)
    assert.are.equal("ef", b)
  end)

  it("recv_zero_returns_an_empty_string_at_once", function()
    local dt, d = with_pair(function(c)
      return H.timed(c.recv, c, 0, 1)
    end)
    assert.are.equal("", d)
    assert.is_true(dt < 0.5)
  end)

  it("recv_n_keeps_the_bytes_beyond_n_for_the_next_call", function()
    local r = with_pair(function(c, s)
      assert(s:send("0123456789"))
      local out = {}
      for i = 1, 5 do out[i] = c:recv(2, 2) end
      return table.concat(out, "|")
    end)
    assert.are.equal("01|23|45|67|89", r)
  end)

  it("recv_n_at_eof_returns_nil_closed_and_the_partial_bytes", function()
    local d, err, partial = with_pair(function(c, s)
      assert(s:send("short"))
      s:close()
      return c:recv(100, 2)
    end)
    assert.is_nil(d)
    assert.are.equal("closed", err)
    assert.are.equal("short", partial)
  end)

  it("recv_n_timeout_returns_nil_timeout_and_consumes_the_partial", function()
    local d, err, partial, later = with_pair(function(c, s)
      assert(s:send("abc"))
      local d1, e1, p1 = c:recv(10, 0.05)
      assert(s:send("defghijklm"))
      return d1, e1, p1, c:recv(10, 2)
    end)
    assert.is_nil(d)
    assert.are.equal("timeout", err)
    assert.are.equal("abc", partial)
    assert.are.equal("defghijklm", later)
  end)

  it("recv_n_large_8_MiB_arrives_byte_exact", function()
    local n = 8 * 1024 * 1024
    local payload = H.data(n, 8)
    local got = with_pair(function(c, s)
      netio.spawn(function() s:send(payload) end)
      return c:recv(n, 10)
    end, 20)
    H.same(payload, got, "recv(8 MiB)")
  end)

  it("recv_n_accepts_an_integral_float", function()
    local d = with_pair(function(c, s)
      assert(s:send("xyz"))
      return c:recv(3.0, 2)
    end)
    assert.are.equal("xyz", d)
  end)
end)

describe("conn:recv('*l')", function()
  it("recv_line_strips_lf_and_crlf", function()
    local lines = with_pair(function(c, s)
      assert(s:send("line1\nline2\r\nline3\r\n"))
      return { c:recv("*l", 2), c:recv("*l", 2), c:recv("*l", 2) }
    end)
    assert.are.same({ "line1", "line2", "line3" }, lines)
  end)

  it("recv_line_short_pattern_l_is_the_same", function()
    local lines = with_pair(function(c, s)
      assert(s:send("x\r\ny\n"))
      return { c:recv("l", 2), c:recv("l", 2) }
    end)
    assert.are.same({ "x", "y" }, lines)
  end)

  it("recv_line_keeps_a_cr_that_is_not_before_the_lf", function()
    local a, b, e = with_pair(function(c, s)
      assert(s:send("a\rb\n\r\n\n"))
      return c:recv("*l", 2), c:recv("*l", 2), c:recv("*l", 2)
    end)
    assert.are.equal("a\rb", a)
    assert.are.equal("", b)
    assert.are.equal("", e)
  end)

  it("recv_line_assembles_a_line_from_many_segments", function()
    local line = with_pair(function(c, s)
      netio.spawn(function()
        for _, p in ipairs({ "he", "ll", "o wor", "ld\r", "\nnext\n" }) do
          s:send(p)
          netio.sleep(0.005)
        end
      end)
      return c:recv("*l", 2)
    end)
    assert.are.equal("hello world", line)
  end)

  it("recv_line_carries_binary_bytes", function()
    local line = with_pair(function(c, s)
      assert(s:send("a\0b\255\1\n"))
      return c:recv("*l", 2)
    end)
    assert.are.equal("a\0b\255\1", line)
  end)

  it("recv_line_final_line_without_lf_at_eof_is_the_partial", function()
    local d, err, partial = with_pair(function(c, s)
      assert(s:send("full\ntail"))
      s:close()
      local first = c:recv("*l", 2)
      assert(first == "full", "first line: " .. tostring(first))
      return c:recv("*l", 2)
    end)
    assert.is_nil(d)
    assert.are.equal("closed", err)
    assert.are.equal("tail", partial)
  end)

  it("recv_line_timeout_returns_the_partial_line", function()
    local d, err, partial = with_pair(function(c, s)
      assert(s:send("no newline yet"))
      return c:recv("*l", 0.05)
    end)
    assert.is_nil(d)
    assert.are.equal("timeout", err)
    assert.are.equal("no newline yet", partial)
  end)

  it("recv_line_of_100_KiB_is_returned_whole", function()
    -- Longer than one 64 KiB receive buffer, far below any sane line cap.
    local line = H.data(100 * 1024, 5):gsub("[\r\n]", "x")
    local got = with_pair(function(c, s)
      netio.spawn(function() s:send({ line, "\r\n" }) end)
      return c:recv("*l", 5)
    end)
    H.same(line, got, "100 KiB line")
  end)

  -- The binding caps "*l" lines at 1 MiB (its README and binding.h
  -- NB_LINE_MAX): a longer line fails with "line too long" instead of
  -- letting a peer grow the buffer without bound.
  it("recv_line_of_exactly_1_MiB_is_returned", function()
    local line = ("L"):rep(1024 * 1024)
    local got = with_pair(function(c, s)
      netio.spawn(function() s:send({ line, "\n" }) end)
      return c:recv("*l", 5)
    end)
    H.same(line, got, "1 MiB line")
  end)

  it("recv_line_longer_than_1_MiB_fails_with_line_too_long", function()
    local stream = ("L"):rep(1024 * 1024 + 4096) .. "\nnext\n"
    local d, err, partial = with_pair(function(c, s)
      netio.spawn(function() s:send(stream) end)
      return c:recv("*l", 5)
    end)
    assert(d == nil, "expected nil, got a line of " .. tostring(d and #d) .. " bytes")
    assert.are.equal("line too long", err)
    assert.is_string(partial)
    assert.is_true(#partial > 1024 * 1024, "partial of " .. #partial .. " bytes")
    assert.is_true(stream:sub(1, #partial) == partial,
      "the partial is not the start of the stream")
  end)

  it("recv_line_over_the_limit_returns_at_most_the_limit_and_one_buffer", function()
    -- The peer pushes far more than the limit without an LF: the engine
    -- stops receiving once the input reaches the limit, within one
    -- receive buffer (64 KiB), whatever the backend.
    local stream = ("L"):rep(8 * 1024 * 1024)
    local d, err, partial = with_pair(function(c, s)
      netio.spawn(function() s:send(stream) end)
      netio.sleep(0.3) -- let the peer fill what the engine takes
      return c:recv("*l", 5)
    end)
    assert.is_nil(d)
    assert.are.equal("line too long", err)
    local bound = 1024 * 1024 + 1 + 65536
    assert(#partial > 1024 * 1024 and #partial <= bound,
      ("the partial of a line over the limit: expected 1 MiB to %d bytes, got %d")
        :format(bound, #partial))
  end)

  it("recv_line_of_many_lines_in_one_segment", function()
    local n, ok = with_pair(function(c, s)
      local t = {}
      for i = 1, 1000 do t[i] = "l" .. i end
      assert(s:send(table.concat(t, "\n") .. "\n"))
      local good = true
      for i = 1, 1000 do
        if c:recv("*l", 2) ~= "l" .. i then good = false break end
      end
      return 1000, good
    end)
    assert.are.equal(1000, n)
    assert.is_true(ok)
  end)
end)

describe("conn:recv('*a')", function()
  it("recv_all_reads_until_the_peer_closes", function()
    local got = with_pair(function(c, s)
      netio.spawn(function()
        for i = 1, 5 do
          s:send("part" .. i .. ";")
          netio.sleep(0.005)
        end
        s:close()
      end)
      return c:recv("*a", 2)
    end)
    assert.are.equal("part1;part2;part3;part4;part5;", got)
  end)

  it("recv_all_short_pattern_a_is_the_same", function()
    local got = with_pair(function(c, s)
      assert(s:send("everything"))
      s:close()
      return c:recv("a", 2)
    end)
    assert.are.equal("everything", got)
  end)

  it("recv_all_at_eof_returns_an_empty_string", function()
    local first, second, third = with_pair(function(c, s)
      assert(s:send("x"))
      s:close()
      return c:recv("*a", 2), c:recv("*a", 2), c:recv("a", 2)
    end)
    assert.are.equal("x", first)
    assert.are.equal("", second)
    assert.are.equal("", third)
  end)

  it("recv_all_of_3_MiB_is_byte_exact", function()
    local payload = H.data(3 * 1024 * 1024, 9)
    local got = with_pair(function(c, s)
      netio.spawn(function()
        s:send(payload)
        s:close()
      end)
      return c:recv("*a", 10)
    end, 20)
    H.same(payload, got, "recv('*a')")
  end)

  it("recv_all_timeout_returns_the_partial", function()
    local d, err, partial = with_pair(function(c, s)
      assert(s:send("so far"))
      return c:recv("*a", 0.05)
    end)
    assert.is_nil(d)
    assert.are.equal("timeout", err)
    assert.are.equal("so far", partial)
  end)
end)

describe("recv with binary data", function()
  it("recv_mixed_patterns_over_one_stream_keep_every_byte", function()
    local blob = H.data(70000, 11)
    local ok, a, b, line, rest = with_pair(function(c, s)
      netio.spawn(function()
        s:send({ "HDR 5\r\n", "12345", blob, "trailer\n", "bye" })
        s:close()
      end)
      local hdr = c:recv("*l", 2)
      local n = tonumber(hdr:match("^HDR (%d+)$"))
      return true, c:recv(n, 2), c:recv(#blob, 2), c:recv("*l", 2),
             c:recv("*a", 2)
    end)
    assert.is_true(ok)
    assert.are.equal("12345", a)
    H.same(blob, b, "binary block")
    assert.are.equal("trailer", line)
    assert.are.equal("bye", rest)
  end)
end)

describe("recv and max-input", function()
  it("recv_n_above_the_default_16_MiB_cap_fails_with_too_large", function()
    local cap = 16 * 1024 * 1024
    local payload = H.data(cap + 100000, 13)
    local r = with_pair(function(c, s)
      netio.spawn(function() s:send(payload) end)
      -- A length header of 1 GiB: the call must not buffer what it says.
      local d, err, partial = c:recv(1024 * 1024 * 1024, 10)
      local rest, err2 = c:recv(100000, 5)
      return { d = d, err = err, partial = partial, rest = rest, err2 = err2 }
    end, 30)
    assert.is_nil(r.d)
    assert.are.equal("too large", r.err)
    H.same(payload:sub(1, cap), r.partial, "partial of the too large recv")
    assert(r.rest, "the next recv failed: " .. tostring(r.err2))
    H.same(payload:sub(cap + 1), r.rest, "the recv after a too large one")
  end)

  it("recv_all_from_a_peer_sending_more_than_the_cap_fails_with_too_large", function()
    local payload = H.data(250000, 14)
    local r = with_pair(function(c, s)
      assert(c:setoption("max-input", 100000))
      netio.spawn(function()
        s:send(payload)
        s:close()
      end)
      local out = {}
      for i = 1, 3 do out[i] = table.pack(c:recv("*a", 5)) end
      return out
    end)
    for i = 1, 2 do
      assert(r[i][1] == nil and r[i][2] == "too large",
        ("recv('*a') #%d: expected nil, \"too large\", got %s, %s"):format(i,
          tostring(r[i][1]), tostring(r[i][2])))
      H.same(payload:sub((i - 1) * 100000 + 1, i * 100000), r[i][3],
        "partial of recv('*a') #" .. i)
    end
    -- Within the cap, "*a" returns the rest at the end of the stream.
    H.same(payload:sub(200001), r[3][1], "the last recv('*a')")
  end)

  it("recv_all_of_exactly_the_cap_succeeds", function()
    local payload = H.data(100000, 15)
    local got, err = with_pair(function(c, s)
      assert(c:setoption("max-input", 100000))
      netio.spawn(function()
        s:send(payload)
        s:close()
      end)
      return c:recv("*a", 5)
    end)
    assert(got, "recv('*a') failed: " .. tostring(err))
    H.same(payload, got, "recv('*a') of exactly max-input bytes")
  end)

  it("a_small_max_input_caps_recv_n_and_the_next_recv_goes_on_after_it", function()
    local payload = H.data(5000, 16)
    local r = with_pair(function(c, s)
      assert(c:setoption("max-input", 1000))
      assert(s:send(payload))
      local out = {}
      out[1] = table.pack(c:recv(3000, 2))   -- above the cap
      out[2] = table.pack(c:recv(1000, 2))   -- at the cap: as before
      out[3] = table.pack(c:recv(500, 2))    -- below
      out[4] = table.pack(c:recv(nil, 2))    -- whatever arrived: at most the cap
      out[5] = table.pack(c:recv(1500, 2))   -- the 1500 left, above the cap
      return out
    end)
    assert(r[1][1] == nil and r[1][2] == "too large", ("recv(3000) with"
      .. " max-input 1000: expected nil, \"too large\", got %s, %s"):format(
      tostring(r[1][1]), tostring(r[1][2])))
    H.same(payload:sub(1, 1000), r[1][3], "partial of recv(3000)")
    H.same(payload:sub(1001, 2000), r[2][1], "recv(1000) after it")
    H.same(payload:sub(2001, 2500), r[3][1], "recv(500)")
    H.same(payload:sub(2501, 3500), r[4][1], "recv() with max-input 1000")
    assert.are.equal("too large", r[5][2])
    H.same(payload:sub(3501, 4500), r[5][3], "partial of recv(1500)")
  end)

  it("setoption_max_input_rejects_bad_values", function()
    local r = with_pair(function(c)
      local out = {}
      for i, v in ipairs({ 0, -1, 1.5, "many", true }) do
        out[i] = H.raised(function() return c:setoption("max-input", v) end)
      end
      c:close()
      out.closed = table.pack(c:setoption("max-input", 10))
      out.closed_bad = H.raised(function() return c:setoption("max-input", 0) end)
      return out
    end)
    H.has("bad argument #2 to 'setoption' (bytes must be positive)", r[1])
    H.has("bad argument #2 to 'setoption' (bytes must be positive)", r[2])
    H.has("number has no integer representation", r[3])
    H.has("number expected, got string", r[4])
    H.has("number expected, got boolean", r[5])
    assert(r.closed[1] == nil and r.closed[2] == "closed",
      "setoption on a closed conn: expected nil, \"closed\"")
    H.has("bytes must be positive", r.closed_bad)
  end)
end)

describe("recv(\"*L\")", function()
  it("recv_L_returns_the_line_with_its_eol", function()
    local a, b, c3 = with_pair(function(c, s)
      assert(s:send("one\ntwo\r\nthree"))
      return c:recv("*L", 5), c:recv("L", 5), table.pack(c:recv("*L", 0.05))
    end)
    assert(a == "one\n", ("recv(\"*L\"): expected \"one\\n\", got %q"):format(tostring(a)))
    assert(b == "two\r\n", ("recv(\"L\"): expected \"two\\r\\n\", got %q"):format(tostring(b)))
    assert(c3[1] == nil and c3[2] == "timeout" and c3[3] == "three",
      ("recv(\"*L\") without an EOL yet: expected nil, \"timeout\", \"three\", got %s, %s, %s")
        :format(tostring(c3[1]), tostring(c3[2]), tostring(c3[3])))
  end)

  it("recv_L_has_the_line_limit_of_l", function()
    local long = ("L"):rep(1024 * 1024)
    local got, d, err = with_pair(function(c, s)
      netio.spawn(function() s:send({ long, "\n", long, "x\nnext\n" }) end)
      local first = c:recv("*L", 5)
      return first, c:recv("*L", 5)
    end, 15)
    assert(got == long .. "\n", "a 1 MiB line with *L: got "
      .. tostring(got and #got) .. " bytes")
    assert(d == nil and err == "line too long",
      "a line over 1 MiB with *L: expected \"line too long\", got " .. tostring(err))
  end)
end)

describe("recv(\"*l\") over the line limit", function()
  -- The line fails with what arrived of it; the lines after it stay.
  it("a_line_over_the_limit_does_not_consume_the_lines_after_it", function()
    for _, n in ipairs({ 1024 * 1024 + 1, 1100000, 1024 * 1024 + 60000 }) do
      with_pair(function(c, s)
        local stream = ("y"):rep(n) .. "\nnext\n"
        assert(s:send(stream))
        s:flush()
        netio.sleep(0.1)
        local d, err, partial = c:recv("*l", 5)
        assert(d == nil and err == "line too long",
          "expected \"line too long\", got " .. tostring(err))
        assert(#partial <= n + 1 and stream:sub(1, #partial) == partial,
          ("a %d-byte line: the partial of \"line too long\" holds %d bytes,"
          .. " past the end of the line"):format(n, #partial))
        -- The rest of the long line (if it had not all arrived), then "next".
        local rest = stream:sub(#partial + 1, n)
        if rest ~= "" then
          local got = c:recv("*l", 5)
          assert(got == rest, "expected the rest of the long line, got "
            .. tostring(got and #got) .. " bytes")
        end
        local got, e2 = c:recv("*l", 5)
        assert(got == "next", ("a %d-byte line: the line after it was lost:"
          .. " expected \"next\", got %s, %s"):format(n, tostring(got), tostring(e2)))
      end, 15)
    end
  end)
end)
