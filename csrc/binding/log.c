/*
** log.c: the netio.log table -- the engine's leveled, thread-safe logger
** for Lua, the same in tasks and in netio threads.
*/
#include "binding.h"
#include "util/log.h"

/* log.<level>(fmt, ...): string.format(fmt, ...) when there are arguments
** to format, fmt as it is otherwise. The level is upvalue 1. */
static int l_log_write(lua_State *L) {
  int level = (int)lua_tointeger(L, lua_upvalueindex(1));
  const char *msg;
  if (!nio__log_enabled(level)) return 0;
  if (lua_gettop(L) > 1) {
    luaL_checkstring(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "string") != LUA_TTABLE ||
        lua_getfield(L, -1, "format") != LUA_TFUNCTION)
      return luaL_error(L, "netio: log needs the string library");
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    msg = lua_tostring(L, -1);
  } else {
    msg = luaL_tolstring(L, 1, NULL);
  }
  nio__log(level, "%s", msg);
  return 0;
}

/* log.level([name]): the current level's name; sets it when given. */
static int l_log_level(lua_State *L) {
  int old = nio__log_level();
  if (!lua_isnoneornil(L, 1)) {
    int lvl = nio__log_level_by_name(luaL_checkstring(L, 1));
    luaL_argcheck(L, lvl >= 0, 1,
                  "level name expected (\"error\", \"warn\", \"info\", "
                  "\"debug\")");
    nio__log_set_level(lvl);
  }
  lua_pushstring(L, nio__log_level_name(old));
  return 1;
}

/* log.enable(name[, on]): whether level name is switched on; with on
** (a boolean), switches it and returns whether it was. */
static int l_log_enable(lua_State *L) {
  int lvl = nio__log_level_by_name(luaL_checkstring(L, 1));
  luaL_argcheck(L, lvl >= 0, 1,
                "level name expected (\"error\", \"warn\", \"info\", "
                "\"debug\")");
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TBOOLEAN);
  lua_pushboolean(
      L,
      nio__log_switch(lvl, lua_isnoneornil(L, 2) ? -1 : lua_toboolean(L, 2)));
  return 1;
}

/* log.open([path[, {stdout =, stderr =}]]): lines to path (appended),
** copied to stdout and/or stderr when asked; no path: stderr only.
** true | nil, message, code. */
static int l_log_open(lua_State *L) {
  static const char *const known[] = {"stdout", "stderr", NULL};
  const char *path = luaL_optstring(L, 1, NULL);
  int flags = 0, r;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    nio__bind_check_opts(L, 2, known);
    if (lua_getfield(L, 2, "stdout"), lua_toboolean(L, -1))
      flags |= NIO_LOG_STDOUT;
    if (lua_getfield(L, 2, "stderr"), lua_toboolean(L, -1))
      flags |= NIO_LOG_STDERR;
  }
  if ((r = nio__log_open(path, flags)) < 0) return nio__bind_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

void nio__bind_log_push(lua_State *L) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  lua_createtable(L, 0, 7);
  for (int i = NIO_LOG_ERROR; i <= NIO_LOG_DEBUG; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, l_log_write, 1);
    lua_setfield(L, -2, names[i]);
  }
  lua_pushcfunction(L, l_log_level);
  lua_setfield(L, -2, "level");
  lua_pushcfunction(L, l_log_enable);
  lua_setfield(L, -2, "enable");
  lua_pushcfunction(L, l_log_open);
  lua_setfield(L, -2, "open");
}
