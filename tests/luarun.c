/*
** luarun.c: a minimal `lua5.4 script [args]` for sanitizer builds. Linked
** with the sanitizer runtime, it runs busted without LD_PRELOAD, so the
** shells and programs the specs start are not loaded with the runtime
** (TSan in a preloaded /bin/sh crashes it).
*/
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static int luarun_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

static int luarun_main(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  luaL_openlibs(L);
  lua_createtable(L, argc, 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1); /* argv[1] (the script) is arg[0] */
  }
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, luarun_traceback);
  if (luaL_loadfile(L, argv[1]) != LUA_OK) return lua_error(L);
  for (int i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
  lua_call(L, argc - 2, 0);
  return 0;
}

int main(int argc, char **argv) {
  lua_State *L;
  int status;
  if (argc < 2) {
    fprintf(stderr, "usage: %s script [args]\n", argv[0]);
    return 2;
  }
  L = luaL_newstate();
  lua_pushcfunction(L, luarun_traceback);
  lua_pushcfunction(L, luarun_main);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 0, 1);
  if (status != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(L, -1));
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
