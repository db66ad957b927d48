/*
** outside_rawq.c: the Lua module rawq, the raw C queue of outside_bq.h
** (what outside_baseline.c's C threads push into) driven from Lua, so the
** outside-threads benchmark (bench/outside.sh, server lua-raw) can run the
** very Lua sender loop of bench/outside_lua.lua against a raw queue and
** measure what netio.send() itself costs, the Lua VM's share taken out.
**
**   local rawq = require "rawq"  -- rawq.so, built in the build directory
**   rawq.listen("ip:port")       -- true | nil, message
**   rawq.start(conns [, send_limit [, queue_limit]])
**                                -- accepts `conns` connections (blocking),
**                                -- starts the epoll writer thread:
**                                -- true | nil, message
**   rawq.push(i, msg)            -- 0-based connection index, 64-byte
**                                -- message: true | nil, "busy" | nil, "closed"
**   rawq.stop()                  -- stops and joins the writer: true
**
** The queue is the process's (outside_bq.h's static state): every Lua state
** of the process that requires rawq shares it, and push may be called from
** any of them, in any thread, once start returned. listen, start and stop
** are for one state (the one that owns the run). Limits left 0 keep nio's
** defaults (4 MiB per connection, 16 MiB in all), as in outside_baseline.c.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <lauxlib.h>
#include <lua.h>
#include "outside_bq.h"

int luaopen_rawq(lua_State *L);

/* The owning state's progress: the listening socket until start, then the
** writer thread until stop. */
static int rq_lfd = -1;
static int rq_running;
static pthread_t rq_writer;

static int rq_fail(lua_State *L, const char *what) {
  luaL_pushfail(L);
  lua_pushfstring(L, "rawq.%s: %s", what, strerror(errno));
  return 2;
}

static int l_listen(lua_State *L) {
  const char *addr = luaL_checkstring(L, 1);
  if (rq_lfd >= 0 || bq.conns != NULL)
    return luaL_error(L, "rawq.listen: called twice");
  if ((rq_lfd = bq_listen(addr)) < 0) return rq_fail(L, "listen");
  lua_pushboolean(L, 1);
  return 1;
}

static void *rq_writer_main(void *arg) {
  (void)arg;
  bq_run();
  return NULL;
}

static int l_start(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lua_Integer sl = luaL_optinteger(L, 2, 0), ql = luaL_optinteger(L, 3, 0);
  Dl_info self;
  int lfd = rq_lfd;
  luaL_argcheck(L, n >= 1 && n <= OM_MAX_CONNS, 1, "1 to 4096 connections");
  luaL_argcheck(L, sl >= 0, 2, "a limit is >= 0");
  luaL_argcheck(L, ql >= 0, 3, "a limit is >= 0");
  if (lfd < 0) return luaL_error(L, "rawq.start: call rawq.listen first");
  rq_lfd = -1;
  if (bq_accept(lfd, (int)n, (size_t)sl, (size_t)ql) != 0)
    return rq_fail(L, "start");
  /* The writer runs this library's code: keep it mapped even when the
  ** Lua states that loaded it close before the process ends. */
  if (dladdr((void *)luaopen_rawq, &self) == 0 ||
      dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == NULL)
    return luaL_error(L, "rawq.start: cannot pin rawq.so");
  if ((errno = pthread_create(&rq_writer, NULL, rq_writer_main, NULL)) != 0)
    return rq_fail(L, "start");
  rq_running = 1;
  lua_pushboolean(L, 1);
  return 1;
}

static int l_push(lua_State *L) {
  lua_Integer i = luaL_checkinteger(L, 1);
  size_t len;
  const char *msg = luaL_checklstring(L, 2, &len);
  int r;
  luaL_argcheck(L, i >= 0 && i < bq.nconn, 1, "no such connection");
  luaL_argcheck(L, len == OM_SIZE, 2, "a message is 64 bytes");
  r = bq_push(NULL, (int)i, (const unsigned char *)msg);
  if (r == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_pushfail(L);
  lua_pushstring(L, r > 0 ? "busy" : "closed");
  return 2;
}

static int l_stop(lua_State *L) {
  if (rq_running) {
    bq_stop();
    pthread_join(rq_writer, NULL);
    rq_running = 0;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int luaopen_rawq(lua_State *L) {
  static const luaL_Reg fns[] = {{"listen", l_listen},
                                 {"start", l_start},
                                 {"push", l_push},
                                 {"stop", l_stop},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
