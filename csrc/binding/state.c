/*
** state.c: the state of one run -- made on a Lua state, given an engine,
** driven by the engine hooks (ready tasks each turn, graceful stop, the
** end of the run), freed after the join -- and netio.run on top of it.
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"
#include "util/log.h"

/* ---- life ------------------------------------------------------------ */

nb_state *nio__bind_state_new(lua_State *L) {
  nb_state *S;
  luaL_checkstack(L, 4, NULL);
  /* T first: anything that raises before T is in the registry leaves
  ** nothing behind but garbage. */
  lua_newtable(L);
  S = lua_newuserdatauv(L, sizeof *S, 0);
  memset(S, 0, sizeof *S);
  lua_setfield(L, -2, "state");
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->main = lua_tothread(L, -1);
  lua_pop(L, 1);
  S->L = lua_newthread(L);
  lua_setfield(L, -2, "loop");
  if (!lua_checkstack(S->L, 16)) luaL_error(L, "netio: out of stack");
  lua_createtable(L, NB_SPARE_MAX, 0); /* task.c's spare coroutines */
  lua_rawsetp(L, -2, &S->nspare);
  lua_rawsetp(L, LUA_REGISTRYINDEX, S);
  S->magic = NB_MAGIC;
  return S;
}

void nio__bind_state_table(lua_State *L, nb_state *S) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, S);
}

int nio__bind_state_engine(nb_state *S, const nio_options *o) {
  int r = nio__engine_new(&S->e, o);
  if (r == 0) nio__engine_set_udata(S->e, S);
  return r;
}

void nio__bind_state_free(nb_state *S) {
  lua_State *L = S->main;
  if (S->e) nio__engine_free(S->e);
  S->e = NULL;
  S->magic = 0;
  nio__bind_release_refs(S);
  /* Setting a key to nil never allocates: this cannot raise. S is
  ** garbage from here on. */
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, S);
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
** the loop ends (engine_drain), so the run can end now. Threads waiting
** for messages are told none will come. */
void nio__bind_state_drain(nb_state *S) {
  S->draining = 1;
  nio__bind_close_listeners(S, 0);
  nio__bind_close_udps(S, 0);
  nio__bind_close_conns(S, 1, 0);
  nio__bind_pools_close(S, 0);
  /* No task will receive again: posts are refused before the threads
  ** hear that their mailboxes closed, so one that posts then is told. */
  nio__engine_close_posts(S->e);
  nio__bind_threads_close_mail(S);
  nio__bind_close_waitqs(S, 0);
}

static int hook_turn(nio_engine *e, void *arg) {
  nb_state *S = arg;
  int more = 0;
  if (S->unrefs) nio__bind_release_refs(S);
  if (S->heap_kept) S->heap_kept(S->heap, 1);
  if (S->forced == 1) {
    /* The stop's grace period passed: close every connection so that the
    ** tasks waiting on one see "closed", give them this one turn, end.
    ** Output they queued is not dropped: those connections close after
    ** flush, and the engine gives them its own grace (engine_drain). */
    S->forced = 2;
    nio__bind_close_listeners(S, 0);
    nio__bind_close_udps(S, 0);
    nio__bind_close_conns(S, 1, 0);
    nio__bind_pools_close(S, 0);
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
    nio__bind_state_drain(S);
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
  /* A datagram socket is a server's accept loop too: it ends now. */
  nio__bind_close_udps(S, 0);
  /* Tasks waiting on coordination objects hear "closed" and can end. */
  nio__bind_close_waitqs(S, 0);
  S->grace.data = S;
  /* No timer for the grace period: it ends at once. */
  if (nio__timer_start(e, &S->grace, NB_STOP_GRACE_NS, state_grace_cb) < 0)
    state_grace_cb(&S->grace);
}

static void hook_finish(nio_engine *e, void *arg) {
  nb_state *S = arg;
  if (nio__timer_active(&S->grace)) nio__timer_stop(e, &S->grace);
  nio__bind_close_listeners(S, 1);
  nio__bind_close_udps(S, 1);
  nio__bind_close_conns(S, 0, 1);
  nio__bind_pools_close(S, 1);
  nio__bind_close_waitqs(S, 1);
  nio__engine_close_posts(e);
  nio__bind_messages_end(S);
  nio__bind_abandon_tasks(S);
  nio__bind_release_refs(S);
  nio__bind_threads_end(S);
  S->ended = 1;
}

int nio__bind_state_start(nb_state *S) {
  static const nio_engine_hooks hooks = {hook_start, hook_turn,
                                         hook_stop,  hook_finish,
                                         NULL,       nio__bind_message_hook};
  nio_engine_hooks h = hooks;
  h.arg = S;
  return nio__engine_start(S->e, &h);
}

/* ---- netio.run ------------------------------------------------------- */

static int run_in_task(lua_State *L, nb_state *S, nb_task *self) {
  nb_task *t = nio__bind_spawn(L, S, 1);
  t->joined = 1;
  return nio__bind_join_wait(L, self, t, -1, 1);
}

/* netio.run from a Lua state with no run: this thread waits while the
** worker runs the tasks. The main task's userdata stays on this stack. */
static int run_blocking(lua_State *L) {
  int nargs = lua_gettop(L) - 1, fidx, r, n;
  nb_state *S = nio__bind_state_new(L);
  nb_task *t;
  (void)nargs;
  fidx = 1;
  t = nio__bind_spawn(L, S, fidx);
  t->is_main = 1;
  S->main_task = t;
  /* fidx now holds the main task's userdata. */
  if ((r = nio__bind_state_engine(S, NULL)) != 0) {
    nio__bind_abandon_tasks(S);
    nio__bind_state_free(S);
    return luaL_error(L, "netio: cannot create the engine: %s",
                      nio_strerror(r));
  }
  if ((r = nio__bind_state_start(S)) == 0) r = nio__engine_join(S->e);
  if (r != 0 && !S->failed) {
    const char *be = getenv("NETIO_BACKEND");
    nio__bind_abandon_tasks(S);
    nio__bind_state_free(S);
    return luaL_error(L, "netio: cannot run the %s backend: %s",
                      be && be[0] ? be : "selected", nio_strerror(r));
  }
  nio__bind_state_free(S);
  if (t->status == NB_T_FAILED) {
    nio__bind_task_error(L, t);
    return lua_error(L);
  }
  n = nio__bind_task_results(L, t);
  return n;
}

int nio__bind_l_run(lua_State *L) {
  nb_state *S;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  S = nio__bind_current(L);
  if (S != NULL) return run_in_task(L, S, nio__bind_task(L, S, "run"));
  if (nio__bind_in_thread(L))
    return luaL_error(L, "netio: run cannot be called in a netio thread");
  return run_blocking(L);
}
