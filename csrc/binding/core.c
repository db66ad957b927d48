/*
** core.c: the module table of netio.core (run, spawn, sleep, now, stop,
** backend, available, listen, connect) and the engine hooks that drive
** the tasks of one run.
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"
#include "port/log.h"

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

nb_task *nio__bind_task(lua_State *L, nb_state *hint, const char *name) {
  nb_state *S;
  if (hint && hint->current && hint->current->co == L) return hint->current;
  S = nio__bind_current(L);
  if (S && S->current && S->current->co == L) return S->current;
  /* No position prefix: the message is the rule, word for word. */
  lua_pushfstring(L, "netio: %s must be called from a netio task", name);
  lua_error(L);
  return NULL;
}

nb_task *nio__bind_k_task(lua_State *L, nb_state *hint) {
  nb_state *S;
  if (hint && hint->current && hint->current->co == L) return hint->current;
  S = nio__bind_current(L);
  return S && S->current && S->current->co == L ? S->current : NULL;
}

int64_t nio__bind_opt_timeout(lua_State *L, int arg, int64_t dflt) {
  lua_Number n;
  if (lua_isnoneornil(L, arg)) return dflt;
  n = luaL_checknumber(L, arg);
  luaL_argcheck(L, n >= 0, arg, "timeout must be a non-negative number");
  /* A billion seconds or more (math.huge included) is no limit. */
  if (n >= 1e9) return -1;
  return (int64_t)(n * 1e9);
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

/* ---- engine hooks ---------------------------------------------------- */

static int hook_start(nio_engine *e, void *arg) {
  (void)e;
  (void)arg;
  return 0;
}

static void state_grace_cb(nio_timer *t) {
  nb_state *S = t->data;
  if (!S->draining) S->forced = 1;
}

/* Every task ended: close what is left. Connections with queued output
** are closed after flush; the engine gives them its grace period after
** the loop ends (engine_drain), so the run can end now. */
static void state_drain(nb_state *S) {
  S->draining = 1;
  nio__bind_close_listeners(S, 0);
  nio__bind_close_conns(S, 1, 0);
}

static int hook_turn(nio_engine *e, void *arg) {
  nb_state *S = arg;
  int more = 0;
  if (S->unrefs) nio__bind_release_refs(S);
  if (S->forced == 1) {
    /* The stop's grace period passed: close every connection so that the
    ** tasks waiting on one see "closed", give them this one turn, end. */
    S->forced = 2;
    nio__bind_close_listeners(S, 0);
    nio__bind_close_conns(S, 0, 0);
    nio__bind_run_ready(S);
    nio__engine_quit(e, 0);
    return 0;
  }
  if (S->ready_head) more = nio__bind_run_ready(S);
  if (S->failed) {
    nio__engine_quit(e, 0);
    return 0;
  }
  if (S->ntasks == 0) {
    state_drain(S);
    nio__engine_quit(e, 0);
    return 0;
  }
  return more;
}

static void hook_stop(nio_engine *e, void *arg) {
  nb_state *S = arg;
  if (S->stopping) return;
  S->stopping = 1;
  nio__bind_close_listeners(S, 0);
  S->grace.data = S;
  nio__timer_start(e, &S->grace, NB_STOP_GRACE_NS, state_grace_cb);
}

static void hook_finish(nio_engine *e, void *arg) {
  nb_state *S = arg;
  if (nio__timer_active(&S->grace)) nio__timer_stop(e, &S->grace);
  nio__bind_close_listeners(S, 1);
  nio__bind_close_conns(S, 0, 1);
  nio__bind_abandon_tasks(S);
  nio__bind_release_refs(S);
}

/* ---- run ------------------------------------------------------------- */

static int run_in_task(lua_State *L, nb_state *S, nb_task *self) {
  int fidx = 1;
  nb_task *t = nio__bind_spawn(L, S, fidx);
  t->joined = 1;
  return nio__bind_join_wait(L, self, t, -1, 1);
}

int nio__bind_run(lua_State *L, int nargs, const nb_run_opts *o) {
  static const nio_engine_hooks hooks = {hook_start, hook_turn, hook_stop,
                                         hook_finish, NULL, NULL};
  nio_engine_hooks h = hooks;
  int fidx = lua_gettop(L) - nargs, r, n;
  nb_state *S;
  nb_task *t;
  const char *backend = o ? o->backend : NULL;
  nio_options eo;

  /* The state lives on this call's stack, below the function. */
  S = lua_newuserdatauv(L, sizeof *S, 0);
  memset(S, 0, sizeof *S);
  S->magic = NB_MAGIC;
  lua_insert(L, fidx++);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->main = lua_tothread(L, -1);
  lua_pop(L, 1);
  /* T: anchors for the run (tasks, queued strings, the loop thread). */
  lua_newtable(L);
  S->L = lua_newthread(L);
  lua_setfield(L, -2, "loop");
  lua_rawsetp(L, LUA_REGISTRYINDEX, S);
  if (!lua_checkstack(S->L, 16)) luaL_error(L, "netio: out of stack");
  t = nio__bind_spawn(L, S, fidx);
  t->is_main = 1;
  S->main_task = t;
  /* fidx now holds the main task's userdata. */

  memset(&eo, 0, sizeof eo);
  eo.backend = backend;
  if ((r = nio__engine_new(&S->e, &eo)) != 0) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, S);
    return luaL_error(L, "netio: cannot create the engine: %s",
                      nio_strerror(r));
  }
  nio__engine_set_udata(S->e, S);
  h.arg = S;
  if ((r = nio__engine_start(S->e, &h)) == 0) {
    if (o && o->started) o->started(S->e, o->ud);
    r = nio__engine_join(S->e);
    if (o && o->ended) o->ended(S->e, o->ud);
  }
  nio__engine_free(S->e);
  S->e = NULL;
  S->magic = 0;
  nio__bind_release_refs(S);
  if (r != 0 && !S->failed) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, S);
    return luaL_error(L, "netio: cannot run the %s backend: %s",
                      backend ? backend : "selected", nio_strerror(r));
  }
  if (t->status == NB_T_FAILED) {
    lua_getiuservalue(L, fidx, 2);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, S);
    return lua_error(L);
  }
  n = nio__bind_task_results(L, t);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, S);
  return n;
}

static int l_run(lua_State *L) {
  nb_state *S;
  nb_task *self;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  S = nio__bind_current(L);
  if (S != NULL) {
    self = nio__bind_task(L, S, "run");
    return run_in_task(L, S, self);
  }
  return nio__bind_run(L, lua_gettop(L) - 1, NULL);
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
  } else {
    nio__bind_wait_begin(t, sec >= 1e9 ? -1 : (int64_t)(sec * 1e9));
  }
  return nio__bind_yield(L, t, (lua_KContext)t, sleep_k);
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)nio__now_ns() / 1e9);
  return 1;
}

static int l_stop(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  if (S && S->e) nio__engine_stop(S->e);
  return 0;
}

static int l_backend(lua_State *L) {
  static const char *const names[] = {"uring", "epoll", "iocp", NULL};
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
  for (int i = 0; names[i]; i++)
    if (nio__engine_backend_available(names[i])) {
      lua_pushstring(L, names[i]);
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

int luaopen_netio_core(lua_State *L);

int luaopen_netio_core(lua_State *L) {
  static const luaL_Reg funcs[] = {{"run", l_run},
                                   {"spawn", nio__bind_l_spawn},
                                   {"sleep", l_sleep},
                                   {"now", l_now},
                                   {"stop", l_stop},
                                   {"backend", l_backend},
                                   {"available", l_available},
                                   {"intask", l_intask},
                                   {"listen", nio__bind_l_listen},
                                   {"connect", nio__bind_l_connect},
                                   {NULL, NULL}};
  luaL_checkversion(L);
  nio__bind_task_open(L);
  nio__bind_conn_open(L);
  nio__bind_listener_open(L);
  luaL_newlib(L, funcs);
  lua_pushliteral(L, NIO_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
