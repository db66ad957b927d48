/*
** message.c: what other threads hand to a run -- netio.send (bytes to a
** connection by id, from any Lua state in any thread), netio.post and
** netio.receive in tasks (the engine's mailbox, fed by netio.post from
** threads and tasks, and by nio_post from C).
*/
#include <stdlib.h>
#include <string.h>
#include "binding.h"

/* ---- send ------------------------------------------------------------- */

void nio__bind_send_data(lua_State *L, int idx, const char **p, size_t *len) {
  int tp = lua_type(L, idx);
  idx = lua_absindex(L, idx);
  if (tp == LUA_TSTRING || tp == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    *p = lua_tolstring(L, -1, len);
    return;
  }
  if (tp == LUA_TTABLE) {
    luaL_Buffer b;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    /* Check every element before building anything. */
    for (lua_Integer i = 1; i <= n; i++) {
      int et = lua_rawgeti(L, idx, i);
      lua_pop(L, 1);
      if (et != LUA_TSTRING && et != LUA_TNUMBER) {
        lua_pushfstring(L, "string expected at index %I, got %s", i,
                        lua_typename(L, et));
        luaL_argerror(L, idx, lua_tostring(L, -1));
      }
    }
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    *p = lua_tolstring(L, -1, len);
    return;
  }
  luaL_argerror(L, idx, "string or array of strings expected");
}

int nio__bind_push_result(lua_State *L, int r) {
  if (r == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  if (r == NIO_ECLOSED)
    lua_pushliteral(L, "closed");
  else if (r == NIO_EBUSY)
    lua_pushliteral(L, "busy");
  else
    lua_pushstring(L, nio_strerror(r));
  return 2;
}

/* netio.send(id, data): any Lua state, any thread, in a task or not. */
int nio__bind_l_send(lua_State *L) {
  lua_Integer id;
  const char *p;
  size_t len;
  int isint;
  id = lua_tointegerx(L, 1, &isint);
  if (!isint) {
    if (lua_type(L, 1) == LUA_TNUMBER)
      luaL_argerror(L, 1, "number has no integer representation");
    luaL_typeerror(L, 1, "connection id");
  }
  luaL_argcheck(L, id > 0, 1, "connection ids are positive");
  nio__bind_send_data(L, 2, &p, &len);
  return nio__bind_push_result(L, nio_send((uint64_t)id, p, len));
}

/* ---- the engine's mailbox -------------------------------------------- */

void nio__bind_message_hook(nio_engine *e, void *arg, nio_msg *m) {
  nb_state *S = arg;
  (void)e;
  if (S->ended) {
    nio__msg_free(S->e, m);
    return;
  }
  if (S->mtail)
    *nio__msg_next(S->mtail) = m;
  else
    S->mhead = m;
  S->mtail = m;
  nio__bind_waitq_wake_one(&S->receivers);
}

void nio__bind_messages_end(nb_state *S) {
  nio_msg *m = S->mhead, *next;
  S->mhead = S->mtail = NULL;
  for (; m; m = next) {
    next = *nio__msg_next(m);
    nio__msg_free(S->e, m);
  }
  nio__bind_waitq_clear(&S->receivers);
}

/* A message taken off the queue is held by this box until its values are
** pushed, so that an error while pushing them (memory) still frees it. */
typedef struct msg_box {
  nio_engine *e;
  nio_msg *m;
} msg_box;

static int msg_box_gc(lua_State *L) {
  msg_box *b = lua_touserdata(L, 1);
  if (b->m) nio__msg_free(b->e, b->m);
  b->m = NULL;
  return 0;
}

int nio__bind_push_message(lua_State *L, nio_engine *e, nio_msg *m) {
  msg_box *b;
  const char *p;
  size_t len;
  int base, n;
  b = lua_newuserdatauv(L, sizeof *b, 0);
  b->e = e;
  b->m = m;
  if (luaL_newmetatable(L, "netio.msgbox")) {
    lua_pushcfunction(L, msg_box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  base = lua_gettop(L);
  p = nio__msg_data(m, &len);
  if (nio__msg_kind(m) == NIO_POST_RAW) {
    lua_pushlstring(L, p, len);
    n = 1;
  } else {
    n = nio__bind_decode(L, p, len);
  }
  nio__msg_free(e, m);
  b->m = NULL;
  lua_remove(L, base);
  return n;
}

/* Take the first message for a task; returns the number of values, or -1
** when there is none. */
static int receive_take(lua_State *L, nb_state *S) {
  nio_msg *m = S->mhead;
  int n;
  if (m == NULL) return -1;
  /* Push the box before unlinking: its allocation may raise. */
  luaL_checkstack(L, 2, NULL);
  S->mhead = *nio__msg_next(m);
  if (S->mhead == NULL) S->mtail = NULL;
  *nio__msg_next(m) = NULL;
  n = nio__bind_push_message(L, S->e, m);
  return n;
}

static int receive_k(lua_State *L, int status, lua_KContext ctx) {
  nb_state *S = (nb_state *)ctx;
  nb_task *t;
  int n;
  (void)status;
  NB_K_GUARD(t, L, S, ctx, receive_k);
  if (S->mhead) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    lua_settop(L, 0);
    n = receive_take(L, S);
    /* Another task may wait too, and more messages may have come. */
    if (S->mhead) nio__bind_waitq_wake_one(&S->receivers);
    return n;
  }
  if (t->timedout) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  /* Woken for a message another task took first: keep our place. */
  if (!nio__bind_in_waitq(t)) nio__bind_waitq_add_first(&S->receivers, t);
  return nio__bind_yield(L, t, ctx, receive_k);
}

/* netio.receive([timeout]) in a task; netio threads have their own. */
int nio__bind_l_receive(lua_State *L) {
  int64_t tmo = nio__bind_opt_timeout(L, 1, -1);
  nb_task *t = nio__bind_task(L, NULL, "receive");
  nb_state *S = t->S;
  if (S->mhead && nio__bind_waitq_empty(&S->receivers)) {
    lua_settop(L, 0);
    return receive_take(L, S);
  }
  if (nio__bind_wait_begin(t, tmo) < 0) return nio__bind_nomem(L);
  nio__bind_waitq_add(&S->receivers, t);
  return nio__bind_yield(L, t, (lua_KContext)S, receive_k);
}

/* netio.post(...) in a task: a message to its own engine (netio threads
** have their own, to the engine that started them). */
int nio__bind_l_post(lua_State *L) {
  nb_state *S = nio__bind_current(L);
  const char *p;
  size_t len;
  if (S == NULL || S->e == NULL) {
    lua_pushliteral(L, "netio: post must be called from a netio task or "
                       "thread");
    return lua_error(L);
  }
  luaL_checkany(L, 1);
  nio__bind_encode(L, 1, lua_gettop(L), "post", 1);
  p = lua_tolstring(L, -1, &len);
  return nio__bind_push_result(L,
                               nio__engine_post(S->e, NIO_POST_VALUES, p, len));
}
