/*
** listener.c: the "netio.listener" class -- accept in tasks, getsockname,
** close (waking the tasks waiting in accept with nil, "closed").
*/
#include <string.h>
#include "binding.h"

static nb_listener *listener_check(lua_State *L) {
  return nio__bind_check(L, 1, NB_LISTENER_MT);
}

nb_listener *nio__bind_listener_new(lua_State *L, nb_state *S) {
  nb_listener *nl = lua_newuserdatauv(L, sizeof *nl, 0);
  memset(nl, 0, sizeof *nl);
  luaL_setmetatable(L, NB_LISTENER_MT);
  nl->S = S;
  nio__list_push_front(&S->listeners, &nl->link);
  return nl;
}

void nio__bind_listener_cb(nio_listener *l, int events) {
  nb_listener *nl = l->udata;
  (void)events;
  /* Every waiting task tries: one wake-up may stand for several pending
  ** connections. */
  if (nl) nio__bind_waitq_wake_all(&nl->acceptors);
}

static void listener_close(nb_listener *nl) {
  if (nl->l == NULL) return;
  nl->l->udata = NULL;
  nio__listener_close(nl->l);
  nl->l = NULL;
  nio__bind_waitq_wake_all(&nl->acceptors);
}

static void listener_unlink(nb_listener *nl) {
  nb_state *S = nl->S;
  if (S == NULL) return;
  nio__list_remove(&S->listeners, &nl->link);
  nl->S = NULL;
}

void nio__bind_close_listeners(nb_state *S, int detach) {
  nio_link *k, *next;
  nio__list_each(&S->listeners, k, next) {
    nb_listener *nl = nio__list_item(k, nb_listener, link);
    listener_close(nl);
    if (detach) {
      nio__bind_waitq_clear(&nl->acceptors);
      nio__list_remove(&S->listeners, k);
      nl->S = NULL;
    }
  }
}

/* Push a conn for a pending connection, or return 0. */
static int accept_try(lua_State *L, nb_listener *nl) {
  nio_conn *c = nio__listener_accept(nl->l, nio__bind_conn_cb, NULL);
  nb_conn *nb;
  if (c == NULL) return 0;
  nb = nio__bind_conn_new(L, nl->S, 0);
  nio__bind_conn_attach(nb, c);
  nb->connected = 1;
  return 1;
}

static int accept_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  nb_listener *nl = lua_touserdata(L, 1);
  nb_task *t;
  (void)status;
  NB_K_GUARD(t, L, nl->S, ctx, accept_k);
  if (nl->l == NULL) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    return accept_closed(L);
  }
  if (accept_try(L, nl)) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    return 1;
  }
  if (nl->l->dead) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    return nio__bind_fail(L, nl->l->err);
  }
  if (t->timedout) {
    nio__bind_waitq_remove(t);
    nio__bind_wait_end(t);
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  if (!nio__bind_in_waitq(t)) nio__bind_waitq_add(&nl->acceptors, t);
  return nio__bind_yield(L, t, ctx, accept_k);
}

static int l_listener_accept(lua_State *L) {
  nb_listener *nl = listener_check(L);
  int64_t tmo = nio__bind_opt_timeout(L, 2, -1);
  nb_task *t = nio__bind_task(L, nl->S, "accept");
  if (nl->l == NULL) return accept_closed(L);
  lua_settop(L, 2);
  if (accept_try(L, nl)) return 1;
  if (nl->l->dead) return nio__bind_fail(L, nl->l->err);
  if (nio__bind_wait_begin(t, tmo) < 0) return nio__bind_nomem(L);
  nio__bind_waitq_add(&nl->acceptors, t);
  return nio__bind_yield(L, t, 0, accept_k);
}

static int l_listener_getsockname(lua_State *L) {
  nb_listener *nl = listener_check(L);
  nio_addr a;
  char ip[NIO_ADDR_TEXT_MAX];
  int port, r;
  if (nl->l == NULL) return accept_closed(L);
  if ((r = nio__listener_getsockname(nl->l, &a)) == 0)
    r = nio__addr_format(&a, ip, sizeof ip, &port);
  if (r < 0) return nio__bind_fail(L, r);
  lua_pushstring(L, ip);
  if (port < 0) /* a Unix socket: "unix:/path", nil */
    lua_pushnil(L);
  else
    lua_pushinteger(L, port);
  return 2;
}

static int l_listener_close(lua_State *L) {
  listener_close(listener_check(L));
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc and __close. */
static int l_listener_gc(lua_State *L) {
  nb_listener *nl = listener_check(L);
  listener_close(nl);
  if (lua_gettop(L) == 1) listener_unlink(nl); /* __gc */
  return 0;
}

static int l_listener_tostring(lua_State *L) {
  nb_listener *nl = listener_check(L);
  lua_pushfstring(L, nl->l ? "netio.listener (%p)" : "netio.listener (closed)",
                  (void *)nl);
  return 1;
}

void nio__bind_listener_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"accept", l_listener_accept},
                                     {"getsockname", l_listener_getsockname},
                                     {"close", l_listener_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_listener_gc},
                                  {"__close", l_listener_gc},
                                  {"__tostring", l_listener_tostring},
                                  {NULL, NULL}};
  nio__bind_class(L, NB_LISTENER_MT, methods, meta);
}
