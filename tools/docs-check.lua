-- docs-check.lua: every public call of netio has an entry in docs/api.md.
--
--   lua5.4 tools/docs-check.lua [build-dir [api.md]]   (default: build docs/api.md)
--
-- Run from the top of the tree.
--
-- It finds the calls by introspection, not from a list: it loads netio.core
-- (from <build-dir>/lib) and every module of lua/netio/ in a run, then
-- walks what they export. The module functions are the function fields of
-- each module's table, nested tables included (ngx.timer.at); one function
-- reached under several names (netio.spawn is netio.core's spawn) needs an
-- entry under one of them. The classes are the metatables the C binding
-- registers (luaL_newmetatable, found in the registry) and those the Lua
-- files keep in upvalues of their functions (found by walking the
-- upvalues); the methods are the functions of a class's __index table.
-- Names starting with "_" are private and skipped; metamethods (__gc, __len)
-- are documented with their class and not checked.
--
-- An entry is a heading ("### netio.spawn(fn, ...)") or a table row
-- ("| `netio.log.level([name])` | ...") of docs/api.md that names the call:
-- a function by its full name (`netio.sleep`, `ngx.timer.at`,
-- `require("netio.ratelog").new`), a method as
-- `<object>:<name>` with the object named as docs/api.md names it (the last
-- part of the class's __name, or the short names below), or a method table
-- row whose first cell starts with `<name>(`, as the ngx cosocket tables.
-- Exits 1, naming each call without an entry, when any is missing.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local build = arg[1] or "build"
local api_md = arg[2] or "docs/api.md"
package.cpath = build .. "/lib/?.so;" .. package.cpath

-- How docs/api.md names the objects of a class when it does not use the
-- last part of its __name ("netio.conn" -> conn).
local ALIASES = {
  ["netio.semaphore"] = { "sem" },
  ["netio.queue"] = { "q" },
  ["netio.cond"] = { "cv" },
  ["netio.waitq"] = { "wq" },
  ["ngx.semaphore"] = { "sema" },
  ["ngx.socket.tcp"] = { "tcpsock" },
  ["ngx.socket.udp"] = { "udpsock" },
}

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The lines of api.md that can be entries: headings and table rows (code
-- blocks excluded, where "# comment" lines are not headings).
local entries = {}
do
  local in_code = false
  for line in read(api_md):gmatch("[^\n]*") do
    if line:match("^```") then
      in_code = not in_code
    elseif not in_code and (line:match("^#+ ") or line:match("^|")) then
      -- require("netio.ngx").install() names netio.ngx.install.
      entries[#entries + 1] = line:gsub("require%s*%(%s*[\"']([%w_.]+)[\"']%s*%)%.", "%1.")
    end
  end
end

local function escape(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- A name that ends at a character that cannot continue an identifier.
local function names(line, name)
  local s = 1
  while true do
    local a, b = line:find(escape(name), s)
    if not a then return false end
    local before, after = line:sub(a - 1, a - 1), line:sub(b + 1, b + 1)
    if not before:match("[%w_.:]") and not after:match("[%w_]") then return true end
    s = a + 1
  end
end

local function has_function_entry(paths)
  for _, p in ipairs(paths) do
    for _, line in ipairs(entries) do
      if names(line, p) then return true end
    end
  end
  return false
end

-- A class whose methods are never named `<object>:<name>` in an entry is
-- documented by method tables (first cell `name(...)`); the others must
-- name each method with its object, so that `listener:close` does not
-- stand for `conn:close`.
local function has_method_entry(class, method)
  local aliases = ALIASES[class] or { class:match("([%w_]+)$") }
  local by_object = false
  for _, line in ipairs(entries) do
    for _, a in ipairs(aliases) do
      if names(line, a .. ":" .. method) then return true end
      by_object = by_object or line:find("%f[%w_]" .. escape(a) .. ":[%a_]") ~= nil
    end
  end
  if by_object then return false end
  for _, line in ipairs(entries) do
    if line:match("^|%s*`" .. escape(method) .. "%(") then return true end
  end
  return false
end

-- The modules: netio.core, then every lua/netio/*.lua (init.lua is netio).
local modules = { "netio.core" }
do
  local p = assert(io.popen("ls lua/netio"))
  for f in p:lines() do
    local m = f:match("^(.-)%.lua$")
    if m then modules[#modules + 1] = m == "init" and "netio" or "netio." .. m end
  end
  p:close()
  table.sort(modules)
end

-- What the docs call a module's table: netio.ngx returns the `ngx` table.
local DISPLAY = { ["netio.ngx"] = "ngx" }

local fn_paths = {} -- function -> { "netio.spawn", "netio.core.spawn", ... }
local fn_order = {}
local classes = {} -- class name -> metatable
local seen = {}

local function add_function(f, path)
  if not fn_paths[f] then
    fn_paths[f] = {}
    fn_order[#fn_order + 1] = f
  end
  for _, p in ipairs(fn_paths[f]) do
    if p == path then return end
  end
  table.insert(fn_paths[f], path)
end

local function is_class(t)
  return type(rawget(t, "__index")) == "table"
      and (type(rawget(t, "__name")) == "string")
end

-- Classes kept in upvalues of f (and of the functions and tables those
-- lead to), so that a Lua file's metatables are found without a list.
local function walk_upvalues(f, depth)
  if seen[f] or depth > 6 then return end
  seen[f] = true
  for i = 1, 255 do
    local name, v = debug.getupvalue(f, i)
    if not name then break end
    if type(v) == "function" then
      walk_upvalues(v, depth + 1)
    elseif type(v) == "table" and not seen[v] then
      seen[v] = true
      if is_class(v) then classes[rawget(v, "__name")] = v end
      for _, x in pairs(v) do
        if type(x) == "function" then walk_upvalues(x, depth + 1) end
      end
    end
  end
end

-- A table is walked under every name it has (netio.log is netio.core.log),
-- each path once: `open` holds the tables of the path being walked.
local function walk_module(t, path, depth, open)
  if open[t] or depth > 4 then return end
  open[t] = true
  for k, v in pairs(t) do
    if type(k) == "string" and not k:match("^_") then
      if type(v) == "function" then
        add_function(v, path .. "." .. k)
      elseif type(v) == "table" then
        walk_module(v, path .. "." .. k, depth + 1, open)
      end
    end
  end
  open[t] = nil
end

local function inventory()
  for _, m in ipairs(modules) do
    local ok, mod = pcall(require, m)
    if not ok then error("cannot load " .. m .. ": " .. tostring(mod), 0) end
    if type(mod) == "table" then
      walk_module(mod, DISPLAY[m] or m, 0, {})
      -- Fields of the module's own metatable's __index, as install() of
      -- netio.ngx, are functions of the module.
      local mt = getmetatable(mod)
      if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
        walk_module(rawget(mt, "__index"), m, 0, {})
      end
    end
  end
  for _, f in ipairs(fn_order) do walk_upvalues(f, 0) end
  for k, v in pairs(debug.getregistry()) do
    if type(k) == "string" and type(v) == "table" and is_class(v)
        and (k:match("^netio%.") or k:match("^ngx%.")) then
      classes[k] = v
    end
  end
end

local netio = require "netio"
local ok, err = pcall(netio.run, inventory)
if not ok then
  io.stderr:write("docs-check: ", tostring(err), "\n")
  os.exit(2)
end

local missing, nfun, nmeth = {}, 0, 0
for _, f in ipairs(fn_order) do
  local paths = fn_paths[f]
  table.sort(paths, function(a, b) return #a < #b or (#a == #b and a < b) end)
  nfun = nfun + 1
  if not has_function_entry(paths) then
    missing[#missing + 1] = "function " .. table.concat(paths, " = ")
  end
end
local class_names = {}
for name in pairs(classes) do class_names[#class_names + 1] = name end
table.sort(class_names)
for _, name in ipairs(class_names) do
  local methods = {}
  for k, v in pairs(rawget(classes[name], "__index")) do
    if type(k) == "string" and type(v) == "function" and not k:match("^_") then
      methods[#methods + 1] = k
    end
  end
  table.sort(methods)
  for _, m in ipairs(methods) do
    nmeth = nmeth + 1
    if not has_method_entry(name, m) then
      missing[#missing + 1] = "method " .. name .. ":" .. m
    end
  end
end
table.sort(missing)

if os.getenv("DOCS_CHECK_LIST") then
  for _, f in ipairs(fn_order) do print("function", table.concat(fn_paths[f], " = ")) end
  for _, name in ipairs(class_names) do print("class", name) end
end
if #missing > 0 then
  io.stderr:write(("docs-check: %d of %d functions and methods have no entry "
    .. "(a heading or table row) in %s:\n"):format(#missing, nfun + nmeth, api_md))
  for _, m in ipairs(missing) do io.stderr:write("  ", m, "\n") end
  os.exit(1)
end
print(("docs-check: %d functions and %d methods of %d classes, each has an entry in "
  .. "%s"):format(nfun, nmeth, #class_names, api_md))
