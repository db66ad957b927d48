/*
** task.c: the "netio.task" class -- coroutines run by the loop: spawn,
** the ready list, waits with timeouts, join, and uncaught errors.
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"
#include "util/log.h"

/* ---- ready list and waits ------------------------------------------- */

static void task_enqueue(nb_task *t) {
  nb_state *S = t->S;
  t->queued = 1;
  t->next = NULL;
  if (S->ready_tail)
    S->ready_tail->next = t;
  else
    S->ready_head = t;
  S->ready_tail = t;
}

void nio__bind_wake(nb_task *t) {
  if (t->status == NB_T_WAIT && !t->queued && t->S) task_enqueue(t);
}

static void task_timer_cb(nio_timer *tm) {
  nb_task *t = tm->data;
  t->timedout = 1;
  nio__bind_wake(t);
}

/* t's side struct, allocated at its first need; NULL when out of memory. */
static nb_task_x *task_x(nb_task *t) {
  if (t->x == NULL) t->x = calloc(1, sizeof *t->x);
  return t->x;
}

/* Stop t's timer, if it has one armed. */
static void task_timer_stop(nio_engine *e, nb_task *t) {
  if (t->x && nio__timer_active(&t->x->timer)) nio__timer_stop(e, &t->x->timer);
}

/* The task ended or was abandoned: nobody waits for it through its side
** struct any more (joiners were woken or forgotten; watcher nodes are
** detached here, as their waiters find it ended by its status), free it. */
static void task_x_free(nb_task *t) {
  nb_task_x *x = t->x;
  nio_link *k;
  if (x == NULL) return;
  while ((k = nio__list_pop_front(&x->watchers)) != NULL)
    nio__list_item(k, nb_watch, link)->target = NULL;
  t->x = NULL;
  free(x);
}

int nio__bind_task_nested(nb_task *t, lua_State *L) {
  if (task_x(t) == NULL) return NIO_ENOMEM;
  t->x->nested = L;
  return 0;
}

int nio__bind_wait_arm(nb_task *t, int64_t timeout_ns) {
  nio_engine *e = t->S->e;
  int r;
  t->timedout = 0;
  task_timer_stop(e, t);
  if (timeout_ns >= 0) {
    /* Timers count from the turn's cached time; the task may have run
    ** long since (a big string.rep): count from now instead. */
    uint64_t late = nio__now_ns() - nio__engine_now(e);
    if (task_x(t) == NULL) return NIO_ENOMEM;
    t->x->timer.data = t;
    r = nio__timer_start(e, &t->x->timer, (uint64_t)timeout_ns + late,
                         task_timer_cb);
    if (r < 0) return r;
  }
  t->status = NB_T_WAIT;
  return 0;
}

int nio__bind_nomem(lua_State *L) {
  lua_pushnil(L);
  lua_pushstring(L, nio_strerror(NIO_ENOMEM));
  return 2;
}

const char nio__bind_nested_mark = 0;

int nio__bind_yield_x(lua_State *L, nb_task *t, lua_KContext ctx,
                      lua_KFunction k) {
  /* A canceled task ends at its current or next wait. */
  if (t->canceled) return nio__bind_canceled(L, t);
  t->status = NB_T_WAIT;
  if (L != t->co) {
    /* A plain coroutine inside the task: its resumer, netio's
    ** coroutine.resume, sees the mark and yields the task itself. */
    lua_pushlightuserdata(L, (void *)&nio__bind_nested_mark);
    return lua_yieldk(L, 1, ctx, k);
  }
  return lua_yieldk(L, 0, ctx, k);
}

void nio__bind_wait_stop(nb_task *t) {
  if (t->S) task_timer_stop(t->S->e, t);
}

static void task_vacate(nb_task *t);

void nio__bind_undo_wait(nb_task *t) {
  void (*fn)(nb_task *, void *) = t->cancel_fn;
  void *arg = t->cancel_arg;
  t->status = NB_T_READY; /* running again */
  task_vacate(t);
  nio__bind_waitq_remove(t);
  nio__bind_wait_end(t);
  if (fn) fn(t, arg);
}

int nio__bind_canceled(lua_State *L, nb_task *t) {
  nio__bind_undo_wait(t);
  /* An exact string, as "closed" and "timeout": no position prefix. */
  lua_pushliteral(L, "canceled");
  return lua_error(L);
}

/* Link k in after prev (of q's circle). */
static void waitq_insert(nb_waitq *q, nio_link *prev, nio_link *k) {
  if (q->head.next == NULL) q->head.next = q->head.prev = &q->head;
  k->prev = prev;
  k->next = prev->next;
  prev->next->prev = k;
  prev->next = k;
}

void nio__bind_waitq_add(nb_waitq *q, nb_task *t) {
  if (q->head.next == NULL) q->head.next = q->head.prev = &q->head;
  waitq_insert(q, q->head.prev, &t->wlink);
}

void nio__bind_waitq_add_first(nb_waitq *q, nb_task *t) {
  waitq_insert(q, &q->head, &t->wlink);
}

void nio__bind_waitq_remove(nb_task *t) {
  nio_link *k = &t->wlink;
  if (k->next == NULL) return;
  k->prev->next = k->next;
  k->next->prev = k->prev;
  k->prev = k->next = NULL;
}

void nio__bind_waitq_wake_all(nb_waitq *q) {
  nio_link *k;
  while ((k = nio__bind_waitq_next(q, NULL)) != NULL) {
    nb_task *t = nio__list_item(k, nb_task, wlink);
    nio__bind_waitq_remove(t);
    nio__bind_wake(t);
  }
}

nb_task *nio__bind_waitq_wake_one(nb_waitq *q) {
  nb_task *t = nio__list_item(nio__bind_waitq_next(q, NULL), nb_task, wlink);
  if (t == NULL) return NULL;
  nio__bind_waitq_remove(t);
  nio__bind_wake(t);
  return t;
}

void nio__bind_waitq_clear(nb_waitq *q) {
  nio_link *k;
  /* The waiters may still be removed later (abandoned tasks): detached,
  ** that is a no-op. */
  while ((k = nio__bind_waitq_next(q, NULL)) != NULL)
    nio__bind_waitq_remove(nio__list_item(k, nb_task, wlink));
}

/* ---- spawn ---------------------------------------------------------- */

/* Spare coroutines: those of tasks that returned, kept for the next spawns
** (at most NB_SPARE_MAX, in the array T[&S->nspare], made at its full
** size with the state so that keeping one never allocates): a spawn then
** skips lua_newthread, its 3 or 4 allocations, and the collector's work to
** free them. */

/* Push a spare coroutine and return it, or NULL (nothing pushed). */
static lua_State *spare_take(lua_State *L, nb_state *S) {
  lua_State *co;
  if (S->nspare == 0) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, S);
  lua_rawgetp(L, -1, &S->nspare);
  lua_rawgeti(L, -1, (lua_Integer)S->nspare);
  co = lua_tothread(L, -1);
  lua_pushnil(L);
  lua_rawseti(L, -3, (lua_Integer)S->nspare--);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return co;
}

/* t returned (LUA_OK): keep its coroutine as a spare if it is clean --
** finished (so every frame returned: no open upvalue, no pending <close>
** variable), no hook set -- and there is room. Its results, if any, go:
** only a task that ended with none (or canceled) gives it up. The task's
** userdata forgets it (t->co = NULL, user value 1 nil). */
static void spare_put(nb_state *S, nb_task *t) {
  lua_State *L = S->L, *co = t->co;
  if (S->nspare >= NB_SPARE_MAX || t->is_main || lua_status(co) != LUA_OK ||
      lua_gethook(co) != NULL ||
      (t->status == NB_T_DONE && lua_gettop(co) != 0))
    return;
  lua_settop(co, 0);
  lua_rawgetp(L, LUA_REGISTRYINDEX, S); /* T */
  lua_rawgetp(L, -1, &S->nspare);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_rawseti(L, -2, (lua_Integer)++S->nspare); /* in the array: no alloc */
  lua_rawgeti(L, -2, t->anchor);                /* the task's userdata */
  lua_pushnil(L);
  lua_setiuservalue(L, -2, 1);
  lua_pop(L, 3);
  t->co = NULL;
}

nb_task *nio__bind_spawn(lua_State *L, nb_state *S, int fidx) {
  int n = lua_gettop(L) - fidx; /* arguments */
  nb_task *t;
  lua_State *co;
  luaL_checkstack(L, 4, "netio: too many arguments");
  t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);
  t->status = NB_T_DONE; /* until it is anchored, nothing may run it */
  luaL_setmetatable(L, NB_TASK_MT);
  if ((co = spare_take(L, S)) == NULL) co = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  if (!lua_checkstack(co, n + 2)) luaL_error(L, "netio: too many arguments");
  lua_rotate(L, fidx, 1); /* the task below the function */
  lua_xmove(L, co, n + 1);
  t->co = co;
  t->S = S;
  t->n = n;
  /* Anchor: released exactly once, in task_end or at the run's end. */
  if (S->ntasks >= UINT32_MAX - 1) luaL_error(L, "netio: too many tasks");
  lua_rawgetp(L, LUA_REGISTRYINDEX, S);
  lua_pushvalue(L, fidx);
  t->anchor = (uint32_t)++S->ntasks;
  lua_rawseti(L, -2, t->anchor);
  lua_pop(L, 1);
  t->status = NB_T_READY;
  task_enqueue(t);
  return t;
}

int nio__bind_l_spawn(lua_State *L) {
  nb_state *S;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  S = nio__bind_current(L);
  if (S == NULL || S->draining || S->forced) {
    lua_pushliteral(L, "netio: spawn must be called from a netio task");
    return lua_error(L);
  }
  nio__bind_spawn(L, S, 1);
  return 1;
}

/* ---- running tasks -------------------------------------------------- */

/* Drop the anchor of an ended (or abandoned) task: the last task anchored
** takes its place, so the anchors stay dense. */
static void task_unlink(nb_state *S, nb_task *t) {
  lua_State *L = S->L;
  lua_Integer last = (lua_Integer)S->ntasks--;
  lua_rawgetp(L, LUA_REGISTRYINDEX, S);
  if (t->anchor != last) {
    lua_rawgeti(L, -1, last);
    ((nb_task *)lua_touserdata(L, -1))->anchor = t->anchor;
    lua_rawseti(L, -2, t->anchor);
  }
  lua_pushnil(L);
  lua_rawseti(L, -2, last);
  lua_pop(L, 1);
  t->anchor = 0;
}

/* In a protected call on the loop thread: turn the error of a failed task
** into its final value (message + traceback), log it, and close the
** coroutine's pending to-be-closed variables. */
/* Run the pending <close> variables of a task that raised, as the task
** itself: their netio calls that do not wait (a last send, a close) work;
** one that would wait fails (a C boundary). */
static void task_close_vars(nb_task *t) {
  nb_state *S = t->S;
  nb_task *was = S->current;
  S->current = t;
  lua_resetthread(t->co);
  S->current = was;
}

static int task_failed_p(lua_State *L) {
  nb_task *t = lua_touserdata(L, 1);
  lua_State *co = t->co;
  const char *msg;
  lua_pushvalue(co, -1);
  lua_xmove(co, L, 1); /* the error value */
  if ((msg = lua_tostring(L, -1)) != NULL) {
    luaL_traceback(L, co, msg, 0);
    lua_remove(L, -2);
  }
  if (!t->is_main && !t->joined &&
      (t->x == NULL || (nio__bind_waitq_empty(&t->x->joiners) &&
                        nio__list_empty(&t->x->watchers)))) {
    lua_pushvalue(L, -1);
    msg = lua_tostring(L, -1);
    if (msg == NULL)
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, -1));
    nio__log(NIO_LOG_ERROR, "netio: uncaught error in task: %s", msg);
    lua_settop(L, 2);
  }
  task_close_vars(t);
  /* The final error value stays on the coroutine's stack (the reset left
  ** room: LUA_MINSTACK slots). */
  lua_xmove(L, co, 1);
  return 0;
}

static void task_vacate(nb_task *t) {
  if (t->slot && *t->slot == t) *t->slot = NULL;
  t->slot = NULL;
}

static void task_end(nb_state *S, nb_task *t, int status, int nres) {
  task_timer_stop(S->e, t);
  task_vacate(t);
  nio__bind_waitq_remove(t);
  if (t->canceled) {
    /* However it ended -- the cancel error, a cleanup's error, or a
    ** return after catching it -- a canceled task joins as "canceled",
    ** and nothing is logged. Its pending <close> variables run now. */
    t->status = NB_T_CANCELED;
    if (status != LUA_OK) task_close_vars(t);
  } else if (status == LUA_OK) {
    t->status = NB_T_DONE;
    t->n = nres;
  } else {
    t->status = NB_T_FAILED;
    lua_pushcfunction(S->L, task_failed_p);
    lua_pushlightuserdata(S->L, t);
    if (lua_pcall(S->L, 1, 0, 0) != LUA_OK) {
      nio__log(NIO_LOG_ERROR, "netio: uncaught error in task (%s)",
               lua_tostring(S->L, -1) ? lua_tostring(S->L, -1) : "?");
      lua_pop(S->L, 1);
    }
    if (t->is_main) S->failed = 1;
  }
  if (t->x) {
    nio__bind_waitq_wake_all(&t->x->joiners);
    for (nio_link *k = t->x->watchers.first; k; k = k->next)
      nio__bind_wake(nio__list_item(k, nb_watch, link)->waiter);
    task_x_free(t);
  }
  if (status == LUA_OK) spare_put(S, t);
  task_unlink(S, t);
  t->S = NULL; /* the task may outlive the run */
}

static void task_resume(nb_state *S, nb_task *t) {
  int nres = 0, nargs = 0, st;
  if (!t->started && t->canceled) { /* canceled before it ever ran */
    t->started = 1;
    task_end(S, t, LUA_OK, 0);
    return;
  }
  if (!t->started) {
    t->started = 1;
    nargs = t->n;
  }
  t->status = NB_T_READY;
  S->current = t;
  st = lua_resume(t->co, S->L, nargs, &nres);
  S->current = NULL;
  if (st == LUA_YIELD) {
    /* Waiting (the mark of a wait passed up from a plain coroutine is
    ** dropped too), or a bare coroutine.yield(): run it again next turn.
    ** netio's own waits yield nothing: no pop to pay then. */
    if (nres > 0) lua_pop(t->co, nres);
    if (t->status != NB_T_WAIT) task_enqueue(t);
    return;
  }
  task_end(S, t, st, nres);
}

int nio__bind_run_ready(nb_state *S) {
  nb_task *t = S->ready_head, *next;
  /* One batch: tasks woken while it runs (sleep(0) included) wait for the
  ** next turn, so I/O completions get their turn in between. */
  S->ready_head = S->ready_tail = NULL;
  for (; t; t = next) {
    next = t->next;
    t->next = NULL;
    t->queued = 0;
    if (S->failed) continue;
    if (t->status == NB_T_READY || t->status == NB_T_WAIT) task_resume(S, t);
  }
  return S->ready_head != NULL;
}

void nio__bind_abandon_tasks(nb_state *S) {
  while (S->ntasks > 0) {
    nb_task *t;
    lua_rawgetp(S->L, LUA_REGISTRYINDEX, S);
    lua_rawgeti(S->L, -1, (lua_Integer)S->ntasks);
    t = lua_touserdata(S->L, -1);
    lua_pop(S->L, 2);
    task_timer_stop(S->e, t);
    nio__bind_waitq_remove(t);
    task_vacate(t);
    t->status = NB_T_ABANDONED;
    t->queued = 0;
    /* Its joiners are abandoned too: forget them with the side struct. */
    task_x_free(t);
    task_unlink(S, t);
    t->S = NULL;
  }
  /* Tasks that ended keep a pointer to S; it goes away with the run. */
  S->ready_head = S->ready_tail = NULL;
}

/* ---- join ------------------------------------------------------------ */

void nio__bind_task_error(lua_State *L, nb_task *t) {
  lua_pushvalue(t->co, -1); /* room: see task_failed_p */
  lua_xmove(t->co, L, 1);
}

int nio__bind_task_results(lua_State *L, nb_task *t) {
  int base, n = t->n;
  if (t->status != NB_T_DONE) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (n == 0) { /* its coroutine may be a spare now (spare_put) */
    lua_pushboolean(L, 1);
    return 1;
  }
  if (!lua_checkstack(L, n + 2) || !lua_checkstack(t->co, 1))
    return luaL_error(L, "netio: too many results");
  lua_pushboolean(L, 1);
  base = lua_gettop(t->co) - n;
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(t->co, base + i);
    lua_xmove(t->co, L, 1);
  }
  return n + 1;
}

/* Results of join on the task at idx, which ended: true, results | nil,
** err. With raise, the error is raised instead (netio.run in a task). */
static int join_results(lua_State *L, int idx, int raise) {
  nb_task *target = lua_touserdata(L, idx);
  switch (target->status) {
  case NB_T_DONE:
    return nio__bind_task_results(L, target);
  case NB_T_FAILED:
    lua_pushnil(L);
    nio__bind_task_error(L, target);
    return raise ? lua_error(L) : 2;
  case NB_T_CANCELED:
    lua_pushnil(L);
    lua_pushliteral(L, "canceled");
    return 2;
  default:
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
}

#define task_ended(t)                                                          \
  ((t)->status == NB_T_DONE || (t)->status == NB_T_FAILED ||                   \
   (t)->status == NB_T_ABANDONED || (t)->status == NB_T_CANCELED)

/* ctx: the stack index of the target's userdata * 2 + raise. */
static int join_k(lua_State *L, int status, lua_KContext ctx) {
  int idx = (int)(ctx >> 1), raise = (int)(ctx & 1);
  nb_task *target = lua_touserdata(L, idx);
  nb_task *t;
  (void)status;
  NB_K_GUARD(t, L, NULL, ctx, join_k);
  if (task_ended(target)) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    return join_results(L, idx, raise);
  }
  if (t->timedout) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  return nio__bind_yield(L, t, ctx, join_k);
}

int nio__bind_join_wait(lua_State *L, nb_task *t, nb_task *target,
                        int64_t timeout_ns, int raise) {
  int idx = lua_absindex(L, -1); /* target's userdata is on top */
  if (task_x(target) == NULL || nio__bind_wait_begin(t, timeout_ns) < 0)
    return nio__bind_nomem(L);
  nio__bind_waitq_add(&target->x->joiners, t);
  return nio__bind_yield(L, t, ((lua_KContext)idx << 1) | raise, join_k);
}

static int l_task_join(lua_State *L) {
  nb_task *target = luaL_checkudata(L, 1, NB_TASK_MT);
  int64_t tmo = nio__bind_opt_timeout(L, 2, -1);
  nb_task *t;
  lua_settop(L, 1);
  if (task_ended(target)) return join_results(L, 1, 0);
  t = nio__bind_task(L, target->S, "join");
  luaL_argcheck(L, t != target, 1, "a task cannot join itself");
  return nio__bind_join_wait(L, t, target, tmo, 0);
}

/* task:cancel(): true when the task will end canceled, false when it had
** ended already. */
static int l_task_cancel(lua_State *L) {
  nb_task *t = luaL_checkudata(L, 1, NB_TASK_MT);
  if (task_ended(t) || t->S == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  t->canceled = 1;
  /* Waiting: its wait ends now. Running (itself), or ready: at its next
  ** wait. Never started: it never runs. */
  if (t->status == NB_T_WAIT) nio__bind_wake(t);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- netio.wait ------------------------------------------------------- */

typedef struct wait_nodes {
  int n;
  nb_watch w[];
} wait_nodes;

static void wait_unlink(nb_task *t, void *arg) {
  wait_nodes *ws = arg;
  (void)t;
  for (int i = 0; i < ws->n; i++) {
    nb_watch *w = &ws->w[i];
    if (w->target == NULL) continue;
    nio__list_remove(&w->target->x->watchers, &w->link);
    w->target = NULL;
  }
}

/* The first of the tasks at 1..n that ended, in argument order: push it
** and its join results. Returns the count, or 0 if none ended. */
static int wait_first(lua_State *L, int n) {
  for (int i = 1; i <= n; i++) {
    nb_task *target = lua_touserdata(L, i);
    if (task_ended(target)) {
      lua_pushvalue(L, i);
      return 1 + join_results(L, lua_gettop(L), 0);
    }
  }
  return 0;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  int n = (int)ctx, r;
  nb_task *t;
  (void)status;
  NB_K_GUARD(t, L, NULL, ctx, wait_k);
  if ((r = wait_first(L, n)) > 0) {
    wait_unlink(t, lua_touserdata(L, n + 1));
    nio__bind_wait_end(t);
    return r;
  }
  return nio__bind_yield(L, t, ctx, wait_k);
}

int nio__bind_l_wait(lua_State *L) {
  int n = lua_gettop(L), r;
  wait_nodes *ws;
  nb_task *t;
  luaL_argexpected(L, n > 0, 1, "task");
  for (int i = 1; i <= n; i++) luaL_checkudata(L, i, NB_TASK_MT);
  if ((r = wait_first(L, n)) > 0) return r;
  t = nio__bind_task(L, NULL, "wait");
  for (int i = 1; i <= n; i++)
    luaL_argcheck(L, lua_touserdata(L, i) != t, i,
                  "a task cannot wait for itself");
  for (int i = 1; i <= n; i++)
    if (task_x(lua_touserdata(L, i)) == NULL)
      return luaL_error(L, "%s", nio_strerror(NIO_ENOMEM));
  ws = lua_newuserdatauv(L, sizeof *ws + (size_t)n * sizeof(nb_watch), 0);
  ws->n = n;
  for (int i = 0; i < n; i++) {
    nb_watch *w = &ws->w[i];
    w->waiter = t;
    w->target = lua_touserdata(L, i + 1);
    nio__list_push_front(&w->target->x->watchers, &w->link);
  }
  nio__bind_wait_begin(t, -1);
  nio__bind_on_cancel(t, wait_unlink, ws);
  return nio__bind_yield(L, t, (lua_KContext)n, wait_k);
}

static int l_task_status(lua_State *L) {
  static const char *const names[] = {"ready",  "waiting",   "done",
                                      "failed", "abandoned", "canceled"};
  nb_task *t = luaL_checkudata(L, 1, NB_TASK_MT);
  if (t->S && t->S->current == t)
    lua_pushliteral(L, "running");
  else
    lua_pushstring(L, names[t->status]);
  return 1;
}

static int l_task_tostring(lua_State *L) {
  nb_task *t = luaL_checkudata(L, 1, NB_TASK_MT);
  lua_pushfstring(L, "netio.task (%p)", (void *)t);
  return 1;
}

void nio__bind_task_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"join", l_task_join},
                                     {"status", l_task_status},
                                     {"cancel", l_task_cancel},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__tostring", l_task_tostring},
                                  {NULL, NULL}};
  nio__bind_class(L, NB_TASK_MT, methods, meta);
}
