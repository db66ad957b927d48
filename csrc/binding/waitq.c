/*
** waitq.c: the "netio.waitq" class -- a FIFO of tasks waiting to be handed
** a value, the one primitive that touches the scheduler under the Lua
** coordination objects of lua/netio/sync.lua (semaphore, queue, cond).
**
**   wq:wait([timeout]) -> the value handed | nil, "timeout" | nil, "closed"
**   wq:wake([v])       -> true if the first waiter was handed v (or true)
**   wq:wakeall([v])    -> how many were
**   wq:close()         -> every waiter gets nil, "closed", and so do later
**                         waits
**   #wq                -> waiters that can still be handed a value
**
** A value is handed, not just signalled: the waker picks the waiter, so a
** permit or a queued value can never be taken by a task that came later,
** and a waiter whose timeout fired or that was canceled is skipped. The
** handed values wait in the userdata's user value (a table keyed by the
** task) until their task runs. Waits of a run are closed when it stops.
*/
#include <string.h>
#include "binding.h"

typedef struct nb_wq {
  nb_waitq q;
  nb_state *S;   /* NULL once the run ended */
  nio_link link; /* in S->wqs while S is set */
  int closed;
} nb_wq;

#define NB_WAITQ_MT "netio.waitq"

static nb_wq *wq_check(lua_State *L) {
  return luaL_checkudata(L, 1, NB_WAITQ_MT);
}

static void wq_unlink(nb_wq *wq) {
  nb_state *S = wq->S;
  if (S == NULL) return;
  nio__list_remove(&S->wqs, &wq->link);
  wq->S = NULL;
}

static void wq_close(nb_wq *wq) {
  wq->closed = 1;
  nio__bind_waitq_wake_all(&wq->q);
}

/* The end or the stop of a run: every wait of it is over. detach: the run
** ends, forget it. */
void nio__bind_close_waitqs(nb_state *S, int detach) {
  nio_link *k, *next;
  nio__list_each(&S->wqs, k, next) {
    nb_wq *wq = nio__list_item(k, nb_wq, link);
    wq_close(wq);
    if (detach) {
      nio__bind_waitq_clear(&wq->q);
      nio__list_remove(&S->wqs, k);
      wq->S = NULL;
    }
  }
}

/* core.waitq() */
int nio__bind_l_waitq(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  nb_wq *wq;
  if (S == NULL || S->e == NULL) {
    lua_pushliteral(L, "netio: waitq must be called from a netio task");
    return lua_error(L);
  }
  wq = lua_newuserdatauv(L, sizeof *wq, 1);
  memset(wq, 0, sizeof *wq);
  luaL_setmetatable(L, NB_WAITQ_MT);
  lua_newtable(L); /* handed values, by task */
  lua_setiuservalue(L, -2, 1);
  wq->S = S;
  wq->closed = S->stopping || S->draining;
  nio__list_push_front(&S->wqs, &wq->link);
  return 1;
}

/* Whether a value was handed to t: pushes it and clears it (1), or
** nothing (0). The waitq is at index 1. */
static int wq_take(lua_State *L, nb_task *t) {
  lua_getiuservalue(L, 1, 1);
  if (lua_rawgetp(L, -1, t) == LUA_TNIL) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pushnil(L);
  lua_rawsetp(L, -3, t);
  lua_remove(L, -2);
  return 1;
}

static int wq_wait_k(lua_State *L, int status, lua_KContext ctx) {
  nb_wq *wq = lua_touserdata(L, 1);
  nb_task *t;
  (void)status;
  NB_K_GUARD(t, L, wq->S, ctx, wq_wait_k);
  /* Handed a value: it is ours, even if a cancel or the timeout came too
  ** (the cancel then ends the task at its next wait). */
  if (wq_take(L, t)) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    return 1;
  }
  if (wq->closed || t->timedout) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    lua_pushnil(L);
    if (wq->closed)
      lua_pushliteral(L, "closed");
    else
      lua_pushliteral(L, "timeout");
    return 2;
  }
  /* Woken without a value (a resume from elsewhere): keep our place. */
  if (!nio__bind_in_waitq(t)) nio__bind_waitq_add_first(&wq->q, t);
  return nio__bind_yield(L, t, ctx, wq_wait_k);
}

static int l_wq_wait(lua_State *L) {
  nb_wq *wq = wq_check(L);
  int64_t tmo = nio__bind_opt_timeout(L, 2, -1);
  nb_task *t = nio__bind_task(L, wq->S, "wait");
  lua_settop(L, 1);
  if (wq->closed) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  if (nio__bind_wait_begin(t, tmo) < 0) return nio__bind_nomem(L);
  nio__bind_waitq_add(&wq->q, t);
  return nio__bind_yield(L, t, 0, wq_wait_k);
}

/* The first waiter that can still take a value, out of the queue. */
static nb_task *wq_pick(nb_wq *wq) {
  nio_link *k;
  for (k = nio__bind_waitq_next(&wq->q, NULL); k;
       k = nio__bind_waitq_next(&wq->q, k)) {
    nb_task *t = nio__list_item(k, nb_task, wlink);
    if (!t->timedout && !t->canceled) {
      nio__bind_waitq_remove(t);
      return t;
    }
  }
  return NULL;
}

/* Hand the value at idx to t and wake it. */
static void wq_hand(lua_State *L, nb_task *t, int idx) {
  lua_getiuservalue(L, 1, 1);
  if (lua_isnoneornil(L, idx))
    lua_pushboolean(L, 1);
  else
    lua_pushvalue(L, idx);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
  nio__bind_wake(t);
}

static int l_wq_wake(lua_State *L) {
  nb_wq *wq = wq_check(L);
  nb_task *t = wq->closed ? NULL : wq_pick(wq);
  if (t) wq_hand(L, t, 2);
  lua_pushboolean(L, t != NULL);
  return 1;
}

static int l_wq_wakeall(lua_State *L) {
  nb_wq *wq = wq_check(L);
  nb_task *t;
  lua_Integer n = 0;
  while (!wq->closed && (t = wq_pick(wq)) != NULL) {
    wq_hand(L, t, 2);
    n++;
  }
  lua_pushinteger(L, n);
  return 1;
}

static int l_wq_close(lua_State *L) {
  wq_close(wq_check(L));
  return 0;
}

static int l_wq_len(lua_State *L) {
  nb_wq *wq = wq_check(L);
  lua_Integer n = 0;
  for (nio_link *k = nio__bind_waitq_next(&wq->q, NULL); k;
       k = nio__bind_waitq_next(&wq->q, k)) {
    nb_task *t = nio__list_item(k, nb_task, wlink);
    if (!t->timedout && !t->canceled) n++;
  }
  lua_pushinteger(L, n);
  return 1;
}

static int l_wq_gc(lua_State *L) {
  nb_wq *wq = wq_check(L);
  /* Nobody waits in a collected waitq: a waiter keeps it on its stack. */
  wq_unlink(wq);
  return 0;
}

void nio__bind_waitq_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"wait", l_wq_wait},
                                     {"wake", l_wq_wake},
                                     {"wakeall", l_wq_wakeall},
                                     {"close", l_wq_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__len", l_wq_len}, {"__gc", l_wq_gc}, {NULL, NULL}};
  nio__bind_class(L, NB_WAITQ_MT, methods, meta);
}
