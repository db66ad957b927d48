/*
** core.c: the module table of netio.core and its small functions (sleep,
** now, stop, backend, available, intask, stats), and how a call finds the
** run and the task it belongs to.
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"
#include "util/log.h"

/* ---- finding the running state and task ---------------------------- */

nb_state *nio__bind_current(lua_State *L) {
  nio_engine *e = nio__engine_current();
  nb_state *S;
  lua_State *main;
  if (e == NULL) return NULL;
  S = nio__engine_udata(e);
  if (S == NULL || S->magic != NB_MAGIC) return NULL;
  /* Another Lua state may load the module on this thread (an embedder);
  ** only the state that runs here owns the engine. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  return main == S->main ? S : NULL;
}

/* Whether netio's coroutine.resume runs in L's state (lua/netio/init.lua
** installs it): then a plain coroutine inside a task may wait too. */
static int nested_ok(lua_State *L) {
  int r = lua_getfield(L, LUA_REGISTRYINDEX, "netio.nested") == LUA_TBOOLEAN;
  lua_pop(L, 1);
  return r;
}

nb_task *nio__bind_task_find(lua_State *L, const char *name) {
  nb_state *S = nio__bind_current(L);
  if (S && S->current && S->current->co == L) return S->current;
  if (S && S->current && nested_ok(L)) {
    if (nio__bind_task_nested(S->current, L) < 0)
      luaL_error(L, "%s", nio_strerror(NIO_ENOMEM));
    return S->current;
  }
  /* No position prefix: the message is the rule, word for word. */
  lua_pushfstring(L, "netio: %s must be called from a netio task", name);
  lua_error(L);
  return NULL;
}

#define K_OWNS(t, L) nio__bind_task_owns((t), (L))

nb_task *nio__bind_k_task_find(lua_State *L, nb_state *hint) {
  nb_state *S;
  if (hint && K_OWNS(hint->current, L)) return hint->current;
  S = nio__bind_current(L);
  return S && K_OWNS(S->current, L) ? S->current : NULL;
}

int64_t nio__bind_opt_timeout(lua_State *L, int arg, int64_t dflt) {
  lua_Number n;
  /* Most calls pass no timeout: lua_gettop is the cheaper look. */
  if (lua_gettop(L) < arg || lua_isnil(L, arg)) return dflt;
  n = luaL_checknumber(L, arg);
  luaL_argcheck(L, n >= 0, arg, "timeout must be a non-negative number");
  /* A billion seconds or more (math.huge included) is no limit. */
  if (n >= 1e9) return -1;
  return (int64_t)(n * 1e9);
}

void nio__bind_check_opts(lua_State *L, int idx, const char *const *known) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int ok = 0;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; known[i] && !ok; i++)
        ok = strcmp(lua_tostring(L, -1), known[i]) == 0;
    if (!ok) {
      const char *k =
          lua_type(L, -1) == LUA_TSTRING
              ? lua_pushfstring(L, "'%s'", lua_tostring(L, -1))
              : lua_pushfstring(L, "of type %s", luaL_typename(L, -1));
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option %s", k));
    }
  }
}

void nio__bind_class(lua_State *L, const char *tname, const luaL_Reg *methods,
                     const luaL_Reg *meta) {
  if (!luaL_newmetatable(L, tname)) {
    lua_pop(L, 1);
    return;
  }
  lua_newtable(L);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, meta, 1);
  lua_pop(L, 1);
}

int nio__bind_fail(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, nio_strerror(err));
  lua_pushstring(L, nio_err_name(err));
  return 3;
}

void nio__bind_release_refs(nb_state *S) {
  lua_State *L = S->L;
  nb_sendref *r = S->unrefs, *next;
  if (r == NULL) return;
  S->unrefs = NULL;
  /* Setting a key to nil never allocates, so this cannot raise. */
  lua_rawgetp(L, LUA_REGISTRYINDEX, S);
  for (; r; r = next) {
    next = r->next;
    lua_pushnil(L);
    lua_rawsetp(L, -2, r);
    free(r);
  }
  lua_pop(L, 1);
}

/* ---- sleep, now, stop, backend, available ------------------------- */

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  nb_task *t;
  (void)status;
  NB_K_GUARD(t, L, NULL, ctx, sleep_k);
  if (!t->timedout) return nio__bind_yield(L, t, ctx, sleep_k);
  nio__bind_wait_end(t);
  return 0;
}

static int l_sleep(lua_State *L) {
  lua_Number sec = luaL_checknumber(L, 1);
  nb_task *t;
  luaL_argcheck(L, sec >= 0, 1, "non-negative number expected");
  t = nio__bind_task(L, NULL, "sleep");
  if (sec == 0) {
    /* Yield once: other ready tasks and the I/O of this turn go first. */
    nio__bind_wait_begin(t, -1);
    t->timedout = 1;
    nio__bind_wake(t);
  } else if (nio__bind_wait_begin(t, sec >= 1e9 ? -1 : (int64_t)(sec * 1e9)) <
             0) {
    return nio__bind_nomem(L);
  }
  return nio__bind_yield(L, t, (lua_KContext)t, sleep_k);
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)nio__now_ns() / 1e9);
  return 1;
}

/* Wall-clock seconds since the Unix epoch: what ngx.now() and ngx.time()
** report (os.time() has only whole seconds). */
static int l_time(lua_State *L) {
  lua_pushnumber(L, (lua_Number)nio__wall_ns() / 1e9);
  return 1;
}

static int l_stop(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  if (S && S->e) nio__engine_stop(S->e);
  return 0;
}

static int l_backend(lua_State *L) {
  const char *name;
  nb_state *S = nio__bind_current(L);
  const char *env;
  if (S && S->e) {
    lua_pushstring(L, nio__engine_backend(S->e));
    return 1;
  }
  /* Outside a run: the backend the next run would use. */
  env = getenv("NETIO_BACKEND");
  if (env && env[0]) {
    lua_pushstring(L, env);
    return 1;
  }
  for (int i = 0; (name = nio_backend_name(i)) != NULL; i++)
    if (nio__engine_backend_available(name)) {
      lua_pushstring(L, name);
      return 1;
    }
  lua_pushnil(L);
  return 1;
}

static int l_available(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_pushboolean(L, nio__engine_backend_available(name));
  return 1;
}

static int l_intask(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  lua_pushboolean(L, S && S->current && S->current->co == L);
  return 1;
}

/* core.nested(): netio's coroutine.resume is installed in this state
** (init.lua); returns the mark a waiting plain coroutine yields. */
static int l_nested(lua_State *L) {
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "netio.nested");
  lua_pushlightuserdata(L, (void *)&nio__bind_nested_mark);
  return 1;
}

/* core.nested_abort(): the resumer of a waiting plain coroutine cannot
** yield (a C boundary): undo the task's wait before the error. */
static int l_nested_abort(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  if (S && S->current && S->current->status == NB_T_WAIT)
    nio__bind_undo_wait(S->current);
  return 0;
}

static int l_stats(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  nio_counters st;
  if (S == NULL || S->e == NULL) {
    lua_pushliteral(L, "netio: stats must be called from a netio task");
    return lua_error(L);
  }
  nio__engine_stats(S->e, &st);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)st.conns);
  lua_setfield(L, -2, "conns");
  lua_pushinteger(L, (lua_Integer)st.udps);
  lua_setfield(L, -2, "udps");
  lua_pushinteger(L, (lua_Integer)st.dropped_bytes);
  lua_setfield(L, -2, "dropped_bytes");
  lua_pushinteger(L, (lua_Integer)st.outside_dropped);
  lua_setfield(L, -2, "outside_dropped");
  lua_pushinteger(L, S->heap_kept ? (lua_Integer)S->heap_kept(S->heap, 0) : 0);
  lua_setfield(L, -2, "heap_kept");
  lua_pushinteger(L, (lua_Integer)st.inbox_kept);
  lua_setfield(L, -2, "inbox_kept");
  return 1;
}

int luaopen_netio_core(lua_State *L);

void nio__bind_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_netio_core);
  lua_setfield(L, -2, "netio.core");
  lua_pop(L, 1);
}

int luaopen_netio_core(lua_State *L) {
  static const luaL_Reg funcs[] = {{"run", nio__bind_l_run},
                                   {"spawn", nio__bind_l_spawn},
                                   {"wait", nio__bind_l_wait},
                                   {"waitq", nio__bind_l_waitq},
                                   {"sleep", l_sleep},
                                   {"now", l_now},
                                   {"time", l_time},
                                   {"stop", l_stop},
                                   {"backend", l_backend},
                                   {"available", l_available},
                                   {"intask", l_intask},
                                   {"stats", l_stats},
                                   {"nested", l_nested},
                                   {"nested_abort", l_nested_abort},
                                   {"listen", nio__bind_l_listen},
                                   {"connect", nio__bind_l_connect},
                                   {"udp", nio__bind_l_udp},
                                   {"resolve", nio__bind_l_resolve},
                                   {"detached", nio__bind_l_detached},
                                   {"send", nio__bind_l_send},
                                   {"post", nio__bind_l_post},
                                   {"receive", nio__bind_l_receive},
                                   {"thread", nio__bind_l_thread},
                                   {"stdin", nio__bind_l_stdin},
                                   {NULL, NULL}};
  luaL_checkversion(L);
  nio__module_pin((const void *)luaopen_netio_core);
  /* In a netio thread's state: the thread-side module. */
  if (nio__bind_in_thread(L)) return nio__bind_thread_module(L);
  nio__bind_task_open(L);
  nio__bind_conn_open(L);
  nio__bind_keepalive_open(L);
  nio__bind_listener_open(L);
  nio__bind_udp_open(L);
  nio__bind_thread_open(L);
  nio__bind_waitq_open(L);
  luaL_newlib(L, funcs);
  nio__bind_log_push(L);
  lua_setfield(L, -2, "log");
  lua_pushliteral(L, NIO_VERSION);
  lua_setfield(L, -2, "_VERSION");
  nio__bind_tls_push(L);
  lua_setfield(L, -2, "tls");
  /* OpenResty's ngx.null (and lua-cjson's cjson.null) is a light userdata
  ** NULL: netio.ngx's null is this one, so the two compare equal. */
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
